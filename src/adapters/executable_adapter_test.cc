#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "adapters/tool_adapter.h"

namespace conduit {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string ReadAll(const fs::path& file) {
  std::ifstream in(file);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const fs::path& file, const std::string& text) {
  std::ofstream out(file, std::ios::trunc);
  out << text;
}

// True if `pid` is a running process (not gone, not a zombie awaiting its reaper).
bool Running(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return false;
  const size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z';
}

class ExecutableAdapterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("conduit-exec-test-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "spool");
    fs::create_directories(root_ / "work");
    for (int i = 1; i <= 2; ++i) {
      const fs::path input = root_ / "spool" / ("instance" + std::to_string(i) + ".dcm");
      WriteFile(input, "instance " + std::to_string(i));
      request_.inputs.push_back(input);
    }
    request_.job.id = JobId{7};
    request_.job.study_uid = StudyUid("1.2.826.0.1.3680043.9.7.1");
    request_.job.tool = "tool";
    request_.work_dir = root_ / "work";
    request_.log_file = root_ / "logs" / "job-7.log";
  }
  void TearDown() override { fs::remove_all(root_); }

  // A tool whose command is `/bin/sh <script>`; the script gets --input IN --output OUT.
  ToolConfig ScriptTool(const std::string& body, std::chrono::milliseconds timeout = 60s) {
    const fs::path script = root_ / "tool.sh";
    WriteFile(script, "#!/bin/sh\n" + body);
    ToolConfig tool;
    tool.name = "script-tool";
    tool.command = {"/bin/sh", script.string()};
    tool.timeout = timeout;
    return tool;
  }

  fs::path root_;
  DispatchRequest request_;
};

TEST_F(ExecutableAdapterTest, CopyingToolReturnsEveryOutputFileAndLogsItsOutput) {
  auto adapter =
      MakeExecutableAdapter(ScriptTool("echo \"tool says hello\"\n"
                                       "echo \"tool complains\" >&2\n"
                                       "mkdir -p \"$4/nested\"\n"
                                       "cp \"$2\"/* \"$4/nested/\"\n"
                                       "echo report > \"$4/report.txt\"\n"));
  Result<DispatchOutcome> outcome = adapter->Dispatch(request_);
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_FALSE(outcome->results_pending);
  ASSERT_EQ(outcome->result_files.size(), 3u);
  for (const fs::path& f : outcome->result_files) {
    EXPECT_TRUE(fs::is_regular_file(f)) << f;
    EXPECT_EQ(f.string().rfind((request_.work_dir / "output").string(), 0), 0u) << f;
  }
  const std::string log = ReadAll(request_.log_file);
  EXPECT_NE(log.find("tool says hello"), std::string::npos) << log;
  EXPECT_NE(log.find("tool complains"), std::string::npos) << log;
}

TEST_F(ExecutableAdapterTest, InputsAreHardLinkedUnderUniqueNames) {
  // Two inputs with the same file name from different folders must both reach the tool.
  fs::create_directories(root_ / "spool" / "other");
  const fs::path same_name = root_ / "spool" / "other" / "instance1.dcm";
  WriteFile(same_name, "instance 3");
  request_.inputs.push_back(same_name);
  auto adapter = MakeExecutableAdapter(ScriptTool("ls \"$2\" | wc -l > \"$4/count.txt\"\n"));
  Result<DispatchOutcome> outcome = adapter->Dispatch(request_);
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_EQ(std::stoi(ReadAll(request_.work_dir / "output" / "count.txt")), 3);
  int linked = 0;
  for (const auto& entry : fs::directory_iterator(request_.work_dir / "input")) {
    for (const fs::path& input : request_.inputs) {
      if (fs::equivalent(entry.path(), input)) ++linked;
    }
  }
  EXPECT_EQ(linked, 3) << "each input is a hard link to the spooled file, not a copy";
}

TEST_F(ExecutableAdapterTest, ToolPastItsTimeoutIsStoppedWithItsProcessGroup) {
  // The tool starts a child in its group and waits on it; both must be gone afterwards.
  const fs::path pids = root_ / "tool.pids";
  auto adapter = MakeExecutableAdapter(
      ScriptTool("sleep 60 &\necho $$ $! > \"" + pids.string() + "\"\nwait\n", 1s));
  const auto start = std::chrono::steady_clock::now();
  Result<DispatchOutcome> outcome = adapter->Dispatch(request_);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.status().code(), StatusCode::kDeadlineExceeded) << outcome.status().ToString();
  EXPECT_LT(elapsed, 60s) << "the step returns within the timeout plus the grace period";
  std::istringstream in(ReadAll(pids));
  pid_t tool = 0;
  pid_t child = 0;
  ASSERT_TRUE(in >> tool >> child);
  EXPECT_FALSE(Running(tool));
  EXPECT_FALSE(Running(child)) << "the tool's child survived the timeout";
}

