// Delivery with storage commitment against a real Orthanc (Debian orthanc) as the PACS: the
// results are C-STOREd, commitment is asked by N-ACTION, and Orthanc reports by
// N-EVENT-REPORT on an association it opens back to a real Conduit DIMSE listener.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "dicom/dimse_listener.h"
#include "dicom/storage_commitment.h"
#include "dicom/test_support.h"
#include "results/commitment_ledger.h"
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

// The listener's sink: reports settle their requests in the ledger, as in the gateway.
class ForwardingSink : public testing::CommittingSink {
 public:
  ForwardingSink(fs::path root, std::atomic<CommitmentLedger*>& ledger)
      : CommittingSink(std::move(root)), ledger_(ledger) {}
  Status OnCommitmentReport(const CommitmentReport& report,
                            const AssociationInfo& association) override {
    RETURN_IF_ERROR(CommittingSink::OnCommitmentReport(report, association));
    CommitmentLedger* ledger = ledger_.load();
    if (ledger == nullptr) return Status::Ok();
    return ledger->OnReport(report).status();
  }

 private:
  std::atomic<CommitmentLedger*>& ledger_;
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
    sink_ = std::make_unique<ForwardingSink>(tmp_.path() / "sink", ledger_for_sink_);
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
    ledger_ = std::make_unique<CommitmentLedger>(
        *index_, clock_, [this] { ++wakes_; }, &metrics_);
    ledger_for_sink_ = ledger_.get();
  }

  // Waits (up to 20 s) until no report is awaited for `job`; returns how many still are.
  size_t WaitForReports(const JobRecord& job) {
    const auto until = std::chrono::steady_clock::now() + 20s;
    for (;;) {
      auto rows = index_->ListCommitments(job.id);
      EXPECT_TRUE(rows.ok());
      size_t open = 0;
      for (const CommitmentRecord& r : *rows) open += r.reported ? 0 : 1;
      if (open == 0 || std::chrono::steady_clock::now() > until) return open;
      std::this_thread::sleep_for(20ms);
    }
  }

  // Where Orthanc sends its reports for AE CONDUIT.
  virtual int ReportPort() const { return listener_port_; }

  void TearDown() override {
    if (listener_) listener_->Stop();
    ledger_for_sink_ = nullptr;
  }

  JobRecord CreateJobWithResults(int n) {
    auto created = testing::CreateDeliveringJob(*index_, kStudy, {"pacs"}, clock_.Now());
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    JobRecord job = created.ok() ? *created : JobRecord{};
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
    return testing::CountAudited(*index_, action, outcome);
  }

  testing::TempDir tmp_;
  FakeClock clock_;
  Config config_;
  Metrics metrics_;
  std::atomic<int> wakes_{0};
  std::unique_ptr<CommitmentLedger> ledger_;
  std::atomic<CommitmentLedger*> ledger_for_sink_{nullptr};  // set once the index is open
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
  Deliverer deliverer(config_, *index_, *spool_, clock_, ledger_.get());
  Result<DeliveryProgress> sent = deliverer.Deliver(job);
  ASSERT_TRUE(sent.ok()) << sent.status().ToString();
  EXPECT_EQ(Audited("deliver", "success"), 3);
  EXPECT_EQ(Audited("commit_request", "success"), 1);
  // The delivery does not wait for the report: it arrives on the listener and settles the
  // request whenever it comes.
  ASSERT_EQ(WaitForReports(job), 0u) << "Orthanc sent no report";
  EXPECT_EQ(Delivered(job), 3u);
  EXPECT_EQ(Audited("commit", "success"), 3);
  EXPECT_EQ(Audited("commitment_report", "success"), 1);
  EXPECT_GE(wakes_.load(), 1) << "the job is stepped again once its report is in";
  auto job_now = index_->GetJob(job.id);
  ASSERT_TRUE(job_now.ok() && job_now->has_value());
  EXPECT_LE((*job_now)->next_attempt_at, clock_.Now()) << "due at once";
  const std::vector<CommitmentReport> reports = sink_->commitment_reports();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].reported_by.str(), "ORTHANC");
  EXPECT_EQ(reports[0].committed.size(), 3u);
  EXPECT_TRUE(reports[0].failed.empty());
  EXPECT_EQ(metrics_.Value("conduit_storage_commitment_requests_total",
                           R"(destination="pacs",outcome="committed")"),
            1);
  EXPECT_NE(metrics_.RenderPrometheus().find(
                R"(conduit_storage_commitment_seconds_count{destination="pacs"} 1)"),
            std::string::npos);
  // Delivered: the job's next step finds it done, and sends and asks nothing more.
  Result<DeliveryProgress> next = deliverer.Deliver(job);
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_TRUE(next->done);
  EXPECT_EQ(sink_->commitment_reports().size(), 1u);
  EXPECT_EQ(Audited("deliver", "success"), 3);
}

