// conduit-bench-durability: what making one received instance durable costs on this disk, for
// five layouts, without network, DICOM parsing or SQLite. Each of THREADS workers plays one
// association: it makes SIZE-byte instances durable one after another; a shared log stands in
// for the index's WAL, with group commit (one fdatasync serves every worker waiting on it).
//
//   fsync-rename  write incoming/N.part, start writeback, fsync it, rename it into a bucket,
//            fsync the bucket; then a 46 KB append to the log (an index commit's measured WAL
//            share) and its group fdatasync. Conduit's order until 2026-11-29, and still its
//            order when a file with the same name must be replaced.
//   rename-fsync  as fsync-rename, but the new file is renamed into its bucket
//            (RENAME_NOREPLACE) before its fsync, so that on a journaling file system one
//            commit covers the file and its name and the bucket's fsync finds at most a cache
//            flush left: Conduit's order for a new key.
//   journal  a write-ahead journal: write incoming/N.part and rename it into its bucket without
//            syncing; append the bytes plus a 4 KB record to a preallocated journal and
//            group-fdatasync it (the one sync before the answer); every 256 instances a
//            syncfs() stands in for the checkpoint that lets the journal be reused (it is
//            preallocated for 256 instances and written from its start again when full).
//   journal+index  journal, plus the index-sized append to a second log and its group
//            fdatasync: the index still committed before the answer (two syncs, not three).
//   append   the floor of any design: only the journal append and its group fdatasync.
//
// Prints one JSON line: instances, seconds, instances_per_s, ms_per_instance (per worker,
// i.e. the latency an association sees), cpu_ms_per_instance (this process, user + system),
// syncs_per_instance (group fdatasyncs of the log).
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;

enum class Layout { kSyncThenRename, kRenameThenSync, kJournal, kJournalIndex, kAppend };

constexpr size_t kChunk = 128 * 1024;      // writes of this size, like a 128 KiB PDU
constexpr size_t kIndexBytes = 46 * 1024;  // WAL bytes per index commit (strace, 2026-11-29)
constexpr size_t kRecordBytes = 4096;      // a journal record's header and attributes
constexpr long kCheckpointEvery = 256;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "conduit-bench-durability: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(1);
}

void WriteAll(int fd, const char* data, size_t size, off_t at, bool positional) {
  while (size > 0) {
    const size_t n = std::min(size, kChunk);
    const ssize_t w = positional ? ::pwrite(fd, data, n, at) : ::write(fd, data, n);
    if (w <= 0) Die("write");
    size -= static_cast<size_t>(w);
    at += w;
  }
}

// An append-only log with group commit: a caller appends its bytes, then waits until a
// fdatasync that started after its append has finished, running one itself if none is running.
class GroupLog {
 public:
  GroupLog(const fs::path& file, off_t capacity) : capacity_(capacity) {
    fd_ = ::open(file.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd_ < 0) Die("open " + file.string());
    // Written, not fallocated: overwriting written blocks needs no metadata at fdatasync.
    std::vector<char> zeros(1 << 20, 0);
    for (off_t at = 0; at < capacity_; at += static_cast<off_t>(zeros.size())) {
      WriteAll(fd_, zeros.data(), zeros.size(), at, true);
    }
    if (::fsync(fd_) != 0) Die("fsync log");
  }
  ~GroupLog() { ::close(fd_); }

  void Append(const char* data, size_t size) {
    off_t at;
    {
      std::lock_guard lock(mu_);
      if (end_ + static_cast<off_t>(size) > capacity_) end_ = 0;
      at = end_;
      end_ += static_cast<off_t>(size);
    }
    WriteAll(fd_, data, size, at, true);
    std::unique_lock lock(mu_);
    const int64_t mine = ++appended_;
    while (synced_ < mine) {
      if (syncing_) {
        cv_.wait(lock);
        continue;
      }
      syncing_ = true;
      const int64_t covers = appended_;
      lock.unlock();
      if (::fdatasync(fd_) != 0) Die("fdatasync log");
      lock.lock();
      syncing_ = false;
      synced_ = covers;
      ++syncs_;
      cv_.notify_all();
    }
  }

  int fd() const { return fd_; }
  int64_t syncs() const { return syncs_; }

 private:
  int fd_ = -1;
  const off_t capacity_;
  std::mutex mu_;
  std::condition_variable cv_;
  off_t end_ = 0;
  int64_t appended_ = 0;
  int64_t synced_ = 0;
  bool syncing_ = false;
  int64_t syncs_ = 0;
};

void SyncPath(const fs::path& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) Die("fsync " + path.string());
  ::close(fd);
}

struct Options {
  Layout layout = Layout::kSyncThenRename;
  int threads = 1;
  long count = 600;
  size_t size = 133 * 1024;
  fs::path dir;
};

