#include "pipeline/router.h"

#include <cctype>
#include <utility>

namespace conduit {
namespace {

char Lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\0')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.remove_suffix(1);
  return s;
}

// A DICOM multi-valued text ("ORIGINAL\PRIMARY\AXIAL") as its values; one value otherwise.
std::vector<std::string_view> SplitValues(std::string_view text) {
  std::vector<std::string_view> values;
  size_t start = 0;
  while (true) {
    const size_t end = text.find('\\', start);
    values.push_back(Trim(text.substr(start, end == std::string_view::npos ? end : end - start)));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return values;
}

std::string Join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ", ") + p;
  return out;
}

// Looks the attribute up by exact keyword, then case-insensitively ("modality" finds
// "Modality"), so hand-written configs are forgiving.
const std::string* FindAttribute(const AttributeMap& attributes, const std::string& name) {
  if (auto it = attributes.find(name); it != attributes.end()) return &it->second;
  for (const auto& [key, value] : attributes) {
    if (key.size() != name.size()) continue;
    bool same = true;
    for (size_t i = 0; i < key.size() && same; ++i) same = Lower(key[i]) == Lower(name[i]);
    if (same) return &value;
  }
  return nullptr;
}

// Evaluates one condition; appends its reason line and says whether it holds.
bool Evaluate(const RouteCondition& condition, const AttributeMap& attributes,
              std::vector<std::string>& reasons) {
  std::vector<std::string> wanted;    // positive patterns
  std::vector<std::string> excluded;  // negated patterns, without the '!'
  for (const auto& p : condition.patterns) {
    if (!p.empty() && p[0] == '!') {
      excluded.push_back(p.substr(1));
    } else {
      wanted.push_back(p);
    }
  }
  auto negated_list = [&] {
    std::vector<std::string> shown;
    for (const auto& e : excluded) shown.push_back("!" + e);
    return Join(shown);
  };

  const std::string* value = FindAttribute(attributes, condition.attribute);
  if (value == nullptr) {
    if (wanted.empty() && !excluded.empty()) {
      reasons.push_back(condition.attribute + " is missing, so not excluded by " + negated_list());
      return true;
    }
    reasons.push_back(condition.attribute + " is missing");
    return false;
  }

  const std::vector<std::string_view> values = SplitValues(*value);
  const std::string shown = condition.attribute + "=" + *value;
  for (const auto& e : excluded) {
    for (const auto v : values) {
      if (GlobMatch(e, v)) {
        reasons.push_back(shown + " is excluded by !" + e);
        return false;
      }
    }
  }
  if (wanted.empty()) {
    if (excluded.empty()) {
      reasons.push_back(shown + " does not match (no patterns)");
      return false;
    }
    reasons.push_back(shown + " is not excluded by " + negated_list());
    return true;
  }
  for (const auto& w : wanted) {
    for (const auto v : values) {
      if (GlobMatch(w, v)) {
        reasons.push_back(shown + " matches " + w);
        return true;
      }
    }
  }
  reasons.push_back(shown + " does not match " + Join(wanted));
  return false;
}

}  // namespace

Router::Router(std::vector<RouteConfig> routes) : routes_(std::move(routes)) {}

std::vector<RouteDecision> Router::Explain(const AttributeMap& attributes) const {
  std::vector<RouteDecision> decisions;
  decisions.reserve(routes_.size());
  for (const auto& route : routes_) {
    RouteDecision d;
    d.route = &route;
    d.matched = true;
    if (route.when.empty()) d.reasons.push_back("no conditions: every instance matches");
    // Every condition is evaluated (no short cut) so the explanation is complete.
    for (const auto& condition : route.when) {
      if (!Evaluate(condition, attributes, d.reasons)) d.matched = false;
    }
    decisions.push_back(std::move(d));
  }
  return decisions;
}

std::vector<const RouteConfig*> Router::Match(const AttributeMap& attributes) const {
  std::vector<const RouteConfig*> matched;
  for (const auto& d : Explain(attributes)) {
    if (d.matched) matched.push_back(d.route);
  }
  return matched;
}

}  // namespace conduit
