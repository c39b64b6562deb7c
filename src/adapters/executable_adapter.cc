// The local-executable adapter: the tool is a program run once per job with an input folder
// holding the study and an output folder it fills with results. No shell is involved: the
// configured argv is spawned as is, in its own process group so a timeout can end the tool
// and everything it started.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "adapters/tool_adapter.h"
#include "core/unique_fd.h"
#include "store/index.h"

extern char** environ;

namespace conduit {
namespace {

namespace fs = std::filesystem;
using std::chrono::steady_clock;

// How long a tool gets between SIGTERM and SIGKILL.
constexpr std::chrono::seconds kTermGrace{5};
// Exit code by which a tool says the study holds nothing it can work on.
constexpr int kExitNoSuitableInput = 2;

// Appends an adapter note to the job log; the log is for people, so failures are ignored.
void Note(int log_fd, const std::string& text) {
  std::string line = "conduit: " + text + "\n";
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(log_fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    p += n;
    left -= static_cast<size_t>(n);
  }
}

// Empties (or creates) `dir`.
Status FreshDirectory(const fs::path& dir) {
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (ec) return ErrnoStatus(ec.value(), "remove " + dir.string());
  fs::create_directories(dir, ec);
  if (ec) return ErrnoStatus(ec.value(), "create " + dir.string());
  return Status::Ok();
}

// Puts each input into `dir` under a unique name that keeps the input order visible:
// a hard link where possible, a copy across filesystems (or where links are refused).
Status LinkInputs(const std::vector<fs::path>& inputs, const fs::path& dir) {
  for (size_t i = 0; i < inputs.size(); ++i) {
    char prefix[32];
    std::snprintf(prefix, sizeof(prefix), "%06zu_", i + 1);
    const fs::path target = dir / (prefix + inputs[i].filename().string());
    std::error_code ec;
    fs::create_hard_link(inputs[i], target, ec);
    if (!ec) continue;
    if (ec == std::errc::no_such_file_or_directory) {
      return ErrnoStatus(ec.value(), "link input " + inputs[i].string());
    }
    ec.clear();
    fs::copy_file(inputs[i], target, fs::copy_options::overwrite_existing, ec);
    if (ec) return ErrnoStatus(ec.value(), "copy input " + inputs[i].string());
  }
  return Status::Ok();
}

// Every regular file under `dir`, recursively, sorted; symlinks are not followed.
Result<std::vector<fs::path>> RegularFilesUnder(const fs::path& dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, ec);
  if (ec) return ErrnoStatus(ec.value(), "list " + dir.string());
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    std::error_code sec;
    if (it->symlink_status(sec).type() == fs::file_type::regular) files.push_back(it->path());
  }
  if (ec) return ErrnoStatus(ec.value(), "list " + dir.string());
  std::sort(files.begin(), files.end());
  return files;
}

// Has the child exited? Leaves it unreaped (a zombie) so its pid, and with it the process
// group id, cannot be reused while we still signal the group.
bool HasExited(pid_t pid) {
  siginfo_t info{};
  while (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) < 0) {
    if (errno != EINTR) return true;  // ECHILD: nothing left to wait for
  }
  return info.si_pid == pid;
}

