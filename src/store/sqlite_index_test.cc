#include "store/sqlite_index.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "store/sqlite_index_internal.h"
#include "store/sqlite_schema.h"

namespace conduit {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;

class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = fs::temp_directory_path() /
            ("conduit-index-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

class SqliteIndexTest : public testing::Test {
 protected:
  SqliteIndexTest() { Reopen(); }

  void Reopen() {
    index_.reset();
    auto index = OpenSqliteIndex(db_path());
    ASSERT_TRUE(index.ok()) << index.status().ToString();
    index_ = std::move(index).value();
  }
  fs::path db_path() const { return tmp_.path() / "index" / "conduit.db"; }

  InstanceRecord Instance(const std::string& study, const std::string& series,
                          const std::string& sop, int series_number, int instance_number,
                          const std::string& modality = "CT") {
    InstanceRecord r;
    r.study_uid = StudyUid(study);
    r.series_uid = SeriesUid(series);
    r.sop_instance_uid = SopInstanceUid(sop);
    r.sop_class_uid = SopClassUid("1.2.840.10008.5.1.4.1.1.2");
    r.transfer_syntax_uid = "1.2.840.10008.1.2.1";
    r.spool_key = "key-" + sop;
    r.size_bytes = 1000;
    r.calling_ae = AeTitle("MODALITY1");
    r.received_at = clock_.Now();
    r.patient_id = "PID1";
    r.patient_name = "DOE^JANE";
    r.accession_number = "ACC1";
    r.study_date = "20240102";
    r.study_description = "CT HEAD";
    r.modality = modality;
    r.series_description = "AXIAL";
    r.body_part = "HEAD";
    r.series_number = series_number;
    r.instance_number = instance_number;
    return r;
  }

  AuditEvent Audit(const std::string& action, JobId job = {}) {
    AuditEvent e;
    e.at = clock_.Now();
    e.action = action;
    e.outcome = "success";
    e.actor = "test";
    e.study_ref = StudyRef(StudyUid("1.2.3"));
    e.job_id = job;
    e.detail = R"({"n":1})";
    return e;
  }

  JobRecord Job(const std::string& study, const std::string& route, int generation,
                JobState state = JobState::kQueued, const std::string& tool = "tool-a") {
    JobRecord j;
    j.study_uid = StudyUid(study);
    j.route = route;
    j.tool = tool;
    j.destinations = {"PACS1", "PACS2"};
    j.series = {SeriesUid("1.2.3.1")};
    j.generation = generation;
    j.state = state;
    j.next_attempt_at = clock_.Now();
    j.created_at = clock_.Now();
    j.updated_at = clock_.Now();
    return j;
  }

  JobId MustCreate(const JobRecord& job) {
    auto id = index_->CreateJob(job, Audit("create"));
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    return id.ok() ? *id : JobId{};
  }

  TempDir tmp_;
  FakeClock clock_;
  std::unique_ptr<Index> index_;
};

void ExpectSameInstance(const InstanceRecord& a, const InstanceRecord& b) {
  EXPECT_EQ(a.study_uid, b.study_uid);
  EXPECT_EQ(a.series_uid, b.series_uid);
  EXPECT_EQ(a.sop_instance_uid, b.sop_instance_uid);
  EXPECT_EQ(a.sop_class_uid, b.sop_class_uid);
  EXPECT_EQ(a.transfer_syntax_uid, b.transfer_syntax_uid);
  EXPECT_EQ(a.spool_key, b.spool_key);
  EXPECT_EQ(a.size_bytes, b.size_bytes);
  EXPECT_EQ(a.calling_ae, b.calling_ae);
  EXPECT_EQ(a.received_at, b.received_at);
  EXPECT_EQ(a.patient_id, b.patient_id);
  EXPECT_EQ(a.patient_name, b.patient_name);
  EXPECT_EQ(a.accession_number, b.accession_number);
  EXPECT_EQ(a.study_date, b.study_date);
  EXPECT_EQ(a.study_description, b.study_description);
  EXPECT_EQ(a.modality, b.modality);
  EXPECT_EQ(a.series_description, b.series_description);
  EXPECT_EQ(a.body_part, b.body_part);
  EXPECT_EQ(a.series_number, b.series_number);
  EXPECT_EQ(a.instance_number, b.instance_number);
  EXPECT_EQ(a.attributes, b.attributes);
}

TEST_F(SqliteIndexTest, PutInstanceInsertsThenReportsDuplicateAndUpdates) {
  InstanceRecord r = Instance("1.2.3", "1.2.3.1", "1.2.3.1.1", 1, 1);
  auto first = index_->PutInstance(r, Audit("receive"));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(*first, PutOutcome::kInserted);
  auto found = index_->FindInstance(r.sop_instance_uid);
  ASSERT_TRUE(found.ok() && found->has_value());
  ExpectSameInstance(**found, r);

  r.spool_key = "new-key";
  r.size_bytes = 2222;
  auto second = index_->PutInstance(r, Audit("receive"));
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*second, PutOutcome::kDuplicate);
  found = index_->FindInstance(r.sop_instance_uid);
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->spool_key, "new-key");
  EXPECT_EQ((*found)->size_bytes, 2222u);

  auto missing = index_->FindInstance(SopInstanceUid("9.9.9"));
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
  EXPECT_EQ(index_->ListAudit(10, 0)->size(), 2u) << "each put appends its audit event";
}

TEST_F(SqliteIndexTest, ListInstancesInSeriesThenInstanceOrder) {
  // Inserted out of order on purpose.
  for (const auto& [series, sop, sn, in] :
       std::vector<std::tuple<std::string, std::string, int, int>>{
           {"1.2.3.2", "s2i2", 2, 2},
           {"1.2.3.1", "s1i10", 1, 10},
           {"1.2.3.2", "s2i1", 2, 1},
           {"1.2.3.1", "s1i2", 1, 2},
           {"1.2.3.3", "s3i1", 3, 1},
       }) {
    ASSERT_TRUE(index_->PutInstance(Instance("1.2.3", series, sop, sn, in), Audit("r")).ok());
  }
  ASSERT_TRUE(index_->PutInstance(Instance("9.9", "9.9.1", "other", 1, 1), Audit("r")).ok());

  struct Case {
    std::vector<SeriesUid> series;
    std::vector<std::string> want;
  };
  for (const Case& c : std::vector<Case>{
           {{}, {"s1i2", "s1i10", "s2i1", "s2i2", "s3i1"}},
           {{SeriesUid("1.2.3.2")}, {"s2i1", "s2i2"}},
           {{SeriesUid("1.2.3.3"), SeriesUid("1.2.3.1")}, {"s1i2", "s1i10", "s3i1"}},
           {{SeriesUid("nope")}, {}},
       }) {
    auto list = index_->ListInstances(StudyUid("1.2.3"), c.series);
    ASSERT_TRUE(list.ok()) << list.status().ToString();
    std::vector<std::string> got;
    for (const auto& r : *list) got.push_back(r.sop_instance_uid.str());
    EXPECT_EQ(got, c.want) << "series filter of " << c.series.size();
  }
}

TEST_F(SqliteIndexTest, ListStudiesSummarisesMostRecentFirst) {
  ASSERT_TRUE(index_->PutInstance(Instance("A", "A.1", "a1", 1, 1, "CT"), Audit("r")).ok());
  clock_.Advance(seconds(10));
  ASSERT_TRUE(index_->PutInstance(Instance("B", "B.1", "b1", 1, 1, "MR"), Audit("r")).ok());
  clock_.Advance(seconds(10));
  ASSERT_TRUE(index_->PutInstance(Instance("A", "A.2", "a2", 2, 1, "PR"), Audit("r")).ok());
  ASSERT_TRUE(index_->PutInstance(Instance("A", "A.2", "a3", 2, 2, "CT"), Audit("r")).ok());
  const TimePoint last = clock_.Now();

  auto studies = index_->ListStudies(10, 0);
  ASSERT_TRUE(studies.ok()) << studies.status().ToString();
  ASSERT_EQ(studies->size(), 2u);
  const StudySummary& a = (*studies)[0];
  EXPECT_EQ(a.study_uid, StudyUid("A")) << "A received most recently";
  EXPECT_EQ(a.modalities, "CT,PR");
  EXPECT_EQ(a.series_count, 2);
  EXPECT_EQ(a.instance_count, 3);
  EXPECT_EQ(a.size_bytes, 3000u);
  EXPECT_EQ(a.first_received_at, last - seconds(20));
  EXPECT_EQ(a.last_received_at, last);
  EXPECT_EQ(a.study_date, "20240102");
  EXPECT_EQ(a.study_description, "CT HEAD");
  EXPECT_EQ((*studies)[1].study_uid, StudyUid("B"));

  auto page = index_->ListStudies(1, 1);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->size(), 1u);
  EXPECT_EQ((*page)[0].study_uid, StudyUid("B"));

  auto b = index_->GetStudy(StudyUid("B"));
  ASSERT_TRUE(b.ok() && b->has_value());
  EXPECT_EQ((*b)->instance_count, 1);
  EXPECT_EQ((*b)->modalities, "MR");
  EXPECT_FALSE(index_->GetStudy(StudyUid("none"))->has_value());
}

