// Deliverer against real storescp destinations and a real HTTP server taking STOW-RS, a real
// SqliteIndex and Spool.
#include "results/deliverer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "store/sqlite_index.h"
#include "testing/fake_stow_server.h"
#include "testing/testing.h"

namespace conduit {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::StorescpPeer;
using testing::TempDir;
using testing::WriteTestDicom;

constexpr const char* kStudy = "1.2.826.0.1.3680043.9.7.400";
constexpr const char* kResultSeries = "1.2.826.0.1.3680043.9.7.400.9";
constexpr const char* kUnknownSopClass = "1.2.826.0.1.3680043.9.7.999.1";

class DelivererTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto spool = Spool::Open(SpoolOptions{tmp_.path() / "spool", 0});
    ASSERT_TRUE(spool.ok()) << spool.status().ToString();
    spool_ = std::move(spool).value();
    auto index = OpenSqliteIndex(tmp_.path() / "index.db");
    ASSERT_TRUE(index.ok()) << index.status().ToString();
    index_ = std::move(index).value();
    config_.dicom.ae_title = AeTitle("CONDUIT");
  }

  // Adds a destination named `name` at `port` on 127.0.0.1 (AE title PACS).
  void AddDestination(const std::string& name, int port) {
    DestinationConfig dest;
    dest.name = name;
    dest.ae_title = AeTitle("PACS");
    dest.host = "127.0.0.1";
    dest.port = port;
    dest.timeout = 10s;
    config_.destinations.push_back(dest);
  }

  JobRecord CreateJob(std::vector<std::string> destinations) {
    auto job = testing::CreateDeliveringJob(*index_, kStudy, std::move(destinations), clock_.Now());
    EXPECT_TRUE(job.ok()) << job.status().ToString();
    return job.ok() ? *job : JobRecord{};
  }

  // A result in the spool, attached to `job` as ResultIntake would.
  void AddResult(const JobRecord& job, int n,
                 const std::string& sop_class = testing::kSecondaryCaptureStorage) {
    const SopInstanceUid sop(std::string(kResultSeries) + "." + std::to_string(n));
    const fs::path incoming = spool_->NewIncomingPath();
    fs::create_directories(incoming.parent_path());
    ASSERT_TRUE(WriteTestDicom(incoming, kStudy, kResultSeries, sop.str(), sop_class).ok());
    const uint64_t size = fs::file_size(incoming);
    auto key = spool_->Commit(incoming, sop);
    ASSERT_TRUE(key.ok()) << key.status().ToString();
    ResultRecord r{job.id, sop,         SopClassUid(sop_class), SeriesUid(kResultSeries), *key,
                   size,   clock_.Now()};
    ASSERT_TRUE(index_
                    ->PutResult(r, AuditEvent{clock_.Now(), "result", "success", "tool",
                                              StudyRef(job.study_uid), job.id, "{}", ""})
                    .ok());
  }

  size_t DeliveredTo(const JobRecord& job, const std::string& destination) {
    auto delivered = index_->ListDelivered(job.id);
    EXPECT_TRUE(delivered.ok());
    size_t n = 0;
    for (const auto& [sop, dest] : *delivered) n += dest == destination ? 1 : 0;
    return n;
  }

  std::unique_ptr<StorescpPeer> StartPacs(const std::string& folder) {
    auto peer = StorescpPeer::Start(tmp_.path() / folder, "PACS");
    EXPECT_TRUE(peer.ok()) << peer.status().ToString();
    return peer.ok() ? std::move(peer).value() : nullptr;
  }

  TempDir tmp_;
  FakeClock clock_;
  Config config_;
  std::unique_ptr<Spool> spool_;
  std::unique_ptr<Index> index_;
};

