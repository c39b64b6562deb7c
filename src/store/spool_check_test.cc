#include "store/spool_check.h"

#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <set>

#include "store/received_instance.h"
#include "store/sqlite_index.h"
#include "testing/testing.h"

namespace conduit {
namespace {

namespace fs = std::filesystem;

const StudyUid kStudy("1.2.826.0.1.3680043.10.2.1");

class SpoolCheckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto spool = Spool::Open({tmp_.path() / "spool", 0});
    ASSERT_TRUE(spool.ok()) << spool.status().ToString();
    spool_ = std::move(spool).value();
    auto index = OpenSqliteIndex(tmp_.path() / "index.sqlite");
    ASSERT_TRUE(index.ok()) << index.status().ToString();
    index_ = std::move(index).value();
  }

  fs::path Incoming(size_t bytes) {
    const fs::path file = spool_->NewIncomingPath();
    std::ofstream(file, std::ios::binary) << std::string(bytes, 'x');
    return file;
  }

  static InstanceMeta Meta(int n) {
    InstanceMeta meta;
    meta.study_uid = kStudy;
    meta.series_uid = SeriesUid(kStudy.str() + ".1");
    meta.sop_instance_uid = SopInstanceUid(kStudy.str() + ".1." + std::to_string(n));
    meta.sop_class_uid = SopClassUid(testing::kCtImageStorage);
    meta.transfer_syntax_uid = "1.2.840.10008.1.2.1";
    meta.modality = "CT";
    return meta;
  }

  // Stored as a front end stores it: spool, then index. Returns the key.
  std::string Store(int n, size_t bytes = 100) {
    Receipt receipt;
    receipt.calling_ae = AeTitle("MODALITY");
    receipt.actor = "MODALITY";
    auto stored = StoreReceivedInstance(*spool_, *index_, Incoming(bytes), Meta(n), receipt);
    EXPECT_TRUE(stored.ok()) << stored.status().ToString();
    return stored.ok() ? stored->spool_key : "";
  }

  // In the spool only, as a power failure before the index commit leaves it.
  std::string CommitOnly(int n, size_t bytes = 100) {
    auto key = spool_->Commit(Incoming(bytes), Meta(n).sop_instance_uid);
    EXPECT_TRUE(key.ok()) << key.status().ToString();
    return key.ok() ? *key : "";
  }

  SpoolCheckReport Check(bool remove = false, size_t max_listed = 100) {
    auto report = CheckSpool(*spool_, *index_, {remove, max_listed});
    EXPECT_TRUE(report.ok()) << report.status().ToString();
    return report.ok() ? *report : SpoolCheckReport{};
  }

  testing::TempDir tmp_;
  std::unique_ptr<Spool> spool_;
  std::unique_ptr<Index> index_;
};

TEST_F(SpoolCheckTest, EmptyStoreIsConsistent) {
  const SpoolCheckReport r = Check();
  EXPECT_EQ(r.files, 0);
  EXPECT_EQ(r.records, 0);
  EXPECT_TRUE(r.consistent());
  EXPECT_TRUE(r.problems.empty());
}

TEST_F(SpoolCheckTest, EveryStoredInstanceIsFoundWhole) {
  for (int i = 0; i < 20; ++i) Store(i, 100 + i);
  const SpoolCheckReport r = Check();
  EXPECT_EQ(r.files, 20);
  EXPECT_EQ(r.records, 20);
  EXPECT_TRUE(r.consistent());
  EXPECT_TRUE(r.problems.empty());
}

TEST_F(SpoolCheckTest, FileNoRowNamesIsReportedAndKeptUnlessRemovalAsked) {
  Store(1);
  const std::string orphan = CommitOnly(2, 300);
  SpoolCheckReport r = Check();
  EXPECT_EQ(r.unrecorded, 1);
  EXPECT_EQ(r.unrecorded_bytes, 300u);
  EXPECT_EQ(r.removed, 0);
  EXPECT_FALSE(r.consistent());
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_EQ(r.problems[0].kind, SpoolProblem::Kind::kUnrecorded);
  EXPECT_EQ(r.problems[0].key, orphan);
  EXPECT_FALSE(r.problems[0].removed);
  EXPECT_TRUE(fs::exists(spool_->PathOf(orphan)));

  r = Check(/*remove=*/true);
  EXPECT_EQ(r.unrecorded, 1);
  EXPECT_EQ(r.removed, 1);
  EXPECT_TRUE(r.consistent());
  EXPECT_TRUE(r.problems.at(0).removed);
  EXPECT_FALSE(fs::exists(spool_->PathOf(orphan)));

  r = Check();
  EXPECT_EQ(r.files, 1);
  EXPECT_EQ(r.unrecorded, 0);
  EXPECT_TRUE(r.consistent());
}

