#include "pipeline/prior_fetcher_impl.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "dicom/instance_meta.h"
#include "pipeline/prior_test_support.h"
#include "store/sqlite_index.h"
#include "testing/testing.h"

namespace conduit {
namespace {

namespace fs = std::filesystem;
using std::chrono::steady_clock;

constexpr char kPatient[] = "PRIORS-0001";
constexpr char kCurrent[] = "1.2.826.0.1.3680043.10.1137.900";

StudyMatch Study(const std::string& uid, const std::string& date,
                 std::vector<std::string> modalities = {"CT"}, std::string body_part = "CHEST",
                 std::string description = "CT CHEST", std::string patient = kPatient) {
  StudyMatch m;
  m.study_uid = StudyUid(uid);
  m.patient_id = std::move(patient);
  m.study_date = date;
  m.modalities = std::move(modalities);
  m.body_part = std::move(body_part);
  m.study_description = std::move(description);
  return m;
}

CurrentStudy Current() {
  return CurrentStudy{StudyUid(kCurrent), kPatient, "20240310", {"CT"}, {"CHEST"}};
}

PriorsConfig Priors(int count = 2) {
  PriorsConfig p;
  p.count = count;
  p.max_age = std::chrono::hours(24 * 365 * 5);
  return p;
}

std::vector<std::string> Uids(const std::vector<StudyMatch>& studies) {
  std::vector<std::string> out;
  for (const auto& s : studies) out.push_back(s.study_uid.str());
  return out;
}

TEST(RankPriorsTest, KeepsEarlierStudiesOfThePatientWithinTheAgeNewestFirst) {
  const std::vector<StudyMatch> candidates = {
      Study("1.1", "20210620"),     // prior, older
      Study(kCurrent, "20240310"),  // the current study itself
      Study("1.2", "20230105"),     // prior, newest
      Study("1.3", "20240401"),     // after the current study
      Study("1.4", "20150101"),     // older than 5 years
      Study("1.5", ""),             // undated
      Study("1.6", "20220101", {"CT"}, "CHEST", "CT CHEST", "OTHER-PATIENT"),
      Study("1.7", "20190315"),  // 1822 days before: within 5y (5 x 365 days)
  };
  EXPECT_EQ(Uids(RankPriors(Current(), candidates, Priors())),
            (std::vector<std::string>{"1.2", "1.1", "1.7"}));
}

TEST(RankPriorsTest, ComparabilityRules) {
  struct Case {
    const char* name;
    PriorsConfig priors;
    StudyMatch candidate;
    bool kept;
  };
  PriorsConfig body = Priors();
  body.same_body_part = true;
  PriorsConfig any_modality = Priors();
  any_modality.same_modality = false;
  PriorsConfig described = Priors();
  described.study_description = "*chest*";
  PriorsConfig any_age = Priors();
  any_age.max_age = std::chrono::milliseconds(0);
  const std::vector<Case> cases = {
      {"other modality", Priors(), Study("2.1", "20230101", {"MR"}), false},
      {"modality among several", Priors(), Study("2.2", "20230101", {"PT", "CT"}), true},
      {"modality unknown: checked once fetched", Priors(), Study("2.3", "20230101", {}), true},
      {"modality case-insensitive", Priors(), Study("2.4", "20230101", {"ct"}), true},
      {"any modality when asked", any_modality, Study("2.5", "20230101", {"MR"}), true},
      {"other body part when asked", body, Study("2.6", "20230101", {"CT"}, "HEAD"), false},
      {"same body part", body, Study("2.7", "20230101", {"CT"}, "chest"), true},
      {"body part unknown", body, Study("2.8", "20230101", {"CT"}, ""), true},
      {"other body part not asked", Priors(), Study("2.9", "20230101", {"CT"}, "HEAD"), true},
      {"description matches", described, Study("2.10", "20230101", {"CT"}, "CHEST", "CT Chest w/o"),
       true},
      {"description differs", described, Study("2.11", "20230101", {"CT"}, "CHEST", "CT HEAD"),
       false},
      {"same day is not after", Priors(), Study("2.12", "20240310"), true},
      {"any age", any_age, Study("2.13", "19990101"), true},
      {"invalid date", Priors(), Study("2.14", "20231341"), false},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(RankPriors(Current(), {c.candidate}, c.priors).size(), c.kept ? 1u : 0u) << c.name;
  }
}

TEST(RankPriorsTest, NothingWhenTheCurrentStudyIsUndated) {
  CurrentStudy current = Current();
  current.study_date = "";
  EXPECT_TRUE(RankPriors(current, {Study("1.1", "20200101")}, Priors()).empty());
}

TEST(ComparableTest, ChecksFetchedInstances) {
  PriorsConfig body = Priors();
  body.same_body_part = true;
  EXPECT_TRUE(Comparable(Current(), {"CT"}, {"CHEST"}, body));
  EXPECT_FALSE(Comparable(Current(), {"MR"}, {"CHEST"}, body));
  EXPECT_FALSE(Comparable(Current(), {"CT"}, {"HEAD"}, body));
  EXPECT_TRUE(Comparable(Current(), {"CT"}, {"HEAD"}, Priors()));
}

// A PACS whose answers the test sets: studies to find, files to send per study, failures.
class ScriptedSource final : public PriorSource {
 public:
  std::string Name() const override { return "scripted"; }
  Result<std::vector<StudyMatch>> Find(const std::string& patient_id, steady_clock::time_point,
                                       std::stop_token) override {
    ++finds;
    if (!find_error.ok()) return find_error;
    std::vector<StudyMatch> out;
    for (const auto& s : studies) {
      if (s.patient_id == patient_id) out.push_back(s);
    }
    return out;
  }
  Result<std::vector<fs::path>> Fetch(const StudyMatch& study, const fs::path& dir,
                                      steady_clock::time_point, std::stop_token) override {
    fetched.push_back(study.study_uid.str());
    if (failing.count(study.study_uid.str())) return Unavailable("scripted: PACS failed");
    fs::create_directories(dir);
    std::vector<fs::path> out;
    for (const fs::path& f : files[study.study_uid.str()]) {
      out.push_back(dir / f.filename());
      fs::copy_file(f, out.back());
    }
    return out;
  }

