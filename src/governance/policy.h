// Policy: the information-governance rules in force, from one versioned YAML file (or the
// built-in national default): de-identification profile options, safe private attributes,
// date shifting, burned-in text rules, which extra options each tool category may have,
// allowed hosting regions, retention. Its SHA-256 names it in every audit entry.
// A trust applies the national file as is; local choices exist only where it allows them.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/status.h"
#include "deid/deid_settings.h"

namespace conduit {

struct RetentionPolicy {
  std::chrono::days spool{30};        // instances and results in the spool
  std::chrono::days crosswalk{3650};  // pseudonym -> original mappings
  std::chrono::days audit{3650};
};

struct Policy {
  std::string name = "built-in national default";
  std::string version = "1";
  std::string hash;  // SHA-256 hex of the file's bytes; of the built-in text for the default
  // The profile every transfer gets (Basic Profile plus these options).
  DeidSettings deid;
  // Extra options a tool of a category may ask for (ToolConfig::retain); nothing else.
  std::map<std::string, ProfileOptions> category_allowances;
  // Hosting regions where an AI tool outside the trust may run (ToolConfig::hosting_region).
  std::vector<std::string> allowed_hosting_regions{"UK"};
  RetentionPolicy retention;
};

// Errors: kInvalidArgument "<source>:<line>: <key>: <problem>".
Result<Policy> ParsePolicy(const std::string& yaml, const std::string& source);
Result<Policy> LoadPolicyFile(const std::filesystem::path& path);
// Basic Profile with no options, UK hosting only, refuse burned-in text and risky kinds.
Policy BuiltInPolicy();
// The YAML text of the built-in policy (`conduit policy show` prints it; hashing it gives
// BuiltInPolicy().hash).
std::string_view BuiltInPolicyText();

// Checks every tool against the policy: hosting region allowed (tools outside the trust
// must declare one), requested retain options within its category's allowance. Errors:
// kFailedPrecondition naming the tool, what it asked for and what the policy allows.
Status CheckToolsAgainstPolicy(const Policy& policy, const Config& config);

// The de-identification a tool's transfers get: the policy's settings plus the tool's
// requested options (already checked).
DeidSettings SettingsForTool(const Policy& policy, const ToolConfig& tool);

}  // namespace conduit
