#include "adapters/ups_worklist_adapter.h"

#include <spdlog/spdlog.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "adapters/tool_adapter.h"
#include "adapters/ups_dataset.h"
#include "adapters/ups_worklist.h"
#include "dicom/instance_meta.h"

namespace conduit {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// CID 9231 (Workitem Definition): what an AI tool is asked to do.
constexpr char kWorkitemCode[] = "110004";
constexpr char kWorkitemScheme[] = "DCM";
constexpr char kWorkitemMeaning[] = "Computer Aided Detection";
// The longest why of a failed job taken from a performer's Reason For Cancellation.
constexpr size_t kMaxWhyChars = 200;

std::string Lo(const std::string& text) { return text.size() <= 64 ? text : text.substr(0, 64); }

// One series of the inputs, in input order.
struct SeriesInputs {
  std::string study_uid;
  std::string series_uid;
  std::vector<std::pair<std::string, std::string>> instances;  // (SOP Class, SOP Instance)
};

// Appends a note to the job log (for people: a failure to write is ignored). Never UIDs.
void NoteInJobLog(const fs::path& file, const std::string& text) {
  if (file.empty()) return;
  std::error_code ec;
  if (file.has_parent_path()) fs::create_directories(file.parent_path(), ec);
  std::ofstream out(file, std::ios::app);
  if (out) out << "conduit: " << text << '\n';
}

class WorklistAdapter final : public ToolAdapter {
 public:
  WorklistAdapter(ToolConfig tool, std::string results_base_url, Worklist& worklist,
                  const Clock& clock)
      : tool_(std::move(tool)),
        results_base_url_(std::move(results_base_url)),
        worklist_(worklist),
        clock_(clock) {
    while (!results_base_url_.empty() && results_base_url_.back() == '/') {
      results_base_url_.pop_back();
    }
  }

  Result<DispatchOutcome> Dispatch(const DispatchRequest& request) override {
    const std::string what = "worklist dispatch job " + std::to_string(request.job.id.value);
    if (results_base_url_.empty()) {
      return FailedPrecondition(what + ": tool '" + tool_.name +
                                "' fetches its inputs from this gateway over HTTP: set "
                                "http.port or http.public_url");
    }
    Result<std::string> dataset =
        BuildWorkitemDataset(tool_, request.job, request.inputs, results_base_url_, clock_.Now());
    if (!dataset.ok()) return dataset.status().WithContext(what);
    Result<WorkitemRecord> workitem =
        worklist_.ScheduleForJob(request.job, tool_.name, *dataset, tool_.priority);
    if (!workitem.ok()) return workitem.status().WithContext(what);
    NoteInJobLog(request.log_file, "workitem " + std::string(UpsStateName(workitem->state)) +
                                       " on worklist '" + tool_.name + "' with " +
                                       std::to_string(request.inputs.size()) + " input(s)");
    DispatchOutcome outcome;
    outcome.results_pending = true;
    return outcome;
  }

  Result<ProgressReport> CheckProgress(const JobRecord& job) override {
    ASSIGN_OR_RETURN(std::optional<WorkitemRecord> current, worklist_.CurrentForJob(job));
    ProgressReport report;
    if (!current) return report;
    switch (current->state) {
      case UpsState::kScheduled:
      case UpsState::kInProgress:
        report.progress = Progress::kRunning;
        break;
      case UpsState::kCompleted:
        report.progress = Progress::kDone;
        break;
      case UpsState::kCanceled: {
        report.progress = Progress::kFailed;
        std::string reason = UpsCancellationReason(current->dataset);
        if (reason.size() > kMaxWhyChars) reason = reason.substr(0, kMaxWhyChars);
        report.why = "the workitem was canceled" + (reason.empty() ? "" : ": " + reason);
        break;
      }
    }
    return report;
  }

 private:
  const ToolConfig tool_;
  std::string results_base_url_;
  Worklist& worklist_;
  const Clock& clock_;
};

}  // namespace

