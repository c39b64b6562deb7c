// JobEngine runs jobs as persisted state machines:
//   queued -> sending -> (awaiting_results ->) delivering -> done
// with failed (not retryable) and dead_letter (retries exhausted) as replayable ends.
// Each transition is written to the index before the next step begins; Start() resumes
// whatever a previous process left unfinished. Retryable errors back off exponentially with
// jitter (RetryConfig). Each tool has its own concurrency cap, so a slow or dead tool never
// holds up another, and its own circuit breaker: while a tool's circuit is open its jobs are
// not sent and wait (no attempt counted) until a probe may go. A job taking longer than its
// tool's expected_turnaround is reported once per job and process (log and metric). Tools
// that say when they are done (ToolAdapter::CheckProgress: a UPS workitem) end the wait at
// once; a tool that gave up on a job has it dispatched again. Priors (PriorFetcher) join a
// job's inputs before de-identification; a ResultReporter hears of each delivered job before
// it is marked done.
// Thread safety: Start/Stop from one thread; Wake from any.
#pragma once

#include <atomic>
#include <condition_variable>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "adapters/tool_adapter.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/metrics.h"
#include "pipeline/circuit_breaker.h"
#include "pipeline/prior_fetcher.h"
#include "pipeline/transfer_guard.h"
#include "results/deliverer.h"
#include "results/result_intake.h"
#include "results/result_reporter.h"
#include "store/index.h"
#include "store/spool.h"

namespace conduit {

class JobEngine {
 public:
  JobEngine(const Config& config, Index& index, Spool& spool, const Clock& clock,
            std::map<std::string, std::unique_ptr<ToolAdapter>> adapters, Deliverer& deliverer,
            ResultIntake& intake, Metrics& metrics, TransferGuard* guard = nullptr);
  ~JobEngine();

  // Optional parts, set before Start(): who is told about delivered jobs besides PACS (the
  // RIS; never of a shadow job), and where priors come from for tools that ask for them.
  // Null: none.
  void SetReporter(ResultReporter* reporter) { reporter_ = reporter; }
  void SetPriorFetcher(PriorFetcher* priors) { priors_ = priors; }

  // Starts the scheduler thread and per-tool workers.
  Status Start();
  // Stops taking new steps and joins workers; a step in flight finishes or is abandoned and
  // resumed by the next Start (its state was persisted before it began).
  void Stop();
  // Asks the scheduler to look for due jobs now, including jobs awaiting results (call it
  // when a result was attached).
  void Wake();

  // Runs every due step once on the calling thread (tests drive the engine with a FakeClock).
  Status RunDueSteps();

  // Advances one job by one step. Exposed for tests. OK when the outcome (including a
  // retry, dead letter or failure of the job) was recorded; an error only when the index
  // could not record it.
  Status Step(JobRecord job);

 private:
  // A step running on its own thread; `done` is set as the thread's last act.
  struct Worker {
    std::jthread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };

  void SchedulerLoop(std::stop_token stop);
  // Launches due jobs on workers within each tool's cap. Caller holds mu_.
  void LaunchDue(std::vector<JobRecord> due, TimePoint now);
  // Joins workers that have finished. Caller holds mu_.
  void ReapWorkers();
  // Re-reads the job and steps it if it is still due (a DueJobs snapshot can be stale).
  Status StepIfStillDue(JobId id);
  // False for a job awaiting results that was looked at and is not to be looked at again
  // yet. Caller holds mu_.
  bool CheckDue(const JobRecord& job, TimePoint now) const;
  // Results attached from files a tool returned, by outcome.
  struct Attached {
    int attached = 0;
    int quarantined = 0;
    int unreadable = 0;
  };
  // What was sent for a job awaiting results from a tool that is polled, and when it was
  // last asked.
  struct PollState {
    DispatchRequest request;
    TimePoint last_poll;
  };

