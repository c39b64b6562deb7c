// The worklist adapter: the workitem it builds from a job's inputs (parsed back and checked
// reference by reference), de-identified inputs leaving no original identifier in it, and
// Dispatch/CheckProgress over a real Worklist on a real SQLite index.
#include "adapters/ups_worklist_adapter.h"

#include <dcmtk/dcmdata/dctk.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "adapters/tool_adapter.h"
#include "adapters/ups_dataset.h"
#include "adapters/ups_worklist.h"
#include "deid/deidentifier.h"
#include "dicom/instance_meta.h"
#include "dicom/test_support.h"
#include "store/sqlite_index.h"

namespace conduit {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using std::chrono::minutes;

constexpr char kBase[] = "https://conduit.trust.example:8443";

// The Value array of a sequence (empty if none).
json Items(const json& ds, const char* tag) {
  if (!ds.contains(tag) || !ds[tag].contains("Value")) return json::array();
  return ds[tag]["Value"];
}

// A CT image with the patient's birth date and sex added.
fs::path WriteCt(const fs::path& file, const std::string& study, const std::string& series,
                 const std::string& sop, int number) {
  testing::CtSpec spec;
  spec.study_uid = study;
  spec.series_uid = series;
  spec.sop_instance_uid = sop;
  spec.instance_number = number;
  testing::WriteCtImage(file, spec);
  DcmFileFormat ff;
  EXPECT_TRUE(ff.loadFile(file.c_str()).good());
  ff.loadAllDataIntoMemory();
  ff.getDataset()->putAndInsertString(DCM_PatientBirthDate, "19610417");
  ff.getDataset()->putAndInsertString(DCM_PatientSex, "F");
  EXPECT_TRUE(ff.saveFile(file.c_str(), ff.getDataset()->getOriginalXfer()).good());
  return file;
}

class WorklistAdapterTest : public ::testing::Test {
 protected:
  WorklistAdapterTest() {
    tool_.name = "lungs";
    tool_.kind = ToolKind::kWorklist;
    tool_.priority = "HIGH";
    tool_.expected_turnaround = minutes(10);
    config_.tools = {tool_};
    fs::create_directories(dir_.path() / "in");
    // Study A: two series (2 and 1 instances); a prior, study B: one series.
    inputs_ = {
        WriteCt(dir_.path() / "in" / "a1.dcm", "1.2.826.0.1.9.1", "1.2.826.0.1.9.1.1",
                "1.2.826.0.1.9.1.1.1", 1),
        WriteCt(dir_.path() / "in" / "a2.dcm", "1.2.826.0.1.9.1", "1.2.826.0.1.9.1.1",
                "1.2.826.0.1.9.1.1.2", 2),
        WriteCt(dir_.path() / "in" / "a3.dcm", "1.2.826.0.1.9.1", "1.2.826.0.1.9.1.2",
                "1.2.826.0.1.9.1.2.1", 1),
        WriteCt(dir_.path() / "in" / "b1.dcm", "1.2.826.0.1.9.2", "1.2.826.0.1.9.2.1",
                "1.2.826.0.1.9.2.1.1", 1),
    };
    job_.id = JobId{42};
    job_.study_uid = StudyUid("1.2.826.0.1.9.1");
    job_.tool = "lungs";
  }

  json Build(const std::vector<fs::path>& inputs) {
    auto text = BuildWorkitemDataset(tool_, job_, inputs, std::string(kBase) + "/", clock_.Now());
    EXPECT_TRUE(text.ok()) << text.status().ToString();
    return text.ok() ? json::parse(*text) : json::object();
  }