TEST_F(SqliteIndexTest, UnitsAreReplacedAndListedByState) {
  AssemblyUnit u{"route-ct", StudyUid("S1"), SeriesUid(""), UnitState::kOpen, clock_.Now(), 0};
  ASSERT_TRUE(index_->PutUnit(u).ok());
  AssemblyUnit series_unit{"route-series",   StudyUid("S1"), SeriesUid("S1.1"),
                           UnitState::kOpen, clock_.Now(),   0};
  ASSERT_TRUE(index_->PutUnit(series_unit).ok());
  AssemblyUnit other{"route-ct", StudyUid("S2"), SeriesUid(""), UnitState::kOpen, clock_.Now(), 0};
  ASSERT_TRUE(index_->PutUnit(other).ok());

  u.state = UnitState::kComplete;
  u.generation = 1;
  u.last_instance_at = clock_.Now() + seconds(5);
  ASSERT_TRUE(index_->PutUnit(u).ok());

  EXPECT_EQ(index_->ListUnits(std::nullopt)->size(), 3u);
  EXPECT_EQ(index_->ListUnits(UnitState::kOpen)->size(), 2u);
  auto complete = index_->ListUnits(UnitState::kComplete);
  ASSERT_TRUE(complete.ok());
  ASSERT_EQ(complete->size(), 1u);
  EXPECT_EQ((*complete)[0].route, "route-ct");
  EXPECT_EQ((*complete)[0].generation, 1);
  EXPECT_EQ((*complete)[0].last_instance_at, clock_.Now() + seconds(5));

  auto of_study = index_->UnitsOfStudy(StudyUid("S1"));
  ASSERT_TRUE(of_study.ok());
  ASSERT_EQ(of_study->size(), 2u);
  EXPECT_EQ((*of_study)[1].series_uid, SeriesUid("S1.1"));
}

TEST_F(SqliteIndexTest, MppsMergesStatusAndInstances) {
  MppsRecord m{"mpps.1", StudyUid("S1"), "IN PROGRESS", {SopInstanceUid("a"), SopInstanceUid("b")}};
  ASSERT_TRUE(index_->PutMpps(m).ok());
  MppsRecord update{
      "mpps.1", StudyUid(""), "COMPLETED", {SopInstanceUid("b"), SopInstanceUid("c")}};
  ASSERT_TRUE(index_->PutMpps(update).ok());

  auto got = index_->GetMpps("mpps.1");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->status, "COMPLETED");
  EXPECT_EQ((*got)->study_uid, StudyUid("S1")) << "an empty study in an update keeps the old";
  EXPECT_EQ((*got)->instances, (std::vector<SopInstanceUid>{
                                   SopInstanceUid("a"), SopInstanceUid("b"), SopInstanceUid("c")}));
  EXPECT_FALSE(index_->GetMpps("nope")->has_value());
  ASSERT_TRUE(index_->PutMpps({"mpps.2", StudyUid("S1"), "IN PROGRESS", {}}).ok());
  EXPECT_EQ(index_->MppsOfStudy(StudyUid("S1"))->size(), 2u);
  EXPECT_TRUE(index_->MppsOfStudy(StudyUid("S2"))->empty());
}

TEST_F(SqliteIndexTest, CreateJobIsIdempotentPerStudyRouteGeneration) {
  JobId first = MustCreate(Job("S1", "route-a", 0));
  EXPECT_GT(first.value, 0);
  EXPECT_EQ(MustCreate(Job("S1", "route-a", 0)), first) << "completing a unit twice";
  JobId next_generation = MustCreate(Job("S1", "route-a", 1));
  JobId other_route = MustCreate(Job("S1", "route-b", 0));
  JobId other_study = MustCreate(Job("S2", "route-a", 0));
  EXPECT_EQ(
      (std::set<int64_t>{first.value, next_generation.value, other_route.value, other_study.value})
          .size(),
      4u);
  auto audit = index_->ListAudit(100, 0);
  ASSERT_TRUE(audit.ok());
  EXPECT_EQ(audit->size(), 4u) << "the repeated create appends nothing";
  for (const auto& e : *audit) EXPECT_GT(e.job_id.value, 0) << "audit carries the new id";
}

TEST_F(SqliteIndexTest, UpdateJobReplacesEveryField) {
  JobId id = MustCreate(Job("S1", "route-a", 0));
  JobRecord j = *index_->GetJob(id).value();
  EXPECT_EQ(j.destinations, (std::vector<std::string>{"PACS1", "PACS2"}));
  EXPECT_EQ(j.series, std::vector<SeriesUid>{SeriesUid("1.2.3.1")});

  j.state = JobState::kAwaitingResults;
  j.attempts = 3;
  j.tool = "tool-b";
  j.destinations = {"PACS3"};
  j.series = {};
  j.next_attempt_at = clock_.Now() + seconds(60);
  j.last_error = "peer refused association";
  j.updated_at = clock_.Now() + seconds(1);
  j.dispatched_at = clock_.Now() + seconds(2);
  j.last_result_at = clock_.Now() + seconds(3);
  EXPECT_FALSE(j.shadow);
  j.shadow = true;
  ASSERT_TRUE(index_->UpdateJob(j, Audit("dispatch", id)).ok());

  auto got = index_->GetJob(id);
  ASSERT_TRUE(got.ok() && got->has_value());
  const JobRecord& g = **got;
  EXPECT_EQ(g.id, id);
  EXPECT_EQ(g.study_uid, StudyUid("S1"));
  EXPECT_EQ(g.route, "route-a");
  EXPECT_EQ(g.tool, "tool-b");
  EXPECT_EQ(g.destinations, std::vector<std::string>{"PACS3"});
  EXPECT_TRUE(g.series.empty());
  EXPECT_EQ(g.state, JobState::kAwaitingResults);
  EXPECT_EQ(g.attempts, 3);
  EXPECT_EQ(g.next_attempt_at, j.next_attempt_at);
  EXPECT_EQ(g.last_error, "peer refused association");
  EXPECT_EQ(g.created_at, j.created_at);
  EXPECT_EQ(g.updated_at, j.updated_at);
  EXPECT_EQ(g.dispatched_at, j.dispatched_at);
  EXPECT_EQ(g.last_result_at, j.last_result_at);
  EXPECT_TRUE(g.shadow);
  EXPECT_EQ(index_->ListAudit(1, 0).value()[0].action, "dispatch");

  JobRecord unknown = j;
  unknown.id = JobId{9999};
  EXPECT_EQ(index_->UpdateJob(unknown, Audit("x")).code(), StatusCode::kNotFound);
  EXPECT_FALSE(index_->GetJob(JobId{9999})->has_value());
}

TEST_F(SqliteIndexTest, ListDueAwaitingAndCountJobs) {
  const TimePoint now = clock_.Now();
  struct Row {
    const char* study;
    JobState state;
    int next_in_s;
    const char* tool;
  };
  const std::vector<Row> rows = {
      {"S1", JobState::kQueued, -10, "tool-a"},          // due, oldest
      {"S2", JobState::kSending, 0, "tool-a"},           // due now
      {"S3", JobState::kAwaitingResults, 30, "tool-a"},  // not yet due
      {"S4", JobState::kDelivering, -5, "tool-b"},       // due
      {"S5", JobState::kDone, -100, "tool-a"},           // terminal
      {"S6", JobState::kFailed, -100, "tool-a"},         // terminal
      {"S7", JobState::kDeadLetter, -100, "tool-a"},     // terminal
      {"S3", JobState::kQueued, -1, "tool-a"},           // due, awaits nothing yet
  };
  std::vector<JobId> ids;
  for (size_t i = 0; i < rows.size(); ++i) {
    JobRecord j = Job(rows[i].study, "route", static_cast<int>(i), rows[i].state, rows[i].tool);
    j.next_attempt_at = now + seconds(rows[i].next_in_s);
    ids.push_back(MustCreate(j));
  }

  auto due = index_->DueJobs(now, 10);
  ASSERT_TRUE(due.ok()) << due.status().ToString();
  std::vector<int64_t> due_ids;
  for (const auto& j : *due) due_ids.push_back(j.id.value);
  EXPECT_EQ(due_ids,
            (std::vector<int64_t>{ids[0].value, ids[3].value, ids[7].value, ids[1].value}));
  EXPECT_EQ(index_->DueJobs(now, 2)->size(), 2u);

  auto awaiting = index_->AwaitingJobs("tool-a", StudyUid("S3"));
  ASSERT_TRUE(awaiting.ok());
  ASSERT_EQ(awaiting->size(), 1u);
  EXPECT_EQ((*awaiting)[0].id, ids[2]);
  EXPECT_TRUE(index_->AwaitingJobs("tool-b", StudyUid("S3"))->empty());
  EXPECT_TRUE(index_->AwaitingJobs("tool-b", StudyUid("S4"))->empty())
      << "delivery has begun: a late result would never be delivered";
  EXPECT_EQ(index_->AwaitingJobs("tool-a", StudyUid("S2"))->size(), 1u) << "sending";
  EXPECT_TRUE(index_->AwaitingJobs("tool-a", StudyUid("S5"))->empty()) << "terminal";

  auto all = index_->ListJobs(std::nullopt, 100);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), rows.size());
  EXPECT_EQ(all->front().id, ids.back()) << "newest first";
  auto queued = index_->ListJobs(JobState::kQueued, 100);
  ASSERT_EQ(queued->size(), 2u);
  EXPECT_EQ((*queued)[0].id, ids[7]);
  EXPECT_EQ(index_->ListJobs(std::nullopt, 3)->size(), 3u);

  auto counts = index_->CountJobsByState();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ((*counts)[JobState::kQueued], 2);
  EXPECT_EQ((*counts)[JobState::kSending], 1);
  EXPECT_EQ((*counts)[JobState::kAwaitingResults], 1);
  EXPECT_EQ((*counts)[JobState::kDelivering], 1);
  EXPECT_EQ((*counts)[JobState::kDone], 1);
  EXPECT_EQ((*counts)[JobState::kFailed], 1);
  EXPECT_EQ((*counts)[JobState::kDeadLetter], 1);
}

