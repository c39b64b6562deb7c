#include "evidence/tool_manifest.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/http_url.h"
#include "core/priors_yaml.h"
#include "core/sha256.h"
#include "core/text_file.h"
#include "core/yaml_fields.h"

namespace conduit {
namespace {

using Ctx = yaml::Context;
using yaml::Blame;
using yaml::CheckKeys;
using yaml::Child;
using yaml::GetBool;
using yaml::GetDuration;
using yaml::GetNameList;
using yaml::GetNumber;
using yaml::GetString;
using yaml::GetWholeNumber;
using yaml::ListItem;
using yaml::Present;
using json = nlohmann::json;

// Enumerations as manifests spell them.
const std::map<std::string, ToolProtocol> kProtocols = {{"dimse", ToolProtocol::kDimse},
                                                        {"dicomweb", ToolProtocol::kDicomweb},
                                                        {"aiw-i", ToolProtocol::kAiwI},
                                                        {"ups-rs", ToolProtocol::kAiwI},
                                                        {"executable", ToolProtocol::kExecutable}};
const std::map<std::string, RegulatoryMarking> kMarkings = {{"none", RegulatoryMarking::kNone},
                                                            {"UKCA", RegulatoryMarking::kUkca},
                                                            {"CE", RegulatoryMarking::kCe}};
const std::map<std::string, ToolOutput> kOutputs = {{"sr", ToolOutput::kSr},
                                                    {"seg", ToolOutput::kSeg},
                                                    {"gsps", ToolOutput::kGsps},
                                                    {"kos", ToolOutput::kKos},
                                                    {"sc", ToolOutput::kSc},
                                                    {"parametric_map", ToolOutput::kParametricMap},
                                                    {"triage_score", ToolOutput::kTriageScore}};
const std::vector<std::string> kDeviceClasses = {"I", "IIa", "IIb", "III"};

template <typename E>
std::string NamesOf(const std::map<std::string, E>& names) {
  std::string out;
  for (const auto& [name, value] : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

template <typename E>
const char* NameOf(const std::map<std::string, E>& names, E value) {
  for (const auto& [name, v] : names) {
    if (v == value) return name.c_str();
  }
  return "?";
}

// `value` must be one of `names`' keys.
template <typename E>
Status GetEnum(const Ctx& ctx, const YAML::Node& map, const std::string& path, const char* key,
               const std::map<std::string, E>& names, E& out) {
  std::string text;
  RETURN_IF_ERROR(GetString(ctx, map, path, key, text, /*required=*/true));
  auto it = names.find(text);
  if (it == names.end()) {
    return ctx.Error(map[key], Child(path, key),
                     "unknown value '" + text + "' (expected one of: " + NamesOf(names) + ")");
  }
  out = it->second;
  return Status::Ok();
}

std::vector<std::string> Values(const std::vector<ListItem>& items) {
  std::vector<std::string> out;
  for (const auto& item : items) out.push_back(item.value);
  return out;
}

// Names and versions appear in routes, URLs and file names: a safe, short alphabet.
Status CheckIdentifier(const Ctx& ctx, const YAML::Node& node, const std::string& key,
                       const std::string& value, const std::string& extra) {
  bool ok = !value.empty() && value.size() <= 64;
  for (char c : value) {
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' ||
                extra.find(c) != std::string::npos);
  }
  if (!ok) {
    return ctx.Error(node, key, "'" + value + "' must be 1 to 64 letters, digits or ._-" + extra);
  }
  return Status::Ok();
}

Status ParseRegulatory(const Ctx& ctx, const YAML::Node& n, RegulatoryInfo& out) {
  const std::string path = "regulatory";
  RETURN_IF_ERROR(CheckKeys(ctx, n, path, {"marking", "class", "notified_body", "certificate"}));
  RETURN_IF_ERROR(GetEnum(ctx, n, path, "marking", kMarkings, out.marking));
  RETURN_IF_ERROR(GetString(ctx, n, path, "class", out.device_class));
  RETURN_IF_ERROR(GetString(ctx, n, path, "notified_body", out.notified_body));
  RETURN_IF_ERROR(GetString(ctx, n, path, "certificate", out.certificate));
  if (out.marking == RegulatoryMarking::kNone) {
    for (const char* key : {"class", "notified_body", "certificate"}) {
      if (Present(n[key])) {
        return ctx.Error(n[key], Child(path, key), "given for a tool with marking 'none'");
      }
    }
    return Status::Ok();
  }
  if (out.device_class.empty()) {
    return ctx.Error(Blame(n, "class"), path + ".class", "is required for a marked device");
  }
  if (std::find(kDeviceClasses.begin(), kDeviceClasses.end(), out.device_class) ==
      kDeviceClasses.end()) {
    return ctx.Error(
        n["class"], path + ".class",
        "unknown class '" + out.device_class + "' (expected one of: I, IIa, IIb, III)");
  }
  if (out.device_class != "I" && out.notified_body.empty()) {
    return ctx.Error(Blame(n, "notified_body"), path + ".notified_body",
                     "is required for class " + out.device_class);
  }
  return Status::Ok();
}

Status ParseIntendedUse(const Ctx& ctx, const YAML::Node& n, IntendedUse& out) {
  const std::string path = "intended_use";
  RETURN_IF_ERROR(
      CheckKeys(ctx, n, path, {"condition", "body_parts", "population", "setting", "user"}));
  RETURN_IF_ERROR(GetString(ctx, n, path, "condition", out.condition, /*required=*/true));
  std::vector<ListItem> parts;
  RETURN_IF_ERROR(GetNameList(ctx, n, path, "body_parts", parts, /*required=*/true));
  out.body_parts = Values(parts);
  RETURN_IF_ERROR(GetString(ctx, n, path, "population", out.population, /*required=*/true));
  RETURN_IF_ERROR(GetString(ctx, n, path, "setting", out.setting, /*required=*/true));
  RETURN_IF_ERROR(GetString(ctx, n, path, "user", out.user, /*required=*/true));
  return Status::Ok();
}

Status ParseInputs(const Ctx& ctx, const YAML::Node& n, ToolInputs& out) {
  const std::string path = "inputs";
  RETURN_IF_ERROR(
      CheckKeys(ctx, n, path, {"modalities", "body_parts", "sop_classes", "min_series"}));
  std::vector<ListItem> items;
  RETURN_IF_ERROR(GetNameList(ctx, n, path, "modalities", items, /*required=*/true));
  for (const auto& item : items) {
    const bool ok =
        item.value.size() <= 16 && std::all_of(item.value.begin(), item.value.end(), [](char c) {
          return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
        });
    if (!ok) {
      return ctx.Error(item.node, item.path,
                       "'" + item.value + "' is not a DICOM modality (e.g. CT, MR, CR, DX)");
    }
  }
  out.modalities = Values(items);
  RETURN_IF_ERROR(GetNameList(ctx, n, path, "body_parts", items));
  out.body_parts = Values(items);
  RETURN_IF_ERROR(GetNameList(ctx, n, path, "sop_classes", items));
  for (const auto& item : items) {
    const bool ok = item.value.size() <= 64 && item.value.front() != '.' &&
                    item.value.back() != '.' &&
                    std::all_of(item.value.begin(), item.value.end(),
                                [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
    if (!ok) return ctx.Error(item.node, item.path, "'" + item.value + "' is not a DICOM UID");
  }
  out.sop_classes = Values(items);
  const YAML::Node min = n["min_series"];
  if (Present(min)) {
    const std::string min_path = path + ".min_series";
    RETURN_IF_ERROR(CheckKeys(ctx, min, min_path, {"slices", "slice_thickness_max_mm"}));
    int64_t slices = 0;
    RETURN_IF_ERROR(GetWholeNumber(ctx, min, min_path, "slices", 1, 100000, slices));
    out.min_series.slices = static_cast<int>(slices);
    RETURN_IF_ERROR(GetNumber(ctx, min, min_path, "slice_thickness_max_mm", 0.01, 1000,
                              out.min_series.slice_thickness_max_mm));
  }
  return Status::Ok();
}

Status ParseOutputs(const Ctx& ctx, const YAML::Node& root, std::vector<ToolOutput>& out) {
  std::vector<ListItem> items;
  RETURN_IF_ERROR(GetNameList(ctx, root, "", "outputs", items, /*required=*/true));
  for (const auto& item : items) {
    auto it = kOutputs.find(item.value);
    if (it == kOutputs.end()) {
      return ctx.Error(
          item.node, item.path,
          "unknown output '" + item.value + "' (expected one of: " + NamesOf(kOutputs) + ")");
    }
    if (std::find(out.begin(), out.end(), it->second) != out.end()) {
      return ctx.Error(item.node, item.path, "'" + item.value + "' given twice");
    }
    out.push_back(it->second);
  }
  return Status::Ok();
}

Status CheckAeTitle(const Ctx& ctx, const YAML::Node& node, const std::string& key,
                    const std::string& ae) {
  const bool ok = !ae.empty() && ae.size() <= 16 && std::all_of(ae.begin(), ae.end(), [](char c) {
    return c != '\\' && static_cast<unsigned char>(c) >= 0x20 &&
           static_cast<unsigned char>(c) <= 0x7e;
  });
  if (!ok) {
    return ctx.Error(node, key,
                     "an AE title has 1 to 16 characters, no backslashes or control characters");
  }
  return Status::Ok();
}

// The endpoint's keys depend on the protocol: each protocol takes its own and no other.
Status ParseEndpoint(const Ctx& ctx, const YAML::Node& root, ToolProtocol protocol,
                     ToolEndpoint& out) {
  const std::string path = "endpoint";
  const YAML::Node n = root["endpoint"];
  // A pull-model tool is reached by nobody: its performer comes to Conduit's worklist.
  if (!Present(n) && protocol == ToolProtocol::kAiwI) return Status::Ok();
  if (!Present(n)) return ctx.Error(Blame(root, "endpoint"), path, "is required");
  switch (protocol) {
    case ToolProtocol::kDimse: {
      RETURN_IF_ERROR(CheckKeys(ctx, n, path, {"ae_title", "host", "port"}));
      RETURN_IF_ERROR(GetString(ctx, n, path, "ae_title", out.ae_title, /*required=*/true));
      RETURN_IF_ERROR(CheckAeTitle(ctx, n["ae_title"], path + ".ae_title", out.ae_title));
      RETURN_IF_ERROR(GetString(ctx, n, path, "host", out.host, /*required=*/true));
      int64_t port = 0;
      RETURN_IF_ERROR(GetWholeNumber(ctx, n, path, "port", 1, 65535, port, /*required=*/true));
      out.port = static_cast<int>(port);
      return Status::Ok();
    }
    case ToolProtocol::kDicomweb:
    case ToolProtocol::kAiwI: {
      RETURN_IF_ERROR(CheckKeys(ctx, n, path, {"url"}));
      // ups-rs: the performer's own service, for the record; Conduit does not call it.
      RETURN_IF_ERROR(GetString(ctx, n, path, "url", out.url,
                                /*required=*/protocol == ToolProtocol::kDicomweb));
      if (out.url.empty()) return Status::Ok();
      if (out.url.rfind("https://", 0) != 0 && out.url.rfind("http://", 0) != 0) {
        return ctx.Error(n["url"], path + ".url", "expected an http:// or https:// URL");
      }
      if (Result<HttpUrl> url = ParseHttpUrl(out.url); !url.ok()) {
        return ctx.Error(n["url"], path + ".url", url.status().message());
      }
      return Status::Ok();
    }
    case ToolProtocol::kExecutable: {
      RETURN_IF_ERROR(CheckKeys(ctx, n, path, {"command"}));
      std::vector<ListItem> argv;
      RETURN_IF_ERROR(GetNameList(ctx, n, path, "command", argv, /*required=*/true));
      out.command = Values(argv);
      return Status::Ok();
    }
  }
  return Status::Ok();
}

Status ParseSupport(const Ctx& ctx, const YAML::Node& root, SupportContact& out) {
  const std::string path = "support";
  const YAML::Node n = root["support"];
  if (!Present(n)) return ctx.Error(Blame(root, "support"), path, "is required");
  RETURN_IF_ERROR(CheckKeys(ctx, n, path, {"name", "email", "phone"}));
  RETURN_IF_ERROR(GetString(ctx, n, path, "name", out.name, /*required=*/true));
  RETURN_IF_ERROR(GetString(ctx, n, path, "email", out.email));
  RETURN_IF_ERROR(GetString(ctx, n, path, "phone", out.phone));
  if (out.email.empty() && out.phone.empty()) {
    return ctx.Error(n, path, "needs an email or a phone number");
  }
  if (!out.email.empty()) {
    const auto at = out.email.find('@');
    if (at == std::string::npos || at == 0 || at + 1 == out.email.size() ||
        out.email.find(' ') != std::string::npos) {
      return ctx.Error(n["email"], path + ".email", "'" + out.email + "' is not an email address");
    }
  }
  return Status::Ok();
}

// A mapping section that must be present.
Status Section(const Ctx& ctx, const YAML::Node& root, const char* key) {
  if (!Present(root[key])) return ctx.Error(Blame(root, key), key, "is required");
  return Status::Ok();
}

Status ParseRoot(const Ctx& ctx, const YAML::Node& root, ToolManifest& m) {
  RETURN_IF_ERROR(
      CheckKeys(ctx, root, "",
                {"name", "vendor", "version", "description", "regulatory", "intended_use", "inputs",
                 "outputs", "protocol", "endpoint", "hosting_region", "category", "retain",
                 "deidentify", "expected_turnaround", "timeout", "support", "priors"}));
  RETURN_IF_ERROR(GetString(ctx, root, "", "name", m.name, /*required=*/true));
  RETURN_IF_ERROR(CheckIdentifier(ctx, root["name"], "name", m.name, ""));
  RETURN_IF_ERROR(GetString(ctx, root, "", "vendor", m.vendor, /*required=*/true));
  RETURN_IF_ERROR(GetString(ctx, root, "", "version", m.version, /*required=*/true));
  RETURN_IF_ERROR(CheckIdentifier(ctx, root["version"], "version", m.version, "+"));
  RETURN_IF_ERROR(GetString(ctx, root, "", "description", m.description));

  RETURN_IF_ERROR(Section(ctx, root, "regulatory"));
  RETURN_IF_ERROR(ParseRegulatory(ctx, root["regulatory"], m.regulatory));
  RETURN_IF_ERROR(Section(ctx, root, "intended_use"));
  RETURN_IF_ERROR(ParseIntendedUse(ctx, root["intended_use"], m.intended_use));
  RETURN_IF_ERROR(Section(ctx, root, "inputs"));
  RETURN_IF_ERROR(ParseInputs(ctx, root["inputs"], m.inputs));
  RETURN_IF_ERROR(ParseOutputs(ctx, root, m.outputs));

  RETURN_IF_ERROR(GetEnum(ctx, root, "", "protocol", kProtocols, m.protocol));
  RETURN_IF_ERROR(ParseEndpoint(ctx, root, m.protocol, m.endpoint));
  RETURN_IF_ERROR(GetString(ctx, root, "", "hosting_region", m.hosting_region));
  if (m.protocol != ToolProtocol::kExecutable && m.hosting_region.empty()) {
    return ctx.Error(Blame(root, "hosting_region"), "hosting_region",
                     "is required: a " + std::string(ToolProtocolName(m.protocol)) +
                         " tool runs outside the trust");
  }
  RETURN_IF_ERROR(GetString(ctx, root, "", "category", m.category));
  std::vector<ListItem> retain;
  RETURN_IF_ERROR(GetNameList(ctx, root, "", "retain", retain));
  m.retain = Values(retain);
  RETURN_IF_ERROR(GetBool(ctx, root, "", "deidentify", m.deidentify));
  if (m.protocol != ToolProtocol::kExecutable && Present(root["deidentify"]) && !m.deidentify) {
    return ctx.Error(root["deidentify"], "deidentify",
                     "a tool outside the trust is always de-identified; remove this key or set "
                     "it to true");
  }
  if (m.protocol != ToolProtocol::kExecutable) m.deidentify = true;

  RETURN_IF_ERROR(GetDuration(ctx, root, "", "expected_turnaround", m.expected_turnaround,
                              /*required=*/true));
  if (m.expected_turnaround.count() <= 0) {
    return ctx.Error(root["expected_turnaround"], "expected_turnaround", "must be positive");
  }
  if (Present(root["timeout"])) {
    std::chrono::milliseconds timeout{0};
    RETURN_IF_ERROR(GetDuration(ctx, root, "", "timeout", timeout));
    if (timeout < m.expected_turnaround) {
      return ctx.Error(root["timeout"], "timeout", "is shorter than expected_turnaround");
    }
    m.timeout = timeout;
  }
  RETURN_IF_ERROR(ParsePriorsSection(ctx, root, "", m.priors));
  return ParseSupport(ctx, root, m.support);
}

json Strings(const std::vector<std::string>& values) { return json(values); }

}  // namespace

const char* ToolProtocolName(ToolProtocol protocol) {
  // "aiw-i" is read as a synonym of "ups-rs".
  if (protocol == ToolProtocol::kAiwI) return "ups-rs";
  return NameOf(kProtocols, protocol);
}
const char* RegulatoryMarkingName(RegulatoryMarking marking) { return NameOf(kMarkings, marking); }
const char* ToolOutputName(ToolOutput output) { return NameOf(kOutputs, output); }

Result<ToolManifest> ParseToolManifest(const std::string& yaml, const std::string& source) {
  Ctx ctx{source};
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::ParserException& e) {
    return InvalidArgument(source + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  if (!root.IsDefined() || root.IsNull()) {
    return InvalidArgument(source +
                           ": the manifest is empty (name, vendor, version, ... required)");
  }
  ToolManifest manifest;
  try {
    RETURN_IF_ERROR(ParseRoot(ctx, root, manifest));
  } catch (const YAML::Exception& e) {
    return InvalidArgument(source + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  manifest.hash = Sha256Hex(yaml);
  return manifest;
}

Result<ToolManifest> LoadToolManifestFile(const std::filesystem::path& path) {
  ASSIGN_OR_RETURN(std::string text, ReadTextFile(path, "tool manifest"));
  return ParseToolManifest(text, path.string());
}

std::string ToolManifestJson(const ToolManifest& m) {
  json outputs = json::array();
  for (ToolOutput o : m.outputs) outputs.push_back(ToolOutputName(o));
  json endpoint = json::object();
  switch (m.protocol) {
    case ToolProtocol::kDimse:
      endpoint = {
          {"ae_title", m.endpoint.ae_title}, {"host", m.endpoint.host}, {"port", m.endpoint.port}};
      break;
    case ToolProtocol::kDicomweb:
    case ToolProtocol::kAiwI:
      endpoint = {{"url", m.endpoint.url}};
      break;
    case ToolProtocol::kExecutable:
      endpoint = {{"command", Strings(m.endpoint.command)}};
      break;
  }
  // nlohmann's json objects keep their keys sorted: one text per manifest.
  json j = {
      {"name", m.name},
      {"vendor", m.vendor},
      {"version", m.version},
      {"description", m.description},
      {"regulatory",
       {{"marking", RegulatoryMarkingName(m.regulatory.marking)},
        {"class", m.regulatory.device_class},
        {"notified_body", m.regulatory.notified_body},
        {"certificate", m.regulatory.certificate}}},
      {"intended_use",
       {{"condition", m.intended_use.condition},
        {"body_parts", Strings(m.intended_use.body_parts)},
        {"population", m.intended_use.population},
        {"setting", m.intended_use.setting},
        {"user", m.intended_use.user}}},
      {"inputs",
       {{"modalities", Strings(m.inputs.modalities)},
        {"body_parts", Strings(m.inputs.body_parts)},
        {"sop_classes", Strings(m.inputs.sop_classes)},
        {"min_series",
         {{"slices", m.inputs.min_series.slices},
          {"slice_thickness_max_mm", m.inputs.min_series.slice_thickness_max_mm}}}}},
      {"outputs", outputs},
      {"protocol", ToolProtocolName(m.protocol)},
      {"endpoint", endpoint},
      {"hosting_region", m.hosting_region},
      {"category", m.category},
      {"retain", Strings(m.retain)},
      {"deidentify", m.deidentify},
      {"expected_turnaround_ms", m.expected_turnaround.count()},
      {"timeout_ms", m.timeout ? json(m.timeout->count()) : json(nullptr)},
      {"priors",
       {{"count", m.priors.count},
        {"max_age_ms", m.priors.max_age.count()},
        {"comparable",
         {{"same_modality", m.priors.same_modality},
          {"same_body_part", m.priors.same_body_part},
          {"study_description", m.priors.study_description}}},
        {"time_limit_ms", m.priors.time_limit.count()},
        {"on_missing", PriorsOnMissingName(m.priors.on_missing)}}},
      {"support",
       {{"name", m.support.name}, {"email", m.support.email}, {"phone", m.support.phone}}},
      {"hash", m.hash},
  };
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

namespace {

// An enumeration's value from its canonical name; throws std::out_of_range for another.
template <typename E>
E EnumOf(const std::map<std::string, E>& names, const json& value) {
  const std::string name = value.get<std::string>();
  auto it = names.find(name);
  if (it == names.end()) throw std::out_of_range("unknown value '" + name + "'");
  return it->second;
}

ToolManifest ManifestOfJson(const json& j) {
  ToolManifest m;
  m.name = j.at("name").get<std::string>();
  m.vendor = j.at("vendor").get<std::string>();
  m.version = j.at("version").get<std::string>();
  m.description = j.at("description").get<std::string>();
  const json& reg = j.at("regulatory");
  m.regulatory.marking = EnumOf(kMarkings, reg.at("marking"));
  m.regulatory.device_class = reg.at("class").get<std::string>();
  m.regulatory.notified_body = reg.at("notified_body").get<std::string>();
  m.regulatory.certificate = reg.at("certificate").get<std::string>();
  const json& use = j.at("intended_use");
  m.intended_use.condition = use.at("condition").get<std::string>();
  m.intended_use.body_parts = use.at("body_parts").get<std::vector<std::string>>();
  m.intended_use.population = use.at("population").get<std::string>();
  m.intended_use.setting = use.at("setting").get<std::string>();
  m.intended_use.user = use.at("user").get<std::string>();
  const json& in = j.at("inputs");
  m.inputs.modalities = in.at("modalities").get<std::vector<std::string>>();
  m.inputs.body_parts = in.at("body_parts").get<std::vector<std::string>>();
  m.inputs.sop_classes = in.at("sop_classes").get<std::vector<std::string>>();
  m.inputs.min_series.slices = in.at("min_series").at("slices").get<int>();
  m.inputs.min_series.slice_thickness_max_mm =
      in.at("min_series").at("slice_thickness_max_mm").get<double>();
  for (const json& o : j.at("outputs")) m.outputs.push_back(EnumOf(kOutputs, o));
  m.protocol = EnumOf(kProtocols, j.at("protocol"));
  const json& endpoint = j.at("endpoint");
  switch (m.protocol) {
    case ToolProtocol::kDimse:
      m.endpoint.ae_title = endpoint.at("ae_title").get<std::string>();
      m.endpoint.host = endpoint.at("host").get<std::string>();
      m.endpoint.port = endpoint.at("port").get<int>();
      break;
    case ToolProtocol::kDicomweb:
    case ToolProtocol::kAiwI:
      m.endpoint.url = endpoint.at("url").get<std::string>();
      break;
    case ToolProtocol::kExecutable:
      m.endpoint.command = endpoint.at("command").get<std::vector<std::string>>();
      break;
  }
  m.hosting_region = j.at("hosting_region").get<std::string>();
  m.category = j.at("category").get<std::string>();
  m.retain = j.at("retain").get<std::vector<std::string>>();
  m.deidentify = j.at("deidentify").get<bool>();
  m.expected_turnaround = std::chrono::milliseconds(j.at("expected_turnaround_ms").get<int64_t>());
  if (!j.at("timeout_ms").is_null()) {
    m.timeout = std::chrono::milliseconds(j.at("timeout_ms").get<int64_t>());
  }
  const json& priors = j.at("priors");
  m.priors.count = priors.at("count").get<int>();
  m.priors.max_age = std::chrono::milliseconds(priors.at("max_age_ms").get<int64_t>());
  const json& comparable = priors.at("comparable");
  m.priors.same_modality = comparable.at("same_modality").get<bool>();
  m.priors.same_body_part = comparable.at("same_body_part").get<bool>();
  m.priors.study_description = comparable.at("study_description").get<std::string>();
  m.priors.time_limit = std::chrono::milliseconds(priors.at("time_limit_ms").get<int64_t>());
  const std::string on_missing = priors.at("on_missing").get<std::string>();
  if (on_missing != PriorsOnMissingName(PriorsOnMissing::kProceed) &&
      on_missing != PriorsOnMissingName(PriorsOnMissing::kWait)) {
    throw std::out_of_range("priors.on_missing: unknown value '" + on_missing + "'");
  }
  m.priors.on_missing = on_missing == PriorsOnMissingName(PriorsOnMissing::kWait)
                            ? PriorsOnMissing::kWait
                            : PriorsOnMissing::kProceed;
  const json& support = j.at("support");
  m.support.name = support.at("name").get<std::string>();
  m.support.email = support.at("email").get<std::string>();
  m.support.phone = support.at("phone").get<std::string>();
  m.hash = j.at("hash").get<std::string>();
  return m;
}

}  // namespace

Result<ToolManifest> ToolManifestFromJson(const std::string& canonical) {
  try {
    return ManifestOfJson(json::parse(canonical));
  } catch (const std::exception& e) {
    return Internal(std::string("registered manifest is not in canonical form: ") + e.what());
  }
}

Result<ToolConfig> ToToolConfig(const ToolManifest& m) {
  ToolConfig tool;
  tool.name = m.name;
  switch (m.protocol) {
    case ToolProtocol::kExecutable:
      tool.kind = ToolKind::kExecutable;
      tool.command = m.endpoint.command;
      break;
    case ToolProtocol::kDimse:
      tool.kind = ToolKind::kDimse;
      tool.ae_title = AeTitle(m.endpoint.ae_title);
      tool.host = m.endpoint.host;
      tool.port = m.endpoint.port;
      break;
    case ToolProtocol::kDicomweb:
      tool.kind = ToolKind::kDicomweb;
      tool.url = m.endpoint.url;
      while (!tool.url.empty() && tool.url.back() == '/') tool.url.pop_back();
      break;
    case ToolProtocol::kAiwI:
      // The performer's token and the workitems' priority are the trust's (`worklist:`).
      tool.kind = ToolKind::kWorklist;
      break;
  }
  tool.timeout = m.timeout ? *m.timeout : 2 * m.expected_turnaround;
  tool.expected_turnaround = m.expected_turnaround;
  tool.hosting_region = m.hosting_region;
  tool.category = m.category;
  tool.retain = m.retain;
  tool.deidentify = m.deidentify;
  tool.priors = m.priors;
  return tool;
}

Status CheckManifestAgainstPolicy(const Policy& policy, const ToolManifest& m) {
  // What the policy reads of a tool: whether it is outside the trust (IsRemote), its region,
  // category and retain options. Every protocol but executable reaches outside the trust.
  Config config;
  ToolConfig tool;
  tool.name = m.name;
  tool.kind = m.protocol == ToolProtocol::kExecutable ? ToolKind::kExecutable
              : m.protocol == ToolProtocol::kDicomweb ? ToolKind::kDicomweb
              : m.protocol == ToolProtocol::kAiwI     ? ToolKind::kWorklist
                                                      : ToolKind::kDimse;
  tool.hosting_region = m.hosting_region;
  tool.category = m.category;
  tool.retain = m.retain;
  tool.deidentify = m.deidentify;
  config.tools.push_back(std::move(tool));
  return CheckToolsAgainstPolicy(policy, config);
}

Result<Policy> PolicyOfConfig(const Config& config) {
  if (config.governance.policy_file.empty()) return BuiltInPolicy();
  return LoadPolicyFile(config.governance.policy_file);
}

Status ResolveToolManifests(Config& config, const std::string& source) {
  bool any = false;
  for (ToolConfig& tool : config.tools) {
    if (tool.manifest_file.empty()) continue;
    any = true;
    ASSIGN_OR_RETURN(ToolManifest manifest, LoadToolManifestFile(tool.manifest_file));
    Result<ToolConfig> resolved = ToToolConfig(manifest);
    if (!resolved.ok()) return resolved.status().WithContext(source);
    if (!tool.name.empty()) resolved->name = tool.name;
    resolved->manifest_file = tool.manifest_file;
    // The breaker is the trust's choice of how long to spare a failing tool.
    resolved->circuit_breaker = tool.circuit_breaker;
    // The trust's own settings for reaching a DICOMweb tool stay with the config entry.
    if (tool.kind == ToolKind::kDicomweb) {
      if (resolved->kind != ToolKind::kDicomweb) {
        return InvalidArgument(source + ": tool '" + resolved->name + "' has a dicomweb section " +
                               "but its manifest " + tool.manifest_file.string() +
                               " says protocol " + ToolProtocolName(manifest.protocol));
      }
      resolved->auth_token_file = tool.auth_token_file;
      resolved->chunk_bytes = tool.chunk_bytes;
      resolved->poll_interval = tool.poll_interval;
      resolved->tls = tool.tls;
      if (!resolved->tls.empty() && resolved->url.rfind("https://", 0) != 0) {
        return InvalidArgument(source + ": tool '" + resolved->name +
                               "': dicomweb.tls applies to an https url, and its manifest " +
                               tool.manifest_file.string() + " gives " + resolved->url);
      }
    }
    // And a dimse tool's TLS: the trust's CAs and client certificate.
    if (resolved->kind == ToolKind::kDimse) {
      resolved->tls = tool.tls;
    } else if (tool.kind != ToolKind::kDicomweb && tool.tls.enabled) {
      return InvalidArgument(source + ": tool '" + resolved->name + "' has a tls section but its " +
                             "manifest " + tool.manifest_file.string() + " says protocol " +
                             ToolProtocolName(manifest.protocol) + " (tls is for dimse tools)");
    }
    // So do a worklist tool's: the token its performer presents and its workitems' priority.
    if (tool.kind == ToolKind::kWorklist && resolved->kind != ToolKind::kWorklist) {
      return InvalidArgument(source + ": tool '" + resolved->name + "' has a worklist section " +
                             "but its manifest " + tool.manifest_file.string() + " says protocol " +
                             ToolProtocolName(manifest.protocol));
    }
    if (resolved->kind == ToolKind::kWorklist) {
      if (tool.kind != ToolKind::kWorklist) {
        return InvalidArgument(source + ": tool '" + resolved->name + "' (manifest " +
                               tool.manifest_file.string() +
                               ", protocol ups-rs) needs a worklist section with the "
                               "auth_token_file its performer presents");
      }
      resolved->auth_token_file = tool.auth_token_file;
      resolved->priority = tool.priority;
    }
    tool = std::move(resolved).value();
  }
  if (!any) return Status::Ok();
  return ValidateConfig(config, source);
}

}  // namespace conduit
