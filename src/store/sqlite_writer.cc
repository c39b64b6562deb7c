#include "store/sqlite_writer.h"

#include <algorithm>

namespace conduit {

SqliteWriter::SqliteWriter(std::unique_ptr<SqliteConnection> conn, int max_batch,
                           int queue_capacity)
    : conn_(std::move(conn)),
      max_batch_(std::max(1, max_batch)),
      queue_capacity_(std::max(1, queue_capacity)) {}

SqliteWriter::~SqliteWriter() {
  std::unique_lock lock(mu_);
  stopping_ = true;
  space_cv_.notify_all();
  // Queued callers lead in turn until every one of them has its answer.
  answered_cv_.wait(lock, [&] { return queue_.empty() && !leading_; });
}

Status SqliteWriter::Write(const std::string& what, WriteFn fn) {
  PendingWrite op;
  op.fn = std::move(fn);
  std::unique_lock lock(mu_);
  space_cv_.wait(lock,
                 [&] { return stopping_ || static_cast<int>(queue_.size()) < queue_capacity_; });
  if (stopping_) return Unavailable(what + ": index is closing");
  queue_.push_back(&op);
  answered_cv_.wait(lock, [&] { return op.done || !leading_; });
  if (!op.done) Lead(lock, op);
  return std::move(op.result).WithContext(what);
}

void SqliteWriter::Lead(std::unique_lock<std::mutex>& lock, const PendingWrite& own) {
  leading_ = true;
  while (!own.done) {
    std::vector<PendingWrite*> batch;
    while (!queue_.empty() && static_cast<int>(batch.size()) < max_batch_) {
      batch.push_back(queue_.front());
      queue_.pop_front();
    }
    lock.unlock();
    space_cv_.notify_all();
    RunBatch(batch);
    lock.lock();
    for (PendingWrite* op : batch) op->done = true;
    answered_cv_.notify_all();
  }
  leading_ = false;
  // Wakes one still queued (if any) to lead the next batch, or the destructor.
  answered_cv_.notify_all();
}

// Runs one write inside its own savepoint. `txn_lost` is set when SQLite rolled back the
// whole transaction, as it may on SQLITE_FULL, IOERR or NOMEM.
Status SqliteWriter::RunOne(PendingWrite& op, bool* txn_lost) {
  SqliteConnection& c = *conn_;
  Status st = c.Exec("SAVEPOINT op");
  if (st.ok()) {
    try {
      st = op.fn(c);
    } catch (const std::exception& e) {
      st = Internal(std::string("unexpected exception: ") + e.what());
    }
  }
  if (st.ok()) st = c.Exec("RELEASE op");
  if (st.ok()) return st;
  if (!c.InTransaction()) {
    *txn_lost = true;
    return st;
  }
  if (!c.Exec("ROLLBACK TO op").ok() || !c.Exec("RELEASE op").ok()) {
    (void)c.Exec("ROLLBACK");
    *txn_lost = true;
  }
  return st;
}

// One transaction for the batch. A failing write is rolled back to its savepoint and fails
// alone; if SQLite abandoned the transaction, the writes that had succeeded in it run again
// in a fresh one (each round drops at least the failing write, so this ends). A failed
// COMMIT fails every write of the transaction. Every promise is fulfilled.
void SqliteWriter::RunBatch(const std::vector<PendingWrite*>& batch) {
  SqliteConnection& c = *conn_;
  std::vector<Status> results(batch.size());
  std::vector<size_t> pending(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) pending[i] = i;
  while (!pending.empty()) {
    Status begin = c.Exec("BEGIN IMMEDIATE");
    if (!begin.ok()) {
      for (size_t i : pending) results[i] = begin;
      break;
    }
    std::vector<size_t> applied;
    std::vector<size_t> again;
    bool txn_lost = false;
    for (size_t i : pending) {
      if (txn_lost) {
        again.push_back(i);
        continue;
      }
      results[i] = RunOne(*batch[i], &txn_lost);
      if (results[i].ok()) {
        applied.push_back(i);
      } else if (txn_lost) {
        again = std::move(applied);
        applied.clear();
      }
    }
    if (txn_lost) {
      if (c.InTransaction()) (void)c.Exec("ROLLBACK");
      pending = std::move(again);
      continue;
    }
    Status commit = c.Exec("COMMIT");
    if (commit.ok()) {
      commits_.fetch_add(1);
      writes_.fetch_add(static_cast<int64_t>(applied.size()));
    } else {
      (void)c.Exec("ROLLBACK");
      for (size_t i : applied) results[i] = commit;
    }
    pending.clear();
  }
  for (size_t i = 0; i < batch.size(); ++i) batch[i]->result = std::move(results[i]);
}

}  // namespace conduit