TEST_F(SqliteIndexTest, ResultsReportDuplicatesAndNeedTheirJob) {
  JobId id = MustCreate(Job("S1", "route", 0));
  ResultRecord r{id,
                 SopInstanceUid("r.1"),
                 SopClassUid("1.2.840.10008.5.1.4.1.1.88.22"),
                 SeriesUid("r"),
                 "key1",
                 10,
                 clock_.Now()};
  EXPECT_EQ(index_->PutResult(r, Audit("result", id)).value(), PutOutcome::kInserted);
  r.spool_key = "key2";
  EXPECT_EQ(index_->PutResult(r, Audit("result", id)).value(), PutOutcome::kDuplicate);
  clock_.Advance(seconds(1));
  ResultRecord r2{id,
                  SopInstanceUid("r.2"),
                  SopClassUid("1.2.840.10008.5.1.4.1.1.66.4"),
                  SeriesUid("r"),
                  "key3",
                  20,
                  clock_.Now()};
  ASSERT_TRUE(index_->PutResult(r2, Audit("result", id)).ok());

  auto list = index_->ListResults(id);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].spool_key, "key2");
  EXPECT_EQ((*list)[0].sop_class_uid, r.sop_class_uid);
  EXPECT_EQ((*list)[1].sop_instance_uid, SopInstanceUid("r.2"));
  EXPECT_EQ((*list)[1].size_bytes, 20u);

  ResultRecord orphan = r;
  orphan.job_id = JobId{777};
  auto put = index_->PutResult(orphan, Audit("result"));
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.status().code(), StatusCode::kNotFound);
}

TEST_F(SqliteIndexTest, DeliveriesAreRecordedOnce) {
  JobId id = MustCreate(Job("S1", "route", 0));
  ASSERT_TRUE(index_->MarkDelivered(id, SopInstanceUid("r.1"), "PACS1", Audit("deliver")).ok());
  ASSERT_TRUE(index_->MarkDelivered(id, SopInstanceUid("r.1"), "PACS1", Audit("deliver")).ok());
  ASSERT_TRUE(index_->MarkDelivered(id, SopInstanceUid("r.1"), "PACS2", Audit("deliver")).ok());
  auto delivered = index_->ListDelivered(id);
  ASSERT_TRUE(delivered.ok());
  EXPECT_EQ(*delivered,
            (std::set<std::pair<std::string, std::string>>{{"r.1", "PACS1"}, {"r.1", "PACS2"}}));
  EXPECT_TRUE(index_->ListDelivered(JobId{id.value + 1})->empty());
  EXPECT_EQ(index_->MarkDelivered(JobId{555}, SopInstanceUid("x"), "P", Audit("d")).code(),
            StatusCode::kNotFound);
}

TEST_F(SqliteIndexTest, AuditIsNewestFirst) {
  for (int i = 0; i < 5; ++i) {
    AuditEvent e = Audit("action" + std::to_string(i));
    ASSERT_TRUE(index_->AppendAudit(e).ok());
    clock_.Advance(seconds(1));
  }
  auto events = index_->ListAudit(3, 0);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 3u);
  EXPECT_EQ((*events)[0].action, "action4");
  EXPECT_EQ((*events)[2].action, "action2");
  EXPECT_EQ((*events)[0].detail, R"({"n":1})");
  EXPECT_EQ((*events)[0].study_ref, StudyRef(StudyUid("1.2.3")));
  auto rest = index_->ListAudit(10, 3);
  ASSERT_EQ(rest->size(), 2u);
  EXPECT_EQ((*rest)[1].action, "action0");
}

TEST_F(SqliteIndexTest, EverythingSurvivesReopen) {
  InstanceRecord inst = Instance("S1", "S1.1", "S1.1.1", 1, 1);
  ASSERT_TRUE(index_->PutInstance(inst, Audit("receive")).ok());
  ASSERT_TRUE(
      index_
          ->PutUnit({"route", StudyUid("S1"), SeriesUid(""), UnitState::kComplete, clock_.Now(), 2})
          .ok());
  ASSERT_TRUE(
      index_->PutMpps({"mpps.1", StudyUid("S1"), "COMPLETED", {inst.sop_instance_uid}}).ok());
  JobId id = MustCreate(Job("S1", "route", 2));
  ASSERT_TRUE(index_
                  ->PutResult({id, SopInstanceUid("r.1"), SopClassUid("c"), SeriesUid("r"), "k", 1,
                               clock_.Now()},
                              Audit("result", id))
                  .ok());
  ASSERT_TRUE(index_->MarkDelivered(id, SopInstanceUid("r.1"), "PACS1", Audit("deliver")).ok());

  Reopen();
  ASSERT_TRUE(index_);

  auto found = index_->FindInstance(inst.sop_instance_uid);
  ASSERT_TRUE(found.ok() && found->has_value());
  ExpectSameInstance(**found, inst);
  EXPECT_EQ(index_->ListUnits(UnitState::kComplete)->size(), 1u);
  EXPECT_EQ(index_->GetMpps("mpps.1").value()->status, "COMPLETED");
  EXPECT_EQ(index_->GetJob(id).value()->generation, 2);
  EXPECT_EQ(index_->ListResults(id)->size(), 1u);
  EXPECT_EQ(index_->ListDelivered(id)->size(), 1u);
  EXPECT_EQ(index_->ListAudit(100, 0)->size(), 4u);
  EXPECT_EQ(MustCreate(Job("S1", "route", 2)), id) << "idempotence holds across restarts";
  EXPECT_GT(MustCreate(Job("S1", "route", 3)).value, id.value);
}

TEST_F(SqliteIndexTest, SchemaVersionIsRecorded) {
  index_.reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(db_path().c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT max(version) FROM schema_version", -1, &stmt, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(stmt, 0), SqliteSchemaVersion());
  EXPECT_GE(SqliteSchemaVersion(), 2) << "version 2 added the crosswalk and audit policy_hash";
  sqlite3_finalize(stmt);
  sqlite3_close(db);
}

TEST(SqliteIndexOpenTest, RefusesFilesThatAreNotAConduitIndex) {
  TempDir tmp;
  const fs::path foreign = tmp.path() / "foreign.db";
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(foreign.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE t (x)", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto opened = OpenSqliteIndex(foreign);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), StatusCode::kInvalidArgument);

  const fs::path garbage = tmp.path() / "garbage.db";
  {
    std::ofstream out(garbage);
    out << std::string(8192, 'x');
  }
  auto garbage_opened = OpenSqliteIndex(garbage);
  ASSERT_FALSE(garbage_opened.ok());
  EXPECT_EQ(garbage_opened.status().code(), StatusCode::kInvalidArgument)
      << garbage_opened.status().ToString();
}

TEST_F(SqliteIndexTest, IntegrityCheckFindsNothingInASoundIndexAndNamesDamage) {
  for (int i = 0; i < 300; ++i) {
    const std::string sop = "1.2.3.1." + std::to_string(i);
    ASSERT_TRUE(index_->PutInstance(Instance("1.2.3", "1.2.3.1", sop, 1, i), Audit("r")).ok());
  }
  auto sound = index_->CheckIntegrity(10);
  ASSERT_TRUE(sound.ok()) << sound.status().ToString();
  EXPECT_TRUE(sound->empty());

  index_.reset();  // the last connection checkpoints the WAL into the database file
  {
    std::fstream db(db_path(), std::ios::in | std::ios::out | std::ios::binary);
    db.seekg(0, std::ios::end);
    const std::streamoff pages = db.tellg() / 4096;
    ASSERT_GT(pages, 8);
    for (std::streamoff page = 3; page < pages; page += 5) {
      db.seekp(page * 4096 + 100);
      db << std::string(600, '\xee');
    }
  }
  auto damaged = OpenSqliteIndex(db_path());
  ASSERT_TRUE(damaged.ok()) << damaged.status().ToString();
  auto problems = (*damaged)->CheckIntegrity(10);
  // Damage is either listed or stops the check itself; a sound answer would be wrong.
  EXPECT_FALSE(problems.ok() && problems->empty());
}

TEST_F(SqliteIndexTest, ConcurrentPutsAreAllStoredAndShareCommits) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 200;
  const SqliteIndexStats before = GetSqliteIndexStats(*index_);
  std::atomic<int> failures{0};
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          const std::string sop = "1.2.3." + std::to_string(t) + "." + std::to_string(i);
          auto put = index_->PutInstance(Instance("1.2.3", "1.2.3." + std::to_string(t), sop, t, i),
                                         Audit("receive"));
          if (!put.ok() || *put != PutOutcome::kInserted) ++failures;
        }
      });
    }
  }
  EXPECT_EQ(failures.load(), 0);
  auto all = index_->ListInstances(StudyUid("1.2.3"));
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), size_t{kThreads * kPerThread});
  EXPECT_EQ(index_->ListAudit(kThreads * kPerThread + 10, 0)->size(),
            size_t{kThreads * kPerThread});

  const SqliteIndexStats after = GetSqliteIndexStats(*index_);
  const int64_t commits = after.commits - before.commits;
  RecordProperty("commits", std::to_string(commits));
  EXPECT_EQ(after.writes - before.writes, kThreads * kPerThread);
  EXPECT_GT(commits, 0);
  EXPECT_LT(commits, kThreads * kPerThread) << "group commit should batch concurrent writes";
}

