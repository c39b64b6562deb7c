#include "core/dicom_uid.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace conduit {
namespace {

TEST(DicomUidTest, NewUidsAreFreshValid2_25Uids) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::string uid = NewDicomUid();
    EXPECT_TRUE(uid.starts_with("2.25.")) << uid;
    EXPECT_TRUE(IsDicomUidText(uid)) << uid;
    EXPECT_TRUE(seen.insert(uid).second) << "repeated: " << uid;
  }
}

TEST(DicomUidTest, StrictAndAsFoundDifferOnlyInLeadingZeros) {
  for (const char* good : {"1", "0", "1.2.840.10008.1.20.1", "2.25.0.1"}) {
    EXPECT_TRUE(IsDicomUidText(good)) << good;
    EXPECT_TRUE(IsDicomUidAsFound(good)) << good;
  }
  // A component with a leading zero: not a UID by PS3.5 9.1, but devices write them, and an
  // instance stored under one must stay retrievable.
  EXPECT_FALSE(IsDicomUidText("1.2.840.0113"));
  EXPECT_TRUE(IsDicomUidAsFound("1.2.840.0113"));
  const std::string longest(64, '1');
  EXPECT_TRUE(IsDicomUidText(longest));
  EXPECT_TRUE(IsDicomUidAsFound(longest));
  for (const std::string& bad :
       {std::string(), std::string("."), std::string(".."), std::string("1..2"), std::string(".1"),
        std::string("1."), std::string("1.2a"), std::string("1.2 "), std::string("1/2"),
        std::string("1.2\0", 4), longest + "1"}) {
    EXPECT_FALSE(IsDicomUidText(bad)) << bad;
    EXPECT_FALSE(IsDicomUidAsFound(bad)) << bad;
  }
}

}  // namespace
}  // namespace conduit
