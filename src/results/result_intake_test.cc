// ResultIntake against a real SqliteIndex and Spool in a temp dir.
#include "results/result_intake.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <string>

#include "results/result_test_objects.h"
#include "store/file_ops.h"
#include "store/sqlite_index.h"
#include "testing/testing.h"
#include "testing/unlink_faults.h"

namespace conduit {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;
using testing::WriteTestDicom;

constexpr const char* kStudy = "1.2.826.0.1.3680043.9.7.200";
constexpr const char* kSeries = "1.2.826.0.1.3680043.9.7.200.1";
constexpr const char* kInputSop = "1.2.826.0.1.3680043.9.7.200.1.1";
constexpr const char* kResultSeries = "1.2.826.0.1.3680043.9.7.200.2";
constexpr const char* kResultSop = "1.2.826.0.1.3680043.9.7.200.2.1";

std::string ReadAll(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class ResultIntakeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto spool = OpenSpoolWithFileOps(SpoolOptions{tmp_.path() / "spool", 0},
                                      std::make_unique<testing::UnlinkFaults>(unlink_error_));
    ASSERT_TRUE(spool.ok()) << spool.status().ToString();
    spool_ = std::move(spool).value();
    auto index = OpenSqliteIndex(tmp_.path() / "index.db");
    ASSERT_TRUE(index.ok()) << index.status().ToString();
    index_ = std::move(index).value();
    intake_ = std::make_unique<ResultIntake>(*index_, *spool_, clock_, metrics_);

    // The study's one input instance, received and indexed as ingest would.
    const fs::path incoming = spool_->NewIncomingPath();
    fs::create_directories(incoming.parent_path());
    ASSERT_TRUE(WriteTestDicom(incoming, kStudy, kSeries, kInputSop).ok());
    input_bytes_ = ReadAll(incoming);
    auto key = spool_->Commit(incoming, SopInstanceUid(kInputSop));
    ASSERT_TRUE(key.ok()) << key.status().ToString();
    input_key_ = *key;
    InstanceRecord input;
    input.study_uid = StudyUid(kStudy);
    input.series_uid = SeriesUid(kSeries);
    input.sop_instance_uid = SopInstanceUid(kInputSop);
    input.sop_class_uid = SopClassUid(testing::kCtImageStorage);
    input.spool_key = input_key_;
    input.size_bytes = input_bytes_.size();
    input.received_at = clock_.Now();
    input.calling_ae = AeTitle("MODALITY");
    AuditEvent receive{clock_.Now(), "receive", "success", "MODALITY", StudyRef(input.study_uid),
                       JobId{},      "{}",      ""};
    ASSERT_TRUE(index_->PutInstance(input, receive).ok());
    spool_->Settled(input_key_);

    job_.study_uid = StudyUid(kStudy);
    job_.route = "ct-route";
    job_.tool = "tool";
    job_.destinations = {"pacs"};
    job_.state = JobState::kAwaitingResults;
    job_.created_at = clock_.Now();
    job_.updated_at = clock_.Now();
    auto id = index_->CreateJob(job_, AuditEvent{clock_.Now(), "create", "success", "test",
                                                 StudyRef(job_.study_uid), JobId{}, "{}", ""});
    ASSERT_TRUE(id.ok()) << id.status().ToString();
    job_.id = *id;
    fs::create_directories(tmp_.path() / "out");
  }

  // A result file as a tool would return it, and its meta read back from disk.
  std::pair<fs::path, InstanceMeta> ToolResult(const std::string& name, const std::string& study,
                                               const std::string& series, const std::string& sop) {
    const fs::path file = tmp_.path() / "out" / name;
    EXPECT_TRUE(WriteTestDicom(file, study, series, sop, testing::kSecondaryCaptureStorage).ok());
    Result<InstanceMeta> meta = ReadInstanceMeta(file);
    EXPECT_TRUE(meta.ok()) << meta.status().ToString();
    return {file, meta.ok() ? *meta : InstanceMeta{}};
  }

