// Deliverer: sends a job's results to its destinations (PACS) by C-STORE or, for a destination
// with a DICOMweb url, STOW-RS. A result counts as delivered to a destination only when that
// destination answered success (STOW-RS: named it stored, or already held), and, for one with
// storage_commitment, only once it has also reported the result committed; delivered pairs
// are recorded so a resumed job never re-sends them.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/config.h"
#include "core/metrics.h"
#include "dicom/dimse_sender.h"
#include "results/commitment_ledger.h"
#include "store/index.h"
#include "store/spool.h"

namespace conduit {

// What a delivery that did not fail left to do.
struct DeliveryProgress {
  bool done = true;  // every result is delivered to every destination
  // When not done: step the job again at `until` (the earliest deadline of the storage
  // commitment reports awaited, or now), or as soon as a report settles one of them.
  TimePoint until;
  size_t awaited = 0;  // results whose storage commitment report is awaited
};

class Deliverer {
 public:
  // `commitments` records storage commitment requests and settles them from the PACS's
  // reports; without it a destination with storage_commitment cannot be delivered to.
  // `metrics`, if given, counts every result sent by destination, protocol and outcome
  // (conduit_results_sent_total).
  Deliverer(const Config& config, Index& index, Spool& spool, const Clock& clock,
            CommitmentLedger* commitments = nullptr, Metrics* metrics = nullptr);
  // Delivers every not-yet-delivered result of `job` to each of its destinations. For a
  // destination with storage_commitment it sends the results, asks for their commitment and
  // returns without waiting (DeliveryProgress::done false); the results count as delivered
  // when the report comes (CommitmentLedger::OnReport). Results still awaited are not sent
  // again; those reported not committed, or unanswered by the deadline, are sent again on
  // the retry that the kUnavailable error asks for.
  // Errors: kUnavailable when a destination is unreachable, answered out-of-resources, or
  // has not committed every result asked (retry later); kInvalidArgument when a destination
  // refused a result for good, or has storage_commitment on but offers no Storage
  // Commitment; kNotFound for an unknown destination; kFailedPrecondition for storage
  // commitment without `commitments`.
  Result<DeliveryProgress> Deliver(const JobRecord& job);

  // The job's results whose storage commitment report is awaited (open requests).
  Result<size_t> AwaitedResults(const JobRecord& job);

 private:
  const Config& config_;
  Index& index_;
  Spool& spool_;
  const Clock& clock_;
  CommitmentLedger* commitments_;
  Metrics* metrics_;

  // Adds `results` to conduit_results_sent_total{dest, its protocol, outcome}.
  void CountSent(const DestinationConfig& dest, const char* outcome, size_t results);

  // Gives up on `dest`'s requests that were reported not committed or are past their
  // deadline (their results go again on the retry: `retry_later`) and adds the results of
  // every request of `dest`, given up on or still awaited, to `held` (not sent now).
  Status ReviewCommitments(const JobRecord& job, const DestinationConfig& dest,
                           const std::vector<CommitmentRecord>& rows, std::set<std::string>& held,
                           std::optional<Status>& retry_later);

  // Records a request for `dest` to commit to `stored` (results it has just accepted) and
  // sends it; the report settles it later.
  Status RequestCommitment(const JobRecord& job, const DestinationConfig& dest,
                           const DicomPeer& peer, const std::vector<const ResultRecord*>& stored);
};

}  // namespace conduit
