// ToolAdapter: one way of talking to an AI tool. Turns the "sending" step of a job into a
// transfer; results come back either at once (a local executable's output folder) or later
// (a DIMSE tool stores them to our listener and the ingest path attaches them to the job).
#pragma once

#include <filesystem>
#include <memory>
#include <stop_token>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/status.h"
#include "store/records.h"

namespace conduit {

struct DispatchRequest {
  JobRecord job;
  // Absolute paths of the input instances, in series/instance order.
  std::vector<std::filesystem::path> inputs;
  // An empty folder this adapter may use for the job.
  std::filesystem::path work_dir;
  // Where the job's log goes (tool stdout/stderr, adapter notes).
  std::filesystem::path log_file;
  // Requested when the gateway shuts down: a long-running adapter stops its tool and returns
  // kUnavailable promptly; the job resumes on the next start.
  std::stop_token stop;
};

struct DispatchOutcome {
  // True if results will arrive later by another path (the job then awaits results).
  bool results_pending = false;
  // Result files produced now (under work_dir); the engine commits them to the spool.
  std::vector<std::filesystem::path> result_files;
};

class ToolAdapter {
 public:
  virtual ~ToolAdapter() = default;
  // Runs the step. Errors: kDeadlineExceeded on timeout, kUnavailable if the tool cannot be
  // reached (both retried with backoff); kInvalidArgument/kFailedPrecondition are not retried.
  // Must return within the tool's timeout plus a few seconds.
  virtual Result<DispatchOutcome> Dispatch(const DispatchRequest& request) = 0;
};

// Runs `command` with --input DIR --output DIR appended; inputs are linked into DIR.
std::unique_ptr<ToolAdapter> MakeExecutableAdapter(const ToolConfig& tool);
// C-STOREs the inputs to the tool's node, calling as `our_ae`; results arrive later.
std::unique_ptr<ToolAdapter> MakeDimsePushAdapter(const ToolConfig& tool, const AeTitle& our_ae);

}  // namespace conduit