  bool AuditHas(const std::string& action, const std::string& outcome) {
    auto audit = index_->ListAudit(100, 0);
    if (!audit.ok()) return false;
    for (const AuditEvent& e : *audit) {
      if (e.action == action && e.outcome == outcome && e.job_id == job_.id) return true;
    }
    return false;
  }

  fs::path QuarantineDir() const {
    return tmp_.path() / "spool" / "quarantine" / std::to_string(job_.id.value);
  }

  // A result object built by `build` on this study's one input, saved for the tool's output.
  std::pair<fs::path, InstanceMeta> BuiltResult(
      const std::string& name,
      const std::function<std::unique_ptr<DcmFileFormat>(const result_test::Inputs&)>& build) {
    result_test::Inputs in;
    in.study = kStudy;
    in.series = kSeries;
    in.sops = {kInputSop};
    const fs::path file = tmp_.path() / "out" / name;
    std::unique_ptr<DcmFileFormat> object = build(in);
    EXPECT_NE(object, nullptr);
    if (object != nullptr) {
      EXPECT_TRUE(result_test::Save(*object, file).ok());
    }
    Result<InstanceMeta> meta = ReadInstanceMeta(file);
    EXPECT_TRUE(meta.ok()) << meta.status().ToString();
    return {file, meta.ok() ? *meta : InstanceMeta{}};
  }

  std::string AuditDetail(const std::string& action) {
    auto audit = index_->ListAudit(100, 0);
    if (!audit.ok()) return {};
    for (const AuditEvent& e : *audit) {
      if (e.action == action && e.job_id == job_.id) return e.detail;
    }
    return {};
  }

  TempDir tmp_;
  std::atomic<int> unlink_error_{0};
  FakeClock clock_;
  Metrics metrics_;
  std::unique_ptr<Spool> spool_;
  std::unique_ptr<Index> index_;
  std::unique_ptr<ResultIntake> intake_;
  JobRecord job_;
  std::string input_key_;
  std::string input_bytes_;
};

TEST_F(ResultIntakeTest, AcceptedResultIsCommittedAndAttachedToTheJob) {
  auto [file, meta] = ToolResult("sc.dcm", kStudy, kResultSeries, kResultSop);
  const std::string bytes = ReadAll(file);
  ASSERT_TRUE(intake_->Attach(job_, file, meta, "tool").ok());

  EXPECT_FALSE(fs::exists(file)) << "the intake takes ownership of the file";
  auto results = index_->ListResults(job_.id);
  ASSERT_TRUE(results.ok());
  ASSERT_EQ(results->size(), 1u);
  const ResultRecord& r = results->front();
  EXPECT_EQ(r.sop_instance_uid.str(), kResultSop);
  EXPECT_EQ(r.sop_class_uid.str(), testing::kSecondaryCaptureStorage);
  EXPECT_EQ(r.series_uid.str(), kResultSeries);
  EXPECT_EQ(r.size_bytes, bytes.size());
  EXPECT_EQ(ReadAll(spool_->PathOf(r.spool_key)), bytes);
  EXPECT_TRUE(AuditHas("result", "success"));
  EXPECT_FALSE(fs::exists(QuarantineDir()));
}

TEST_F(ResultIntakeTest, ResultForAnotherStudyIsQuarantinedWithItsReason) {
  auto [file, meta] =
      ToolResult("other.dcm", "1.2.826.0.1.3680043.9.7.300", "1.2.826.0.1.3680043.9.7.300.1",
                 "1.2.826.0.1.3680043.9.7.300.1.1");
  Status st = intake_->Attach(job_, file, meta, "tool");
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("result for another study"), std::string::npos) << st.message();

  EXPECT_FALSE(fs::exists(file));
  EXPECT_TRUE(fs::exists(QuarantineDir() / "other.dcm"));
  EXPECT_NE(ReadAll(QuarantineDir() / "other.dcm.reason.txt").find("result for another study"),
            std::string::npos);
  auto results = index_->ListResults(job_.id);
  ASSERT_TRUE(results.ok());
  EXPECT_TRUE(results->empty());
  EXPECT_TRUE(AuditHas("quarantine", "failure"));
}

