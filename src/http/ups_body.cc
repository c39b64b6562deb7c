#include "http/ups_body.h"

#include <algorithm>
#include <cctype>
#include <cinttypes>
#include <cstdio>
#include <initializer_list>
#include <limits>
#include <utility>

#include "http/dicom_keywords.h"

namespace conduit {
namespace {

using json = nlohmann::json;

constexpr uint32_t kSopClassUid = 0x00080016;
constexpr uint32_t kSopInstanceUid = 0x00080018;
constexpr uint32_t kTransactionUid = 0x00081195;
constexpr uint32_t kProcedureStepState = 0x00741000;
constexpr uint32_t kContactUri = 0x0074100A;
constexpr uint32_t kContactDisplayName = 0x0074100C;
constexpr uint32_t kReasonForCancellation = 0x00741238;

std::string Hex8(uint32_t tag) {
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08" PRIX32, tag);
  return buf;
}

std::string TagName(uint32_t tag) {
  char buf[12];
  std::snprintf(buf, sizeof buf, "(%04" PRIX32 ",%04" PRIX32 ")", tag >> 16, tag & 0xFFFF);
  return buf;
}

// Nesting of JSON arrays and objects in `text`, outside strings; stops counting past `limit`.
size_t JsonNesting(std::string_view text, size_t limit) {
  size_t depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
      if (deepest > limit) return deepest;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

std::optional<uint32_t> ParseTagKey(std::string_view key) {
  if (key.size() != 8) return std::nullopt;
  uint32_t tag = 0;
  for (char c : key) {
    int digit;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else if (c >= 'A' && c <= 'F') {
      digit = c - 'A' + 10;
    } else if (c >= 'a' && c <= 'f') {
      digit = c - 'a' + 10;
    } else {
      return std::nullopt;
    }
    tag = (tag << 4) | static_cast<uint32_t>(digit);
  }
  return tag;
}

bool IsKnownVr(std::string_view vr) {
  static constexpr std::string_view kVrs[] = {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL",
                                              "IS", "LO", "LT", "OB", "OD", "OF", "OL", "OV", "OW",
                                              "PN", "SH", "SL", "SQ", "SS", "ST", "SV", "TM", "UC",
                                              "UI", "UL", "UN", "UR", "US", "UT", "UV"};
  for (std::string_view v : kVrs) {
    if (v == vr) return true;
  }
  return false;
}

bool IsBinaryVr(std::string_view vr) {
  return vr == "OB" || vr == "OD" || vr == "OF" || vr == "OL" || vr == "OV" || vr == "OW" ||
         vr == "UN";
}

bool IsStringVr(std::string_view vr) {
  static constexpr std::string_view kVrs[] = {"AE", "AS", "CS", "DA", "DT", "LO", "LT",
                                              "SH", "ST", "TM", "UC", "UI", "UR", "UT"};
  for (std::string_view v : kVrs) {
    if (v == vr) return true;
  }
  return false;
}

// PS3.6 flattens "US or SS", "OB or OW" and "US or OW" to their first VR: accept the others.
bool VrFits(std::string_view given, std::string_view dictionary) {
  if (dictionary.empty() || given == dictionary || given == "UN") return true;
  auto in = [](std::string_view v, std::initializer_list<std::string_view> set) {
    for (std::string_view s : set) {
      if (s == v) return true;
    }
    return false;
  };
  if (in(dictionary, {"US", "SS"}) && in(given, {"US", "SS", "OW"})) return true;
  if (in(dictionary, {"OB", "OW"}) && in(given, {"OB", "OW"})) return true;
  return false;
}

// PS3.5 Table 6.2-1 maximum value lengths (bytes); 0: only the limits' max_value_bytes.
size_t MaxLength(std::string_view vr) {
  if (vr == "AE" || vr == "CS" || vr == "SH" || vr == "DS") return 16;
  if (vr == "AS") return 4;
  if (vr == "DA") return 8;
  if (vr == "DT") return 26;
  if (vr == "IS") return 12;
  if (vr == "TM") return 14;
  if (vr == "LO" || vr == "UI") return 64;
  if (vr == "ST") return 1024;
  if (vr == "LT") return 10240;
  return 0;
}

bool AllDigits(std::string_view s) {
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

bool IsUid(std::string_view s) {
  if (s.empty() || s.size() > 64 || s.front() == '.' || s.back() == '.') return false;
  char prev = 0;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || c == '.') || (c == '.' && prev == '.')) return false;
    prev = c;
  }
  return true;
}

bool IsTime(std::string_view s) {
  const size_t dot = s.find('.');
  std::string_view whole = s.substr(0, dot);
  if (whole.empty() || whole.size() > 6 || whole.size() % 2 != 0 || !AllDigits(whole)) return false;
  if (dot == std::string_view::npos) return true;
  std::string_view fraction = s.substr(dot + 1);
  return whole.size() == 6 && !fraction.empty() && fraction.size() <= 6 && AllDigits(fraction);
}

// YYYY[MM[DD[HH[MM[SS[.F{1,6}]]]]]][&ZZXX]
bool IsDateTime(std::string_view s) {
  const size_t sign = s.find_first_of("+-");
  if (sign != std::string_view::npos) {
    std::string_view offset = s.substr(sign + 1);
    if (offset.size() != 4 || !AllDigits(offset)) return false;
    s = s.substr(0, sign);
  }
  const size_t dot = s.find('.');
  std::string_view whole = s.substr(0, dot);
  if (whole.size() < 4 || whole.size() > 14 || whole.size() % 2 != 0 || !AllDigits(whole)) {
    return false;
  }
  if (dot == std::string_view::npos) return true;
  std::string_view fraction = s.substr(dot + 1);
  return whole.size() == 14 && !fraction.empty() && fraction.size() <= 6 && AllDigits(fraction);
}

bool IsDecimalString(std::string_view s, bool integer) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  if (s.empty()) return false;
  size_t i = (s[0] == '+' || s[0] == '-') ? 1 : 0;
  bool digits = false;
  for (; i < s.size(); ++i) {
    const char c = s[i];
    if (c >= '0' && c <= '9') {
      digits = true;
    } else if (integer) {
      return false;
    } else if (!(c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-')) {
      return false;
    }
  }
  return digits;
}

// Checks one string value of VR `vr`. Empty means fine; otherwise the problem.
std::string CheckString(std::string_view vr, std::string_view v, const UpsBodyLimits& limits) {
  const size_t max = MaxLength(vr);
  if ((max > 0 && v.size() > max) || v.size() > limits.max_value_bytes) {
    return "a value is longer than " + std::to_string(max > 0 ? max : limits.max_value_bytes) +
           " bytes";
  }
  for (unsigned char c : v) {
    if (c < 0x20 && c != '\r' && c != '\n' && c != '\t' && c != 0x1B && c != '\f') {
      return "a value holds a control character";
    }
  }
  if (vr == "UI" && !IsUid(v)) return "a value is not a UID";
  if (vr == "CS") {
    for (char c : v) {
      if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ' ' || c == '_')) {
        return "a CS value has a character other than A-Z, 0-9, space and underscore";
      }
    }
  }
  if (vr == "DA" && !(v.size() == 8 && AllDigits(v))) return "a DA value is not YYYYMMDD";
  if (vr == "TM" && !IsTime(v)) return "a TM value is not HHMMSS.FFFFFF";
  if (vr == "DT" && !IsDateTime(v)) return "a DT value is not YYYYMMDDHHMMSS.FFFFFF&ZZXX";
  if (vr == "AS" && !(v.size() == 4 && AllDigits(v.substr(0, 3)) &&
                      std::string_view("DWMY").find(v[3]) != std::string_view::npos)) {
    return "an AS value is not nnnD, nnnW, nnnM or nnnY";
  }
  if ((vr == "AE" || vr == "LO" || vr == "SH" || vr == "UC" || vr == "CS" || vr == "DA" ||
       vr == "TM" || vr == "DT" || vr == "AS" || vr == "UI") &&
      v.find('\\') != std::string_view::npos) {
    return "a value holds '\\' (give several values as separate array elements)";
  }
  return {};
}

