#include "core/early_writeback.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

namespace conduit {
namespace {

namespace fs = std::filesystem;

struct Request {
  int fd;
  off_t offset;
  off_t length;
  unsigned int flags;
};
std::vector<Request> requests;

int RecordingSync(int fd, off_t offset, off_t length, unsigned int flags) {
  requests.push_back({fd, offset, length, flags});
  return 0;
}

class EarlyWritebackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    requests.clear();
    file_ = fs::temp_directory_path() /
            ("conduit-writeback-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::ofstream(file_) << "x";
  }
  void TearDown() override { fs::remove(file_); }
  fs::path file_;
};

TEST_F(EarlyWritebackTest, AsksOncePerStepForTheWholeFileWithoutWaiting) {
  EarlyWriteback writeback(file_, 1000, &RecordingSync);
  writeback.Progress(10);
  writeback.Progress(999);
  EXPECT_TRUE(requests.empty());
  writeback.Progress(1000);
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_GE(requests[0].fd, 0);
  EXPECT_EQ(requests[0].offset, 0);
  EXPECT_EQ(requests[0].length, 0);
  EXPECT_EQ(requests[0].flags, static_cast<unsigned>(SYNC_FILE_RANGE_WRITE)) << "never a wait";
  writeback.Progress(1999);
  EXPECT_EQ(requests.size(), 1u);
  writeback.Progress(5000);  // one request however far it jumped
  EXPECT_EQ(requests.size(), 2u);
  writeback.Progress(5999);
  EXPECT_EQ(requests.size(), 2u);
  writeback.Finish();  // the tail, whatever the step
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[2].length, 0);
  EXPECT_EQ(requests[2].flags, static_cast<unsigned>(SYNC_FILE_RANGE_WRITE));
}

TEST_F(EarlyWritebackTest, ABorrowedDescriptorIsUsedAndLeftOpen) {
  const int fd = ::open(file_.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  {
    EarlyWriteback writeback(fd, 10, &RecordingSync);
    writeback.Progress(10);
    writeback.Finish();
  }
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].fd, fd);
  EXPECT_EQ(requests[1].fd, fd);
  EXPECT_EQ(::fcntl(fd, F_GETFD), FD_CLOEXEC) << "still open: the writer owns it";
  ::close(fd);
}

TEST_F(EarlyWritebackTest, AFileThatCannotBeOpenedMakesItInert) {
  EarlyWriteback writeback(file_.string() + ".missing", 1, &RecordingSync);
  writeback.Progress(1'000'000);
  writeback.Finish();
  EXPECT_TRUE(requests.empty());
}

TEST_F(EarlyWritebackTest, TheRealCallLeavesTheFileIntact) {
  const std::string data(3 << 20, 'd');
  {
    std::ofstream out(file_, std::ios::binary | std::ios::trunc);
    EarlyWriteback writeback(file_);
    for (size_t at = 0; at < data.size(); at += 64 << 10) {
      out.write(data.data() + at, 64 << 10);
      out.flush();
      writeback.Progress(at + (64 << 10));
    }
  }
  EXPECT_EQ(fs::file_size(file_), data.size());
}

}  // namespace
}  // namespace conduit
