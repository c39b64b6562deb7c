// The registry of AI tools: manifests recorded in the index, one entry per (name, version),
// never overwritten; removing a version dates it and keeps it as history. The command line
// (`conduit tool ...`) and the admin API (/api/tools) both go through these functions.
// Thread safety: as the Index's.
#pragma once

#include <string>

#include "core/clock.h"
#include "evidence/tool_manifest.h"
#include "governance/policy.h"
#include "store/index.h"

namespace conduit {

// Checks the manifest against the policy, then records it with an audit event (action
// "tool_add", by `actor`). kInserted for a new version, kDuplicate if this very manifest is
// already registered. Errors: kFailedPrecondition if the policy forbids the tool;
// kAlreadyExists if the version is registered with another manifest.
Result<PutOutcome> RegisterTool(Index& index, const Policy& policy, const ToolManifest& manifest,
                                const std::string& actor, const Clock& clock);

// Dates the version removed, with an audit event (action "tool_remove").
// Errors: kNotFound if the version is not in the registry.
Status UnregisterTool(Index& index, const std::string& name, const std::string& version,
                      const std::string& actor, const Clock& clock);

// {"name", "version", "hash", "added_at", "removed_at" (ISO 8601 UTC or null), "manifest"
// (the canonical JSON object)}, as JSON text.
std::string ToolRecordJson(const ToolRecord& record);

}  // namespace conduit
