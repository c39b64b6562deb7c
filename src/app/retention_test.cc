#include "app/retention.h"

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "store/file_ops.h"
#include "store/sqlite_index.h"
#include "testing/testing.h"
#include "testing/unlink_faults.h"

namespace conduit {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using json = nlohmann::json;

constexpr auto kDay = std::chrono::days(1);

class RetentionTest : public ::testing::Test {
 protected:
  RetentionTest() {
    OpenSpool();
    index_ = std::move(OpenSqliteIndex(tmp_.path() / "index.sqlite").value());
    policy_.spool = std::chrono::days(30);
    policy_.crosswalk = std::chrono::days(60);
    policy_.audit = std::chrono::days(90);
  }

  void OpenSpool() {
    spool_.reset();  // its lock first
    spool_ = std::move(OpenSpoolWithFileOps(SpoolOptions{tmp_.path() / "spool", 0},
                                            std::make_unique<testing::UnlinkFaults>(unlink_error_))
                           .value());
  }

  // A restart: the spool is opened again and removes the files an earlier process left that
  // the index does not record. Returns how many it removed; `asked` counts the keys checked.
  int Restart(int* asked = nullptr) {
    OpenSpool();
    int checked = 0;
    auto removed = spool_->RemoveUnrecorded([&](const std::string& key, const SopInstanceUid& sop) {
      ++checked;
      return index_->RecordsSpoolFile(key, sop);
    });
    EXPECT_TRUE(removed.ok()) << removed.status().ToString();
    if (asked != nullptr) *asked = checked;
    return removed.ok() ? *removed : -1;
  }

  RetentionSweeper Sweeper() {
    return RetentionSweeper(*index_, *spool_, clock_, metrics_, policy_);
  }

  // Commits a small file for `sop` to the spool and returns its key.
  std::string SpoolFile(const std::string& sop) {
    const fs::path incoming = spool_->NewIncomingPath();
    std::ofstream(incoming) << "bytes of " << sop;
    auto key = spool_->Commit(incoming, SopInstanceUid(sop));
    EXPECT_TRUE(key.ok()) << key.status().ToString();
    return key.ok() ? *key : std::string();
  }

  // Receives instance `sop` of `study` now, as ingest does (file in the spool, row in the
  // index); returns its spool key.
  std::string Receive(const std::string& study, const std::string& sop) {
    const std::string key = SpoolFile(sop);
    Status put = testing::PutTestInstance(*index_, study, study + ".1", sop, clock_.Now(), key);
    EXPECT_TRUE(put.ok()) << put.ToString();
    spool_->Settled(key);
    return key;
  }

  // A job of `study` in `state`; each generation is a distinct job.
  JobId Job(const std::string& study, JobState state, int generation = 0) {
    JobRecord job;
    job.study_uid = StudyUid(study);
    job.route = "ct";
    job.generation = generation;
    job.tool = "reference";
    job.destinations = {"PACS"};
    job.state = state;
    job.next_attempt_at = job.created_at = job.updated_at = clock_.Now();
    AuditEvent audit;
    audit.at = clock_.Now();
    audit.action = "route";
    audit.outcome = "success";
    auto id = index_->CreateJob(job, audit);
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    return id.ok() ? *id : JobId{};
  }

  // Attaches result `sop` (a file in the spool) to `job`; returns its spool key.
  std::string Result(JobId job, const std::string& sop) {
    const std::string key = SpoolFile(sop);
    ResultRecord r;
    r.job_id = job;
    r.sop_instance_uid = SopInstanceUid(sop);
    r.sop_class_uid = SopClassUid("1.2.840.10008.5.1.4.1.1.88.22");  // Enhanced SR
    r.series_uid = SeriesUid("r");
    r.spool_key = key;
    r.size_bytes = 10;
    r.received_at = clock_.Now();
    AuditEvent audit;
    audit.at = clock_.Now();
    audit.action = "result";
    audit.outcome = "success";
    auto put = index_->PutResult(r, audit);
    EXPECT_TRUE(put.ok()) << put.status().ToString();
    spool_->Settled(key);
    return key;
  }

