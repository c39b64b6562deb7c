#include "store/spool.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <random>
#include <set>
#include <shared_mutex>
#include <system_error>

#include "core/sha256.h"
#include "store/file_ops.h"
#include "store/name_log.h"

namespace conduit {
namespace fs = std::filesystem;

namespace {

// open + fsync + close; 0 or errno.
int SyncByPath(const fs::path& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return errno;
  int err = ::fsync(fd) == 0 ? 0 : errno;
  if (::close(fd) != 0 && err == 0) err = errno;
  return err;
}

class PosixFileOps final : public FileOps {
 public:
  int SyncFile(const fs::path& file) override { return SyncByPath(file, O_RDONLY); }
  int SyncDirectory(const fs::path& dir) override {
    return SyncByPath(dir, O_RDONLY | O_DIRECTORY);
  }
  int MakeDirectory(const fs::path& dir) override {
    return ::mkdir(dir.c_str(), 0750) == 0 ? 0 : errno;
  }
  int Rename(const fs::path& from, const fs::path& to) override {
    return ::rename(from.c_str(), to.c_str()) == 0 ? 0 : errno;
  }
  int RenameNoReplace(const fs::path& from, const fs::path& to) override {
    return ::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0 ? 0
                                                                                            : errno;
  }
  int Unlink(const fs::path& file) override { return ::unlink(file.c_str()) == 0 ? 0 : errno; }
  int FreeBytes(const fs::path& dir, uint64_t* free_bytes) override {
    struct statvfs st;
    if (::statvfs(dir.c_str(), &st) != 0) return errno;
    *free_bytes = static_cast<uint64_t>(st.f_bavail) * static_cast<uint64_t>(st.f_frsize);
    return 0;
  }
};

// The name of bucket `i` (0-255) under instances/: two lowercase hex digits, a key's first two.
std::string BucketName(int i) {
  static constexpr char kHex[] = "0123456789abcdef";
  return std::string{kHex[(i >> 4) & 15], kHex[i & 15]};
}

// The kernel's id of the current boot, or "" if it cannot be read.
std::string ReadBootId(const fs::path& file) {
  char id[64] = {};
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  const ssize_t n = ::read(fd, id, sizeof id - 1);
  ::close(fd);
  std::string out(id, n > 0 ? static_cast<size_t>(n) : 0);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  // A UUID; anything else would not be comparable.
  for (char c : out) {
    if (!std::isxdigit(static_cast<unsigned char>(c)) && c != '-') return "";
  }
  return out;
}

// What the lock file says of the process before: "stopped", "<pid> <boot id>" (it never
// stopped), or anything else (none, or one that did not record its boot).
PreviousStop ReadPreviousStop(std::string_view content, const std::string& boot_id) {
  while (!content.empty() && (content.back() == '\n' || content.back() == ' ')) {
    content.remove_suffix(1);
  }
  if (content == "stopped") return PreviousStop::kClean;
  const size_t space = content.find(' ');
  if (space == std::string_view::npos || boot_id.empty()) return PreviousStop::kUnknown;
  const std::string_view previous_boot = content.substr(space + 1);
  if (previous_boot.empty()) return PreviousStop::kUnknown;
  return previous_boot == boot_id ? PreviousStop::kCrashed : PreviousStop::kHostRestarted;
}

std::string Hex64(uint64_t v) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, v >>= 4) out[i] = kHex[v & 0xf];
  return out;
}

class SpoolImpl final : public Spool {
 public:
  SpoolImpl(SpoolOptions options, std::unique_ptr<FileOps> ops)
      : options_(std::move(options)),
        ops_(std::move(ops)),
        incoming_(options_.root / "incoming"),
        instances_(options_.root / "instances"),
        jobs_(options_.root / "jobs"),
        rng_(std::random_device{}()),
        names_(options_.root / "names", Hex64(rng_())) {}

  fs::path NewIncomingPath() override {
    uint64_t nonce;
    {
      std::lock_guard lock(rng_mu_);
      nonce = rng_();
    }
    return incoming_ / (std::to_string(::getpid()) + "-" + std::to_string(counter_++) + "-" +
                        Hex64(nonce) + ".part");
  }