// Polls until the child exits, `deadline` passes or `stop` is requested; true if it exited.
bool WaitForExit(pid_t pid, steady_clock::time_point deadline, std::stop_token stop = {}) {
  auto pause = std::chrono::milliseconds(2);
  while (!HasExited(pid)) {
    if (steady_clock::now() >= deadline || stop.stop_requested()) return false;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
  return true;
}

// Processes of group `pgid` still running (zombies excluded: once reparented, they are their
// new parent's to reap). Read from /proc/<pid>/stat: "pid (comm) state ppid pgrp ...".
int LiveGroupMembers(pid_t pgid) {
  int live = 0;
  std::error_code ec;
  for (fs::directory_iterator it("/proc", ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(it->path() / "stat");
    std::string stat;
    if (!std::getline(in, stat)) continue;  // exited meanwhile
    const size_t paren = stat.rfind(')');
    if (paren == std::string::npos) continue;
    std::istringstream fields(stat.substr(paren + 1));
    char state = 0;
    long ppid = 0;
    long pgrp = 0;
    if (!(fields >> state >> ppid >> pgrp)) continue;
    if (pgrp == pgid && state != 'Z' && state != 'X') ++live;
  }
  return live;
}

// Kills every process of group `pgid` and waits (bounded) until none runs.
void KillGroup(pid_t pgid) {
  const auto deadline = steady_clock::now() + std::chrono::seconds(2);
  do {
    ::kill(-pgid, SIGKILL);
    if (LiveGroupMembers(pgid) == 0) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  } while (steady_clock::now() < deadline);
  spdlog::warn("process group {} still has running members after SIGKILL", pgid);
}

// Reaps the child and returns its wait status.
int Reap(pid_t pid) {
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  return wstatus;
}

class ExecutableAdapter final : public ToolAdapter {
 public:
  explicit ExecutableAdapter(ToolConfig tool) : tool_(std::move(tool)) {}

  Result<DispatchOutcome> Dispatch(const DispatchRequest& request) override {
    const std::string what = "tool " + tool_.name + " job " + std::to_string(request.job.id.value);
    if (tool_.command.empty()) return FailedPrecondition(what + ": no command configured");

    const fs::path input_dir = request.work_dir / "input";
    const fs::path output_dir = request.work_dir / "output";
    RETURN_IF_ERROR(FreshDirectory(input_dir).WithContext(what));
    RETURN_IF_ERROR(FreshDirectory(output_dir).WithContext(what));
    RETURN_IF_ERROR(LinkInputs(request.inputs, input_dir).WithContext(what));

    std::error_code ec;
    if (request.log_file.has_parent_path()) {
      fs::create_directories(request.log_file.parent_path(), ec);
    }
    UniqueFd log(::open(request.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
    if (log.get() < 0) return ErrnoStatus(errno, what + ": open log " + request.log_file.string());

    std::vector<std::string> args = tool_.command;
    args.insert(args.end(), {"--input", input_dir.string(), "--output", output_dir.string()});
    Note(log.get(), "running tool " + tool_.name + " on " + std::to_string(request.inputs.size()) +
                        " instance(s), timeout " + std::to_string(tool_.timeout.count()) + " ms");

    ASSIGN_OR_RETURN(pid_t pid, Spawn(args, request.work_dir, log.get(), what));
    spdlog::info("{}: started pid {} for study {}", what, pid, StudyRef(request.job.study_uid));

    const auto deadline = steady_clock::now() + tool_.timeout;
    bool timed_out = false;
    if (!WaitForExit(pid, deadline, request.stop)) {
      timed_out = !request.stop.stop_requested();
      ::kill(-pid, SIGTERM);
      WaitForExit(pid, steady_clock::now() + kTermGrace);
    }
    // Whatever the tool left running in its group ends with it. The leader is reaped only
    // afterwards, so the group id cannot be reused while it is being signalled.
    ::kill(-pid, SIGKILL);
    const int wstatus = Reap(pid);
    KillGroup(pid);

    if (request.stop.stop_requested()) {
      Note(log.get(), "tool " + tool_.name + " stopped: the gateway is shutting down");
      return Unavailable(what + ": stopped because the gateway is shutting down");
    }
    if (timed_out) {
      Note(log.get(), "tool " + tool_.name + " timed out and was stopped");
      return DeadlineExceeded(what + ": timed out after " + std::to_string(tool_.timeout.count()) +
                              " ms");
    }
    if (WIFSIGNALED(wstatus)) {
      const int sig = WTERMSIG(wstatus);
      Note(log.get(), "tool " + tool_.name + " killed by signal " + std::to_string(sig));
      return Unavailable(what + ": killed by signal " + std::to_string(sig));
    }
    const int code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
    Note(log.get(), "tool " + tool_.name + " exited with code " + std::to_string(code));
    if (code == kExitNoSuitableInput) {
      return InvalidArgument("tool " + tool_.name + " found no suitable input");
    }
    if (code != 0) return Unavailable(what + ": exited with code " + std::to_string(code));

    ASSIGN_OR_RETURN(std::vector<fs::path> results, RegularFilesUnder(output_dir));
    spdlog::info("{}: finished with {} result file(s)", what, results.size());
    DispatchOutcome outcome;
    outcome.results_pending = false;
    outcome.result_files = std::move(results);
    return outcome;
  }

 private:
  // Starts the tool with stdin from /dev/null, stdout and stderr to the log, in `cwd`, in a
  // new process group, with default signal dispositions and an empty signal mask.
  Result<pid_t> Spawn(const std::vector<std::string>& args, const fs::path& cwd, int log_fd,
                      const std::string& what) {
    std::vector<char*> argv;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, log_fd, STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, log_fd, STDERR_FILENO);
    posix_spawn_file_actions_addchdir_np(&actions, cwd.c_str());
    sigset_t empty;
    sigset_t all;
    sigemptyset(&empty);
    sigfillset(&all);
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    posix_spawnattr_setsigmask(&attr, &empty);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(
        &attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

    pid_t pid = -1;
    const int err = ::posix_spawnp(&pid, argv[0], &actions, &attr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (err == 0) return pid;

    const std::string msg = what + ": cannot run " + args[0] + ": " + std::strerror(err);
    Note(log_fd, msg);
    if (err == ENOENT || err == EACCES || err == ENOEXEC || err == ENOTDIR || err == EPERM) {
      return FailedPrecondition(msg);
    }
    return Unavailable(msg);  // EAGAIN, ENOMEM: the machine is busy now
  }

  const ToolConfig tool_;
};

}  // namespace

std::unique_ptr<ToolAdapter> MakeExecutableAdapter(const ToolConfig& tool) {
  return std::make_unique<ExecutableAdapter>(tool);
}

}  // namespace conduit
