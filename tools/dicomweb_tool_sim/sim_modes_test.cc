#include "dicomweb_tool_sim/sim_modes.h"

#include <gtest/gtest.h>

namespace conduit::tools {
namespace {

TEST(MisbehaviourTest, NamesRoundTrip) {
  for (Misbehaviour mode :
       {Misbehaviour::kNone, Misbehaviour::kSlow, Misbehaviour::kError5xx, Misbehaviour::kMalformed,
        Misbehaviour::kWrongReferences, Misbehaviour::kOtherJob, Misbehaviour::kCrash}) {
    EXPECT_EQ(ParseMisbehaviour(MisbehaviourName(mode)), mode) << MisbehaviourName(mode);
  }
  EXPECT_FALSE(ParseMisbehaviour("explode").has_value());
}

TEST(ModeSwitchTest, CountedStudyModeReturnsToNormal) {
  ModeSwitch modes(Misbehaviour::kMalformed, 2);
  EXPECT_FALSE(modes.TakeRequestRejection()) << "malformed does not refuse requests";
  EXPECT_EQ(modes.TakeForStudy(), Misbehaviour::kMalformed);
  EXPECT_EQ(modes.Current().remaining, 1);
  EXPECT_EQ(modes.TakeForStudy(), Misbehaviour::kMalformed);
  EXPECT_EQ(modes.TakeForStudy(), Misbehaviour::kNone);
  EXPECT_EQ(modes.Current().mode, Misbehaviour::kNone);
}

TEST(ModeSwitchTest, Error5xxCountsRequestsNotStudies) {
  ModeSwitch modes(Misbehaviour::kNone, -1);
  modes.Set(Misbehaviour::kError5xx, 2);
  EXPECT_EQ(modes.TakeForStudy(), Misbehaviour::kNone);
  EXPECT_TRUE(modes.TakeRequestRejection());
  EXPECT_TRUE(modes.TakeRequestRejection());
  EXPECT_FALSE(modes.TakeRequestRejection());
}

TEST(ModeSwitchTest, UncountedModeLastsUntilChanged) {
  ModeSwitch modes(Misbehaviour::kSlow, -1);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(modes.TakeForStudy(), Misbehaviour::kSlow);
  modes.Set(Misbehaviour::kCrash, 0);
  EXPECT_EQ(modes.TakeForStudy(), Misbehaviour::kNone) << "count 0 means behave at once";
}

}  // namespace
}  // namespace conduit::tools
