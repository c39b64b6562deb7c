#include "core/yaml_fields.h"

#include <charconv>
#include <cmath>

#include "core/duration.h"

namespace conduit::yaml {

Status Context::Error(const YAML::Node& node, const std::string& key,
                      const std::string& problem) const {
  std::string where = source;
  if (node.IsDefined() && node.Mark().line >= 0) {
    where += ":" + std::to_string(node.Mark().line + 1);
  }
  return InvalidArgument(where + ": " + key + ": " + problem);
}

std::string Child(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

bool Present(const YAML::Node& node) { return node.IsDefined() && !node.IsNull(); }

YAML::Node Blame(const YAML::Node& map, const char* key) {
  const YAML::Node n = map[key];
  return n.IsDefined() ? n : map;
}

Status CheckKeys(const Context& ctx, const YAML::Node& map, const std::string& path,
                 const std::set<std::string>& allowed) {
  if (!map.IsMap())
    return ctx.Error(map, path.empty() ? "(top level)" : path, "expected a mapping");
  std::set<std::string> seen;
  for (const auto& kv : map) {
    if (!kv.first.IsScalar()) return ctx.Error(kv.first, path, "expected a plain key");
    const std::string key = kv.first.as<std::string>();
    if (!allowed.count(key)) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      return ctx.Error(kv.first, Child(path, key), "unknown key (expected one of: " + list + ")");
    }
    if (!seen.insert(key).second) return ctx.Error(kv.first, Child(path, key), "given twice");
  }
  return Status::Ok();
}

Status GetString(const Context& ctx, const YAML::Node& map, const std::string& path,
                 const char* key, std::string& out, bool required) {
  const YAML::Node n = map[key];
  if (!Present(n)) {
    if (required) return ctx.Error(Blame(map, key), Child(path, key), "is required");
    return Status::Ok();
  }
  if (!n.IsScalar()) return ctx.Error(n, Child(path, key), "expected a single value");
  out = n.as<std::string>();
  if (required && out.empty()) return ctx.Error(n, Child(path, key), "is required");
  return Status::Ok();
}

Status GetBool(const Context& ctx, const YAML::Node& map, const std::string& path, const char* key,
               bool& out) {
  const YAML::Node n = map[key];
  if (!Present(n)) return Status::Ok();
  bool value = false;
  if (!n.IsScalar() || !YAML::convert<bool>::decode(n, value)) {
    return ctx.Error(n, Child(path, key), "expected true or false");
  }
  out = value;
  return Status::Ok();
}

Status GetNameList(const Context& ctx, const YAML::Node& map, const std::string& path,
                   const char* key, std::vector<ListItem>& out, bool required) {
  const YAML::Node n = map[key];
  out.clear();
  if (!Present(n)) {
    if (required) return ctx.Error(Blame(map, key), Child(path, key), "is required");
    return Status::Ok();
  }
  if (!n.IsSequence()) return ctx.Error(n, Child(path, key), "expected a list");
  for (size_t i = 0; i < n.size(); ++i) {
    const YAML::Node item = n[i];
    const std::string item_path = Child(path, key) + "[" + std::to_string(i) + "]";
    if (!item.IsScalar() || item.Scalar().empty()) {
      return ctx.Error(item, item_path, "expected a single, non-empty value");
    }
    out.push_back({item.Scalar(), item, item_path});
  }
  if (required && out.empty()) return ctx.Error(n, Child(path, key), "needs at least one item");
  return Status::Ok();
}

Status GetWholeNumber(const Context& ctx, const YAML::Node& map, const std::string& path,
                      const char* key, int64_t lo, int64_t hi, int64_t& out, bool required) {
  const YAML::Node n = map[key];
  if (!Present(n)) {
    if (required) return ctx.Error(Blame(map, key), Child(path, key), "is required");
    return Status::Ok();
  }
  int64_t v = 0;
  bool parsed = false;
  if (n.IsScalar()) {
    const std::string& text = n.Scalar();
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    parsed = !text.empty() && ec == std::errc() && end == text.data() + text.size();
  }
  if (!parsed) return ctx.Error(n, Child(path, key), "expected a whole number");
  if (v < lo || v > hi) {
    return ctx.Error(n, Child(path, key),
                     "out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
  out = v;
  return Status::Ok();
}

Status GetNumber(const Context& ctx, const YAML::Node& map, const std::string& path,
                 const char* key, double lo, double hi, double& out, bool required) {
  const YAML::Node n = map[key];
  if (!Present(n)) {
    if (required) return ctx.Error(Blame(map, key), Child(path, key), "is required");
    return Status::Ok();
  }
  double v = 0;
  if (!n.IsScalar() || !YAML::convert<double>::decode(n, v) || !std::isfinite(v)) {
    return ctx.Error(n, Child(path, key), "expected a number");
  }
  if (v < lo || v > hi) {
    std::string range = "[" + YAML::Node(lo).Scalar() + ", " + YAML::Node(hi).Scalar() + "]";
    return ctx.Error(n, Child(path, key), "out of range " + range);
  }
  out = v;
  return Status::Ok();
}

Status GetDuration(const Context& ctx, const YAML::Node& map, const std::string& path,
                   const char* key, std::chrono::milliseconds& out, bool required) {
  std::string text;
  RETURN_IF_ERROR(GetString(ctx, map, path, key, text, required));
  if (text.empty()) return Status::Ok();
  auto d = ParseDuration(text);
  if (!d.ok()) return ctx.Error(map[key], Child(path, key), d.status().message());
  out = *d;
  return Status::Ok();
}

}  // namespace conduit::yaml