TEST_F(SqliteIndexTest, AFailingWriteFailsOnlyItsCaller) {
  JobId id = MustCreate(Job("S1", "route", 0));
  JobRecord unknown = *index_->GetJob(id).value();
  unknown.id = JobId{424242};
  std::atomic<int> put_failures{0};
  std::atomic<int> not_found{0};
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < 6; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 100; ++i) {
          if (t % 2 == 0) {
            if (index_->UpdateJob(unknown, Audit("x")).code() == StatusCode::kNotFound) {
              ++not_found;
            }
          } else {
            auto put = index_->PutInstance(
                Instance("S9", "S9.1", "S9." + std::to_string(t) + "." + std::to_string(i), 1, i),
                Audit("receive"));
            if (!put.ok()) ++put_failures;
          }
        }
      });
    }
  }
  EXPECT_EQ(not_found.load(), 300);
  EXPECT_EQ(put_failures.load(), 0);
  EXPECT_EQ(index_->ListInstances(StudyUid("S9"))->size(), 300u);
  EXPECT_EQ(index_->ListAudit(1000, 0)->size(), 301u) << "failed updates left no audit";
}

TEST(SqliteIndexFullTest, DiskFullIsResourceExhaustedAndKeepsEarlierWrites) {
  TempDir tmp;
  SqliteIndexOptions options;
  options.max_page_count = 64;  // a tiny database: fills after a few hundred rows
  auto opened = OpenSqliteIndexWithOptions(tmp.path() / "full.db", options);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  std::unique_ptr<Index> index = std::move(opened).value();

  InstanceRecord r;
  r.study_uid = StudyUid("S1");
  r.series_uid = SeriesUid("S1.1");
  r.study_description = std::string(500, 'd');
  AuditEvent audit;
  audit.action = "receive";
  Status failure;
  int stored = 0;
  for (int i = 0; i < 10000 && failure.ok(); ++i) {
    r.sop_instance_uid = SopInstanceUid("S1.1." + std::to_string(i));
    auto put = index->PutInstance(r, audit);
    if (put.ok()) {
      ++stored;
    } else {
      failure = put.status();
    }
  }
  ASSERT_FALSE(failure.ok()) << "the database never filled";
  EXPECT_EQ(failure.code(), StatusCode::kResourceExhausted) << failure.ToString();
  EXPECT_GT(stored, 0);
  auto list = index->ListInstances(StudyUid("S1"));
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), static_cast<size_t>(stored)) << "committed writes survive";
  EXPECT_TRUE(index->FindInstance(SopInstanceUid("S1.1.0"))->has_value());
}

// ---- crosswalk ----

CrosswalkRecord Pseudonym(const std::string& pseudonym, const std::string& original,
                          TimePoint created_at, const std::string& kind = "uid") {
  CrosswalkRecord r;
  r.pseudonym = pseudonym;
  r.original = original;
  r.kind = kind;
  r.study_uid = StudyUid("1.2.3");
  r.key_id = "0123456789abcdef";
  r.created_at = created_at;
  return r;
}

TEST_F(SqliteIndexTest, CrosswalkRoundTripsAndSurvivesReopen) {
  ASSERT_TRUE(
      index_
          ->PutPseudonyms({Pseudonym("2.25.1", "1.2.3", clock_.Now()),
                           Pseudonym("PABCDEFGHIJKLMNO", "PID1", clock_.Now(), "patient_id"),
                           Pseudonym("AABCDEFGHIJKLMNO", "ACC1", clock_.Now(), "accession_number")})
          .ok());
  Reopen();
  auto found = index_->FindOriginals({"2.25.1", "PABCDEFGHIJKLMNO", "AABCDEFGHIJKLMNO"});
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_EQ(*found,
            (std::map<std::string, std::string>{
                {"2.25.1", "1.2.3"}, {"PABCDEFGHIJKLMNO", "PID1"}, {"AABCDEFGHIJKLMNO", "ACC1"}}));
}

TEST_F(SqliteIndexTest, CrosswalkKeepsTheFirstOriginalOfAPseudonym) {
  ASSERT_TRUE(index_->PutPseudonyms({Pseudonym("2.25.7", "first", clock_.Now())}).ok());
  ASSERT_TRUE(index_
                  ->PutPseudonyms({Pseudonym("2.25.7", "second", clock_.Now()),
                                   Pseudonym("2.25.8", "other", clock_.Now())})
                  .ok())
      << "a known pseudonym is not an error, and the rest of the batch is recorded";
  auto found = index_->FindOriginals({"2.25.7", "2.25.8"});
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->at("2.25.7"), "first");
  EXPECT_EQ(found->at("2.25.8"), "other");
}

TEST_F(SqliteIndexTest, CrosswalkLeavesUnknownPseudonymsOut) {
  ASSERT_TRUE(index_->PutPseudonyms({Pseudonym("2.25.1", "1.2.3", clock_.Now())}).ok());
  auto found = index_->FindOriginals({"2.25.404", "2.25.1", ""});
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->size(), 1u);
  EXPECT_EQ(found->count("2.25.404"), 0u);
  EXPECT_TRUE(index_->FindOriginals({})->empty());
  EXPECT_TRUE(index_->PutPseudonyms({}).ok());
}

TEST_F(SqliteIndexTest, CrosswalkTakesALargeBatchInOneCommit) {
  std::vector<CrosswalkRecord> batch;
  std::vector<std::string> keys;
  for (int i = 0; i < 5000; ++i) {
    batch.push_back(
        Pseudonym("2.25." + std::to_string(i), "1.2." + std::to_string(i), clock_.Now()));
    keys.push_back(batch.back().pseudonym);
  }
  const int64_t commits_before = GetSqliteIndexStats(*index_).commits;
  ASSERT_TRUE(index_->PutPseudonyms(batch).ok());
  EXPECT_EQ(GetSqliteIndexStats(*index_).commits, commits_before + 1);
  auto found = index_->FindOriginals(keys);
  ASSERT_TRUE(found.ok());
  ASSERT_EQ(found->size(), 5000u);
  EXPECT_EQ(found->at("2.25.4999"), "1.2.4999");
}

TEST_F(SqliteIndexTest, PurgeDeletesOnlyRowsCreatedBeforeTheCutoff) {
  const TimePoint old_time = clock_.Now();
  ASSERT_TRUE(
      index_
          ->PutPseudonyms({Pseudonym("old.1", "o1", old_time), Pseudonym("old.2", "o2", old_time)})
          .ok());
  clock_.Advance(seconds(3600));
  const TimePoint cutoff = clock_.Now();
  ASSERT_TRUE(index_->PutPseudonyms({Pseudonym("new.1", "n1", cutoff)}).ok());
  auto purged = index_->PurgePseudonymsBefore(cutoff);
  ASSERT_TRUE(purged.ok()) << purged.status().ToString();
  EXPECT_EQ(*purged, 2);
  auto found = index_->FindOriginals({"old.1", "old.2", "new.1"});
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(*found, (std::map<std::string, std::string>{{"new.1", "n1"}}))
      << "a row created exactly at the cutoff is kept";
  EXPECT_EQ(index_->PurgePseudonymsBefore(cutoff).value(), 0);
}

// ---- audit policy hash ----

TEST_F(SqliteIndexTest, AuditWithoutAPolicyHashIsStampedWithTheIndexOne) {
  ASSERT_TRUE(index_->AppendAudit(Audit("before")).ok());
  index_->SetPolicyHash("aaaa");
  ASSERT_TRUE(index_->AppendAudit(Audit("stamped")).ok());
  AuditEvent explicit_hash = Audit("explicit");
  explicit_hash.policy_hash = "bbbb";
  ASSERT_TRUE(index_->AppendAudit(explicit_hash).ok());
  ASSERT_TRUE(
      index_->PutInstance(Instance("1.2.3", "1.2.3.1", "sop", 1, 1), Audit("receive")).ok());
  index_->SetPolicyHash("cccc");
  ASSERT_TRUE(index_->AppendAudit(Audit("changed")).ok());

  auto events = index_->ListAudit(10, 0);
  ASSERT_TRUE(events.ok());
  std::map<std::string, std::string> hash_of;
  for (const AuditEvent& e : *events) hash_of[e.action] = e.policy_hash;
  EXPECT_EQ(hash_of, (std::map<std::string, std::string>{{"before", ""},
                                                         {"stamped", "aaaa"},
                                                         {"explicit", "bbbb"},
                                                         {"receive", "aaaa"},
                                                         {"changed", "cccc"}}))
      << "rows already written keep the hash they were written with";
}

