#include "adapters/ups_dataset.h"

#include <ctime>

namespace conduit {

using json = nlohmann::json;

json DicomJsonValue(std::string_view vr, const std::string& value) {
  json element = {{"vr", std::string(vr)}};
  if (!value.empty()) element["Value"] = json::array({value});
  return element;
}

json DicomJsonPersonName(const std::string& alphabetic) {
  json element = {{"vr", "PN"}};
  if (!alphabetic.empty()) element["Value"] = json::array({{{"Alphabetic", alphabetic}}});
  return element;
}

json DicomJsonSequence(std::vector<json> items) {
  json element = {{"vr", "SQ"}};
  if (!items.empty()) element["Value"] = json(std::move(items));
  return element;
}

json DicomJsonCode(const std::string& value, const std::string& scheme,
                   const std::string& meaning) {
  return {{upstag::kCodeValue, DicomJsonValue("SH", value)},
          {upstag::kCodingSchemeDesignator, DicomJsonValue("SH", scheme)},
          {upstag::kCodeMeaning, DicomJsonValue("LO", meaning)}};
}

std::string DicomJsonString(const json& dataset, std::string_view tag) {
  if (!dataset.is_object()) return "";
  auto element = dataset.find(std::string(tag));
  if (element == dataset.end() || !element->is_object()) return "";
  auto values = element->find("Value");
  if (values == element->end() || !values->is_array() || values->empty()) return "";
  const json& first = (*values)[0];
  if (first.is_string()) return first.get<std::string>();
  if (first.is_object()) {
    auto alphabetic = first.find("Alphabetic");
    if (alphabetic != first.end() && alphabetic->is_string()) return alphabetic->get<std::string>();
  }
  return "";
}

std::string DicomDateTimeUtc(TimePoint t) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(t);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof(text), "%Y%m%d%H%M%S+0000", &utc);
  return text;
}

std::string UpsCancellationReason(const std::string& dataset) {
  const json ds = json::parse(dataset, nullptr, /*allow_exceptions=*/false);
  if (!ds.is_object()) return "";
  auto progress = ds.find(upstag::kProcedureStepProgressInformationSequence);
  if (progress == ds.end() || !progress->is_object()) return "";
  auto items = progress->find("Value");
  if (items == progress->end() || !items->is_array()) return "";
  for (const json& item : *items) {
    std::string reason = DicomJsonString(item, upstag::kReasonForCancellation);
    if (!reason.empty()) return reason;
  }
  return "";
}

}  // namespace conduit
