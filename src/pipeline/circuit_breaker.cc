#include "pipeline/circuit_breaker.h"

#include <algorithm>

namespace conduit {

const char* CircuitStateName(CircuitState state) {
  switch (state) {
    case CircuitState::kClosed:
      return "closed";
    case CircuitState::kHalfOpen:
      return "half_open";
    case CircuitState::kOpen:
      return "open";
  }
  return "?";
}

CircuitBreaker::CircuitBreaker(const CircuitBreakerConfig& config, const Clock& clock)
    : config_(config), clock_(clock) {}

CircuitState CircuitBreaker::StateLocked(TimePoint now) const {
  if (!open_) return CircuitState::kClosed;
  return now >= open_until_ ? CircuitState::kHalfOpen : CircuitState::kOpen;
}

void CircuitBreaker::OpenLocked(TimePoint now, std::chrono::milliseconds period) {
  open_ = true;
  probe_out_ = false;
  period_ = std::max(std::chrono::milliseconds(1), period);
  open_until_ = now + period_;
}

bool CircuitBreaker::AllowDispatch() {
  std::lock_guard lock(mu_);
  switch (StateLocked(clock_.Now())) {
    case CircuitState::kClosed:
      return true;
    case CircuitState::kOpen:
      return false;
    case CircuitState::kHalfOpen:
      if (probe_out_) return false;
      probe_out_ = true;
      return true;
  }
  return false;
}

void CircuitBreaker::ReleaseProbe() {
  std::lock_guard lock(mu_);
  probe_out_ = false;
}

CircuitChange CircuitBreaker::RecordSuccess() {
  std::lock_guard lock(mu_);
  failures_ = 0;
  switch (StateLocked(clock_.Now())) {
    case CircuitState::kClosed:
    case CircuitState::kOpen:  // from a dispatch that went before it opened: the probe decides
      return CircuitChange::kNone;
    case CircuitState::kHalfOpen:
      open_ = false;
      probe_out_ = false;
      period_ = std::chrono::milliseconds(0);
      return CircuitChange::kClosed;
  }
  return CircuitChange::kNone;
}

CircuitChange CircuitBreaker::RecordFailure() {
  if (config_.failure_threshold <= 0) return CircuitChange::kNone;
  std::lock_guard lock(mu_);
  const TimePoint now = clock_.Now();
  switch (StateLocked(now)) {
    case CircuitState::kClosed:
      if (++failures_ < config_.failure_threshold) return CircuitChange::kNone;
      OpenLocked(now, std::min(config_.open_for, std::max(config_.open_for, config_.max_open_for)));
      return CircuitChange::kOpened;
    case CircuitState::kOpen:
      ++failures_;
      return CircuitChange::kNone;
    case CircuitState::kHalfOpen:
      ++failures_;
      OpenLocked(now, std::min(period_ * 2, std::max(config_.open_for, config_.max_open_for)));
      return CircuitChange::kOpened;
  }
  return CircuitChange::kNone;
}

CircuitState CircuitBreaker::State() const {
  std::lock_guard lock(mu_);
  return StateLocked(clock_.Now());
}

TimePoint CircuitBreaker::NextAllowedAt() const {
  std::lock_guard lock(mu_);
  const TimePoint now = clock_.Now();
  switch (StateLocked(now)) {
    case CircuitState::kClosed:
      return now;
    case CircuitState::kOpen:
      return open_until_;
    case CircuitState::kHalfOpen:
      return probe_out_ ? now + std::max(std::chrono::milliseconds(1), config_.open_for) : now;
  }
  return now;
}

int CircuitBreaker::ConsecutiveFailures() const {
  std::lock_guard lock(mu_);
  return failures_;
}

TimePoint CircuitBreaker::OpenUntil() const {
  std::lock_guard lock(mu_);
  return open_until_;
}

}  // namespace conduit
