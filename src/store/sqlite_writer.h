// SqliteWriter: the index's one write connection, shared by group commit. A caller hands it a
// write and waits; whichever waiting caller finds no commit in progress leads: it runs the
// writes pending at that moment (its own among them) in one transaction (BEGIN IMMEDIATE ...
// COMMIT, so one fsync serves them all), each inside its own SAVEPOINT so a failing write fails
// only its own caller, then answers them. No hand-off to another thread: a lone writer commits
// on its own thread. Internal to store.
// Thread safety: Write may be called from any thread; writes must not call Write.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/status.h"
#include "store/sqlite_db.h"

namespace conduit {

class SqliteWriter {
 public:
  // A write: statements on the write connection, inside a transaction it must not end.
  using WriteFn = std::function<Status(SqliteConnection&)>;

  // `max_batch` bounds the writes per transaction, `queue_capacity` the writes waiting
  // (callers block beyond it: back-pressure).
  SqliteWriter(std::unique_ptr<SqliteConnection> conn, int max_batch, int queue_capacity);
  // Refuses new writes and waits until every queued one has been answered.
  ~SqliteWriter();

  // Runs `fn` in a transaction and returns once that has committed (OK) or `fn` failed;
  // errors are prefixed with `what`. kUnavailable once the writer is stopping.
  Status Write(const std::string& what, WriteFn fn);

  int64_t commits() const { return commits_.load(); }  // transactions committed
  int64_t writes() const { return writes_.load(); }    // writes committed

 private:
  struct PendingWrite {
    WriteFn fn;
    Status result;
    bool done = false;
  };

  // Commits batches, with mu_ released, until `own` is done; returns holding the lock again.
  void Lead(std::unique_lock<std::mutex>& lock, const PendingWrite& own);
  void RunBatch(const std::vector<PendingWrite*>& batch);
  Status RunOne(PendingWrite& op, bool* txn_lost);

  const std::unique_ptr<SqliteConnection> conn_;  // used by the leader only
  const int max_batch_;
  const int queue_capacity_;

  std::mutex mu_;
  std::condition_variable answered_cv_;  // a batch was answered, or the leader stepped down
  std::condition_variable space_cv_;     // the queue has room, or the writer is stopping
  std::deque<PendingWrite*> queue_;      // owned by the callers waiting in Write
  bool leading_ = false;                 // a caller is running a batch
  bool stopping_ = false;

  std::atomic<int64_t> commits_{0};
  std::atomic<int64_t> writes_{0};
};

}  // namespace conduit
