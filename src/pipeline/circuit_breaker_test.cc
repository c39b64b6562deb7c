#include "pipeline/circuit_breaker.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace conduit {
namespace {

using namespace std::chrono_literals;

class CircuitBreakerTest : public ::testing::Test {
 protected:
  CircuitBreakerConfig Config(int threshold = 3) {
    CircuitBreakerConfig c;
    c.failure_threshold = threshold;
    c.open_for = 60s;
    c.max_open_for = 200s;
    return c;
  }
  // Fails a closed breaker until it opens.
  void Open(CircuitBreaker& b) {
    while (b.State() == CircuitState::kClosed) b.RecordFailure();
  }
  FakeClock clock_;
};

TEST_F(CircuitBreakerTest, OpensAtTheThresholdOfConsecutiveFailures) {
  CircuitBreaker b(Config(3), clock_);
  EXPECT_EQ(b.RecordFailure(), CircuitChange::kNone);
  EXPECT_EQ(b.RecordFailure(), CircuitChange::kNone);
  EXPECT_TRUE(b.AllowDispatch());
  EXPECT_EQ(b.State(), CircuitState::kClosed);
  EXPECT_EQ(b.RecordFailure(), CircuitChange::kOpened);
  EXPECT_EQ(b.State(), CircuitState::kOpen);
  EXPECT_FALSE(b.AllowDispatch());
  EXPECT_EQ(b.NextAllowedAt(), clock_.Now() + 60s);
  EXPECT_EQ(b.ConsecutiveFailures(), 3);
}

TEST_F(CircuitBreakerTest, SuccessWhileClosedResetsTheCount) {
  CircuitBreaker b(Config(3), clock_);
  b.RecordFailure();
  b.RecordFailure();
  EXPECT_EQ(b.RecordSuccess(), CircuitChange::kNone);
  EXPECT_EQ(b.ConsecutiveFailures(), 0);
  b.RecordFailure();
  b.RecordFailure();
  EXPECT_EQ(b.State(), CircuitState::kClosed) << "two failures since the success, not four";
  EXPECT_EQ(b.NextAllowedAt(), clock_.Now());
}

TEST_F(CircuitBreakerTest, AfterOpenForExactlyOneProbeMayGo) {
  CircuitBreaker b(Config(), clock_);
  Open(b);
  clock_.Advance(59s);
  EXPECT_FALSE(b.AllowDispatch()) << "open_for is 60 s";
  clock_.Advance(1s);
  EXPECT_EQ(b.State(), CircuitState::kHalfOpen);
  EXPECT_EQ(b.NextAllowedAt(), clock_.Now());
  EXPECT_TRUE(b.AllowDispatch()) << "the probe";
  EXPECT_FALSE(b.AllowDispatch()) << "only one probe at a time";
  EXPECT_EQ(b.NextAllowedAt(), clock_.Now() + 60s) << "others look again later";
  EXPECT_EQ(b.RecordSuccess(), CircuitChange::kClosed);
  EXPECT_EQ(b.State(), CircuitState::kClosed);
  EXPECT_TRUE(b.AllowDispatch());
  EXPECT_TRUE(b.AllowDispatch());
}

TEST_F(CircuitBreakerTest, AFailedProbeReopensForTwiceAsLongUpToTheMax) {
  CircuitBreaker b(Config(), clock_);
  Open(b);
  const std::vector<std::chrono::seconds> periods = {120s, 200s, 200s};
  for (auto period : periods) {
    clock_.Advance(1h);
    ASSERT_TRUE(b.AllowDispatch());
    EXPECT_EQ(b.RecordFailure(), CircuitChange::kOpened);
    EXPECT_EQ(b.State(), CircuitState::kOpen);
    EXPECT_EQ(b.OpenUntil(), clock_.Now() + period);
  }
  clock_.Advance(1h);
  ASSERT_TRUE(b.AllowDispatch());
  EXPECT_EQ(b.RecordSuccess(), CircuitChange::kClosed);
  Open(b);
  EXPECT_EQ(b.OpenUntil(), clock_.Now() + 60s) << "after closing, the period starts over";
}

TEST_F(CircuitBreakerTest, AReleasedProbeLetsAnotherGo) {
  CircuitBreaker b(Config(), clock_);
  Open(b);
  clock_.Advance(60s);
  ASSERT_TRUE(b.AllowDispatch());
  b.ReleaseProbe();
  EXPECT_EQ(b.State(), CircuitState::kHalfOpen);
  EXPECT_TRUE(b.AllowDispatch());
}

TEST_F(CircuitBreakerTest, OutcomesWhileOpenDoNotChangeIt) {
  CircuitBreaker b(Config(), clock_);
  Open(b);
  EXPECT_EQ(b.RecordSuccess(), CircuitChange::kNone) << "from a dispatch sent before it opened";
  EXPECT_EQ(b.RecordFailure(), CircuitChange::kNone);
  EXPECT_EQ(b.State(), CircuitState::kOpen);
  EXPECT_EQ(b.OpenUntil(), clock_.Now() + 60s);
}

TEST_F(CircuitBreakerTest, ThresholdZeroNeverOpens) {
  CircuitBreaker b(Config(0), clock_);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(b.RecordFailure(), CircuitChange::kNone);
  EXPECT_TRUE(b.AllowDispatch());
  EXPECT_EQ(b.State(), CircuitState::kClosed);
}

TEST_F(CircuitBreakerTest, ConcurrentFailuresOpenItOnce) {
  CircuitBreaker b(Config(10), clock_);
  std::atomic<int> opened{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        if (b.RecordFailure() == CircuitChange::kOpened) ++opened;
        b.AllowDispatch();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(opened.load(), 1);
  EXPECT_EQ(b.State(), CircuitState::kOpen);
}

TEST(CircuitStateTest, Names) {
  EXPECT_STREQ(CircuitStateName(CircuitState::kClosed), "closed");
  EXPECT_STREQ(CircuitStateName(CircuitState::kHalfOpen), "half_open");
  EXPECT_STREQ(CircuitStateName(CircuitState::kOpen), "open");
}

}  // namespace
}  // namespace conduit
