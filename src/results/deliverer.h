// Deliverer: sends a job's results to its destinations (PACS) by C-STORE. A result counts as
// delivered to a destination only when that destination answered success; delivered pairs
// are recorded so a resumed job never re-sends them.
#pragma once

#include <string>
#include <vector>

#include "core/config.h"
#include "store/index.h"
#include "store/spool.h"

namespace conduit {

class Deliverer {
 public:
  Deliverer(const Config& config, Index& index, Spool& spool, const Clock& clock);
  // Delivers every not-yet-delivered result of `job` to each of its destinations.
  // OK when all are delivered. Errors: kUnavailable when a destination is unreachable or
  // answered out-of-resources (retry later); kInvalidArgument when a destination refused a
  // result for good; kNotFound for an unknown destination.
  Status Deliver(const JobRecord& job);

 private:
  const Config& config_;
  Index& index_;
  Spool& spool_;
  const Clock& clock_;
};

}  // namespace conduit
