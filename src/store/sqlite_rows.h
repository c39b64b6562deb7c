// Pieces shared by the parts of the SQLite index (sqlite_index.cc, sqlite_ris.cc,
// sqlite_workitems.cc): reading rows into records, optional times, the audit row, batched
// retention deletes. Internal to store.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "store/records.h"
#include "store/sqlite_db.h"
#include "store/sqlite_writer.h"

namespace conduit {

// `r`, its error (if any) prefixed with `what`.
template <typename T>
Result<T> WithStepContext(Result<T> r, std::string_view what) {
  if (!r.ok()) return r.status().WithContext(what);
  return r;
}

// Every remaining row of `s`, each made by `read(s)`. Errors carry `what`.
template <typename T, typename ReadRow>
Result<std::vector<T>> CollectRows(SqliteStatement& s, ReadRow read, std::string_view what) {
  std::vector<T> out;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, WithStepContext(s.Step(), what));
    if (!row) return out;
    out.push_back(read(s));
  }
}

// The next row of `s` made by `read(s)`; empty when there is none. Errors carry `what`.
template <typename T, typename ReadRow>
Result<std::optional<T>> ReadOptionalRow(SqliteStatement& s, ReadRow read, std::string_view what) {
  ASSIGN_OR_RETURN(bool row, WithStepContext(s.Step(), what));
  if (!row) return std::optional<T>();
  return std::optional<T>(read(s));
}

// The integer in the first column of the next row (a count), 0 when there is no row.
inline Result<int64_t> ReadCount(SqliteStatement& s, std::string_view what) {
  ASSIGN_OR_RETURN(bool row, WithStepContext(s.Step(), what));
  return row ? s.Int(0) : int64_t{0};
}

// A time column stored as Unix milliseconds; empty when NULL.
inline std::optional<TimePoint> OptionalTime(const SqliteStatement& s, int column) {
  if (s.IsNull(column)) return std::nullopt;
  return FromUnixMillis(s.Int(column));
}

// Binds `t` as Unix milliseconds, NULL when empty.
inline void BindOptionalTime(SqliteStatement& s, int index, const std::optional<TimePoint>& t) {
  if (t) {
    s.Bind(index, ToUnixMillis(*t));
  } else {
    s.BindNull(index);
  }
}

// Inserts an audit row inside the current write transaction; `policy_hash` is used when the
// event carries none.
inline Status InsertAudit(SqliteConnection& c, const AuditEvent& e,
                          const std::string& policy_hash) {
  ASSIGN_OR_RETURN(auto s, c.Prepare("INSERT INTO audit (at, action, outcome, actor, study_ref, "
                                     "job_id, detail, policy_hash) VALUES (?1, ?2, ?3, ?4, ?5, "
                                     "?6, ?7, ?8)"));
  s.Bind(1, ToUnixMillis(e.at))
      .Bind(2, e.action)
      .Bind(3, e.outcome)
      .Bind(4, e.actor)
      .Bind(5, e.study_ref)
      .Bind(6, e.job_id.value)
      .Bind(7, e.detail.empty() ? std::string("{}") : e.detail)
      .Bind(8, e.policy_hash.empty() ? policy_hash : e.policy_hash);
  return s.Run().WithContext("audit");
}

// Rows deleted per transaction by the retention purges, so that a large purge (a shortened
// period) never holds the writer, and with it every receipt, for long.
inline constexpr int64_t kPurgeBatchRows = 5000;

// Runs `delete_sql` (?1 the cutoff in Unix ms, ?2 the batch size) one write transaction at a
// time until a batch deletes fewer rows than its size; returns the rows deleted.
inline Result<int64_t> PurgeInBatches(SqliteWriter& writer, const std::string& what,
                                      const std::string& delete_sql, TimePoint cutoff) {
  int64_t purged = 0;
  for (;;) {
    int64_t batch = 0;
    Status written = writer.Write(what, [&](SqliteConnection& c) -> Status {
      ASSIGN_OR_RETURN(auto s, c.Prepare(delete_sql));
      s.Bind(1, ToUnixMillis(cutoff)).Bind(2, kPurgeBatchRows);
      RETURN_IF_ERROR(s.Run());
      batch = c.Changes();
      return Status::Ok();
    });
    if (!written.ok()) return written;
    purged += batch;
    if (batch < kPurgeBatchRows) return purged;
  }
}

}  // namespace conduit
