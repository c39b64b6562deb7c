// UnlinkFaults: the real file system for a spool (store/file_ops.h), except that Unlink fails
// with the errno held in `unlink_error` while it is not 0. For tests of what a file that could
// not be removed leaves behind.
#pragma once

#include <atomic>
#include <filesystem>
#include <memory>

#include "store/file_ops.h"

namespace conduit::testing {

class UnlinkFaults final : public FileOps {
 public:
  explicit UnlinkFaults(std::atomic<int>& unlink_error)
      : real_(NewPosixFileOps()), unlink_error_(unlink_error) {}
  int SyncFile(const std::filesystem::path& f) override { return real_->SyncFile(f); }
  int SyncDirectory(const std::filesystem::path& d) override { return real_->SyncDirectory(d); }
  int MakeDirectory(const std::filesystem::path& d) override { return real_->MakeDirectory(d); }
  int Rename(const std::filesystem::path& a, const std::filesystem::path& b) override {
    return real_->Rename(a, b);
  }
  int RenameNoReplace(const std::filesystem::path& a, const std::filesystem::path& b) override {
    return real_->RenameNoReplace(a, b);
  }
  int Unlink(const std::filesystem::path& f) override {
    return unlink_error_ != 0 ? unlink_error_.load() : real_->Unlink(f);
  }
  int FreeBytes(const std::filesystem::path& d, uint64_t* n) override {
    return real_->FreeBytes(d, n);
  }

 private:
  std::unique_ptr<FileOps> real_;
  std::atomic<int>& unlink_error_;
};

}  // namespace conduit::testing
