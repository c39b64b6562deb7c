#include "app/api_token_setup.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "core/text_file.h"
#include "testing/testing.h"

namespace conduit {
namespace {

namespace fs = std::filesystem;

constexpr char kApiToken[] = "0123456789abcdef0123456789abcdef-api";

class OutboundTokensTest : public ::testing::Test {
 protected:
  fs::path TokenFile(const std::string& name, const std::string& token) {
    const fs::path file = tmp_.path() / name;
    std::ofstream(file) << token << "\n";
    ::chmod(file.c_str(), 0600);
    return file;
  }
  ToolConfig DicomwebTool(const std::string& name, const fs::path& token_file) {
    ToolConfig tool;
    tool.name = name;
    tool.kind = ToolKind::kDicomweb;
    tool.auth_token_file = token_file;
    return tool;
  }

  testing::TempDir tmp_;
  ApiTokens api_ = ApiTokens::Parse(std::string("# ops\n") + kApiToken + "\n", "test").value();
};

TEST_F(OutboundTokensTest, AToolOrPriorsSourceSentAnApiTokenIsRefused) {
  Config config;
  config.tools.push_back(DicomwebTool("own-token", TokenFile("own", std::string(40, 'o'))));
  config.tools.push_back(DicomwebTool("no-token", ""));
  config.tools.push_back(DicomwebTool("unreadable", tmp_.path() / "missing"));
  EXPECT_TRUE(CheckApiTokensNotSentOut(config, api_).ok());

  config.tools.push_back(DicomwebTool("vendor-x", TokenFile("reused", kApiToken)));
  Status st = CheckApiTokensNotSentOut(config, api_);
  ASSERT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("tool 'vendor-x'"), std::string::npos) << st.message();
  EXPECT_EQ(st.message().find(kApiToken), std::string::npos) << "never the token itself";

  config.tools.pop_back();
  config.priors_source.kind = PriorsSourceKind::kDicomweb;
  config.priors_source.auth_token_file = TokenFile("pacs", kApiToken);
  st = CheckApiTokensNotSentOut(config, api_);
  ASSERT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("priors_source"), std::string::npos) << st.message();
}

TEST_F(OutboundTokensTest, AWorklistToolsInboundTokenIsNotCheckedHere) {
  // Worklist tokens are inbound; the gateway refuses their reuse separately (SharedWith).
  Config config;
  ToolConfig tool = DicomwebTool("pull", TokenFile("pull", kApiToken));
  tool.kind = ToolKind::kWorklist;
  config.tools.push_back(tool);
  EXPECT_TRUE(CheckApiTokensNotSentOut(config, api_).ok());
}

TEST(WarnIfOpenToOthersTest, OnlyAFileOthersMayReadIsReported) {
  testing::TempDir tmp;
  const fs::path file = tmp.path() / "token";
  std::ofstream(file) << "secret\n";
  ::chmod(file.c_str(), 0600);
  EXPECT_FALSE(WarnIfOpenToOthers(file, "test"));
  ::chmod(file.c_str(), 0640);
  EXPECT_TRUE(WarnIfOpenToOthers(file, "test"));
  ::chmod(file.c_str(), 0604);
  EXPECT_TRUE(WarnIfOpenToOthers(file, "test"));
  EXPECT_FALSE(WarnIfOpenToOthers(tmp.path() / "missing", "test"));
  // The form for a file already stat'ed (the pseudonymisation key).
  EXPECT_FALSE(WarnIfModeOpenToOthers(S_IFREG | 0600, "key file k"));
  EXPECT_FALSE(WarnIfModeOpenToOthers(S_IFREG | 0400, "key file k"));
  EXPECT_TRUE(WarnIfModeOpenToOthers(S_IFREG | 0610, "key file k"));
  EXPECT_TRUE(WarnIfModeOpenToOthers(S_IFREG | 0601, "key file k"));
}

}  // namespace
}  // namespace conduit
