// CircuitBreaker: one per tool. Closed, it counts consecutive failures that are the tool's
// fault; at the threshold it opens and no dispatch goes to the tool for `open_for`. Then it
// is half-open: exactly one probe may go; its success closes the circuit, its failure opens it
// again for twice as long (up to `max_open_for`). A success while closed resets the count.
// Outcomes are not tied to a dispatch: any success or tool failure reported while half-open
// decides, whichever dispatch it came from. Pure logic on an injected Clock.
// Thread safety: all methods may be called concurrently.
#pragma once

#include <mutex>

#include "core/clock.h"
#include "core/config.h"

namespace conduit {

enum class CircuitState { kClosed = 0, kHalfOpen = 1, kOpen = 2 };
const char* CircuitStateName(CircuitState state);

// What an outcome did to the circuit, for the caller to audit, log and count.
enum class CircuitChange { kNone, kOpened, kClosed };

class CircuitBreaker {
 public:
  // `config.failure_threshold` 0 makes a breaker that always allows and never opens.
  CircuitBreaker(const CircuitBreakerConfig& config, const Clock& clock);

  // Whether a dispatch may go now: always when closed; never when open; when half-open, true
  // for one caller (the probe) until an outcome or ReleaseProbe.
  bool AllowDispatch();
  // A dispatch allowed as the probe ended without telling anything about the tool (shutdown,
  // local error): another probe may go.
  void ReleaseProbe();
  // The tool accepted a dispatch or returned results.
  CircuitChange RecordSuccess();
  // The tool failed in a way that is its fault (unavailable, exhausted, deadline exceeded).
  CircuitChange RecordFailure();

  // The state now (an open circuit whose time has passed reads half-open).
  CircuitState State() const;
  // When a dispatch may next be allowed: now unless open (then the end of the open period).
  // Half-open with the probe out: now + open_for (not doubled), a time to look again.
  TimePoint NextAllowedAt() const;
  int ConsecutiveFailures() const;
  // The end of the current or last open period.
  TimePoint OpenUntil() const;

 private:
  CircuitState StateLocked(TimePoint now) const;
  void OpenLocked(TimePoint now, std::chrono::milliseconds period);

  const CircuitBreakerConfig config_;
  const Clock& clock_;
  mutable std::mutex mu_;
  bool open_ = false;  // opened, and not closed since (half-open once open_until_ has passed)
  bool probe_out_ = false;
  int failures_ = 0;
  std::chrono::milliseconds period_{0};  // the current open period
  TimePoint open_until_{};
};

}  // namespace conduit
