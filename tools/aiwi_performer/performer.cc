#include "aiwi_performer/performer.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <thread>

#include "aiwi_performer/event_channel.h"
#include "common/uid.h"
#include "dicomweb_tool_sim/result_tampering.h"
#include "dicomweb_tool_sim/stoppable_sleep.h"
#include "reference_tool/reference_tool.h"

namespace conduit::tools {
namespace {

using nlohmann::json;
using SystemTime = std::chrono::system_clock;

constexpr int kCrashExitCode = 3;
constexpr size_t kMaxRemembered = 10'000;

std::string Ref(const std::string& uid) { return "workitem " + LogRef(uid); }

bool Success(int status) { return status >= 200 && status <= 299; }

// STOW-RS goes to <Storage URL>/studies (PostInstances appends it): a Storage URL naming the
// studies resource, or one study, is cut back to the service's base.
std::string StowBase(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  const size_t studies = url.rfind("/studies");
  if (studies != std::string::npos) {
    const std::string rest = url.substr(studies + 8);
    if (rest.empty() || (rest.front() == '/' && rest.find('/', 1) == std::string::npos)) {
      url.resize(studies);
    }
  }
  return url;
}

// The misbehaviour wrong-references: every input series and instance, and each result's own
// series and instance, get new UIDs throughout the results (study and patient unchanged).
Status RewriteReferences(const std::vector<std::filesystem::path>& inputs,
                         std::vector<std::filesystem::path>& results) {
  std::map<std::string, std::string> replace;
  auto remap = [&replace](const std::string& uid) {
    if (!uid.empty()) replace.emplace(uid, DerivedUid({"conduit-aiwi-performer:wrong", uid}));
  };
  for (const auto& group : {inputs, results}) {
    for (const std::filesystem::path& file : group) {
      Result<InstanceInfo> info = ReadInstanceInfo(file);
      if (!info.ok()) continue;
      remap(info->sop_instance_uid);
      remap(info->series_uid);
    }
  }
  for (std::filesystem::path& file : results) {
    std::filesystem::path rewritten = file.parent_path() / ("wrong-" + file.filename().string());
    RETURN_IF_ERROR(RewriteUids(file, rewritten, replace));
    file = rewritten;
  }
  return Status::Ok();
}

std::string Describe(const HttpAnswer& answer) {
  std::string text = "HTTP " + std::to_string(answer.status);
  if (!answer.body.empty()) text += ": " + answer.body.substr(0, 200);
  return text;
}

}  // namespace

Result<std::unique_ptr<AiwiPerformer>> AiwiPerformer::Create(PerformerOptions options) {
  if (options.ae_title.empty() || options.ae_title.size() > 16) {
    return InvalidArgument("performer: the AE title must be 1 to 16 characters");
  }
  if (options.workflow == Workflow::kTriggered) {
    RETURN_IF_ERROR(ParseWebSocketUrl(options.events_url).status());
  }
  ASSIGN_OR_RETURN(UpsClient client, UpsClient::Create(options.base_url, options.token,
                                                       options.http_timeout, options.send.tls));
  std::error_code ec;
  std::filesystem::create_directories(options.work_dir, ec);
  if (ec)
    return Internal("performer work folder " + options.work_dir.string() + ": " + ec.message());
  return std::unique_ptr<AiwiPerformer>(new AiwiPerformer(std::move(options), std::move(client)));
}

AiwiPerformer::AiwiPerformer(PerformerOptions options, UpsClient client)
    : options_(std::move(options)),
      client_(std::move(client)),
      modes_(options_.mode, options_.mode_count),
      rng_(std::random_device{}()) {}

Status AiwiPerformer::Run(std::stop_token stop, const std::function<void()>& on_ready) {
  return options_.workflow == Workflow::kPull ? RunPull(stop, on_ready)
                                              : RunTriggered(stop, on_ready);
}

bool AiwiPerformer::HandleListed(std::stop_token stop) {
  Result<std::vector<WorkitemSummary>> listed = client_.SearchScheduled();
  if (!listed.ok()) {
    spdlog::warn("RAD-81 search: {}", listed.status().ToString());
    return false;
  }
  for (const WorkitemSummary& item : *listed) {
    if (stop.stop_requested()) return false;
    if (!item.state.empty() && item.state != "SCHEDULED") continue;
    if (Finished(Handle(item.uid, stop))) return true;
  }
  return false;
}

Status AiwiPerformer::RunPull(std::stop_token stop, const std::function<void()>& on_ready) {
  spdlog::info("pull workflow: polling every {} ms", options_.poll.count());
  on_ready();
  while (!stop.stop_requested()) {
    if (HandleListed(stop)) return Status::Ok();
    if (!SleepUnlessStopped(options_.poll, stop)) break;
  }
  return Status::Ok();
}

Status AiwiPerformer::RunTriggered(std::stop_token stop, const std::function<void()>& on_ready) {
  // RAD-86: global subscription, retried while the Task Manager cannot be reached.
  std::chrono::milliseconds backoff(500);
  while (true) {
    Status subscribed = client_.SubscribeGlobal(options_.ae_title);
    if (subscribed.ok()) break;
    if (subscribed.code() != StatusCode::kUnavailable) {
      return subscribed.WithContext("RAD-86 global subscription");
    }
    spdlog::warn("RAD-86 global subscription: {}", subscribed.ToString());
    if (!SleepUnlessStopped(backoff, stop)) return Status::Ok();
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, std::chrono::seconds(5));
  }
  spdlog::info("subscribed to the worklist as {}", options_.ae_title);

