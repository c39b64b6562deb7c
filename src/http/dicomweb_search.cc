// QIDO-RS (PS3.18 §10.6): parse with ParseQidoQuery, narrow by UID in SQL, match cheap
// columns first, then the stored attributes of each candidate, and answer DICOM JSON with the
// required return attributes of PS3.18 Tables 10.6.3-3/-4/-5 plus includefield.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include "http/dicom_keywords.h"
#include "http/dicomweb_json.h"
#include "http/dicomweb_read_internal.h"

namespace conduit {
namespace {

using json = nlohmann::json;

constexpr uint32_t kSpecificCharacterSet = 0x00080005;
constexpr uint32_t kSopClassUid = 0x00080016;
constexpr uint32_t kSopInstanceUid = 0x00080018;
constexpr uint32_t kStudyDate = 0x00080020;
constexpr uint32_t kAccessionNumber = 0x00080050;
constexpr uint32_t kInstanceAvailability = 0x00080056;
constexpr uint32_t kModality = 0x00080060;
constexpr uint32_t kModalitiesInStudy = 0x00080061;
constexpr uint32_t kRetrieveUrl = 0x00081190;
constexpr uint32_t kPatientName = 0x00100010;
constexpr uint32_t kPatientId = 0x00100020;
constexpr uint32_t kStudyInstanceUid = 0x0020000D;
constexpr uint32_t kSeriesInstanceUid = 0x0020000E;
constexpr uint32_t kStudyRelatedSeries = 0x00201206;
constexpr uint32_t kStudyRelatedInstances = 0x00201208;
constexpr uint32_t kSeriesRelatedInstances = 0x00201209;

// PS3.18 Table 10.6.3-3: study attributes returned by default.
constexpr uint32_t kStudyFields[] = {
    0x00080020,             // StudyDate
    0x00080030,             // StudyTime
    kAccessionNumber,       //
    kInstanceAvailability,  //
    0x00080090,             // ReferringPhysicianName
    0x00080201,             // TimezoneOffsetFromUTC
    kPatientName,           //
    kPatientId,             //
    0x00100030,             // PatientBirthDate
    0x00100040,             // PatientSex
    kStudyInstanceUid,      //
    0x00200010,             // StudyID
};
// Study attributes only a study-level search computes.
constexpr uint32_t kStudyAggregates[] = {kModalitiesInStudy, kStudyRelatedSeries,
                                         kStudyRelatedInstances};
// PS3.18 Table 10.6.3-4 (RequestAttributesSequence, a sequence, is not stored).
constexpr uint32_t kSeriesFields[] = {
    kModality,           //
    0x0008103E,          // SeriesDescription
    0x00200011,          // SeriesNumber
    kSeriesInstanceUid,  //
    0x00400244,          // PerformedProcedureStepStartDate
    0x00400245,          // PerformedProcedureStepStartTime
};
// PS3.18 Table 10.6.3-5.
constexpr uint32_t kInstanceFields[] = {
    kSopClassUid, kSopInstanceUid,
    0x00200013,  // InstanceNumber
    0x00280010,  // Rows
    0x00280011,  // Columns
    0x00280100,  // BitsAllocated
    0x00280008,  // NumberOfFrames
};
// Left out of includefield=all above instance level: they name one instance, not the entity.
const std::set<std::string> kInstanceOnlyKeywords = {
    "SOPInstanceUID",    "InstanceNumber",       "InstanceCreationDate", "InstanceCreationTime",
    "ContentDate",       "ContentTime",          "AcquisitionDate",      "AcquisitionTime",
    "AcquisitionNumber", "ImagePositionPatient", "SliceLocation"};

bool IsTextVr(std::string_view vr) {
  return vr == "PN" || vr == "LO" || vr == "SH" || vr == "LT" || vr == "ST" || vr == "UT" ||
         vr == "UC";
}

// The values of one found entity: computed ones (UIDs, counts) first, then its stored
// attributes (those of its representative instance) by keyword.
class EntityValues {
 public:
  std::map<uint32_t, std::string> computed;
  const std::map<std::string, std::string>* attributes = nullptr;

  std::optional<std::string> Raw(uint32_t tag) const {
    if (auto it = computed.find(tag); it != computed.end()) return it->second;
    if (attributes == nullptr) return std::nullopt;
    auto info = FindAttributeByTag(tag);
    if (!info || info->tag != tag) return std::nullopt;
    auto it = attributes->find(std::string(info->keyword));
    if (it == attributes->end()) return std::nullopt;
    return it->second;
  }

