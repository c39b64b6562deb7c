#include "common/uid.h"

#include <gtest/gtest.h>

#include <regex>
#include <set>

namespace conduit::tools {
namespace {

const std::regex kUid225(R"(2\.25\.(0|[1-9][0-9]*))");

TEST(Uid225Test, EncodesBytesAsBigEndianDecimal) {
  std::array<uint8_t, 16> zero{};
  EXPECT_EQ(Uid225FromBytes(zero), "2.25.0");
  std::array<uint8_t, 16> one{};
  one[15] = 1;
  EXPECT_EQ(Uid225FromBytes(one), "2.25.1");
  std::array<uint8_t, 16> max;
  max.fill(0xff);
  EXPECT_EQ(Uid225FromBytes(max), "2.25.340282366920938463463374607431768211455");
}

TEST(Uid225Test, DerivedUidIsStableAndSeparatesParts) {
  std::string a = DerivedUid({"1.2.3", "4.5.6", "seg"});
  EXPECT_EQ(a, DerivedUid({"1.2.3", "4.5.6", "seg"}));
  EXPECT_NE(a, DerivedUid({"1.2.3", "4.5.6", "sr"}));
  EXPECT_NE(DerivedUid({"ab", "c"}), DerivedUid({"a", "bc"}));
  EXPECT_TRUE(std::regex_match(a, kUid225)) << a;
  EXPECT_LE(a.size(), 64u);
}

TEST(Uid225Test, RandomUidsAreWellFormedAndDistinct) {
  std::mt19937_64 rng(42);
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string uid = RandomUid(rng);
    EXPECT_TRUE(std::regex_match(uid, kUid225)) << uid;
    EXPECT_LE(uid.size(), 64u);
    seen.insert(uid);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(Uid225Test, LogRefIsSixteenHexDigits) {
  std::string ref = LogRef("1.2.840.1");
  EXPECT_EQ(ref.size(), 16u);
  EXPECT_TRUE(std::regex_match(ref, std::regex("[0-9a-f]{16}")));
  EXPECT_EQ(ref, LogRef("1.2.840.1"));
}

}  // namespace
}  // namespace conduit::tools
