#include "core/glob.h"

#include <cctype>

namespace conduit {
namespace {

char Lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

}  // namespace

bool GlobMatch(std::string_view pattern, std::string_view text, GlobCase letters) {
  const bool ignore_case = letters == GlobCase::kIgnore;
  auto same = [ignore_case](char p, char t) {
    return p == '?' || p == t || (ignore_case && Lower(p) == Lower(t));
  };
  // Iterative matching with backtracking to the last '*': linear in practice, no recursion.
  size_t p = 0, t = 0;
  size_t star = std::string_view::npos, star_text = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      star_text = t;
    } else if (p < pattern.size() && same(pattern[p], text[t])) {
      ++p;
      ++t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++star_text;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

}  // namespace conduit
