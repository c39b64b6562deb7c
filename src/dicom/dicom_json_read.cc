#include "dicom/dicom_json_read.h"

#include <charconv>

namespace conduit {
namespace {

using json = nlohmann::json;

const json* FirstValue(const json& dataset, const char* tag) {
  auto it = dataset.find(tag);
  if (it == dataset.end() || !it->is_object()) return nullptr;
  auto value = it->find("Value");
  if (value == it->end() || !value->is_array() || value->empty()) return nullptr;
  return &(*value)[0];
}

}  // namespace

std::string DicomJsonString(const json& dataset, const char* tag) {
  const json* first = FirstValue(dataset, tag);
  return first != nullptr && first->is_string() ? first->get<std::string>() : "";
}

std::vector<std::string> DicomJsonStrings(const json& dataset, const char* tag) {
  std::vector<std::string> out;
  auto it = dataset.find(tag);
  if (it == dataset.end() || !it->is_object()) return out;
  auto value = it->find("Value");
  if (value == it->end() || !value->is_array()) return out;
  for (const json& v : *value) {
    if (v.is_string() && !v.get<std::string>().empty()) out.push_back(v.get<std::string>());
  }
  return out;
}

std::optional<int64_t> DicomJsonInteger(const json& dataset, const char* tag) {
  const json* first = FirstValue(dataset, tag);
  if (first == nullptr) return std::nullopt;
  if (first->is_number_integer()) return first->get<int64_t>();
  if (first->is_string()) {
    const std::string text = first->get<std::string>();
    int64_t v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (!text.empty() && ec == std::errc() && end == text.data() + text.size()) return v;
  }
  return std::nullopt;
}

const json& DicomJsonSequence(const json& dataset, const char* tag) {
  static const json kEmpty = json::array();
  auto it = dataset.find(tag);
  if (it == dataset.end() || !it->is_object()) return kEmpty;
  auto value = it->find("Value");
  if (value == it->end() || !value->is_array()) return kEmpty;
  return *value;
}

}  // namespace conduit
