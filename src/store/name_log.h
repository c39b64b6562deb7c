// NameLog: the spool's record of keys whose file the index has yet to settle: named under
// instances/ but not recorded yet, or about to lose their rows. A line "<key> <SOP Instance
// UID>" is appended before the name is made or the rows go (never synced: it serves the
// process crash, where the page cache survives) and forgotten once settled. Files are
// <dir>/<run>-<generation>.log; a generation is deleted once it is no longer written and every
// key in it is settled. Internal to store; thread-safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/ids.h"
#include "core/status.h"

namespace conduit {

class NameLog {
 public:
  // `run` tells this process's files from earlier ones: unique per process, [0-9a-z] only.
  // A generation is closed once it holds at least `rotate_bytes`.
  NameLog(std::filesystem::path dir, std::string run, uint64_t rotate_bytes = 1 << 20);
  ~NameLog();  // deletes this run's files whose keys are all recorded
  NameLog(const NameLog&) = delete;
  NameLog& operator=(const NameLog&) = delete;

  // Before `key` is named (or its rows deleted). A failure to write is logged and does not
  // stop the caller.
  void Add(const std::string& key, const SopInstanceUid& sop);
  // Forgets one Add of `key`; an unknown key is ignored.
  void Settle(const std::string& key);

  struct Entry {
    std::string key;
    SopInstanceUid sop;
  };
  struct Earlier {
    std::vector<Entry> entries;  // lines that do not parse (a torn last line) are skipped
    std::vector<std::filesystem::path> files;
  };
  // The entries of every log in `dir` that is not this run's.
  Result<Earlier> ReadEarlier() const;

 private:
  void CloseGenerationLocked();
  void DeleteIfDoneLocked(uint64_t generation);
  std::filesystem::path FileOf(uint64_t generation) const;

  const std::filesystem::path dir_;
  const std::string run_;
  const uint64_t rotate_bytes_;
  std::mutex mu_;
  int fd_ = -1;  // the open generation's file, created at its first line
  uint64_t generation_ = 0;
  uint64_t bytes_ = 0;
  bool warned_ = false;
  std::map<uint64_t, int64_t> unsettled_;  // per generation with a file: keys not settled
  std::unordered_multimap<std::string, uint64_t> generation_of_;
};

}  // namespace conduit