TEST_F(ResultIntakeTest, ToolEchoingAnInputIsQuarantinedAndTheInputKept) {
  auto [file, meta] = ToolResult("echo.dcm", kStudy, kSeries, kInputSop);
  Status st = intake_->Attach(job_, file, meta, "tool");
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("input"), std::string::npos) << st.message();

  EXPECT_TRUE(fs::exists(QuarantineDir() / "echo.dcm"));
  EXPECT_TRUE(fs::exists(QuarantineDir() / "echo.dcm.reason.txt"));
  EXPECT_EQ(ReadAll(spool_->PathOf(input_key_)), input_bytes_) << "input bytes untouched";
  auto results = index_->ListResults(job_.id);
  ASSERT_TRUE(results.ok());
  EXPECT_TRUE(results->empty());
}

TEST_F(ResultIntakeTest, TwoQuarantinedFilesOfTheSameNameAreBothKept) {
  for (int i = 0; i < 2; ++i) {
    auto [file, meta] =
        ToolResult("same.dcm", "1.2.826.0.1.3680043.9.7.300", "1.2.826.0.1.3680043.9.7.300.1",
                   "1.2.826.0.1.3680043.9.7.300.1." + std::to_string(i + 1));
    EXPECT_EQ(intake_->Attach(job_, file, meta, "tool").code(), StatusCode::kInvalidArgument);
  }
  int files = 0;
  for (const auto& e : fs::directory_iterator(QuarantineDir())) {
    if (e.path().extension() == ".dcm") ++files;
  }
  EXPECT_EQ(files, 2);
}

TEST_F(ResultIntakeTest, ValidResultHasItsFindingsRecorded) {
  auto [file, meta] = BuiltResult(
      "sr.dcm", [](const result_test::Inputs& in) { return result_test::MeasurementReport(in); });
  ASSERT_TRUE(intake_->Attach(job_, file, meta, "tool").ok());

  auto findings = index_->ListFindings(job_.id);
  ASSERT_TRUE(findings.ok()) << findings.status().ToString();
  ASSERT_EQ(findings->size(), 4u);
  for (const FindingRecord& f : *findings) {
    EXPECT_EQ(f.job_id, job_.id);
    EXPECT_EQ(f.tool, "tool");
    EXPECT_EQ(f.result_sop_uid, meta.sop_instance_uid);
    EXPECT_EQ(f.recorded_at, clock_.Now());
  }
  EXPECT_EQ((*findings)[0].kind, "finding");
  EXPECT_EQ((*findings)[0].referenced_sop_uid, kInputSop);
  EXPECT_NE(AuditDetail("result").find("\"findings\":4"), std::string::npos)
      << AuditDetail("result");
  EXPECT_EQ(metrics_.Value("conduit_tool_results_invalid_total", R"(tool="tool")"), 0);
}

TEST_F(ResultIntakeTest, ResultGivenAgainReplacesItsFindings) {
  for (int i = 0; i < 2; ++i) {
    auto [file, meta] = BuiltResult(
        "seg.dcm", [](const result_test::Inputs& in) { return result_test::Segmentation(in); });
    ASSERT_TRUE(intake_->Attach(job_, file, meta, "tool").ok());
  }
  auto findings = index_->ListFindings(job_.id);
  ASSERT_TRUE(findings.ok());
  EXPECT_EQ(findings->size(), 2u) << "one per segment, once";
}

TEST_F(ResultIntakeTest, InvalidResultIsQuarantinedCountedAndAuditedWithItsReason) {
  auto [file, meta] = BuiltResult("sc.dcm", [](const result_test::Inputs& in) {
    return result_test::SecondaryCapture(in, result_test::kUnknownSop);
  });
  Status st = intake_->Attach(job_, file, meta, "tool");
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  const std::string reason = "not one of the job's input instances";
  EXPECT_NE(st.message().find(reason), std::string::npos) << st.message();

  EXPECT_TRUE(fs::exists(QuarantineDir() / "sc.dcm"));
  EXPECT_NE(ReadAll(QuarantineDir() / "sc.dcm.reason.txt").find(reason), std::string::npos);
  EXPECT_NE(AuditDetail("quarantine").find(reason), std::string::npos) << AuditDetail("quarantine");
  auto results = index_->ListResults(job_.id);
  ASSERT_TRUE(results.ok());
  EXPECT_TRUE(results->empty());
  auto findings = index_->ListFindings(job_.id);
  ASSERT_TRUE(findings.ok());
  EXPECT_TRUE(findings->empty());
  EXPECT_EQ(metrics_.Value("conduit_tool_results_invalid_total", R"(tool="tool")"), 1);
}