  bool FileExists(const std::string& key) const { return fs::exists(spool_->PathOf(key)); }

  std::vector<AuditEvent> AuditOf(const std::string& action) {
    auto all = index_->ListAudit(100000, 0);
    EXPECT_TRUE(all.ok()) << all.status().ToString();
    std::vector<AuditEvent> out;
    if (!all.ok()) return out;
    for (const AuditEvent& e : *all) {
      if (e.action == action) out.push_back(e);
    }
    return out;
  }

  // The detail of the newest "retention" event.
  json LastSweep() {
    auto sweeps = AuditOf("retention");
    EXPECT_FALSE(sweeps.empty());
    return sweeps.empty() ? json() : json::parse(sweeps.front().detail);
  }

  testing::TempDir tmp_;
  std::atomic<int> unlink_error_{0};
  FakeClock clock_;
  Metrics metrics_;
  RetentionPolicy policy_;
  std::unique_ptr<Spool> spool_;
  std::unique_ptr<Index> index_;
};

TEST_F(RetentionTest, AuditOlderThanItsPeriodIsPurgedAndNewerKept) {
  AuditEvent old_event{clock_.Now(), "dispatch", "success", "reference", "ref-old", {}, "{}", ""};
  ASSERT_TRUE(index_->AppendAudit(old_event).ok());
  clock_.Advance(50 * kDay);
  AuditEvent new_event{clock_.Now(), "deliver", "success", "PACS", "ref-new", {}, "{}", ""};
  ASSERT_TRUE(index_->AppendAudit(new_event).ok());
  clock_.Advance(41 * kDay);  // the first is 91 days old, the second 41; the period is 90

  ASSERT_TRUE(Sweeper().SweepOnce().ok());
  EXPECT_TRUE(AuditOf("dispatch").empty());
  EXPECT_EQ(AuditOf("deliver").size(), 1u);
  EXPECT_EQ(LastSweep()["audit_purged"], 1);
  EXPECT_EQ(metrics_.Value("conduit_retention_audit_purged_total"), 1);
}

TEST_F(RetentionTest, TheSweepsOwnEventSurvivesTheAuditPurge) {
  policy_.audit = std::chrono::days(1);
  ASSERT_TRUE(Sweeper().SweepOnce().ok());
  clock_.Advance(2 * kDay);
  ASSERT_TRUE(Sweeper().SweepOnce().ok());
  auto sweeps = AuditOf("retention");
  ASSERT_EQ(sweeps.size(), 1u) << "the first sweep's event is past the period; the second's is "
                                  "written after the purge";
  EXPECT_EQ(json::parse(sweeps[0].detail)["audit_purged"], 1);
}

TEST_F(RetentionTest, CrosswalkOlderThanItsPeriodIsPurged) {
  CrosswalkRecord old_mapping{"2.25.1", "1.2.3", "uid", StudyUid("1.2.3"), "k", clock_.Now()};
  ASSERT_TRUE(index_->PutPseudonyms({old_mapping}).ok());
  clock_.Advance(30 * kDay);
  CrosswalkRecord new_mapping{"2.25.2", "1.2.4", "uid", StudyUid("1.2.4"), "k", clock_.Now()};
  ASSERT_TRUE(index_->PutPseudonyms({new_mapping}).ok());
  clock_.Advance(31 * kDay);  // 61 and 31 days old; the period is 60

  ASSERT_TRUE(Sweeper().SweepOnce().ok());
  auto found = index_->FindOriginals({"2.25.1", "2.25.2"});
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(*found, (std::map<std::string, std::string>{{"2.25.2", "1.2.4"}}));
  EXPECT_EQ(LastSweep()["crosswalk_purged"], 1);
  EXPECT_EQ(metrics_.Value("conduit_retention_crosswalk_purged_total"), 1);
}

// The RIS link's rows hold patient identifiers (ER7 messages, accession numbers, reports).
class RisRetentionTest : public RetentionTest {
 protected:
  // Queues an outbox message now; `state` other than pending is recorded as its outcome now.
  void Outbox(const std::string& control_id, Hl7OutboxState state) {
    Hl7OutboxRecord m;
    m.destination = "ris";
    m.patient_key = "pk-" + control_id;
    m.message_type = "ORU^R01";
    m.control_id = control_id;
    m.message =
        "MSH|^~\\&|CONDUIT||RIS||20240101||ORU^R01|" + control_id + "|P|2.5.1\rPID|||PAT123";
    m.next_attempt_at = m.created_at = clock_.Now();
    ASSERT_EQ(*index_->EnqueueHl7(m), PutOutcome::kInserted);
    if (state == Hl7OutboxState::kPending) return;
    auto rows = index_->ListHl7("ris", std::nullopt, 1000);
    ASSERT_TRUE(rows.ok());
    for (Hl7OutboxRecord& row : *rows) {
      if (row.control_id != control_id) continue;
      row.state = state;
      row.sent_at = clock_.Now();
      ASSERT_TRUE(index_->UpdateHl7(row).ok());
    }
  }

