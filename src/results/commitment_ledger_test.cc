// CommitmentLedger on a real SqliteIndex: what a PACS's report settles, and that an open
// request outlives the process that sent it.
#include "results/commitment_ledger.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "store/sqlite_index.h"
#include "testing/testing.h"

namespace conduit {
namespace {

using namespace std::chrono_literals;

constexpr const char* kStudy = "1.2.826.0.1.3680043.9.7.420";
constexpr const char* kSc = "1.2.840.10008.5.1.4.1.1.7";

class CommitmentLedgerTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  // Opens the index (again: a restart) and a new ledger on it.
  void Reopen() {
    ledger_.reset();
    index_.reset();
    auto index = OpenSqliteIndex(tmp_.path() / "index.db");
    ASSERT_TRUE(index.ok()) << index.status().ToString();
    index_ = std::move(index).value();
    ledger_ = std::make_unique<CommitmentLedger>(
        *index_, clock_, [this] { ++wakes_; }, &metrics_);
  }

  JobRecord CreateJob(int results) {
    auto created = testing::CreateDeliveringJob(*index_, kStudy, {"pacs"}, clock_.Now());
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    JobRecord job = created.ok() ? *created : JobRecord{};
    for (int i = 1; i <= results; ++i) {
      ResultRecord r{job.id,
                     Sop(i),
                     SopClassUid(kSc),
                     SeriesUid(std::string(kStudy) + ".9"),
                     "key" + std::to_string(i),
                     100,
                     clock_.Now()};
      EXPECT_TRUE(index_
                      ->PutResult(r, AuditEvent{clock_.Now(), "result", "success", "tool",
                                                StudyRef(job.study_uid), job.id, "{}", ""})
                      .ok());
      results_.push_back(r);
    }
    return job;
  }

  static SopInstanceUid Sop(int i) {
    return SopInstanceUid(std::string(kStudy) + ".9." + std::to_string(i));
  }

  std::vector<const ResultRecord*> All() const {
    std::vector<const ResultRecord*> out;
    for (const ResultRecord& r : results_) out.push_back(&r);
    return out;
  }

  static CommitmentReport Report(const std::string& transaction, std::vector<int> committed,
                                 std::vector<std::pair<int, uint16_t>> failed = {}) {
    CommitmentReport report;
    report.transaction_uid = transaction;
    report.reported_by = AeTitle("PACS");
    for (int i : committed) report.committed.push_back({SopClassUid(kSc), Sop(i), 0});
    for (auto [i, reason] : failed) report.failed.push_back({SopClassUid(kSc), Sop(i), reason});
    return report;
  }

  size_t Delivered(const JobRecord& job) {
    auto delivered = index_->ListDelivered(job.id);
    EXPECT_TRUE(delivered.ok());
    return delivered.ok() ? delivered->size() : 0;
  }

  std::vector<CommitmentRecord> Rows(const JobRecord& job) {
    auto rows = index_->ListCommitments(job.id);
    EXPECT_TRUE(rows.ok()) << rows.status().ToString();
    return rows.ok() ? *rows : std::vector<CommitmentRecord>{};
  }

  int Audited(const std::string& action, const std::string& outcome) {
    return testing::CountAudited(*index_, action, outcome);
  }

