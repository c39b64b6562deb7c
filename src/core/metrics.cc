#include "core/metrics.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <set>
#include <utility>

namespace conduit {
namespace {

// Upper bounds of the histogram buckets, in seconds: 5 ms .. 10 min; +Inf is implicit.
constexpr std::array<double, 17> kBucketBounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,  2.5,
                                                  5,     10,   30,    60,   120, 180,  300, 600};

bool IsNameStart(char c, bool allow_colon) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (allow_colon && c == ':');
}
bool IsNameChar(char c, bool allow_colon) {
  return IsNameStart(c, allow_colon) || (c >= '0' && c <= '9');
}

// Metric names: [a-zA-Z_:][a-zA-Z0-9_:]*; label names the same without ':'. Any other
// character becomes '_', so a bad name can never break the exposition.
std::string SanitizeName(std::string_view name, bool allow_colon) {
  std::string out;
  out.reserve(name.size() + 1);
  if (name.empty() || !IsNameStart(name.front(), allow_colon)) out.push_back('_');
  for (char c : name) out.push_back(IsNameChar(c, allow_colon) ? c : '_');
  return out;
}

// Label values: backslash, double quote and line feed are escaped (format 0.0.4).
void AppendEscapedLabelValue(std::string& out, std::string_view value) {
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out.push_back(c);
    }
  }
}

// HELP text: backslash and line feed are escaped.
std::string EscapeHelp(std::string_view help) {
  std::string out;
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// Does `text` at `pos` start `,name="` (optional spaces after the comma)? That is how the
// end of a label value is told apart from a stray quote inside an unescaped value.
bool AtNextLabel(std::string_view text, size_t pos) {
  if (pos >= text.size() || text[pos] != ',') return false;
  ++pos;
  while (pos < text.size() && text[pos] == ' ') ++pos;
  if (pos >= text.size() || !IsNameStart(text[pos], false)) return false;
  while (pos < text.size() && IsNameChar(text[pos], false)) ++pos;
  return pos + 1 < text.size() && text[pos] == '=' && text[pos + 1] == '"';
}

// Parses `a="x",b="y"` into pairs. Values may be escaped as Prometheus writes them or
// interpolated raw: a quote closes a value only at the end or before the next `,name="`.
// Returns false if `text` is not a label list at all.
bool ParseLabels(std::string_view text, std::vector<std::pair<std::string, std::string>>& out) {
  size_t pos = 0;
  while (pos < text.size() && text[pos] == ' ') ++pos;
  while (pos < text.size()) {
    size_t name_start = pos;
    while (pos < text.size() && text[pos] != '=') ++pos;
    if (pos + 1 >= text.size() || text[pos + 1] != '"') return false;
    std::string_view name = text.substr(name_start, pos - name_start);
    while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
    if (name.empty()) return false;
    pos += 2;  // past ="
    std::string value;
    bool closed = false;
    while (pos < text.size()) {
      char c = text[pos];
      if (c == '\\' && pos + 1 < text.size()) {
        char next = text[pos + 1];
        if (next == '\\' || next == '"') {
          value.push_back(next);
          pos += 2;
          continue;
        }
        if (next == 'n') {
          value.push_back('\n');
          pos += 2;
          continue;
        }
      }
      if (c == '"') {
        size_t after = pos + 1;
        size_t trimmed = after;
        while (trimmed < text.size() && text[trimmed] == ' ') ++trimmed;
        if (trimmed == text.size() || AtNextLabel(text, after)) {
          pos = after;
          closed = true;
          break;
        }
      }
      value.push_back(c);
      ++pos;
    }
    if (!closed) return false;
    out.emplace_back(SanitizeName(name, false), std::move(value));
    while (pos < text.size() && text[pos] == ' ') ++pos;
    if (pos < text.size()) {
      ++pos;  // the comma AtNextLabel found
      while (pos < text.size() && text[pos] == ' ') ++pos;
    }
  }
  return true;
}

// The canonical form of a label set: names sorted (so `a,b` and `b,a` are one series),
// values escaped; enclosing braces are optional. Text that is not a label list is kept whole as the
// value of `labels`.
std::string CanonicalLabels(std::string_view labels) {
  if (labels.size() >= 2 && labels.front() == '{' && labels.back() == '}') {
    labels = labels.substr(1, labels.size() - 2);
  }
  std::vector<std::pair<std::string, std::string>> pairs;
  if (!ParseLabels(labels, pairs)) {
    pairs.clear();
    pairs.emplace_back("labels", std::string(labels));
  }
  std::stable_sort(pairs.begin(), pairs.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string out;
  std::set<std::string> seen;
  for (const auto& [name, value] : pairs) {
    if (!seen.insert(name).second) continue;  // a repeated name keeps its first value
    if (!out.empty()) out.push_back(',');
    out += name;
    out += "=\"";
    AppendEscapedLabelValue(out, value);
    out.push_back('"');
  }
  return out;
}

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  std::array<char, 64> buf;
  auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  if (ec != std::errc()) return "NaN";
  return std::string(buf.data(), end);
}

void AppendSample(std::string& out, std::string_view name, std::string_view labels,
                  std::string_view extra_label, double value) {
  out += name;
  if (!labels.empty() || !extra_label.empty()) {
    out.push_back('{');
    out += labels;
    if (!labels.empty() && !extra_label.empty()) out.push_back(',');
    out += extra_label;
    out.push_back('}');
  }
  out.push_back(' ');
  out += FormatValue(value);
  out.push_back('\n');
}

std::string NormalizeType(std::string_view type) {
  if (type == "counter" || type == "gauge" || type == "histogram" || type == "summary") {
    return std::string(type);
  }
  return "untyped";
}

}  // namespace