bool IsBase64(std::string_view s) {
  if (s.size() % 4 != 0) return false;
  size_t pad = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '=') {
      if (i + 2 < s.size()) return false;
      ++pad;
      continue;
    }
    if (pad > 0) return false;
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/')) return false;
  }
  return true;
}

struct Walker {
  const UpsBodyLimits& limits;
  size_t attributes = 0;

  Status Error(const std::string& where, const std::string& problem) {
    return InvalidArgument("request body: " + where + ": " + problem);
  }

  // Validates `in` (a JSON object) as a dataset at sequence depth `depth`; writes the
  // normalised dataset (upper-case keys) to `out`.
  Status Dataset(const json& in, size_t depth, const std::string& where, json& out) {
    if (!in.is_object()) return Error(where, "a dataset must be a JSON object");
    out = json::object();
    for (const auto& [key, attr] : in.items()) {
      const std::optional<uint32_t> tag = ParseTagKey(key);
      const std::string name = where.empty() ? "attribute" : where + " >";
      if (!tag) return Error(name + " key", "not 8 hexadecimal digits");
      const std::string here = (where.empty() ? "attribute " : where + " > ") + TagName(*tag);
      if (++attributes > limits.max_attributes) {
        return Error("dataset",
                     "more than " + std::to_string(limits.max_attributes) + " attributes");
      }
      const uint32_t group = *tag >> 16;
      if (group == 0x0000 || group == 0x0002 || group == 0xFFFE) {
        return Error(here, "command, file meta and item elements are not allowed");
      }
      if ((*tag & 0xFFFF) == 0) return Error(here, "group lengths are not allowed");
      const std::string upper = Hex8(*tag);
      if (out.contains(upper)) return Error(here, "given twice");
      json normal;
      RETURN_IF_ERROR(Attribute(*tag, attr, depth, here, normal));
      out[upper] = std::move(normal);
    }
    return Status::Ok();
  }