  // For matching and output: text in UTF-8.
  std::optional<std::string> Get(uint32_t tag) const {
    std::optional<std::string> value = Raw(tag);
    if (!value) return value;
    auto info = FindAttributeByTag(tag);
    if (info && IsTextVr(info->vr)) {
      return ToUtf8(Raw(kSpecificCharacterSet).value_or(""), *value);
    }
    return value;
  }
};

// Collects matches with offset and limit, and builds their DICOM JSON.
class Results {
 public:
  Results(const QidoQuery& q, uint32_t max_results, std::vector<uint32_t> fields)
      : q_(q), limit_(q.limit.value_or(max_results)), fields_(std::move(fields)) {}

  // Offers one matching entity; false once the page is full and one more match was seen.
  bool Add(const EntityValues& values) {
    if (matched_++ < q_.offset) return true;
    if (page_.size() >= limit_) {
      more_ = true;
      return false;
    }
    page_.push_back(ToJson(values));
    return true;
  }

  // Writes the answer with its Warning headers; returns what the audit trail records of it.
  SearchAnswer Send(httplib::Response& res) const {
    res.status = 200;
    std::vector<std::string> warnings;
    if (more_ && (!q_.limit.has_value() || q_.limit_capped)) {
      warnings.push_back(
          "The number of results exceeded the maximum supported by the server. Additional "
          "results can be requested.");
    }
    if (!q_.ignored_parameters.empty()) {
      std::string names;
      for (const std::string& name : q_.ignored_parameters) {
        const bool printable = std::all_of(name.begin(), name.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
        });
        if (!printable || name.size() > 64) continue;
        names += (names.empty() ? "" : ", ") + name;
      }
      warnings.push_back("The following parameters are not supported and were ignored: " +
                         (names.empty() ? std::string("(unprintable names)") : names));
    }
    if (q_.empty_value_matching_requested) {
      warnings.push_back(
          "The emptyvaluematching parameter is not supported. Only literal matching has been "
          "performed.");
    }
    if (q_.multiple_value_matching_requested) {
      warnings.push_back(
          "The multiplevaluematching parameter is not supported. Only literal matching has "
          "been performed.");
    }
    for (const std::string& w : warnings) res.set_header("Warning", "299 conduit: \"" + w + "\"");
    json body = json::array();
    for (const json& entity : page_) body.push_back(entity);
    res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace),
                    "application/dicom+json");
    SearchAnswer answer;
    answer.returned = page_.size();
    for (const QidoCondition& c : q_.conditions) {
      if (c.kind == QidoMatchKind::kUniversal) continue;  // asks for the attribute, no filter
      const std::optional<DicomAttributeInfo> info = FindAttributeByTag(c.tag);
      answer.keys.push_back(info && c.tag == info->tag ? std::string(info->keyword)
                                                       : fmt::format("{:08X}", c.tag));
    }
    return answer;
  }

 private:
  json ToJson(const EntityValues& values) const {
    json entity = json::object();
    auto put = [&](uint32_t tag) {
      auto info = FindAttributeByTag(tag);
      const std::string_view vr = info ? info->vr : std::string_view("UN");
      entity[TagKey(tag)] = DicomJsonAttribute(vr, values.Get(tag));
    };
    for (uint32_t tag : fields_) put(tag);
    for (uint32_t tag : q_.include_fields) put(tag);
    for (const QidoCondition& c : q_.conditions) put(c.tag);
    if (q_.include_all && values.attributes != nullptr) {
      for (const auto& [keyword, value] : *values.attributes) {
        if (q_.level != QidoLevel::kInstance && kInstanceOnlyKeywords.count(keyword) > 0) continue;
        auto info = FindAttributeByKeyword(keyword);
        if (info && !entity.contains(TagKey(info->tag))) put(info->tag);
      }
    }
    return entity;
  }

  const QidoQuery& q_;
  const uint32_t limit_;
  const std::vector<uint32_t> fields_;
  uint32_t matched_ = 0;
  bool more_ = false;
  std::vector<json> page_;
};

