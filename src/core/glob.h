// Glob matching with * and ?: routes and policy rules (ignoring case), QIDO-RS wildcards.
#pragma once

#include <string_view>

namespace conduit {

enum class GlobCase { kIgnore, kExact };

// True if `text` matches `pattern` (* any run, ? one character), ignoring ASCII case unless
// `exact` says otherwise. Linear in practice (backtracks only to the last '*').
bool GlobMatch(std::string_view pattern, std::string_view text,
               GlobCase letters = GlobCase::kIgnore);

}  // namespace conduit
