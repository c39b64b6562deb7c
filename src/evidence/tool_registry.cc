#include "evidence/tool_registry.h"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/iso_time.h"

namespace conduit {
namespace {

using json = nlohmann::json;

json IsoTime(TimePoint t) { return FormatIsoTime(t); }

AuditEvent ToolEvent(const char* action, const std::string& actor, TimePoint at, json detail) {
  AuditEvent event;
  event.at = at;
  event.action = action;
  event.outcome = "success";
  event.actor = actor;
  event.detail = detail.dump();
  return event;
}

}  // namespace

Result<PutOutcome> RegisterTool(Index& index, const Policy& policy, const ToolManifest& manifest,
                                const std::string& actor, const Clock& clock) {
  Status allowed = CheckManifestAgainstPolicy(policy, manifest);
  if (!allowed.ok()) return allowed;
  ToolRecord record;
  record.name = manifest.name;
  record.version = manifest.version;
  record.manifest_json = ToolManifestJson(manifest);
  record.manifest_hash = manifest.hash;
  record.added_at = clock.Now();
  AuditEvent event = ToolEvent("tool_add", actor, record.added_at,
                               {{"tool", manifest.name},
                                {"version", manifest.version},
                                {"vendor", manifest.vendor},
                                {"protocol", ToolProtocolName(manifest.protocol)},
                                {"manifest_hash", manifest.hash}});
  Result<PutOutcome> added = index.AddToolVersion(record, event);
  if (!added.ok()) return added.status();
  if (*added == PutOutcome::kInserted) {
    spdlog::info("event=tool_added tool={} version={} by={}", manifest.name, manifest.version,
                 actor);
  }
  return added;
}

Status UnregisterTool(Index& index, const std::string& name, const std::string& version,
                      const std::string& actor, const Clock& clock) {
  Status removed = index.RemoveTool(
      name, version,
      ToolEvent("tool_remove", actor, clock.Now(), {{"tool", name}, {"version", version}}));
  if (!removed.ok()) return removed;
  spdlog::info("event=tool_removed tool={} version={} by={}", name, version, actor);
  return Status::Ok();
}

std::string ToolRecordJson(const ToolRecord& r) {
  json manifest = json::parse(r.manifest_json, nullptr, /*allow_exceptions=*/false);
  if (manifest.is_discarded()) manifest = nullptr;
  json j = {{"name", r.name},
            {"version", r.version},
            {"hash", r.manifest_hash},
            {"added_at", IsoTime(r.added_at)},
            {"removed_at", r.removed_at ? IsoTime(*r.removed_at) : json(nullptr)},
            {"manifest", manifest}};
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace conduit