// The complete schema of version 1 (the release before the crosswalk), as it was shipped.
constexpr const char* kVersion1Schema = R"sql(
CREATE TABLE schema_version (version INTEGER PRIMARY KEY NOT NULL);
INSERT INTO schema_version (version) VALUES (1);
CREATE TABLE instances (
  sop_instance_uid TEXT PRIMARY KEY NOT NULL, study_uid TEXT NOT NULL,
  series_uid TEXT NOT NULL, sop_class_uid TEXT NOT NULL, transfer_syntax_uid TEXT NOT NULL,
  spool_key TEXT NOT NULL, size_bytes INTEGER NOT NULL, calling_ae TEXT NOT NULL,
  received_at INTEGER NOT NULL, patient_id TEXT NOT NULL, patient_name TEXT NOT NULL,
  accession_number TEXT NOT NULL, study_date TEXT NOT NULL, study_description TEXT NOT NULL,
  modality TEXT NOT NULL, series_description TEXT NOT NULL, body_part TEXT NOT NULL,
  series_number INTEGER NOT NULL, instance_number INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX instances_by_study ON instances (study_uid, series_number, instance_number);
CREATE INDEX instances_by_received ON instances (received_at);
CREATE TABLE units (
  route TEXT NOT NULL, study_uid TEXT NOT NULL, series_uid TEXT NOT NULL, state TEXT NOT NULL,
  last_instance_at INTEGER NOT NULL, generation INTEGER NOT NULL,
  PRIMARY KEY (route, study_uid, series_uid)
);
CREATE INDEX units_by_study ON units (study_uid);
CREATE INDEX units_by_state ON units (state);
CREATE TABLE mpps (
  mpps_uid TEXT PRIMARY KEY NOT NULL, study_uid TEXT NOT NULL, status TEXT NOT NULL,
  instances TEXT NOT NULL
);
CREATE INDEX mpps_by_study ON mpps (study_uid);
CREATE TABLE jobs (
  id INTEGER PRIMARY KEY AUTOINCREMENT, study_uid TEXT NOT NULL, route TEXT NOT NULL,
  tool TEXT NOT NULL, destinations TEXT NOT NULL, series TEXT NOT NULL,
  generation INTEGER NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL,
  next_attempt_at INTEGER NOT NULL, last_error TEXT NOT NULL, created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL, dispatched_at INTEGER NOT NULL, last_result_at INTEGER NOT NULL,
  UNIQUE (study_uid, route, series, generation)
);
CREATE INDEX jobs_by_state ON jobs (state, next_attempt_at);
CREATE INDEX jobs_by_tool ON jobs (tool, study_uid);
CREATE TABLE results (
  job_id INTEGER NOT NULL REFERENCES jobs (id), sop_instance_uid TEXT NOT NULL,
  sop_class_uid TEXT NOT NULL, series_uid TEXT NOT NULL, spool_key TEXT NOT NULL,
  size_bytes INTEGER NOT NULL, received_at INTEGER NOT NULL,
  PRIMARY KEY (job_id, sop_instance_uid)
);
CREATE TABLE deliveries (
  job_id INTEGER NOT NULL REFERENCES jobs (id), sop_instance_uid TEXT NOT NULL,
  destination TEXT NOT NULL, delivered_at INTEGER NOT NULL,
  PRIMARY KEY (job_id, sop_instance_uid, destination)
);
CREATE TABLE audit (
  id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, action TEXT NOT NULL,
  outcome TEXT NOT NULL, actor TEXT NOT NULL, study_ref TEXT NOT NULL,
  job_id INTEGER NOT NULL, detail TEXT NOT NULL
);
CREATE INDEX audit_by_time ON audit (at);
INSERT INTO instances VALUES ('old.sop', 'old.study', 'old.series', '1.2.840.10008.5.1.4.1.1.2',
  '1.2.840.10008.1.2.1', 'key-old', 10, 'MOD', 1000, 'PID', 'DOE^J', 'ACC', '20240101', 'CT',
  'CT', 'AX', 'HEAD', 1, 1);
INSERT INTO audit (at, action, outcome, actor, study_ref, job_id, detail)
  VALUES (1000, 'receive', 'success', 'MOD', 'ref', 0, '{}');
)sql";

TEST(SqliteIndexMigrationTest, AVersion1IndexGainsTheCrosswalkAndAuditPolicyHash) {
  TempDir tmp;
  const fs::path path = tmp.path() / "old.db";
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    char* error = nullptr;
    ASSERT_EQ(sqlite3_exec(db, kVersion1Schema, nullptr, nullptr, &error), SQLITE_OK) << error;
    sqlite3_close(db);
  }
  auto opened = OpenSqliteIndex(path);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  std::unique_ptr<Index> index = std::move(opened).value();

  auto old_instance = index->FindInstance(SopInstanceUid("old.sop"));
  ASSERT_TRUE(old_instance.ok());
  ASSERT_TRUE(old_instance->has_value()) << "rows of the old release are kept";
  EXPECT_EQ((*old_instance)->spool_key, "key-old");

  index->SetPolicyHash("feed");
  AuditEvent event;
  event.at = FromUnixMillis(2000);
  event.action = "deid";
  event.outcome = "success";
  ASSERT_TRUE(index->AppendAudit(event).ok());
  auto audit = index->ListAudit(10, 0);
  ASSERT_TRUE(audit.ok()) << audit.status().ToString();
  ASSERT_EQ(audit->size(), 2u);
  EXPECT_EQ((*audit)[0].policy_hash, "feed");
  EXPECT_EQ((*audit)[1].action, "receive");
  EXPECT_EQ((*audit)[1].policy_hash, "") << "old rows carry no hash";

  ASSERT_TRUE(index->PutPseudonyms({Pseudonym("2.25.9", "old.study", FromUnixMillis(2000))}).ok());
  EXPECT_EQ(index->FindOriginals({"2.25.9"})->at("2.25.9"), "old.study");

  index.reset();
  auto again = OpenSqliteIndex(path);
  ASSERT_TRUE(again.ok()) << "a migrated index opens again: " << again.status().ToString();
  EXPECT_EQ((*again)->FindOriginals({"2.25.9"})->size(), 1u);
}

// ---- retention ----

TEST_F(SqliteIndexTest, PurgeAuditDeletesRowsBeforeTheCutoffInSeveralTransactions) {
  // 12,001 old rows written directly (one commit each through the index would take minutes).
  const int64_t old_ms = ToUnixMillis(clock_.Now());
  index_.reset();
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(db_path().c_str(), &db), SQLITE_OK);
    const std::string sql =
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 12001) "
        "INSERT INTO audit (at, action, outcome, actor, study_ref, job_id, detail) "
        "SELECT " +
        std::to_string(old_ms) + ", 'receive', 'success', 'MOD', 'ref', 0, '{}' FROM n";
    char* error = nullptr;
    ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK) << error;
    sqlite3_close(db);
  }
  Reopen();
  clock_.Advance(seconds(60));
  const TimePoint cutoff = clock_.Now();
  ASSERT_TRUE(index_->AppendAudit(Audit("at-cutoff")).ok());
  clock_.Advance(seconds(60));
  ASSERT_TRUE(index_->AppendAudit(Audit("newer")).ok());

  const int64_t commits_before = GetSqliteIndexStats(*index_).commits;
  auto purged = index_->PurgeAuditBefore(cutoff);
  ASSERT_TRUE(purged.ok()) << purged.status().ToString();
  EXPECT_EQ(*purged, 12001);
  EXPECT_GE(GetSqliteIndexStats(*index_).commits - commits_before, 3)
      << "5000 rows per transaction at most, so receipts are not held up";
  auto left = index_->ListAudit(100, 0);
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->size(), 2u) << "a row dated exactly at the cutoff is kept";
  EXPECT_EQ((*left)[0].action, "newer");
  EXPECT_EQ((*left)[1].action, "at-cutoff");
  EXPECT_EQ(index_->PurgeAuditBefore(cutoff).value(), 0);
}

class SqliteIndexRetentionTest : public SqliteIndexTest {
 protected:
  // Records instance `sop` of `study` received now, stored under "key-<sop>".
  void Receive(const std::string& study, const std::string& sop) {
    ASSERT_TRUE(
        index_->PutInstance(Instance(study, study + ".1", sop, 1, 1), Audit("receive")).ok());
  }
  JobId JobIn(const std::string& study, JobState state, const std::string& route = "route") {
    JobRecord job = Job(study, route, 0, state);
    job.series.clear();
    return MustCreate(job);
  }
  void Result(JobId job, const std::string& sop, const std::string& key) {
    ResultRecord r;
    r.job_id = job;
    r.sop_instance_uid = SopInstanceUid(sop);
    r.sop_class_uid = SopClassUid("1.2.840.10008.5.1.4.1.1.88.22");  // Enhanced SR
    r.series_uid = SeriesUid("r");
    r.spool_key = key;
    r.size_bytes = 10;
    r.received_at = clock_.Now();
    ASSERT_TRUE(index_->PutResult(r, Audit("result", job)).ok());
  }
  std::vector<StudyUid> ToExpire(TimePoint cutoff, int limit = 100) {
    auto studies = index_->StudiesToExpire(cutoff, limit);
    EXPECT_TRUE(studies.ok()) << studies.status().ToString();
    return studies.ok() ? *studies : std::vector<StudyUid>{};
  }
  AuditEvent ExpireAudit(const std::string& study) {
    AuditEvent e = Audit("expire");
    e.study_ref = StudyRef(StudyUid(study));
    e.detail = R"({"policy":"spool"})";
    return e;
  }
};

TEST_F(SqliteIndexRetentionTest, StudiesToExpireAreOldAndIdleOldestFirst) {
  Receive("done", "done.1");
  JobIn("done", JobState::kDone);
  clock_.Advance(seconds(1));
  Receive("failed", "failed.1");
  JobIn("failed", JobState::kFailed);
  JobIn("failed", JobState::kDeadLetter, "route2");
  clock_.Advance(seconds(1));
  Receive("no-job", "no-job.1");
  clock_.Advance(seconds(1));
  Receive("complete-unit", "complete-unit.1");
  ASSERT_TRUE(index_
                  ->PutUnit({"route", StudyUid("complete-unit"), SeriesUid(), UnitState::kComplete,
                             clock_.Now(), 0})
                  .ok());
  // Kept: any non-terminal job, an open unit, an instance at or after the cutoff.
  for (JobState active :
       {JobState::kQueued, JobState::kSending, JobState::kAwaitingResults, JobState::kDelivering}) {
    const std::string study = std::string("active-") + JobStateName(active);
    Receive(study, study + ".1");
    JobIn(study, JobState::kDone);
    JobIn(study, active, "route2");
  }
  Receive("open-unit", "open-unit.1");
  ASSERT_TRUE(index_
                  ->PutUnit({"route", StudyUid("open-unit"), SeriesUid(), UnitState::kOpen,
                             clock_.Now(), 0})
                  .ok());
  Receive("late", "late.1");
  clock_.Advance(seconds(60));
  const TimePoint cutoff = clock_.Now();
  Receive("late", "late.2");
  Receive("recent", "recent.1");

  EXPECT_EQ(ToExpire(cutoff),
            (std::vector<StudyUid>{StudyUid("done"), StudyUid("failed"), StudyUid("no-job"),
                                   StudyUid("complete-unit")}));
  EXPECT_EQ(ToExpire(cutoff, 2), (std::vector<StudyUid>{StudyUid("done"), StudyUid("failed")}));
}