TEST_F(DelivererTest, DeliversEveryResultAndRecordsEachDelivery) {
  auto pacs = StartPacs("pacs");
  ASSERT_NE(pacs, nullptr);
  AddDestination("pacs", pacs->port());
  JobRecord job = CreateJob({"pacs"});
  AddResult(job, 1);
  AddResult(job, 2);

  Deliverer deliverer(config_, *index_, *spool_, clock_);
  Result<DeliveryProgress> progress = deliverer.Deliver(job);
  ASSERT_TRUE(progress.ok()) << progress.status().ToString();
  EXPECT_TRUE(progress->done) << "no storage commitment: nothing to await";
  EXPECT_EQ(pacs->WaitForReceived(2), 2);
  EXPECT_EQ(DeliveredTo(job, "pacs"), 2u);
  auto audit = index_->ListAudit(50, 0);
  ASSERT_TRUE(audit.ok());
  int delivers = 0;
  for (const AuditEvent& e : *audit) {
    if (e.action == "deliver" && e.outcome == "success" && e.actor == "pacs") ++delivers;
  }
  EXPECT_EQ(delivers, 2);
}

// storescp stores but offers no Storage Commitment: the results are not delivered, and the
// delivery fails for good (the job ends failed, replayable) rather than trusting a PACS that
// cannot commit or re-sending to it until the dead letter.
TEST_F(DelivererTest, ADestinationThatCannotCommitLeavesResultsUndelivered) {
  auto pacs = StartPacs("pacs");
  ASSERT_NE(pacs, nullptr);
  AddDestination("pacs", pacs->port());
  config_.destinations[0].storage_commitment = true;
  JobRecord job = CreateJob({"pacs"});
  AddResult(job, 1);
  CommitmentLedger ledger(*index_, clock_, nullptr);
  Deliverer deliverer(config_, *index_, *spool_, clock_, &ledger);
  Status st = deliverer.Deliver(job).status();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();
  EXPECT_NE(st.message().find("does not accept the Storage Commitment Push Model"),
            std::string::npos)
      << st.message();
  EXPECT_EQ(pacs->WaitForReceived(1), 1);  // stored, but not committed
  EXPECT_EQ(DeliveredTo(job, "pacs"), 0u);
  auto open = index_->ListCommitments(job.id);
  ASSERT_TRUE(open.ok());
  EXPECT_TRUE(open->empty()) << "a request never sent awaits nothing";
}

// A process stopped between recording a commitment request and sending it: after the
// restart the request is not waited for (no report is coming); the retry sends and asks again.
TEST_F(DelivererTest, ACommitmentRequestInterruptedByAStopIsGivenUpAtOnce) {
  auto pacs = StartPacs("pacs");
  ASSERT_NE(pacs, nullptr);
  AddDestination("pacs", pacs->port());
  config_.destinations[0].storage_commitment = true;
  config_.destinations[0].commitment_timeout = std::chrono::hours(6);
  JobRecord job = CreateJob({"pacs"});
  AddResult(job, 1);
  auto results = index_->ListResults(job.id);
  ASSERT_TRUE(results.ok());
  {
    CommitmentLedger before_the_stop(*index_, clock_, nullptr);
    ASSERT_TRUE(
        before_the_stop.Open(job, "pacs", "2.25.99", {&results->front()}, clock_.Now() + 6h).ok());
  }
  clock_.Advance(30s);
  CommitmentLedger ledger(*index_, clock_, nullptr);
  Deliverer deliverer(config_, *index_, *spool_, clock_, &ledger);
  const Status st = deliverer.Deliver(job).status();
  EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.ToString();
  EXPECT_NE(st.message().find("may never have been sent"), std::string::npos) << st.message();
  EXPECT_TRUE(index_->ListCommitments(job.id)->empty());
  EXPECT_EQ(testing::CountAudited(*index_, "commit", "failure"), 1);
  EXPECT_EQ(pacs->WaitForReceived(1, 300ms), 0) << "held back until the retry";
}

