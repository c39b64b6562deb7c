// PriorFetcher: earlier studies of the same patient that a tool asks for (ToolConfig::priors,
// from its manifest), found on and fetched from PACS before a job is sent, so that the tool
// sees them beside the current study under the same pseudonymous patient (the job engine
// de-identifies them with the same policy and key as the current study).
#pragma once

#include <filesystem>
#include <stop_token>
#include <vector>

#include "core/config.h"
#include "core/status.h"
#include "store/records.h"

namespace conduit {

class PriorFetcher {
 public:
  virtual ~PriorFetcher() = default;
  // The files of the priors to send with `job` to `tool` (read-only; they stay where they
  // are), found and fetched as tool.priors says; empty when the tool asks for none. A prior
  // that cannot be fetched within tool.priors' time limit is reported (log without
  // identifiers, audit event "prior_missing"); then, if the tool proceeds without it, the
  // list holds what was fetched, and otherwise the result is kUnavailable (the engine
  // retries the dispatch with backoff). Returns promptly once `stop` is requested.
  virtual Result<std::vector<std::filesystem::path>> Gather(const JobRecord& job,
                                                            const ToolConfig& tool,
                                                            std::stop_token stop) = 0;
};

}  // namespace conduit
