#include "common/dicom_values.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <regex>

namespace conduit::tools {
namespace {

TEST(DecimalStringTest, FitsSixteenCharactersAndKeepsTheValue) {
  const double values[] = {0.0,        -1024.0, 0.78125, -199.609375, 123456789.123456,
                           -1.0 / 3.0, 1e-12,   2.5};
  for (double v : values) {
    std::string s = DecimalString(v);
    EXPECT_LE(s.size(), 16u) << s;
    EXPECT_NEAR(std::strtod(s.c_str(), nullptr), v, std::abs(v) * 1e-6 + 1e-15) << s;
  }
  EXPECT_EQ(DecimalString(-1024), "-1024");
  EXPECT_EQ(DecimalString(2.5), "2.5");
}

TEST(DicomNowTest, FormatsDateAndTime) {
  DicomDateTime now = DicomNow();
  EXPECT_TRUE(std::regex_match(now.date, std::regex("[0-9]{8}"))) << now.date;
  EXPECT_TRUE(std::regex_match(now.time, std::regex("[0-9]{6}"))) << now.time;
}

}  // namespace
}  // namespace conduit::tools
