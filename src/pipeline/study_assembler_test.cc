#include "pipeline/study_assembler.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>

#include "store/sqlite_index.h"
#include "testing/testing.h"

namespace conduit {
namespace {

using namespace std::chrono_literals;

RouteConfig MakeRoute(std::string name, RouteScope scope = RouteScope::kStudy,
                      LateInstancePolicy late = LateInstancePolicy::kIgnore) {
  RouteConfig r;
  r.name = std::move(name);
  r.tool = "reference";
  r.results_to = {"pacs"};
  r.stable_after = 60s;
  r.select = scope;
  r.on_late = late;
  return r;
}

class StudyAssemblerTest : public ::testing::Test {
 protected:
  StudyAssemblerTest() {
    config_.routes = {MakeRoute("chest"), MakeRoute("per-series", RouteScope::kSeries),
                      MakeRoute("rerun", RouteScope::kStudy, LateInstancePolicy::kRerun),
                      MakeRoute("evaluation")};
    config_.routes.back().results_to.clear();
    config_.routes.back().shadow = true;
    Reopen();
  }

  // A new index connection and assembler on the same database: what a restart sees.
  void Reopen() {
    assembler_.reset();
    index_.reset();
    auto index = OpenSqliteIndex(tmp_.path() / "index.db");
    ASSERT_TRUE(index.ok()) << index.status().ToString();
    index_ = std::move(index).value();
    assembler_ = std::make_unique<StudyAssembler>(*index_, clock_, config_,
                                                  [this](JobId id) { ready_.push_back(id); });
  }

  const RouteConfig& Route(const std::string& name) { return *config_.FindRoute(name); }

