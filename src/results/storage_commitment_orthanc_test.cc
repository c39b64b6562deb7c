// Delivery with storage commitment against a real Orthanc (Debian orthanc) as the PACS: the
// results are C-STOREd, commitment is asked by N-ACTION, and Orthanc reports by
// N-EVENT-REPORT on an association it opens back to a real Conduit DIMSE listener.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "dicom/dimse_listener.h"
#include "dicom/storage_commitment.h"
#include "dicom/test_support.h"
#include "results/commitment_waiters.h"
#include "results/deliverer.h"
#include "store/sqlite_index.h"
#include "testing/testing.h"

namespace conduit {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr const char* kStudy = "1.2.826.0.1.3680043.9.7.410";
constexpr const char* kResultSeries = "1.2.826.0.1.3680043.9.7.410.9";

bool OrthancInstalled() {
  return fs::exists("/usr/sbin/Orthanc") || fs::exists("/usr/bin/Orthanc");
}

// The listener's sink: reports go to the deliveries waiting for them, as in the gateway.
class ForwardingSink : public testing::CommittingSink {
 public:
  ForwardingSink(fs::path root, CommitmentWaiters& waiters)
      : CommittingSink(std::move(root)), waiters_(waiters) {}
  Status OnCommitmentReport(const CommitmentReport& report,
                            const AssociationInfo& association) override {
    RETURN_IF_ERROR(CommittingSink::OnCommitmentReport(report, association));
    waiters_.Deliver(report);
    return Status::Ok();
  }

 private:
  CommitmentWaiters& waiters_;
};

class StorageCommitmentOrthancTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!OrthancInstalled()) GTEST_SKIP() << "the Orthanc binary is not installed";
    listener_port_ = testing::FreePort();
    orthanc_dicom_ = testing::FreePort();
    const int http_port = testing::FreePort();
    const fs::path db = tmp_.path() / "orthanc";
    fs::create_directories(db);
    const nlohmann::json orthanc = {
        {"Name", "commitment-pacs"},
        {"StorageDirectory", db.string()},
        {"IndexDirectory", db.string()},
        {"DicomAet", "ORTHANC"},
        {"DicomPort", orthanc_dicom_},
        {"HttpPort", http_port},
        {"RemoteAccessAllowed", false},
        {"AuthenticationEnabled", false},
        {"DicomAlwaysAllowStore", true},
        {"DicomModalities",
         {{"conduit", {{"AET", "CONDUIT"}, {"Host", "127.0.0.1"}, {"Port", ReportPort()}}}}},
    };
    const fs::path config_file = tmp_.path() / "orthanc.json";
    std::ofstream(config_file) << orthanc.dump(2);
    orthanc_ = std::make_unique<testing::Process>(
        std::vector<std::string>{"Orthanc", config_file.string()});
    ASSERT_TRUE(testing::WaitForPort(orthanc_dicom_, 60s)) << "Orthanc did not start";

    DicomConfig dicom;
    dicom.ae_title = AeTitle("CONDUIT");
    dicom.bind = "127.0.0.1";
    dicom.port = listener_port_;
    sink_ = std::make_unique<ForwardingSink>(tmp_.path() / "sink", waiters_);
    listener_ = MakeDimseListener(dicom, *sink_);
    ASSERT_TRUE(listener_->Start().ok());

    auto spool = Spool::Open(SpoolOptions{tmp_.path() / "spool", 0});
    ASSERT_TRUE(spool.ok());
    spool_ = std::move(spool).value();
    auto index = OpenSqliteIndex(tmp_.path() / "index.db");
    ASSERT_TRUE(index.ok());
    index_ = std::move(index).value();
    config_.dicom.ae_title = AeTitle("CONDUIT");
    DestinationConfig pacs;
    pacs.name = "pacs";
    pacs.ae_title = AeTitle("ORTHANC");
    pacs.host = "127.0.0.1";
    pacs.port = orthanc_dicom_;
    pacs.timeout = 10s;
    pacs.storage_commitment = true;
    pacs.commitment_timeout = 20s;
    config_.destinations.push_back(pacs);
  }

  // Where Orthanc sends its reports for AE CONDUIT.
  virtual int ReportPort() const { return listener_port_; }

  void TearDown() override {
    if (listener_) listener_->Stop();
  }

  JobRecord CreateJobWithResults(int n) {
    JobRecord job;
    job.study_uid = StudyUid(kStudy);
    job.route = "route";
    job.tool = "tool";
    job.destinations = {"pacs"};
    job.state = JobState::kDelivering;
    job.created_at = clock_.Now();
    job.updated_at = clock_.Now();
    auto id = index_->CreateJob(job, AuditEvent{clock_.Now(), "create", "success", "test",
                                                StudyRef(job.study_uid), JobId{}, "{}", ""});
    EXPECT_TRUE(id.ok());
    job.id = *id;
    for (int i = 1; i <= n; ++i) {
      const SopInstanceUid sop(std::string(kResultSeries) + "." + std::to_string(i));
      const fs::path incoming = spool_->NewIncomingPath();
      fs::create_directories(incoming.parent_path());
      EXPECT_TRUE(testing::WriteTestDicom(incoming, kStudy, kResultSeries, sop.str(),
                                          testing::kSecondaryCaptureStorage)
                      .ok());
      const uint64_t size = fs::file_size(incoming);
      auto key = spool_->Commit(incoming, sop);
      EXPECT_TRUE(key.ok());
      ResultRecord r{job.id,
                     sop,
                     SopClassUid(testing::kSecondaryCaptureStorage),
                     SeriesUid(kResultSeries),
                     *key,
                     size,
                     clock_.Now()};
      EXPECT_TRUE(index_
                      ->PutResult(r, AuditEvent{clock_.Now(), "result", "success", "tool",
                                                StudyRef(job.study_uid), job.id, "{}", ""})
                      .ok());
    }
    return job;
  }

  size_t Delivered(const JobRecord& job) {
    auto delivered = index_->ListDelivered(job.id);
    EXPECT_TRUE(delivered.ok());
    return delivered.ok() ? delivered->size() : 0;
  }

  int Audited(const std::string& action, const std::string& outcome) {
    auto audit = index_->ListAudit(100, 0);
    EXPECT_TRUE(audit.ok());
    int n = 0;
    for (const AuditEvent& e : *audit) n += e.action == action && e.outcome == outcome;
    return n;
  }

  testing::TempDir tmp_;
  FakeClock clock_;
  Config config_;
  CommitmentWaiters waiters_;
  int listener_port_ = 0;
  int orthanc_dicom_ = 0;
  std::unique_ptr<testing::Process> orthanc_;
  std::unique_ptr<ForwardingSink> sink_;
  std::unique_ptr<DimseListener> listener_;
  std::unique_ptr<Spool> spool_;
  std::unique_ptr<Index> index_;
};

