#include "core/duration.h"

#include <charconv>
#include <cmath>

namespace conduit {

Result<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  const std::string original(text);
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  if (text.empty()) return InvalidArgument("empty duration");
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  // from_chars accepts "nan" and "inf"; neither is a duration (NaN would not convert to ms).
  if (ec != std::errc() || end == text.data() || !std::isfinite(value) || value < 0) {
    return InvalidArgument("'" + original + "' is not a duration (e.g. 500ms, 5s, 2m, 1h)");
  }
  std::string_view unit(end, text.data() + text.size() - end);
  double ms_per_unit = 0;
  if (unit.empty() || unit == "s")
    ms_per_unit = 1000;
  else if (unit == "ms")
    ms_per_unit = 1;
  else if (unit == "m" || unit == "min")
    ms_per_unit = 60'000;
  else if (unit == "h")
    ms_per_unit = 3'600'000;
  else if (unit == "d")
    ms_per_unit = 86'400'000;
  else if (unit == "w")
    ms_per_unit = 7 * 86'400'000.0;
  else if (unit == "y")
    ms_per_unit = 365 * 86'400'000.0;  // a calendar-free year, for ages such as "5y"
  else
    return InvalidArgument("'" + original + "': unknown unit '" + std::string(unit) +
                           "' (use ms, s, m, h, d, w or y)");
  const double ms = value * ms_per_unit;
  if (ms > 1e15) return InvalidArgument("'" + original + "' is too long");
  return std::chrono::milliseconds(static_cast<int64_t>(ms + 0.5));
}

std::string FormatDuration(std::chrono::milliseconds d) {
  const int64_t ms = d.count();
  if (ms % 3'600'000 == 0 && ms != 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms % 60'000 == 0 && ms != 0) return std::to_string(ms / 60'000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

}  // namespace conduit