  ASSIGN_OR_RETURN(WebSocketUrl url, ParseWebSocketUrl(options_.events_url));
  std::atomic<bool> ready_sent = false;
  auto on_open = [&] {
    {
      std::lock_guard lock(queue_mu_);
      catch_up_ = true;  // work created while the channel was closed
    }
    queue_cv_.notify_all();
    if (!ready_sent.exchange(true)) on_ready();
  };
  auto on_frame = [this](const std::string& text) {
    Result<EventReport> event = ParseEventReport(text);
    {
      std::lock_guard lock(counters_mu_);
      ++events_;
    }
    if (!event.ok()) {
      spdlog::warn("event channel: {}", event.status().ToString());
      return;
    }
    if (event->event_type == kUpsCancelRequested) {
      std::lock_guard lock(current_mu_);
      if (!current_uid_.empty() && event->uid == current_uid_) {
        spdlog::info("{}: cancel requested by the Task Manager", Ref(event->uid));
        cancel_requested_ = true;
      }
      return;
    }
    if (event->event_type == kUpsStateReport && event->state == "SCHEDULED" &&
        !event->uid.empty()) {
      {
        std::lock_guard lock(queue_mu_);
        if (queued_.insert(event->uid).second) queue_.push_back(event->uid);
      }
      queue_cv_.notify_all();
    }
  };
  EventChannel channel(std::move(url), options_.token, options_.send.tls, on_open, on_frame);
  std::jthread events([&channel](std::stop_token channel_stop) {
    pthread_setname_np(pthread_self(), "aiwi-events");
    channel.Run(channel_stop);
  });
  std::stop_callback stop_events(stop, [&events] { events.request_stop(); });

  while (!stop.stop_requested()) {
    std::string uid;
    bool catch_up = false;
    {
      std::unique_lock lock(queue_mu_);
      if (!queue_cv_.wait(lock, stop, [this] { return catch_up_ || !queue_.empty(); })) break;
      if (catch_up_) {
        catch_up = true;
        catch_up_ = false;
      } else {
        uid = queue_.front();
        queue_.pop_front();
        queued_.erase(uid);
      }
    }
    if (catch_up) {
      if (HandleListed(stop)) break;
      continue;
    }
    if (Finished(Handle(uid, stop))) break;
  }
  events.request_stop();
  return Status::Ok();
}