TEST_F(ResultIntakeTest, ResultInAnInputSeriesIsQuarantined) {
  auto [file, meta] = BuiltResult("seg.dcm", [](const result_test::Inputs& in) {
    auto seg = result_test::Segmentation(in);
    seg->getDataset()->putAndInsertString(DCM_SeriesInstanceUID, kSeries);
    return seg;
  });
  Status st = intake_->Attach(job_, file, meta, "tool");
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("input series"), std::string::npos) << st.message();
  EXPECT_EQ(metrics_.Value("conduit_tool_results_invalid_total", R"(tool="tool")"), 1);
}

// --- results referring to quarantined results (WithholdDependents) ---

class WithholdDependentsTest : public ResultIntakeTest {
 protected:
  static result_test::Inputs In() {
    result_test::Inputs in;
    in.study = kStudy;
    in.series = kSeries;
    in.sops = {kInputSop};
    return in;
  }
  // A SEG the validator refuses (no Pixel Data).
  static std::unique_ptr<DcmFileFormat> BrokenSeg() {
    auto seg = result_test::Segmentation(In());
    seg->getDataset()->findAndDeleteElement(DCM_PixelData);
    return seg;
  }
  static std::string SopOf(DcmFileFormat& object) {
    OFString sop;
    object.getDataset()->findAndGetOFString(DCM_SOPInstanceUID, sop);
    return sop.c_str();
  }
  // `object` saved as a tool's output file `name` and given to the intake.
  Status Give(const std::string& name, DcmFileFormat& object) {
    const fs::path file = tmp_.path() / "out" / name;
    EXPECT_TRUE(result_test::Save(object, file).ok());
    Result<InstanceMeta> meta = ReadInstanceMeta(file);
    EXPECT_TRUE(meta.ok()) << meta.status().ToString();
    if (!meta.ok()) return meta.status();
    return intake_->Attach(job_, file, *meta, "tool");
  }
  // A TID 1500 report citing `cited` in its evidence.
  static std::unique_ptr<DcmFileFormat> ReportCiting(DcmFileFormat& cited) {
    auto sr = result_test::MeasurementReport(In());
    result_test::AddResultEvidence(*sr, cited);
    return sr;
  }
  std::set<std::string> Attached() {
    std::set<std::string> out;
    auto results = index_->ListResults(job_.id);
    EXPECT_TRUE(results.ok());
    if (results.ok()) {
      for (const ResultRecord& r : *results) out.insert(r.sop_instance_uid.str());
    }
    return out;
  }
  std::string Withheld(const std::string& sop) {
    const fs::path file = QuarantineDir() / ("withheld-" + ResultRef(sop) + ".dcm");
    EXPECT_TRUE(fs::exists(file)) << file;
    return ReadAll(file.string() + ".reason.txt");
  }
  double Invalid() {
    return metrics_.Value("conduit_tool_results_invalid_total", R"(tool="tool")");
  }
};