  std::vector<std::string> OutboxControlIds() {
    std::vector<std::string> ids;
    auto rows = index_->ListHl7("ris", std::nullopt, 1000);
    EXPECT_TRUE(rows.ok()) << rows.status().ToString();
    if (!rows.ok()) return ids;
    for (const Hl7OutboxRecord& m : *rows) ids.push_back(m.control_id);
    return ids;
  }

  void Order(const std::string& accession) {
    RisOrderRecord o;
    o.accession = accession;
    o.patient_key = "pk";
    o.order_control = "NW";
    o.updated_at = clock_.Now();
    ASSERT_TRUE(index_->PutRisOrder(o).ok());
  }

  void Report(const std::string& accession) {
    RisReportRecord r;
    r.sending_application = "RIS";
    r.control_id = "rep-" + accession;
    r.accession = accession;
    r.result_status = "F";
    r.text = "No acute abnormality.";
    r.received_at = clock_.Now();
    ASSERT_EQ(*index_->PutRisReport(r), PutOutcome::kInserted);
  }
};

TEST_F(RisRetentionTest, SentAndFailedMessagesGoAfterTheCrosswalkPeriodPendingNever) {
  Outbox("old-sent", Hl7OutboxState::kSent);
  Outbox("old-failed", Hl7OutboxState::kFailed);
  Outbox("old-pending", Hl7OutboxState::kPending);  // the RIS has been down for months
  clock_.Advance(30 * kDay);
  Outbox("new-sent", Hl7OutboxState::kSent);
  clock_.Advance(31 * kDay);  // 61 and 31 days old; the crosswalk period is 60

  ASSERT_TRUE(Sweeper().SweepOnce().ok());
  EXPECT_EQ(OutboxControlIds(), (std::vector<std::string>{"old-pending", "new-sent"}));
  EXPECT_EQ(LastSweep()["hl7_outbox_purged"], 2);
  EXPECT_EQ(metrics_.Value("conduit_retention_hl7_outbox_purged_total"), 2);

  clock_.Advance(1000 * kDay);
  ASSERT_TRUE(Sweeper().SweepOnce().ok());
  EXPECT_EQ(OutboxControlIds(), (std::vector<std::string>{"old-pending"}))
      << "a pending message waits for the RIS however long it takes";
}

TEST_F(RisRetentionTest, OrdersGoAfterTheCrosswalkPeriodReportsAfterTheAuditPeriod) {
  Order("ACC-OLD");
  Report("ACC-OLD");
  clock_.Advance(40 * kDay);
  Order("ACC-NEW");
  Report("ACC-NEW");
  clock_.Advance(21 * kDay);  // 61 and 21 days old: past the crosswalk period (60), not audit's

  ASSERT_TRUE(Sweeper().SweepOnce().ok());
  EXPECT_FALSE(index_->GetRisOrder("ACC-OLD")->has_value());
  EXPECT_TRUE(index_->GetRisOrder("ACC-NEW")->has_value());
  EXPECT_EQ(index_->ListRisReports("ACC-OLD")->size(), 1u) << "ground truth: the audit period";
  json sweep = LastSweep();
  EXPECT_EQ(sweep["ris_orders_purged"], 1);
  EXPECT_EQ(sweep["ris_reports_purged"], 0);

  clock_.Advance(30 * kDay);  // 91 and 51 days old; the audit period is 90
  ASSERT_TRUE(Sweeper().SweepOnce().ok());
  EXPECT_TRUE(index_->ListRisReports("ACC-OLD")->empty());
  EXPECT_EQ(index_->ListRisReports("ACC-NEW")->size(), 1u);
  sweep = LastSweep();
  EXPECT_EQ(sweep["ris_reports_purged"], 1);
  EXPECT_EQ(metrics_.Value("conduit_retention_ris_orders_purged_total"), 1);
  EXPECT_EQ(metrics_.Value("conduit_retention_ris_reports_purged_total"), 1);
  const std::string text = AuditOf("retention")[0].detail;
  for (const char* identifier : {"ACC-", "PAT123", "pk"}) {
    EXPECT_EQ(text.find(identifier), std::string::npos) << "counts only: " << identifier;
  }
}

TEST_F(RetentionTest, AnOldStudyWhoseJobsAreOverIsExpired) {
  const std::string k1 = Receive("1.2.3", "1.2.3.1.1");
  const std::string k2 = Receive("1.2.3", "1.2.3.1.2");
  const JobId done = Job("1.2.3", JobState::kDone);
  const std::string r1 = Result(done, "2.25.99.1");
  AuditEvent delivered{clock_.Now(), "deliver", "success", "PACS", "", done, "{}", ""};
  ASSERT_TRUE(index_->MarkDelivered(done, SopInstanceUid("2.25.99.1"), "PACS", delivered).ok());
  clock_.Advance(31 * kDay);

  ASSERT_TRUE(Sweeper().SweepOnce().ok());
  for (const std::string& key : {k1, k2, r1}) EXPECT_FALSE(FileExists(key)) << key;
  EXPECT_TRUE(index_->ListInstances(StudyUid("1.2.3"))->empty());
  EXPECT_TRUE(index_->ListResults(done)->empty());
  auto job = index_->GetJob(done);
  ASSERT_TRUE(job.ok() && job->has_value()) << "the job row is history";
  EXPECT_EQ((*job)->state, JobState::kDone);
  EXPECT_EQ(index_->ListDelivered(done)->size(), 1u) << "deliveries are history";
  EXPECT_EQ(AuditOf("receive").size(), 2u) << "the study's audit trail is kept";

  auto expired = AuditOf("expire");
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].study_ref, StudyRef(StudyUid("1.2.3")));
  EXPECT_EQ(expired[0].actor, "retention");
  EXPECT_EQ(json::parse(expired[0].detail),
            json::parse(R"({"spool_days":30,"instances":2,"results":1})"));

  const json sweep = LastSweep();
  EXPECT_EQ(sweep["studies_expired"], 1);
  EXPECT_EQ(sweep["files_removed"], 3);
  EXPECT_EQ(sweep["files_not_removed"], 0);
  EXPECT_EQ(sweep["periods_days"], json::parse(R"({"spool":30,"crosswalk":60,"audit":90})"));
  const std::string sweep_text = AuditOf("retention")[0].detail;
  EXPECT_EQ(sweep_text.find("1.2.3"), std::string::npos) << "counts only, no identifiers";
  EXPECT_EQ(metrics_.Value("conduit_retention_studies_expired_total"), 1);
  EXPECT_EQ(metrics_.Value("conduit_retention_files_removed_total"), 3);
  EXPECT_EQ(metrics_.Value("conduit_retention_sweeps_total"), 1);
}

