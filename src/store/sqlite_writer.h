// SqliteWriter: the one thread that writes the index. Callers hand it a write and wait;
// it groups the writes pending at that moment into one transaction (BEGIN IMMEDIATE ...
// COMMIT, so one fsync serves them all), each inside its own SAVEPOINT so a failing write
// fails only its own caller. Internal to store.
// Thread safety: Write may be called from any thread but the writer's own.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/status.h"
#include "store/sqlite_db.h"

namespace conduit {

class SqliteWriter {
 public:
  // A write: statements on the write connection, inside a transaction it must not end.
  using WriteFn = std::function<Status(SqliteConnection&)>;

  // Starts the thread "index-writer". `max_batch` bounds the writes per transaction,
  // `queue_capacity` the writes waiting (callers block beyond it: back-pressure).
  SqliteWriter(std::unique_ptr<SqliteConnection> conn, int max_batch, int queue_capacity);
  // Writes everything already queued, then stops the thread.
  ~SqliteWriter();

  // Runs `fn` in the next transaction and returns once that has committed (OK) or `fn`
  // failed; errors are prefixed with `what`. kUnavailable once the writer is stopping.
  Status Write(const std::string& what, WriteFn fn);

  int64_t commits() const { return commits_.load(); }  // transactions committed
  int64_t writes() const { return writes_.load(); }    // writes committed

 private:
  struct PendingWrite {
    WriteFn fn;
    std::promise<Status> done;
  };

  void Loop(std::stop_token stop);
  void RunBatch(std::vector<std::unique_ptr<PendingWrite>>& batch);
  Status RunOne(PendingWrite& op, bool* txn_lost);

  const std::unique_ptr<SqliteConnection> conn_;  // used by the writer thread only
  const int max_batch_;
  const int queue_capacity_;

  std::mutex mu_;
  std::condition_variable_any queue_cv_;  // a write was queued
  std::condition_variable space_cv_;      // the queue has room, or the writer is stopping
  std::deque<std::unique_ptr<PendingWrite>> queue_;
  bool stopping_ = false;

  std::atomic<int64_t> commits_{0};
  std::atomic<int64_t> writes_{0};
  std::jthread thread_;  // last: started after, and joined before, everything above
};

}  // namespace conduit
