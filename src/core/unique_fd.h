// UniqueFd: a file descriptor owned by one scope, closed when it ends. Close() closes it
// early and reports an error the kernel kept for the close (deferred write errors).
#pragma once

#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <string>

#include "core/status.h"

namespace conduit {

class UniqueFd {
 public:
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool ok() const { return fd_ >= 0; }

  // Errors: the errno of close(2), naming `file`.
  Status Close(const std::filesystem::path& file) {
    const int fd = fd_;
    fd_ = -1;
    if (fd >= 0 && ::close(fd) != 0) return ErrnoStatus(errno, "closing " + file.string());
    return Status::Ok();
  }

 private:
  int fd_;
};

}  // namespace conduit
