#include "aiwi_performer/performer_modes.h"

#include <gtest/gtest.h>

namespace conduit::tools {
namespace {

TEST(PerformerModesTest, NamesRoundTrip) {
  for (PerformerMode mode :
       {PerformerMode::kNone, PerformerMode::kSlow, PerformerMode::kCrashMidClaim,
        PerformerMode::kMalformed, PerformerMode::kWrongReferences, PerformerMode::kCancel,
        PerformerMode::kError}) {
    EXPECT_EQ(ParsePerformerMode(PerformerModeName(mode)), mode) << PerformerModeName(mode);
  }
  EXPECT_FALSE(ParsePerformerMode("crash").has_value());
}

TEST(PerformerModesTest, CountedModeEndsAfterItsWorkitems) {
  PerformerModeSwitch modes(PerformerMode::kCancel, 2);
  EXPECT_EQ(modes.TakeForWorkitem(), PerformerMode::kCancel);
  EXPECT_EQ(modes.Current().remaining, 1);
  EXPECT_EQ(modes.TakeForWorkitem(), PerformerMode::kCancel);
  EXPECT_EQ(modes.TakeForWorkitem(), PerformerMode::kNone);
  EXPECT_EQ(modes.Current().remaining, -1);
}

TEST(PerformerModesTest, UncountedModeLastsUntilChanged) {
  PerformerModeSwitch modes(PerformerMode::kSlow, -1);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(modes.TakeForWorkitem(), PerformerMode::kSlow);
  modes.Set(PerformerMode::kMalformed, 0);
  EXPECT_EQ(modes.TakeForWorkitem(), PerformerMode::kNone) << "count 0 behaves at once";
}

}  // namespace
}  // namespace conduit::tools
