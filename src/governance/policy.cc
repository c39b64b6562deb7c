#include "governance/policy.h"

#include <openssl/evp.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <set>
#include <sstream>

#include "core/sha256.h"
#include "core/text_file.h"
#include "core/yaml_fields.h"

namespace conduit {
namespace {

constexpr std::string_view kBuiltInPolicyText =
    R"(# Conduit's built-in national default policy (`conduit policy show` prints it).
# The Basic Application Level Confidentiality Profile (DICOM PS3.15 Annex E) with no options;
# AI tools outside the trust may be hosted in the UK only; instances with burned-in text, and
# ultrasound, secondary capture and scanned documents, are refused; no tool category may ask
# for more; retention at the national defaults. docs/policy.md describes every key.
policy: {name: "built-in national default", version: "1"}
deidentification:
  options: []
  safe_private: []
  date_shift_days: {min: 1, max: 365}
burned_in_text:
  refuse_burned_in_annotation: true
  allow: []
  clean_regions: []
tool_categories: {}
hosting: {allowed_regions: [UK]}
retention: {spool: 30d, crosswalk: 3650d, audit: 3650d}
)";

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string Join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += sep;
    out += item;
  }
  return out;
}

std::string AllOptionNames() {
  std::vector<std::string> names;
  for (int i = 0; i < kProfileOptionCount; ++i) {
    names.emplace_back(OptionName(static_cast<ProfileOption>(i)));
  }
  return Join(names, ", ");
}

using Ctx = yaml::Context;
using yaml::Blame;
using yaml::CheckKeys;
using yaml::Child;
using yaml::GetBool;
using yaml::GetString;
using yaml::Present;

// A whole number written in decimal or as 0x followed by hex digits (DICOM tags usually are).
std::optional<int64_t> ParseWholeNumber(std::string_view text) {
  bool negative = false;
  if (!text.empty() && (text[0] == '-' || text[0] == '+')) {
    negative = text[0] == '-';
    text.remove_prefix(1);
  }
  int base = 10;
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    base = 16;
    text.remove_prefix(2);
  }
  if (text.empty()) return std::nullopt;
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, base);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return negative ? -value : value;
}