TEST_F(SqliteIndexRetentionTest, ExpireStudyDeletesItsDataKeepsHistoryAndReturnsItsFiles) {
  Receive("S", "S.1");
  Receive("S", "S.2");
  Receive("other", "other.1");
  const JobId job = JobIn("S", JobState::kDone);
  const JobId other_job = JobIn("other", JobState::kDone);
  Result(job, "res.1", "key-res.1");
  Result(job, "res.shared", "key-shared");
  Result(other_job, "res.shared", "key-shared");
  ASSERT_TRUE(
      index_->MarkDelivered(job, SopInstanceUid("res.1"), "PACS1", Audit("deliver", job)).ok());
  ASSERT_TRUE(
      index_->PutUnit({"route", StudyUid("S"), SeriesUid(), UnitState::kComplete, clock_.Now(), 0})
          .ok());
  ASSERT_TRUE(
      index_->PutMpps({"mpps.1", StudyUid("S"), "COMPLETED", {SopInstanceUid("S.1")}}).ok());
  // A request the job was given up on with (it ended in the dead letter, say) goes too.
  CommitmentRecord asked{"2.25.9",
                         job,
                         "PACS1",
                         SopInstanceUid("res.shared"),
                         SopClassUid("1.2"),
                         clock_.Now(),
                         clock_.Now(),
                         true,
                         false,
                         0};
  ASSERT_TRUE(index_->OpenCommitment({asked}, Audit("commit_request", job)).ok());
  CommitmentRecord other_asked = asked;
  other_asked.transaction_uid = "2.25.10";
  other_asked.job_id = other_job;
  ASSERT_TRUE(index_->OpenCommitment({other_asked}, Audit("commit_request", other_job)).ok());

  auto keys = index_->ExpireStudy(StudyUid("S"), ExpireAudit("S"));
  ASSERT_TRUE(keys.ok()) << keys.status().ToString();
  std::sort(keys->begin(), keys->end());
  EXPECT_EQ(*keys, (std::vector<std::string>{"key-S.1", "key-S.2", "key-res.1"}))
      << "key-shared is still named by the other study's result";

  EXPECT_TRUE(index_->ListInstances(StudyUid("S"))->empty());
  EXPECT_FALSE(index_->GetStudy(StudyUid("S"))->has_value());
  EXPECT_TRUE(index_->ListResults(job)->empty());
  EXPECT_TRUE(index_->UnitsOfStudy(StudyUid("S"))->empty());
  EXPECT_TRUE(index_->MppsOfStudy(StudyUid("S"))->empty());
  EXPECT_TRUE(index_->ListCommitments(job)->empty());
  EXPECT_EQ(index_->ListCommitments(other_job)->size(), 1u);
  auto kept_job = index_->GetJob(job);
  ASSERT_TRUE(kept_job.ok() && kept_job->has_value()) << "jobs are history";
  EXPECT_EQ((*kept_job)->state, JobState::kDone);
  EXPECT_EQ(index_->ListDelivered(job)->size(), 1u) << "deliveries are history";
  EXPECT_EQ(index_->ListInstances(StudyUid("other"))->size(), 1u);
  EXPECT_EQ(index_->ListResults(other_job)->size(), 1u);

  auto audit = index_->ListAudit(1, 0);
  ASSERT_TRUE(audit.ok());
  ASSERT_EQ(audit->size(), 1u);
  EXPECT_EQ((*audit)[0].action, "expire");
  EXPECT_EQ((*audit)[0].study_ref, StudyRef(StudyUid("S")));
  EXPECT_EQ(nlohmann::json::parse((*audit)[0].detail),
            nlohmann::json::parse(R"({"policy":"spool","instances":2,"results":2})"));

  const size_t events = index_->ListAudit(1000, 0)->size();
  auto again = index_->ExpireStudy(StudyUid("S"), ExpireAudit("S"));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(index_->ListAudit(1000, 0)->size(), events) << "no second expire event";
}