  std::vector<StudyMatch> studies;
  std::map<std::string, std::vector<fs::path>> files;
  std::set<std::string> failing;
  Status find_error;
  int finds = 0;
  std::vector<std::string> fetched;
};

class PriorFetcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto spool = Spool::Open(SpoolOptions{dir_.path() / "spool", 0});
    ASSERT_TRUE(spool.ok());
    spool_ = std::move(*spool);
    auto index = OpenSqliteIndex(dir_.path() / "index.sqlite");
    ASSERT_TRUE(index.ok());
    index_ = std::move(*index);
    const auto current =
        testing::WritePatientStudy(dir_.path() / "current", {kPatient, kCurrent, "20240310"}, 2);
    ASSERT_TRUE(testing::StoreReceived(*index_, *spool_, current, clock_.Now()).ok());
    AddPacsStudy("1.2.826.0.1.3680043.10.1137.901", "20230105", 2);
    AddPacsStudy("1.2.826.0.1.3680043.10.1137.902", "20210620", 3);
    AddPacsStudy("1.2.826.0.1.3680043.10.1137.903", "20190101", 1);
    auto source = std::make_unique<ScriptedSource>();
    source_ = source.get();
    source_->studies = pacs_studies_;
    source_->files = pacs_files_;
    fetcher_ =
        std::make_unique<PriorFetcherImpl>(std::move(source), *index_, *spool_, clock_, metrics_);
    job_.id = JobId{7};
    job_.study_uid = StudyUid(kCurrent);
    job_.tool = "reader";
    tool_.name = "reader";
    tool_.priors = Priors();
  }

  void AddPacsStudy(const std::string& uid, const std::string& date, int instances) {
    pacs_files_[uid] =
        testing::WritePatientStudy(dir_.path() / "pacs" / uid, {kPatient, uid, date}, instances);
    StudyMatch m = Study(uid, date);
    m.instance_count = instances;
    pacs_studies_.push_back(m);
  }

  std::set<std::string> StudiesOf(const std::vector<fs::path>& files) {
    std::set<std::string> out;
    for (const auto& f : files) {
      auto meta = ReadInstanceMeta(f);
      EXPECT_TRUE(meta.ok()) << f;
      if (meta.ok()) out.insert(meta->study_uid.str());
    }
    return out;
  }

  std::vector<std::string> AuditActions() {
    auto audit = index_->ListAudit(100, 0);
    EXPECT_TRUE(audit.ok());
    std::vector<std::string> out;
    for (const auto& a : *audit) out.push_back(a.action);
    return out;
  }

  testing::TempDir dir_;
  FakeClock clock_;
  Metrics metrics_;
  std::unique_ptr<Spool> spool_;
  std::unique_ptr<Index> index_;
  std::vector<StudyMatch> pacs_studies_;
  std::map<std::string, std::vector<fs::path>> pacs_files_;
  ScriptedSource* source_ = nullptr;
  std::unique_ptr<PriorFetcherImpl> fetcher_;
  JobRecord job_;
  ToolConfig tool_;
};

