// Test support for src/dicom tests: temp dirs, generated instances, an IngestSink that commits
// into a directory, free ports and DCMTK command-line peers. Test-only; not in conduit_dicom.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "dicom/dimse_listener.h"
#include "testing/testing.h"

namespace conduit::testing {

enum class Syntax { kExplicitLittle, kImplicitLittle, kDeflated, kJpegLsLossless };

struct CtSpec {
  std::string study_uid = "1.2.826.0.1.3680043.10.1137.1";
  std::string series_uid = "1.2.826.0.1.3680043.10.1137.1.1";
  std::string sop_instance_uid = "1.2.826.0.1.3680043.10.1137.1.1.1";
  int instance_number = 1;
  Syntax syntax = Syntax::kExplicitLittle;
};

// Writes a small (16x16, 16-bit) CT image as a Part 10 file; aborts the test on failure.
void WriteCtImage(const std::filesystem::path& file, const CtSpec& spec);

// CT images 1..n of one series under `dir`, alternately explicit and implicit little endian
// unless `syntax` is given.
std::vector<std::filesystem::path> WriteCtSeries(const std::filesystem::path& dir, int n,
                                                 const std::string& study_uid);

// An IngestSink committing instances into <root>/committed/<SOP Instance UID>.dcm.
class CommittingSink : public IngestSink {
 public:
  explicit CommittingSink(std::filesystem::path root);

  std::filesystem::path NewIncomingPath() override;
  Status CheckCapacity() override;
  Status OnInstance(const ReceivedInstance& instance) override;
  void OnRejected(const AssociationInfo& association, const Status& why) override;
  Status OnMpps(const MppsEvent& event) override;
  // Records the report and answers OK.
  Status OnCommitmentReport(const CommitmentReport& report,
                            const AssociationInfo& association) override;

  void set_capacity(Status s);
  void set_instance_outcome(Status s);

  std::vector<ReceivedInstance> instances() const;
  std::vector<Status> rejected() const;
  std::vector<MppsEvent> mpps() const;
  std::vector<CommitmentReport> commitment_reports() const;
  const std::filesystem::path& incoming_dir() const { return incoming_; }
  const std::filesystem::path& committed_dir() const { return committed_; }

 private:
  const std::filesystem::path incoming_;
  const std::filesystem::path committed_;
  std::atomic<int> next_{0};
  mutable std::mutex mu_;
  Status capacity_;
  Status instance_outcome_;
  std::vector<ReceivedInstance> instances_;
  std::vector<Status> rejected_;
  std::vector<MppsEvent> mpps_;
  std::vector<CommitmentReport> commitment_reports_;
};

// Runs a command (argv[0] looked up in PATH) with TCP_NODELAY=1; returns its exit code and
// its combined output. Aborts the test if it runs longer than `timeout`.
struct CommandResult {
  int exit_code = -1;
  std::string output;
};
CommandResult RunCommand(const std::vector<std::string>& argv,
                         std::chrono::seconds timeout = std::chrono::seconds(60));

// A background process (e.g. storescp) killed on destruction.
class Process {
 public:
  explicit Process(const std::vector<std::string>& argv);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

 private:
  pid_t pid_ = -1;
};

// Waits until something accepts TCP connections on 127.0.0.1:port (bounded).
bool WaitForPort(int port, std::chrono::seconds timeout = std::chrono::seconds(20));

// A TCP connection to 127.0.0.1:port that sends `bytes` (maybe none) and then nothing more:
// a peer that stalls before or inside its A-ASSOCIATE-RQ or TLS handshake. Drip() makes it a
// slow peer instead. Closed on destruction.
class SilentPeer {
 public:
  // `source`: the local address to connect from (any of 127.0.0.0/8 reaches the listener),
  // empty for the system's choice.
  explicit SilentPeer(int port, const std::string& bytes = "", const std::string& source = "");
  ~SilentPeer();
  // From now on sends one zero byte every `interval`, on a thread of its own, until the
  // connection fails or the peer is destroyed.
  void Drip(std::chrono::milliseconds interval);
  SilentPeer(const SilentPeer&) = delete;
  SilentPeer& operator=(const SilentPeer&) = delete;
  bool connected() const { return fd_ >= 0; }
  // True once the other side has closed the connection (read gives end of file or a reset),
  // waiting at most `timeout`.
  bool ClosedByPeer(std::chrono::seconds timeout) const;

 private:
  int fd_ = -1;
  std::jthread dripper_;
};

// Polls `done` until true or `timeout`.
template <typename F>
bool Eventually(F done, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

}  // namespace conduit::testing
