// FileOps: the system calls through which the spool makes bytes durable, swappable so tests
// can inject ENOSPC or EIO at any step (LevelDB's Env, reduced to what Commit needs).
// Internal to store. Each call returns 0 or the errno of the failure.
// Thread safety: implementations must allow concurrent calls.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>

#include "core/status.h"
#include "store/spool.h"

namespace conduit {

class FileOps {
 public:
  virtual ~FileOps() = default;
  virtual int SyncFile(const std::filesystem::path& file) = 0;      // open, fsync, close
  virtual int SyncDirectory(const std::filesystem::path& dir) = 0;  // open, fsync, close
  virtual int MakeDirectory(const std::filesystem::path& dir) = 0;  // EEXIST when present
  virtual int Rename(const std::filesystem::path& from, const std::filesystem::path& to) = 0;
  // EEXIST when `to` exists; EINVAL or ENOSYS where the file system cannot refuse to replace.
  virtual int RenameNoReplace(const std::filesystem::path& from,
                              const std::filesystem::path& to) = 0;
  virtual int Unlink(const std::filesystem::path& file) = 0;  // ENOENT when absent
  virtual int FreeBytes(const std::filesystem::path& dir, uint64_t* free_bytes) = 0;
};

// The real file system.
std::unique_ptr<FileOps> NewPosixFileOps();

// Spool::Open with the given file system layer (Spool::Open uses NewPosixFileOps()).
Result<std::unique_ptr<Spool>> OpenSpoolWithFileOps(const SpoolOptions& options,
                                                    std::unique_ptr<FileOps> ops);

}  // namespace conduit