void Metrics::Describe(std::string_view name, std::string_view type, std::string_view help) {
  std::string key = SanitizeName(name, true);
  std::lock_guard lock(mu_);
  meta_[key] = {NormalizeType(type), std::string(help)};
}

void Metrics::Add(std::string_view name, double delta, std::string_view labels) {
  std::string key = SanitizeName(name, true);
  std::string series = CanonicalLabels(labels);
  std::lock_guard lock(mu_);
  values_[key][series] += delta;
}

void Metrics::Set(std::string_view name, double value, std::string_view labels) {
  std::string key = SanitizeName(name, true);
  std::string series = CanonicalLabels(labels);
  std::lock_guard lock(mu_);
  values_[key][series] = value;
}

void Metrics::Observe(std::string_view name, double seconds, std::string_view labels) {
  if (std::isnan(seconds)) return;  // would poison _sum forever
  std::string key = SanitizeName(name, true);
  std::string series = CanonicalLabels(labels);
  std::lock_guard lock(mu_);
  Histogram& h = histograms_[key][series];
  if (h.buckets.empty()) h.buckets.assign(kBucketBounds.size(), 0);
  for (size_t i = 0; i < kBucketBounds.size(); ++i) {
    if (seconds <= kBucketBounds[i]) {
      ++h.buckets[i];
      break;
    }
  }
  ++h.count;
  h.sum += seconds;
}

// A counter's or gauge's value; for a histogram, its number of observations; 0 if unknown.
double Metrics::Value(std::string_view name, std::string_view labels) const {
  std::string key = SanitizeName(name, true);
  std::string series = CanonicalLabels(labels);
  std::lock_guard lock(mu_);
  if (auto it = values_.find(key); it != values_.end()) {
    if (auto s = it->second.find(series); s != it->second.end()) return s->second;
  }
  if (auto it = histograms_.find(key); it != histograms_.end()) {
    if (auto s = it->second.find(series); s != it->second.end()) {
      return static_cast<double>(s->second.count);
    }
  }
  return 0;
}

// Families in name order, series in label order: the same state always renders the same
// text. A name used both as a histogram and as a plain value renders as the histogram.
std::string Metrics::RenderPrometheus() const {
  std::lock_guard lock(mu_);
  std::set<std::string, std::less<>> names;
  for (const auto& [name, unused] : meta_) names.insert(name);
  for (const auto& [name, unused] : values_) names.insert(name);
  for (const auto& [name, unused] : histograms_) names.insert(name);

  std::string out;
  for (const std::string& name : names) {
    auto meta = meta_.find(name);
    auto hist = histograms_.find(name);
    auto vals = values_.find(name);
    std::string type = meta != meta_.end() ? meta->second.first : "untyped";
    if (hist != histograms_.end()) type = "histogram";
    if (meta != meta_.end() && !meta->second.second.empty()) {
      out += "# HELP " + name + " " + EscapeHelp(meta->second.second) + "\n";
    }
    out += "# TYPE " + name + " " + type + "\n";

    if (hist != histograms_.end()) {
      for (const auto& [labels, h] : hist->second) {
        uint64_t cumulative = 0;
        for (size_t i = 0; i < kBucketBounds.size(); ++i) {
          cumulative += h.buckets[i];
          AppendSample(out, name + "_bucket", labels,
                       "le=\"" + FormatValue(kBucketBounds[i]) + "\"",
                       static_cast<double>(cumulative));
        }
        AppendSample(out, name + "_bucket", labels, "le=\"+Inf\"", static_cast<double>(h.count));
        AppendSample(out, name + "_sum", labels, "", h.sum);
        AppendSample(out, name + "_count", labels, "", static_cast<double>(h.count));
      }
    } else if (vals != values_.end()) {
      for (const auto& [labels, value] : vals->second) {
        AppendSample(out, name, labels, "", value);
      }
    }
  }
  return out;
}

}  // namespace conduit
