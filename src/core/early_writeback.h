// EarlyWriteback: while a file is still being written (a C-STORE dataset or a STOW-RS part
// streamed to the spool), asks the kernel to start writing its dirty pages to disk every
// `step` bytes and once more when it is complete (sync_file_range with SYNC_FILE_RANGE_WRITE: it
// starts writeback, never waits for it), so that the fsync that makes the file durable waits for
// its tail only. Purely an optimisation: durability still comes from that fsync, and a failed
// request only leaves it more to do. Not thread-safe.
#pragma once

#include <fcntl.h>

#include <cstdint>
#include <filesystem>

#include "core/unique_fd.h"

namespace conduit {

class EarlyWriteback {
 public:
  static constexpr uint64_t kDefaultStep = 1 << 20;
  // sync_file_range(2)'s signature; tests pass their own to count the requests.
  using RangeSync = int (*)(int fd, off_t offset, off_t length, unsigned int flags);

  // Opens `file` (already created) for writeback requests; inert if it cannot. For a writer
  // whose descriptor is out of reach (DCMTK's file stream).
  explicit EarlyWriteback(const std::filesystem::path& file, uint64_t step = kDefaultStep,
                          RangeSync sync = &::sync_file_range);
  // Uses the writer's own descriptor `fd`, which must stay open while this lives.
  explicit EarlyWriteback(int fd, uint64_t step = kDefaultStep,
                          RangeSync sync = &::sync_file_range);

  // `written`: bytes of the file written so far. Asks for writeback of the whole file once a
  // step has passed since the last request.
  void Progress(uint64_t written);
  // The file is complete: asks for writeback of what remains, whatever the step, so that it
  // overlaps the work done before the fsync (reading the instance's attributes).
  void Finish();

 private:
  void Request();

  UniqueFd owned_;  // the descriptor opened here, if any
  int fd_;          // the one requests go to: owned_'s or the writer's
  uint64_t step_;
  RangeSync sync_;
  uint64_t requested_at_ = 0;
};

}  // namespace conduit
