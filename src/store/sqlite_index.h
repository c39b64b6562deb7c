// SqliteIndex: the embedded Index, one SQLite database in WAL mode with synchronous=FULL.
// One writer thread groups concurrent writes into one transaction (group commit), so many
// associations share each fsync; readers use their own connections.
#pragma once

#include <filesystem>
#include <memory>

#include "store/index.h"

namespace conduit {

// Opens (creating and migrating) the database at `path`.
// Errors: kInvalidArgument if it cannot be opened or is not a Conduit index.
Result<std::unique_ptr<Index>> OpenSqliteIndex(const std::filesystem::path& path);

}  // namespace conduit