  testing::TempDir dir_;
  FakeClock clock_;
  ToolConfig tool_;
  Config config_;
  JobRecord job_;
  std::vector<fs::path> inputs_;
};

TEST_F(WorklistAdapterTest, TheWorkitemReferencesEveryInputWhereTheJobServesIt) {
  const json ds = Build(inputs_);
  EXPECT_EQ(DicomJsonString(ds, upstag::kPatientName), "TEST^PATIENT");
  EXPECT_EQ(DicomJsonString(ds, upstag::kPatientId), "PID0001");
  EXPECT_EQ(DicomJsonString(ds, upstag::kPatientBirthDate), "19610417");
  EXPECT_EQ(DicomJsonString(ds, upstag::kPatientSex), "F");
  EXPECT_EQ(DicomJsonString(ds, upstag::kStudyInstanceUid), "1.2.826.0.1.9.1");
  const json request = Items(ds, upstag::kReferencedRequestSequence);
  ASSERT_EQ(request.size(), 1u);
  EXPECT_EQ(DicomJsonString(request[0], upstag::kAccessionNumber), "ACC0001");
  EXPECT_EQ(DicomJsonString(request[0], upstag::kStudyInstanceUid), "1.2.826.0.1.9.1");

  EXPECT_EQ(DicomJsonString(ds, upstag::kScheduledProcedureStepPriority), "HIGH");
  EXPECT_EQ(DicomJsonString(ds, upstag::kWorklistLabel), "lungs");
  EXPECT_EQ(DicomJsonString(ds, upstag::kProcedureStepLabel), "AI inference by lungs");
  EXPECT_EQ(DicomJsonString(ds, upstag::kInputReadinessState), "READY");
  EXPECT_EQ(DicomJsonString(ds, upstag::kScheduledProcedureStepStartDateTime),
            "20231114221320+0000");
  EXPECT_EQ(DicomJsonString(ds, upstag::kExpectedCompletionDateTime), "20231114222320+0000");
  const json code = Items(ds, upstag::kScheduledWorkitemCodeSequence);
  ASSERT_EQ(code.size(), 1u);
  EXPECT_EQ(DicomJsonString(code[0], upstag::kCodeValue), "110004");
  EXPECT_EQ(DicomJsonString(code[0], upstag::kCodingSchemeDesignator), "DCM");
  EXPECT_EQ(DicomJsonString(code[0], upstag::kCodeMeaning), "Computer Aided Detection");

  struct Expected {
    std::string study, series;
    std::vector<std::string> sops;
  };
  const std::vector<Expected> expected = {
      {"1.2.826.0.1.9.1", "1.2.826.0.1.9.1.1", {"1.2.826.0.1.9.1.1.1", "1.2.826.0.1.9.1.1.2"}},
      {"1.2.826.0.1.9.1", "1.2.826.0.1.9.1.2", {"1.2.826.0.1.9.1.2.1"}},
      {"1.2.826.0.1.9.2", "1.2.826.0.1.9.2.1", {"1.2.826.0.1.9.2.1.1"}},
  };
  const json inputs = Items(ds, upstag::kInputInformationSequence);
  ASSERT_EQ(inputs.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    const json& item = inputs[i];
    EXPECT_EQ(DicomJsonString(item, upstag::kTypeOfInstances), "DICOM");
    EXPECT_EQ(DicomJsonString(item, upstag::kStudyInstanceUid), expected[i].study);
    EXPECT_EQ(DicomJsonString(item, upstag::kSeriesInstanceUid), expected[i].series);
    const json refs = Items(item, upstag::kReferencedSopSequence);
    ASSERT_EQ(refs.size(), expected[i].sops.size()) << i;
    for (size_t k = 0; k < refs.size(); ++k) {
      EXPECT_EQ(DicomJsonString(refs[k], upstag::kReferencedSopClassUid),
                "1.2.840.10008.5.1.4.1.1.2");
      EXPECT_EQ(DicomJsonString(refs[k], upstag::kReferencedSopInstanceUid), expected[i].sops[k]);
    }
    const json wado = Items(item, upstag::kWadoRsRetrievalSequence);
    ASSERT_EQ(wado.size(), 1u);
    EXPECT_EQ(DicomJsonString(wado[0], upstag::kRetrieveUrl),
              std::string(kBase) + "/dicom-web/jobs/42/studies/" + expected[i].study);
    EXPECT_EQ(wado[0][upstag::kRetrieveUrl]["vr"], "UR");
  }
  const json destinations = Items(ds, upstag::kOutputDestinationSequence);
  ASSERT_EQ(destinations.size(), 1u);
  const json stow = Items(destinations[0], upstag::kStowRsStorageSequence);
  ASSERT_EQ(stow.size(), 1u);
  EXPECT_EQ(DicomJsonString(stow[0], upstag::kStorageUrl),
            std::string(kBase) + "/dicom-web/jobs/42/studies");

  // Every element is DICOM JSON: a tag key, a VR, and values only in "Value".
  std::function<void(const json&)> check = [&](const json& dataset) {
    ASSERT_TRUE(dataset.is_object());
    for (const auto& [tag, element] : dataset.items()) {
      EXPECT_EQ(tag.size(), 8u) << tag;
      ASSERT_TRUE(element.contains("vr")) << tag;
      for (const auto& [key, unused] : element.items()) {
        EXPECT_TRUE(key == "vr" || key == "Value") << tag << " has " << key;
      }
      if (element["vr"] == "SQ" && element.contains("Value")) {
        for (const json& item : element["Value"]) check(item);
      }
    }
  };
  check(ds);

  EXPECT_EQ(BuildWorkitemDataset(tool_, job_, {}, kBase, clock_.Now()).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_FALSE(
      BuildWorkitemDataset(tool_, job_, {dir_.path() / "missing.dcm"}, kBase, clock_.Now()).ok());
}

TEST_F(WorklistAdapterTest, ADeidentifiedToolsWorkitemHoldsNoOriginalIdentifier) {
  PseudonymKey key;
  key.bytes.assign(32, 9);
  key.id = "test-key";
  Deidentifier deid(DeidSettings{}, Pseudonymiser(key));
  fs::create_directories(dir_.path() / "deidentified");
  std::vector<fs::path> prepared;
  for (const fs::path& in : inputs_) {
    fs::path out = dir_.path() / "deidentified" / in.filename();
    auto outcome = deid.DeidentifyFile(in, out);
    ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
    ASSERT_FALSE(outcome->refused) << outcome->refusal;
    prepared.push_back(out);
  }
  auto text = BuildWorkitemDataset(tool_, job_, prepared, kBase, clock_.Now());
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  for (const char* original :
       {"TEST^PATIENT", "PID0001", "ACC0001", "19610417", "1.2.826.0.1.9.1", "1.2.826.0.1.9.2",
        "1.2.826.0.1.9.1.1.1", "1.2.826.0.1.9.1.2.1", "1.2.826.0.1.9.2.1.1"}) {
    EXPECT_EQ(text->find(original), std::string::npos) << "original '" << original << "' leaked";
  }
  // What it holds is what the tool will retrieve: the de-identified files' own.
  auto meta = ReadInstanceMeta(prepared[0]);
  ASSERT_TRUE(meta.ok());
  const json ds = json::parse(*text);
  EXPECT_EQ(DicomJsonString(ds, upstag::kPatientId), meta->patient_id);
  EXPECT_EQ(DicomJsonString(ds, upstag::kStudyInstanceUid), meta->study_uid.str());
  const json inputs = Items(ds, upstag::kInputInformationSequence);
  ASSERT_EQ(inputs.size(), 3u);
  EXPECT_EQ(
      DicomJsonString(Items(inputs[0], upstag::kWadoRsRetrievalSequence)[0], upstag::kRetrieveUrl),
      std::string(kBase) + "/dicom-web/jobs/42/studies/" + meta->study_uid.str());
  EXPECT_EQ(DicomJsonString(Items(inputs[0], upstag::kReferencedSopSequence)[0],
                            upstag::kReferencedSopInstanceUid),
            meta->sop_instance_uid.str());
}

TEST_F(WorklistAdapterTest, DispatchSchedulesOnceAndCheckProgressFollowsTheWorkitem) {
  auto index = OpenSqliteIndex(dir_.path() / "index.sqlite");
  ASSERT_TRUE(index.ok());
  Metrics metrics;
  Worklist worklist(**index, clock_, config_, metrics, nullptr, nullptr, nullptr);
  auto adapter = MakeWorklistAdapter(tool_, kBase, worklist, clock_);

  EXPECT_EQ(adapter->CheckProgress(job_)->progress, ToolAdapter::Progress::kUnknown)
      << "not dispatched yet";
  DispatchRequest request;
  request.job = job_;
  request.inputs = inputs_;
  request.log_file = dir_.path() / "job.log";
  auto outcome = adapter->Dispatch(request);
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_TRUE(outcome->results_pending);
  EXPECT_TRUE(outcome->result_files.empty());
  ASSERT_TRUE(adapter->Dispatch(request).ok());
  auto items = (*index)->WorkitemsOfJob(job_.id);
  ASSERT_EQ(items->size(), 1u) << "a dispatch retried schedules no second workitem";
  const WorkitemRecord w = (*items)[0];
  EXPECT_EQ(w.priority, "HIGH");
  EXPECT_EQ(Items(json::parse(w.dataset), upstag::kInputInformationSequence).size(), 3u);
  std::ifstream log(request.log_file);
  std::stringstream logged;
  logged << log.rdbuf();
  EXPECT_NE(logged.str().find("workitem SCHEDULED on worklist 'lungs'"), std::string::npos);
  EXPECT_EQ(logged.str().find(w.uid), std::string::npos) << "no UID in the job log";

  EXPECT_EQ(adapter->CheckProgress(job_)->progress, ToolAdapter::Progress::kRunning);
  const UpsCaller performer{"lungs", "AI1"};
  ASSERT_TRUE(worklist.Claim(performer, w.uid, "2.25.1").ok());
  EXPECT_EQ(adapter->CheckProgress(job_)->progress, ToolAdapter::Progress::kRunning);
  ASSERT_TRUE(worklist.Finish(performer, w.uid, "2.25.1", UpsState::kCompleted, "").ok());
  EXPECT_EQ(adapter->CheckProgress(job_)->progress, ToolAdapter::Progress::kDone);

  JobRecord other = job_;
  other.id = JobId{43};
  request.job = other;
  ASSERT_TRUE(adapter->Dispatch(request).ok());
  const std::string uid = (*(*index)->WorkitemsOfJob(other.id))[0].uid;
  ASSERT_TRUE(worklist.Claim(performer, uid, "2.25.2").ok());
  ASSERT_TRUE(
      worklist.Finish(performer, uid, "2.25.2", UpsState::kCanceled, "series too thick").ok());
  auto failed = adapter->CheckProgress(other);
  ASSERT_TRUE(failed.ok());
  EXPECT_EQ(failed->progress, ToolAdapter::Progress::kFailed);
  EXPECT_EQ(failed->why, "the workitem was canceled: series too thick");

  // Abandoned: the job keeps running on the workitem that replaces it.
  JobRecord third = job_;
  third.id = JobId{44};
  request.job = third;
  ASSERT_TRUE(adapter->Dispatch(request).ok());
  const std::string claimed = (*(*index)->WorkitemsOfJob(third.id))[0].uid;
  ASSERT_TRUE(worklist.Claim(performer, claimed, "2.25.3").ok());
  clock_.Advance(minutes(11));
  EXPECT_EQ(adapter->CheckProgress(third)->progress, ToolAdapter::Progress::kRunning);
  EXPECT_EQ((*index)->WorkitemsOfJob(third.id)->size(), 2u);

  auto unreachable = MakeWorklistAdapter(tool_, "", worklist, clock_);
  EXPECT_EQ(unreachable->Dispatch(request).status().code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace conduit
