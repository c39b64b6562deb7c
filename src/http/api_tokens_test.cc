#include "http/api_tokens.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "testing/testing.h"

namespace conduit {
namespace {

const std::string kTokenA(40, 'a');
const std::string kTokenB = "0123456789abcdef0123456789abcdef";  // exactly 32

TEST(ApiTokensTest, ReadsOneTokenALineSkippingBlanksAndComments) {
  auto tokens = ApiTokens::Parse(
      "# operators\n\n  " + kTokenA + "  \r\n# prometheus\n" + kTokenB + "\n\n", "tokens.txt");
  ASSERT_TRUE(tokens.ok()) << tokens.status().ToString();
  EXPECT_EQ(tokens->size(), 2u);
  EXPECT_TRUE(tokens->Accepts(kTokenA));
  EXPECT_TRUE(tokens->Accepts(kTokenB));
  EXPECT_FALSE(tokens->Accepts(""));
  EXPECT_FALSE(tokens->Accepts(kTokenA + "a"));
  EXPECT_FALSE(tokens->Accepts(kTokenB.substr(1)));
  EXPECT_FALSE(tokens->Accepts("# operators"));
}

struct BadFile {
  const char* name;
  std::string text;
  std::string error;  // the whole message: names the line, never the token
};

TEST(ApiTokensTest, BadFilesNameTheLineAndNeverTheToken) {
  const std::string short_token = "short-but-secret-0123456789";  // 27 characters
  const std::vector<BadFile> cases = {
      {"too_short", "# ok\n" + kTokenA + "\n\n" + short_token + "\n",
       "tokens.txt:4: token too short (27 characters; at least 32): generate one with `openssl "
       "rand -hex 32`"},
      {"inner_space", std::string(20, 'x') + " " + std::string(20, 'y') + "\n",
       "tokens.txt:1: a token is one word of printable ASCII characters (no spaces)"},
      {"control", std::string(33, 'x') + "\x01\n",
       "tokens.txt:1: a token is one word of printable ASCII characters (no spaces)"},
      {"non_ascii", kTokenA + "\xc3\xa9\n",
       "tokens.txt:1: a token is one word of printable ASCII characters (no spaces)"},
      {"empty", "", "tokens.txt: holds no token (blank lines and # comments only)"},
      {"comments_only", "# " + kTokenA + "\n\n",
       "tokens.txt: holds no token (blank lines and # comments only)"},
  };
  for (const BadFile& c : cases) {
    auto tokens = ApiTokens::Parse(c.text, "tokens.txt");
    ASSERT_FALSE(tokens.ok()) << c.name;
    EXPECT_EQ(tokens.status().code(), StatusCode::kInvalidArgument) << c.name;
    EXPECT_EQ(tokens.status().message(), c.error) << c.name;
    EXPECT_EQ(tokens.status().message().find(short_token), std::string::npos) << c.name;
  }
}

TEST(ApiTokensTest, LoadNamesTheSettingAndTheFile) {
  testing::TempDir dir;
  const auto path = dir.path() / "api.tokens";
  auto missing = ApiTokens::Load(path);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(missing.status().message(),
            "http.api_token_file " + path.string() + ": cannot be read");

  std::ofstream(path) << "\n" << kTokenA << "\nshort\n";
  auto bad = ApiTokens::Load(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(bad.status().message().starts_with("http.api_token_file " + path.string() +
                                                 ":3: token too short"))
      << bad.status().message();

  std::ofstream(path) << kTokenA << "\n";
  auto good = ApiTokens::Load(path);
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  EXPECT_TRUE(good->Accepts(kTokenA));
}

TEST(ApiTokensTest, SharedWithNamesTheWorklistToolHoldingAnApiToken) {
  auto api = ApiTokens::Parse(kTokenA + "\n" + kTokenB + "\n", "tokens.txt");
  ASSERT_TRUE(api.ok());
  auto separate = WorklistTokens::FromTokens({{"lung", std::string(40, 'l')}});
  ASSERT_TRUE(separate.ok());
  EXPECT_EQ(api->SharedWith(*separate), std::nullopt);
  auto shared = WorklistTokens::FromTokens({{"lung", std::string(40, 'l')}, {"brain", kTokenB}});
  ASSERT_TRUE(shared.ok());
  EXPECT_EQ(api->SharedWith(*shared), "brain");
}

}  // namespace
}  // namespace conduit
