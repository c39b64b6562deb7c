// Knobs and counters of the SQLite index that production code leaves at their defaults:
// tests use them to bound the database size (SQLITE_FULL) and to observe group commit.
// Internal to store.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>

#include "store/index.h"

namespace conduit {

struct SqliteIndexOptions {
  int max_batch = 256;         // writes grouped into one transaction at most
  int queue_capacity = 4096;   // pending writes before callers block (back-pressure)
  int max_readers = 4;         // read connections
  int64_t max_page_count = 0;  // 0: SQLite's default; else PRAGMA max_page_count
};

Result<std::unique_ptr<Index>> OpenSqliteIndexWithOptions(const std::filesystem::path& path,
                                                          const SqliteIndexOptions& options);

struct SqliteIndexStats {
  int64_t commits = 0;  // write transactions committed
  int64_t writes = 0;   // write operations that succeeded
};

// Counters of an index made by OpenSqliteIndex*; zeros for any other Index.
SqliteIndexStats GetSqliteIndexStats(const Index& index);

}  // namespace conduit