  testing::TempDir tmp_;
  FakeClock clock_;
  Metrics metrics_;
  int wakes_ = 0;
  std::unique_ptr<Index> index_;
  std::unique_ptr<CommitmentLedger> ledger_;
  std::vector<ResultRecord> results_;
};

TEST_F(CommitmentLedgerTest, ACommittingReportDeliversEveryResultAndMakesTheJobDue) {
  JobRecord job = CreateJob(3);
  ASSERT_TRUE(index_->DeferJob(job.id, clock_.Now() + 1h).ok());
  ASSERT_TRUE(ledger_->Open(job, "pacs", "2.25.1", All(), clock_.Now() + 10min).ok());
  EXPECT_EQ(Rows(job).size(), 3u);
  EXPECT_EQ(Audited("commit_request", "success"), 1);

  clock_.Advance(90s);
  Result<bool> taken = ledger_->OnReport(Report("2.25.1", {1, 2, 3}));
  ASSERT_TRUE(taken.ok()) << taken.status().ToString();
  EXPECT_TRUE(*taken);
  EXPECT_EQ(Delivered(job), 3u);
  EXPECT_TRUE(Rows(job).empty());
  EXPECT_EQ(Audited("commit", "success"), 3);
  EXPECT_EQ(Audited("commitment_report", "success"), 1);
  auto due = index_->GetJob(job.id);
  ASSERT_TRUE(due.ok() && due->has_value());
  EXPECT_EQ((*due)->next_attempt_at, clock_.Now()) << "stepped again at once";
  EXPECT_EQ(wakes_, 1);
  EXPECT_EQ(metrics_.Value("conduit_storage_commitment_requests_total",
                           R"(destination="pacs",outcome="committed")"),
            1);
  EXPECT_NE(metrics_.RenderPrometheus().find(
                R"(conduit_storage_commitment_seconds_sum{destination="pacs"} 90)"),
            std::string::npos)
      << metrics_.RenderPrometheus();
}

// Failed results, and results the report leaves out, are not delivered: they stay reported
// for the job's next step, which sends them again.
TEST_F(CommitmentLedgerTest, WhatIsNotCommittedStaysForTheRetry) {
  JobRecord job = CreateJob(4);
  ASSERT_TRUE(ledger_->Open(job, "pacs", "2.25.2", All(), clock_.Now() + 10min).ok());
  auto backlog = index_->CommitmentBacklogs();
  ASSERT_TRUE(backlog.ok()) << backlog.status().ToString();
  ASSERT_EQ(backlog->size(), 1u);
  EXPECT_EQ((*backlog)[0].destination, "pacs");
  EXPECT_EQ((*backlog)[0].results, 4);
  EXPECT_EQ((*backlog)[0].oldest_requested_at, clock_.Now());
  // 1 committed; 2 failed (0xA7xx is not a commitment reason, but any is kept); 3 both
  // committed and failed: not taken as committed; 4 left out.
  CommitmentReport report = Report("2.25.2", {1, 3}, {{2, 0x0110}, {3, 0x0112}});
  ASSERT_TRUE(ledger_->OnReport(report).ok());
  EXPECT_EQ(Delivered(job), 1u);
  std::vector<CommitmentRecord> rows = Rows(job);
  ASSERT_EQ(rows.size(), 3u);
  std::map<std::string, uint16_t> reasons;
  for (const CommitmentRecord& r : rows) {
    EXPECT_TRUE(r.reported);
    reasons[r.sop_instance_uid.str()] = r.failure_reason;
  }
  EXPECT_EQ(reasons[Sop(2).str()], 0x0110);
  EXPECT_EQ(reasons[Sop(3).str()], 0x0112);
  EXPECT_EQ(reasons[Sop(4).str()], 0);
  EXPECT_TRUE(index_->CommitmentBacklogs()->empty()) << "nothing awaited any more";
  EXPECT_EQ(metrics_.Value("conduit_storage_commitment_requests_total",
                           R"(destination="pacs",outcome="partial")"),
            1);

  // The same report again settles nothing more.
  Result<bool> again = ledger_->OnReport(report);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
  EXPECT_EQ(Delivered(job), 1u);
  EXPECT_EQ(Audited("commitment_report", "unexpected"), 1);
}

TEST_F(CommitmentLedgerTest, AReportForNoOpenRequestIsAuditedUnexpected) {
  JobRecord job = CreateJob(1);
  Result<bool> taken = ledger_->OnReport(Report("2.25.404", {1}));
  ASSERT_TRUE(taken.ok()) << taken.status().ToString();
  EXPECT_FALSE(*taken);
  EXPECT_EQ(Delivered(job), 0u);
  EXPECT_EQ(Audited("commitment_report", "unexpected"), 1);
  EXPECT_EQ(wakes_, 0);
}

// The request is in the index, not in the process: a report that comes after a restart (a
// PACS that commits once its archive has the images, hours later) still delivers.
TEST_F(CommitmentLedgerTest, AnOpenRequestOutlivesARestart) {
  JobRecord job = CreateJob(2);
  ASSERT_TRUE(ledger_->Open(job, "pacs", "2.25.3", All(), clock_.Now() + 24h).ok());
  Reopen();
  clock_.Advance(5h);
  Result<bool> taken = ledger_->OnReport(Report("2.25.3", {1, 2}));
  ASSERT_TRUE(taken.ok()) << taken.status().ToString();
  EXPECT_TRUE(*taken);
  EXPECT_EQ(Delivered(job), 2u);
}

// A request recorded by an earlier process and never marked asked may never have gone out.
TEST_F(CommitmentLedgerTest, ARequestAnEarlierProcessNeverMarkedAskedWasInterrupted) {
  JobRecord job = CreateJob(2);
  ASSERT_TRUE(ledger_->Open(job, "pacs", "2.25.7", All(), clock_.Now() + 6h).ok());
  ASSERT_TRUE(ledger_->Open(job, "pacs", "2.25.8", {&results_[0]}, clock_.Now() + 6h).ok());
  ASSERT_TRUE(ledger_->MarkAsked("2.25.8").ok());
  for (const CommitmentRecord& row : Rows(job)) {
    EXPECT_FALSE(ledger_->WasInterrupted(row)) << "this process's own request";
  }
  clock_.Advance(10s);
  Reopen();
  for (const CommitmentRecord& row : Rows(job)) {
    EXPECT_EQ(ledger_->WasInterrupted(row), row.transaction_uid == "2.25.7") << row.transaction_uid;
    EXPECT_EQ(row.asked, row.transaction_uid == "2.25.8");
  }
}

TEST_F(CommitmentLedgerTest, ATransactionIsOpenedOnce) {
  JobRecord job = CreateJob(1);
  ASSERT_TRUE(ledger_->Open(job, "pacs", "2.25.4", All(), clock_.Now() + 1min).ok());
  EXPECT_EQ(ledger_->Open(job, "pacs", "2.25.4", All(), clock_.Now() + 1min).code(),
            StatusCode::kAlreadyExists);
  JobRecord missing = job;
  missing.id = JobId{job.id.value + 100};
  EXPECT_EQ(ledger_->Open(missing, "pacs", "2.25.5", All(), clock_.Now() + 1min).code(),
            StatusCode::kNotFound);
}

// A closed transaction (given up on before a retry) takes no late report.
TEST_F(CommitmentLedgerTest, AClosedRequestTakesNoLateReport) {
  JobRecord job = CreateJob(1);
  ASSERT_TRUE(ledger_->Open(job, "pacs", "2.25.6", All(), clock_.Now() + 1min).ok());
  ASSERT_TRUE(index_
                  ->CloseCommitment("2.25.6", AuditEvent{clock_.Now(), "commit", "failure", "pacs",
                                                         StudyRef(job.study_uid), job.id, "{}", ""})
                  .ok());
  Result<bool> taken = ledger_->OnReport(Report("2.25.6", {1}));
  ASSERT_TRUE(taken.ok());
  EXPECT_FALSE(*taken);
  EXPECT_EQ(Delivered(job), 0u);
}

}  // namespace
}  // namespace conduit
