#include "core/duration.h"

#include <gtest/gtest.h>

namespace conduit {
namespace {

using std::chrono::milliseconds;

TEST(ParseDurationTest, AcceptsEveryUnit) {
  struct Case {
    const char* text;
    int64_t ms;
  };
  for (const Case& c :
       {Case{"500ms", 500}, Case{"5s", 5000}, Case{"5", 5000}, Case{"2m", 120000},
        Case{"1h", 3600000}, Case{"1d", 86400000}, Case{"1.5s", 1500}, Case{" 3s ", 3000},
        Case{"0s", 0}, Case{"2w", 1209600000}, Case{"5y", int64_t{5} * 365 * 86400000}}) {
    auto d = ParseDuration(c.text);
    ASSERT_TRUE(d.ok()) << c.text << ": " << d.status().ToString();
    EXPECT_EQ(d->count(), c.ms) << c.text;
  }
}

TEST(ParseDurationTest, RefusesWhatIsNotADuration) {
  for (const char* text :
       {"", "s", "five", "-1s", "5 weeks", "5yr", "1e30h", "nan", "infs", "inf"}) {
    auto d = ParseDuration(text);
    EXPECT_FALSE(d.ok()) << text;
    if (!d.ok()) {
      EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);
    }
  }
}

TEST(FormatDurationTest, UsesTheLargestExactUnit) {
  EXPECT_EQ(FormatDuration(milliseconds(5000)), "5s");
  EXPECT_EQ(FormatDuration(milliseconds(120000)), "2m");
  EXPECT_EQ(FormatDuration(milliseconds(7200000)), "2h");
  EXPECT_EQ(FormatDuration(milliseconds(1500)), "1500ms");
}

}  // namespace
}  // namespace conduit
