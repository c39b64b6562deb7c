#include "cli/tool_command.h"

#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "evidence/tool_dpia.h"
#include "evidence/tool_manifest.h"
#include "evidence/tool_registry.h"
#include "store/sqlite_index.h"

namespace conduit::cli {
namespace {

using json = nlohmann::json;

std::filesystem::path IndexPath(const Config& config) {
  return config.node.data_dir / "index.sqlite";
}

// The index of the config's data dir; with `create`, made if there is none yet.
Result<std::unique_ptr<Index>> OpenRegistry(const Config& config, bool create) {
  const auto path = IndexPath(config);
  if (!create && !std::filesystem::exists(path)) {
    return NotFound("no index at " + path.string() + ": no tool has been added with this config");
  }
  return OpenSqliteIndex(path);
}

std::string Text(const json& j) { return j.is_string() ? j.get<std::string>() : ""; }

std::string Join(const json& list) {
  std::string out;
  if (!list.is_array()) return out;
  for (const auto& item : list) out += (out.empty() ? "" : ", ") + Text(item);
  return out;
}

void PrintManifest(const json& record) {
  const json& m = record["manifest"];
  auto line = [](const char* label, const std::string& value) {
    if (!value.empty()) std::printf("%-22s %s\n", label, value.c_str());
  };
  line("name", Text(record["name"]));
  line("version", Text(record["version"]));
  line("vendor", Text(m["vendor"]));
  line("description", Text(m["description"]));
  const json& reg = m["regulatory"];
  std::string marking = Text(reg["marking"]);
  if (!Text(reg["class"]).empty()) marking += " class " + Text(reg["class"]);
  if (!Text(reg["notified_body"]).empty()) marking += ", body " + Text(reg["notified_body"]);
  if (!Text(reg["certificate"]).empty()) marking += ", certificate " + Text(reg["certificate"]);
  line("regulatory", marking);
  const json& use = m["intended_use"];
  line("intended use", Text(use["condition"]) + " (" + Join(use["body_parts"]) + ")");
  line("  population", Text(use["population"]));
  line("  setting", Text(use["setting"]));
  line("  user", Text(use["user"]));
  const json& in = m["inputs"];
  line("inputs", Join(in["modalities"]) +
                     (Join(in["body_parts"]).empty() ? "" : " of " + Join(in["body_parts"])));
  line("  sop classes", Join(in["sop_classes"]));
  const json& min = in["min_series"];
  if (min.value("slices", 0) > 0 || min.value("slice_thickness_max_mm", 0.0) > 0) {
    std::string criteria;
    if (min.value("slices", 0) > 0) criteria = "at least " + min["slices"].dump() + " slices";
    if (min.value("slice_thickness_max_mm", 0.0) > 0) {
      criteria += (criteria.empty() ? "" : ", ") + std::string("slices at most ") +
                  min["slice_thickness_max_mm"].dump() + " mm thick";
    }
    line("  minimum series", criteria);
  }
  line("outputs", Join(m["outputs"]));
  const json& ep = m["endpoint"];
  std::string endpoint;
  if (ep.contains("ae_title")) {
    endpoint = Text(ep["ae_title"]) + "@" + Text(ep["host"]) + ":" + ep["port"].dump();
  } else if (ep.contains("url")) {
    endpoint = Text(ep["url"]);
  } else if (ep.contains("command")) {
    for (const auto& arg : ep["command"]) endpoint += (endpoint.empty() ? "" : " ") + Text(arg);
  }
  line("protocol", Text(m["protocol"]) + " " + endpoint);
  line("hosting region", Text(m["hosting_region"]));
  line("category", Text(m["category"]));
  line("retain", Join(m["retain"]));
  line("de-identified", m.value("deidentify", false) ? "yes" : "no");
  line("expected turnaround", std::to_string(m.value("expected_turnaround_ms", 0) / 1000) + " s");
  const json& support = m["support"];
  std::string contact = Text(support["name"]);
  for (const char* key : {"email", "phone"}) {
    if (!Text(support[key]).empty()) contact += ", " + Text(support[key]);
  }
  line("support", contact);
  line("manifest hash", Text(record["hash"]));
  line("added", Text(record["added_at"]));
  line("removed", Text(record["removed_at"]));
}

}  // namespace

int ToolAdd(const Config& config, const std::filesystem::path& manifest_file) {
  auto manifest = LoadToolManifestFile(manifest_file);
  if (!manifest.ok()) {
    std::cerr << "conduit: " << manifest.status().message() << "\n";
    return 2;
  }
  auto policy = PolicyOfConfig(config);
  if (!policy.ok()) {
    std::cerr << "conduit: " << policy.status().message() << "\n";
    return 2;
  }
  // Checked before the index is opened, so that a refused tool leaves nothing behind.
  if (Status allowed = CheckManifestAgainstPolicy(*policy, *manifest); !allowed.ok()) {
    std::cerr << "conduit: " << allowed.message() << "\n";
    return 2;
  }
  auto index = OpenRegistry(config, /*create=*/true);
  if (!index.ok()) {
    std::cerr << "conduit: " << index.status().message() << "\n";
    return 1;
  }
  (*index)->SetPolicyHash(policy->hash);
  SystemClock clock;
  auto added = RegisterTool(**index, *policy, *manifest, "cli", clock);
  if (!added.ok()) {
    std::cerr << "conduit: " << added.status().message() << "\n";
    const StatusCode code = added.status().code();
    return code == StatusCode::kFailedPrecondition || code == StatusCode::kAlreadyExists ? 2 : 1;
  }
  std::cout << "tool " << manifest->name << " " << manifest->version
            << (*added == PutOutcome::kInserted ? ": added" : ": already registered, unchanged")
            << " (manifest " << manifest->hash.substr(0, 16) << ", policy '" << policy->name << " "
            << policy->version << "')\n";
  if (auto runnable = ToToolConfig(*manifest); !runnable.ok()) {
    std::cout << "note: " << runnable.status().message() << "\n";
  }
  return 0;
}

int ToolList(const Config& config, bool include_removed, bool as_json) {
  std::vector<ToolRecord> tools;
  if (std::filesystem::exists(IndexPath(config))) {
    auto index = OpenRegistry(config, /*create=*/false);
    if (!index.ok()) {
      std::cerr << "conduit: " << index.status().message() << "\n";
      return 1;
    }
    auto listed = (*index)->ListTools(include_removed);
    if (!listed.ok()) {
      std::cerr << "conduit: " << listed.status().ToString() << "\n";
      return 1;
    }
    tools = std::move(listed).value();
  }
  if (as_json) {
    json out = json::array();
    for (const ToolRecord& t : tools) out.push_back(json::parse(ToolRecordJson(t)));
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::printf("%-24s %-12s %-24s %-10s %-10s %-20s %s\n", "NAME", "VERSION", "VENDOR", "PROTOCOL",
              "MARKING", "ADDED", "REMOVED");
  for (const ToolRecord& t : tools) {
    const json j = json::parse(ToolRecordJson(t));
    const json& m = j["manifest"];
    std::printf("%-24s %-12s %-24s %-10s %-10s %-20s %s\n", t.name.c_str(), t.version.c_str(),
                Text(m["vendor"]).c_str(), Text(m["protocol"]).c_str(),
                Text(m["regulatory"]["marking"]).c_str(), Text(j["added_at"]).c_str(),
                Text(j["removed_at"]).c_str());
  }
  return 0;
}

int ToolShow(const Config& config, const std::string& name,
             const std::optional<std::string>& version, bool as_json) {
  auto index = OpenRegistry(config, /*create=*/false);
  if (!index.ok()) {
    std::cerr << "conduit: " << index.status().message() << "\n";
    return 1;
  }
  auto tool = (*index)->GetTool(name, version);
  if (!tool.ok()) {
    std::cerr << "conduit: " << tool.status().ToString() << "\n";
    return 1;
  }
  if (!tool->has_value()) {
    std::cerr << "conduit: no tool '" << name << "'" << (version ? " version " + *version : "")
              << " in the registry\n";
    return 1;
  }
  const json record = json::parse(ToolRecordJson(**tool));
  if (as_json) {
    std::cout << record.dump(2) << "\n";
  } else {
    PrintManifest(record);
  }
  return 0;
}

int ToolRemove(const Config& config, const std::string& name, const std::string& version) {
  auto index = OpenRegistry(config, /*create=*/false);
  if (!index.ok()) {
    std::cerr << "conduit: " << index.status().message() << "\n";
    return 1;
  }
  if (auto policy = PolicyOfConfig(config); policy.ok()) (*index)->SetPolicyHash(policy->hash);
  SystemClock clock;
  Status removed = UnregisterTool(**index, name, version, "cli", clock);
  if (!removed.ok()) {
    std::cerr << "conduit: " << removed.message() << "\n";
    return 1;
  }
  std::cout << "tool " << name << " " << version << ": removed (kept in the registry's history)\n";
  for (const ToolConfig& t : config.tools) {
    if (t.name == name) {
      std::cout << "note: the config still has a tool '" << name
                << "'; remove it there to stop routing to it\n";
    }
  }
  return 0;
}

namespace {

// The manifest a registered tool was added with. Errors: the index's; kNotFound.
Result<ToolManifest> RegisteredManifest(const Config& config, const std::string& name,
                                        const std::optional<std::string>& version) {
  ASSIGN_OR_RETURN(auto index, OpenRegistry(config, /*create=*/false));
  ASSIGN_OR_RETURN(std::optional<ToolRecord> tool, index->GetTool(name, version));
  if (!tool) {
    return NotFound("no tool '" + name + "'" + (version ? " version " + *version : "") +
                    " in the registry");
  }
  return ToolManifestFromJson(tool->manifest_json);
}

}  // namespace

int ToolDpia(const Config& config, const DpiaSubject& subject, const std::string& organisation,
             const std::optional<std::filesystem::path>& out) {
  Result<ToolManifest> manifest = subject.manifest_file
                                      ? LoadToolManifestFile(*subject.manifest_file)
                                      : RegisteredManifest(config, subject.tool, subject.version);
  if (!manifest.ok()) {
    std::cerr << "conduit dpia: " << manifest.status().message() << "\n";
    return subject.manifest_file ? 2 : 1;
  }
  auto policy = PolicyOfConfig(config);
  if (!policy.ok()) {
    std::cerr << "conduit dpia: " << policy.status().message() << "\n";
    return 2;
  }
  auto tool = DpiaToolOf(*manifest);
  if (!tool.ok()) {
    std::cerr << "conduit dpia: " << tool.status().message() << "\n";
    return 2;
  }
  SystemClock clock;
  auto dpia = RenderDpia(*policy, *tool, DpiaContext{organisation, clock.Now(), &config});
  if (!dpia.ok()) {
    std::cerr << "conduit dpia: " << dpia.status().message() << "\n";
    return 2;
  }
  if (!out) {
    std::cout << *dpia;
    return 0;
  }
  std::ofstream file(*out, std::ios::binary | std::ios::trunc);
  file << *dpia;
  file.close();
  if (!file) {
    std::cerr << "conduit dpia: cannot write " << out->string() << "\n";
    return 1;
  }
  std::cout << "DPIA draft for " << manifest->name << " " << manifest->version << " written to "
            << out->string() << "\n";
  return 0;
}

}  // namespace conduit::cli
