// AiwiPerformer: a NON-CLINICAL IHE AIW-I Task Performer simulator for Conduit's end-to-end
// tests. It finds SCHEDULED workitems on a Task Manager's UPS-RS worklist, by polling (pull
// workflow, RAD-81) or on UPS State Report events (triggered pull: RAD-86 global subscription,
// RAD-109 event channel), and for each: claims it (RAD-82; 409 = taken by another: skipped),
// reads it (RAD-83), retrieves its inputs by WADO-RS, runs Conduit's reference tool, stores
// the results by STOW-RS at the workitem's Storage URL, reports progress (RAD-84) and
// completes it (RAD-85); a Cancel Requested event for the workitem in hand cancels it. It
// misbehaves on request (performer_modes.h).
// Thread safety: Run on one thread; modes() and StatusJson() from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <stop_token>
#include <string>

#include "aiwi_performer/performer_modes.h"
#include "aiwi_performer/ups_client.h"
#include "core/status.h"
#include "dicomweb_tool_sim/stow_sender.h"

namespace conduit::tools {

enum class Workflow { kPull, kTriggered };

struct PerformerOptions {
  std::string base_url;  // UPS-RS/DICOMweb service, e.g. http://127.0.0.1:8080/dicom-web
  std::string token;     // bearer token for every request (never logged)
  std::string ae_title;  // the performer's AE title (subscriber)
  Workflow workflow = Workflow::kPull;
  std::string events_url;  // triggered: ws://host:port/path of the event channel
  std::chrono::milliseconds poll{2'000};
  std::chrono::milliseconds slow{5'000};
  std::filesystem::path work_dir;  // per-workitem folders are made (and removed) under it
  bool keep_files = false;
  bool once = false;               // stop after the first workitem claimed
  std::filesystem::path log_file;  // one JSON line per workitem handled; empty: none
  PerformerMode mode = PerformerMode::kNone;
  int mode_count = -1;
  std::string cancel_reason = "canceled by the AIW-I performer simulator (misbehaviour cancel)";
  SendOptions send;
  std::chrono::seconds http_timeout{60};
};

// What became of one workitem: "completed", "taken" (409 on claim), "claim-failed",
// "canceled" (misbehaviour cancel), "canceled-on-request", "stopped", "failed",
// "complete-refused", "crash-mid-claim"; "already-handled" (not recorded) for a workitem this
// performer claimed before.
struct WorkitemOutcome {
  std::string outcome;
  std::string error;  // empty unless something failed
  bool claimed = false;
};

class AiwiPerformer {
 public:
  // Errors: kInvalidArgument for a bad option (base or events URL, empty AE title);
  // kInternal if the work folder cannot be made.
  static Result<std::unique_ptr<AiwiPerformer>> Create(PerformerOptions options);

  // Runs the workflow until `stop`, or (once) after the first workitem claimed. `on_ready`
  // is called once polling begins (pull) or once subscribed with the event channel open
  // (triggered). Errors: only start-up failures that cannot be retried (a refused
  // subscription: kPermissionDenied / kFailedPrecondition).
  Status Run(std::stop_token stop, const std::function<void()>& on_ready);

  // Claims and performs workitem `uid` as the current misbehaviour says; logs and records
  // the outcome. May exit the process (crash-mid-claim).
  WorkitemOutcome Handle(const std::string& uid, std::stop_token stop);

  PerformerModeSwitch& modes() { return modes_; }
  // Counters and the current mode, for GET /sim/status.
  nlohmann::json StatusJson();

 private:
  AiwiPerformer(PerformerOptions options, UpsClient client);

  Status RunPull(std::stop_token stop, const std::function<void()>& on_ready);
  Status RunTriggered(std::stop_token stop, const std::function<void()>& on_ready);
  // Handles each SCHEDULED workitem the Task Manager lists; true when --once is satisfied.
  bool HandleListed(std::stop_token stop);
  bool Finished(const WorkitemOutcome& outcome) const { return options_.once && outcome.claimed; }

  WorkitemOutcome Perform(const std::string& uid, const std::string& transaction_uid,
                          PerformerMode mode, std::stop_token stop);
  // PUTs CANCELED after recording the reason (best effort); returns `outcome`.
  WorkitemOutcome Cancel(const std::string& uid, const std::string& transaction_uid, int percent,
                         const std::string& reason, WorkitemOutcome outcome);
  void Progress(const std::string& uid, const std::string& transaction_uid, int percent,
                const std::string& description);
  bool CancelRequested() const { return cancel_requested_.load(); }
  void Record(const std::string& uid, PerformerMode mode, const WorkitemOutcome& outcome);

  const PerformerOptions options_;
  const UpsClient client_;
  PerformerModeSwitch modes_;
  std::mt19937_64 rng_;

  // The workitem in hand, and whether a Cancel Requested event named it.
  std::mutex current_mu_;
  std::string current_uid_;
  std::atomic<bool> cancel_requested_{false};

  // Triggered workflow: workitems announced SCHEDULED, and whether to query (channel opened).
  std::mutex queue_mu_;
  std::condition_variable_any queue_cv_;
  std::deque<std::string> queue_;
  std::set<std::string> queued_;
  bool catch_up_ = false;

  // Workitems this performer claimed (an event and a catch-up query may name one twice);
  // bounded: cleared past kMaxRemembered.
  std::set<std::string> claimed_uids_;

  std::mutex counters_mu_;
  std::map<std::string, uint64_t> outcomes_;
  uint64_t claimed_ = 0;
  uint64_t events_ = 0;
  std::string last_error_;
};

}  // namespace conduit::tools