void MakeDurable(const Options& o, GroupLog& log, GroupLog& index_log,
                 const std::vector<char>& data, long n) {
  if (o.layout == Layout::kAppend) {
    log.Append(data.data(), o.size + kRecordBytes);
    return;
  }
  const fs::path incoming = o.dir / "incoming" / (std::to_string(n) + ".part");
  char bucket_name[3];
  std::snprintf(bucket_name, sizeof bucket_name, "%02lx", (n * 2654435761UL >> 8) & 0xff);
  const fs::path bucket = o.dir / "instances" / bucket_name;
  const fs::path final_name = bucket / (std::to_string(n) + ".dcm");
  const int fd = ::open(incoming.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
  if (fd < 0) Die("create " + incoming.string());
  WriteAll(fd, data.data(), o.size, 0, false);
  const bool synced_files =
      o.layout == Layout::kSyncThenRename || o.layout == Layout::kRenameThenSync;
  if (synced_files) ::sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
  if (o.layout == Layout::kRenameThenSync) {
    if (::renameat2(AT_FDCWD, incoming.c_str(), AT_FDCWD, final_name.c_str(), RENAME_NOREPLACE) !=
        0) {
      Die("rename");
    }
  }
  if (synced_files && ::fsync(fd) != 0) Die("fsync");
  ::close(fd);
  if (o.layout != Layout::kRenameThenSync && ::rename(incoming.c_str(), final_name.c_str()) != 0) {
    Die("rename");
  }
  if (synced_files) {
    SyncPath(bucket, O_RDONLY | O_DIRECTORY);
    log.Append(data.data(), kIndexBytes);
    return;
  }
  log.Append(data.data(), o.size + kRecordBytes);
  if (o.layout == Layout::kJournalIndex) index_log.Append(data.data(), kIndexBytes);
  if (n % kCheckpointEvery == kCheckpointEvery - 1 && ::syncfs(log.fd()) != 0) Die("syncfs");
}

double CpuSeconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

Options Parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i];
    const std::string value = argv[i + 1];
    if (key == "--layout") {
      if (value == "fsync-rename") {
        o.layout = Layout::kSyncThenRename;
      } else if (value == "rename-fsync") {
        o.layout = Layout::kRenameThenSync;
      } else if (value == "journal") {
        o.layout = Layout::kJournal;
      } else if (value == "journal+index") {
        o.layout = Layout::kJournalIndex;
      } else if (value == "append") {
        o.layout = Layout::kAppend;
      } else {
        std::fprintf(stderr, "unknown layout %s\n", value.c_str());
        std::exit(2);
      }
    } else if (key == "--threads") {
      o.threads = std::max(1, std::atoi(value.c_str()));
    } else if (key == "--count") {
      o.count = std::max(1L, std::atol(value.c_str()));
    } else if (key == "--size") {
      o.size = static_cast<size_t>(std::max(1L, std::atol(value.c_str())));
    } else if (key == "--dir") {
      o.dir = value;
    } else {
      std::fprintf(stderr, "unknown option %s\n", key.c_str());
      std::exit(2);
    }
  }
  if (o.dir.empty() || argc % 2 != 1) {
    std::fprintf(stderr,
                 "usage: conduit-bench-durability --dir DIR "
                 "[--layout fsync-rename|rename-fsync|journal|journal+index|append] "
                 "[--threads N] [--count N] [--size BYTES]\n");
    std::exit(2);
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = Parse(argc, argv);
  std::error_code ec;
  fs::create_directories(o.dir / "incoming", ec);
  for (int i = 0; i < 256 && !ec; ++i) {
    char name[3];
    std::snprintf(name, sizeof name, "%02x", i);
    fs::create_directories(o.dir / "instances" / name, ec);
  }
  if (ec) Die("create " + o.dir.string());
  SyncPath(o.dir / "instances", O_RDONLY | O_DIRECTORY);
  SyncPath(o.dir, O_RDONLY | O_DIRECTORY);
  // The journal holds what the last checkpoint has not covered; the index log is SQLite's
  // WAL, reused once checkpointed.
  const off_t journal_bytes =
      static_cast<off_t>(kCheckpointEvery * (o.size + kRecordBytes)) + (off_t{1} << 20);
  const bool synced_files =
      o.layout == Layout::kSyncThenRename || o.layout == Layout::kRenameThenSync;
  GroupLog log(o.dir / "log", synced_files ? off_t{32} << 20 : journal_bytes);
  GroupLog index_log(o.dir / "index-log",
                     o.layout == Layout::kJournalIndex ? off_t{32} << 20 : off_t{1} << 20);
  ::sync();
  const std::vector<char> data(std::max(o.size + kRecordBytes, kIndexBytes), 0x5a);

  std::atomic<long> next{0};
  const double cpu_start = CpuSeconds();
  const auto start = std::chrono::steady_clock::now();
  {
    std::vector<std::jthread> workers;
    for (int t = 0; t < o.threads; ++t) {
      workers.emplace_back([&] {
        for (long n = next++; n < o.count; n = next++) MakeDurable(o, log, index_log, data, n);
      });
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double cpu = CpuSeconds() - cpu_start;
  const double count = static_cast<double>(o.count);
  std::printf(
      "{\"instances\": %ld, \"seconds\": %.4f, \"instances_per_s\": %.1f, "
      "\"ms_per_instance\": %.4f, \"cpu_ms_per_instance\": %.4f, \"syncs_per_instance\": %.3f}\n",
      o.count, seconds, count / seconds, seconds * 1000.0 * o.threads / count, cpu * 1000.0 / count,
      static_cast<double>(log.syncs()) / count);
  return 0;
}