// While its report is awaited, a job's next step sends nothing again and reports the wait.
TEST_F(StorageCommitmentOrthancTest, AwaitedResultsAreNotSentAgain) {
  ledger_for_sink_ = nullptr;  // the listener acknowledges the report but records nothing
  JobRecord job = CreateJobWithResults(2);
  Deliverer deliverer(config_, *index_, *spool_, clock_, ledger_.get());
  Result<DeliveryProgress> sent = deliverer.Deliver(job);
  ASSERT_TRUE(sent.ok()) << sent.status().ToString();
  EXPECT_FALSE(sent->done);
  EXPECT_EQ(sent->awaited, 2u);
  EXPECT_EQ(sent->until, clock_.Now() + 20s) << "the destination's commitment_timeout";
  Result<DeliveryProgress> again = deliverer.Deliver(job);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_FALSE(again->done);
  EXPECT_EQ(Audited("deliver", "success"), 2) << "nothing sent twice";
  EXPECT_EQ(Audited("commit_request", "success"), 1) << "nothing asked twice";
  EXPECT_EQ(Delivered(job), 0u);
}

TEST_F(StorageCommitmentOrthancTest, InstancesOrthancDoesNotHoldAreReportedFailed) {
  DicomPeer peer{AeTitle("CONDUIT"), AeTitle("ORTHANC"), "127.0.0.1", orthanc_dicom_, 10s, {}};
  ledger_for_sink_ = nullptr;  // a request outside any job: the report is only kept
  const std::string transaction = "2.25.123456789";
  const Status asked =
      RequestStorageCommitment(peer, transaction,
                               {{SopClassUid(testing::kSecondaryCaptureStorage),
                                 SopInstanceUid("1.2.826.0.1.3680043.9.7.411"), 0}},
                               [](const CommitmentReport&) { return Status::Ok(); });
  ASSERT_TRUE(asked.ok()) << asked.ToString();
  const auto until = std::chrono::steady_clock::now() + 20s;
  while (sink_->commitment_reports().empty() && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(20ms);
  }
  const std::vector<CommitmentReport> reports = sink_->commitment_reports();
  ASSERT_EQ(reports.size(), 1u) << "Orthanc sent no report";
  EXPECT_EQ(reports[0].transaction_uid, transaction);
  EXPECT_TRUE(reports[0].committed.empty());
  ASSERT_EQ(reports[0].failed.size(), 1u);
  EXPECT_EQ(reports[0].failed[0].sop_instance.str(), "1.2.826.0.1.3680043.9.7.411");
  EXPECT_NE(reports[0].failed[0].failure_reason, 0);
}

// Orthanc aborts an N-ACTION from an AE title it does not know: the stored results stay
// undelivered, to be sent again and asked again on the job's retry.
TEST_F(StorageCommitmentOrthancTest, ARefusedRequestLeavesResultsUndelivered) {
  config_.dicom.ae_title = AeTitle("STRANGER");
  JobRecord job = CreateJobWithResults(2);
  Deliverer deliverer(config_, *index_, *spool_, clock_, ledger_.get());
  const Status st = deliverer.Deliver(job).status();
  EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.ToString();
  EXPECT_NE(st.message().find("N-ACTION"), std::string::npos) << st.message();
  EXPECT_EQ(Delivered(job), 0u);
  EXPECT_EQ(Audited("commit", "failure"), 1);
  auto rows = index_->ListCommitments(job.id);
  ASSERT_TRUE(rows.ok());
  EXPECT_TRUE(rows->empty()) << "a refused request awaits nothing";
  EXPECT_EQ(metrics_.Value("conduit_storage_commitment_requests_total",
                           R"(destination="pacs",outcome="refused")"),
            1);
}

// Orthanc takes the request but cannot reach Conduit with its report (it has the wrong port):
// once commitment_timeout has passed, the job's next step gives up on the request, and the
// retry after it sends the results and asks again.
class StorageCommitmentNoWayBackTest : public StorageCommitmentOrthancTest {
 protected:
  int ReportPort() const override { return 1; }  // nobody listens there
};

TEST_F(StorageCommitmentNoWayBackTest, NoReportByTheDeadlineSendsTheResultsAgain) {
  config_.destinations[0].commitment_timeout = 3s;
  JobRecord job = CreateJobWithResults(2);
  Deliverer deliverer(config_, *index_, *spool_, clock_, ledger_.get());
  Result<DeliveryProgress> sent = deliverer.Deliver(job);
  ASSERT_TRUE(sent.ok()) << sent.status().ToString();
  EXPECT_FALSE(sent->done);
  EXPECT_EQ(sent->until, clock_.Now() + 3s);

  clock_.Advance(3s);
  const Status overdue = deliverer.Deliver(job).status();
  EXPECT_EQ(overdue.code(), StatusCode::kUnavailable) << overdue.ToString();
  EXPECT_NE(overdue.message().find("no report within 3 s"), std::string::npos) << overdue.message();
  EXPECT_EQ(Delivered(job), 0u);
  EXPECT_EQ(Audited("deliver", "success"), 2) << "given up on, not yet sent again";
  EXPECT_EQ(Audited("commit", "failure"), 1);
  EXPECT_TRUE(sink_->commitment_reports().empty());
  EXPECT_EQ(metrics_.Value("conduit_storage_commitment_requests_total",
                           R"(destination="pacs",outcome="no_report")"),
            1);

  // The retry: sent and asked again, under a new transaction.
  Result<DeliveryProgress> retry = deliverer.Deliver(job);
  ASSERT_TRUE(retry.ok()) << retry.status().ToString();
  EXPECT_FALSE(retry->done);
  EXPECT_EQ(Audited("deliver", "success"), 4);
  EXPECT_EQ(Audited("commit_request", "success"), 2);
}

}  // namespace
}  // namespace conduit
