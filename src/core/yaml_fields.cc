#include "core/yaml_fields.h"

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

}  // namespace conduit::yaml
