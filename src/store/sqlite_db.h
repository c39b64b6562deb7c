// A thin RAII layer over sqlite3 for the store: a connection owning its cache of prepared
// statements, statements that reset themselves when released, and SQLite result codes as
// Status (SQLITE_FULL -> kResourceExhausted, SQLITE_IOERR/CORRUPT -> kDataLoss,
// SQLITE_BUSY/LOCKED -> kUnavailable). Internal to store.
// Thread safety: a connection and its statements are used by one thread at a time.
#pragma once

#include <sqlite3.h>

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/status.h"

namespace conduit {

Status SqliteStatus(int rc, sqlite3* db, std::string_view what);

// A cached prepared statement in use. Destruction resets it and clears its bindings.
class SqliteStatement {
 public:
  SqliteStatement(sqlite3_stmt* stmt, sqlite3* db) : stmt_(stmt), db_(db) {}
  SqliteStatement(SqliteStatement&& other) noexcept;
  SqliteStatement& operator=(SqliteStatement&&) = delete;
  SqliteStatement(const SqliteStatement&) = delete;
  ~SqliteStatement();

  // Parameters are 1-based, as in SQL (?1, ?2...).
  SqliteStatement& Bind(int index, std::string_view text);
  SqliteStatement& Bind(int index, int64_t value);
  SqliteStatement& BindDouble(int index, double value);
  SqliteStatement& BindNull(int index);

  // True when a row is available, false when done.
  Result<bool> Step();
  // Steps to completion, ignoring rows.
  Status Run();

  int64_t Int(int column) const { return sqlite3_column_int64(stmt_, column); }
  double Double(int column) const { return sqlite3_column_double(stmt_, column); }
  std::string Text(int column) const;
  bool IsNull(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }

 private:
  void NoteBind(int rc);
  sqlite3_stmt* stmt_;
  sqlite3* db_;
  int bind_error_ = SQLITE_OK;
};

class SqliteConnection {
 public:
  // Opens `path` with the store's pragmas: WAL, synchronous=FULL, foreign keys, busy
  // timeout. `create` allows creating the file; readers are opened query-only.
  static Result<std::unique_ptr<SqliteConnection>> Open(const std::filesystem::path& path,
                                                        bool create, bool query_only);
  ~SqliteConnection();
  SqliteConnection(const SqliteConnection&) = delete;
  SqliteConnection& operator=(const SqliteConnection&) = delete;

  // A prepared statement from this connection's cache (prepared on first use).
  Result<SqliteStatement> Prepare(const std::string& sql);
  // Runs SQL text without parameters (pragmas, transaction control, schema).
  Status Exec(const std::string& sql);
  int64_t LastInsertRowId() const { return sqlite3_last_insert_rowid(db_); }
  int Changes() const { return sqlite3_changes(db_); }
  bool InTransaction() const { return sqlite3_get_autocommit(db_) == 0; }
  sqlite3* db() const { return db_; }

 private:
  explicit SqliteConnection(sqlite3* db) : db_(db) {}
  sqlite3* db_;
  std::unordered_map<std::string, sqlite3_stmt*> cache_;
};

// Up to `max_readers` query-only connections, opened on demand and reused. Acquire blocks
// while all are in use. Thread safety: all methods may be called concurrently.
class SqliteReaderPool {
 public:
  SqliteReaderPool(std::filesystem::path path, int max_readers);

  // A connection lent until the lease is destroyed.
  class Lease {
   public:
    Lease(SqliteReaderPool* pool, std::unique_ptr<SqliteConnection> conn)
        : pool_(pool), conn_(std::move(conn)) {}
    Lease(Lease&&) = default;
    ~Lease();
    SqliteConnection& operator*() { return *conn_; }

   private:
    SqliteReaderPool* pool_;
    std::unique_ptr<SqliteConnection> conn_;
  };

  Result<Lease> Acquire();

 private:
  void Release(std::unique_ptr<SqliteConnection> conn);

  const std::filesystem::path path_;
  const int max_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<SqliteConnection>> idle_;
  int open_ = 0;
};

}  // namespace conduit
