// Percent-decoding of a URL's path segment or query component (RFC 3986 §2.1). With
// `plus_is_space`, '+' also decodes to a space, as in application/x-www-form-urlencoded
// query strings. nullopt on a malformed escape ('%' not followed by two hex digits).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace conduit {

std::optional<std::string> PercentDecode(std::string_view s, bool plus_is_space = false);

}  // namespace conduit