TEST_F(SqliteIndexRetentionTest, ExpireStudyRefusesAStudyWithWorkInProgress) {
  Receive("S", "S.1");
  JobIn("S", JobState::kAwaitingResults);
  auto refused = index_->ExpireStudy(StudyUid("S"), ExpireAudit("S"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(index_->ListInstances(StudyUid("S"))->size(), 1u) << "nothing deleted";

  Receive("U", "U.1");
  ASSERT_TRUE(
      index_->PutUnit({"route", StudyUid("U"), SeriesUid(), UnitState::kOpen, clock_.Now(), 0})
          .ok());
  EXPECT_EQ(index_->ExpireStudy(StudyUid("U"), ExpireAudit("U")).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(index_->ListInstances(StudyUid("U"))->size(), 1u);
}

// ---- tool registry ----

ToolRecord Tool(const std::string& name, const std::string& version, const std::string& hash,
                TimePoint at) {
  ToolRecord t;
  t.name = name;
  t.version = version;
  t.manifest_json = R"({"name":")" + name + R"(","version":")" + version + R"("})";
  t.manifest_hash = hash;
  t.added_at = at;
  return t;
}

TEST_F(SqliteIndexTest, ToolVersionsAreNewRowsAndTheLatestIsTheLastAdded) {
  auto first = index_->AddToolVersion(Tool("acme", "1.0", "h1", clock_.Now()), Audit("tool_add"));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(*first, PutOutcome::kInserted);
  clock_.Advance(seconds(10));
  ASSERT_TRUE(
      index_->AddToolVersion(Tool("acme", "1.1", "h2", clock_.Now()), Audit("tool_add")).ok());
  ASSERT_TRUE(
      index_->AddToolVersion(Tool("beta", "3", "h3", clock_.Now()), Audit("tool_add")).ok());

  auto latest = index_->GetTool("acme", std::nullopt);
  ASSERT_TRUE(latest.ok() && latest->has_value());
  EXPECT_EQ((*latest)->version, "1.1");
  EXPECT_EQ((*latest)->manifest_hash, "h2");
  EXPECT_EQ((*latest)->manifest_json, R"({"name":"acme","version":"1.1"})");
  EXPECT_EQ((*latest)->added_at, clock_.Now());
  EXPECT_FALSE((*latest)->removed_at.has_value());

  auto old = index_->GetTool("acme", std::string("1.0"));
  ASSERT_TRUE(old.ok() && old->has_value());
  EXPECT_EQ((*old)->manifest_hash, "h1");

  auto all = index_->ListTools(false);
  ASSERT_TRUE(all.ok());
  std::vector<std::string> rows;
  for (const ToolRecord& t : *all) rows.push_back(t.name + "@" + t.version);
  EXPECT_EQ(rows, (std::vector<std::string>{"acme@1.0", "acme@1.1", "beta@3"}));

  auto missing = index_->GetTool("nobody", std::nullopt);
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
}

TEST_F(SqliteIndexTest, AToolVersionIsNeverOverwritten) {
  ASSERT_TRUE(
      index_->AddToolVersion(Tool("acme", "1.0", "h1", clock_.Now()), Audit("tool_add")).ok());
  auto again = index_->AddToolVersion(Tool("acme", "1.0", "h1", clock_.Now()), Audit("again"));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*again, PutOutcome::kDuplicate) << "the same manifest twice is a no-op";

  auto changed = index_->AddToolVersion(Tool("acme", "1.0", "other", clock_.Now()), Audit("x"));
  EXPECT_EQ(changed.status().code(), StatusCode::kAlreadyExists);
  auto kept = index_->GetTool("acme", std::string("1.0"));
  ASSERT_TRUE(kept.ok() && kept->has_value());
  EXPECT_EQ((*kept)->manifest_hash, "h1");

  auto audit = index_->ListAudit(10, 0);
  ASSERT_TRUE(audit.ok());
  ASSERT_EQ(audit->size(), 1u) << "only the insertion is audited";
  EXPECT_EQ(audit->front().action, "tool_add");
}

TEST_F(SqliteIndexTest, RemovingAToolVersionDatesItAndKeepsTheRow) {
  ASSERT_TRUE(
      index_->AddToolVersion(Tool("acme", "1.0", "h1", clock_.Now()), Audit("tool_add")).ok());
  ASSERT_TRUE(
      index_->AddToolVersion(Tool("acme", "2.0", "h2", clock_.Now()), Audit("tool_add")).ok());
  clock_.Advance(seconds(60));
  ASSERT_TRUE(index_->RemoveTool("acme", "2.0", Audit("tool_remove")).ok());
  ASSERT_TRUE(index_->RemoveTool("acme", "2.0", Audit("tool_remove_again")).ok())
      << "removing twice is harmless";
  EXPECT_EQ(index_->RemoveTool("acme", "9.9", Audit("x")).code(), StatusCode::kNotFound);

  auto latest = index_->GetTool("acme", std::nullopt);
  ASSERT_TRUE(latest.ok() && latest->has_value());
  EXPECT_EQ((*latest)->version, "1.0") << "the latest version still registered";
  auto removed = index_->GetTool("acme", std::string("2.0"));
  ASSERT_TRUE(removed.ok() && removed->has_value());
  ASSERT_TRUE((*removed)->removed_at.has_value());
  EXPECT_EQ(*(*removed)->removed_at, clock_.Now());

  EXPECT_EQ(index_->ListTools(false)->size(), 1u);
  EXPECT_EQ(index_->ListTools(true)->size(), 2u);
  auto audit = index_->ListAudit(10, 0);
  ASSERT_TRUE(audit.ok());
  std::vector<std::string> actions;
  for (const AuditEvent& e : *audit) actions.push_back(e.action);
  EXPECT_EQ(std::count(actions.begin(), actions.end(), "tool_remove"), 1);
  EXPECT_EQ(std::count(actions.begin(), actions.end(), "tool_remove_again"), 0);

  // The same manifest again restores the version; another one under its number is refused.
  EXPECT_EQ(
      index_->AddToolVersion(Tool("acme", "2.0", "h9", clock_.Now()), Audit("x")).status().code(),
      StatusCode::kAlreadyExists);
  auto restored = index_->AddToolVersion(Tool("acme", "2.0", "h2", clock_.Now()), Audit("r"));
  ASSERT_TRUE(restored.ok());
  EXPECT_EQ(*restored, PutOutcome::kInserted);
  EXPECT_EQ((*index_->GetTool("acme", std::nullopt))->version, "2.0");
}

TEST_F(SqliteIndexTest, ToolRegistrySurvivesReopening) {
  ASSERT_TRUE(
      index_->AddToolVersion(Tool("acme", "1.0", "h1", clock_.Now()), Audit("tool_add")).ok());
  Reopen();
  auto tool = index_->GetTool("acme", std::nullopt);
  ASSERT_TRUE(tool.ok() && tool->has_value());
  EXPECT_EQ((*tool)->manifest_hash, "h1");
}

TEST(JobStateTest, NamesRoundTrip) {
  struct Case {
    JobState state;
    const char* name;
    bool terminal;
  };
  for (const Case& c : std::vector<Case>{
           {JobState::kQueued, "queued", false},
           {JobState::kSending, "sending", false},
           {JobState::kAwaitingResults, "awaiting_results", false},
           {JobState::kDelivering, "delivering", false},
           {JobState::kDone, "done", true},
           {JobState::kFailed, "failed", true},
           {JobState::kDeadLetter, "dead_letter", true},
       }) {
    EXPECT_STREQ(JobStateName(c.state), c.name);
    EXPECT_EQ(ParseJobState(c.name), c.state);
    EXPECT_EQ(IsTerminal(c.state), c.terminal) << c.name;
  }
  EXPECT_FALSE(ParseJobState("bogus").has_value());
}

TEST_F(SqliteIndexTest, InstanceAttributesRoundTripAndAreReplacedOnResend) {
  InstanceRecord r = Instance("1.2.3", "1.2.3.1", "1.2.3.1.1", 1, 1);
  r.attributes = {{"PatientName", "DOE^JANE"}, {"StudyTime", "101500"}, {"Odd", "a\\b\"c"}};
  ASSERT_TRUE(index_->PutInstance(r, Audit("receive")).ok());
  auto found = index_->FindInstance(r.sop_instance_uid);
  ASSERT_TRUE(found.ok() && found->has_value());
  ExpectSameInstance(**found, r);

  r.attributes = {{"PatientName", "ROE^RICHARD"}};
  ASSERT_TRUE(index_->PutInstance(r, Audit("receive")).ok());
  found = index_->FindInstance(r.sop_instance_uid);
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->attributes, r.attributes);
}

// Every row of a scan, with the attributes of its representative instance.
struct ScannedEntity {
  EntityRow row;
  std::map<std::string, std::string> attributes;
};

std::vector<ScannedEntity> Scan(Index& index, const EntityFilter& filter, size_t stop_after = 0) {
  std::vector<ScannedEntity> out;
  Status st = index.ScanEntities(filter, [&](const EntityRow& row, const auto& load) {
    auto attributes = load();
    EXPECT_TRUE(attributes.ok()) << attributes.status().ToString();
    out.push_back({row, attributes.ok() ? *attributes : std::map<std::string, std::string>{}});
    return stop_after == 0 || out.size() < stop_after;
  });
  EXPECT_TRUE(st.ok()) << st.ToString();
  return out;
}

TEST_F(SqliteIndexTest, ScanEntitiesCountsAndOrdersStudiesSeriesAndInstances) {
  auto put = [&](const std::string& study, const std::string& series, const std::string& sop,
                 int sn, int in, const std::string& modality) {
    InstanceRecord r = Instance(study, series, sop, sn, in, modality);
    r.attributes = {{"SOPInstanceUID", sop}, {"Modality", modality}};
    ASSERT_TRUE(index_->PutInstance(r, Audit("r")).ok());
    clock_.Advance(seconds(1));
  };
  put("A", "A.2", "a21", 2, 1, "PR");
  put("A", "A.1", "a12", 1, 2, "CT");
  put("B", "B.1", "b11", 1, 1, "MR");
  put("A", "A.1", "a11", 1, 1, "CT");  // A is now the newest study

  auto studies = Scan(*index_, {EntityLevel::kStudy, {}, {}, {}});
  ASSERT_EQ(studies.size(), 2u);
  EXPECT_EQ(studies[0].row.study_uid, StudyUid("A"));
  EXPECT_EQ(studies[0].row.series_count, 2);
  EXPECT_EQ(studies[0].row.instance_count, 3);
  EXPECT_EQ(studies[0].row.modalities, "CT,PR");
  EXPECT_EQ(studies[0].row.sop_instance_uid, SopInstanceUid("a11")) << "received last";
  EXPECT_EQ(studies[0].attributes.at("SOPInstanceUID"), "a11");
  EXPECT_EQ(studies[1].row.study_uid, StudyUid("B"));
  EXPECT_EQ(studies[1].row.instance_count, 1);

  auto only_b = Scan(*index_, {EntityLevel::kStudy, {StudyUid("B"), StudyUid("Z")}, {}, {}});
  ASSERT_EQ(only_b.size(), 1u);
  EXPECT_EQ(only_b[0].row.study_uid, StudyUid("B"));

  auto series_of_a = Scan(*index_, {EntityLevel::kSeries, {StudyUid("A")}, {}, {}});
  ASSERT_EQ(series_of_a.size(), 2u);
  EXPECT_EQ(series_of_a[0].row.series_uid, SeriesUid("A.1")) << "series number order";
  EXPECT_EQ(series_of_a[0].row.instance_count, 2);
  EXPECT_EQ(series_of_a[1].row.series_uid, SeriesUid("A.2"));

  auto all_series = Scan(*index_, {EntityLevel::kSeries, {}, {}, {}});
  ASSERT_EQ(all_series.size(), 3u);
  EXPECT_EQ(all_series[0].row.series_uid, SeriesUid("A.1")) << "newest first";

  auto instances_of_a = Scan(*index_, {EntityLevel::kInstance, {StudyUid("A")}, {}, {}});
  ASSERT_EQ(instances_of_a.size(), 3u);
  EXPECT_EQ(instances_of_a[0].row.sop_instance_uid, SopInstanceUid("a11"));
  EXPECT_EQ(instances_of_a[1].row.sop_instance_uid, SopInstanceUid("a12"));
  EXPECT_EQ(instances_of_a[2].row.sop_instance_uid, SopInstanceUid("a21"));
  EXPECT_EQ(instances_of_a[2].attributes.at("Modality"), "PR");

  auto one =
      Scan(*index_, {EntityLevel::kInstance, {}, {SeriesUid("A.1")}, {SopInstanceUid("a12")}});
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].row.sop_instance_uid, SopInstanceUid("a12"));

  auto first_two = Scan(*index_, {EntityLevel::kInstance, {}, {}, {}}, 2);
  ASSERT_EQ(first_two.size(), 2u) << "the visitor stops the scan";
  EXPECT_EQ(first_two[0].row.sop_instance_uid, SopInstanceUid("a11"));
  EXPECT_EQ(first_two[1].row.sop_instance_uid, SopInstanceUid("b11"));
}

// --- findings (extracted from validated results by the results intake) ---

FindingRecord Finding(const std::string& kind, const std::string& result, TimePoint at) {
  FindingRecord f;
  f.tool = "tool-a";
  f.result_sop_uid = SopInstanceUid(result);
  f.kind = kind;
  f.concept_scheme = "DCM";
  f.concept_value = "121071";
  f.concept_meaning = "Finding";
  f.recorded_at = at;
  return f;
}

