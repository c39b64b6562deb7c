// RisOutbox: sends the HL7 messages queued in the index (Index::EnqueueHl7) for one
// destination over MLLP, one at a time, and records each outcome in the index:
//   AA -> sent; AE, no ACK in time, no connection -> pending again after a backoff
//   (initial_backoff doubling to max_backoff; failed once max_attempts is reached, if set);
//   AR (or a stored message that no longer parses) -> failed for good: logged, audited, counted.
// Order per patient: a message is never sent while an older message of the same patient_key
// is pending (the index hands out only the oldest of each patient), so a patient being retried
// holds up only that patient. A peer that cannot be reached (or does not answer) holds the
// whole destination until the failed message's next attempt.
// Durability: a message is marked sent only after its AA; a crash between the AA and that
// record sends it again on restart, with the same control id (MSH-10): the RIS may see a
// duplicate, as MLLP's at-least-once delivery allows.
// Metrics: conduit_hl7_messages_total{destination,type,outcome} (outcome: aa, ae, ar,
// timeout, unreachable) and conduit_hl7_outbox_pending{destination}.
// Thread safety: Start/Stop from one thread; Wake from any; SendDue only while not started.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "core/clock.h"
#include "core/metrics.h"
#include "hl7/mllp.h"
#include "store/index.h"

namespace conduit {

struct RisOutboxOptions {
  std::string destination = "ris";  // Hl7OutboxRecord::destination; names the thread too
  MllpSenderOptions sender;         // the RIS's host, port and timeouts
  std::chrono::milliseconds initial_backoff{5'000};
  std::chrono::milliseconds max_backoff{600'000};
  int max_attempts = 0;  // 0: retried until acknowledged or refused
  int batch = 32;        // messages read from the index at a time
  // How often the sender thread looks for due messages when nothing wakes it.
  std::chrono::milliseconds poll_interval{1'000};
};

class RisOutbox {
 public:
  RisOutbox(RisOutboxOptions options, Index& index, const Clock& clock, Metrics& metrics);
  ~RisOutbox();
  RisOutbox(const RisOutbox&) = delete;
  RisOutbox& operator=(const RisOutbox&) = delete;

  // Starts the sender thread ("hl7-out"), which resends what a previous run left pending.
  // Errors: kFailedPrecondition if started.
  Status Start();
  // Stops the thread within about a second plus one exchange in progress (bounded by the
  // sender's connect and ACK timeouts). Idempotent.
  void Stop();
  // Something was queued: look now rather than at the next poll.
  void Wake();

  // Sends every message due now, in order, until none is left or the peer is unreachable;
  // returns the number of exchanges attempted. Errors: index errors.
  Result<int> SendDue();

 private:
  enum class Outcome { kAccepted, kRetry, kRefused };
  // Sends one message and records what came of it; kRetry with `unreachable` set when the
  // peer could not be reached or did not answer.
  Result<Outcome> SendOne(Hl7OutboxRecord& message, bool& unreachable);
  Status Record(Hl7OutboxRecord& message, Outcome outcome, const std::string& error,
                const std::string& metric_outcome);
  void Audit(const Hl7OutboxRecord& message, bool success, const std::string& error);
  std::chrono::milliseconds BackoffAfter(int attempts) const;
  void UpdatePendingGauge();
  void Loop(std::stop_token stop);

  const RisOutboxOptions options_;
  Index& index_;
  const Clock& clock_;
  Metrics& metrics_;
  MllpSender sender_;         // used by the sender thread (or SendDue's caller) only
  TimePoint paused_until_{};  // the destination is unreachable until then
  std::mutex mu_;
  std::condition_variable_any wake_cv_;
  bool woken_ = false;  // guarded by mu_
  std::jthread thread_;
};

}  // namespace conduit
