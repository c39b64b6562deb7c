// RetentionSweeper enforces the policy's retention periods. Each sweep deletes audit rows
// older than the audit period and crosswalk mappings older than the crosswalk period; of the
// RIS link, outbox messages sent or failed (never pending ones) and orders older than the
// crosswalk period, and reports older than the audit period; and it expires studies whose newest
// instance is older than the spool period and whose jobs are all over: index rows first (instances,
// results, units, MPPS; job rows, deliveries and the audit trail stay as history), then the spool
// files, so a crash in between leaves orphan files and never an index row naming a missing file,
// then the work folders of the study's jobs (hard links to those files may be in them).
// Each sweep ends with one audit event "retention" carrying counts only, and conduit_retention_*
// metrics. Thread: "retention", started by Start(). Thread safety: all methods may be called from
// any thread; sweeps never overlap.
#pragma once

#include <chrono>
#include <mutex>
#include <stop_token>
#include <thread>

#include "core/clock.h"
#include "core/metrics.h"
#include "core/status.h"
#include "governance/policy.h"
#include "store/index.h"
#include "store/spool.h"

namespace conduit {

class RetentionSweeper {
 public:
  // Studies expired per index query; a sweep repeats batches until none is left.
  static constexpr int kStudiesPerBatch = 100;

  // `interval` is the time between sweeps of the thread (tests shorten it). Nothing runs
  // until SweepOnce() or Start().
  RetentionSweeper(Index& index, Spool& spool, const Clock& clock, Metrics& metrics,
                   RetentionPolicy policy,
                   std::chrono::milliseconds interval = std::chrono::hours(1));
  ~RetentionSweeper();  // Stop()
  RetentionSweeper(const RetentionSweeper&) = delete;
  RetentionSweeper& operator=(const RetentionSweeper&) = delete;

  // One sweep, on the calling thread, with cutoffs taken from the clock's now. Every step
  // runs even if an earlier one failed; the first error is returned (and audited). A study
  // that became busy since it was selected is skipped until a later sweep; a spool file that
  // cannot be removed is counted, logged by key prefix and left behind (an orphan).
  Status SweepOnce();

  // Starts the thread "retention": a sweep now, then one every interval. Errors are logged
  // and the next sweep runs as planned. kFailedPrecondition if already started.
  Status Start();
  // Stops the thread within about a second (a sweep in progress stops between studies).
  void Stop();

 private:
  Status Sweep(std::stop_token stop);

  Index& index_;
  Spool& spool_;
  const Clock& clock_;
  Metrics& metrics_;
  const RetentionPolicy policy_;
  const std::chrono::milliseconds interval_;
  std::mutex sweep_mu_;  // one sweep at a time
  std::jthread thread_;  // last: joined before everything above goes
};

}  // namespace conduit