  Status Attribute(uint32_t tag, const json& attr, size_t depth, const std::string& here,
                   json& out) {
    if (!attr.is_object()) return Error(here, "must be an object with \"vr\"");
    const auto vr_it = attr.find("vr");
    if (vr_it == attr.end() || !vr_it->is_string()) return Error(here, "no \"vr\" string");
    const std::string vr = vr_it->get<std::string>();
    if (!IsKnownVr(vr)) return Error(here, "\"vr\" is not a DICOM VR");
    if (const auto info = FindAttributeByTag(tag); info && !VrFits(vr, info->vr)) {
      return Error(here, "VR " + vr + " where PS3.6 gives " + std::string(info->vr));
    }
    out = json{{"vr", vr}};
    for (const auto& [k, unused] : attr.items()) {
      if (k != "vr" && k != "Value" && k != "InlineBinary" && k != "BulkDataURI") {
        return Error(here, "unknown member (expected vr, Value or InlineBinary)");
      }
    }
    if (attr.contains("BulkDataURI")) return Error(here, "BulkDataURI is not supported");
    if (const auto inline_it = attr.find("InlineBinary"); inline_it != attr.end()) {
      if (!IsBinaryVr(vr)) return Error(here, "InlineBinary on a VR that is not binary");
      if (attr.contains("Value")) return Error(here, "both Value and InlineBinary");
      if (!inline_it->is_string() || !IsBase64(inline_it->get_ref<const std::string&>()) ||
          inline_it->get_ref<const std::string&>().size() > limits.max_value_bytes) {
        return Error(here, "InlineBinary is not base64 of at most " +
                               std::to_string(limits.max_value_bytes) + " characters");
      }
      out["InlineBinary"] = *inline_it;
      return Status::Ok();
    }
    const auto value_it = attr.find("Value");
    if (value_it == attr.end()) return Status::Ok();
    if (IsBinaryVr(vr)) return Error(here, "a binary VR takes InlineBinary, not Value");
    if (!value_it->is_array()) return Error(here, "\"Value\" must be an array");
    const json& values = *value_it;
    if (values.empty()) return Status::Ok();  // no value: the same as no "Value"
    if (values.size() > limits.max_values) {
      return Error(here, "more than " + std::to_string(limits.max_values) + " values");
    }
    json normal = json::array();
    if (vr == "SQ") {
      if (depth >= limits.max_depth) {
        return Error(here, "sequences nested deeper than " + std::to_string(limits.max_depth));
      }
      for (size_t i = 0; i < values.size(); ++i) {
        json item;
        RETURN_IF_ERROR(
            Dataset(values[i], depth + 1, here + "[" + std::to_string(i + 1) + "]", item));
        normal.push_back(std::move(item));
      }
    } else {
      for (const json& v : values) {
        json checked;
        RETURN_IF_ERROR(Value(vr, v, here, checked));
        normal.push_back(std::move(checked));
      }
    }
    out["Value"] = std::move(normal);
    return Status::Ok();
  }