TEST_F(WithholdDependentsTest, AReportArrivingAfterItsSegWasQuarantinedIsWithheld) {
  auto seg = BrokenSeg();
  auto sr = ReportCiting(*seg);
  auto sc = result_test::SecondaryCapture(In(), kInputSop);
  ASSERT_EQ(Give("seg.dcm", *seg).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(Give("sr.dcm", *sr).ok()) << "the SEG may still come: the SR is attached";
  ASSERT_TRUE(Give("sc.dcm", *sc).ok());
  const std::string sr_key = index_->ListResults(job_.id)->front().spool_key;

  auto withheld = intake_->WithholdDependents(job_, "tool");
  ASSERT_TRUE(withheld.ok()) << withheld.status().ToString();
  EXPECT_EQ(*withheld, 1);
  EXPECT_EQ(Attached(), std::set<std::string>{SopOf(*sc)}) << "the unrelated result still goes";
  const std::string reason = Withheld(SopOf(*sr));
  EXPECT_NE(reason.find("references quarantined result " + ResultRef(SopOf(*seg))),
            std::string::npos)
      << reason;
  EXPECT_EQ(reason.find(SopOf(*seg)), std::string::npos) << "no UID in clear: " << reason;
  EXPECT_FALSE(fs::exists(spool_->PathOf(sr_key))) << "the spool copy is gone";
  EXPECT_NE(AuditDetail("quarantine").find("references quarantined result"), std::string::npos);
  EXPECT_EQ(Invalid(), 2) << "the SEG and the SR";
  auto findings = index_->ListFindings(job_.id);
  ASSERT_TRUE(findings.ok());
  for (const FindingRecord& f : *findings) {
    EXPECT_NE(f.result_sop_uid.str(), SopOf(*sr)) << "a withheld report's findings go with it";
  }
  EXPECT_EQ(index_->ListQuarantined(job_.id)->size(), 2u);

  withheld = intake_->WithholdDependents(job_, "tool");
  ASSERT_TRUE(withheld.ok());
  EXPECT_EQ(*withheld, 0) << "idempotent: a retried delivery withholds nothing more";
}

TEST_F(WithholdDependentsTest, AWithheldResultWhoseFileCouldNotBeRemovedGoesAtTheNextStart) {
  // Also what a crash between the index forgetting it and its file going leaves behind.
  auto seg = BrokenSeg();
  auto sr = ReportCiting(*seg);
  ASSERT_EQ(Give("seg.dcm", *seg).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(Give("sr.dcm", *sr).ok());
  const std::string sr_key = index_->ListResults(job_.id)->front().spool_key;
  unlink_error_ = EIO;
  ASSERT_EQ(intake_->WithholdDependents(job_, "tool").value(), 1);
  EXPECT_TRUE(fs::exists(spool_->PathOf(sr_key)));
  unlink_error_ = 0;

  intake_.reset();
  spool_.reset();  // the restart
  spool_ = std::move(Spool::Open(SpoolOptions{tmp_.path() / "spool", 0}).value());
  auto removed = spool_->RemoveUnrecorded([&](const std::string& key, const SopInstanceUid& sop) {
    return index_->RecordsSpoolFile(key, sop);
  });
  ASSERT_TRUE(removed.ok()) << removed.status().ToString();
  EXPECT_FALSE(fs::exists(spool_->PathOf(sr_key)));
  EXPECT_TRUE(fs::exists(spool_->PathOf(input_key_))) << "what the index records stays";
}

TEST_F(WithholdDependentsTest, AReportAttachedBeforeItsSegWasQuarantinedIsWithheld) {
  auto seg = BrokenSeg();
  auto sr = ReportCiting(*seg);
  ASSERT_TRUE(Give("sr.dcm", *sr).ok());
  ASSERT_EQ(Give("seg.dcm", *seg).code(), StatusCode::kInvalidArgument);

  auto withheld = intake_->WithholdDependents(job_, "tool");
  ASSERT_TRUE(withheld.ok()) << withheld.status().ToString();
  EXPECT_EQ(*withheld, 1);
  EXPECT_TRUE(Attached().empty());
  EXPECT_NE(Withheld(SopOf(*sr)).find("references quarantined result"), std::string::npos);
}

TEST_F(WithholdDependentsTest, WithholdingIsTransitive) {
  auto seg = BrokenSeg();
  auto sr = ReportCiting(*seg);
  auto kos = result_test::KeyObjects(In());
  result_test::AddResultEvidence(*kos, *sr);
  // The KOS is listed first: only a second pass finds that the report it cites is withheld.
  ASSERT_TRUE(Give("kos.dcm", *kos).ok());
  clock_.Advance(std::chrono::seconds(1));
  ASSERT_TRUE(Give("sr.dcm", *sr).ok());
  ASSERT_EQ(Give("seg.dcm", *seg).code(), StatusCode::kInvalidArgument);

  auto withheld = intake_->WithholdDependents(job_, "tool");
  ASSERT_TRUE(withheld.ok()) << withheld.status().ToString();
  EXPECT_EQ(*withheld, 2);
  EXPECT_TRUE(Attached().empty());
  EXPECT_NE(Withheld(SopOf(*kos)).find("references quarantined result " + ResultRef(SopOf(*sr))),
            std::string::npos);
  EXPECT_EQ(Invalid(), 3);
}

TEST_F(WithholdDependentsTest, AResultAlreadyDeliveredEverywhereIsLeftAlone) {
  auto seg = BrokenSeg();
  auto sr = ReportCiting(*seg);
  ASSERT_TRUE(Give("sr.dcm", *sr).ok());
  AuditEvent audit{clock_.Now(), "deliver", "success", "pacs", "", job_.id, "{}", ""};
  ASSERT_TRUE(index_->MarkDelivered(job_.id, SopInstanceUid(SopOf(*sr)), "pacs", audit).ok());
  ASSERT_EQ(Give("seg.dcm", *seg).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(intake_->WithholdDependents(job_, "tool").value(), 0);
  EXPECT_EQ(Attached().size(), 1u);
}

TEST_F(WithholdDependentsTest, ATruncatedSegStillNamesItselfAndItsReportIsWithheld) {
  auto seg = result_test::Segmentation(In());
  auto sr = ReportCiting(*seg);
  ASSERT_TRUE(Give("sr.dcm", *sr).ok());
  const fs::path file = tmp_.path() / "out" / "seg.dcm";
  ASSERT_TRUE(result_test::Save(*seg, file).ok());
  fs::resize_file(file, fs::file_size(file) - 20);  // the pixel data cut short
  ASSERT_FALSE(ReadInstanceMeta(file).ok());
  ASSERT_EQ(intake_->Quarantine(job_, file, "not readable DICOM", "tool").code(),
            StatusCode::kInvalidArgument);
  auto quarantined = index_->ListQuarantined(job_.id);
  ASSERT_TRUE(quarantined.ok());
  ASSERT_EQ(quarantined->size(), 1u);
  EXPECT_EQ(quarantined->front().sop_instance_uid.str(), SopOf(*seg));

  EXPECT_EQ(intake_->WithholdDependents(job_, "tool").value(), 1);
  EXPECT_NE(Withheld(SopOf(*sr)).find("references quarantined result " + ResultRef(SopOf(*seg))),
            std::string::npos);
}

TEST_F(WithholdDependentsTest, AfterAnUnreadableQuarantineAReportCitingAMissingResultIsWithheld) {
  auto seg = result_test::Segmentation(In());
  auto sr = ReportCiting(*seg);
  ASSERT_TRUE(Give("sr.dcm", *sr).ok());
  EXPECT_EQ(intake_->WithholdDependents(job_, "tool").value(), 0)
      << "nothing quarantined: a report citing a result still to come is not withheld";

  const fs::path garbage = tmp_.path() / "out" / "truncated.dcm";
  std::ofstream(garbage, std::ios::binary) << std::string(128, '\0') << "DIC";
  ASSERT_EQ(intake_->Quarantine(job_, garbage, "not readable DICOM", "tool").code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(intake_->WithholdDependents(job_, "tool").value(), 1);
  EXPECT_TRUE(Attached().empty());
  const std::string reason = Withheld(SopOf(*sr));
  EXPECT_NE(reason.find("quarantined unreadable"), std::string::npos) << reason;
}

TEST_F(WithholdDependentsTest, AnEchoedInputQuarantinedDoesNotWithholdResultsCitingThatInput) {
  auto [echo, meta] = ToolResult("echo.dcm", kStudy, kSeries, kInputSop);
  ASSERT_EQ(intake_->Attach(job_, echo, meta, "tool").code(), StatusCode::kInvalidArgument);
  auto sr = result_test::MeasurementReport(In());
  ASSERT_TRUE(Give("sr.dcm", *sr).ok());
  EXPECT_EQ(intake_->WithholdDependents(job_, "tool").value(), 0);
  EXPECT_EQ(Attached().size(), 1u);
}

}  // namespace
}  // namespace conduit