TEST_F(PriorFetcherTest, FetchesTheMostRecentAndStoresThemUnrouted) {
  auto files = fetcher_->Gather(job_, tool_, {});
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  EXPECT_EQ(files->size(), 5u) << "2 + 3 instances of the two most recent priors";
  EXPECT_EQ(StudiesOf(*files), (std::set<std::string>{"1.2.826.0.1.3680043.10.1137.901",
                                                      "1.2.826.0.1.3680043.10.1137.902"}));
  for (const auto& f : *files) {
    EXPECT_TRUE(f.string().rfind(spool_->root().string(), 0) == 0) << "in the spool: " << f;
  }
  auto held = index_->ListInstances(StudyUid("1.2.826.0.1.3680043.10.1137.902"));
  ASSERT_TRUE(held.ok());
  ASSERT_EQ(held->size(), 3u);
  EXPECT_EQ(held->front().calling_ae.str(), kPriorFetchedCaller);
  const auto actions = AuditActions();
  EXPECT_EQ(std::count(actions.begin(), actions.end(), "prior_fetched"), 5);
  EXPECT_EQ(std::count(actions.begin(), actions.end(), "prior_missing"), 0);
}

TEST_F(PriorFetcherTest, APriorAlreadyHeldIsReusedNotFetched) {
  ASSERT_TRUE(fetcher_->Gather(job_, tool_, {}).ok());
  source_->fetched.clear();
  auto files = fetcher_->Gather(job_, tool_, {});
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  EXPECT_EQ(files->size(), 5u);
  EXPECT_TRUE(source_->fetched.empty());
}

TEST_F(PriorFetcherTest, AMissingPriorIsReportedAndTheJobProceeds) {
  source_->failing.insert("1.2.826.0.1.3680043.10.1137.901");
  auto files = fetcher_->Gather(job_, tool_, {});
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  EXPECT_EQ(StudiesOf(*files), (std::set<std::string>{"1.2.826.0.1.3680043.10.1137.902"}));
  const auto actions = AuditActions();
  EXPECT_EQ(std::count(actions.begin(), actions.end(), "prior_missing"), 1);
  auto audit = index_->ListAudit(100, 0);
  for (const auto& a : *audit) {
    EXPECT_EQ(a.detail.find("1.2.826.0.1.3680043"), std::string::npos) << "no UID in clear";
  }
}

TEST_F(PriorFetcherTest, AMissingPriorMakesAWaitingToolWait) {
  tool_.priors.on_missing = PriorsOnMissing::kWait;
  source_->failing.insert("1.2.826.0.1.3680043.10.1137.902");
  auto files = fetcher_->Gather(job_, tool_, {});
  ASSERT_FALSE(files.ok());
  EXPECT_EQ(files.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(files.status().message().find("1.2.826.0.1.3680043"), std::string::npos);
}

TEST_F(PriorFetcherTest, ASearchThatFailsIsOneMissingReport) {
  source_->find_error = Unavailable("scripted: PACS down");
  auto files = fetcher_->Gather(job_, tool_, {});
  ASSERT_TRUE(files.ok());
  EXPECT_TRUE(files->empty());
  const auto actions = AuditActions();
  EXPECT_EQ(std::count(actions.begin(), actions.end(), "prior_missing"), 1);
  tool_.priors.on_missing = PriorsOnMissing::kWait;
  EXPECT_EQ(fetcher_->Gather(job_, tool_, {}).status().code(), StatusCode::kUnavailable);
}

TEST_F(PriorFetcherTest, AToolAskingForNoneCostsNothing) {
  tool_.priors.count = 0;
  auto files = fetcher_->Gather(job_, tool_, {});
  ASSERT_TRUE(files.ok());
  EXPECT_TRUE(files->empty());
  EXPECT_EQ(source_->finds, 0);
}

TEST_F(PriorFetcherTest, APriorNotComparableOnceFetchedGivesWayToTheNext) {
  // The PACS did not say the newest prior's modality; its instances are MR.
  const std::string mr = "1.2.826.0.1.3680043.10.1137.904";
  source_->files[mr] =
      testing::WritePatientStudy(dir_.path() / "pacs" / mr, {kPatient, mr, "20231201", "MR"}, 1);
  source_->studies.push_back(Study(mr, "20231201", {}));
  auto files = fetcher_->Gather(job_, tool_, {});
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  EXPECT_EQ(StudiesOf(*files), (std::set<std::string>{"1.2.826.0.1.3680043.10.1137.901",
                                                      "1.2.826.0.1.3680043.10.1137.902"}));
  auto held = index_->ListInstances(StudyUid(mr));
  ASSERT_TRUE(held.ok());
  EXPECT_TRUE(held->empty()) << "a prior not sent is not kept";
}

}  // namespace
}  // namespace conduit