TEST_F(RetentionTest, TheWorkFoldersOfAnExpiredStudysJobsGoWithItsFiles) {
  const std::string key = Receive("1.2.3", "1.2.3.1.1");
  const JobId failed = Job("1.2.3", JobState::kFailed);
  Job("1.2.3", JobState::kDone, 1);  // done: its folder went when it ended
  // An executable tool's input is a hard link to the spool file: the bytes live on in it.
  const fs::path folder = spool_->JobDir(failed.value).value();
  fs::create_directories(folder / "input");
  fs::create_hard_link(spool_->PathOf(key), folder / "input" / "0.dcm");
  std::ofstream(folder / "output.dcm") << "a result the tool wrote";
  const std::string kept = Receive("4.5.6", "4.5.6.1.1");
  const JobId recent = Job("4.5.6", JobState::kDeadLetter);
  const fs::path recent_folder = spool_->JobDir(recent.value).value();
  clock_.Advance(31 * kDay);
  Receive("4.5.6", "4.5.6.1.2");  // keeps study 4.5.6 within its period

  ASSERT_TRUE(Sweeper().SweepOnce().ok());
  EXPECT_FALSE(FileExists(key));
  EXPECT_FALSE(fs::exists(folder)) << "no copy of the expired study's bytes is left";
  EXPECT_TRUE(fs::exists(recent_folder)) << "a study within its period keeps its folders";
  EXPECT_TRUE(FileExists(kept));
  const json sweep = LastSweep();
  EXPECT_EQ(sweep["work_folders_removed"], 1);
  EXPECT_EQ(sweep["work_folders_not_removed"], 0);
  EXPECT_EQ(metrics_.Value("conduit_retention_work_folders_removed_total"), 1);
}

