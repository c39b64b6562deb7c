#include "http/dicomweb_json.h"

#include <iconv.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace conduit {
namespace {

using json = nlohmann::json;

std::string_view TrimPadding(std::string_view v, bool leading) {
  while (!v.empty() && (v.back() == ' ' || v.back() == '\0')) v.remove_suffix(1);
  while (leading && !v.empty() && v.front() == ' ') v.remove_prefix(1);
  return v;
}

std::vector<std::string_view> Split(std::string_view v, char sep) {
  std::vector<std::string_view> out;
  for (;;) {
    const size_t at = v.find(sep);
    out.push_back(v.substr(0, at));
    if (at == std::string_view::npos) return out;
    v.remove_prefix(at + 1);
  }
}

bool IsSingleValuedText(std::string_view vr) {
  return vr == "LT" || vr == "ST" || vr == "UT" || vr == "UR";
}

json Number(std::string_view vr, std::string_view text) {
  const std::string s(text);
  char* end = nullptr;
  errno = 0;
  if (vr == "IS" || vr == "US" || vr == "SS" || vr == "UL" || vr == "SL" || vr == "SV") {
    const long long v = std::strtoll(s.c_str(), &end, 10);
    if (end == s.c_str() || *end != '\0' || errno != 0) return nullptr;
    return v;
  }
  if (vr == "UV") {
    const unsigned long long v = std::strtoull(s.c_str(), &end, 10);
    if (end == s.c_str() || *end != '\0' || errno != 0 || s.front() == '-') return nullptr;
    return v;
  }
  const double v = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || *end != '\0' || !std::isfinite(v)) return nullptr;
  return v;
}

bool IsNumberVr(std::string_view vr) {
  return vr == "IS" || vr == "DS" || vr == "US" || vr == "SS" || vr == "UL" || vr == "SL" ||
         vr == "UV" || vr == "SV" || vr == "FL" || vr == "FD";
}

json PersonName(std::string_view value) {
  static constexpr const char* kGroups[] = {"Alphabetic", "Ideographic", "Phonetic"};
  json name = json::object();
  const auto groups = Split(value, '=');
  for (size_t i = 0; i < groups.size() && i < 3; ++i) {
    const std::string_view g = TrimPadding(groups[i], false);
    if (!g.empty()) name[kGroups[i]] = std::string(g);
  }
  if (name.empty()) return nullptr;
  return name;
}

// The iconv name of a single-byte DICOM character set; nullptr when no conversion applies.
const char* IconvName(std::string_view term) {
  static constexpr std::pair<std::string_view, const char*> kSets[] = {
      {"ISO_IR 100", "ISO-8859-1"}, {"ISO_IR 101", "ISO-8859-2"},
      {"ISO_IR 109", "ISO-8859-3"}, {"ISO_IR 110", "ISO-8859-4"},
      {"ISO_IR 144", "ISO-8859-5"}, {"ISO_IR 127", "ISO-8859-6"},
      {"ISO_IR 126", "ISO-8859-7"}, {"ISO_IR 138", "ISO-8859-8"},
      {"ISO_IR 148", "ISO-8859-9"}, {"ISO_IR 203", "ISO-8859-15"},
      {"ISO_IR 166", "TIS-620"},    {"ISO_IR 13", "SHIFT_JIS"},
      {"GB18030", "GB18030"},       {"GBK", "GBK"},
  };
  for (const auto& [dicom, iconv_name] : kSets) {
    if (term == dicom) return iconv_name;
  }
  return nullptr;
}

}  // namespace

std::string TagKey(uint32_t tag) {
  char buffer[9];
  std::snprintf(buffer, sizeof(buffer), "%08X", tag);
  return buffer;
}

json DicomJsonAttribute(std::string_view vr, const std::optional<std::string>& value) {
  if (vr.empty()) vr = "UN";
  json attribute = {{"vr", std::string(vr)}};
  if (!value.has_value()) return attribute;
  json values = json::array();
  bool any = false;
  const std::vector<std::string_view> parts =
      IsSingleValuedText(vr) ? std::vector<std::string_view>{*value} : Split(*value, '\\');
  for (std::string_view part : parts) {
    const std::string_view v = TrimPadding(part, !IsSingleValuedText(vr));
    if (v.empty()) {
      values.push_back(nullptr);
      continue;
    }
    any = true;
    if (vr == "PN") {
      values.push_back(PersonName(v));
    } else if (IsNumberVr(vr)) {
      values.push_back(Number(vr, v));
    } else {
      values.push_back(std::string(v));
    }
  }
  if (any) attribute["Value"] = std::move(values);
  return attribute;
}

std::string ToUtf8(std::string_view specific_character_set, std::string_view text) {
  // Multi-valued (code extensions, ISO 2022): the first value names the default repertoire;
  // escape sequences are not interpreted, so those are left as stored.
  if (specific_character_set.find('\\') != std::string_view::npos) return std::string(text);
  const char* from = IconvName(TrimPadding(specific_character_set, true));
  if (from == nullptr) return std::string(text);
  bool ascii = true;
  for (unsigned char c : text) ascii = ascii && c < 0x80;
  if (ascii) return std::string(text);
  iconv_t cd = iconv_open("UTF-8", from);
  if (cd == reinterpret_cast<iconv_t>(-1)) return std::string(text);
  std::string in(text);
  std::string out(in.size() * 4 + 4, '\0');
  char* in_ptr = in.data();
  size_t in_left = in.size();
  char* out_ptr = out.data();
  size_t out_left = out.size();
  const size_t done = iconv(cd, &in_ptr, &in_left, &out_ptr, &out_left);
  iconv_close(cd);
  if (done == static_cast<size_t>(-1)) return std::string(text);
  out.resize(out.size() - out_left);
  return out;
}

}  // namespace conduit