TEST_F(SpoolCheckTest, RowWhoseFileIsGoneIsMissingAndNamesItsStudyByReference) {
  Store(1);
  const std::string gone = Store(2);
  fs::remove(spool_->PathOf(gone));
  const SpoolCheckReport r = Check(/*remove=*/true);
  EXPECT_EQ(r.missing, 1);
  EXPECT_FALSE(r.consistent());
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_EQ(r.problems[0].kind, SpoolProblem::Kind::kMissing);
  EXPECT_EQ(r.problems[0].key, gone);
  EXPECT_EQ(r.problems[0].study_ref, StudyRef(kStudy));
  EXPECT_EQ(r.problems[0].recorded_bytes, 100u);
}

TEST_F(SpoolCheckTest, FileOfAnotherSizeThanRecordedIsReported) {
  const std::string key = Store(1, 100);
  std::ofstream(spool_->PathOf(key), std::ios::binary | std::ios::app) << "more";
  const SpoolCheckReport r = Check(/*remove=*/true);
  EXPECT_EQ(r.size_differs, 1);
  EXPECT_EQ(r.removed, 0);
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_EQ(r.problems[0].kind, SpoolProblem::Kind::kSizeDiffers);
  EXPECT_EQ(r.problems[0].recorded_bytes, 100u);
  EXPECT_EQ(r.problems[0].file_bytes, 104u);
  EXPECT_TRUE(fs::exists(spool_->PathOf(key)));
}

TEST_F(SpoolCheckTest, StrayEntriesAreReportedNeverRemoved) {
  const std::string key = Store(1);
  const fs::path stray = spool_->PathOf(key).parent_path() / "notes.txt";
  std::ofstream(stray) << "left by hand";
  const SpoolCheckReport r = Check(/*remove=*/true);
  EXPECT_EQ(r.strays, 1);
  EXPECT_FALSE(r.consistent());
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_EQ(r.problems[0].kind, SpoolProblem::Kind::kStray);
  EXPECT_EQ(r.problems[0].path, stray);
  EXPECT_TRUE(fs::exists(stray));
}

TEST_F(SpoolCheckTest, ResultsCountAsRecordsAndOneFileMayServeSeveral) {
  JobRecord job;
  job.study_uid = kStudy;
  job.route = "ct";
  job.tool = "reference";
  AuditEvent audit;
  audit.action = "test";
  auto first = index_->CreateJob(job, audit);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  job.generation = 1;
  auto second = index_->CreateJob(job, audit);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  // The same result object returned to two jobs: one file, the later bytes, two rows.
  const std::string key = CommitOnly(900, 50);
  for (auto [id, size] : {std::pair{*first, uint64_t{40}}, std::pair{*second, uint64_t{50}}}) {
    ResultRecord result;
    result.job_id = id;
    result.sop_instance_uid = Meta(900).sop_instance_uid;
    result.sop_class_uid = SopClassUid(testing::kCtImageStorage);
    result.series_uid = SeriesUid("1.2.3.9");
    result.spool_key = key;
    result.size_bytes = size;
    ASSERT_TRUE(index_->PutResult(result, audit).ok());
  }
  Store(1);
  const SpoolCheckReport r = Check(/*remove=*/true);
  EXPECT_EQ(r.files, 2);
  EXPECT_EQ(r.records, 3);
  EXPECT_TRUE(r.consistent()) << r.problems.size() << " problem(s)";
  EXPECT_TRUE(fs::exists(spool_->PathOf(key)));
}