  Status CheckSpace() const override {
    uint64_t free_bytes = 0;
    if (int err = ops_->FreeBytes(options_.root, &free_bytes); err != 0) {
      return ErrnoStatus(err, "spool check space: statvfs " + options_.root.string());
    }
    if (free_bytes < options_.min_free_bytes) {
      return ResourceExhausted("spool " + options_.root.string() + ": " +
                               std::to_string(free_bytes) + " bytes free, below the minimum of " +
                               std::to_string(options_.min_free_bytes));
    }
    return Status::Ok();
  }

  Result<std::string> Commit(const fs::path& incoming, const SopInstanceUid& sop) override {
    const std::string key = Sha256Hex(sop.str());
    const std::string what = "spool commit " + key.substr(0, 16);
    std::error_code ec;
    if (!fs::is_regular_file(incoming, ec)) {
      return NotFound(what + ": no incoming file " + incoming.filename().string());
    }
    Status st = CommitSteps(incoming, key, sop, what);
    if (!st.ok()) {
      int err = ops_->Unlink(incoming);
      if (err != 0 && err != ENOENT) {
        spdlog::warn("{}: removing incoming file after failure: {}", what, std::strerror(err));
      }
      return st;
    }
    return key;
  }

  void Settled(const std::string& key) override { names_.Settle(key); }
  void Track(const std::string& key, const SopInstanceUid& sop) override { names_.Add(key, sop); }

  Result<int> RemoveUnrecorded(const RecordedCheck& recorded) override {
    ASSIGN_OR_RETURN(NameLog::Earlier earlier, names_.ReadEarlier());
    if (earlier.files.empty()) return 0;
    std::set<std::string> checked;
    std::set<fs::path> buckets;
    int removed = 0;
    for (const NameLog::Entry& entry : earlier.entries) {
      if (!checked.insert(entry.key).second) continue;
      ASSIGN_OR_RETURN(bool is_recorded, recorded(entry.key, entry.sop));
      if (is_recorded) continue;
      const fs::path file = PathOf(entry.key);
      if (int err = ops_->Unlink(file); err == ENOENT) {
        continue;
      } else if (err != 0) {
        return ErrnoStatus(err, "spool: remove a file the index never recorded");
      }
      ++removed;
      buckets.insert(file.parent_path());
    }
    // The removals are durable before the logs that name them go.
    for (const fs::path& bucket : buckets) {
      if (int err = ops_->SyncDirectory(bucket); err != 0) {
        return ErrnoStatus(err, "spool: fsync directory " + bucket.string());
      }
    }
    for (const fs::path& log : earlier.files) {
      if (int err = ops_->Unlink(log); err != 0 && err != ENOENT) {
        return ErrnoStatus(err, "spool: delete name log " + log.string());
      }
    }
    spdlog::info(
        "spool: checked {} key(s) named by an earlier process against the index; removed {} "
        "file(s) it never recorded",
        checked.size(), removed);
    return removed;
  }

  fs::path PathOf(const std::string& key) const override {
    // Keys come from Commit; anything else maps to a path that never exists, so a corrupt
    // key can never name a file outside the spool.
    if (!IsSpoolKey(key)) return instances_ / "invalid-key";
    return instances_ / key.substr(0, 2) / (key + ".dcm");
  }

  Status Remove(const std::string& key) override {
    if (!IsSpoolKey(key)) return InvalidArgument("spool remove: malformed key");
    int err = ops_->Unlink(PathOf(key));
    if (err != 0 && err != ENOENT) return ErrnoStatus(err, "spool remove " + key.substr(0, 16));
    return Status::Ok();
  }

