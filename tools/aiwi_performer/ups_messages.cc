#include "aiwi_performer/ups_messages.h"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <map>
#include <set>

namespace conduit::tools {
namespace {

using nlohmann::json;

json Value(std::string_view vr, json value) {
  return {{"vr", std::string(vr)}, {"Value", json::array({std::move(value)})}};
}
json Sequence(json items) { return {{"vr", "SQ"}, {"Value", std::move(items)}}; }

// The element `tag` of `dataset`, trying the upper- and lower-case spellings of its hex digits.
const json* Element(const json& dataset, std::string_view tag) {
  if (!dataset.is_object()) return nullptr;
  std::string upper(tag), lower(tag);
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char c) { return std::toupper(c); });
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  for (const std::string& key : {upper, lower}) {
    auto it = dataset.find(key);
    if (it != dataset.end()) return &*it;
  }
  return nullptr;
}

// The Value array of an element: {"vr":..,"Value":[..]}, or a bare array (early drafts).
const json* Values(const json& dataset, std::string_view tag) {
  const json* element = Element(dataset, tag);
  if (element == nullptr) return nullptr;
  if (element->is_array()) return element;
  if (!element->is_object()) return nullptr;
  auto it = element->find("Value");
  if (it == element->end() || !it->is_array()) return nullptr;
  return &*it;
}

// The items of sequence `tag` (objects only).
std::vector<const json*> Items(const json& dataset, std::string_view tag) {
  std::vector<const json*> items;
  if (const json* values = Values(dataset, tag)) {
    for (const json& item : *values) {
      if (item.is_object()) items.push_back(&item);
    }
  }
  return items;
}

std::optional<int> FirstInt(const json& dataset, std::string_view tag) {
  const json* values = Values(dataset, tag);
  if (values == nullptr || values->empty()) return std::nullopt;
  const json& first = (*values)[0];
  if (first.is_number_integer()) return first.get<int>();
  if (first.is_string()) {
    try {
      size_t used = 0;
      const std::string text = first.get<std::string>();
      int value = std::stoi(text, &used);
      if (used == text.size()) return value;
    } catch (const std::exception&) {
    }
  }
  return std::nullopt;
}

std::vector<std::string> Strings(const json& dataset, std::string_view tag) {
  std::vector<std::string> out;
  if (const json* values = Values(dataset, tag)) {
    for (const json& value : *values) {
      if (value.is_string() && !value.get<std::string>().empty()) {
        out.push_back(value.get<std::string>());
      }
    }
  }
  return out;
}

json ProgressItem(int percent, std::string_view description) {
  json item = {{"00741004", Value("DS", std::clamp(percent, 0, 100))}};
  if (!description.empty()) item["00741006"] = Value("ST", std::string(description));
  return item;
}

Result<json> ParseJson(std::string_view text, std::string_view what) {
  json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return InvalidArgument(std::string(what) + ": not JSON");
  return parsed;
}

}  // namespace

std::string DicomDateTime(std::chrono::system_clock::time_point when) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(when);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[16];
  std::strftime(text, sizeof(text), "%Y%m%d%H%M%S", &utc);
  return text;
}

std::optional<std::string> FirstString(const json& dataset, std::string_view tag) {
  const json* values = Values(dataset, tag);
  if (values == nullptr || values->empty() || !(*values)[0].is_string()) return std::nullopt;
  return (*values)[0].get<std::string>();
}

json StateChangeBody(std::string_view state, const std::string& transaction_uid) {
  return {{"00741000", Value("CS", std::string(state))},
          {"00081195", Value("UI", transaction_uid)}};
}

json ProgressBody(const std::string& transaction_uid, int percent, std::string_view description) {
  return {{"00081195", Value("UI", transaction_uid)},
          {"00741002", Sequence(json::array({ProgressItem(percent, description)}))}};
}

json CancellationBody(const std::string& transaction_uid, int percent, std::string_view reason,
                      std::chrono::system_clock::time_point when) {
  json item = ProgressItem(percent, "canceled by the performer");
  item["00404052"] = Value("DT", DicomDateTime(when));
  if (!reason.empty()) item["00741238"] = Value("LT", std::string(reason));
  return {{"00081195", Value("UI", transaction_uid)},
          {"00741002", Sequence(json::array({std::move(item)}))}};
}