WorkitemOutcome AiwiPerformer::Handle(const std::string& uid, std::stop_token stop) {
  WorkitemOutcome outcome;
  if (claimed_uids_.count(uid) > 0) {
    outcome.outcome = "already-handled";
    return outcome;  // named again by an event or a query after this performer took it
  }
  const std::string transaction_uid = RandomUid(rng_);
  {
    // Current from the claim on: a Cancel Requested the Task Manager sends as soon as it has
    // granted the claim, before its answer arrives here, is honoured.
    std::lock_guard lock(current_mu_);
    current_uid_ = uid;
    cancel_requested_ = false;
  }
  Result<HttpAnswer> claim =
      client_.ChangeState(uid, StateChangeBody("IN PROGRESS", transaction_uid));
  if (!claim.ok() || !Success(claim->status)) {
    {
      std::lock_guard lock(current_mu_);
      current_uid_.clear();
    }
    outcome.outcome = claim.ok() && claim->status == 409 ? "taken" : "claim-failed";
    outcome.error = claim.ok() ? Describe(*claim) : claim.status().ToString();
    spdlog::info("{}: RAD-82 claim not granted ({}): {}", Ref(uid), outcome.outcome, outcome.error);
    Record(uid, PerformerMode::kNone, outcome);
    return outcome;
  }
  const PerformerMode mode = modes_.TakeForWorkitem();
  if (claimed_uids_.size() >= kMaxRemembered) claimed_uids_.clear();
  claimed_uids_.insert(uid);
  {
    std::lock_guard lock(counters_mu_);
    ++claimed_;
  }
  spdlog::info(
      "{}: claimed (RAD-82){}", Ref(uid),
      mode == PerformerMode::kNone ? "" : ", misbehaviour " + std::string(PerformerModeName(mode)));
  if (mode == PerformerMode::kCrashMidClaim) {
    Record(uid, mode, {"crash-mid-claim", "", true});
    spdlog::critical("{}: exiting with the claim held (misbehaviour crash-mid-claim)", Ref(uid));
    spdlog::default_logger()->flush();
    std::_Exit(kCrashExitCode);
  }
  outcome = Perform(uid, transaction_uid, mode, stop);
  outcome.claimed = true;
  {
    std::lock_guard lock(current_mu_);
    current_uid_.clear();
  }
  Record(uid, mode, outcome);
  return outcome;
}

