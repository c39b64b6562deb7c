// Human durations in configs and CLIs: "500ms", "5s", "2m", "1h", "1d", "2w", "5y" (a year is
// 365 days); a bare number is seconds.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "core/status.h"

namespace conduit {

Result<std::chrono::milliseconds> ParseDuration(std::string_view text);
std::string FormatDuration(std::chrono::milliseconds d);

}  // namespace conduit