TEST_F(StorageCommitmentOrthancTest, ResultsCountAsDeliveredOnceOrthancCommitsThem) {
  JobRecord job = CreateJobWithResults(3);
  Metrics metrics;
  Deliverer deliverer(config_, *index_, *spool_, clock_, &waiters_, &metrics);
  const Status st = deliverer.Deliver(job);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(Delivered(job), 3u);
  EXPECT_EQ(Audited("deliver", "success"), 3);
  EXPECT_EQ(Audited("commit", "success"), 3);
  const std::vector<CommitmentReport> reports = sink_->commitment_reports();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].reported_by.str(), "ORTHANC");
  EXPECT_EQ(reports[0].committed.size(), 3u);
  EXPECT_TRUE(reports[0].failed.empty());
  EXPECT_EQ(metrics.Value("conduit_storage_commitment_requests_total",
                          R"(destination="pacs",outcome="committed")"),
            1);
  EXPECT_NE(metrics.RenderPrometheus().find(
                R"(conduit_storage_commitment_seconds_count{destination="pacs"} 1)"),
            std::string::npos);
  // Delivered: a resumed job sends nothing more and asks nothing more.
  ASSERT_TRUE(deliverer.Deliver(job).ok());
  EXPECT_EQ(sink_->commitment_reports().size(), 1u);
}

TEST_F(StorageCommitmentOrthancTest, InstancesOrthancDoesNotHoldAreReportedFailed) {
  DicomPeer peer{AeTitle("CONDUIT"), AeTitle("ORTHANC"), "127.0.0.1", orthanc_dicom_, 10s, {}};
  const std::string transaction = "2.25.123456789";
  auto ticket = waiters_.Expect(transaction);
  const Status asked =
      RequestStorageCommitment(peer, transaction,
                               {{SopClassUid(testing::kSecondaryCaptureStorage),
                                 SopInstanceUid("1.2.826.0.1.3680043.9.7.411"), 0}},
                               [this](const CommitmentReport& r) { waiters_.Deliver(r); });
  ASSERT_TRUE(asked.ok()) << asked.ToString();
  std::optional<CommitmentReport> report = ticket->Wait(20s);
  ASSERT_TRUE(report.has_value()) << "Orthanc sent no report";
  EXPECT_TRUE(report->committed.empty());
  ASSERT_EQ(report->failed.size(), 1u);
  EXPECT_EQ(report->failed[0].sop_instance.str(), "1.2.826.0.1.3680043.9.7.411");
  EXPECT_NE(report->failed[0].failure_reason, 0);
}

// Orthanc aborts an N-ACTION from an AE title it does not know: the stored results stay
// undelivered, to be sent again and asked again on the job's retry.
TEST_F(StorageCommitmentOrthancTest, ARefusedRequestLeavesResultsUndelivered) {
  config_.dicom.ae_title = AeTitle("STRANGER");
  JobRecord job = CreateJobWithResults(2);
  Deliverer deliverer(config_, *index_, *spool_, clock_, &waiters_);
  const Status st = deliverer.Deliver(job);
  EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.ToString();
  EXPECT_NE(st.message().find("N-ACTION"), std::string::npos) << st.message();
  EXPECT_EQ(Delivered(job), 0u);
  EXPECT_EQ(Audited("commit", "failure"), 1);
}

// Orthanc takes the request but cannot reach Conduit with its report (it has the wrong port):
// the wait ends at commitment_timeout and nothing counts as delivered.
class StorageCommitmentNoWayBackTest : public StorageCommitmentOrthancTest {
 protected:
  int ReportPort() const override { return 1; }  // nobody listens there
};

TEST_F(StorageCommitmentNoWayBackTest, NoReportWithinTheTimeoutLeavesResultsUndelivered) {
  config_.destinations[0].commitment_timeout = 3s;
  JobRecord job = CreateJobWithResults(2);
  Metrics metrics;
  Deliverer deliverer(config_, *index_, *spool_, clock_, &waiters_, &metrics);
  const Status st = deliverer.Deliver(job);
  EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.ToString();
  EXPECT_NE(st.message().find("no report within 3 s"), std::string::npos) << st.message();
  EXPECT_EQ(Delivered(job), 0u);
  EXPECT_EQ(Audited("deliver", "success"), 2);
  EXPECT_EQ(Audited("commit", "failure"), 1);
  EXPECT_TRUE(sink_->commitment_reports().empty());
  EXPECT_EQ(metrics.Value("conduit_storage_commitment_requests_total",
                          R"(destination="pacs",outcome="no_report")"),
            1);
}

}  // namespace
}  // namespace conduit