// The attributes returned by default at `level`; `scoped_study`/`scoped_series`: the search
// is within one study/series (PS3.18 §10.6.3.3: otherwise the higher levels' too).
std::vector<uint32_t> DefaultFields(QidoLevel level, bool scoped_study, bool scoped_series) {
  std::vector<uint32_t> fields;
  auto add = [&fields](const auto& list) {
    fields.insert(fields.end(), std::begin(list), std::end(list));
  };
  switch (level) {
    case QidoLevel::kStudy:
      add(kStudyFields);
      add(kStudyAggregates);
      break;
    case QidoLevel::kSeries:
      add(kSeriesFields);
      fields.push_back(kSeriesRelatedInstances);
      if (!scoped_study) add(kStudyFields);
      fields.push_back(kStudyInstanceUid);
      break;
    case QidoLevel::kInstance:
      add(kInstanceFields);
      if (!scoped_series) add(kSeriesFields);
      if (!scoped_study) add(kStudyFields);
      fields.push_back(kStudyInstanceUid);
      fields.push_back(kSeriesInstanceUid);
      break;
  }
  fields.push_back(kRetrieveUrl);
  std::sort(fields.begin(), fields.end());
  fields.erase(std::unique(fields.begin(), fields.end()), fields.end());
  return fields;
}

std::string RetrieveUrl(const std::string& base, QidoLevel level, const std::string& study,
                        const std::string& series, const std::string& sop) {
  std::string url = base + "/studies/" + study;
  if (level == QidoLevel::kStudy) return url;
  url += "/series/" + series;
  if (level == QidoLevel::kSeries) return url;
  return url + "/instances/" + sop;
}

// The UIDs a condition on `tag` restricts to; empty when it does not restrict.
template <typename Id>
std::vector<Id> UidsOf(const QidoQuery& q, uint32_t tag) {
  std::vector<Id> out;
  for (const QidoCondition& c : q.conditions) {
    if (c.tag != tag) continue;
    if (c.kind == QidoMatchKind::kSingleValue) out.emplace_back(c.value);
    if (c.kind == QidoMatchKind::kUidList) {
      for (const std::string& uid : c.uids) out.emplace_back(uid);
    }
  }
  return out;
}

// Parses the query, answering 406/400 itself; nullopt then.
std::optional<QidoQuery> ParseOrAnswer(QidoLevel level, const httplib::Request& req,
                                       httplib::Response& res, const QidoLimits& limits) {
  if (!AcceptsDicomJson(req.get_header_value("Accept"))) {
    SendDicomwebError(res, 406, "search results are application/dicom+json only");
    return std::nullopt;
  }
  Result<QidoQuery> q = ParseQidoQuery(level, QueryStringOf(req), limits);
  if (!q.ok()) {
    SendDicomwebError(res, 400, q.status().message());
    return std::nullopt;
  }
  return std::move(q).value();
}

QidoLevel LevelOf(EntityLevel level) {
  switch (level) {
    case EntityLevel::kStudy:
      return QidoLevel::kStudy;
    case EntityLevel::kSeries:
      return QidoLevel::kSeries;
    case EntityLevel::kInstance:
      break;
  }
  return QidoLevel::kInstance;
}

}  // namespace

