// RefusalThrottle: which refused requests get a log line and an audit entry, so that a client
// hammering the gateway cannot flood either: the first refusal of a key (e.g. peer, route and
// reason) in each window is reported, with how many of that key went unreported before it.
// At most `max_keys` keys are remembered; when full, the oldest are forgotten (their counts
// lost, never a report). Thread safety: all methods may be called concurrently.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "core/clock.h"

namespace conduit {

class RefusalThrottle {
 public:
  RefusalThrottle(std::chrono::milliseconds window, size_t max_keys);

  // nullopt: count this refusal and stay quiet. Otherwise report it now; the value is the
  // number of refusals of `key` that went unreported since its previous report.
  std::optional<int64_t> Admit(const std::string& key, TimePoint now);

 private:
  struct Entry {
    TimePoint reported_at;
    int64_t unreported = 0;
  };

  const std::chrono::milliseconds window_;
  const size_t max_keys_;
  std::mutex mu_;
  std::map<std::string, Entry> entries_;
};

}  // namespace conduit
