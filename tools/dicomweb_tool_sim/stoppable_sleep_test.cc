#include "dicomweb_tool_sim/stoppable_sleep.h"

#include <gtest/gtest.h>

namespace conduit::tools {
namespace {

using namespace std::chrono_literals;

// Regression: a loop `while (SleepUnlessStopped(...))` must end once stop is requested.
TEST(StoppableSleepTest, ReportsAStopRequestedBeforeOrDuringTheSleep) {
  std::stop_source source;
  EXPECT_TRUE(SleepUnlessStopped(1ms, source.get_token()));
  source.request_stop();
  EXPECT_FALSE(SleepUnlessStopped(10s, source.get_token())) << "returns at once when stopped";
}

}  // namespace
}  // namespace conduit::tools