TEST_F(RetentionTest, AnExpiredStudyLeavesNothingForTheNextStartToCheck) {
  const std::string key = Receive("1.2.3", "1.2.3.1.1");
  Result(Job("1.2.3", JobState::kDone), "2.25.99.2");
  clock_.Advance(31 * kDay);
  ASSERT_TRUE(Sweeper().SweepOnce().ok());
  EXPECT_FALSE(FileExists(key));
  int asked = -1;
  EXPECT_EQ(Restart(&asked), 0);
  EXPECT_EQ(asked, 0) << "every file the sweep tracked was settled";
}

TEST_F(RetentionTest, AFileThatCouldNotBeRemovedIsRemovedAtTheNextStart) {
  // Also what a crash between the rows and the files leaves: files tracked, rows gone.
  const std::string key = Receive("1.2.3", "1.2.3.1.1");
  clock_.Advance(31 * kDay);
  unlink_error_ = EIO;
  ASSERT_TRUE(Sweeper().SweepOnce().ok());
  EXPECT_EQ(LastSweep()["files_not_removed"], 1);
  EXPECT_TRUE(FileExists(key));
  EXPECT_TRUE(index_->ListInstances(StudyUid("1.2.3"))->empty());
  unlink_error_ = 0;
  EXPECT_EQ(Restart(), 1);
  EXPECT_FALSE(FileExists(key));
}

TEST_F(RetentionTest, AStudyWithAJobInProgressIsKept) {
  std::vector<std::string> keys;
  for (JobState active :
       {JobState::kQueued, JobState::kSending, JobState::kAwaitingResults, JobState::kDelivering}) {
    const std::string study = std::string("1.2.") + JobStateName(active);
    keys.push_back(Receive(study, study + ".1"));
    Job(study, JobState::kDone, 0);
    Job(study, active, 1);  // a re-opened study's second job, still at work
  }
  clock_.Advance(400 * kDay);

  ASSERT_TRUE(Sweeper().SweepOnce().ok());
  for (const std::string& key : keys) EXPECT_TRUE(FileExists(key));
  EXPECT_EQ(index_->ListStudies(10, 0)->size(), 4u);
  EXPECT_TRUE(AuditOf("expire").empty());
  EXPECT_EQ(LastSweep()["studies_expired"], 0);
  EXPECT_EQ(Restart(), 0);
  for (const std::string& key : keys) EXPECT_TRUE(FileExists(key)) << "kept across a restart";
}

