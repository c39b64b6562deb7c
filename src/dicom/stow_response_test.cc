#include "dicom/stow_response.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

namespace conduit {
namespace {

TEST(StowResponseTest, CountsStoredAndFailedByReason) {
  auto parsed = ParseStowResponse(R"([{
    "00081190": {"vr": "UR", "Value": ["http://tool/studies/1.2"]},
    "00081199": {"vr": "SQ", "Value": [{}, {}, {}]},
    "00081198": {"vr": "SQ", "Value": [
      {"00081197": {"vr": "US", "Value": [42752]}},
      {"00081197": {"vr": "US", "Value": [42752]}},
      {"00081155": {"vr": "UI", "Value": ["1.2.3"]}}]}}])");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->stored, 3u);
  EXPECT_EQ(parsed->failed, 3u);
  EXPECT_EQ(parsed->failure_reasons, (std::map<uint16_t, size_t>{{0xA700, 2}, {0, 1}}));
  EXPECT_EQ(DescribeFailureReason(0xA700), "0xA700 (out of resources)");

  EXPECT_TRUE(ParseStowResponse("").ok());
  EXPECT_FALSE(ParseStowResponse("<html>").ok());
  EXPECT_FALSE(ParseStowResponse("[1, 2]").ok());
}

TEST(StowResponseTest, NamesTheInstancesItemsGiveUidsFor) {
  auto parsed = ParseStowResponse(R"({
    "00081199": {"vr": "SQ", "Value": [
      {"00081155": {"vr": "UI", "Value": ["1.2.3.1"]}},
      {"00081155": {"vr": "UI", "Value": [7]}},
      {"00081196": {"vr": "US", "Value": [45056]}}]},
    "00081198": {"vr": "SQ", "Value": [
      {"00081155": {"vr": "UI", "Value": ["1.2.3.2"]}, "00081197": {"vr": "US", "Value": [273]}},
      {"00081155": {"vr": "UI", "Value": ["1.2.3.3"]}},
      {"00081155": {"vr": "UI", "Value": [""]}, "00081197": {"vr": "US", "Value": [49152]}}]}})");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->stored, 3u);
  EXPECT_EQ(parsed->stored_instances, (std::set<std::string>{"1.2.3.1"}));
  EXPECT_EQ(parsed->failed, 3u);
  EXPECT_EQ(parsed->failed_instances,
            (std::map<std::string, uint16_t>{{"1.2.3.2", 0x0111}, {"1.2.3.3", 0}}));
}

TEST(StowResponseTest, AReasonOutsideSixteenBitsOrNotANumberCountsAsNotGiven) {
  auto parsed = ParseStowResponse(R"({"00081198": {"vr": "SQ", "Value": [
      {"00081197": {"vr": "US", "Value": [65536]}},
      {"00081197": {"vr": "US", "Value": ["272"]}},
      {"00081197": {"vr": "US", "Value": [-1]}},
      {"00081197": {"vr": "US", "Value": [273]}},
      7, null]}})");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->stored, 0u);
  EXPECT_EQ(parsed->failed, 6u);
  EXPECT_EQ(parsed->failure_reasons,
            (std::map<uint16_t, size_t>{{0, 5}, {kDuplicateSopInstance, 1}}));
}

TEST(StowResponseTest, SequencesOfTheWrongShapeCountNothing) {
  for (const char* body : {R"({"00081199": {"vr": "SQ", "Value": {}}})", R"({"00081199": []})",
                           R"({"00081199": {"vr": "SQ"}})", "{}", "  \r\n "}) {
    auto parsed = ParseStowResponse(body);
    ASSERT_TRUE(parsed.ok()) << body;
    EXPECT_EQ(parsed->stored, 0u) << body;
    EXPECT_EQ(parsed->failed, 0u) << body;
  }
  EXPECT_FALSE(ParseStowResponse("[{}, {}]").ok()) << "an array of two answers";
  EXPECT_FALSE(ParseStowResponse("\"text\"").ok());
  EXPECT_FALSE(ParseStowResponse("{\"00081199\": ").ok()) << "truncated";
}

TEST(StowResponseTest, DescribesEveryReasonClass) {
  EXPECT_EQ(DescribeFailureReason(0), "0x0000 (not given)");
  EXPECT_EQ(DescribeFailureReason(0x0111), "0x0111 (duplicate SOP instance)");
  EXPECT_EQ(DescribeFailureReason(0xA7FF), "0xA7FF (out of resources)");
  EXPECT_EQ(DescribeFailureReason(0xA900), "0xA900 (data set does not match SOP class)");
  EXPECT_EQ(DescribeFailureReason(0xC000), "0xC000 (cannot understand)");
  EXPECT_EQ(DescribeFailureReason(0xC122), "0xC122 (transfer syntax not supported)");
  EXPECT_EQ(DescribeFailureReason(0x1234), "0x1234 (unknown)");
}

}  // namespace
}  // namespace conduit