Status GetIntFrom(const Ctx& ctx, const YAML::Node& n, const std::string& key, int64_t lo,
                  int64_t hi, int64_t& out) {
  std::optional<int64_t> v;
  if (n.IsScalar()) v = ParseWholeNumber(n.Scalar());
  if (!v) return ctx.Error(n, key, "expected a whole number");
  if (*v < lo || *v > hi) {
    return ctx.Error(n, key,
                     "out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
  out = *v;
  return Status::Ok();
}

Status GetInt(const Ctx& ctx, const YAML::Node& map, const std::string& path, const char* key,
              bool required, int64_t lo, int64_t hi, int64_t& out) {
  const YAML::Node n = map[key];
  if (!Present(n)) {
    if (required) return ctx.Error(Blame(map, key), Child(path, key), "is required");
    return Status::Ok();
  }
  return GetIntFrom(ctx, n, Child(path, key), lo, hi, out);
}

// A list of scalars; absent or null is an empty list.
Status GetStringList(const Ctx& ctx, const YAML::Node& map, const std::string& path,
                     const char* key, std::vector<std::pair<std::string, YAML::Node>>& out) {
  const YAML::Node n = map[key];
  out.clear();
  if (!Present(n)) return Status::Ok();
  if (!n.IsSequence()) return ctx.Error(n, Child(path, key), "expected a list");
  for (size_t i = 0; i < n.size(); ++i) {
    const YAML::Node item = n[i];
    const std::string item_path = Child(path, key) + "[" + std::to_string(i) + "]";
    if (!item.IsScalar() || item.Scalar().empty()) {
      return ctx.Error(item, item_path, "expected a name");
    }
    out.emplace_back(item.Scalar(), item);
  }
  return Status::Ok();
}

Status GetOptions(const Ctx& ctx, const YAML::Node& map, const std::string& path, const char* key,
                  ProfileOptions& out) {
  std::vector<std::pair<std::string, YAML::Node>> names;
  RETURN_IF_ERROR(GetStringList(ctx, map, path, key, names));
  for (size_t i = 0; i < names.size(); ++i) {
    auto option = ParseOptionName(names[i].first);
    if (!option) {
      return ctx.Error(names[i].second, Child(path, key) + "[" + std::to_string(i) + "]",
                       "unknown profile option '" + names[i].first +
                           "' (expected one of: " + AllOptionNames() + ")");
    }
    out.Add(*option);
  }
  return Status::Ok();
}

// "<n>d", n >= 1.
Status GetDays(const Ctx& ctx, const YAML::Node& map, const std::string& path, const char* key,
               std::chrono::days& out) {
  const YAML::Node n = map[key];
  if (!Present(n)) return Status::Ok();
  const std::string key_path = Child(path, key);
  if (!n.IsScalar()) return ctx.Error(n, key_path, "expected a number of days such as 30d");
  const std::string text = n.Scalar();
  int64_t days = 0;
  const bool digits = text.size() >= 2 && text.back() == 'd' &&
                      std::all_of(text.begin(), text.end() - 1, [](char c) {
                        return std::isdigit(static_cast<unsigned char>(c));
                      });
  if (!digits) {
    return ctx.Error(n, key_path, "'" + text + "' is not a number of days such as 30d");
  }
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size() - 1, days);
  if (ec != std::errc() || days < 1 || days > 100000) {
    return ctx.Error(n, key_path, "expected 1d to 100000d");
  }
  out = std::chrono::days(days);
  return Status::Ok();
}

Status ParseHeader(const Ctx& ctx, const YAML::Node& root, Policy& out) {
  const YAML::Node n = root["policy"];
  if (!Present(n)) return ctx.Error(Blame(root, "policy"), "policy", "is required (name, version)");
  RETURN_IF_ERROR(CheckKeys(ctx, n, "policy", {"name", "version"}));
  RETURN_IF_ERROR(GetString(ctx, n, "policy", "name", out.name, true));
  RETURN_IF_ERROR(GetString(ctx, n, "policy", "version", out.version, true));
  return Status::Ok();
}

Status ParseSafePrivate(const Ctx& ctx, const YAML::Node& n, const std::string& path,
                        SafePrivateAttribute& out) {
  RETURN_IF_ERROR(CheckKeys(ctx, n, path, {"group", "creator", "element"}));
  int64_t group = 0;
  RETURN_IF_ERROR(GetInt(ctx, n, path, "group", true, 0x0009, 0xFFFF, group));
  if (group % 2 == 0) {
    return ctx.Error(n["group"], path + ".group", "must be odd (a private group)");
  }
  RETURN_IF_ERROR(GetString(ctx, n, path, "creator", out.creator, true));
  int64_t element = 0;
  const YAML::Node e = n["element"];
  if (!Present(e)) return ctx.Error(Blame(n, "element"), path + ".element", "is required");
  std::optional<int64_t> v;
  if (e.IsScalar()) v = ParseWholeNumber(e.Scalar());
  if (!v) return ctx.Error(e, path + ".element", "expected a whole number");
  if (*v < 0x00 || *v > 0xFF) {
    return ctx.Error(e, path + ".element",
                     "expected the element's low byte, 0x00 to 0xFF (e.g. 0x08 for (gggg,xx08))");
  }
  element = *v;
  out.group = static_cast<uint16_t>(group);
  out.element = static_cast<uint8_t>(element);
  return Status::Ok();
}

Status ParseDeidentification(const Ctx& ctx, const YAML::Node& n, DeidSettings& out) {
  const std::string path = "deidentification";
  RETURN_IF_ERROR(CheckKeys(ctx, n, path, {"options", "safe_private", "date_shift_days"}));
  RETURN_IF_ERROR(GetOptions(ctx, n, path, "options", out.options));
  if (out.options.Has(ProfileOption::kRetainLongitudinalFullDates) &&
      out.options.Has(ProfileOption::kRetainLongitudinalModifiedDates)) {
    return ctx.Error(n["options"], path + ".options",
                     "retain_long_full_dates and retain_long_modified_dates exclude each other");
  }
  const YAML::Node safe = n["safe_private"];
  if (Present(safe)) {
    if (!safe.IsSequence()) return ctx.Error(safe, path + ".safe_private", "expected a list");
    for (size_t i = 0; i < safe.size(); ++i) {
      SafePrivateAttribute attribute;
      RETURN_IF_ERROR(ParseSafePrivate(
          ctx, safe[i], path + ".safe_private[" + std::to_string(i) + "]", attribute));
      out.safe_private.push_back(std::move(attribute));
    }
  }
  const YAML::Node shift = n["date_shift_days"];
  if (Present(shift)) {
    const std::string shift_path = path + ".date_shift_days";
    RETURN_IF_ERROR(CheckKeys(ctx, shift, shift_path, {"min", "max"}));
    int64_t lo = out.date_shift_min_days;
    int64_t hi = out.date_shift_max_days;
    RETURN_IF_ERROR(GetInt(ctx, shift, shift_path, "min", false, INT32_MIN, INT32_MAX, lo));
    RETURN_IF_ERROR(GetInt(ctx, shift, shift_path, "max", false, INT32_MIN, INT32_MAX, hi));
    if (lo < 1) {
      return ctx.Error(Blame(shift, "min"), shift_path + ".min",
                       "must be at least 1 (a shift of 0 days would keep the real dates)");
    }
    if (hi > 36500) return ctx.Error(Blame(shift, "max"), shift_path + ".max", "at most 36500");
    if (lo > hi) {
      return ctx.Error(
          shift, shift_path,
          "min (" + std::to_string(lo) + ") is greater than max (" + std::to_string(hi) + ")");
    }
    out.date_shift_min_days = static_cast<int>(lo);
    out.date_shift_max_days = static_cast<int>(hi);
  }
  return Status::Ok();
}

Status ParseRegion(const Ctx& ctx, const YAML::Node& n, const std::string& path, PixelRect& out) {
  if (!n.IsSequence() || n.size() != 4) {
    return ctx.Error(n, path, "expected [x, y, width, height]");
  }
  int64_t v[4] = {0, 0, 0, 0};
  static const char* kNames[4] = {"x", "y", "width", "height"};
  for (size_t i = 0; i < 4; ++i) {
    RETURN_IF_ERROR(GetIntFrom(ctx, n[i], path, INT32_MIN, INT32_MAX, v[i]));
    if (i < 2 && v[i] < 0) return ctx.Error(n[i], path, std::string(kNames[i]) + " is negative");
    if (i >= 2 && v[i] < 1) {
      return ctx.Error(n[i], path, std::string(kNames[i]) + " must be at least 1");
    }
  }
  out = PixelRect{static_cast<int>(v[0]), static_cast<int>(v[1]), static_cast<int>(v[2]),
                  static_cast<int>(v[3])};
  return Status::Ok();
}

Status ParseCleaningRule(const Ctx& ctx, const YAML::Node& n, const std::string& path,
                         PixelCleaningRule& out) {
  RETURN_IF_ERROR(CheckKeys(ctx, n, path, {"modality", "manufacturer", "model", "regions"}));
  RETURN_IF_ERROR(GetString(ctx, n, path, "modality", out.modality));
  RETURN_IF_ERROR(GetString(ctx, n, path, "manufacturer", out.manufacturer));
  RETURN_IF_ERROR(GetString(ctx, n, path, "model", out.model));
  const YAML::Node regions = n["regions"];
  if (!Present(regions)) {
    return ctx.Error(Blame(n, "regions"), path + ".regions",
                     "is required: [[x, y, width, height]]");
  }
  if (!regions.IsSequence()) {
    return ctx.Error(regions, path + ".regions", "expected a list of [x, y, width, height]");
  }
  if (regions.size() == 0) {
    return ctx.Error(regions, path + ".regions", "is empty: a rule must blank at least one region");
  }
  for (size_t i = 0; i < regions.size(); ++i) {
    PixelRect rect;
    RETURN_IF_ERROR(
        ParseRegion(ctx, regions[i], path + ".regions[" + std::to_string(i) + "]", rect));
    out.regions.push_back(rect);
  }
  return Status::Ok();
}

Status ParseBurnedInText(const Ctx& ctx, const YAML::Node& n, BurnedInTextRules& out) {
  const std::string path = "burned_in_text";
  RETURN_IF_ERROR(
      CheckKeys(ctx, n, path, {"refuse_burned_in_annotation", "allow", "clean_regions"}));
  RETURN_IF_ERROR(
      GetBool(ctx, n, path, "refuse_burned_in_annotation", out.refuse_burned_in_annotation));
  std::vector<std::pair<std::string, YAML::Node>> kinds;
  RETURN_IF_ERROR(GetStringList(ctx, n, path, "allow", kinds));
  for (size_t i = 0; i < kinds.size(); ++i) {
    const std::string& kind = kinds[i].first;
    if (kind == "ultrasound") {
      out.allow_ultrasound = true;
    } else if (kind == "secondary_capture") {
      out.allow_secondary_capture = true;
    } else if (kind == "scanned_documents") {
      out.allow_scanned_documents = true;
    } else {
      return ctx.Error(kinds[i].second, path + ".allow[" + std::to_string(i) + "]",
                       "unknown kind '" + kind +
                           "' (expected ultrasound, secondary_capture or scanned_documents)");
    }
  }
  const YAML::Node rules = n["clean_regions"];
  if (Present(rules)) {
    if (!rules.IsSequence()) return ctx.Error(rules, path + ".clean_regions", "expected a list");
    for (size_t i = 0; i < rules.size(); ++i) {
      PixelCleaningRule rule;
      RETURN_IF_ERROR(ParseCleaningRule(ctx, rules[i],
                                        path + ".clean_regions[" + std::to_string(i) + "]", rule));
      out.cleaning.push_back(std::move(rule));
    }
  }
  return Status::Ok();
}

Status ParseToolCategories(const Ctx& ctx, const YAML::Node& n,
                           std::map<std::string, ProfileOptions>& out) {
  if (!n.IsMap()) return ctx.Error(n, "tool_categories", "expected category: [option, ...]");
  std::set<std::string> seen;
  for (const auto& kv : n) {
    if (!kv.first.IsScalar() || kv.first.Scalar().empty()) {
      return ctx.Error(kv.first, "tool_categories", "expected a category name");
    }
    const std::string category = kv.first.Scalar();
    if (!seen.insert(category).second) {
      return ctx.Error(kv.first, "tool_categories." + category, "given twice");
    }
    ProfileOptions options;
    RETURN_IF_ERROR(GetOptions(ctx, n, "tool_categories", category.c_str(), options));
    out[category] = options;
  }
  return Status::Ok();
}

Status ParseHosting(const Ctx& ctx, const YAML::Node& n, std::vector<std::string>& out) {
  RETURN_IF_ERROR(CheckKeys(ctx, n, "hosting", {"allowed_regions"}));
  std::vector<std::pair<std::string, YAML::Node>> regions;
  RETURN_IF_ERROR(GetStringList(ctx, n, "hosting", "allowed_regions", regions));
  out.clear();
  for (const auto& region : regions) out.push_back(region.first);
  return Status::Ok();
}

Status ParseRetention(const Ctx& ctx, const YAML::Node& n, RetentionPolicy& out) {
  RETURN_IF_ERROR(CheckKeys(ctx, n, "retention", {"spool", "crosswalk", "audit"}));
  RETURN_IF_ERROR(GetDays(ctx, n, "retention", "spool", out.spool));
  RETURN_IF_ERROR(GetDays(ctx, n, "retention", "crosswalk", out.crosswalk));
  RETURN_IF_ERROR(GetDays(ctx, n, "retention", "audit", out.audit));
  return Status::Ok();
}

std::string PolicyLabel(const Policy& policy) { return policy.name + " " + policy.version; }

std::string OptionNames(ProfileOptions options) {
  std::vector<std::string> names;
  for (ProfileOption option : options.List()) names.emplace_back(OptionName(option));
  return Join(names, ", ");
}

Status CheckHosting(const Policy& policy, const ToolConfig& tool) {
  if (!tool.IsRemote()) return Status::Ok();
  const std::string allowed = policy.allowed_hosting_regions.empty()
                                  ? "no hosting outside the trust"
                                  : "only " + Join(policy.allowed_hosting_regions, ", ");
  if (tool.hosting_region.empty()) {
    return FailedPrecondition("tool '" + tool.name +
                              "' runs outside the trust but declares no hosting_region; the "
                              "policy '" +
                              PolicyLabel(policy) + "' allows " + allowed);
  }
  const std::string region = Lower(tool.hosting_region);
  for (const auto& a : policy.allowed_hosting_regions) {
    if (Lower(a) == region) return Status::Ok();
  }
  return FailedPrecondition("tool '" + tool.name + "' is hosted in '" + tool.hosting_region +
                            "' but the policy '" + PolicyLabel(policy) + "' allows " + allowed);
}

Status CheckRetain(const Policy& policy, const ToolConfig& tool) {
  if (tool.retain.empty()) return Status::Ok();
  const auto category = policy.category_allowances.find(tool.category);
  for (const auto& name : tool.retain) {
    auto option = ParseOptionName(name);
    if (!option) {
      return FailedPrecondition(
          "tool '" + tool.name + "' asks to retain '" + name +
          "', which is not a profile option (expected one of: " + AllOptionNames() + ")");
    }
    if (tool.category.empty()) {
      return FailedPrecondition("tool '" + tool.name + "' asks for " + name +
                                " but has no category; the policy '" + PolicyLabel(policy) +
                                "' grants extra options only by tool category");
    }
    if (category == policy.category_allowances.end()) {
      return FailedPrecondition("tool '" + tool.name + "' asks for " + name + " as category '" +
                                tool.category + "', which the policy '" + PolicyLabel(policy) +
                                "' does not define");
    }
    if (!category->second.Has(*option)) {
      const std::string allowed = OptionNames(category->second);
      return FailedPrecondition("tool '" + tool.name + "' asks for " + name + " but the policy '" +
                                PolicyLabel(policy) + "' allows category '" + tool.category + "' " +
                                (allowed.empty() ? "no extra options" : "only " + allowed));
    }
  }
  return Status::Ok();
}

}  // namespace

