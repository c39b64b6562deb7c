// ToolAdapter: one way of talking to an AI tool. Turns the "sending" step of a job into a
// transfer; results come back either at once (a local executable's output folder) or later
// (a DIMSE tool stores them to our listener and the ingest path attaches them to the job).
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <stop_token>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/config.h"
#include "core/job_token.h"
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
  // PollResults only: results already received for the job (SOP Instance UIDs as the tool
  // made them); they are not fetched again.
  std::vector<SopInstanceUid> received_results;
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

  // For tools that cannot send results back: asks the tool for results of a dispatched job
  // (`request` as for Dispatch, with the inputs as sent) and returns the new ones, as files
  // under work_dir that the engine then takes over. Called while the job awaits results,
  // every ToolConfig::poll_interval. Errors as Dispatch's; the job keeps waiting until its
  // timeout. The default polls nothing.
  virtual Result<std::vector<std::filesystem::path>> PollResults(const DispatchRequest& request) {
    return std::vector<std::filesystem::path>{};
  }

  // For tools that say when they are done with a job (a UPS workitem completed or canceled).
  // kUnknown (the default): the engine takes results as complete once none arrived for
  // results_stable_after. kRunning: not yet; the engine asks again within
  // kProgressCheckInterval. kDone: every result is in, deliver now. kFailed: the tool gave up
  // on the job (`why` says how); the engine retries the dispatch with backoff.
  enum class Progress { kUnknown, kRunning, kDone, kFailed };
  struct ProgressReport {
    Progress progress = Progress::kUnknown;
    std::string why;  // for kFailed; no patient identifiers
  };
  static constexpr std::chrono::seconds kProgressCheckInterval{2};
  // Errors: storage errors only (the engine retries the check).
  virtual Result<ProgressReport> CheckProgress(const JobRecord& job) { return ProgressReport{}; }
};

// Runs `command` with --input DIR --output DIR appended; inputs are linked into DIR.
std::unique_ptr<ToolAdapter> MakeExecutableAdapter(const ToolConfig& tool);
// C-STOREs the inputs to the tool's node, calling as `our_ae`; results arrive later.
std::unique_ptr<ToolAdapter> MakeDimsePushAdapter(const ToolConfig& tool, const AeTitle& our_ae);

// STOW-RS pushes the inputs to the tool's DICOMweb service; the tool STOWs its results back to
// `results_base_url` (this gateway's public URL, HttpConfig::public_url) with the job's token
// from `tokens`, or, with tool.poll_interval set, PollResults fetches them by QIDO-RS and
// WADO-RS. The protocol is described in dicomweb_push_adapter.h. Dispatch refuses
// (kFailedPrecondition) when `results_base_url` is empty and the tool is not polled. `tokens`
// must outlive the adapter.
std::unique_ptr<ToolAdapter> MakeDicomwebPushAdapter(const ToolConfig& tool,
                                                     std::string results_base_url,
                                                     const JobTokens& tokens);

class Worklist;
// IHE AIW-I pull: schedules a UPS workitem per job on `worklist` for the tool's performer,
// which fetches the inputs from and stores its results to `results_base_url` (this gateway's
// public URL); CheckProgress follows the workitem. Dispatch refuses (kFailedPrecondition)
// when `results_base_url` is empty. The workitem is described in ups_worklist_adapter.h.
// `worklist` and `clock` must outlive the adapter.
std::unique_ptr<ToolAdapter> MakeWorklistAdapter(const ToolConfig& tool,
                                                 std::string results_base_url, Worklist& worklist,
                                                 const Clock& clock);

}  // namespace conduit
