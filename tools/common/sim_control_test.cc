#include "common/sim_control.h"

#include <gtest/gtest.h>

namespace conduit::tools {
namespace {

TEST(ParseModeRequestTest, ReadsModeAndCount) {
  std::string error;
  auto request = ParseModeRequest(R"({"mode": "slow", "count": 2})", error);
  ASSERT_TRUE(request) << error;
  EXPECT_EQ(request->mode, "slow");
  EXPECT_EQ(request->count, 2);
}

TEST(ParseModeRequestTest, AbsentOrNullCountMeansUntilChanged) {
  std::string error;
  for (const char* body : {R"({"mode": "crash"})", R"({"mode": "crash", "count": null})"}) {
    auto request = ParseModeRequest(body, error);
    ASSERT_TRUE(request) << body << ": " << error;
    EXPECT_EQ(request->count, -1) << body;
  }
}

TEST(ParseModeRequestTest, RefusesWhatIsNotAModeRequest) {
  const struct {
    const char* body;
    const char* error;
  } cases[] = {
      {"not json", "expected a JSON object {\"mode\": \"...\", \"count\": N}"},
      {"[1]", "expected a JSON object {\"mode\": \"...\", \"count\": N}"},
      {R"({"count": 1})", "expected a JSON object {\"mode\": \"...\", \"count\": N}"},
      {R"({"mode": 3})", "expected a JSON object {\"mode\": \"...\", \"count\": N}"},
      {R"({"mode": "slow", "count": "2"})", "count must be an integer"},
      {R"({"mode": "slow", "count": 1.5})", "count must be an integer"},
  };
  for (const auto& c : cases) {
    std::string error;
    EXPECT_FALSE(ParseModeRequest(c.body, error)) << c.body;
    EXPECT_EQ(error, c.error) << c.body;
  }
}

}  // namespace
}  // namespace conduit::tools