WorkitemOutcome AiwiPerformer::Perform(const std::string& uid, const std::string& transaction_uid,
                                       PerformerMode mode, std::stop_token stop) {
  const SystemTime::time_point started = SystemTime::now();
  if (mode == PerformerMode::kCancel) {
    return Cancel(uid, transaction_uid, 0, options_.cancel_reason, {"canceled", "", true});
  }
  const bool progress = mode != PerformerMode::kSlow;
  auto interrupted = [&](int percent) -> std::optional<WorkitemOutcome> {
    if (CancelRequested()) {
      return Cancel(uid, transaction_uid, percent, "cancel requested by the Task Manager",
                    {"canceled-on-request", "", true});
    }
    if (stop.stop_requested()) {
      return Cancel(uid, transaction_uid, percent, "the performer is stopping",
                    {"stopped", "", true});
    }
    return std::nullopt;
  };
  auto fail = [&](int percent, const Status& status) {
    spdlog::error("{}: {}", Ref(uid), status.ToString());
    {
      std::lock_guard lock(counters_mu_);
      last_error_ = status.ToString();
    }
    return Cancel(uid, transaction_uid, percent, "performer failure: " + status.message(),
                  {"failed", status.ToString(), true});
  };

  // RAD-83: the workitem's contents.
  Result<json> workitem = client_.RetrieveWorkitem(uid);
  if (!workitem.ok()) return fail(0, workitem.status());
  Result<std::vector<std::string>> inputs = InputRetrieveUrls(*workitem);
  if (!inputs.ok()) return fail(0, inputs.status());
  Result<std::vector<std::string>> storage = OutputStorageUrls(*workitem);
  if (!storage.ok()) return fail(0, storage.status());

  const std::filesystem::path dir = options_.work_dir / LogRef(uid);
  const std::filesystem::path input_dir = dir / "input";
  const std::filesystem::path output_dir = dir / "output";
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  std::filesystem::create_directories(input_dir, ec);
  std::filesystem::create_directories(output_dir, ec);
  if (ec) return fail(0, Internal("work folder " + dir.string() + ": " + ec.message()));
  struct Cleanup {
    std::filesystem::path dir;
    bool keep;
    ~Cleanup() {
      std::error_code ignored;
      if (!keep) std::filesystem::remove_all(dir, ignored);
    }
  } cleanup{dir, options_.keep_files};

  std::vector<std::filesystem::path> input_files;
  for (const std::string& url : *inputs) {
    Result<std::vector<std::filesystem::path>> got = client_.RetrieveInstances(url, input_dir);
    if (!got.ok()) return fail(0, got.status());
    input_files.insert(input_files.end(), got->begin(), got->end());
  }
  spdlog::info("{}: {} input instance(s) retrieved (WADO-RS)", Ref(uid), input_files.size());
  if (auto stopped = interrupted(25)) return *stopped;
  if (progress) Progress(uid, transaction_uid, 25, "inputs retrieved");

  Result<ReferenceRunSummary> run = RunReferenceTool(input_dir, output_dir);
  if (!run.ok()) return fail(25, run.status().WithContext("reference tool"));
  std::vector<std::filesystem::path> results = {run->seg_file, run->sr_file, run->sc_file};
  spdlog::info("{}: reference tool done ({} slice(s))", Ref(uid), run->slices);
  if (mode == PerformerMode::kWrongReferences) {
    if (Status s = RewriteReferences(input_files, results); !s.ok()) return fail(50, s);
    spdlog::info("{}: results now reference other instances (misbehaviour wrong-references)",
                 Ref(uid));
  }
  std::vector<OutputInstance> outputs;
  for (const std::filesystem::path& file : results) {
    Result<InstanceInfo> info = ReadInstanceInfo(file);
    if (!info.ok()) return fail(50, info.status().WithContext("result"));
    outputs.push_back(
        {info->study_uid, info->series_uid, info->sop_class_uid, info->sop_instance_uid});
  }
  if (mode == PerformerMode::kMalformed) {
    const std::filesystem::path truncated = output_dir / "truncated-seg.dcm";
    if (Status s = WriteTruncated(results[0], truncated); !s.ok()) return fail(50, s);
    results[0] = truncated;
    spdlog::info("{}: the SEG is sent truncated (misbehaviour malformed)", Ref(uid));
  }
  if (auto stopped = interrupted(50)) return *stopped;
  if (progress) Progress(uid, transaction_uid, 50, "analysis done");

  if (mode == PerformerMode::kSlow) {
    spdlog::info("{}: holding for {} ms without progress (misbehaviour slow)", Ref(uid),
                 options_.slow.count());
    const auto until = std::chrono::steady_clock::now() + options_.slow;
    while (std::chrono::steady_clock::now() < until) {
      if (auto stopped = interrupted(50)) return *stopped;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      SleepUnlessStopped(
          std::clamp(left, std::chrono::milliseconds(0), std::chrono::milliseconds(100)), stop);
    }
  }

  // STOW-RS of the results to each Storage URL.
  const bool deliberate = mode == PerformerMode::kMalformed;
  for (const std::string& url : *storage) {
    ResultsTarget target{StowBase(url), options_.token, ""};
    Result<int> stored = PostInstances(target, results, options_.send, stop);
    if (!stored.ok()) {
      if (!deliberate) return fail(50, stored.status().WithContext("results STOW-RS"));
      spdlog::info("{}: results STOW-RS refused as expected: {}", Ref(uid),
                   stored.status().ToString());
      continue;
    }
    spdlog::info("{}: {} result(s) stored (STOW-RS, HTTP {})", Ref(uid), results.size(), *stored);
  }
  if (auto stopped = interrupted(75)) return *stopped;
  if (progress) Progress(uid, transaction_uid, 100, "results stored");

  // RAD-84: the final-state attributes; then RAD-85.
  Result<HttpAnswer> performed =
      client_.UpdateWorkitem(uid, transaction_uid,
                             PerformedProcedureBody(transaction_uid, *workitem, options_.ae_title,
                                                    outputs, started, SystemTime::now()));
  if (!performed.ok() || !Success(performed->status)) {
    const std::string why = performed.ok() ? Describe(*performed) : performed.status().ToString();
    spdlog::warn("{}: RAD-84 final update refused: {}", Ref(uid), why);
  }
  if (auto stopped = interrupted(100)) return *stopped;
  Result<HttpAnswer> done = client_.ChangeState(uid, StateChangeBody("COMPLETED", transaction_uid));
  if (!done.ok() || !Success(done->status)) {
    const std::string why = done.ok() ? Describe(*done) : done.status().ToString();
    spdlog::warn("{}: RAD-85 complete refused: {}", Ref(uid), why);
    return {"complete-refused", why, true};
  }
  spdlog::info("{}: completed (RAD-85)", Ref(uid));
  return {"completed", "", true};
}

