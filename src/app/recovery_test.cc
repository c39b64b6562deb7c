#include "app/recovery.h"

#include <gtest/gtest.h>

#include "store/sqlite_index.h"
#include "testing/testing.h"

namespace conduit {
namespace {

using namespace std::chrono_literals;

class RecoveryTest : public ::testing::Test {
 protected:
  RecoveryTest() {
    RouteConfig route;
    route.name = "ct";
    route.when = {RouteCondition{"Modality", {"CT"}}};
    route.tool = "reference";
    route.stable_after = 60s;
    config_.routes = {route};
    spool_ = std::move(Spool::Open(SpoolOptions{tmp_.path() / "spool", 0}).value());
    index_ = std::move(OpenSqliteIndex(tmp_.path() / "index.sqlite").value());
    router_ = std::make_unique<Router>(config_.routes);
    assembler_ = std::make_unique<StudyAssembler>(*index_, clock_, config_, [](JobId) {});
  }

  // Stores an instance as ingest does, but "crashes" before routing it.
  void StoreWithoutRouting(const std::string& study, const std::string& series,
                           const std::string& sop) {
    const auto incoming = spool_->NewIncomingPath();
    ASSERT_TRUE(testing::WriteTestDicom(incoming, study, series, sop).ok());
    auto key = spool_->Commit(incoming, SopInstanceUid(sop));
    ASSERT_TRUE(key.ok()) << key.status().ToString();
    Status put = testing::PutTestInstance(*index_, study, series, sop, clock_.Now(), *key);
    ASSERT_TRUE(put.ok()) << put.ToString();
  }

  testing::TempDir tmp_;
  FakeClock clock_;
  Config config_;
  std::unique_ptr<Spool> spool_;
  std::unique_ptr<Index> index_;
  std::unique_ptr<Router> router_;
  std::unique_ptr<StudyAssembler> assembler_;
};

TEST_F(RecoveryTest, AStudyStoredButNeverRoutedGetsItsUnitAndThenItsJob) {
  StoreWithoutRouting("1.2.3", "1.2.3.1", "1.2.3.1.1");
  StoreWithoutRouting("1.2.3", "1.2.3.1", "1.2.3.1.2");
  auto opened = OpenUnitsLostInACrash(*index_, *spool_, *router_, *assembler_, TimePoint{});
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(*opened, 1);
  clock_.Advance(61s);
  auto jobs = assembler_->Tick();
  ASSERT_TRUE(jobs.ok());
  EXPECT_EQ(jobs->size(), 1u);
}

TEST_F(RecoveryTest, StudiesWithUnitsAndOlderStudiesAreLeftAlone) {
  StoreWithoutRouting("1.2.3", "1.2.3.1", "1.2.3.1.1");
  ASSERT_TRUE(assembler_->Add(config_.routes[0], StudyUid("1.2.3"), SeriesUid("1.2.3.1")).ok());
  clock_.Advance(2h);
  StoreWithoutRouting("1.2.4", "1.2.4.1", "1.2.4.1.1");  // its routing was lost
  auto recent_only =
      OpenUnitsLostInACrash(*index_, *spool_, *router_, *assembler_, clock_.Now() - 1h);
  ASSERT_TRUE(recent_only.ok());
  EXPECT_EQ(*recent_only, 1) << "only the recent study, which had no unit";
  auto again = OpenUnitsLostInACrash(*index_, *spool_, *router_, *assembler_, TimePoint{});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 0) << "every study has its unit now";
}

}  // namespace
}  // namespace conduit
