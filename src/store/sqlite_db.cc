#include "store/sqlite_db.h"

#include <algorithm>

namespace conduit {

Status SqliteStatus(int rc, sqlite3* db, std::string_view what) {
  std::string msg =
      std::string(what) + ": " + (db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  switch (rc & 0xff) {
    case SQLITE_FULL:
    case SQLITE_NOMEM:
      return ResourceExhausted(std::move(msg));
    case SQLITE_IOERR:
    case SQLITE_CORRUPT:
      return DataLoss(std::move(msg));
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Unavailable(std::move(msg));
    case SQLITE_CONSTRAINT:
      return FailedPrecondition(std::move(msg));
    case SQLITE_NOTADB:
    case SQLITE_CANTOPEN:
      return InvalidArgument(std::move(msg));
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_AUTH:
      return PermissionDenied(std::move(msg));
    default:
      return Internal(std::move(msg));
  }
}

SqliteStatement::SqliteStatement(SqliteStatement&& other) noexcept
    : stmt_(other.stmt_), db_(other.db_), bind_error_(other.bind_error_) {
  other.stmt_ = nullptr;
}

SqliteStatement::~SqliteStatement() {
  if (stmt_ != nullptr) {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
}

void SqliteStatement::NoteBind(int rc) {
  if (rc != SQLITE_OK && bind_error_ == SQLITE_OK) bind_error_ = rc;
}

SqliteStatement& SqliteStatement::Bind(int index, std::string_view text) {
  NoteBind(sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()),
                             SQLITE_TRANSIENT));
  return *this;
}

SqliteStatement& SqliteStatement::Bind(int index, int64_t value) {
  NoteBind(sqlite3_bind_int64(stmt_, index, value));
  return *this;
}

SqliteStatement& SqliteStatement::BindDouble(int index, double value) {
  NoteBind(sqlite3_bind_double(stmt_, index, value));
  return *this;
}

SqliteStatement& SqliteStatement::BindNull(int index) {
  NoteBind(sqlite3_bind_null(stmt_, index));
  return *this;
}

Result<bool> SqliteStatement::Step() {
  if (bind_error_ != SQLITE_OK) return SqliteStatus(bind_error_, db_, "index bind");
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return SqliteStatus(rc, db_, "index step");
}

Status SqliteStatement::Run() {
  for (;;) {
    ASSIGN_OR_RETURN(bool row, Step());
    if (!row) return Status::Ok();
  }
}

std::string SqliteStatement::Text(int column) const {
  const unsigned char* p = sqlite3_column_text(stmt_, column);
  if (p == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(p),
                     static_cast<size_t>(sqlite3_column_bytes(stmt_, column)));
}

Result<std::unique_ptr<SqliteConnection>> SqliteConnection::Open(const std::filesystem::path& path,
                                                                 bool create, bool query_only) {
  sqlite3* db = nullptr;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    Status st = SqliteStatus(rc, db, "index open " + path.string());
    sqlite3_close(db);
    return st;
  }
  sqlite3_extended_result_codes(db, 1);
  std::unique_ptr<SqliteConnection> conn(new SqliteConnection(db));
  RETURN_IF_ERROR(conn->Exec("PRAGMA busy_timeout = 10000"));
  RETURN_IF_ERROR(conn->Exec("PRAGMA journal_mode = WAL"));
  RETURN_IF_ERROR(conn->Exec("PRAGMA synchronous = FULL"));
  RETURN_IF_ERROR(conn->Exec("PRAGMA foreign_keys = ON"));
  if (query_only) RETURN_IF_ERROR(conn->Exec("PRAGMA query_only = ON"));
  return conn;
}

SqliteConnection::~SqliteConnection() {
  for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
  sqlite3_close(db_);
}

Result<SqliteStatement> SqliteConnection::Prepare(const std::string& sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()),
                                SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) return SqliteStatus(rc, db_, "index prepare");
    it = cache_.emplace(sql, stmt).first;
  }
  return SqliteStatement(it->second, db_);
}

Status SqliteConnection::Exec(const std::string& sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
  sqlite3_free(err);
  if (rc != SQLITE_OK) return SqliteStatus(rc, db_, "index exec");
  return Status::Ok();
}

SqliteReaderPool::SqliteReaderPool(std::filesystem::path path, int max_readers)
    : path_(std::move(path)), max_(std::max(1, max_readers)) {}

SqliteReaderPool::Lease::~Lease() {
  if (conn_) pool_->Release(std::move(conn_));
}

Result<SqliteReaderPool::Lease> SqliteReaderPool::Acquire() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return !idle_.empty() || open_ < max_; });
  if (!idle_.empty()) {
    auto conn = std::move(idle_.back());
    idle_.pop_back();
    return Lease(this, std::move(conn));
  }
  ++open_;
  lock.unlock();
  auto conn = SqliteConnection::Open(path_, /*create=*/false, /*query_only=*/true);
  if (!conn.ok()) {
    std::lock_guard relock(mu_);
    --open_;
    cv_.notify_one();
    return conn.status();
  }
  return Lease(this, std::move(conn).value());
}

void SqliteReaderPool::Release(std::unique_ptr<SqliteConnection> conn) {
  std::lock_guard lock(mu_);
  idle_.push_back(std::move(conn));
  cv_.notify_one();
}

}  // namespace conduit
