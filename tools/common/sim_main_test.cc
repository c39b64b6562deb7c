#include "common/sim_main.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace conduit::tools {
namespace {

namespace fs = std::filesystem;

class TokenFileTest : public ::testing::Test {
 protected:
  ~TokenFileTest() override {
    std::error_code ec;
    fs::remove(file_, ec);
  }
  void Write(const std::string& text) { std::ofstream(file_, std::ios::binary) << text; }

  const fs::path file_ =
      fs::temp_directory_path() / ("conduit-sim-token-" + std::to_string(::getpid()));
};

TEST_F(TokenFileTest, TrimsSurroundingWhiteSpace) {
  Write("  secret-token\r\n");
  EXPECT_EQ(ReadTokenFile(file_.string()), "secret-token");
}

TEST_F(TokenFileTest, MissingOrBlankFileHasNoToken) {
  EXPECT_EQ(ReadTokenFile(file_.string()), std::nullopt) << "missing";
  Write(" \n\t");
  EXPECT_EQ(ReadTokenFile(file_.string()), std::nullopt) << "blank";
  Write("");
  EXPECT_EQ(ReadTokenFile(file_.string()), std::nullopt) << "empty";
}

TEST_F(TokenFileTest, ClientCertificateOptionsComeAsAPairOfExistingFiles) {
  Write("a PEM file");
  const std::string file = file_.string();
  std::string certificate, key;
  {
    CLI::App app;
    AddClientCertificateOptions(app, "results-", "to the results URL", certificate, key);
    const char* argv[] = {"sim", "--results-client-cert", file.c_str(), "--results-client-key",
                          file.c_str()};
    EXPECT_NO_THROW(app.parse(5, argv));
    EXPECT_EQ(certificate, file);
    EXPECT_EQ(key, file);
    EXPECT_NE(app.help().find("to the results URL"), std::string::npos) << app.help();
  }
  {
    CLI::App app;
    AddClientCertificateOptions(app, "", "over https", certificate, key);
    const char* alone[] = {"sim", "--client-cert", file.c_str()};
    EXPECT_THROW(app.parse(3, alone), CLI::RequiresError);
  }
  {
    CLI::App app;
    AddClientCertificateOptions(app, "", "over https", certificate, key);
    const char* missing[] = {"sim", "--client-cert", "/no/such.pem", "--client-key", file.c_str()};
    EXPECT_THROW(app.parse(5, missing), CLI::ValidationError);
  }
}

TEST(MisbehaviourOptionsTest, ParsesAndChecksTheModes) {
  const MisbehaviourHelp help{{"none", "slow", "crash"}, "Studies", "Delay in mode slow"};
  std::string mode = "none";
  int count = -1;
  int64_t slow_ms = 5;
  {
    CLI::App app;
    AddMisbehaviourOptions(app, help, mode, count, slow_ms);
    const char* argv[] = {"sim", "--misbehave", "crash", "--misbehave-count",
                          "2",   "--slow-ms",   "70"};
    EXPECT_NO_THROW(app.parse(7, argv));
    EXPECT_EQ(mode, "crash");
    EXPECT_EQ(count, 2);
    EXPECT_EQ(slow_ms, 70);
    EXPECT_NE(app.help().find("none, slow or crash"), std::string::npos) << app.help();
    EXPECT_NE(app.help().find("Studies the misbehaviour applies to; -1: all"), std::string::npos);
  }
  for (std::vector<const char*> argv : {std::vector<const char*>{"sim", "--misbehave", "other"},
                                        std::vector<const char*>{"sim", "--slow-ms", "-1"}}) {
    CLI::App app;
    AddMisbehaviourOptions(app, help, mode, count, slow_ms);
    EXPECT_THROW(app.parse(static_cast<int>(argv.size()), argv.data()), CLI::ValidationError)
        << argv[1];
  }
}

TEST(StopSignalsTest, WaitEndsWithTheStopToken) {
  BlockStopSignals();
  std::stop_source stop;
  stop.request_stop();
  EXPECT_EQ(WaitForStopSignal(stop.get_token()), 0);
}

TEST(StopSignalsTest, WaitReturnsABlockedSignal) {
  BlockStopSignals();
  ASSERT_EQ(::kill(::getpid(), SIGTERM), 0);
  std::stop_source stop;
  EXPECT_EQ(WaitForStopSignal(stop.get_token()), SIGTERM);
}

}  // namespace
}  // namespace conduit::tools