json PerformedProcedureBody(const std::string& transaction_uid, const json& workitem,
                            std::string_view ae_title, const std::vector<OutputInstance>& outputs,
                            std::chrono::system_clock::time_point started,
                            std::chrono::system_clock::time_point ended) {
  // One Output Information item per series, in the order the series first appear.
  std::vector<std::string> order;
  std::map<std::string, json> by_series;
  for (const OutputInstance& out : outputs) {
    auto [it, added] = by_series.try_emplace(out.series_uid);
    if (added) {
      order.push_back(out.series_uid);
      it->second = {{"0020000D", Value("UI", out.study_uid)},
                    {"0020000E", Value("UI", out.series_uid)},
                    {"0040E020", Value("CS", "DICOM")},
                    {"00081199", Sequence(json::array())}};
    }
    it->second["00081199"]["Value"].push_back({{"00081150", Value("UI", out.sop_class_uid)},
                                               {"00081155", Value("UI", out.sop_instance_uid)}});
  }
  json output_items = json::array();
  for (const std::string& series : order) output_items.push_back(std::move(by_series[series]));

  json station = {{"00080100", Value("SH", std::string(ae_title))},
                  {"00080102", Value("SH", "99CONDUIT")},
                  {"00080104", Value("LO", "AIW-I Task Performer simulator (NON-CLINICAL)")}};
  json performed = {{"00404028", Sequence(json::array({std::move(station)}))},
                    {"00404050", Value("DT", DicomDateTime(started))},
                    {"00404051", Value("DT", DicomDateTime(ended))},
                    {"00404033", Sequence(std::move(output_items))}};
  json codes = json::array();
  for (const json* item : Items(workitem, "00404018")) codes.push_back(*item);
  performed["00404019"] = Sequence(std::move(codes));
  return {{"00081195", Value("UI", transaction_uid)},
          {"00741216", Sequence(json::array({std::move(performed)}))}};
}

Result<json> ParseWorkitem(std::string_view text) {
  ASSIGN_OR_RETURN(json parsed, ParseJson(text, "workitem"));
  if (parsed.is_array()) {
    if (parsed.size() != 1) return InvalidArgument("workitem: expected one dataset");
    parsed = parsed[0];
  }
  if (!parsed.is_object()) return InvalidArgument("workitem: not a DICOM JSON object");
  return parsed;
}

Result<std::vector<WorkitemSummary>> ParseSearchResults(std::string_view text) {
  std::vector<WorkitemSummary> found;
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) return found;
  ASSIGN_OR_RETURN(json parsed, ParseJson(text, "workitem search"));
  if (!parsed.is_array()) return InvalidArgument("workitem search: answer is not a JSON array");
  for (const json& item : parsed) {
    std::optional<std::string> uid = FirstString(item, "00080018");
    if (!uid || uid->empty()) continue;
    found.push_back({*uid, FirstString(item, "00741000").value_or("")});
  }
  return found;
}

Result<std::vector<std::string>> InputRetrieveUrls(const json& workitem) {
  std::vector<std::string> urls;
  std::set<std::string> seen;
  auto add = [&](const std::vector<std::string>& values) {
    for (const std::string& url : values) {
      if (seen.insert(url).second) urls.push_back(url);
    }
  };
  for (const json* input : Items(workitem, "00404021")) {
    std::vector<const json*> retrievals = Items(*input, "0040E025");
    if (retrievals.empty()) add(Strings(*input, "00081190"));
    for (const json* retrieval : retrievals) add(Strings(*retrieval, "00081190"));
  }
  if (urls.empty()) {
    return InvalidArgument(
        "workitem has no Retrieve URL in Input Information Sequence > WADO-RS Retrieval "
        "Sequence");
  }
  return urls;
}

Result<std::vector<std::string>> OutputStorageUrls(const json& workitem) {
  std::vector<std::string> urls;
  for (const json* destination : Items(workitem, "00404070")) {
    for (const json* storage : Items(*destination, "00404072")) {
      for (const std::string& url : Strings(*storage, "00404073")) urls.push_back(url);
    }
  }
  if (urls.empty()) {
    return InvalidArgument(
        "workitem has no Storage URL in Output Destination Sequence > STOW-RS Storage "
        "Sequence");
  }
  return urls;
}

Result<EventReport> ParseEventReport(std::string_view text) {
  ASSIGN_OR_RETURN(json parsed, ParseJson(text, "event report"));
  if (!parsed.is_object()) return InvalidArgument("event report: not a JSON object");
  std::optional<int> type = FirstInt(parsed, "00001002");
  if (!type) return InvalidArgument("event report: no Event Type ID (0000,1002)");
  EventReport report;
  report.event_type = *type;
  report.uid = FirstString(parsed, "00001000").value_or("");
  report.state = FirstString(parsed, "00741000").value_or("");
  return report;
}

}  // namespace conduit::tools
