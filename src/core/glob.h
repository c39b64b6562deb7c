// Case-insensitive glob matching with * and ?, used by routes and policy rules.
#pragma once

#include <string_view>

namespace conduit {

// True if `text` matches `pattern` (* any run, ? one character), ignoring ASCII case.
bool GlobMatch(std::string_view pattern, std::string_view text);

}  // namespace conduit
