// ResultReporter: tells systems other than PACS about a job whose results were delivered
// (the RIS over HL7 v2: the AI finding, a worklist priority update). Called by the job engine
// after delivery to PACS and before the job is marked done, so a crash in between calls it
// again: implementations must be idempotent per job and durable when they return OK (e.g. a
// message queued in the index, sent later).
#pragma once

#include "core/status.h"
#include "store/records.h"

namespace conduit {

class ResultReporter {
 public:
  virtual ~ResultReporter() = default;
  // Errors: storage errors (the engine retries the delivering step with backoff).
  virtual Status OnDelivered(const JobRecord& job) = 0;
};

}  // namespace conduit