TEST_F(DelivererTest, AlreadyDeliveredResultsAreNotSentAgain) {
  auto pacs = StartPacs("pacs");
  ASSERT_NE(pacs, nullptr);
  AddDestination("pacs", pacs->port());
  JobRecord job = CreateJob({"pacs"});
  AddResult(job, 1);
  AddResult(job, 2);
  Deliverer deliverer(config_, *index_, *spool_, clock_);
  ASSERT_TRUE(deliverer.Deliver(job).ok());
  ASSERT_EQ(pacs->WaitForReceived(2), 2);

  AddResult(job, 3);
  ASSERT_TRUE(deliverer.Deliver(job).ok());  // a resumed job: only the new result goes
  ASSERT_TRUE(deliverer.Deliver(job).ok());  // nothing left: no association at all
  EXPECT_EQ(pacs->WaitForReceived(3), 3);
  EXPECT_EQ(pacs->ReceivedCount(), 3) << "results 1 and 2 were re-sent";
  EXPECT_EQ(DeliveredTo(job, "pacs"), 3u);
}

TEST_F(DelivererTest, DestinationDownIsUnavailableAndNothingIsMarked) {
  AddDestination("pacs", testing::FreePort());  // nothing listens there
  JobRecord job = CreateJob({"pacs"});
  AddResult(job, 1);
  Metrics metrics;
  Deliverer deliverer(config_, *index_, *spool_, clock_, nullptr, &metrics);
  Status st = deliverer.Deliver(job).status();
  EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.ToString();
  EXPECT_EQ(DeliveredTo(job, "pacs"), 0u);
  EXPECT_EQ(metrics.Value("conduit_results_sent_total",
                          R"(destination="pacs",protocol="c-store",outcome="retry")"),
            1);
}

