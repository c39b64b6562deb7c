// Recovery of routing decisions a crash may have lost: an instance is acknowledged once it is
// in the spool and the index, and only then offered to the router and assembler. A crash in
// between leaves a stored instance whose unit of assembly was never opened. At start, studies
// received recently are routed again from one stored instance per series, and units that no
// route opened are opened now (existing units are left alone, so nothing runs twice).
#pragma once

#include "core/clock.h"
#include "pipeline/router.h"
#include "pipeline/study_assembler.h"
#include "store/index.h"
#include "store/spool.h"

namespace conduit {

// Re-routes studies whose last instance arrived at or after `since`. Returns how many units
// it opened. Errors: index failures; unreadable instance files are skipped with a warning.
Result<int> OpenUnitsLostInACrash(Index& index, Spool& spool, const Router& router,
                                  StudyAssembler& assembler, TimePoint since);

}  // namespace conduit
