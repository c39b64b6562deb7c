#include "core/refusal_throttle.h"

#include <algorithm>

namespace conduit {

RefusalThrottle::RefusalThrottle(std::chrono::milliseconds window, size_t max_keys)
    : window_(window), max_keys_(std::max<size_t>(1, max_keys)) {}

std::optional<int64_t> RefusalThrottle::Admit(const std::string& key, TimePoint now) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it != entries_.end()) {
    Entry& e = it->second;
    if (now - e.reported_at < window_) {
      ++e.unreported;
      return std::nullopt;
    }
    const int64_t unreported = e.unreported;
    e = Entry{now, 0};
    return unreported;
  }
  if (entries_.size() >= max_keys_) {
    // Forget the key reported longest ago (a linear scan, bounded by max_keys).
    auto oldest = std::min_element(
        entries_.begin(), entries_.end(),
        [](const auto& a, const auto& b) { return a.second.reported_at < b.second.reported_at; });
    entries_.erase(oldest);
  }
  entries_.emplace(key, Entry{now, 0});
  return 0;
}

}  // namespace conduit