  Status ListBucket(int bucket, std::vector<std::string>* keys,
                    std::vector<fs::path>* strays) const override {
    if (bucket < 0 || bucket > 255) {
      return InvalidArgument("spool list bucket: no bucket " + std::to_string(bucket));
    }
    const std::string name = BucketName(bucket);
    const fs::path dir = instances_ / name;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string file = it->path().filename().string();
      const std::string key = file.substr(0, 64);
      if (file.size() == 68 && file.ends_with(".dcm") && IsSpoolKey(key) && key.starts_with(name)) {
        keys->push_back(key);
      } else {
        strays->push_back(it->path());
      }
    }
    if (ec) return ErrnoStatus(ec.value(), "spool: list " + dir.string());
    std::sort(keys->begin(), keys->end());
    return Status::Ok();
  }

  Result<fs::path> JobDir(int64_t job_id) override {
    if (job_id <= 0)
      return InvalidArgument("spool job dir: invalid job id " + std::to_string(job_id));
    fs::path dir = jobs_ / std::to_string(job_id);
    std::error_code ec;
    fs::remove_all(dir, ec);
    if (ec) return ErrnoStatus(ec.value(), "spool job dir " + std::to_string(job_id) + ": empty");
    fs::create_directories(dir, ec);
    if (ec) return ErrnoStatus(ec.value(), "spool job dir " + std::to_string(job_id) + ": create");
    return dir;
  }

  Result<bool> RemoveJobDir(int64_t job_id) override {
    if (job_id <= 0)
      return InvalidArgument("spool remove job dir: invalid job id " + std::to_string(job_id));
    std::error_code ec;
    const std::uintmax_t removed = fs::remove_all(jobs_ / std::to_string(job_id), ec);
    if (ec) return ErrnoStatus(ec.value(), "spool remove job dir " + std::to_string(job_id));
    return removed > 0;
  }

  Result<std::vector<int64_t>> ListJobDirs() const override {
    std::vector<int64_t> ids;
    std::error_code ec;
    for (fs::directory_iterator it(jobs_, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      std::error_code type_ec;
      if (name.empty() || name.size() > 18 || !it->is_directory(type_ec) ||
          name.find_first_not_of("0123456789") != std::string::npos) {
        continue;  // a job's log (<id>.log), or not Conduit's
      }
      ids.push_back(std::stoll(name));
    }
    if (ec) return ErrnoStatus(ec.value(), "spool: list " + jobs_.string());
    std::sort(ids.begin(), ids.end());
    return ids;
  }

  const fs::path& root() const override { return options_.root; }
  PreviousStop previous_stop() const override { return previous_stop_; }

  std::shared_mutex& expiry_lock() override { return expiry_lock_; }

  // Takes the spool's lock, creates its directories and removes what a crash left in
  // incoming/.
  Status Prepare() {
    const std::string what = "spool open " + options_.root.string();
    {
      std::error_code ec;
      fs::create_directories(options_.root, ec);
      if (ec) return InvalidArgument(what + ": create: " + ec.message());
    }
    RETURN_IF_ERROR(Lock(what));
    for (const fs::path& dir : {options_.root, incoming_, instances_, jobs_,
                                options_.root / "quarantine", options_.root / "names"}) {
      std::error_code ec;
      fs::create_directories(dir, ec);
      if (ec) return InvalidArgument(what + ": create " + dir.string() + ": " + ec.message());
      if (::access(dir.c_str(), W_OK | X_OK) != 0) {
        return InvalidArgument(what + ": " + dir.string() +
                               " is not writable: " + std::strerror(errno));
      }
    }
    int removed = 0;
    std::error_code ec;
    for (fs::directory_iterator it(incoming_, ec), end; !ec && it != end; it.increment(ec)) {
      std::error_code rm_ec;
      fs::remove_all(it->path(), rm_ec);
      if (rm_ec) return InvalidArgument(what + ": remove partial file: " + rm_ec.message());
      ++removed;
    }
    if (ec) return InvalidArgument(what + ": list incoming: " + ec.message());
    if (removed > 0) spdlog::info("spool: removed {} partial file(s) left in incoming/", removed);

    // The 256 buckets exist, durably, before the first commit: a commit then syncs only the
    // bucket it renames into (one directory fsync per instance).
    for (int i = 0; i < 256; ++i) {
      const fs::path bucket = instances_ / BucketName(i);
      fs::create_directories(bucket, ec);
      if (ec) return InvalidArgument(what + ": create " + bucket.string() + ": " + ec.message());
      durable_dirs_.insert(bucket.string());
    }
    for (const fs::path& dir : {instances_, options_.root}) {
      if (int err = ops_->SyncDirectory(dir); err != 0) {
        return InvalidArgument(what + ": fsync " + dir.string() + ": " + std::strerror(err));
      }
    }
    return Status::Ok();
  }

 private:
  // One process at a time: a second one would remove the first one's partial files, and
  // files it has named but not yet recorded.
  Status Lock(const std::string& what) {
    const fs::path path = options_.root / "lock";
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
      return InvalidArgument(what + ": open " + path.string() + ": " + std::strerror(errno));
    lock_.fd = fd;  // closed by ~LockFd, also on the errors below
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      if (err != EWOULDBLOCK) {
        return InvalidArgument(what + ": lock " + path.string() + ": " + std::strerror(err));
      }
      char holder[32] = {};
      const ssize_t n = ::pread(fd, holder, sizeof holder - 1, 0);
      // "<pid> <boot id>" as the holder recorded it.
      std::string pid = n > 0 ? std::string(holder, static_cast<size_t>(n)) : "";
      pid = pid.substr(0, pid.find_first_of(" \n"));
      if (pid.empty()) pid = "unknown";
      return FailedPrecondition(what + ": in use by another process (pid " + pid +
                                "): a data_dir serves one conduit process at a time");
    }
    char before[128] = {};
    const ssize_t n = ::pread(fd, before, sizeof before - 1, 0);
    boot_id_ = ReadBootId(options_.boot_id_file);
    previous_stop_ =
        ReadPreviousStop(n > 0 ? std::string_view(before, static_cast<size_t>(n)) : "", boot_id_);
    // Synced, so that after a power failure the next start knows this process was running.
    if (!lock_.Record(std::to_string(::getpid()) + " " + boot_id_ + "\n")) {
      spdlog::warn("{}: cannot record the pid in {}: {}", what, path.string(),
                   std::strerror(errno));
    }
    return Status::Ok();
  }

  Status CommitSteps(const fs::path& incoming, const std::string& key, const SopInstanceUid& sop,
                     const std::string& what) {
    RETURN_IF_ERROR(CheckSpace().WithContext(what));
    const fs::path bucket = instances_ / key.substr(0, 2);
    // Created and synced at open: normally only a cache look-up here.
    RETURN_IF_ERROR(EnsureDirectory(bucket, instances_, what));
    const fs::path target = PathOf(key);
    // A new key is named before its fsync: on a journaling file system that one fsync then
    // commits the bytes and the name together, and the bucket's fsync finds at most a cache
    // flush left to do. Until the index records it, a file under its key is nobody's; its key
    // goes to the name log first, so after a crash the next start removes it (after a failure,
    // it stays until then, or until a re-send replaces it).
    names_.Add(key, sop);
    int err = ops_->RenameNoReplace(incoming, target);
    if (err == 0) {
      if (int sync_err = ops_->SyncFile(target); sync_err != 0) {
        return ErrnoStatus(sync_err, what + ": fsync");
      }
    } else if (err == EEXIST || err == EINVAL || err == ENOSYS) {
      // A copy is there already (a re-sent instance, or one left by a failure), or the file
      // system cannot refuse to replace: the bytes are made durable before they replace it.
      if (int sync_err = ops_->SyncFile(incoming); sync_err != 0) {
        return ErrnoStatus(sync_err, what + ": fsync");
      }
      if (int rename_err = ops_->Rename(incoming, target); rename_err != 0) {
        return ErrnoStatus(rename_err, what + ": rename");
      }
    } else {
      return ErrnoStatus(err, what + ": rename");
    }
    if (int sync_err = ops_->SyncDirectory(bucket); sync_err != 0) {
      return ErrnoStatus(sync_err, what + ": fsync directory");
    }
    return Status::Ok();
  }

  // Makes `dir` exist durably: created if missing and its entry in `parent` synced. A
  // directory another thread is creating is synced here too, so no commit returns before
  // its directory entry is durable; each directory is synced once per process.
  Status EnsureDirectory(const fs::path& dir, const fs::path& parent, const std::string& what) {
    {
      std::lock_guard lock(dirs_mu_);
      if (durable_dirs_.contains(dir.string())) return Status::Ok();
    }
    int err = ops_->MakeDirectory(dir);
    if (err != 0 && err != EEXIST) return ErrnoStatus(err, what + ": mkdir");
    if (int sync_err = ops_->SyncDirectory(parent); sync_err != 0) {
      return ErrnoStatus(sync_err, what + ": fsync directory");
    }
    std::lock_guard lock(dirs_mu_);
    durable_dirs_.insert(dir.string());
    return Status::Ok();
  }

  const SpoolOptions options_;
  const std::unique_ptr<FileOps> ops_;
  // Held (flock) from Prepare until the spool is gone, after the name log is closed.
  struct LockFd {
    int fd = -1;
    bool recorded = false;  // this process's line is in the file
    // Replaces the file's content with `line`, synced.
    bool Record(const std::string& line) {
      recorded = ::ftruncate(fd, 0) == 0 &&
                 ::pwrite(fd, line.data(), line.size(), 0) == static_cast<ssize_t>(line.size()) &&
                 ::fdatasync(fd) == 0;
      return recorded;
    }
    ~LockFd() {
      if (fd < 0) return;
      // Only a Spool that is destroyed gets here: the process stopped, it did not crash.
      if (recorded) (void)Record("stopped\n");
      ::close(fd);
    }
  } lock_;
  std::string boot_id_;
  PreviousStop previous_stop_ = PreviousStop::kUnknown;
  const fs::path incoming_;
  const fs::path instances_;
  const fs::path jobs_;
  std::atomic<uint64_t> counter_{0};
  std::mutex rng_mu_;
  std::mt19937_64 rng_;
  NameLog names_;
  std::mutex dirs_mu_;
  std::shared_mutex expiry_lock_;
  std::set<std::string> durable_dirs_;  // the 256 buckets
};

}  // namespace