TEST_F(SpoolCheckTest, WorkFoldersOfEndedJobsWhoseStudyIsGoneAreStale) {
  Store(1);  // kStudy has instances
  auto job = [&](const std::string& study, JobState state, int generation) {
    JobRecord j;
    j.study_uid = StudyUid(study);
    j.route = "ct";
    j.tool = "reference";
    j.generation = generation;
    j.state = state;
    AuditEvent audit;
    audit.action = "test";
    auto id = index_->CreateJob(j, audit);
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    const fs::path dir = spool_->JobDir(id->value).value();
    std::ofstream(dir / "output.dcm") << "x";
    std::ofstream(dir.parent_path() / (std::to_string(id->value) + ".log")) << "tool log";
    return id->value;
  };
  const int64_t kept = job(kStudy.str(), JobState::kFailed, 0);
  const int64_t stale = job("1.2.826.0.1.3680043.10.2.9", JobState::kDeadLetter, 0);
  const int64_t working = job("1.2.826.0.1.3680043.10.2.9", JobState::kSending, 1);
  const fs::path jobs = spool_->root() / "jobs";
  fs::create_directories(jobs / "999");  // no such job

  SpoolCheckReport r = Check();
  EXPECT_EQ(r.stale_work_folders, 2);
  EXPECT_EQ(r.work_folders_removed, 0);
  EXPECT_FALSE(r.consistent());
  std::set<fs::path> listed;
  for (const SpoolProblem& p : r.problems) {
    EXPECT_EQ(p.kind, SpoolProblem::Kind::kStaleWorkFolder);
    listed.insert(p.path);
  }
  EXPECT_EQ(listed, (std::set<fs::path>{jobs / std::to_string(stale), jobs / "999"}));

  r = Check(/*remove=*/true);
  EXPECT_EQ(r.work_folders_removed, 2);
  EXPECT_TRUE(r.consistent());
  EXPECT_FALSE(fs::exists(jobs / std::to_string(stale)));
  EXPECT_FALSE(fs::exists(jobs / "999"));
  EXPECT_TRUE(fs::exists(jobs / std::to_string(kept))) << "its study is still here";
  EXPECT_TRUE(fs::exists(jobs / std::to_string(working))) << "a job at work keeps its folder";
  EXPECT_TRUE(fs::exists(jobs / (std::to_string(stale) + ".log"))) << "logs are kept";
}

TEST_F(SpoolCheckTest, ListsOnlyTheFirstProblemsButCountsEvery) {
  for (int i = 0; i < 12; ++i) CommitOnly(i);
  const SpoolCheckReport r = Check(/*remove=*/false, /*max_listed=*/5);
  EXPECT_EQ(r.unrecorded, 12);
  EXPECT_EQ(r.problems.size(), 5u);
}

// Property: over many keys spread across the buckets, with files and rows removed at random,
// every count matches what was done, whichever buckets the keys fall in.
TEST_F(SpoolCheckTest, CountsMatchWhatWasDoneAcrossBuckets) {
  std::mt19937 rng(20261130);
  std::set<std::string> unrecorded;
  std::set<std::string> missing;
  int whole = 0;
  for (int i = 0; i < 600; ++i) {
    switch (rng() % 3) {
      case 0:
        unrecorded.insert(CommitOnly(i));
        break;
      case 1: {
        const std::string key = Store(i);
        missing.insert(key);
        fs::remove(spool_->PathOf(key));
        break;
      }
      default:
        Store(i);
        ++whole;
    }
  }
  SpoolCheckReport r = Check(/*remove=*/false, /*max_listed=*/10000);
  EXPECT_EQ(r.unrecorded, static_cast<int64_t>(unrecorded.size()));
  EXPECT_EQ(r.missing, static_cast<int64_t>(missing.size()));
  EXPECT_EQ(r.files, static_cast<int64_t>(unrecorded.size()) + whole);
  EXPECT_EQ(r.records, static_cast<int64_t>(missing.size()) + whole);
  std::set<std::string> listed;
  for (const SpoolProblem& p : r.problems) {
    if (p.kind == SpoolProblem::Kind::kUnrecorded) listed.insert(p.key);
  }
  EXPECT_EQ(listed, unrecorded);

  r = Check(/*remove=*/true, /*max_listed=*/10000);
  EXPECT_EQ(r.removed, static_cast<int64_t>(unrecorded.size()));
  r = Check();
  EXPECT_EQ(r.unrecorded, 0);
  EXPECT_EQ(r.missing, static_cast<int64_t>(missing.size()));
  EXPECT_EQ(r.files, whole);
}

}  // namespace
}  // namespace conduit
