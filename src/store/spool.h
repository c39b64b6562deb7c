// Spool holds received instances and tool results on disk until every job that needs them
// is done. It is the durability point: once Commit() returns OK the bytes survive a crash
// (file and directory fsync'd), and only then may a front end acknowledge the sender.
// Layout under root: lock (held by the one process that has the spool open), incoming/ (partial
// files, removed on Open), instances/<aa>/<key>.dcm (256 buckets made at Open), names/ (logs of
// keys whose file the index has yet to record or let go), jobs/<job id>/ (work folders of
// adapters). Thread safety: all methods may be called concurrently.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/ids.h"
#include "core/status.h"

namespace conduit {

struct SpoolOptions {
  std::filesystem::path root;
  // Commit and CheckSpace refuse with kResourceExhausted below this much free space.
  uint64_t min_free_bytes = 512ull << 20;
  // Where the kernel names the current boot; tests point it elsewhere.
  std::filesystem::path boot_id_file = "/proc/sys/kernel/random/boot_id";
};

// How the process that had the spool open before this one ended. Each process records its pid
// and the boot it runs in in the spool's lock file (synced), and "stopped" when its Spool is
// destroyed; Open reads what the one before left.
enum class PreviousStop {
  kUnknown,        // no earlier process, or one that did not record this
  kClean,          // it stopped
  kCrashed,        // it ended without stopping, in this boot: the name logs cover what it left
  kHostRestarted,  // the host went down while it ran (power failure, a machine crash): the name
                   // logs may have lost lines; `conduit spool check` finds what they named
};
std::string_view PreviousStopName(PreviousStop stop);

// Whether `key` is named as Commit names files: 64 lowercase hex digits (a SHA-256).
bool IsSpoolKey(std::string_view key);

class Spool {
 public:
  virtual ~Spool() = default;

  // Opens (creating) the spool at options.root, takes its lock for the life of the Spool and
  // removes partial files left by a crash. Errors: kInvalidArgument if root cannot be created
  // or is not writable; kFailedPrecondition if another Spool (in any process) has it open.
  static Result<std::unique_ptr<Spool>> Open(const SpoolOptions& options);

  // A fresh unique path under incoming/ for a file being written. Nothing is created.
  virtual std::filesystem::path NewIncomingPath() = 0;

  // kResourceExhausted if free space is below min_free_bytes.
  virtual Status CheckSpace() const = 0;

  // Makes `incoming` durable under a key derived from `sop` (stable: the same SOP Instance
  // UID always has the same key) and returns the key. A new key: rename (never replacing),
  // fsync file, fsync directory. An existing file with the same key is replaced atomically,
  // only once the new bytes are durable: fsync file, rename, fsync directory.
  // Errors: kResourceExhausted on ENOSPC/EDQUOT; kDataLoss on EIO; kNotFound if incoming
  // is missing. On error `incoming` is removed; a file already renamed under its key stays
  // there, unknown to the index, until the next commit of the same key replaces it or the
  // next start removes it.
  // Every key is written to the name log before it is named, and stays there until
  // Settled(key): a file a crash left named but unrecorded is found by RemoveUnrecorded.
  virtual Result<std::string> Commit(const std::filesystem::path& incoming,
                                     const SopInstanceUid& sop) = 0;

  // The index's answer about `key` is final: it records the file Commit named, or the file
  // went after its rows (Track). The name log forgets one tracking of the key. Not called
  // after a failure, so the next start checks that key.
  virtual void Settled(const std::string& key) = 0;

  // Puts a committed file in the name log, as Commit does for each file it names, before its
  // rows are deleted: a crash between the rows and the file leaves the next start to remove
  // it. Settled(key) once the file is gone.
  virtual void Track(const std::string& key, const SopInstanceUid& sop) = 0;

  // Whether the index records the file named `key` for `sop`.
  using RecordedCheck =
      std::function<Result<bool>(const std::string& key, const SopInstanceUid& sop)>;

  // For every key in the name logs of earlier processes: removes its file unless `recorded`
  // says the index has it; then deletes those logs. Call at start, before the front ends open;
  // this process's own log is left alone. Returns how many files were removed. Errors: the
  // first error of `recorded` or of a removal (the logs are then kept for the next start).
  virtual Result<int> RemoveUnrecorded(const RecordedCheck& recorded) = 0;

  // The absolute path of a committed key.
  virtual std::filesystem::path PathOf(const std::string& key) const = 0;

  // Removes a committed file. Missing is OK.
  virtual Status Remove(const std::string& key) = 0;

  // One of the 256 buckets of instances/ (0-255), for the consistency check: the keys of the
  // files named as Commit names them, sorted, into `keys`; any other entry into `strays`.
  virtual Status ListBucket(int bucket, std::vector<std::string>* keys,
                            std::vector<std::filesystem::path>* strays) const = 0;

  // A work folder for a job's adapter (created, emptied if it existed). Its inputs may be
  // hard links to spool files: while it exists, their bytes stay on disk.
  virtual Result<std::filesystem::path> JobDir(int64_t job_id) = 0;
  // Removes it with all it holds; true if there was one.
  virtual Result<bool> RemoveJobDir(int64_t job_id) = 0;
  // The job ids that have a work folder, ascending (for the consistency check).
  virtual Result<std::vector<int64_t>> ListJobDirs() const = 0;

  virtual const std::filesystem::path& root() const = 0;
  virtual PreviousStop previous_stop() const = 0;

  // Held shared while an instance is committed and recorded in the index, and exclusively
  // while retention deletes an expired study's rows and files: an instance re-sent at that
  // moment is stored after the expiry, never half-deleted by it.
  virtual std::shared_mutex& expiry_lock() = 0;
};

// fsync helpers, shared by everything that must make bytes durable.
Status FsyncPath(const std::filesystem::path& path);      // a file
Status FsyncDirectory(const std::filesystem::path& dir);  // a directory's entries

}  // namespace conduit