TEST_F(DelivererTest, OneDestinationDownStillDeliversToTheOtherAndResumes) {
  auto pacs = StartPacs("pacs");
  ASSERT_NE(pacs, nullptr);
  AddDestination("pacs", pacs->port());
  const int archive_port = testing::FreePort();
  AddDestination("archive", archive_port);
  JobRecord job = CreateJob({"pacs", "archive"});
  AddResult(job, 1);
  AddResult(job, 2);
  Deliverer deliverer(config_, *index_, *spool_, clock_);
  EXPECT_EQ(deliverer.Deliver(job).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(DeliveredTo(job, "pacs"), 2u);
  EXPECT_EQ(DeliveredTo(job, "archive"), 0u);

  auto archive = StartPacs("archive");
  ASSERT_NE(archive, nullptr);
  config_.destinations[1].port = archive->port();
  Status st = deliverer.Deliver(job).status();
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(archive->WaitForReceived(2), 2);
  EXPECT_EQ(pacs->ReceivedCount(), 2) << "the retry re-sent to the destination that had them";
  EXPECT_EQ(DeliveredTo(job, "archive"), 2u);
}

TEST_F(DelivererTest, RefusedResultIsInvalidArgumentNamingTheDestination) {
  auto pacs = StartPacs("pacs");
  ASSERT_NE(pacs, nullptr);
  AddDestination("pacs", pacs->port());
  JobRecord job = CreateJob({"pacs"});
  AddResult(job, 1);
  AddResult(job, 2, kUnknownSopClass);  // storescp accepts no context for it
  Deliverer deliverer(config_, *index_, *spool_, clock_);
  Status st = deliverer.Deliver(job).status();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();
  EXPECT_NE(st.message().find("pacs"), std::string::npos) << st.message();
  EXPECT_EQ(st.message().find("1.2.826.0.1.3680043"), std::string::npos)
      << "no UIDs in messages: " << st.message();
  EXPECT_EQ(DeliveredTo(job, "pacs"), 1u) << "the accepted result counts as delivered";
}

TEST_F(DelivererTest, StowRsDeliversWhatThePacsNamesStoredAndResendsTheRest) {
  testing::FakeStowServer pacs;
  DestinationConfig dest;
  dest.name = "cloud";
  dest.dicomweb_url = pacs.url();
  dest.timeout = 10s;
  config_.destinations.push_back(dest);
  JobRecord job = CreateJob({"cloud"});
  AddResult(job, 1);
  AddResult(job, 2);
  AddResult(job, 3);
  const std::string uid1 = std::string(kResultSeries) + ".1";
  const std::string uid2 = std::string(kResultSeries) + ".2";
  const std::string uid3 = std::string(kResultSeries) + ".3";
  // Stored; held already; out of resources for now.
  pacs.Then({202, {uid1}, {{uid2, 0x0111}, {uid3, 0xA700}}});
  Metrics metrics;
  Deliverer deliverer(config_, *index_, *spool_, clock_, nullptr, &metrics);
  Status st = deliverer.Deliver(job).status();
  EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.ToString();
  EXPECT_NE(st.message().find("0xA700"), std::string::npos) << st.message();
  const std::string labels = R"(destination="cloud",protocol="stow-rs",outcome=)";
  EXPECT_EQ(metrics.Value("conduit_results_sent_total", labels + "\"accepted\""), 2);
  EXPECT_EQ(metrics.Value("conduit_results_sent_total", labels + "\"retry\""), 1);
  EXPECT_EQ(st.message().find("1.2.826.0.1.3680043"), std::string::npos)
      << "no UIDs in messages: " << st.message();
  EXPECT_EQ(DeliveredTo(job, "cloud"), 2u);
  auto failures = index_->ListAudit(50, 0);
  ASSERT_TRUE(failures.ok());
  int failed_audited = 0;
  for (const AuditEvent& e : *failures) {
    if (e.action != "deliver" || e.outcome != "failure") continue;
    ++failed_audited;
    EXPECT_NE(e.detail.find("0xA700 (out of resources)"), std::string::npos) << e.detail;
    EXPECT_EQ(e.detail.find("1.2.826.0.1.3680043"), std::string::npos) << e.detail;
  }
  EXPECT_EQ(failed_audited, 1);

  // The retry sends only the one left, and a plain 200 delivers it.
  pacs.Then({200, {}, {}});
  Result<DeliveryProgress> progress = deliverer.Deliver(job);
  ASSERT_TRUE(progress.ok()) << progress.status().ToString();
  EXPECT_TRUE(progress->done);
  EXPECT_EQ(DeliveredTo(job, "cloud"), 3u);
  const std::vector<testing::SeenStowRequest> seen = pacs.requests();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].parts.size(), 3u);
  EXPECT_EQ(seen[1].parts.size(), 1u);
  auto audit = index_->ListAudit(50, 0);
  ASSERT_TRUE(audit.ok());
  int stow_deliveries = 0;
  for (const AuditEvent& e : *audit) {
    if (e.action == "deliver" && e.outcome == "success" &&
        e.detail.find("\"protocol\":\"stow-rs\"") != std::string::npos) {
      ++stow_deliveries;
    }
  }
  EXPECT_EQ(stow_deliveries, 3);
}

TEST_F(DelivererTest, StowRsRefusalForGoodNamesTheDestinationAndTheReason) {
  testing::FakeStowServer pacs;
  DestinationConfig dest;
  dest.name = "cloud";
  dest.dicomweb_url = pacs.url();
  config_.destinations.push_back(dest);
  JobRecord job = CreateJob({"cloud"});
  AddResult(job, 1);
  pacs.Then({409, {}, {{std::string(kResultSeries) + ".1", 0xC000}}});
  Metrics metrics;
  Deliverer deliverer(config_, *index_, *spool_, clock_, nullptr, &metrics);
  Status st = deliverer.Deliver(job).status();
  EXPECT_EQ(metrics.Value("conduit_results_sent_total",
                          R"(destination="cloud",protocol="stow-rs",outcome="refused")"),
            1);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();
  EXPECT_NE(st.message().find("cloud"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("0xC000"), std::string::npos) << st.message();
  EXPECT_EQ(DeliveredTo(job, "cloud"), 0u);
}

TEST_F(DelivererTest, UnknownDestinationIsNotFound) {
  JobRecord job = CreateJob({"nowhere"});
  AddResult(job, 1);
  Deliverer deliverer(config_, *index_, *spool_, clock_);
  EXPECT_EQ(deliverer.Deliver(job).status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace conduit
