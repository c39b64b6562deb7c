#include "core/refusal_throttle.h"

#include <gtest/gtest.h>

namespace conduit {
namespace {

using namespace std::chrono_literals;

TEST(RefusalThrottleTest, FirstRefusalOfAKeyInEachWindowIsReportedWithTheCountSkipped) {
  RefusalThrottle throttle(60s, 16);
  const TimePoint t0 = FakeClock().Now();
  EXPECT_EQ(throttle.Admit("peer-a /api/jobs", t0), 0);
  EXPECT_EQ(throttle.Admit("peer-a /api/jobs", t0 + 1s), std::nullopt);
  EXPECT_EQ(throttle.Admit("peer-a /api/jobs", t0 + 59s), std::nullopt);
  EXPECT_EQ(throttle.Admit("peer-b /api/jobs", t0 + 2s), 0) << "another key is reported";
  EXPECT_EQ(throttle.Admit("peer-a /api/jobs", t0 + 60s), 2) << "two went unreported";
  EXPECT_EQ(throttle.Admit("peer-a /api/jobs", t0 + 61s), std::nullopt);
  EXPECT_EQ(throttle.Admit("peer-a /api/jobs", t0 + 200s), 1);
}

TEST(RefusalThrottleTest, MemoryIsBoundedByForgettingTheKeyReportedLongestAgo) {
  RefusalThrottle throttle(60s, 2);
  const TimePoint t0 = FakeClock().Now();
  EXPECT_EQ(throttle.Admit("a", t0), 0);
  EXPECT_EQ(throttle.Admit("b", t0 + 1s), 0);
  EXPECT_EQ(throttle.Admit("c", t0 + 2s), 0) << "forgets a";
  EXPECT_EQ(throttle.Admit("b", t0 + 3s), std::nullopt) << "b is still remembered";
  EXPECT_EQ(throttle.Admit("a", t0 + 4s), 0) << "a was forgotten, so reported again";
}

}  // namespace
}  // namespace conduit