std::optional<SearchAnswer> SearchIndex(DicomwebContext& ctx, const httplib::Request& req,
                                        httplib::Response& res, QidoLevel level,
                                        const std::string& base_url, const StudyUid& study,
                                        const SeriesUid& series) {
  const QidoLimits limits;
  std::optional<QidoQuery> q = ParseOrAnswer(level, req, res, limits);
  if (!q) return std::nullopt;

  EntityFilter filter;
  filter.level = level == QidoLevel::kStudy    ? EntityLevel::kStudy
                 : level == QidoLevel::kSeries ? EntityLevel::kSeries
                                               : EntityLevel::kInstance;
  filter.studies =
      study.empty() ? UidsOf<StudyUid>(*q, kStudyInstanceUid) : std::vector<StudyUid>{study};
  filter.series =
      series.empty() ? UidsOf<SeriesUid>(*q, kSeriesInstanceUid) : std::vector<SeriesUid>{series};
  filter.instances = UidsOf<SopInstanceUid>(*q, kSopInstanceUid);
  if (filter.level == EntityLevel::kStudy) filter.series.clear();
  if (filter.level != EntityLevel::kInstance) filter.instances.clear();

  // Conditions on what the index row carries are checked before the attributes are loaded.
  std::set<uint32_t> cheap = {kStudyInstanceUid, kPatientId, kPatientName, kAccessionNumber,
                              kStudyDate};
  if (filter.level == EntityLevel::kStudy) {
    cheap.insert({kModalitiesInStudy, kStudyRelatedSeries, kStudyRelatedInstances});
  } else {
    cheap.insert({kSeriesInstanceUid, kModality});
    if (filter.level == EntityLevel::kSeries) cheap.insert(kSeriesRelatedInstances);
    if (filter.level == EntityLevel::kInstance) cheap.insert({kSopInstanceUid, kSopClassUid});
  }
  QidoQuery cheap_query = *q;
  cheap_query.conditions.clear();
  for (const QidoCondition& c : q->conditions) {
    if (cheap.count(c.tag) > 0) cheap_query.conditions.push_back(c);
  }

  Results results(*q, limits.max_results, DefaultFields(level, !study.empty(), !series.empty()));
  Status failed;
  Status scanned =
      ctx.index.ScanEntities(filter, [&](const EntityRow& row, const Index::AttributeLoader& load) {
        EntityValues values;
        auto& c = values.computed;
        c[kStudyInstanceUid] = row.study_uid.str();
        c[kPatientId] = row.patient_id;
        c[kPatientName] = row.patient_name;
        c[kAccessionNumber] = row.accession_number;
        c[kStudyDate] = row.study_date;
        c[kInstanceAvailability] = "ONLINE";
        if (filter.level == EntityLevel::kStudy) {
          std::string modalities = row.modalities;
          std::replace(modalities.begin(), modalities.end(), ',', '\\');
          c[kModalitiesInStudy] = modalities;
          c[kStudyRelatedSeries] = std::to_string(row.series_count);
          c[kStudyRelatedInstances] = std::to_string(row.instance_count);
        } else {
          c[kSeriesInstanceUid] = row.series_uid.str();
          c[kModality] = row.modality;
          if (filter.level == EntityLevel::kSeries) {
            c[kSeriesRelatedInstances] = std::to_string(row.instance_count);
          } else {
            c[kSopInstanceUid] = row.sop_instance_uid.str();
            c[kSopClassUid] = row.sop_class_uid.str();
          }
        }
        // Text that is not ASCII needs the instance's character set (in the attributes) to be
        // compared as UTF-8: such rows skip the early check.
        const bool ascii = std::all_of(c.begin(), c.end(), [](const auto& entry) {
          return std::all_of(entry.second.begin(), entry.second.end(),
                             [](char ch) { return static_cast<unsigned char>(ch) < 0x80; });
        });
        if (ascii && !Matches(cheap_query, [&](uint32_t tag) { return values.Get(tag); })) {
          return true;
        }
        Result<std::map<std::string, std::string>> attributes = load();
        if (!attributes.ok()) {
          failed = attributes.status();
          return false;
        }
        values.attributes = &*attributes;
        if (!Matches(*q, [&](uint32_t tag) { return values.Get(tag); })) return true;
        c[kRetrieveUrl] = RetrieveUrl(base_url, LevelOf(filter.level), row.study_uid.str(),
                                      row.series_uid.str(), row.sop_instance_uid.str());
        return results.Add(values);
      });
  if (scanned.ok()) scanned = failed;
  if (!scanned.ok()) {
    spdlog::warn("dicomweb: {} search failed: {}", QidoLevelName(level),
                 StatusCodeName(scanned.code()));
    SendDicomwebError(res, 500, "search failed");
    return std::nullopt;
  }
  return results.Send(res);
}

std::optional<SearchAnswer> SearchFiles(
    const std::vector<std::pair<std::filesystem::path, InstanceMeta>>& files,
    const httplib::Request& req, httplib::Response& res, const std::string& base_url,
    const StudyUid& study, const SeriesUid& series) {
  const QidoLimits limits;
  std::optional<QidoQuery> q = ParseOrAnswer(QidoLevel::kInstance, req, res, limits);
  if (!q) return std::nullopt;
  Results results(*q, limits.max_results,
                  DefaultFields(QidoLevel::kInstance, true, !series.empty()));
  for (const auto& [path, meta] : files) {
    if (meta.study_uid != study || (!series.empty() && meta.series_uid != series)) continue;
    EntityValues values;
    values.attributes = &meta.attributes;
    values.computed[kStudyInstanceUid] = meta.study_uid.str();
    values.computed[kSeriesInstanceUid] = meta.series_uid.str();
    values.computed[kSopInstanceUid] = meta.sop_instance_uid.str();
    values.computed[kSopClassUid] = meta.sop_class_uid.str();
    values.computed[kInstanceAvailability] = "ONLINE";
    if (!Matches(*q, [&](uint32_t tag) { return values.Get(tag); })) continue;
    values.computed[kRetrieveUrl] =
        RetrieveUrl(base_url, QidoLevel::kInstance, meta.study_uid.str(), meta.series_uid.str(),
                    meta.sop_instance_uid.str());
    if (!results.Add(values)) break;
  }
  return results.Send(res);
}

}  // namespace conduit