  Status Value(const std::string& vr, const json& v, const std::string& here, json& out) {
    out = v;
    if (v.is_null()) {
      if (IsStringVr(vr) || vr == "PN" || vr == "IS" || vr == "DS") return Status::Ok();
      return Error(here, "null value for a numeric VR");
    }
    if (IsStringVr(vr)) {
      if (!v.is_string()) return Error(here, "a value of VR " + vr + " must be a string");
      const std::string problem = CheckString(vr, v.get_ref<const std::string&>(), limits);
      if (!problem.empty()) return Error(here, problem);
      return Status::Ok();
    }
    if (vr == "PN") {
      if (!v.is_object()) return Error(here, "a PN value must be an object");
      for (const auto& [k, group] : v.items()) {
        if (k != "Alphabetic" && k != "Ideographic" && k != "Phonetic") {
          return Error(here,
                       "a PN value has a member other than Alphabetic, Ideographic and "
                       "Phonetic");
        }
        if (!group.is_string() || group.get_ref<const std::string&>().size() > 64 * 5) {
          return Error(here, "a PN component group must be a string of at most 320 bytes");
        }
      }
      return Status::Ok();
    }
    if (vr == "AT") {
      if (!v.is_string() || !ParseTagKey(v.get_ref<const std::string&>())) {
        return Error(here, "an AT value must be 8 hexadecimal digits");
      }
      return Status::Ok();
    }
    if (vr == "IS" || vr == "DS") {
      const bool integer = vr == "IS";
      if (v.is_string()) {
        const std::string& s = v.get_ref<const std::string&>();
        if (s.size() > MaxLength(vr) || !IsDecimalString(s, integer)) {
          return Error(here, "a value of VR " + vr + " is not a decimal number");
        }
        return Status::Ok();
      }
      if (!v.is_number() || (integer && !v.is_number_integer())) {
        return Error(here, "a value of VR " + vr + " must be a number");
      }
      if (integer) {
        const bool fits = v.is_number_unsigned() ? v.get<uint64_t>() <= 2147483647ull
                                                 : v.get<int64_t>() >= -2147483648ll &&
                                                       v.get<int64_t>() <= 2147483647ll;
        if (!fits) return Error(here, "an IS value is out of range");
      }
      return Status::Ok();
    }
    if (vr == "FL" || vr == "FD") {
      if (!v.is_number()) return Error(here, "a value of VR " + vr + " must be a number");
      return Status::Ok();
    }
    // Integers: SL SS UL US SV UV (SV/UV may come as decimal strings: beyond 2^53).
    if ((vr == "SV" || vr == "UV") && v.is_string()) {
      const std::string& s = v.get_ref<const std::string&>();
      if (s.size() > 21 || !IsDecimalString(s, true) || (vr == "UV" && s[0] == '-')) {
        return Error(here, "a value of VR " + vr + " is not an integer");
      }
      return Status::Ok();
    }
    if (!v.is_number_integer()) return Error(here, "a value of VR " + vr + " must be an integer");
    if (vr == "SV") return Status::Ok();
    if (vr == "UV") {
      if (!v.is_number_unsigned()) return Error(here, "a UV value is negative");
      return Status::Ok();
    }
    int64_t lo = 0, hi = 0;
    if (vr == "US") {
      hi = 65535;
    } else if (vr == "SS") {
      lo = -32768;
      hi = 32767;
    } else if (vr == "UL") {
      hi = 4294967295ll;
    } else {  // SL
      lo = -2147483648ll;
      hi = 2147483647ll;
    }
    const bool fits = v.is_number_unsigned() ? v.get<uint64_t>() <= static_cast<uint64_t>(hi)
                                             : v.get<int64_t>() >= lo && v.get<int64_t>() <= hi;
    if (!fits) return Error(here, "a value of VR " + vr + " is out of range");
    return Status::Ok();
  }
};