Result<Policy> ParsePolicy(const std::string& yaml, const std::string& source) {
  Ctx ctx{source};
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::ParserException& e) {
    return InvalidArgument(source + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  if (!root.IsDefined() || root.IsNull()) {
    return InvalidArgument(source + ": the policy is empty (policy: {name, version} is required)");
  }
  Policy policy;
  try {
    RETURN_IF_ERROR(CheckKeys(ctx, root, "",
                              {"policy", "deidentification", "burned_in_text", "tool_categories",
                               "hosting", "retention"}));
    RETURN_IF_ERROR(ParseHeader(ctx, root, policy));
    if (Present(root["deidentification"])) {
      RETURN_IF_ERROR(ParseDeidentification(ctx, root["deidentification"], policy.deid));
    }
    if (Present(root["burned_in_text"])) {
      RETURN_IF_ERROR(ParseBurnedInText(ctx, root["burned_in_text"], policy.deid.burned_in));
    }
    if (Present(root["tool_categories"])) {
      RETURN_IF_ERROR(
          ParseToolCategories(ctx, root["tool_categories"], policy.category_allowances));
    }
    if (Present(root["hosting"])) {
      RETURN_IF_ERROR(ParseHosting(ctx, root["hosting"], policy.allowed_hosting_regions));
    }
    if (Present(root["retention"])) {
      RETURN_IF_ERROR(ParseRetention(ctx, root["retention"], policy.retention));
    }
  } catch (const YAML::Exception& e) {
    return InvalidArgument(source + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  policy.hash = Sha256Hex(yaml);
  policy.deid.policy_name = PolicyLabel(policy);
  policy.deid.policy_hash = policy.hash;
  return policy;
}

Result<Policy> LoadPolicyFile(const std::filesystem::path& path) {
  ASSIGN_OR_RETURN(std::string text, ReadTextFile(path, "policy"));
  return ParsePolicy(text, path.string());
}

std::string_view BuiltInPolicyText() { return kBuiltInPolicyText; }

Policy BuiltInPolicy() {
  auto policy = ParsePolicy(std::string(kBuiltInPolicyText), "built-in policy");
  if (!policy.ok()) {
    // The text is part of the program and covered by tests: an invariant.
    std::cerr << "built-in policy does not parse: " << policy.status().ToString() << "\n";
    std::abort();
  }
  return std::move(policy).value();
}

Status CheckToolsAgainstPolicy(const Policy& policy, const Config& config) {
  for (const auto& tool : config.tools) {
    RETURN_IF_ERROR(CheckHosting(policy, tool));
    RETURN_IF_ERROR(CheckRetain(policy, tool));
  }
  return Status::Ok();
}

DeidSettings SettingsForTool(const Policy& policy, const ToolConfig& tool) {
  DeidSettings settings = policy.deid;
  for (const auto& name : tool.retain) {
    if (auto option = ParseOptionName(name)) settings.options.Add(*option);
  }
  return settings;
}

}  // namespace conduit