  // The inputs of the job (de-identified into its fresh work folder if the policy says so),
  // its work folder and log.
  Result<DispatchRequest> PrepareRequest(const JobRecord& job);
  // Re-identifies (if the tool is de-identified) and attaches result files of the job.
  // Errors: storage errors only; bad results are quarantined and counted.
  Result<Attached> AttachResults(const JobRecord& job,
                                 const std::vector<std::filesystem::path>& files);
  // Asks a polled tool for new results if its poll_interval has passed, and attaches them.
  // A failed poll is logged and the job waits on; errors are those of recording results.
  Status Poll(const JobRecord& job, const ToolConfig& tool, TimePoint now);
  // What a step learned about the tool, for its circuit breaker.
  enum class ToolVerdict { kNone, kSuccess, kFailure };
  // The tool's breaker, or null for a tool not configured.
  CircuitBreaker* BreakerOf(const std::string& tool) const;
  // Reports `verdict` to the tool's breaker (kNone releases a probe) and acts on a change.
  void Feed(const std::string& tool, ToolVerdict verdict);
  // Audits (job_id 0, actor the tool), logs and counts a circuit opening or closing.
  void OnCircuitChange(const std::string& tool, const CircuitBreaker& breaker,
                       CircuitChange change);
  // Sets conduit_tool_circuit_state for every tool.
  void PublishCircuitStates();
  // Leaves a job of a tool whose circuit is open undispatched until a probe may go: only its
  // next_attempt_at moves (no attempt, no audit event).
  Status Defer(const JobRecord& job, const CircuitBreaker& breaker);
  // Reports jobs (awaiting results among `due`, and dispatches in flight) that passed their
  // tool's expected_turnaround, once per job. Caller holds mu_.
  void CheckTurnarounds(const std::vector<JobRecord>& due, TimePoint now);
  void AlertTurnaround(JobId id, const std::string& tool, const ToolConfig& config,
                       std::chrono::system_clock::duration taken);
  // The per-state step bodies. Dispatch sets `verdict` from what the tool answered.
  Status Dispatch(JobRecord& job, ToolVerdict& verdict);
  Status Await(JobRecord& job, ToolVerdict& verdict);
  Status DeliverResults(JobRecord& job);
  // Leaves a delivering job until its storage commitment reports come (or their deadline):
  // no attempt is counted and no worker waits.
  Status AwaitCommitment(const JobRecord& job, const DeliveryProgress& progress);
  // Handles an error of a step: retry with backoff, dead letter or fail, as the code says.
  Status Fail(JobRecord job, const Status& why, const std::string& step);
  // Moves the job to `next` (attempts reset, due now) and records it with an audit event.
  Status Transition(JobRecord& job, JobState next, const std::string& action,
                    const std::string& outcome, const std::string& detail);
  // Writes the job row and its audit event; counts the transition from `from`.
  Status Record(JobRecord& job, JobState from, const std::string& action,
                const std::string& outcome, const std::string& detail);
  double UnitRandom();

  const Config& config_;
  Index& index_;
  Spool& spool_;
  const Clock& clock_;
  std::map<std::string, std::unique_ptr<ToolAdapter>> adapters_;
  Deliverer& deliverer_;
  ResultIntake& intake_;
  Metrics& metrics_;
  // De-identifies inputs and re-identifies results of tools the policy covers; may be null
  // (no tool is de-identified).
  TransferGuard* guard_;
  ResultReporter* reporter_ = nullptr;
  PriorFetcher* priors_ = nullptr;

  std::mutex mu_;
  std::condition_variable_any wake_cv_;
  bool wake_ = false;
  std::set<int64_t> in_flight_;
  std::map<std::string, int> running_per_tool_;
  std::list<Worker> workers_;
  // Jobs awaiting results: when to look again (in memory; after a restart, at once).
  std::map<int64_t, TimePoint> next_check_;
  // Jobs awaiting results from a polled tool (in memory; rebuilt after a restart).
  std::map<int64_t, PollState> polls_;
  // One per configured tool, made in the constructor (the map never changes after).
  std::map<std::string, std::unique_ptr<CircuitBreaker>> breakers_;
  // Dispatches in flight: job id -> (tool, when the adapter was called).
  std::map<int64_t, std::pair<std::string, TimePoint>> sending_since_;
  // Jobs already reported past their expected turnaround (in memory: after a restart a job
  // still late is reported again); a job leaves it once its results are in hand.
  std::set<int64_t> turnaround_alerted_;
  std::mt19937_64 rng_;
  std::jthread scheduler_;
  // Requested by Stop(): running tools are stopped and their jobs resume on the next Start.
  std::stop_source stopping_;
};

// Puts a failed or dead-lettered job back in the queue from the step where it stopped
// (results already received are kept; deliveries already made are not repeated).
// Errors: kNotFound; kFailedPrecondition if the job is not failed or dead-lettered.
Status ReplayJob(Index& index, const Clock& clock, JobId id, const std::string& actor);

// The delay before retry number `attempt` (1-based): initial * 2^(attempt-1), capped at max,
// with full jitter in [50%, 100%] of it. `unit_random` in [0,1) for determinism in tests.
std::chrono::milliseconds Backoff(const RetryConfig& retry, int attempt, double unit_random);

}  // namespace conduit
