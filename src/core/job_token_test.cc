#include "core/job_token.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>

namespace conduit {
namespace {

std::filesystem::path TempDir() {
  auto dir = std::filesystem::temp_directory_path() /
             ("job_token_test_" +
              std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
  std::filesystem::create_directories(dir);
  return dir;
}

TEST(JobTokensTest, TokenIsPerJobAndVerifies) {
  auto tokens = JobTokens::FromSecret(std::string(32, 's'));
  ASSERT_TRUE(tokens.ok());
  const std::string one = tokens->TokenFor(JobId{1});
  EXPECT_EQ(one.size(), 64u);
  EXPECT_NE(one, tokens->TokenFor(JobId{2}));
  EXPECT_TRUE(tokens->Verify(JobId{1}, one));
  EXPECT_FALSE(tokens->Verify(JobId{2}, one));
  EXPECT_FALSE(tokens->Verify(JobId{1}, one.substr(1)));
  EXPECT_FALSE(tokens->Verify(JobId{1}, ""));
  std::string flipped = one;
  flipped[10] = flipped[10] == 'a' ? 'b' : 'a';
  EXPECT_FALSE(tokens->Verify(JobId{1}, flipped));
}

TEST(JobTokensTest, AnotherSecretMakesOtherTokens) {
  auto a = JobTokens::FromSecret(std::string(32, 'a'));
  auto b = JobTokens::FromSecret(std::string(32, 'b'));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->TokenFor(JobId{7}), b->TokenFor(JobId{7}));
  EXPECT_FALSE(b->Verify(JobId{7}, a->TokenFor(JobId{7})));
}

TEST(JobTokensTest, ShortSecretIsRefused) {
  EXPECT_EQ(JobTokens::FromSecret("short").status().code(), StatusCode::kInvalidArgument);
}

TEST(JobTokensTest, LoadOrCreateMakesAPrivateSecretOnceAndKeepsIt) {
  const auto dir = TempDir();
  const auto path = dir / "keys" / "job-token.key";
  auto first = JobTokens::LoadOrCreate(path);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto second = JobTokens::LoadOrCreate(path);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(first->TokenFor(JobId{3}), second->TokenFor(JobId{3}));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace conduit