TEST_F(ExecutableAdapterTest, ShutdownStopsARunningToolWithoutWaitingForItsTimeout) {
  const fs::path pid_file = root_ / "tool.pid";
  auto adapter = MakeExecutableAdapter(
      ScriptTool("echo $$ > \"" + pid_file.string() + "\"\nexec sleep 60\n", 600s));
  std::stop_source shutdown;
  request_.stop = shutdown.get_token();
  std::jthread stopper([&] {
    for (int i = 0; i < 500 && !fs::exists(pid_file); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    shutdown.request_stop();
  });
  Result<DispatchOutcome> outcome = adapter->Dispatch(request_);
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.status().code(), StatusCode::kUnavailable) << outcome.status().ToString();
  EXPECT_NE(outcome.status().message().find("shutting down"), std::string::npos);
  pid_t tool = 0;
  std::istringstream(ReadAll(pid_file)) >> tool;
  ASSERT_GT(tool, 0);
  EXPECT_FALSE(Running(tool));
}

TEST_F(ExecutableAdapterTest, ToolIgnoringSigtermIsKilled) {
  const fs::path pids = root_ / "tool.pids";
  auto adapter = MakeExecutableAdapter(
      ScriptTool("trap '' TERM\nsleep 60 &\necho $$ $! > \"" + pids.string() + "\"\nwait\n", 1s));
  Result<DispatchOutcome> outcome = adapter->Dispatch(request_);
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.status().code(), StatusCode::kDeadlineExceeded);
  std::istringstream in(ReadAll(pids));
  pid_t tool = 0;
  pid_t child = 0;
  ASSERT_TRUE(in >> tool >> child);
  EXPECT_FALSE(Running(tool));
  EXPECT_FALSE(Running(child));
}

TEST_F(ExecutableAdapterTest, ChildrenLeftBehindBySuccessfulToolAreEnded) {
  const fs::path pids = root_ / "tool.pids";
  auto adapter = MakeExecutableAdapter(
      ScriptTool("sleep 60 &\necho $! > \"" + pids.string() + "\"\nexit 0\n"));
  Result<DispatchOutcome> outcome = adapter->Dispatch(request_);
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_FALSE(Running(std::stoi(ReadAll(pids))));
}

TEST_F(ExecutableAdapterTest, ExitCodesMapToStatuses) {
  struct Case {
    std::string script;
    StatusCode code;
    std::string message_part;
  };
  const Case cases[] = {
      {"exit 2\n", StatusCode::kInvalidArgument, "tool script-tool found no suitable input"},
      {"exit 1\n", StatusCode::kUnavailable, "exited with code 1"},
      {"exit 77\n", StatusCode::kUnavailable, "exited with code 77"},
      {"kill -9 $$\n", StatusCode::kUnavailable, "killed by signal 9"},
  };
  for (const Case& c : cases) {
    auto adapter = MakeExecutableAdapter(ScriptTool(c.script));
    Result<DispatchOutcome> outcome = adapter->Dispatch(request_);
    ASSERT_FALSE(outcome.ok()) << c.script;
    EXPECT_EQ(outcome.status().code(), c.code) << c.script << outcome.status().ToString();
    EXPECT_NE(outcome.status().message().find(c.message_part), std::string::npos)
        << outcome.status().message();
  }
  EXPECT_FALSE(IsRetryable(StatusCode::kInvalidArgument)) << "exit 2 is not retried";
}

TEST_F(ExecutableAdapterTest, MissingCommandIsAFailedPrecondition) {
  ToolConfig tool;
  tool.name = "missing";
  tool.command = {(root_ / "no-such-tool").string()};
  Result<DispatchOutcome> outcome = MakeExecutableAdapter(tool)->Dispatch(request_);
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.status().code(), StatusCode::kFailedPrecondition)
      << outcome.status().ToString();

  tool.command = {"conduit-no-such-command-on-path"};
  outcome = MakeExecutableAdapter(tool)->Dispatch(request_);
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(ExecutableAdapterTest, RetryStartsFromEmptyFolders) {
  fs::create_directories(request_.work_dir / "output");
  WriteFile(request_.work_dir / "output" / "stale.dcm", "from a failed attempt");
  auto adapter = MakeExecutableAdapter(ScriptTool("echo fresh > \"$4/fresh.txt\"\n"));
  Result<DispatchOutcome> outcome = adapter->Dispatch(request_);
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  ASSERT_EQ(outcome->result_files.size(), 1u);
  EXPECT_EQ(outcome->result_files[0].filename(), "fresh.txt");
}

}  // namespace
}  // namespace conduit