WorkitemOutcome AiwiPerformer::Cancel(const std::string& uid, const std::string& transaction_uid,
                                      int percent, const std::string& reason,
                                      WorkitemOutcome outcome) {
  Result<HttpAnswer> update = client_.UpdateWorkitem(
      uid, transaction_uid, CancellationBody(transaction_uid, percent, reason, SystemTime::now()));
  if (!update.ok() || !Success(update->status)) {
    spdlog::warn("{}: RAD-84 cancellation reason refused: {}", Ref(uid),
                 update.ok() ? Describe(*update) : update.status().ToString());
  }
  Result<HttpAnswer> canceled =
      client_.ChangeState(uid, StateChangeBody("CANCELED", transaction_uid));
  if (!canceled.ok() || !Success(canceled->status)) {
    const std::string why = canceled.ok() ? Describe(*canceled) : canceled.status().ToString();
    spdlog::warn("{}: RAD-85 cancel refused: {}", Ref(uid), why);
    if (outcome.error.empty()) outcome.error = "cancel refused: " + why;
  } else {
    spdlog::info("{}: canceled (RAD-85): {}", Ref(uid), reason);
  }
  return outcome;
}

void AiwiPerformer::Progress(const std::string& uid, const std::string& transaction_uid,
                             int percent, const std::string& description) {
  Result<HttpAnswer> answer = client_.UpdateWorkitem(
      uid, transaction_uid, ProgressBody(transaction_uid, percent, description));
  if (!answer.ok() || !Success(answer->status)) {
    spdlog::warn("{}: RAD-84 progress {}% refused: {}", Ref(uid), percent,
                 answer.ok() ? Describe(*answer) : answer.status().ToString());
    return;
  }
  spdlog::info("{}: progress {}% (RAD-84)", Ref(uid), percent);
}

void AiwiPerformer::Record(const std::string& uid, PerformerMode mode,
                           const WorkitemOutcome& outcome) {
  {
    std::lock_guard lock(counters_mu_);
    ++outcomes_[outcome.outcome];
  }
  if (options_.log_file.empty()) return;
  json line = {{"uid", uid},
               {"outcome", outcome.outcome},
               {"mode", std::string(PerformerModeName(mode))},
               {"time", DicomDateTime(SystemTime::now())}};
  if (!outcome.error.empty()) line["error"] = outcome.error;
  std::lock_guard lock(counters_mu_);
  std::ofstream out(options_.log_file, std::ios::app);
  out << line.dump() << "\n";
  out.flush();
  if (!out) spdlog::warn("outcome log {}: write failed", options_.log_file.string());
}

json AiwiPerformer::StatusJson() {
  const PerformerModeSwitch::Snapshot mode = modes_.Current();
  std::lock_guard lock(counters_mu_);
  return {{"non_clinical", true},
          {"mode", std::string(PerformerModeName(mode.mode))},
          {"mode_remaining", mode.remaining < 0 ? json(nullptr) : json(mode.remaining)},
          {"claimed", claimed_},
          {"events", events_},
          {"outcomes", outcomes_},
          {"last_error", last_error_}};
}

}  // namespace conduit::tools
