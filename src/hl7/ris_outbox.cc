#include "hl7/ris_outbox.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <nlohmann/json.hpp>

namespace conduit {
namespace {

constexpr int kMaxBatchesPerPass = 100;  // then the thread waits once, so Stop is heard

std::string Labels(const std::string& destination, const std::string& type,
                   const std::string& outcome) {
  return "destination=\"" + destination + "\",type=\"" + type + "\",outcome=\"" + outcome + "\"";
}

}  // namespace

RisOutbox::RisOutbox(RisOutboxOptions options, Index& index, const Clock& clock, Metrics& metrics)
    : options_(std::move(options)),
      index_(index),
      clock_(clock),
      metrics_(metrics),
      sender_(options_.sender) {
  metrics_.Describe("conduit_hl7_messages_total", "counter",
                    "HL7 messages sent to a RIS, by destination, type and outcome");
  metrics_.Describe("conduit_hl7_outbox_pending", "gauge",
                    "HL7 messages waiting to be sent (or sent again), by destination");
}

RisOutbox::~RisOutbox() { Stop(); }

Status RisOutbox::Start() {
  if (thread_.joinable()) return FailedPrecondition("hl7 outbox: already started");
  UpdatePendingGauge();
  thread_ = std::jthread([this](std::stop_token stop) { Loop(stop); });
  pthread_setname_np(thread_.native_handle(), "hl7-out");
  spdlog::info("hl7 outbox {}: sending to {}:{}{}", options_.destination, options_.sender.host,
               options_.sender.port, options_.sender.tls ? " over TLS" : "");
  return Status::Ok();
}

void RisOutbox::Stop() {
  if (!thread_.joinable()) return;
  thread_.request_stop();
  Wake();
  thread_.join();
  sender_.Close();
  spdlog::info("hl7 outbox {}: stopped", options_.destination);
}

void RisOutbox::Wake() {
  {
    std::lock_guard lock(mu_);
    woken_ = true;
  }
  wake_cv_.notify_all();
}

void RisOutbox::Loop(std::stop_token stop) {
  while (!stop.stop_requested()) {
    Result<int> sent = SendDue();
    if (!sent.ok()) {
      spdlog::error("hl7 outbox {}: {}", options_.destination, sent.status().ToString());
    }
    std::unique_lock lock(mu_);
    wake_cv_.wait_for(lock, stop, options_.poll_interval, [this] { return woken_; });
    woken_ = false;
  }
}

std::chrono::milliseconds RisOutbox::BackoffAfter(int attempts) const {
  auto backoff = options_.initial_backoff;
  for (int i = 1; i < attempts && backoff < options_.max_backoff; ++i) backoff *= 2;
  return std::min(backoff, options_.max_backoff);
}

void RisOutbox::UpdatePendingGauge() {
  Result<int64_t> pending = index_.CountHl7(options_.destination, Hl7OutboxState::kPending);
  if (pending.ok()) {
    metrics_.Set("conduit_hl7_outbox_pending", static_cast<double>(*pending),
                 "destination=\"" + options_.destination + "\"");
  }
}

Result<int> RisOutbox::SendDue() {
  int exchanges = 0;
  if (clock_.Now() < paused_until_) {
    // While the RIS is down, what is queued meanwhile still shows in the gauge.
    UpdatePendingGauge();
    return exchanges;
  }
  for (int round = 0; round < kMaxBatchesPerPass; ++round) {
    ASSIGN_OR_RETURN(std::vector<Hl7OutboxRecord> due,
                     index_.SendableHl7(options_.destination, clock_.Now(), options_.batch));
    if (due.empty()) break;
    for (Hl7OutboxRecord& message : due) {
      if (thread_.joinable() && thread_.get_stop_token().stop_requested()) {
        UpdatePendingGauge();
        return exchanges;
      }
      bool unreachable = false;
      ++exchanges;
      ASSIGN_OR_RETURN(Outcome outcome, SendOne(message, unreachable));
      if (unreachable && outcome == Outcome::kRetry) {
        // Nothing else can get through either: wait for the peer, not message by message.
        paused_until_ = message.next_attempt_at;
        UpdatePendingGauge();
        return exchanges;
      }
    }
  }
  UpdatePendingGauge();
  return exchanges;
}

Result<RisOutbox::Outcome> RisOutbox::SendOne(Hl7OutboxRecord& message, bool& unreachable) {
  Result<Hl7Message> parsed = Hl7Message::Parse(message.message);
  if (!parsed.ok()) {
    const std::string error = "stored message does not parse: " + parsed.status().message();
    RETURN_IF_ERROR(Record(message, Outcome::kRefused, error, "ar"));
    return Outcome::kRefused;
  }
  Result<AckOutcome> ack = sender_.Exchange(*parsed);
  if (!ack.ok()) {
    const StatusCode code = ack.status().code();
    if (code == StatusCode::kInvalidArgument) {  // e.g. no control id: never sendable
      RETURN_IF_ERROR(Record(message, Outcome::kRefused, ack.status().message(), "ar"));
      return Outcome::kRefused;
    }
    unreachable = true;
    const std::string metric = code == StatusCode::kDeadlineExceeded ? "timeout" : "unreachable";
    RETURN_IF_ERROR(Record(message, Outcome::kRetry, ack.status().message(), metric));
    return Outcome::kRetry;
  }
  switch (ack->code) {
    case AckCode::kAccept:
      RETURN_IF_ERROR(Record(message, Outcome::kAccepted, "", "aa"));
      return Outcome::kAccepted;
    case AckCode::kError:
      RETURN_IF_ERROR(Record(message, Outcome::kRetry, AckStatus(*ack).message(), "ae"));
      return Outcome::kRetry;
    case AckCode::kReject:
      break;
  }
  RETURN_IF_ERROR(Record(message, Outcome::kRefused, AckStatus(*ack).message(), "ar"));
  return Outcome::kRefused;
}

Status RisOutbox::Record(Hl7OutboxRecord& message, Outcome outcome, const std::string& error,
                         const std::string& metric_outcome) {
  const TimePoint now = clock_.Now();
  const std::string what =
      "hl7 outbox " + options_.destination + ": " + message.message_type + " " + message.control_id;
  message.last_error = error;
  switch (outcome) {
    case Outcome::kAccepted:
      message.state = Hl7OutboxState::kSent;
      message.sent_at = now;
      break;
    case Outcome::kRetry:
      message.attempts += 1;
      if (options_.max_attempts > 0 && message.attempts >= options_.max_attempts) {
        message.state = Hl7OutboxState::kFailed;
        message.sent_at = now;
        message.last_error =
            "gave up after " + std::to_string(message.attempts) + " attempts; last: " + error;
      } else {
        message.next_attempt_at = now + BackoffAfter(message.attempts);
      }
      break;
    case Outcome::kRefused:
      message.state = Hl7OutboxState::kFailed;
      message.sent_at = now;
      break;
  }
  metrics_.Add("conduit_hl7_messages_total", 1,
               Labels(options_.destination, message.message_type, metric_outcome));
  RETURN_IF_ERROR(index_.UpdateHl7(message).WithContext(what));
  switch (message.state) {
    case Hl7OutboxState::kSent:
      spdlog::info("{}: acknowledged (AA) after {} earlier attempt(s)", what, message.attempts);
      Audit(message, /*success=*/true, "");
      break;
    case Hl7OutboxState::kFailed:
      spdlog::error("{}: failed for good: {}", what, message.last_error);
      Audit(message, /*success=*/false, message.last_error);
      break;
    case Hl7OutboxState::kPending:
      spdlog::warn(
          "{}: attempt {} failed ({}); next in {} s: {}", what, message.attempts, metric_outcome,
          std::chrono::duration_cast<std::chrono::seconds>(message.next_attempt_at - now).count(),
          error);
      break;
  }
  return Status::Ok();
}

void RisOutbox::Audit(const Hl7OutboxRecord& message, bool success, const std::string& error) {
  AuditEvent audit;
  audit.at = clock_.Now();
  audit.action = "hl7_send";
  audit.outcome = success ? "success" : "failure";
  audit.actor = options_.destination;
  audit.job_id = message.job_id;
  if (message.job_id.value > 0) {
    Result<std::optional<JobRecord>> job = index_.GetJob(message.job_id);
    if (job.ok() && *job) audit.study_ref = StudyRef((*job)->study_uid);
  }
  nlohmann::json detail = {{"type", message.message_type},
                           {"control_id", message.control_id},
                           {"attempts", message.attempts}};
  if (!error.empty()) detail["error"] = error;
  audit.detail = detail.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  Status st = index_.AppendAudit(audit);
  if (!st.ok()) {
    spdlog::error("hl7 outbox {}: audit of {}: {}", options_.destination, message.control_id,
                  st.ToString());
  }
}

}  // namespace conduit
