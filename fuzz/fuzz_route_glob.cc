// Fuzz target: route patterns against attribute values. The first byte gives the pattern's
// length; the rest of the input is the pattern then the text. Checks GlobMatch against a
// straightforward dynamic-programming glob (the specification: case-insensitive, '*' any run,
// '?' any one character), and Router::Explain / Match against what the route rules promise.

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/router.h"

namespace {

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "fuzz_route_glob: property violated: %s\n", what);
  std::abort();
}

char Lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

// matches[i][j]: pattern[i..] matches text[j..]. O(|pattern| * |text|) time and memory.
bool ReferenceGlob(std::string_view pattern, std::string_view text) {
  const size_t n = pattern.size(), m = text.size();
  std::vector<char> next(m + 1, 0), current(m + 1, 0);
  next[m] = 1;  // empty pattern matches only empty text
  for (size_t i = n; i-- > 0;) {
    const char p = pattern[i];
    current[m] = p == '*' ? next[m] : 0;
    for (size_t j = m; j-- > 0;) {
      if (p == '*') {
        current[j] = next[j] || current[j + 1];
      } else {
        current[j] = (p == '?' || Lower(p) == Lower(text[j])) && next[j + 1];
      }
    }
    std::swap(next, current);
  }
  return next[0] != 0;
}

bool HasWildcard(std::string_view s) { return s.find_first_of("*?") != std::string_view::npos; }

// True when the router sees `text` as exactly one value: no '\' separator and nothing that
// its trimming (spaces and NULs at either end) would remove.
bool SingleUntrimmedValue(std::string_view text) {
  if (text.find('\\') != std::string_view::npos) return false;
  if (text.empty()) return true;
  auto trimmed = [](char c) { return c == ' ' || c == '\0'; };
  return !trimmed(text.front()) && !trimmed(text.back());
}

void CheckGlob(std::string_view pattern, std::string_view text) {
  const bool got = conduit::GlobMatch(pattern, text);
  if (pattern.size() * text.size() <= (1u << 18) && got != ReferenceGlob(pattern, text)) {
    Fail("GlobMatch disagrees with the reference glob");
  }
  if (!HasWildcard(pattern) && !conduit::GlobMatch(pattern, pattern)) {
    Fail("a pattern without wildcards does not match itself");
  }
  if (!conduit::GlobMatch("*", text)) Fail("'*' does not match everything");
  if (got) {
    std::string upper(text);
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (!conduit::GlobMatch(pattern, upper)) Fail("match is case-sensitive");
    if (!conduit::GlobMatch("*" + std::string(pattern), "x" + std::string(text))) {
      Fail("a leading '*' does not absorb a prefix");
    }
  }
}

void CheckRouter(const std::string& pattern, const std::string& text) {
  using conduit::RouteCondition;
  using conduit::RouteConfig;
  std::vector<RouteConfig> routes(4);
  routes[0].name = "on-modality";
  routes[0].when = {RouteCondition{"Modality", {pattern}}};
  routes[1].name = "unconditional";
  routes[2].name = "on-missing";
  routes[2].when = {RouteCondition{"BodyPartExamined", {pattern}}};
  routes[3].name = "two-conditions";  // lower-case keyword: looked up case-insensitively
  routes[3].when = {RouteCondition{"Modality", {pattern}}, RouteCondition{"modality", {"*"}}};
  for (auto& r : routes) r.tool = "tool";

  const conduit::Router router(routes);
  const conduit::AttributeMap attributes = {{"Modality", text}, {"CallingAE", "SCANNER"}};
  const std::vector<conduit::RouteDecision> decisions = router.Explain(attributes);
  if (decisions.size() != routes.size()) Fail("Explain must decide every route");
  for (size_t i = 0; i < decisions.size(); ++i) {
    if (decisions[i].route != &router.routes()[i]) Fail("decisions out of config order");
    const size_t want_reasons = routes[i].when.empty() ? 1 : routes[i].when.size();
    if (decisions[i].reasons.size() != want_reasons) Fail("one reason per condition");
  }
  std::vector<const RouteConfig*> expected_match;
  for (const auto& d : decisions) {
    if (d.matched) expected_match.push_back(d.route);
  }
  if (router.Match(attributes) != expected_match) Fail("Match differs from Explain");

  const bool negated = !pattern.empty() && pattern[0] == '!';
  if (!decisions[1].matched) Fail("a route without conditions must match");
  // A missing attribute fails a positive pattern and passes a purely negative one.
  if (decisions[2].matched != negated) Fail("missing attribute handled wrongly");
  if (SingleUntrimmedValue(text)) {
    const bool glob = negated ? !conduit::GlobMatch(std::string_view(pattern).substr(1), text)
                              : conduit::GlobMatch(pattern, text);
    if (decisions[0].matched != glob) Fail("route decision differs from GlobMatch");
  }
  if (decisions[3].matched != decisions[0].matched) {
    Fail("case-insensitive keyword lookup or '*' condition wrong");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t pattern_size = std::min<size_t>(data[0], size - 1);
  const std::string pattern(reinterpret_cast<const char*>(data) + 1, pattern_size);
  const std::string text(reinterpret_cast<const char*>(data) + 1 + pattern_size,
                         size - 1 - pattern_size);
  CheckGlob(pattern, text);
  CheckRouter(pattern, text);
  return 0;
}