Result<std::string> BuildWorkitemDataset(const ToolConfig& tool, const JobRecord& job,
                                         const std::vector<fs::path>& inputs,
                                         const std::string& results_base_url, TimePoint now) {
  if (inputs.empty()) return InvalidArgument("workitem dataset: the job has no inputs");
  std::string base = results_base_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  const std::string job_url = base + "/dicom-web/jobs/" + std::to_string(job.id.value);

  // The inputs by study and series, each in the order first seen.
  std::vector<SeriesInputs> series;
  std::map<std::pair<std::string, std::string>, size_t> series_index;
  InstanceMeta first;
  for (size_t i = 0; i < inputs.size(); ++i) {
    Result<InstanceMeta> meta = ReadInstanceMeta(inputs[i]);
    if (!meta.ok()) return meta.status().WithContext("workitem dataset");
    if (i == 0) first = *meta;
    const auto key = std::make_pair(meta->study_uid.str(), meta->series_uid.str());
    auto [it, fresh] = series_index.emplace(key, series.size());
    if (fresh) series.push_back(SeriesInputs{key.first, key.second, {}});
    series[it->second].instances.emplace_back(meta->sop_class_uid.str(),
                                              meta->sop_instance_uid.str());
  }

  std::vector<json> input_items;
  for (const SeriesInputs& s : series) {
    std::vector<json> references;
    for (const auto& [sop_class, sop_instance] : s.instances) {
      json reference = json::object();
      reference[upstag::kReferencedSopClassUid] = DicomJsonValue("UI", sop_class);
      reference[upstag::kReferencedSopInstanceUid] = DicomJsonValue("UI", sop_instance);
      references.push_back(std::move(reference));
    }
    json retrieval = json::object();
    retrieval[upstag::kRetrieveUrl] = DicomJsonValue("UR", job_url + "/studies/" + s.study_uid);
    json item = json::object();
    item[upstag::kTypeOfInstances] = DicomJsonValue("CS", "DICOM");
    item[upstag::kStudyInstanceUid] = DicomJsonValue("UI", s.study_uid);
    item[upstag::kSeriesInstanceUid] = DicomJsonValue("UI", s.series_uid);
    item[upstag::kReferencedSopSequence] = DicomJsonSequence(std::move(references));
    item[upstag::kWadoRsRetrievalSequence] = DicomJsonSequence({retrieval});
    input_items.push_back(std::move(item));
  }

  auto attribute = [&](const char* keyword) {
    auto it = first.attributes.find(keyword);
    return it == first.attributes.end() ? std::string() : it->second;
  };
  json request = json::object();
  request[upstag::kStudyInstanceUid] = DicomJsonValue("UI", first.study_uid.str());
  request[upstag::kAccessionNumber] = DicomJsonValue("SH", first.accession_number);
  request[upstag::kRequestedProcedureId] = DicomJsonValue("SH", "");
  request[upstag::kRequestedProcedureDescription] = DicomJsonValue("LO", "");
  json storage = json::object();
  storage[upstag::kStorageUrl] = DicomJsonValue("UR", job_url + "/studies");
  json destination = json::object();
  destination[upstag::kStowRsStorageSequence] = DicomJsonSequence({storage});

  json ds = json::object();
  // Unified Procedure Step Relationship: the patient and the request, as the tool sees them.
  ds[upstag::kPatientName] = DicomJsonPersonName(first.patient_name);
  ds[upstag::kPatientId] = DicomJsonValue("LO", first.patient_id);
  ds[upstag::kPatientBirthDate] = DicomJsonValue("DA", attribute("PatientBirthDate"));
  ds[upstag::kPatientSex] = DicomJsonValue("CS", attribute("PatientSex"));
  ds[upstag::kAdmissionId] = DicomJsonValue("LO", "");
  ds[upstag::kStudyInstanceUid] = DicomJsonValue("UI", first.study_uid.str());
  ds[upstag::kReferencedRequestSequence] = DicomJsonSequence({request});
  // Unified Procedure Step Scheduled Procedure Information.
  ds[upstag::kScheduledProcedureStepPriority] = DicomJsonValue("CS", tool.priority);
  ds[upstag::kWorklistLabel] = DicomJsonValue("LO", Lo(tool.name));
  ds[upstag::kProcedureStepLabel] = DicomJsonValue("LO", Lo("AI inference by " + tool.name));
  ds[upstag::kScheduledWorkitemCodeSequence] =
      DicomJsonSequence({DicomJsonCode(kWorkitemCode, kWorkitemScheme, kWorkitemMeaning)});
  ds[upstag::kScheduledProcedureStepStartDateTime] = DicomJsonValue("DT", DicomDateTimeUtc(now));
  ds[upstag::kScheduledStationNameCodeSequence] = DicomJsonSequence({});
  ds[upstag::kScheduledStationClassCodeSequence] = DicomJsonSequence({});
  ds[upstag::kScheduledStationGeographicLocationCodeSequence] = DicomJsonSequence({});
  ds[upstag::kScheduledHumanPerformersSequence] = DicomJsonSequence({});
  ds[upstag::kInputReadinessState] = DicomJsonValue("CS", "READY");
  ds[upstag::kInputInformationSequence] = DicomJsonSequence(std::move(input_items));
  ds[upstag::kOutputDestinationSequence] = DicomJsonSequence({destination});
  if (tool.expected_turnaround.count() > 0) {
    ds[upstag::kExpectedCompletionDateTime] =
        DicomJsonValue("DT", DicomDateTimeUtc(now + tool.expected_turnaround));
  }
  return ds.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::unique_ptr<ToolAdapter> MakeWorklistAdapter(const ToolConfig& tool,
                                                 std::string results_base_url, Worklist& worklist,
                                                 const Clock& clock) {
  return std::make_unique<WorklistAdapter>(tool, std::move(results_base_url), worklist, clock);
}

}  // namespace conduit
