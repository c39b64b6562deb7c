// Times as ISO 8601 UTC text, as the admin API, the CLI and the tool registry show them.
#pragma once

#include <string>

#include "core/clock.h"

namespace conduit {

enum class IsoPrecision { kSeconds, kMillis };

// "2023-11-14T22:13:20Z", or with kMillis "2023-11-14T22:13:20.000Z".
std::string FormatIsoTime(TimePoint t, IsoPrecision precision = IsoPrecision::kSeconds);

}  // namespace conduit