TEST_F(SqliteIndexTest, FindingsRoundTripInOrderAndSurviveReopen) {
  JobId id = MustCreate(Job("S1", "route", 0));
  FindingRecord coded = Finding("finding", "r.1", clock_.Now());
  coded.value_scheme = "SCT";
  coded.value_code = "27925004";
  coded.value_meaning = "Nodule";
  coded.tracking_id = "lesion 1";
  coded.referenced_sop_uid = "i.1";
  FindingRecord measured = Finding("measurement", "r.1", clock_.Now());
  measured.concept_scheme = "SCT";
  measured.concept_value = "103339001";
  measured.concept_meaning = "Long Axis";
  measured.numeric_value = 12.5;
  measured.units = "mm";
  FindingRecord score = Finding("score", "r.1", clock_.Now());
  score.numeric_value = 0.0;  // a zero score is a value, not an absent one
  score.units = "1";
  ASSERT_TRUE(index_->PutFindings(id, SopInstanceUid("r.1"), {coded, measured, score}).ok());
  clock_.Advance(seconds(1));
  ASSERT_TRUE(
      index_->PutFindings(id, SopInstanceUid("r.2"), {Finding("flag", "r.2", clock_.Now())}).ok());

  for (int pass = 0; pass < 2; ++pass) {
    SCOPED_TRACE(pass == 0 ? "as written" : "after reopen");
    auto list = index_->ListFindings(id);
    ASSERT_TRUE(list.ok()) << list.status().ToString();
    ASSERT_EQ(list->size(), 4u);
    const FindingRecord& a = (*list)[0];
    EXPECT_EQ(a.job_id, id);
    EXPECT_EQ(a.tool, "tool-a");
    EXPECT_EQ(a.result_sop_uid, SopInstanceUid("r.1"));
    EXPECT_EQ(a.kind, "finding");
    EXPECT_EQ(a.concept_value, "121071");
    EXPECT_EQ(a.value_scheme, "SCT");
    EXPECT_EQ(a.value_code, "27925004");
    EXPECT_EQ(a.value_meaning, "Nodule");
    EXPECT_FALSE(a.numeric_value.has_value());
    EXPECT_EQ(a.tracking_id, "lesion 1");
    EXPECT_EQ(a.referenced_sop_uid, "i.1");
    EXPECT_EQ(a.recorded_at, clock_.Now() - seconds(1));
    EXPECT_EQ((*list)[1].kind, "measurement");
    EXPECT_EQ((*list)[1].numeric_value, std::optional<double>(12.5));
    EXPECT_EQ((*list)[1].units, "mm");
    EXPECT_EQ((*list)[2].numeric_value, std::optional<double>(0.0));
    EXPECT_EQ((*list)[3].kind, "flag");
    EXPECT_EQ((*list)[3].result_sop_uid, SopInstanceUid("r.2"));
    EXPECT_EQ((*list)[3].recorded_at, clock_.Now());
    Reopen();
  }
}

TEST_F(SqliteIndexTest, FindingsGivenAgainReplaceOnlyThoseOfTheSameResult) {
  JobId id = MustCreate(Job("S1", "route", 0));
  const TimePoint at = clock_.Now();
  ASSERT_TRUE(index_
                  ->PutFindings(id, SopInstanceUid("r.1"),
                                {Finding("finding", "r.1", at), Finding("measurement", "r.1", at)})
                  .ok());
  ASSERT_TRUE(index_->PutFindings(id, SopInstanceUid("r.2"), {Finding("flag", "r.2", at)}).ok());
  ASSERT_TRUE(index_->PutFindings(id, SopInstanceUid("r.1"), {Finding("score", "r.1", at)}).ok());

  auto list = index_->ListFindings(id);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].kind, "flag") << "r.2's findings untouched";
  EXPECT_EQ((*list)[1].kind, "score") << "r.1's earlier two replaced by one";

  ASSERT_TRUE(index_->PutFindings(id, SopInstanceUid("r.1"), {}).ok());
  list = index_->ListFindings(id);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u) << "none given: the result's findings are removed";
  EXPECT_EQ((*list)[0].result_sop_uid, SopInstanceUid("r.2"));
}

TEST_F(SqliteIndexTest, FindingsAreListedPerJob) {
  JobId a = MustCreate(Job("S1", "route", 0));
  JobId b = MustCreate(Job("S2", "route", 0));
  const TimePoint at = clock_.Now();
  ASSERT_TRUE(index_->PutFindings(a, SopInstanceUid("r.1"), {Finding("finding", "r.1", at)}).ok());
  ASSERT_TRUE(index_
                  ->PutFindings(b, SopInstanceUid("r.1"),
                                {Finding("finding", "r.1", at), Finding("score", "r.1", at)})
                  .ok());
  auto of_a = index_->ListFindings(a);
  auto of_b = index_->ListFindings(b);
  auto of_none = index_->ListFindings(JobId{999});
  ASSERT_TRUE(of_a.ok() && of_b.ok() && of_none.ok());
  EXPECT_EQ(of_a->size(), 1u);
  EXPECT_EQ(of_b->size(), 2u) << "the same result UID under another job is another row";
  EXPECT_TRUE(of_none->empty());
}

TEST_F(SqliteIndexTest, DeferJobMovesOnlyTheNextAttemptAndWritesNoAudit) {
  JobRecord job = Job("S1", "ct", 0);
  job.attempts = 2;
  const JobId id = MustCreate(job);
  const size_t audit_before = index_->ListAudit(1000, 0)->size();
  const TimePoint later = clock_.Now() + std::chrono::seconds(60);
  ASSERT_TRUE(index_->DeferJob(id, later).ok());
  auto stored = index_->GetJob(id);
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ((*stored)->next_attempt_at, later);
  EXPECT_EQ((*stored)->attempts, 2);
  EXPECT_EQ((*stored)->state, JobState::kQueued);
  EXPECT_EQ(index_->ListAudit(1000, 0)->size(), audit_before);
  EXPECT_TRUE(index_->DueJobs(clock_.Now(), 10)->empty()) << "not due before the new time";
  EXPECT_EQ(index_->DeferJob(JobId{id.value + 100}, later).code(), StatusCode::kNotFound);
}

TEST_F(SqliteIndexTest, QuarantinedResultsAreListedPerJobInOrderAndSurviveReopening) {
  JobId a = MustCreate(Job("S1", "route", 0));
  JobId b = MustCreate(Job("S2", "route", 0));
  const size_t audit_before = index_->ListAudit(1000, 0)->size();
  ASSERT_TRUE(
      index_
          ->PutQuarantined({a, SopInstanceUid("seg.1"), "not a valid AI result", clock_.Now()},
                           Audit("quarantine", a))
          .ok());
  clock_.Advance(seconds(1));
  ASSERT_TRUE(index_
                  ->PutQuarantined({a, SopInstanceUid(""), "unreadable", clock_.Now()},
                                   Audit("quarantine", a))
                  .ok());
  ASSERT_TRUE(index_
                  ->PutQuarantined({b, SopInstanceUid("x.1"), "other", clock_.Now()},
                                   Audit("quarantine", b))
                  .ok());
  EXPECT_EQ(index_->ListAudit(1000, 0)->size(), audit_before + 3) << "each with its audit event";
  EXPECT_EQ(index_
                ->PutQuarantined({JobId{999}, SopInstanceUid("y"), "r", clock_.Now()},
                                 Audit("quarantine"))
                .code(),
            StatusCode::kNotFound);

  Reopen();
  auto of_a = index_->ListQuarantined(a);
  ASSERT_TRUE(of_a.ok()) << of_a.status().ToString();
  ASSERT_EQ(of_a->size(), 2u);
  EXPECT_EQ((*of_a)[0].sop_instance_uid, SopInstanceUid("seg.1"));
  EXPECT_EQ((*of_a)[0].reason, "not a valid AI result");
  EXPECT_TRUE((*of_a)[1].sop_instance_uid.str().empty());
  EXPECT_EQ((*of_a)[1].quarantined_at, clock_.Now());
  EXPECT_EQ(index_->ListQuarantined(b)->size(), 1u);
  EXPECT_TRUE(index_->ListQuarantined(JobId{999})->empty());
}

TEST_F(SqliteIndexTest, WithholdingAResultDetachesItAndItsFindingsAndFreesItsFileOnlyIfUnshared) {
  JobId a = MustCreate(Job("S1", "route", 0));
  JobId b = MustCreate(Job("S2", "route", 0));
  auto result = [&](JobId job, const std::string& sop, const std::string& key) {
    return ResultRecord{
        job, SopInstanceUid(sop), SopClassUid("1.2.840.10008.5.1.4.1.1.88.22"), SeriesUid("r"), key,
        10,  clock_.Now()};
  };
  ASSERT_TRUE(index_->PutResult(result(a, "sr.1", "k-sr"), Audit("result", a)).ok());
  ASSERT_TRUE(index_->PutResult(result(a, "sr.2", "k-shared"), Audit("result", a)).ok());
  ASSERT_TRUE(index_->PutResult(result(b, "sr.2", "k-shared"), Audit("result", b)).ok());
  ASSERT_TRUE(
      index_->PutFindings(a, SopInstanceUid("sr.1"), {Finding("finding", "sr.1", clock_.Now())})
          .ok());

  auto freed = index_->WithholdResult({a, SopInstanceUid("sr.1"), "references", clock_.Now()},
                                      Audit("quarantine", a));
  ASSERT_TRUE(freed.ok()) << freed.status().ToString();
  EXPECT_EQ(*freed, std::optional<std::string>("k-sr"));
  freed = index_->WithholdResult({a, SopInstanceUid("sr.2"), "references", clock_.Now()},
                                 Audit("quarantine", a));
  ASSERT_TRUE(freed.ok());
  EXPECT_FALSE(freed->has_value()) << "job b's result still names the file";

  EXPECT_TRUE(index_->ListResults(a)->empty());
  EXPECT_EQ(index_->ListResults(b)->size(), 1u);
  EXPECT_TRUE(index_->ListFindings(a)->empty());
  auto quarantined = index_->ListQuarantined(a);
  ASSERT_TRUE(quarantined.ok());
  ASSERT_EQ(quarantined->size(), 2u);
  EXPECT_EQ((*quarantined)[0].sop_instance_uid, SopInstanceUid("sr.1"));

  EXPECT_EQ(index_
                ->WithholdResult({a, SopInstanceUid("sr.1"), "again", clock_.Now()},
                                 Audit("quarantine", a))
                .status()
                .code(),
            StatusCode::kNotFound);
  EXPECT_EQ(index_->ListQuarantined(a)->size(), 2u) << "a failed withholding records nothing";
}

}  // namespace
}  // namespace conduit
