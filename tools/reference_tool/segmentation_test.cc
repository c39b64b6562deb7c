#include "reference_tool/segmentation.h"

#include <gtest/gtest.h>

#include <string>

namespace conduit::tools {
namespace {

// Builds a slice from a picture: '.' air (-1000 HU), '#' soft tissue (40), 'l' lung (-800).
std::vector<int16_t> Slice(const std::vector<std::string>& picture) {
  std::vector<int16_t> v;
  for (const std::string& row : picture) {
    for (char ch : row) v.push_back(ch == '#' ? 40 : ch == 'l' ? -800 : -1000);
  }
  return v;
}

std::string Render(const std::vector<uint8_t>& labels, int cols) {
  std::string out;
  for (size_t i = 0; i < labels.size(); ++i) {
    out += (labels[i] & kLungLabel) ? 'L' : (labels[i] & kBodyLabel) ? 'B' : '.';
    if ((i + 1) % cols == 0) out += '\n';
  }
  return out;
}

TEST(LabelSliceTest, EnclosedAirIsLungAndAirReachingTheBorderIsOutside) {
  auto values = Slice({
      "........",
      ".######.",
      ".#ll#..#",  // the right-hand pocket is closed by tissue on the border column
      ".#ll#..#",
      ".######.",
      "........",
  });
  auto labels = LabelSlice(values, 6, 8, kCtThresholds);
  EXPECT_EQ(Render(labels, 8),
            "........\n"
            ".BBBBBB.\n"
            ".BLLBLLB\n"
            ".BLLBLLB\n"
            ".BBBBBB.\n"
            "........\n");
}

TEST(LabelSliceTest, AirConnectedToTheBorderIsNotLung) {
  auto values = Slice({
      "......",
      ".####.",
      ".#....",  // a channel from the cavity to the border
      ".####.",
      "......",
  });
  auto labels = LabelSlice(values, 5, 6, kCtThresholds);
  EXPECT_EQ(Render(labels, 6),
            "......\n"
            ".BBBB.\n"
            ".B....\n"
            ".BBBB.\n"
            "......\n");
}

TEST(LabelSliceTest, TissueTouchingTheBorderIsBody) {
  auto values = Slice({
      "###",
      "#l#",
      "###",
  });
  auto labels = LabelSlice(values, 3, 3, kCtThresholds);
  EXPECT_EQ(Render(labels, 3), "BBB\nBLB\nBBB\n");
}

TEST(HistogramTest, OtsuSeparatesTwoModes) {
  Histogram h;
  std::vector<int16_t> values;
  for (int i = 0; i < 1000; ++i) values.push_back(static_cast<int16_t>(10 + i % 20));
  for (int i = 0; i < 500; ++i) values.push_back(static_cast<int16_t>(900 + i % 40));
  h.Add(values);
  int t = h.OtsuThreshold();
  EXPECT_GE(t, 29);
  EXPECT_LT(t, 900);
}

TEST(HistogramTest, OtsuOfAConstantIsThatValue) {
  Histogram h;
  std::vector<int16_t> values(100, -7);
  h.Add(values);
  EXPECT_EQ(h.OtsuThreshold(), -7);
}

TEST(LabelCountsTest, CountsLungInsideBody) {
  LabelCounts counts;
  std::vector<uint8_t> labels = {0, kBodyLabel, kBodyLabel | kLungLabel, kBodyLabel};
  counts.Add(labels);
  EXPECT_EQ(counts.body, 3u);
  EXPECT_EQ(counts.lung, 1u);
}

}  // namespace
}  // namespace conduit::tools
