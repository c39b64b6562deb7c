// Deliverer: sends a job's results to its destinations (PACS) by C-STORE. A result counts as
// delivered to a destination only when that destination answered success, and, for one with
// storage_commitment, only once it has also reported the result committed; delivered pairs
// are recorded so a resumed job never re-sends them.
#pragma once

#include <string>
#include <vector>

#include "core/config.h"
#include "core/metrics.h"
#include "dicom/dimse_sender.h"
#include "results/commitment_waiters.h"
#include "store/index.h"
#include "store/spool.h"

namespace conduit {

class Deliverer {
 public:
  // `commitments` receives the PACS's storage commitment reports (from the DIMSE listener);
  // without it a destination with storage_commitment cannot be delivered to. `metrics`, when
  // given, counts each commitment request by outcome and times its report.
  Deliverer(const Config& config, Index& index, Spool& spool, const Clock& clock,
            CommitmentWaiters* commitments = nullptr, Metrics* metrics = nullptr);
  // Delivers every not-yet-delivered result of `job` to each of its destinations.
  // OK when all are delivered. Errors: kUnavailable when a destination is unreachable,
  // answered out-of-resources, or did not report every result committed within its
  // commitment_timeout (retry later: the results not committed are sent again);
  // kInvalidArgument when a destination refused a result for good, or has storage_commitment
  // on but offers no Storage Commitment; kNotFound for an unknown destination;
  // kFailedPrecondition for storage commitment without `commitments`.
  Status Deliver(const JobRecord& job);

 private:
  const Config& config_;
  Index& index_;
  Spool& spool_;
  const Clock& clock_;
  CommitmentWaiters* commitments_;
  Metrics* metrics_;

  // Asks `dest` to commit to `stored` (results it has just accepted), waits for its report and
  // marks the committed ones delivered. kUnavailable when any is not committed.
  Status Commit(const JobRecord& job, const DestinationConfig& dest, const DicomPeer& peer,
                const std::vector<const ResultRecord*>& stored);
};

}  // namespace conduit