TEST_F(RetentionTest, AStudyReceivedWithinThePeriodIsKept) {
  const std::string old_key = Receive("1.2.3", "1.2.3.1.1");
  clock_.Advance(25 * kDay);
  const std::string late_key = Receive("1.2.3", "1.2.3.1.2");  // a late instance
  const std::string recent_key = Receive("1.2.4", "1.2.4.1.1");
  Job("1.2.3", JobState::kDone);
  Job("1.2.4", JobState::kDone);
  clock_.Advance(10 * kDay);  // the study's newest instance is 10 days old

  ASSERT_TRUE(Sweeper().SweepOnce().ok());
  for (const std::string& key : {old_key, late_key, recent_key}) EXPECT_TRUE(FileExists(key));
  EXPECT_EQ(index_->ListInstances(StudyUid("1.2.3"))->size(), 2u);
  EXPECT_EQ(index_->ListInstances(StudyUid("1.2.4"))->size(), 1u);
}

TEST_F(RetentionTest, ASweepIsIdempotent) {
  const std::string key = Receive("1.2.3", "1.2.3.1.1");
  Job("1.2.3", JobState::kFailed);
  const std::string kept = Receive("1.2.4", "1.2.4.1.1");
  Job("1.2.4", JobState::kQueued);
  clock_.Advance(31 * kDay);
  RetentionSweeper sweeper = Sweeper();
  ASSERT_TRUE(sweeper.SweepOnce().ok());
  EXPECT_FALSE(FileExists(key));
  const size_t events = index_->ListAudit(100000, 0)->size();

  ASSERT_TRUE(sweeper.SweepOnce().ok());
  EXPECT_EQ(index_->ListAudit(100000, 0)->size(), events + 1) << "only the second sweep's event";
  const json second = LastSweep();
  for (const char* count : {"audit_purged", "crosswalk_purged", "hl7_outbox_purged",
                            "ris_orders_purged", "ris_reports_purged", "studies_expired",
                            "studies_skipped", "files_removed", "files_not_removed"}) {
    EXPECT_EQ(second[count], 0) << count;
  }
  EXPECT_TRUE(FileExists(kept));
  EXPECT_EQ(AuditOf("expire").size(), 1u);
  EXPECT_EQ(metrics_.Value("conduit_retention_studies_expired_total"), 1);
  EXPECT_EQ(metrics_.Value("conduit_retention_sweeps_total"), 2);
}

TEST_F(RetentionTest, ManyStudiesAreExpiredInSeveralBatches) {
  const int studies = RetentionSweeper::kStudiesPerBatch * 2 + 5;
  std::vector<std::string> keys;
  for (int i = 0; i < studies; ++i) {
    keys.push_back(Receive("1.2." + std::to_string(i), "1.2." + std::to_string(i) + ".1.1"));
  }
  clock_.Advance(31 * kDay);
  ASSERT_TRUE(Sweeper().SweepOnce().ok());
  EXPECT_EQ(LastSweep()["studies_expired"], studies);
  for (const std::string& key : keys) EXPECT_FALSE(FileExists(key));
  EXPECT_TRUE(index_->ListStudies(10, 0)->empty());
}

TEST_F(RetentionTest, TheThreadSweepsAtStartAndStopsPromptly) {
  const std::string key = Receive("1.2.3", "1.2.3.1.1");
  clock_.Advance(31 * kDay);
  // The interval is an hour: Stop() returns only because the wait is interruptible.
  RetentionSweeper sweeper(*index_, *spool_, clock_, metrics_, policy_);
  ASSERT_TRUE(sweeper.Start().ok());
  EXPECT_EQ(sweeper.Start().code(), StatusCode::kFailedPrecondition);
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (AuditOf("retention").empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_EQ(AuditOf("retention").size(), 1u) << "swept once at start";
  sweeper.Stop();
  EXPECT_FALSE(FileExists(key));
  EXPECT_EQ(AuditOf("retention").size(), 1u);
}

}  // namespace
}  // namespace conduit