// The single string value of top-level `tag`, if the attribute has exactly one string value.
Result<std::optional<std::string>> SingleString(const json& dataset, uint32_t tag) {
  const auto it = dataset.find(Hex8(tag));
  if (it == dataset.end()) return std::optional<std::string>();
  const auto value = it->find("Value");
  if (value == it->end()) return std::optional<std::string>();
  if (value->size() != 1 || !(*value)[0].is_string()) {
    return InvalidArgument("request body: attribute " + TagName(tag) + ": expected one value");
  }
  std::string s = (*value)[0].get<std::string>();
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
  return std::optional<std::string>(std::move(s));
}

std::string Trimmed(std::optional<std::string> s) { return s ? std::move(*s) : std::string(); }

}  // namespace

Result<json> ParseDicomJsonDataset(std::string_view body, const UpsBodyLimits& limits) {
  if (body.size() > limits.max_body_bytes) {
    return InvalidArgument("request body: larger than " + std::to_string(limits.max_body_bytes) +
                           " bytes");
  }
  // Array, dataset, then three levels per sequence (attribute, Value, item), then an
  // attribute, its Value and a PN object.
  const size_t max_nesting = 2 + 3 * limits.max_depth + 3;
  if (JsonNesting(body, max_nesting) > max_nesting) {
    return InvalidArgument("request body: JSON nested deeper than a dataset with sequences " +
                           std::to_string(limits.max_depth) + " deep");
  }
  json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return InvalidArgument("request body: not valid JSON");
  if (parsed.is_array()) {
    if (parsed.size() != 1) {
      return InvalidArgument("request body: expected one dataset, got an array of " +
                             std::to_string(parsed.size()));
    }
    json first = std::move(parsed[0]);
    parsed = std::move(first);
  }
  if (!parsed.is_object()) {
    return InvalidArgument("request body: expected a DICOM JSON dataset (a JSON object)");
  }
  Walker walker{limits};
  json out;
  RETURN_IF_ERROR(walker.Dataset(parsed, 0, "", out));
  return out;
}

Result<UpsStateChangeRequest> ParseStateChangeBody(std::string_view body,
                                                   const UpsBodyLimits& limits) {
  ASSIGN_OR_RETURN(json dataset, ParseDicomJsonDataset(body, limits));
  ASSIGN_OR_RETURN(std::optional<std::string> state, SingleString(dataset, kProcedureStepState));
  if (!state) {
    return InvalidArgument("request body: Procedure Step State (0074,1000) is missing");
  }
  const std::optional<UpsState> parsed = ParseUpsState(*state);
  if (!parsed) {
    return InvalidArgument(
        "request body: Procedure Step State (0074,1000): expected IN PROGRESS, COMPLETED or "
        "CANCELED");
  }
  if (*parsed == UpsState::kScheduled) {
    return InvalidArgument(
        "request body: Procedure Step State (0074,1000): a workitem cannot be moved back to "
        "SCHEDULED");
  }
  UpsStateChangeRequest out;
  out.state = *parsed;
  ASSIGN_OR_RETURN(std::optional<std::string> transaction, SingleString(dataset, kTransactionUid));
  out.transaction_uid = Trimmed(std::move(transaction));
  ASSIGN_OR_RETURN(std::optional<std::string> reason,
                   SingleString(dataset, kReasonForCancellation));
  out.reason = Trimmed(std::move(reason));
  return out;
}

