// Reading fields of Conduit's YAML files (gateway config, policy) with errors that name the
// file, the line and the key path: "conduit.yaml:12: tools[0].port: out of range [1, 65535]".
#pragma once

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "core/status.h"

namespace conduit::yaml {

// Where errors come from: `source` names the text (a file path).
struct Context {
  const std::string& source;
  // kInvalidArgument "<source>:<line>: <key>: <problem>" (no line if the node has none).
  Status Error(const YAML::Node& node, const std::string& key, const std::string& problem) const;
};

// "path.key", or "key" at the top level.
std::string Child(const std::string& path, const std::string& key);
// Defined and not null.
bool Present(const YAML::Node& node);
// The node to blame for `key` of `map`: the value if present, else the mapping itself.
YAML::Node Blame(const YAML::Node& map, const char* key);

// `map` must be a mapping whose keys are all in `allowed`, each once.
Status CheckKeys(const Context& ctx, const YAML::Node& map, const std::string& path,
                 const std::set<std::string>& allowed);
// A single value; absent or null leaves `out` unchanged unless `required`.
Status GetString(const Context& ctx, const YAML::Node& map, const std::string& path,
                 const char* key, std::string& out, bool required = false);
// true or false; absent or null leaves `out` unchanged.
Status GetBool(const Context& ctx, const YAML::Node& map, const std::string& path, const char* key,
               bool& out);

// An item of a list read by GetNameList: its value, its node (for errors) and its key path
// ("outputs[2]").
struct ListItem {
  std::string value;
  YAML::Node node;
  std::string path;
};
// A list of non-empty single values; absent or null leaves `out` empty unless `required`
// (then at least one item is needed).
Status GetNameList(const Context& ctx, const YAML::Node& map, const std::string& path,
                   const char* key, std::vector<ListItem>& out, bool required = false);
// A whole number in [lo, hi]; absent or null leaves `out` unchanged unless `required`.
Status GetWholeNumber(const Context& ctx, const YAML::Node& map, const std::string& path,
                      const char* key, int64_t lo, int64_t hi, int64_t& out, bool required = false);
// A number (decimals allowed) in [lo, hi]; absent or null leaves `out` unchanged.
Status GetNumber(const Context& ctx, const YAML::Node& map, const std::string& path,
                 const char* key, double lo, double hi, double& out, bool required = false);
// A duration as core/duration.h reads it ("90s", "10m"); absent or null leaves `out`
// unchanged unless `required`.
Status GetDuration(const Context& ctx, const YAML::Node& map, const std::string& path,
                   const char* key, std::chrono::milliseconds& out, bool required = false);

}  // namespace conduit::yaml
