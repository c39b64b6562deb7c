// The SQLite index's schema and its migrations, applied in order, each in one transaction,
// recorded in schema_version. Internal to store.
#pragma once

#include "core/status.h"
#include "store/sqlite_db.h"

namespace conduit {

// The schema version this build writes.
int SqliteSchemaVersion();

// Brings the database to SqliteSchemaVersion(). Errors: kInvalidArgument if the file holds
// tables but is not a Conduit index, or was written by a newer build.
Status MigrateSqliteSchema(SqliteConnection& conn);

}  // namespace conduit
