#include "pipeline/job_engine.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

#include "core/iso_time.h"
#include "dicom/instance_meta.h"

namespace conduit {
namespace {

// DueJobs batch per scheduler pass. Jobs awaiting results stay due in the index while they
// wait (their next look is kept in memory), so the batch is generous.
constexpr int kDueBatch = 1000;
constexpr auto kSchedulerPeriod = std::chrono::milliseconds(250);

std::string Detail(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string StateLabel(JobState state) { return std::string("to=\"") + JobStateName(state) + "\""; }

double Seconds(std::chrono::system_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

void NameThisThread(const char* name) { pthread_setname_np(pthread_self(), name); }

std::string JobName(const JobRecord& job) { return "job " + std::to_string(job.id.value); }

std::string ToolLabel(const std::string& tool) { return "tool=\"" + tool + "\""; }

// Failures that are the tool's fault, which its circuit breaker counts.
bool IsToolFault(StatusCode code) {
  return code == StatusCode::kUnavailable || code == StatusCode::kDeadlineExceeded ||
         code == StatusCode::kResourceExhausted;
}

}  // namespace

namespace fs = std::filesystem;

JobEngine::JobEngine(const Config& config, Index& index, Spool& spool, const Clock& clock,
                     std::map<std::string, std::unique_ptr<ToolAdapter>> adapters,
                     Deliverer& deliverer, ResultIntake& intake, Metrics& metrics,
                     TransferGuard* guard)
    : config_(config),
      index_(index),
      spool_(spool),
      clock_(clock),
      adapters_(std::move(adapters)),
      deliverer_(deliverer),
      intake_(intake),
      metrics_(metrics),
      guard_(guard),
      rng_(std::random_device{}()) {
  metrics_.Describe("conduit_jobs_transitions_total", "counter",
                    "Job state transitions, by the state entered.");
  metrics_.Describe("conduit_job_step_seconds", "histogram",
                    "Time to run one step of a job, by the state it started in.");
  metrics_.Describe("conduit_job_latency_seconds", "histogram",
                    "Time from a job's creation to its results being delivered.");
  metrics_.Describe("conduit_tool_circuit_state", "gauge",
                    "A tool's circuit breaker: 0 closed, 1 half-open, 2 open.");
  metrics_.Describe("conduit_tool_circuit_opened_total", "counter",
                    "Times a tool's circuit opened (its jobs held back after repeated failures).");
  metrics_.Describe("conduit_tool_turnaround_exceeded_total", "counter",
                    "Jobs that took longer than their tool's expected turnaround.");
  for (const auto& tool : config_.tools) {
    breakers_.emplace(tool.name, std::make_unique<CircuitBreaker>(tool.circuit_breaker, clock_));
  }
  PublishCircuitStates();
}

JobEngine::~JobEngine() { Stop(); }

Status JobEngine::Start() {
  if (scheduler_.joinable()) return FailedPrecondition("job engine start: already running");
  stopping_ = std::stop_source();
  scheduler_ = std::jthread([this](std::stop_token stop) { SchedulerLoop(stop); });
  spdlog::info("job engine: started ({} tools)", config_.tools.size());
  return Status::Ok();
}

void JobEngine::Stop() {
  stopping_.request_stop();
  if (scheduler_.joinable()) {
    scheduler_.request_stop();
    wake_cv_.notify_all();
    scheduler_.join();
  }
  // No new steps start now; wait for the ones in flight. They take mu_ as they finish, so
  // join them outside it.
  std::list<Worker> workers;
  {
    std::lock_guard lock(mu_);
    workers.swap(workers_);
  }
  for (auto& w : workers) {
    if (w.thread.joinable()) w.thread.join();
  }
}

void JobEngine::Wake() {
  {
    std::lock_guard lock(mu_);
    wake_ = true;
    // A result may just have arrived: jobs awaiting results are looked at again.
    next_check_.clear();
  }
  wake_cv_.notify_all();
}

void JobEngine::SchedulerLoop(std::stop_token stop) {
  NameThisThread("conduit-jobs");
  while (!stop.stop_requested()) {
    const TimePoint now = clock_.Now();
    auto due = index_.DueJobs(now, kDueBatch);
    std::unique_lock lock(mu_);
    ReapWorkers();
    PublishCircuitStates();
    if (due.ok()) {
      CheckTurnarounds(*due, now);
      LaunchDue(std::move(*due), now);
    } else {
      spdlog::error("job engine: listing due jobs: {}", due.status().ToString());
    }
    wake_cv_.wait_for(lock, stop, kSchedulerPeriod, [this] { return wake_; });
    wake_ = false;
  }
}

bool JobEngine::CheckDue(const JobRecord& job, TimePoint now) const {
  if (job.state != JobState::kAwaitingResults) return true;
  auto it = next_check_.find(job.id.value);
  return it == next_check_.end() || it->second <= now;
}

void JobEngine::LaunchDue(std::vector<JobRecord> due, TimePoint now) {
  for (const auto& job : due) {
    if (in_flight_.count(job.id.value) || !CheckDue(job, now)) continue;
    const ToolConfig* tool = config_.FindTool(job.tool);
    const int cap = tool != nullptr ? std::max(1, tool->max_concurrent) : 1;
    int& running = running_per_tool_[job.tool];
    if (running >= cap) continue;  // this tool is saturated; others go on
    ++running;
    in_flight_.insert(job.id.value);
    auto done = std::make_shared<std::atomic<bool>>(false);
    std::jthread thread([this, id = job.id, tool_name = job.tool, done] {
      NameThisThread("conduit-step");
      Status st = StepIfStillDue(id);
      if (!st.ok()) {
        spdlog::error("job engine: job {}: step not recorded: {}", id.value,
                      StatusCodeName(st.code()));
      }
      {
        std::lock_guard lock(mu_);
        in_flight_.erase(id.value);
        --running_per_tool_[tool_name];
        wake_ = true;
      }
      wake_cv_.notify_all();
      done->store(true);
    });
    workers_.push_back(Worker{std::move(thread), std::move(done)});
  }
}

void JobEngine::ReapWorkers() {
  for (auto it = workers_.begin(); it != workers_.end();) {
    if (it->done->load()) {
      // `done` is set after the worker released mu_, so this join cannot wait on us.
      it->thread.join();
      it = workers_.erase(it);
    } else {
      ++it;
    }
  }
}

Status JobEngine::StepIfStillDue(JobId id) {
  ASSIGN_OR_RETURN(std::optional<JobRecord> job, index_.GetJob(id));
  if (!job || IsTerminal(job->state) || job->next_attempt_at > clock_.Now()) return Status::Ok();
  return Step(std::move(*job));
}

Status JobEngine::RunDueSteps() {
  const TimePoint now = clock_.Now();
  ASSIGN_OR_RETURN(std::vector<JobRecord> due, index_.DueJobs(now, kDueBatch));
  PublishCircuitStates();
  {
    std::lock_guard lock(mu_);
    CheckTurnarounds(due, now);
  }
  Status first_error;
  for (const auto& job : due) {
    {
      std::lock_guard lock(mu_);
      if (in_flight_.count(job.id.value) || !CheckDue(job, now)) continue;
      in_flight_.insert(job.id.value);
    }
    Status st = StepIfStillDue(job.id);
    {
      std::lock_guard lock(mu_);
      in_flight_.erase(job.id.value);
    }
    if (!st.ok() && first_error.ok()) first_error = st;
  }
  return first_error;
}

Status JobEngine::Step(JobRecord job) {
  const auto started = std::chrono::steady_clock::now();
  const JobState entry = job.state;
  Status st;
  ToolVerdict verdict = ToolVerdict::kNone;
  switch (job.state) {
    case JobState::kQueued:
    case JobState::kSending: {
      CircuitBreaker* breaker = BreakerOf(job.tool);
      if (breaker != nullptr && !breaker->AllowDispatch()) return Defer(job, *breaker);
      if (job.state == JobState::kQueued) {
        st = Transition(job, JobState::kSending, "dispatch", "started",
                        Detail({{"attempt", job.attempts + 1}}));
        if (!st.ok()) {
          Feed(job.tool, ToolVerdict::kNone);
          return st;
        }
      }
      // From kSending: a previous process died mid-dispatch: dispatch again (tools must be
      // idempotent).
      st = Dispatch(job, verdict);
      Feed(job.tool, verdict);
      break;
    }
    case JobState::kAwaitingResults:
      st = Await(job, verdict);
      if (verdict != ToolVerdict::kNone) Feed(job.tool, verdict);
      break;
    case JobState::kDelivering:
      st = DeliverResults(job);
      break;
    case JobState::kDone:
    case JobState::kFailed:
    case JobState::kDeadLetter:
      return Status::Ok();
  }
  metrics_.Observe("conduit_job_step_seconds", Seconds(std::chrono::steady_clock::now() - started),
                   std::string("step=\"") + JobStateName(entry) + "\"");
  return st;
}

Result<DispatchRequest> JobEngine::PrepareRequest(const JobRecord& job) {
  auto instances = index_.ListInstances(job.study_uid, job.series);
  if (!instances.ok()) return instances.status().WithContext(JobName(job) + ": listing inputs");
  if (instances->empty()) {
    return FailedPrecondition(JobName(job) + ": no input instances in the index");
  }
  DispatchRequest request;
  request.job = job;
  for (const auto& instance : *instances)
    request.inputs.push_back(spool_.PathOf(instance.spool_key));
  const ToolConfig* tool = config_.FindTool(job.tool);
  if (priors_ != nullptr && tool != nullptr) {
    // Before de-identification, so the priors get the current study's pseudonyms.
    auto priors = priors_->Gather(job, *tool, stopping_.get_token());
    if (!priors.ok()) return priors.status().WithContext(JobName(job) + ": priors");
    request.inputs.insert(request.inputs.end(), priors->begin(), priors->end());
  }
  auto dir = spool_.JobDir(job.id.value);
  if (!dir.ok()) return dir.status().WithContext(JobName(job) + ": work folder");
  request.work_dir = *dir;
  // Beside the work folder, so the tool's output outlives the job for whoever investigates.
  request.log_file = dir->parent_path() / (std::to_string(job.id.value) + ".log");
  if (guard_ != nullptr && guard_->Deidentifies(job.tool)) {
    // Nothing leaves for this tool but what the policy made of it.
    ASSIGN_OR_RETURN(request.inputs, guard_->Prepare(job, request.inputs, *dir / "deidentified"));
  }
  request.stop = stopping_.get_token();
  return request;
}

Result<JobEngine::Attached> JobEngine::AttachResults(const JobRecord& job,
                                                     const std::vector<fs::path>& files) {
  const bool deidentified = guard_ != nullptr && guard_->Deidentifies(job.tool);
  Attached counts;
  for (const auto& file : files) {
    auto meta = ReadInstanceMeta(file);
    if (!meta.ok()) {
      ++counts.unreadable;
      spdlog::warn("job {}: a result file of tool '{}' is not readable DICOM ({})", job.id.value,
                   job.tool, StatusCodeName(meta.status().code()));
      continue;
    }
    if (deidentified) {
      Status reid = guard_->Reidentify(job, file);
      if (reid.code() == StatusCode::kInvalidArgument) {
        Status q = intake_.Quarantine(job, file, reid.message(), job.tool);
        if (q.code() != StatusCode::kInvalidArgument) return q;
        ++counts.quarantined;
        continue;
      }
      if (!reid.ok()) return reid.WithContext(JobName(job) + ": re-identifying");
      meta = ReadInstanceMeta(file);
      if (!meta.ok()) return meta.status().WithContext(JobName(job) + ": result");
    }
    Status st = intake_.Attach(job, file, *meta, job.tool);
    if (st.ok()) {
      ++counts.attached;
    } else if (st.code() == StatusCode::kInvalidArgument) {
      ++counts.quarantined;  // audited by the intake; the job goes on with the valid results
    } else {
      return st.WithContext(JobName(job) + ": attaching a result");
    }
  }
  return counts;
}

Status JobEngine::Dispatch(JobRecord& job, ToolVerdict& verdict) {
  const std::string step = "sending";
  const ToolConfig* tool = config_.FindTool(job.tool);
  auto adapter = adapters_.find(job.tool);
  if (tool == nullptr || adapter == adapters_.end() || adapter->second == nullptr) {
    return Fail(job,
                FailedPrecondition(JobName(job) + ": tool '" + job.tool + "' is not configured"),
                step);
  }
  auto prepared = PrepareRequest(job);
  if (!prepared.ok()) return Fail(job, prepared.status(), step);
  DispatchRequest& request = *prepared;

  spdlog::info("job {}: dispatching study {} ({} instances) to tool '{}'", job.id.value,
               StudyRef(job.study_uid), request.inputs.size(), job.tool);
  {
    std::lock_guard lock(mu_);
    sending_since_[job.id.value] = {job.tool, clock_.Now()};
  }
  auto outcome = adapter->second->Dispatch(request);
  {
    std::lock_guard lock(mu_);
    sending_since_.erase(job.id.value);
  }
  if (outcome.ok()) {
    verdict = ToolVerdict::kSuccess;
  } else if (!request.stop.stop_requested() && IsToolFault(outcome.status().code())) {
    verdict = ToolVerdict::kFailure;
  }
  if (!outcome.ok() && request.stop.stop_requested()) {
    // Not the tool's fault: the job stays in "sending" and is dispatched again at next start.
    spdlog::info("job {}: dispatch abandoned on shutdown; it resumes at the next start",
                 job.id.value);
    return Status::Ok();
  }
  if (!outcome.ok()) return Fail(job, outcome.status(), step);

  auto attached = AttachResults(job, outcome->result_files);
  if (!attached.ok()) return Fail(job, attached.status(), step);
  nlohmann::json detail{{"inputs", request.inputs.size()},
                        {"results", attached->attached},
                        {"quarantined", attached->quarantined},
                        {"unreadable", attached->unreadable},
                        {"results_pending", outcome->results_pending}};
  const TimePoint now = clock_.Now();
  if (outcome->results_pending) {
    job.dispatched_at = now;
    if (tool->poll_interval.count() > 0) {
      std::lock_guard lock(mu_);
      polls_[job.id.value] = PollState{std::move(request), now};
    }
    return Transition(job, JobState::kAwaitingResults, "dispatch", "success", Detail(detail));
  }
  if (attached->attached > 0) job.last_result_at = now;
  return Transition(job, JobState::kDelivering, "dispatch", "success", Detail(detail));
}

Status JobEngine::Poll(const JobRecord& job, const ToolConfig& tool, TimePoint now) {
  auto adapter = adapters_.find(job.tool);
  if (adapter == adapters_.end() || adapter->second == nullptr) return Status::Ok();
  std::optional<PollState> state;
  {
    std::lock_guard lock(mu_);
    auto it = polls_.find(job.id.value);
    if (it != polls_.end()) state = it->second;
  }
  if (state && now - state->last_poll < tool.poll_interval) return Status::Ok();
  if (!state && now - job.dispatched_at < tool.poll_interval) return Status::Ok();
  if (!state) {
    // After a restart: the inputs as sent are made again (the pseudonyms are keyed, so they
    // are the same), which the poll needs to tell the tool's results from our inputs.
    auto prepared = PrepareRequest(job);
    if (!prepared.ok()) return prepared.status();
    state = PollState{std::move(*prepared), now};
  }
  state->last_poll = now;
  DispatchRequest request = state->request;
  request.stop = stopping_.get_token();
  {
    std::lock_guard lock(mu_);
    polls_[job.id.value] = std::move(*state);
  }
  auto received = index_.ListResults(job.id);
  if (!received.ok()) return received.status().WithContext(JobName(job) + ": listing results");
  for (const auto& r : *received) request.received_results.push_back(r.sop_instance_uid);

  auto polled = adapter->second->PollResults(request);
  if (!polled.ok()) {
    // The job waits on until its timeout; the next poll may do better.
    spdlog::warn("job {}: polling tool '{}' for results: {}", job.id.value, job.tool,
                 StatusCodeName(polled.status().code()));
    return Status::Ok();
  }
  if (polled->empty()) return Status::Ok();
  auto attached = AttachResults(job, *polled);
  if (!attached.ok()) return attached.status();
  spdlog::info("job {}: polled {} result(s) from tool '{}' ({} attached, {} quarantined)",
               job.id.value, polled->size(), job.tool, attached->attached, attached->quarantined);
  return Status::Ok();
}

Status JobEngine::Await(JobRecord& job, ToolVerdict& verdict) {
  const std::string step = "awaiting_results";
  const ToolConfig* tool = config_.FindTool(job.tool);
  if (tool == nullptr) {
    return Fail(job,
                FailedPrecondition(JobName(job) + ": tool '" + job.tool + "' is not configured"),
                step);
  }
  const TimePoint now = clock_.Now();
  if (tool->poll_interval.count() > 0) {
    Status polled = Poll(job, *tool, now);
    if (!polled.ok()) return Fail(job, polled, step);
  }
  ToolAdapter::ProgressReport progress;
  if (auto adapter = adapters_.find(job.tool);
      adapter != adapters_.end() && adapter->second != nullptr) {
    auto checked = adapter->second->CheckProgress(job);
    if (!checked.ok()) return Fail(job, checked.status().WithContext(JobName(job)), step);
    progress = *checked;
  }
  auto results = index_.ListResults(job.id);
  if (!results.ok()) {
    return Fail(job, results.status().WithContext(JobName(job) + ": listing results"), step);
  }
  // The latest arrival, from the results themselves: the intake may attach one at any time.
  TimePoint last = job.last_result_at;
  for (const auto& r : *results) last = std::max(last, r.received_at);
  const size_t count = results->size();
  const TimePoint deadline = job.dispatched_at + tool->timeout;

  auto forget = [&] {
    std::lock_guard lock(mu_);
    next_check_.erase(job.id.value);
    polls_.erase(job.id.value);
  };
  if (count > 0) verdict = ToolVerdict::kSuccess;  // the tool is answering
  if (progress.progress == ToolAdapter::Progress::kDone) {
    // The tool said it is done (a workitem completed): no quiet period to wait for.
    forget();
    verdict = ToolVerdict::kSuccess;
    job.last_result_at = last;
    return Transition(job, JobState::kDelivering, "result", "success",
                      Detail({{"results", count}, {"completed_by_tool", true}}));
  }
  if (progress.progress == ToolAdapter::Progress::kFailed) {
    forget();
    verdict = ToolVerdict::kFailure;
    return Fail(
        job,
        Unavailable(JobName(job) + ": tool '" + job.tool + "' gave up on the job: " + progress.why),
        step);
  }
  if (count > 0 && now - last >= tool->results_stable_after &&
      progress.progress == ToolAdapter::Progress::kUnknown) {
    forget();
    job.last_result_at = last;
    return Transition(job, JobState::kDelivering, "result", "success",
                      Detail({{"results", count}}));
  }
  if (now > deadline) {
    forget();
    if (count > 0) {
      // Documented choice: what arrived before the timeout is delivered.
      job.last_result_at = last;
      return Transition(job, JobState::kDelivering, "result", "partial",
                        Detail({{"results", count}, {"timed_out", true}}));
    }
    verdict = ToolVerdict::kFailure;
    return Fail(job,
                DeadlineExceeded(JobName(job) + ": no result from tool '" + job.tool +
                                 "' within its timeout"),
                step);
  }
  TimePoint next = deadline + std::chrono::milliseconds(1);
  if (progress.progress == ToolAdapter::Progress::kRunning) {
    next = std::min(next, now + std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                    ToolAdapter::kProgressCheckInterval));
  } else {
    next = std::min(next, (count > 0 ? last : now) + tool->results_stable_after);
  }
  std::lock_guard lock(mu_);
  if (tool->poll_interval.count() > 0) {
    auto it = polls_.find(job.id.value);
    const TimePoint last_poll = it != polls_.end() ? it->second.last_poll : job.dispatched_at;
    next = std::min(next, last_poll + tool->poll_interval);
  }
  next_check_[job.id.value] = next;
  return Status::Ok();
}

CircuitBreaker* JobEngine::BreakerOf(const std::string& tool) const {
  auto it = breakers_.find(tool);
  return it == breakers_.end() ? nullptr : it->second.get();
}

void JobEngine::Feed(const std::string& tool, ToolVerdict verdict) {
  CircuitBreaker* breaker = BreakerOf(tool);
  if (breaker == nullptr) return;
  switch (verdict) {
    case ToolVerdict::kNone:
      breaker->ReleaseProbe();
      return;
    case ToolVerdict::kSuccess:
      OnCircuitChange(tool, *breaker, breaker->RecordSuccess());
      return;
    case ToolVerdict::kFailure:
      OnCircuitChange(tool, *breaker, breaker->RecordFailure());
      return;
  }
}

void JobEngine::OnCircuitChange(const std::string& tool, const CircuitBreaker& breaker,
                                CircuitChange change) {
  if (change == CircuitChange::kNone) return;
  const TimePoint now = clock_.Now();
  AuditEvent audit;
  audit.at = now;
  audit.outcome = "success";
  audit.actor = tool;
  audit.job_id = JobId{0};
  if (change == CircuitChange::kOpened) {
    const TimePoint until = breaker.OpenUntil();
    const auto open_ms = std::chrono::duration_cast<Millis>(until - now).count();
    audit.action = "circuit_open";
    audit.detail = Detail({{"failures", breaker.ConsecutiveFailures()},
                           {"open_for_ms", open_ms},
                           {"probe_at", FormatIsoTime(until)}});
    metrics_.Add("conduit_tool_circuit_opened_total", 1, ToolLabel(tool));
    spdlog::warn(
        "job engine: tool '{}': circuit open after {} consecutive failures; its jobs "
        "wait, one probe at {} ({} s)",
        tool, breaker.ConsecutiveFailures(), FormatIsoTime(until), open_ms / 1000);
  } else {
    audit.action = "circuit_closed";
    audit.detail = Detail(nlohmann::json::object());
    spdlog::info("job engine: tool '{}': circuit closed (the probe succeeded); its jobs go on",
                 tool);
  }
  Status st = index_.AppendAudit(audit);
  if (!st.ok()) {
    spdlog::error("job engine: tool '{}': recording {}: {}", tool, audit.action, st.ToString());
  }
  metrics_.Set("conduit_tool_circuit_state", static_cast<double>(breaker.State()), ToolLabel(tool));
}

void JobEngine::PublishCircuitStates() {
  for (const auto& [tool, breaker] : breakers_) {
    metrics_.Set("conduit_tool_circuit_state", static_cast<double>(breaker->State()),
                 ToolLabel(tool));
  }
}

Status JobEngine::Defer(const JobRecord& job, const CircuitBreaker& breaker) {
  const TimePoint next = std::max(breaker.NextAllowedAt(), clock_.Now() + Millis(1));
  spdlog::debug("job {}: tool '{}' circuit {}; not dispatched before {}", job.id.value, job.tool,
                CircuitStateName(breaker.State()), FormatIsoTime(next));
  Status st = index_.DeferJob(job.id, next);
  if (!st.ok()) return st.WithContext(JobName(job) + ": deferring while the circuit is open");
  return Status::Ok();
}

void JobEngine::CheckTurnarounds(const std::vector<JobRecord>& due, TimePoint now) {
  for (const auto& job : due) {
    if (job.state != JobState::kAwaitingResults || turnaround_alerted_.count(job.id.value)) {
      continue;
    }
    const ToolConfig* tool = config_.FindTool(job.tool);
    if (tool == nullptr || tool->expected_turnaround.count() <= 0) continue;
    if (now - job.dispatched_at > tool->expected_turnaround) {
      AlertTurnaround(job.id, job.tool, *tool, now - job.dispatched_at);
    }
  }
  for (const auto& [id, sending] : sending_since_) {
    if (turnaround_alerted_.count(id)) continue;
    const ToolConfig* tool = config_.FindTool(sending.first);
    if (tool == nullptr || tool->expected_turnaround.count() <= 0) continue;
    if (now - sending.second > tool->expected_turnaround) {
      AlertTurnaround(JobId{id}, sending.first, *tool, now - sending.second);
    }
  }
}

void JobEngine::AlertTurnaround(JobId id, const std::string& tool, const ToolConfig& config,
                                std::chrono::system_clock::duration taken) {
  turnaround_alerted_.insert(id.value);
  metrics_.Add("conduit_tool_turnaround_exceeded_total", 1, ToolLabel(tool));
  spdlog::warn(
      "job {}: tool '{}' has taken {} s so far, beyond its expected turnaround of {} s", id.value,
      tool, std::chrono::duration_cast<std::chrono::seconds>(taken).count(),
      std::chrono::duration_cast<std::chrono::seconds>(config.expected_turnaround).count());
}

Status JobEngine::DeliverResults(JobRecord& job) {
  // A result referring to a quarantined one would reach PACS pointing at nothing.
  auto withheld = intake_.WithholdDependents(job, job.tool);
  if (!withheld.ok()) return Fail(job, withheld.status(), "delivering");
  Result<DeliveryProgress> progress = deliverer_.Deliver(job);
  if (!progress.ok()) return Fail(job, progress.status(), "delivering");
  if (!progress->done) return AwaitCommitment(job, *progress);
  auto results = index_.ListResults(job.id);
  const size_t count = results.ok() ? results->size() : 0;
  auto quarantined = index_.ListQuarantined(job.id);
  const size_t quarantined_count = quarantined.ok() ? quarantined->size() : 0;
  if (reporter_ != nullptr && !job.shadow) {  // a shadow job's findings stay here
    // Before "done": a crash in between reports again, which the reporter makes harmless.
    Status reported = reporter_->OnDelivered(job);
    if (!reported.ok())
      return Fail(job, reported.WithContext(JobName(job) + ": reporting"), "delivering");
  }
  if (Result<bool> removed = spool_.RemoveJobDir(job.id.value); !removed.ok()) {
    spdlog::warn("job {}: removing its work folder: {}", job.id.value,
                 StatusCodeName(removed.status().code()));
  }
  nlohmann::json detail{{"results", count}, {"destinations", job.destinations.size()}};
  if (quarantined_count > 0) detail["quarantined"] = quarantined_count;
  if (job.shadow) detail["shadow"] = true;
  return Transition(job, JobState::kDone, "done", "success", Detail(detail));
}

Status JobEngine::AwaitCommitment(const JobRecord& job, const DeliveryProgress& progress) {
  Status st = index_.DeferJob(job.id, progress.until);
  if (!st.ok()) return st.WithContext(JobName(job) + ": awaiting storage commitment");
  // A report that settled some of them while this step ran made the job due before the
  // deferral above overwrote that: step again now.
  Result<size_t> awaited = deliverer_.AwaitedResults(job);
  if (!awaited.ok() || *awaited != progress.awaited) {
    st = index_.DeferJob(job.id, clock_.Now());
    if (!st.ok()) return st.WithContext(JobName(job) + ": awaiting storage commitment");
    return awaited.status();
  }
  if (progress.awaited > 0) {
    spdlog::info("job {} (study {}): awaiting storage commitment of {} result(s), until {}",
                 job.id.value, StudyRef(job.study_uid), progress.awaited,
                 FormatIsoTime(progress.until));
  }
  return Status::Ok();
}

Status JobEngine::Fail(JobRecord job, const Status& why, const std::string& step) {
  const TimePoint now = clock_.Now();
  const JobState from = job.state;
  job.last_error = why.ToString();
  job.updated_at = now;
  {
    std::lock_guard lock(mu_);
    next_check_.erase(job.id.value);
    polls_.erase(job.id.value);
  }
  nlohmann::json detail{{"step", step}, {"code", std::string(StatusCodeName(why.code()))}};
  std::string action;
  if (IsRetryable(why.code())) {
    job.attempts += 1;
    detail["attempts"] = job.attempts;
    if (job.attempts >= config_.retry.max_attempts) {
      job.state = JobState::kDeadLetter;
      action = "dead_letter";
      spdlog::warn("job {} (study {}): {} failed {} times ({}); dead-lettered", job.id.value,
                   StudyRef(job.study_uid), step, job.attempts, StatusCodeName(why.code()));
    } else {
      const auto delay = Backoff(config_.retry, job.attempts, UnitRandom());
      job.next_attempt_at = now + delay;
      // A failed or timed-out dispatch starts over from the queue.
      if (from == JobState::kSending || from == JobState::kAwaitingResults) {
        job.state = JobState::kQueued;
      }
      action = "retry";
      detail["retry_in_ms"] = delay.count();
      spdlog::info("job {} (study {}): {} failed ({}), attempt {} of {}; retrying in {} ms",
                   job.id.value, StudyRef(job.study_uid), step, StatusCodeName(why.code()),
                   job.attempts, config_.retry.max_attempts, delay.count());
    }
  } else {
    job.state = JobState::kFailed;
    action = "fail";
    spdlog::warn("job {} (study {}): {} failed for good ({})", job.id.value,
                 StudyRef(job.study_uid), step, StatusCodeName(why.code()));
  }
  return Record(job, from, action, "failure", Detail(detail));
}

Status JobEngine::Transition(JobRecord& job, JobState next, const std::string& action,
                             const std::string& outcome, const std::string& detail) {
  const TimePoint now = clock_.Now();
  const JobState from = job.state;
  job.state = next;
  job.updated_at = now;
  job.next_attempt_at = now;
  // `attempts` counts failures of the current phase: getting results (sending, awaiting),
  // then delivering them. It restarts once results are in hand.
  if (next == JobState::kDelivering || next == JobState::kDone) {
    job.attempts = 0;
    job.last_error.clear();
  }
  return Record(job, from, action, outcome, detail);
}

Status JobEngine::Record(JobRecord& job, JobState from, const std::string& action,
                         const std::string& outcome, const std::string& detail) {
  const TimePoint now = clock_.Now();
  AuditEvent audit;
  audit.at = now;
  audit.action = action;
  audit.outcome = outcome;
  audit.actor = job.tool;
  audit.study_ref = StudyRef(job.study_uid);
  audit.job_id = job.id;
  audit.detail = detail;
  Status st = index_.UpdateJob(job, audit);
  if (!st.ok()) return st.WithContext(JobName(job) + ": recording " + JobStateName(job.state));
  if (job.state != from) {
    if (job.state != JobState::kQueued && job.state != JobState::kSending &&
        job.state != JobState::kAwaitingResults) {
      std::lock_guard lock(mu_);
      turnaround_alerted_.erase(job.id.value);
    }
    metrics_.Add("conduit_jobs_transitions_total", 1, StateLabel(job.state));
    spdlog::debug("job {}: {} -> {} ({})", job.id.value, JobStateName(from),
                  JobStateName(job.state), action);
  }
  if (job.state == JobState::kDone) {
    metrics_.Observe("conduit_job_latency_seconds", Seconds(now - job.created_at));
    spdlog::info("job {} (study {}): done", job.id.value, StudyRef(job.study_uid));
  }
  return Status::Ok();
}

double JobEngine::UnitRandom() {
  std::lock_guard lock(mu_);
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
}

Status ReplayJob(Index& index, const Clock& clock, JobId id, const std::string& actor) {
  ASSIGN_OR_RETURN(std::optional<JobRecord> found, index.GetJob(id));
  if (!found) return NotFound("replay job " + std::to_string(id.value) + ": no such job");
  JobRecord job = std::move(*found);
  if (job.state != JobState::kFailed && job.state != JobState::kDeadLetter) {
    return FailedPrecondition("replay job " + std::to_string(id.value) + ": job is " +
                              JobStateName(job.state) + ", not failed or dead_letter");
  }
  ASSIGN_OR_RETURN(std::vector<ResultRecord> results, index.ListResults(id));
  const JobState from = job.state;
  const TimePoint now = clock.Now();
  // Results in hand are kept and delivered (the deliverer skips what already went out);
  // without results the tool is asked again.
  job.state = results.empty() ? JobState::kQueued : JobState::kDelivering;
  job.attempts = 0;
  job.last_error.clear();
  job.next_attempt_at = now;
  job.updated_at = now;
  AuditEvent audit;
  audit.at = now;
  audit.action = "replay";
  audit.outcome = "success";
  audit.actor = actor;
  audit.study_ref = StudyRef(job.study_uid);
  audit.job_id = job.id;
  audit.detail = Detail(
      {{"from", JobStateName(from)}, {"to", JobStateName(job.state)}, {"results", results.size()}});
  RETURN_IF_ERROR(index.UpdateJob(job, audit));
  spdlog::info("job {} (study {}): replayed by {} from {} to {}", id.value, StudyRef(job.study_uid),
               actor, JobStateName(from), JobStateName(job.state));
  return Status::Ok();
}

std::chrono::milliseconds Backoff(const RetryConfig& retry, int attempt, double unit_random) {
  const double max_ms = static_cast<double>(std::max<int64_t>(0, retry.max_backoff.count()));
  double base = static_cast<double>(std::max<int64_t>(0, retry.initial_backoff.count()));
  for (int i = 1; i < attempt && base < max_ms; ++i) base *= 2;
  base = std::min(base, max_ms);
  const double u = std::clamp(unit_random, 0.0, 1.0);
  return std::chrono::milliseconds(static_cast<int64_t>(std::floor(base * (0.5 + 0.5 * u))));
}

}  // namespace conduit
