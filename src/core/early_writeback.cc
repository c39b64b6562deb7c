#include "core/early_writeback.h"

namespace conduit {

EarlyWriteback::EarlyWriteback(const std::filesystem::path& file, uint64_t step, RangeSync sync)
    : owned_(::open(file.c_str(), O_RDONLY | O_CLOEXEC)),
      fd_(owned_.get()),
      step_(step == 0 ? kDefaultStep : step),
      sync_(sync) {}

EarlyWriteback::EarlyWriteback(int fd, uint64_t step, RangeSync sync)
    : owned_(-1), fd_(fd), step_(step == 0 ? kDefaultStep : step), sync_(sync) {}

void EarlyWriteback::Progress(uint64_t written) {
  if (written < requested_at_ + step_) return;
  Request();
  requested_at_ = written;
}

void EarlyWriteback::Finish() { Request(); }

void EarlyWriteback::Request() {
  // Offset 0, length 0: the whole file; pages already under writeback are skipped.
  if (fd_ >= 0) (void)sync_(fd_, 0, 0, SYNC_FILE_RANGE_WRITE);
}

}  // namespace conduit
