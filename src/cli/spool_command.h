// `conduit spool check`: the spool's files against the index (store/spool_check.h), with the
// gateway stopped. Prints what it found; with --remove-unrecorded, removes files no index row
// names. Audited either way. Exit 0 if consistent (after any removal), 1 if not or on error.
#pragma once

#include "core/config.h"

namespace conduit::cli {

int SpoolCheck(const Config& config, bool remove_unrecorded, bool json);

}  // namespace conduit::cli