Result<UpsUpdateRequest> ParseUpdateBody(std::string_view body, const UpsBodyLimits& limits) {
  ASSIGN_OR_RETURN(json dataset, ParseDicomJsonDataset(body, limits));
  if (dataset.contains(Hex8(kProcedureStepState))) {
    return InvalidArgument(
        "request body: Procedure Step State (0074,1000) cannot be updated; change the state "
        "with PUT /workitems/{uid}/state");
  }
  for (uint32_t tag : {kSopClassUid, kSopInstanceUid}) {
    if (dataset.contains(Hex8(tag))) {
      return InvalidArgument("request body: attribute " + TagName(tag) +
                             " identifies the workitem and cannot be updated");
    }
  }
  UpsUpdateRequest out;
  ASSIGN_OR_RETURN(std::optional<std::string> transaction, SingleString(dataset, kTransactionUid));
  out.transaction_uid = Trimmed(std::move(transaction));
  dataset.erase(Hex8(kTransactionUid));
  if (dataset.empty()) return InvalidArgument("request body: no attributes to update");
  out.changes = dataset.dump(-1, ' ', false, json::error_handler_t::replace);
  return out;
}

Result<UpsCancelRequest> ParseCancelRequestBody(std::string_view body,
                                                const UpsBodyLimits& limits) {
  UpsCancelRequest out;
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return out;
  ASSIGN_OR_RETURN(json dataset, ParseDicomJsonDataset(body, limits));
  ASSIGN_OR_RETURN(std::optional<std::string> reason,
                   SingleString(dataset, kReasonForCancellation));
  out.reason = Trimmed(std::move(reason));
  ASSIGN_OR_RETURN(std::optional<std::string> name, SingleString(dataset, kContactDisplayName));
  out.contact_name = Trimmed(std::move(name));
  ASSIGN_OR_RETURN(std::optional<std::string> uri, SingleString(dataset, kContactUri));
  out.contact_uri = Trimmed(std::move(uri));
  return out;
}

std::optional<std::string> ParseUpsAeTitle(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  if (text.empty() || text.size() > 16) return std::nullopt;
  for (char c : text) {
    if (c < 0x20 || c > 0x7E || c == '\\') return std::nullopt;
  }
  return std::string(text);
}

std::optional<std::string> DicomJsonValueString(const json& dataset, uint32_t tag) {
  if (!dataset.is_object()) return std::nullopt;
  const auto it = dataset.find(Hex8(tag));
  if (it == dataset.end() || !it->is_object()) return std::nullopt;
  const auto vr = it->find("vr");
  if (vr == it->end() || !vr->is_string()) return std::nullopt;
  const std::string& v = vr->get_ref<const std::string&>();
  if (v == "SQ" || IsBinaryVr(v)) return std::nullopt;
  const auto values = it->find("Value");
  if (values == it->end() || !values->is_array()) return std::string();
  std::string out;
  bool first = true;
  for (const json& value : *values) {
    if (!first) out += '\\';
    first = false;
    if (value.is_string()) {
      out += value.get_ref<const std::string&>();
    } else if (value.is_number()) {
      out += value.dump();
    } else if (value.is_object()) {  // PN
      std::string groups[3];
      const char* names[3] = {"Alphabetic", "Ideographic", "Phonetic"};
      size_t last = 0;
      for (size_t g = 0; g < 3; ++g) {
        const auto group = value.find(names[g]);
        if (group != value.end() && group->is_string()) {
          groups[g] = group->get<std::string>();
          last = g + 1;
        }
      }
      for (size_t g = 0; g < last; ++g) out += (g > 0 ? "=" : "") + groups[g];
    }
  }
  return out;
}

}  // namespace conduit