  // Records the instance in the index (as ingest does) and tells the assembler.
  void Receive(const std::string& route, const std::string& study, const std::string& series,
               const std::string& sop) {
    Status put = testing::PutTestInstance(*index_, study, series, sop, clock_.Now(), "key-" + sop);
    ASSERT_TRUE(put.ok()) << put.ToString();
    Status st = assembler_->Add(Route(route), StudyUid(study), SeriesUid(series));
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  std::vector<JobId> Tick() {
    auto jobs = assembler_->Tick();
    EXPECT_TRUE(jobs.ok()) << jobs.status().ToString();
    return jobs.ok() ? *jobs : std::vector<JobId>{};
  }

  std::vector<JobRecord> Jobs() {
    auto jobs = index_->ListJobs(std::nullopt, 100);
    EXPECT_TRUE(jobs.ok());
    return jobs.ok() ? *jobs : std::vector<JobRecord>{};
  }

  std::vector<AssemblyUnit> Units(const std::string& study) {
    auto units = index_->UnitsOfStudy(StudyUid(study));
    EXPECT_TRUE(units.ok());
    return units.ok() ? *units : std::vector<AssemblyUnit>{};
  }

  MppsRecord Mpps(const std::string& uid, const std::string& study, const std::string& status,
                  std::vector<std::string> sops) {
    MppsRecord m;
    m.mpps_sop_instance_uid = uid;
    m.study_uid = StudyUid(study);
    m.status = status;
    for (auto& s : sops) m.instances.emplace_back(s);
    return m;
  }

  testing::TempDir tmp_;
  FakeClock clock_;
  Config config_;
  std::unique_ptr<Index> index_;
  std::unique_ptr<StudyAssembler> assembler_;
  std::vector<JobId> ready_;
};

TEST_F(StudyAssemblerTest, LateInstanceRestartsTheQuietPeriod) {
  Receive("chest", "1.2.3", "1.2.3.9", "1.2.3.1");
  clock_.Advance(50s);
  Receive("chest", "1.2.3", "1.2.3.9", "1.2.3.2");
  clock_.Advance(50s);
  Tick();
  EXPECT_TRUE(ready_.empty()) << "last instance arrived 50 s ago; stable_after is 60 s";
  clock_.Advance(10s);
  auto created = Tick();
  ASSERT_EQ(created.size(), 1u);
  EXPECT_EQ(ready_, created);
}

TEST_F(StudyAssemblerTest, NextQuietPeriodEndIsTheEarliestOpenUnitsEnd) {
  Tick();  // loads the (empty) open units, as the gateway's ticker does first
  EXPECT_EQ(assembler_->NextQuietPeriodEnd(), std::nullopt) << "nothing open";
  const TimePoint first = clock_.Now();
  Receive("chest", "1.2.3", "1.2.3.1", "1.2.3.1.1");
  clock_.Advance(10s);
  Receive("per-series", "1.2.4", "1.2.4.1", "1.2.4.1.1");
  EXPECT_EQ(assembler_->NextQuietPeriodEnd(), first + 60s);
  clock_.Advance(20s);
  Receive("chest", "1.2.3", "1.2.3.1", "1.2.3.1.2");  // the chest unit's period restarts
  EXPECT_EQ(assembler_->NextQuietPeriodEnd(), first + 10s + 60s);
  clock_.Advance(40s);
  EXPECT_EQ(Tick().size(), 1u) << "the per-series unit, due exactly now";
  EXPECT_EQ(assembler_->NextQuietPeriodEnd(), first + 30s + 60s);
  clock_.Advance(20s);
  EXPECT_EQ(Tick().size(), 1u);
  EXPECT_EQ(assembler_->NextQuietPeriodEnd(), std::nullopt);
}

TEST_F(StudyAssemblerTest, AShadowRoutesJobIsMarkedShadowAndGoesNowhere) {
  Receive("evaluation", "1.2.4", "1.2.4.9", "1.2.4.1");
  clock_.Advance(60s);
  auto created = Tick();
  ASSERT_EQ(created.size(), 1u);
  auto job = index_->GetJob(created[0]);
  ASSERT_TRUE(job.ok() && job->has_value());
  EXPECT_TRUE((*job)->shadow);
  EXPECT_TRUE((*job)->destinations.empty());
}

TEST_F(StudyAssemblerTest, QuietPeriodCreatesOneQueuedJobForTheStudy) {
  Receive("chest", "1.2.3", "1.2.3.9", "1.2.3.1");
  Receive("chest", "1.2.3", "1.2.3.8", "1.2.3.2");
  clock_.Advance(60s);
  auto created = Tick();
  ASSERT_EQ(created.size(), 1u);

  auto job = index_->GetJob(created[0]);
  ASSERT_TRUE(job.ok() && job->has_value());
  const JobRecord& j = **job;
  EXPECT_EQ(j.study_uid, StudyUid("1.2.3"));
  EXPECT_EQ(j.route, "chest");
  EXPECT_EQ(j.tool, "reference");
  EXPECT_EQ(j.destinations, std::vector<std::string>{"pacs"});
  EXPECT_FALSE(j.shadow);
  EXPECT_TRUE(j.series.empty()) << "a study-scoped route sends the whole study";
  EXPECT_EQ(j.generation, 0);
  EXPECT_EQ(j.state, JobState::kQueued);
  EXPECT_LE(j.next_attempt_at, clock_.Now());

  auto units = Units("1.2.3");
  ASSERT_EQ(units.size(), 1u);
  EXPECT_EQ(units[0].state, UnitState::kComplete);

  auto audit = index_->ListAudit(10, 0);
  ASSERT_TRUE(audit.ok());
  bool assembled = false;
  for (const auto& e : *audit) {
    if (e.action == "assemble") {
      assembled = true;
      EXPECT_EQ(e.study_ref, StudyRef(StudyUid("1.2.3")));
      EXPECT_EQ(e.detail.find("1.2.3\""), std::string::npos) << "no UIDs in audit detail";
    }
  }
  EXPECT_TRUE(assembled);

  clock_.Advance(600s);
  EXPECT_TRUE(Tick().empty()) << "a complete unit makes no second job";
}

TEST_F(StudyAssemblerTest, SeriesScopeMakesOneUnitAndJobPerSeries) {
  Receive("per-series", "1.2.3", "1.2.3.10", "1.2.3.10.1");
  Receive("per-series", "1.2.3", "1.2.3.10", "1.2.3.10.2");
  Receive("per-series", "1.2.3", "1.2.3.20", "1.2.3.20.1");
  EXPECT_EQ(Units("1.2.3").size(), 2u);
  clock_.Advance(60s);
  auto created = Tick();
  ASSERT_EQ(created.size(), 2u);
  std::set<SeriesUid> series;
  for (JobId id : created) {
    auto job = index_->GetJob(id);
    ASSERT_TRUE(job.ok() && job->has_value());
    ASSERT_EQ((*job)->series.size(), 1u);
    series.insert((*job)->series[0]);
  }
  EXPECT_EQ(series, (std::set<SeriesUid>{SeriesUid("1.2.3.10"), SeriesUid("1.2.3.20")}))
      << "each series unit needs its own job: the index's job key must include the series";
}

TEST_F(StudyAssemblerTest, SeriesUnitsCompleteIndependently) {
  Receive("per-series", "1.2.3", "1.2.3.10", "1.2.3.10.1");
  clock_.Advance(40s);
  Receive("per-series", "1.2.3", "1.2.3.20", "1.2.3.20.1");
  clock_.Advance(20s);
  EXPECT_EQ(Tick().size(), 1u) << "series 10 is quiet for 60 s, series 20 only for 20 s";
  clock_.Advance(40s);
  EXPECT_EQ(Tick().size(), 1u);
}

TEST_F(StudyAssemblerTest, LateInstanceIsIgnoredWhenTheRouteSaysIgnore) {
  Receive("chest", "1.2.3", "1.2.3.9", "1.2.3.1");
  clock_.Advance(60s);
  ASSERT_EQ(Tick().size(), 1u);
  Receive("chest", "1.2.3", "1.2.3.9", "1.2.3.2");
  clock_.Advance(120s);
  EXPECT_TRUE(Tick().empty());
  EXPECT_EQ(Jobs().size(), 1u);
  auto units = Units("1.2.3");
  ASSERT_EQ(units.size(), 1u);
  EXPECT_EQ(units[0].state, UnitState::kComplete);
  EXPECT_EQ(units[0].generation, 0);
}

TEST_F(StudyAssemblerTest, LateInstanceReopensAsGenerationOneWhenTheRouteSaysRerun) {
  Receive("rerun", "1.2.3", "1.2.3.9", "1.2.3.1");
  clock_.Advance(60s);
  ASSERT_EQ(Tick().size(), 1u);
  Receive("rerun", "1.2.3", "1.2.3.9", "1.2.3.2");
  auto units = Units("1.2.3");
  ASSERT_EQ(units.size(), 1u);
  EXPECT_EQ(units[0].state, UnitState::kOpen);
  EXPECT_EQ(units[0].generation, 1);
  clock_.Advance(30s);
  EXPECT_TRUE(Tick().empty()) << "the re-opened unit has its own quiet period";
  clock_.Advance(30s);
  auto created = Tick();
  ASSERT_EQ(created.size(), 1u);
  auto job = index_->GetJob(created[0]);
  ASSERT_TRUE(job.ok() && job->has_value());
  EXPECT_EQ((*job)->generation, 1);
  EXPECT_EQ(Jobs().size(), 2u);
}

TEST_F(StudyAssemblerTest, OpenUnitsSurviveARestartAndCompleteOnTick) {
  Receive("chest", "1.2.3", "1.2.3.9", "1.2.3.1");
  Receive("per-series", "1.2.3", "1.2.3.9", "1.2.3.1");
  clock_.Advance(30s);
  Reopen();
  EXPECT_TRUE(Tick().empty());
  clock_.Advance(30s);
  EXPECT_EQ(Tick().size(), 2u);
  EXPECT_EQ(ready_.size(), 2u);
}

TEST_F(StudyAssemblerTest, ARestartKeepsTheQuietPeriodFromTheLastInstanceReceived) {
  Receive("chest", "1.2.3", "1.2.3.9", "1.2.3.1");
  Receive("per-series", "1.2.3", "1.2.3.9", "1.2.3.1");
  clock_.Advance(50s);
  Receive("chest", "1.2.3", "1.2.3.9", "1.2.3.2");
  Receive("per-series", "1.2.3", "1.2.3.9", "1.2.3.2");
  Reopen();
  clock_.Advance(20s);
  EXPECT_TRUE(Tick().empty()) << "the last instance arrived 20 s ago; stable_after is 60 s";
  clock_.Advance(40s);
  EXPECT_EQ(Tick().size(), 2u);
}

TEST_F(StudyAssemblerTest, UnitOfARemovedRouteCompletesWithoutAJob) {
  Receive("chest", "1.2.3", "1.2.3.9", "1.2.3.1");
  config_.routes.erase(config_.routes.begin());  // "chest" is gone from the config
  clock_.Advance(1s);
  EXPECT_TRUE(Tick().empty());
  EXPECT_TRUE(Jobs().empty());
  auto units = Units("1.2.3");
  ASSERT_EQ(units.size(), 1u);
  EXPECT_EQ(units[0].state, UnitState::kComplete);
}

TEST_F(StudyAssemblerTest, MppsCompletedWithAllInstancesCompletesAtOnce) {
  ASSERT_TRUE(assembler_->OnMpps(Mpps("9.9.1", "1.2.3", "IN PROGRESS", {})).ok());
  Receive("chest", "1.2.3", "1.2.3.9", "1.2.3.1");
  Receive("per-series", "1.2.3", "1.2.3.9", "1.2.3.1");
  Receive("chest", "1.2.3", "1.2.3.9", "1.2.3.2");
  Receive("per-series", "1.2.3", "1.2.3.9", "1.2.3.2");
  EXPECT_TRUE(ready_.empty());
  // The N-SET carries no study UID: the link comes from the N-CREATE.
  Status st = assembler_->OnMpps(Mpps("9.9.1", "", "COMPLETED", {"1.2.3.1", "1.2.3.2"}));
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(ready_.size(), 2u) << "both routes' units complete without waiting 60 s";
  for (const auto& unit : Units("1.2.3")) EXPECT_EQ(unit.state, UnitState::kComplete);
  clock_.Advance(60s);
  EXPECT_TRUE(Tick().empty());
  EXPECT_EQ(Jobs().size(), 2u);
}

TEST_F(StudyAssemblerTest, MppsCompletedWaitsForAMissingInstance) {
  Receive("chest", "1.2.3", "1.2.3.9", "1.2.3.1");
  ASSERT_TRUE(assembler_->OnMpps(Mpps("9.9.1", "1.2.3", "COMPLETED", {"1.2.3.1", "1.2.3.2"})).ok());
  EXPECT_TRUE(ready_.empty()) << "1.2.3.2 has not arrived";
  auto units = Units("1.2.3");
  ASSERT_EQ(units.size(), 1u);
  EXPECT_EQ(units[0].state, UnitState::kOpen);

  clock_.Advance(5s);
  Receive("chest", "1.2.3", "1.2.3.9", "1.2.3.2");
  EXPECT_EQ(ready_.size(), 1u) << "the last listed instance completes the study at once";
}

TEST_F(StudyAssemblerTest, MppsInProgressDoesNotComplete) {
  Receive("chest", "1.2.3", "1.2.3.9", "1.2.3.1");
  ASSERT_TRUE(assembler_->OnMpps(Mpps("9.9.1", "1.2.3", "IN PROGRESS", {"1.2.3.1"})).ok());
  ASSERT_TRUE(assembler_->OnMpps(Mpps("9.9.1", "", "DISCONTINUED", {})).ok());
  EXPECT_TRUE(ready_.empty());
}

TEST_F(StudyAssemblerTest, CompleteStudyCompletesEveryOpenUnitOfThatStudyOnly) {
  Receive("chest", "1.2.3", "1.2.3.9", "1.2.3.1");
  Receive("per-series", "1.2.3", "1.2.3.9", "1.2.3.1");
  Receive("chest", "4.5.6", "4.5.6.9", "4.5.6.1");
  auto jobs = assembler_->CompleteStudy(StudyUid("1.2.3"), "ris order completed");
  ASSERT_TRUE(jobs.ok()) << jobs.status().ToString();
  EXPECT_EQ(jobs->size(), 2u) << "both routes' units of 1.2.3, without waiting 60 s";
  EXPECT_EQ(ready_.size(), 2u);
  for (const auto& unit : Units("1.2.3")) EXPECT_EQ(unit.state, UnitState::kComplete);
  ASSERT_EQ(Units("4.5.6").size(), 1u);
  EXPECT_EQ(Units("4.5.6")[0].state, UnitState::kOpen) << "another study keeps waiting";
  auto again = assembler_->CompleteStudy(StudyUid("1.2.3"), "ris order completed");
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->empty()) << "nothing left open: an order sent twice makes no new job";
}

TEST_F(StudyAssemblerTest, CompletingAUnitTwiceMakesOneJob) {
  Receive("chest", "1.2.3", "1.2.3.9", "1.2.3.1");
  clock_.Advance(60s);
  auto first = Tick();
  ASSERT_EQ(first.size(), 1u);
  // A crash after the job was created but before the unit was marked complete.
  auto units = Units("1.2.3");
  ASSERT_EQ(units.size(), 1u);
  AssemblyUnit unit = units[0];
  unit.state = UnitState::kOpen;
  ASSERT_TRUE(index_->PutUnit(unit).ok());
  Reopen();
  auto second = Tick();
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0], first[0]);
  EXPECT_EQ(Jobs().size(), 1u);
}

}  // namespace
}  // namespace conduit
