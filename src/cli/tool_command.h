// `conduit tool add|list|show|remove`: the registry of AI tools, kept in the index of the
// config's data dir. A tool is added from its manifest (docs/onboarding.md), checked against
// the config's policy first; a new version is a new entry, and removing one only dates it.
// Each returns the process exit status (0 success, 1 failure, 2 usage or refused input).
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "core/config.h"

namespace conduit::cli {

// Validates the manifest, checks it against the policy, records it (creating the index if
// needed). Re-adding the same file is a no-op; a changed file under the same version is
// refused.
int ToolAdd(const Config& config, const std::filesystem::path& manifest_file);
int ToolList(const Config& config, bool include_removed, bool json);
// The latest registered version of `name`, or `version`; with its whole manifest.
int ToolShow(const Config& config, const std::string& name,
             const std::optional<std::string>& version, bool json);
int ToolRemove(const Config& config, const std::string& name, const std::string& version);

// Whose DPIA: a manifest file, or a registered tool (its latest version, or `version`).
struct DpiaSubject {
  std::optional<std::filesystem::path> manifest_file;
  std::string tool;
  std::optional<std::string> version;
};

// `conduit dpia MANIFEST` or `conduit dpia --tool NAME [--version V]`: the pre-filled DPIA
// (governance/dpia.h) of the tool under the config's policy, as Markdown on stdout or into
// `out`. Refused (2) when the manifest is invalid or the policy does not allow the tool; 1
// when the registry cannot be read or does not hold the tool.
int ToolDpia(const Config& config, const DpiaSubject& subject, const std::string& organisation,
             const std::optional<std::filesystem::path>& out);

}  // namespace conduit::cli
