// CommitmentLedger: the storage commitment requests Conduit has sent to PACS destinations,
// kept in the index until the PACS's report settles them. A report therefore counts whenever
// and on whichever association it comes: before the request's own answer, hours later, or
// after a restart; and no delivery holds a thread while it waits.
// Thread safety: every member may be called from any thread.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/metrics.h"
#include "dicom/commitment_dataset.h"
#include "store/index.h"

namespace conduit {

class CommitmentLedger {
 public:
  // `wake` is called after a report settled part of a job (the job engine then steps it);
  // `metrics`, when given, counts requests by outcome and times reports.
  CommitmentLedger(Index& index, const Clock& clock, std::function<void()> wake,
                   Metrics* metrics = nullptr);

  // Records that `results` of `job` are to be asked of `destination` under `transaction`,
  // with a report due by `deadline`. Called before the request is sent: its report may
  // come before the request's answer.
  Status Open(const JobRecord& job, const std::string& destination, const std::string& transaction,
              const std::vector<const ResultRecord*>& results, TimePoint deadline);

  // Records that the PACS took the request (N-ACTION success). A request recorded by an
  // earlier process and never marked so may never have been sent (that process stopped in
  // between): the deliverer does not wait for its report (was_interrupted).
  Status MarkAsked(const std::string& transaction);
  // True for a request recorded before this ledger was made (by an earlier process) and never
  // marked asked.
  bool WasInterrupted(const CommitmentRecord& row) const;

  // Settles an open transaction from its report: each committed result is recorded as
  // delivered; the others (failed, or left out of the report) wait for the job's retry. The
  // job is made due at once. Audited as `commitment_report` (`unexpected` when no open
  // transaction matches: unknown, given up on, or reported before). True if it matched.
  Result<bool> OnReport(const CommitmentReport& report);

  // Counts a request's outcome: committed, partial, no_report or refused.
  void CountRequest(const std::string& destination, const char* outcome);

 private:
  Index& index_;
  const Clock& clock_;
  std::function<void()> wake_;
  Metrics* metrics_;
  const TimePoint started_at_;  // when this ledger (this process's) was made
};

}  // namespace conduit