bool IsSpoolKey(std::string_view key) {
  if (key.size() != 64) return false;
  for (char c : key) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string_view PreviousStopName(PreviousStop stop) {
  switch (stop) {
    case PreviousStop::kUnknown:
      return "unknown";
    case PreviousStop::kClean:
      return "clean";
    case PreviousStop::kCrashed:
      return "crashed";
    case PreviousStop::kHostRestarted:
      return "host-restarted";
  }
  return "unknown";
}

std::unique_ptr<FileOps> NewPosixFileOps() { return std::make_unique<PosixFileOps>(); }

Result<std::unique_ptr<Spool>> OpenSpoolWithFileOps(const SpoolOptions& options,
                                                    std::unique_ptr<FileOps> ops) {
  if (options.root.empty()) return InvalidArgument("spool open: empty root");
  auto spool = std::make_unique<SpoolImpl>(options, std::move(ops));
  RETURN_IF_ERROR(spool->Prepare());
  return std::unique_ptr<Spool>(std::move(spool));
}

Result<std::unique_ptr<Spool>> Spool::Open(const SpoolOptions& options) {
  return OpenSpoolWithFileOps(options, NewPosixFileOps());
}

Status FsyncPath(const fs::path& path) {
  if (int err = SyncByPath(path, O_RDONLY); err != 0) {
    return ErrnoStatus(err, "fsync " + path.string());
  }
  return Status::Ok();
}

Status FsyncDirectory(const fs::path& dir) {
  if (int err = SyncByPath(dir, O_RDONLY | O_DIRECTORY); err != 0) {
    return ErrnoStatus(err, "fsync directory " + dir.string());
  }
  return Status::Ok();
}

}  // namespace conduit
