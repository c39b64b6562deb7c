#include "http/percent_decoding.h"

#include <gtest/gtest.h>

namespace conduit {
namespace {

TEST(PercentDecodingTest, DecodesEscapesAnywhereAndLeavesOtherCharacters) {
  EXPECT_EQ(PercentDecode("AI%20TOOL"), "AI TOOL");
  EXPECT_EQ(PercentDecode("%41%4a%4A"), "AJJ");
  EXPECT_EQ(PercentDecode("1.2.840%2E5"), "1.2.840.5");
  EXPECT_EQ(PercentDecode(""), "");
  EXPECT_EQ(PercentDecode("a+b"), "a+b") << "'+' is a plus sign in a path";
  EXPECT_EQ(PercentDecode("a+b%2B", /*plus_is_space=*/true), "a b+");
  EXPECT_EQ(PercentDecode("%00"), std::string(1, '\0'));
}

TEST(PercentDecodingTest, MalformedEscapesAreRefused) {
  for (const char* bad : {"%", "%4", "a%", "%G0", "%0g", "100%", "%%41"}) {
    EXPECT_EQ(PercentDecode(bad), std::nullopt) << bad;
  }
}

}  // namespace
}  // namespace conduit
