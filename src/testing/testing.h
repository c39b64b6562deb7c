// Test support shared by every component's tests: temporary folders, free ports, small DICOM
// files made with DCMTK, and a real storescp peer on 127.0.0.1. Linked into tests only.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "store/index.h"

namespace conduit::testing {

inline constexpr const char* kCtImageStorage = "1.2.840.10008.5.1.4.1.1.2";
inline constexpr const char* kSecondaryCaptureStorage = "1.2.840.10008.5.1.4.1.1.7";

// A fresh folder under the system temp dir, removed (recursively) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Writes a small Part 10 file (explicit VR little endian) with the given UIDs and a
// 4x4 8-bit image; no patient data beyond a fixed test name.
Status WriteTestDicom(const std::filesystem::path& file, const std::string& study_uid,
                      const std::string& series_uid, const std::string& sop_instance_uid,
                      const std::string& sop_class_uid = kCtImageStorage);

// Records a CT instance of `study`/`series` in the index as ingest does (with its "receive"
// audit event), received at `at`, stored under `spool_key`.
Status PutTestInstance(Index& index, const std::string& study_uid, const std::string& series_uid,
                       const std::string& sop_instance_uid, TimePoint at,
                       const std::string& spool_key);

// Creates a job of route "route" and tool "tool" for `study_uid`, delivering to
// `destinations` (state kDelivering, created at `at`), as the router would; returns it with
// its id.
Result<JobRecord> CreateDeliveringJob(Index& index, const std::string& study_uid,
                                      std::vector<std::string> destinations, TimePoint at);

// How many of the newest 1000 audit entries have `action` and `outcome` (-1 if unreadable).
int CountAudited(Index& index, const std::string& action, const std::string& outcome);

// Peak resident memory of this process so far (VmHWM in /proc/self/status), in KiB; -1 if
// unknown. Tests of bounded memory compare it before and after the work.
int64_t PeakResidentKb();

// A TCP port on 127.0.0.1 that was free a moment ago.
int FreePort();

// storescp listening on 127.0.0.1 as `ae_title`, writing what it receives to `output_dir`.
// The process runs with TCP_NODELAY=1 and is killed (and reaped) on destruction.
class StorescpPeer {
 public:
  // Starts storescp and waits (up to 15 s) until it accepts connections.
  // `extra_args` go before the port (e.g. "--refuse").
  static Result<std::unique_ptr<StorescpPeer>> Start(const std::filesystem::path& output_dir,
                                                     const std::string& ae_title,
                                                     std::vector<std::string> extra_args = {});
  ~StorescpPeer();
  int port() const { return port_; }
  // Regular files storescp has written so far.
  int ReceivedCount() const;
  // Waits (up to `timeout`) until at least `n` files were received; returns the count.
  int WaitForReceived(int n, std::chrono::milliseconds timeout = std::chrono::seconds(30)) const;
  void Stop();

 private:
  StorescpPeer(pid_t pid, int port, std::filesystem::path output_dir)
      : pid_(pid), port_(port), output_dir_(std::move(output_dir)) {}
  pid_t pid_;
  int port_;
  std::filesystem::path output_dir_;
};

}  // namespace conduit::testing
