#include "pipeline/job_engine.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <thread>

#include "results/result_test_objects.h"
#include "store/sqlite_index.h"
#include "testing/testing.h"

namespace conduit {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::StorescpPeer;
using testing::TempDir;
using testing::WriteTestDicom;

constexpr const char* kStudy = "1.2.826.0.1.3680043.10.543.1";

// What a test tool does, shared between the test and the adapter the engine owns.
struct ToolScript {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Status> errors;  // returned by the next dispatches, in order; then success
  bool results_pending = false;
  int results_per_job = 1;
  bool wrong_study = false;  // results claim another study (the intake quarantines them)
  bool gate_open = true;     // while closed, Dispatch blocks (bounded)
  int calls = 0;
  int running = 0;
  int max_running = 0;
  // PollResults: results returned by the next polls, in order; then none.
  std::deque<int> poll_batches;
  int polls = 0;
  size_t last_received = 0;  // results the engine said it holds, at the last poll
  // What CheckProgress answers (kUnknown: the tool does not say), and how often it was asked.
  ToolAdapter::ProgressReport progress;
  int progress_checks = 0;
  std::vector<fs::path> last_inputs;  // as the last dispatch received them

  void SetProgress(ToolAdapter::Progress p, std::string why = "") {
    std::lock_guard lock(mu);
    progress = {p, std::move(why)};
  }
  int ProgressChecks() {
    std::lock_guard lock(mu);
    return progress_checks;
  }

  void SetGate(bool open) {
    {
      std::lock_guard lock(mu);
      gate_open = open;
    }
    cv.notify_all();
  }
  int Calls() {
    std::lock_guard lock(mu);
    return calls;
  }
  int Running() {
    std::lock_guard lock(mu);
    return running;
  }
  int Polls() {
    std::lock_guard lock(mu);
    return polls;
  }
};

// A real ToolAdapter: writes one DICOM result per job (deterministic UIDs, as the reference
// tool does) into the work folder, or fails as scripted.
class ScriptedTool final : public ToolAdapter {
 public:
  explicit ScriptedTool(std::shared_ptr<ToolScript> script) : script_(std::move(script)) {}

  Result<DispatchOutcome> Dispatch(const DispatchRequest& request) override {
    std::unique_lock lock(script_->mu);
    ++script_->calls;
    ++script_->running;
    script_->max_running = std::max(script_->max_running, script_->running);
    script_->cv.wait_for(lock, 60s, [&] { return script_->gate_open; });
    --script_->running;
    for (const auto& input : request.inputs) {
      if (!fs::exists(input)) return InvalidArgument("test tool: input missing");
    }
    script_->last_inputs = request.inputs;
    if (!script_->errors.empty()) {
      Status st = script_->errors.front();
      script_->errors.pop_front();
      return st;
    }
    DispatchOutcome outcome;
    outcome.results_pending = script_->results_pending;
    const std::string id = std::to_string(request.job.id.value);
    for (int i = 0; i < script_->results_per_job; ++i) {
      const fs::path file = request.work_dir / ("result-" + std::to_string(i) + ".dcm");
      const std::string study = script_->wrong_study ? "1.2.3.999" : request.job.study_uid.str();
      Status st =
          WriteTestDicom(file, study, "2.25.7700" + id, "2.25.7800" + id + "." + std::to_string(i),
                         testing::kSecondaryCaptureStorage);
      if (!st.ok()) return st;
      outcome.result_files.push_back(file);
    }
    return outcome;
  }

  // A tool polled for results: hands over the next scripted batch as files in work_dir.
  Result<std::vector<fs::path>> PollResults(const DispatchRequest& request) override {
    std::lock_guard lock(script_->mu);
    const int poll = ++script_->polls;
    script_->last_received = request.received_results.size();
    if (request.inputs.empty()) return InvalidArgument("test tool: polled without inputs");
    for (const auto& input : request.inputs) {
      if (!fs::exists(input)) return InvalidArgument("test tool: polled input missing");
    }
    std::vector<fs::path> files;
    const int count = script_->poll_batches.empty() ? 0 : script_->poll_batches.front();
    if (!script_->poll_batches.empty()) script_->poll_batches.pop_front();
    const std::string id = std::to_string(request.job.id.value);
    fs::create_directories(request.work_dir / "polled");
    for (int i = 0; i < count; ++i) {
      const std::string n = std::to_string(poll) + "." + std::to_string(i);
      const fs::path file = request.work_dir / "polled" / ("result-" + n + ".dcm");
      Status st = WriteTestDicom(file, request.job.study_uid.str(), "2.25.8700" + id,
                                 "2.25.8800" + id + "." + n, testing::kSecondaryCaptureStorage);
      if (!st.ok()) return st;
      files.push_back(file);
    }
    return files;
  }

  Result<ProgressReport> CheckProgress(const JobRecord&) override {
    std::lock_guard lock(script_->mu);
    ++script_->progress_checks;
    return script_->progress;
  }

 private:
  std::shared_ptr<ToolScript> script_;
};

// Counts the jobs it hears of; fails while told to.
class RecordingReporter final : public ResultReporter {
 public:
  Status OnDelivered(const JobRecord& job) override {
    std::lock_guard lock(mu_);
    calls_.push_back(job.id.value);
    if (failures_ > 0) {
      --failures_;
      return Unavailable("test reporter: outbox unavailable");
    }
    return Status::Ok();
  }
  void FailNext(int n) {
    std::lock_guard lock(mu_);
    failures_ = n;
  }
  std::vector<int64_t> Calls() {
    std::lock_guard lock(mu_);
    return calls_;
  }

 private:
  std::mutex mu_;
  std::vector<int64_t> calls_;
  int failures_ = 0;
};

// Hands out one prior instance (a file of another study of the patient), or fails.
class FilePriors final : public PriorFetcher {
 public:
  explicit FilePriors(fs::path file) : file_(std::move(file)) {}
  Result<std::vector<fs::path>> Gather(const JobRecord&, const ToolConfig& tool,
                                       std::stop_token) override {
    ++calls;
    if (!error.ok()) return error;
    if (tool.name != "fast") return std::vector<fs::path>{};
    return std::vector<fs::path>{file_};
  }
  Status error = Status::Ok();
  int calls = 0;

 private:
  fs::path file_;
};

class JobEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto spool = Spool::Open(SpoolOptions{tmp_.path() / "spool", 0});
    ASSERT_TRUE(spool.ok()) << spool.status().ToString();
    spool_ = std::move(spool).value();
    auto index = OpenSqliteIndex(tmp_.path() / "index.db");
    ASSERT_TRUE(index.ok()) << index.status().ToString();
    index_ = std::move(index).value();

    config_.dicom.ae_title = AeTitle("CONDUIT");
    DestinationConfig pacs;
    pacs.name = "pacs";
    pacs.ae_title = AeTitle("PACS");
    pacs.host = "127.0.0.1";
    pacs.port = testing::FreePort();  // nothing listens until a test starts storescp
    pacs.timeout = 10s;
    config_.destinations.push_back(pacs);
    for (const char* name : {"fast", "slow", "dimse", "polled"}) {
      ToolConfig tool;
      tool.name = name;
      tool.max_concurrent = 1;
      tool.timeout = 600s;
      tool.results_stable_after = 5s;
      config_.tools.push_back(tool);
    }
    // A DICOMweb tool that cannot STOW back: asked every 30 s; results settle after 60 s.
    config_.tools.back().kind = ToolKind::kDicomweb;
    config_.tools.back().poll_interval = 30s;
    config_.tools.back().results_stable_after = 60s;
    config_.retry.max_attempts = 3;
    config_.retry.initial_backoff = 2s;
    config_.retry.max_backoff = 60s;

    intake_ = std::make_unique<ResultIntake>(*index_, *spool_, clock_, metrics_);
    deliverer_ = std::make_unique<Deliverer>(config_, *index_, *spool_, clock_);
    scripts_["dimse"]->results_pending = true;
    scripts_["dimse"]->results_per_job = 0;
    scripts_["polled"]->results_pending = true;
    scripts_["polled"]->results_per_job = 0;
    MakeEngine();
  }

  void TearDown() override { engine_.reset(); }

  // A new engine on the same index and spool: what a restart sees.
  void MakeEngine() {
    engine_.reset();
    std::map<std::string, std::unique_ptr<ToolAdapter>> adapters;
    for (auto& [name, script] : scripts_) adapters[name] = std::make_unique<ScriptedTool>(script);
    engine_ = std::make_unique<JobEngine>(config_, *index_, *spool_, clock_, std::move(adapters),
                                          *deliverer_, *intake_, metrics_);
  }

  // An input instance of kStudy in the spool and the index.
  void AddInput(const std::string& sop) {
    const fs::path incoming = spool_->NewIncomingPath();
    fs::create_directories(incoming.parent_path());
    ASSERT_TRUE(WriteTestDicom(incoming, kStudy, std::string(kStudy) + ".1", sop).ok());
    auto key = spool_->Commit(incoming, SopInstanceUid(sop));
    ASSERT_TRUE(key.ok()) << key.status().ToString();
    InstanceRecord r;
    r.study_uid = StudyUid(kStudy);
    r.series_uid = SeriesUid(std::string(kStudy) + ".1");
    r.sop_instance_uid = SopInstanceUid(sop);
    r.sop_class_uid = SopClassUid(testing::kCtImageStorage);
    r.spool_key = *key;
    r.received_at = clock_.Now();
    ASSERT_TRUE(index_->PutInstance(r, Audit("receive")).ok());
  }

  // A job of `tool`, its results to PACS, or to nowhere for a shadow job.
  JobId CreateJob(const std::string& tool, bool shadow = false) {
    JobRecord job;
    job.study_uid = StudyUid(kStudy);
    job.route = "route-" + std::to_string(++routes_);
    job.tool = tool;
    if (!shadow) job.destinations = {"pacs"};
    job.shadow = shadow;
    job.state = JobState::kQueued;
    job.next_attempt_at = clock_.Now();
    job.created_at = clock_.Now();
    job.updated_at = clock_.Now();
    auto id = index_->CreateJob(job, Audit("assemble"));
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    return id.ok() ? *id : JobId{};
  }

  AuditEvent Audit(const std::string& action) {
    return AuditEvent{clock_.Now(), action, "success", "test", StudyRef(StudyUid(kStudy)),
                      JobId{},      "{}",   ""};
  }

  JobRecord Job(JobId id) {
    auto job = index_->GetJob(id);
    EXPECT_TRUE(job.ok() && job->has_value());
    return job.ok() && job->has_value() ? **job : JobRecord{};
  }

  void RunDueSteps() {
    Status st = engine_->RunDueSteps();
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  // Waits (bounded) until the job is in `state`; for tests with the scheduler threads.
  bool WaitForState(JobId id, JobState state, std::chrono::seconds timeout = 60s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (Job(id).state == state) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }

  std::vector<std::string> AuditActions(JobId id) {
    auto audit = index_->ListAudit(1000, 0);
    EXPECT_TRUE(audit.ok());
    std::vector<std::string> actions;
    if (!audit.ok()) return actions;
    for (auto it = audit->rbegin(); it != audit->rend(); ++it) {
      if (it->job_id == id) actions.push_back(it->action);
    }
    return actions;
  }

  // The state a process leaves behind when it dies after recording "sending", then a restart.
  void CrashWhileSending(JobId id) {
    JobRecord job = Job(id);
    job.state = JobState::kSending;
    ASSERT_TRUE(index_->UpdateJob(job, Audit("dispatch")).ok());
    MakeEngine();
  }

  size_t ResultCount(JobId id) {
    auto results = index_->ListResults(id);
    EXPECT_TRUE(results.ok());
    return results.ok() ? results->size() : 0;
  }

  // A DIMSE tool stores a result back to our listener; ingest attaches it to the job.
  void ToolReturnsResult(JobId id) {
    const fs::path file = tmp_.path() / "returned.dcm";
    ASSERT_TRUE(
        WriteTestDicom(file, kStudy, "2.25.990", "2.25.990.1", testing::kSecondaryCaptureStorage)
            .ok());
    auto meta = ReadInstanceMeta(file);
    ASSERT_TRUE(meta.ok()) << meta.status().ToString();
    ASSERT_TRUE(intake_->Attach(Job(id), file, *meta, "dimse").ok());
  }

  std::unique_ptr<StorescpPeer> StartPacs() {
    auto peer = StorescpPeer::Start(tmp_.path() / "pacs", "PACS");
    EXPECT_TRUE(peer.ok()) << peer.status().ToString();
    if (!peer.ok()) return nullptr;
    config_.destinations[0].port = (*peer)->port();
    return std::move(peer).value();
  }

  TempDir tmp_;
  FakeClock clock_;
  Config config_;
  Metrics metrics_;
  std::unique_ptr<Spool> spool_;
  std::unique_ptr<Index> index_;
  std::unique_ptr<ResultIntake> intake_;
  std::unique_ptr<Deliverer> deliverer_;
  std::map<std::string, std::shared_ptr<ToolScript>> scripts_ = {
      {"fast", std::make_shared<ToolScript>()},
      {"slow", std::make_shared<ToolScript>()},
      {"dimse", std::make_shared<ToolScript>()},
      {"polled", std::make_shared<ToolScript>()}};
  std::unique_ptr<JobEngine> engine_;
  int routes_ = 0;
};

TEST_F(JobEngineTest, DeliversTheToolsResultsToPacs) {
  fs::create_directories(tmp_.path() / "pacs");
  auto pacs = StartPacs();
  ASSERT_NE(pacs, nullptr);
  AddInput("2.25.100.1");
  AddInput("2.25.100.2");
  const JobId id = CreateJob("fast");

  RunDueSteps();
  EXPECT_EQ(Job(id).state, JobState::kDelivering);
  EXPECT_EQ(ResultCount(id), 1u);

  RunDueSteps();
  EXPECT_EQ(Job(id).state, JobState::kDone);
  EXPECT_EQ(pacs->WaitForReceived(1), 1);
  EXPECT_FALSE(fs::exists(spool_->root() / "jobs" / std::to_string(id.value)))
      << "the work folder goes once the job is done";

  const std::vector<std::string> expected = {"assemble", "dispatch", "result",
                                             "dispatch", "deliver",  "done"};
  EXPECT_EQ(AuditActions(id), expected);
  EXPECT_EQ(metrics_.Value("conduit_jobs_transitions_total", R"(to="sending")"), 1);
  EXPECT_EQ(metrics_.Value("conduit_jobs_transitions_total", R"(to="delivering")"), 1);
  EXPECT_EQ(metrics_.Value("conduit_jobs_transitions_total", R"(to="done")"), 1);
  EXPECT_EQ(scripts_["fast"]->Calls(), 1);

  RunDueSteps();
  EXPECT_EQ(scripts_["fast"]->Calls(), 1) << "a done job is not stepped again";
}

TEST_F(JobEngineTest, RetryableErrorsBackOffThenDeadLetter) {
  AddInput("2.25.100.1");
  for (int i = 0; i < 3; ++i) scripts_["fast"]->errors.push_back(Unavailable("tool down"));
  const JobId id = CreateJob("fast");

  RunDueSteps();
  JobRecord job = Job(id);
  EXPECT_EQ(job.state, JobState::kQueued) << "a failed dispatch goes back to the queue";
  EXPECT_EQ(job.attempts, 1);
  EXPECT_GE(job.next_attempt_at, clock_.Now() + 1s) << "first backoff is 1-2 s";
  EXPECT_LE(job.next_attempt_at, clock_.Now() + 2s);
  EXPECT_NE(job.last_error.find("tool down"), std::string::npos);

  RunDueSteps();
  EXPECT_EQ(scripts_["fast"]->Calls(), 1) << "not due before the backoff has passed";

  clock_.Advance(2s);
  RunDueSteps();
  job = Job(id);
  EXPECT_EQ(job.attempts, 2);
  EXPECT_GE(job.next_attempt_at, clock_.Now() + 2s);
  EXPECT_LE(job.next_attempt_at, clock_.Now() + 4s);

  clock_.Advance(4s);
  RunDueSteps();
  job = Job(id);
  EXPECT_EQ(job.state, JobState::kDeadLetter);
  EXPECT_EQ(job.attempts, 3);
  EXPECT_EQ(scripts_["fast"]->Calls(), 3);
  const auto actions = AuditActions(id);
  EXPECT_EQ(std::count(actions.begin(), actions.end(), "retry"), 2);
  EXPECT_EQ(actions.back(), "dead_letter");

  clock_.Advance(1h);
  RunDueSteps();
  EXPECT_EQ(scripts_["fast"]->Calls(), 3) << "a dead-lettered job waits for a replay";
}

TEST_F(JobEngineTest, NonRetryableErrorFailsAtOnce) {
  AddInput("2.25.100.1");
  scripts_["fast"]->errors.push_back(InvalidArgument("tool rejects the study"));
  const JobId id = CreateJob("fast");
  RunDueSteps();
  const JobRecord job = Job(id);
  EXPECT_EQ(job.state, JobState::kFailed);
  EXPECT_EQ(AuditActions(id).back(), "fail");
  EXPECT_EQ(metrics_.Value("conduit_jobs_transitions_total", R"(to="failed")"), 1);
}

TEST_F(JobEngineTest, ReplayRunsADeadLetteredJobAgain) {
  AddInput("2.25.100.1");
  for (int i = 0; i < 3; ++i) scripts_["fast"]->errors.push_back(Unavailable("tool down"));
  const JobId id = CreateJob("fast");
  for (int i = 0; i < 3; ++i) {
    RunDueSteps();
    clock_.Advance(1min);
  }
  ASSERT_EQ(Job(id).state, JobState::kDeadLetter);

  Status st = ReplayJob(*index_, clock_, id, "cli");
  ASSERT_TRUE(st.ok()) << st.ToString();
  JobRecord job = Job(id);
  EXPECT_EQ(job.state, JobState::kQueued) << "no results yet: the tool is asked again";
  EXPECT_EQ(job.attempts, 0);
  EXPECT_EQ(AuditActions(id).back(), "replay");

  RunDueSteps();
  EXPECT_EQ(Job(id).state, JobState::kDelivering);

  EXPECT_EQ(ReplayJob(*index_, clock_, id, "cli").code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReplayJob(*index_, clock_, JobId{9999}, "cli").code(), StatusCode::kNotFound);
}

TEST_F(JobEngineTest, ReplayAfterFailedDeliveryKeepsTheResults) {
  AddInput("2.25.100.1");
  const JobId id = CreateJob("fast");
  RunDueSteps();  // dispatched; pacs is not listening
  ASSERT_EQ(Job(id).state, JobState::kDelivering);
  for (int i = 0; i < 3; ++i) {
    RunDueSteps();
    clock_.Advance(1min);
  }
  ASSERT_EQ(Job(id).state, JobState::kDeadLetter);

  fs::create_directories(tmp_.path() / "pacs");
  auto pacs = StartPacs();
  ASSERT_NE(pacs, nullptr);
  ASSERT_TRUE(ReplayJob(*index_, clock_, id, "cli").ok());
  EXPECT_EQ(Job(id).state, JobState::kDelivering);
  RunDueSteps();
  EXPECT_EQ(Job(id).state, JobState::kDone);
  EXPECT_EQ(pacs->WaitForReceived(1), 1);
  EXPECT_EQ(scripts_["fast"]->Calls(), 1) << "the tool was not asked again";
}

TEST_F(JobEngineTest, ResumesASendingJobAfterACrash) {
  AddInput("2.25.100.1");
  const JobId id = CreateJob("fast");
  // The previous process persisted "sending" and died before the tool answered.
  CrashWhileSending(id);
  RunDueSteps();
  EXPECT_EQ(Job(id).state, JobState::kDelivering);
  EXPECT_EQ(scripts_["fast"]->Calls(), 1);
  EXPECT_EQ(ResultCount(id), 1u);
}

TEST_F(JobEngineTest, RedispatchAfterACrashDoesNotDuplicateResults) {
  AddInput("2.25.100.1");
  const JobId id = CreateJob("fast");
  RunDueSteps();
  ASSERT_EQ(Job(id).state, JobState::kDelivering);
  // As if the process died after attaching results but before recording "delivering".
  CrashWhileSending(id);
  RunDueSteps();
  EXPECT_EQ(Job(id).state, JobState::kDelivering);
  EXPECT_EQ(scripts_["fast"]->Calls(), 2);
  EXPECT_EQ(ResultCount(id), 1u) << "the tool's UIDs are deterministic: same result replaced";
}

TEST_F(JobEngineTest, QuarantinedResultsAreCountedAndDoNotFailTheJob) {
  AddInput("2.25.100.1");
  scripts_["fast"]->wrong_study = true;
  const JobId id = CreateJob("fast");
  RunDueSteps();
  EXPECT_EQ(Job(id).state, JobState::kDelivering);
  EXPECT_EQ(ResultCount(id), 0u);
  auto audit = index_->ListAudit(100, 0);
  ASSERT_TRUE(audit.ok());
  bool counted = false;
  for (const auto& e : *audit) {
    if (e.job_id == id && e.action == "dispatch" && e.outcome == "success") {
      counted = e.detail.find("\"quarantined\":1") != std::string::npos;
    }
  }
  EXPECT_TRUE(counted);
}

TEST_F(JobEngineTest, AResultCitingAQuarantinedResultIsWithheldAndNeverReachesPacs) {
  fs::create_directories(tmp_.path() / "pacs");
  auto pacs = StartPacs();
  ASSERT_NE(pacs, nullptr);
  AddInput("2.25.100.1");
  const JobId id = CreateJob("dimse");
  RunDueSteps();
  ASSERT_EQ(Job(id).state, JobState::kAwaitingResults);

  result_test::Inputs in;
  in.study = kStudy;
  in.series = std::string(kStudy) + ".1";
  in.sops = {"2.25.100.1"};
  auto seg = result_test::Segmentation(in);
  seg->getDataset()->findAndDeleteElement(DCM_PixelData);  // the validator refuses it
  auto sr = result_test::MeasurementReport(in);
  result_test::AddResultEvidence(*sr, *seg);  // the report cites the segmentation
  auto sc = result_test::SecondaryCapture(in, "2.25.100.1");
  // The tool stores the report first, then its broken SEG, then an unrelated capture.
  auto give = [&](const std::string& name, DcmFileFormat& object) {
    const fs::path file = tmp_.path() / name;
    EXPECT_TRUE(result_test::Save(object, file).ok());
    auto meta = ReadInstanceMeta(file);
    EXPECT_TRUE(meta.ok()) << meta.status().ToString();
    return meta.ok() ? intake_->Attach(Job(id), file, *meta, "dimse") : meta.status();
  };
  ASSERT_TRUE(give("sr.dcm", *sr).ok());
  ASSERT_EQ(give("seg.dcm", *seg).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(give("sc.dcm", *sc).ok());

  clock_.Advance(10s);
  RunDueSteps();
  ASSERT_EQ(Job(id).state, JobState::kDelivering);
  RunDueSteps();
  ASSERT_EQ(Job(id).state, JobState::kDone) << Job(id).last_error;

  EXPECT_EQ(pacs->WaitForReceived(1), 1);
  std::vector<std::string> received;
  for (const auto& e : fs::directory_iterator(tmp_.path() / "pacs")) {
    received.push_back(e.path().filename().string());
  }
  OFString sc_sop;
  sc->getDataset()->findAndGetOFString(DCM_SOPInstanceUID, sc_sop);
  ASSERT_EQ(received.size(), 1u) << "neither the SEG nor the report citing it reaches PACS";
  EXPECT_NE(received[0].find(sc_sop.c_str()), std::string::npos) << received[0];

  EXPECT_EQ(ResultCount(id), 1u);
  EXPECT_EQ(metrics_.Value("conduit_tool_results_invalid_total", R"(tool="dimse")"), 2);
  auto audit = index_->ListAudit(100, 0);
  ASSERT_TRUE(audit.ok());
  std::string done;
  for (const auto& e : *audit) {
    if (e.job_id == id && e.action == "done") done = e.detail;
  }
  EXPECT_NE(done.find("\"quarantined\":2"), std::string::npos) << done;
}

TEST_F(JobEngineTest, AwaitsResultsUntilTheyAreStable) {
  AddInput("2.25.100.1");
  const JobId id = CreateJob("dimse");
  RunDueSteps();
  JobRecord job = Job(id);
  ASSERT_EQ(job.state, JobState::kAwaitingResults);
  EXPECT_EQ(job.dispatched_at, clock_.Now());

  clock_.Advance(10s);
  RunDueSteps();
  EXPECT_EQ(Job(id).state, JobState::kAwaitingResults) << "no result yet";

  ToolReturnsResult(id);
  engine_->Wake();

  clock_.Advance(2s);
  RunDueSteps();
  EXPECT_EQ(Job(id).state, JobState::kAwaitingResults) << "results_stable_after is 5 s";
  clock_.Advance(3s);
  RunDueSteps();
  EXPECT_EQ(Job(id).state, JobState::kDelivering);
}

TEST_F(JobEngineTest, PolledToolIsAskedEveryPollIntervalAndItsResultsAreDelivered) {
  fs::create_directories(tmp_.path() / "pacs");
  auto pacs = StartPacs();
  ASSERT_NE(pacs, nullptr);
  AddInput("2.25.100.1");
  ToolScript& tool = *scripts_["polled"];
  tool.poll_batches = {0, 2, 0};
  const JobId id = CreateJob("polled");

  RunDueSteps();
  ASSERT_EQ(Job(id).state, JobState::kAwaitingResults);
  RunDueSteps();
  EXPECT_EQ(tool.Polls(), 0) << "the first poll comes a poll interval after the dispatch";

  clock_.Advance(30s);
  RunDueSteps();
  EXPECT_EQ(tool.Polls(), 1);
  EXPECT_EQ(ResultCount(id), 0u);
  clock_.Advance(10s);
  engine_->Wake();  // an early look (a result came by another path) does not poll
  RunDueSteps();
  EXPECT_EQ(tool.Polls(), 1);

  MakeEngine();  // a restart: what was sent is made again for the next poll
  clock_.Advance(20s);
  RunDueSteps();
  EXPECT_EQ(tool.Polls(), 2);
  EXPECT_EQ(ResultCount(id), 2u) << "polled results are attached as dispatch results are";
  EXPECT_EQ(Job(id).state, JobState::kAwaitingResults);

  clock_.Advance(30s);
  RunDueSteps();
  EXPECT_EQ(tool.Polls(), 3);
  EXPECT_EQ(tool.last_received, 2u) << "the tool is told which results the job holds";
  EXPECT_EQ(Job(id).state, JobState::kAwaitingResults) << "results_stable_after is 60 s";

  clock_.Advance(30s);
  RunDueSteps();
  EXPECT_EQ(Job(id).state, JobState::kDelivering);
  RunDueSteps();
  EXPECT_EQ(Job(id).state, JobState::kDone);
  EXPECT_EQ(pacs->WaitForReceived(2), 2);
}

TEST_F(JobEngineTest, AwaitingWithoutResultsPastTheTimeoutRetriesTheDispatch) {
  AddInput("2.25.100.1");
  config_.tools[2].timeout = 30s;
  const JobId id = CreateJob("dimse");
  RunDueSteps();
  ASSERT_EQ(Job(id).state, JobState::kAwaitingResults);
  clock_.Advance(31s);
  RunDueSteps();
  JobRecord job = Job(id);
  EXPECT_EQ(job.state, JobState::kQueued);
  EXPECT_EQ(job.attempts, 1);
  EXPECT_NE(job.last_error.find("timeout"), std::string::npos) << job.last_error;
  clock_.Advance(1min);
  RunDueSteps();
  EXPECT_EQ(Job(id).state, JobState::kAwaitingResults);
  EXPECT_EQ(scripts_["dimse"]->Calls(), 2);
  EXPECT_EQ(Job(id).attempts, 1) << "attempts count until results are in hand";
}

TEST_F(JobEngineTest, AwaitingPastTheTimeoutDeliversWhatArrived) {
  AddInput("2.25.100.1");
  config_.tools[2].timeout = 30s;
  config_.tools[2].results_stable_after = 60s;
  const JobId id = CreateJob("dimse");
  RunDueSteps();
  ToolReturnsResult(id);
  clock_.Advance(31s);
  RunDueSteps();
  EXPECT_EQ(Job(id).state, JobState::kDelivering);
}

TEST_F(JobEngineTest, ASaturatedToolDoesNotHoldUpAnotherTool) {
  AddInput("2.25.100.1");
  scripts_["slow"]->results_per_job = 0;
  scripts_["fast"]->results_per_job = 0;
  scripts_["slow"]->SetGate(false);
  const JobId slow1 = CreateJob("slow");
  const JobId slow2 = CreateJob("slow");
  const JobId fast = CreateJob("fast");

  ASSERT_TRUE(engine_->Start().ok());
  EXPECT_TRUE(WaitForState(fast, JobState::kDone)) << "the fast tool's job went through";
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (scripts_["slow"]->Running() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(scripts_["slow"]->Running(), 1);
  EXPECT_EQ(scripts_["slow"]->Calls(), 1) << "slow has max_concurrent 1: its second job waits";
  EXPECT_EQ(Job(slow2).state, JobState::kQueued);

  scripts_["slow"]->SetGate(true);
  engine_->Wake();
  EXPECT_TRUE(WaitForState(slow1, JobState::kDone));
  EXPECT_TRUE(WaitForState(slow2, JobState::kDone));
  EXPECT_EQ(scripts_["slow"]->max_running, 1);
  engine_->Stop();
}

TEST_F(JobEngineTest, StopWaitsForAStepInFlightAndTheNextStartResumes) {
  AddInput("2.25.100.1");
  scripts_["fast"]->results_per_job = 0;
  scripts_["fast"]->SetGate(false);
  const JobId id = CreateJob("fast");
  ASSERT_TRUE(engine_->Start().ok());
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (scripts_["fast"]->Running() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_EQ(scripts_["fast"]->Running(), 1);
  std::thread opener([&] {
    std::this_thread::sleep_for(200ms);
    scripts_["fast"]->SetGate(true);
  });
  engine_->Stop();  // returns once the step in flight has finished
  opener.join();
  EXPECT_EQ(Job(id).state, JobState::kDelivering);

  MakeEngine();
  ASSERT_TRUE(engine_->Start().ok());
  EXPECT_TRUE(WaitForState(id, JobState::kDone));
  engine_->Stop();
}

TEST_F(JobEngineTest, AnOpenCircuitHoldsBackOneToolsJobsWithoutUsingTheirAttempts) {
  ToolConfig& failing = config_.tools[1];  // "slow"
  failing.circuit_breaker.failure_threshold = 2;
  failing.circuit_breaker.open_for = 60s;
  failing.circuit_breaker.max_open_for = 600s;
  config_.retry.max_attempts = 4;
  MakeEngine();
  AddInput("2.25.100.1");
  ToolScript& down = *scripts_["slow"];
  ToolScript& healthy = *scripts_["fast"];
  down.results_per_job = 0;
  healthy.results_per_job = 0;
  for (int i = 0; i < 100; ++i) down.errors.push_back(Unavailable("tool down"));
  const std::vector<JobId> down_jobs = {CreateJob("slow"), CreateJob("slow"), CreateJob("slow")};
  const JobId healthy1 = CreateJob("fast");

  RunDueSteps();
  EXPECT_EQ(down.Calls(), 2) << "the second failure opened the circuit: the third job waits";
  EXPECT_EQ(Job(down_jobs[2]).state, JobState::kQueued);
  EXPECT_EQ(Job(down_jobs[2]).attempts, 0);
  EXPECT_EQ(Job(down_jobs[2]).next_attempt_at, clock_.Now() + 60s);
  EXPECT_EQ(metrics_.Value("conduit_tool_circuit_opened_total", R"(tool="slow")"), 1);
  EXPECT_EQ(metrics_.Value("conduit_tool_circuit_state", R"(tool="slow")"), 2);
  EXPECT_EQ(metrics_.Value("conduit_tool_circuit_state", R"(tool="fast")"), 0);
  const auto actions_before = AuditActions(down_jobs[2]);
  RunDueSteps();
  EXPECT_EQ(Job(healthy1).state, JobState::kDone) << "the healthy tool is not held back";

  for (int i = 0; i < 5; ++i) {  // within open_for: retries come due and are held back
    clock_.Advance(10s);
    const JobId healthy_job = CreateJob("fast");
    RunDueSteps();
    RunDueSteps();
    EXPECT_EQ(Job(healthy_job).state, JobState::kDone);
  }
  EXPECT_EQ(down.Calls(), 2) << "nothing is sent to a tool whose circuit is open";
  for (JobId id : down_jobs) {
    EXPECT_EQ(Job(id).state, JobState::kQueued);
    EXPECT_LE(Job(id).attempts, 1) << "no attempt is used while the circuit is open";
  }
  EXPECT_EQ(AuditActions(down_jobs[2]), actions_before) << "held back without an audit event";

  clock_.Advance(10s);  // open_for has passed: one probe, which fails
  RunDueSteps();
  EXPECT_EQ(down.Calls(), 3) << "exactly one probe";
  EXPECT_EQ(metrics_.Value("conduit_tool_circuit_opened_total", R"(tool="slow")"), 2);
  clock_.Advance(60s);
  RunDueSteps();
  EXPECT_EQ(down.Calls(), 3) << "a failed probe reopens for twice as long (120 s)";

  {
    std::lock_guard lock(down.mu);
    down.errors.clear();  // the tool is back
  }
  clock_.Advance(60s);
  RunDueSteps();
  EXPECT_EQ(metrics_.Value("conduit_tool_circuit_state", R"(tool="slow")"), 0);
  RunDueSteps();
  for (JobId id : down_jobs) {
    EXPECT_EQ(Job(id).state, JobState::kDone) << "job " << id.value;
  }
  EXPECT_EQ(down.Calls(), 6);

  auto audit = index_->ListAudit(1000, 0);
  ASSERT_TRUE(audit.ok());
  int opened = 0, closed = 0;
  for (const auto& e : *audit) {
    if (e.action == "circuit_open" || e.action == "circuit_closed") {
      EXPECT_EQ(e.actor, "slow");
      EXPECT_EQ(e.job_id.value, 0);
      (e.action == "circuit_open" ? opened : closed) += 1;
    }
  }
  EXPECT_EQ(opened, 2);
  EXPECT_EQ(closed, 1);
}

TEST_F(JobEngineTest, AJobPastItsToolsExpectedTurnaroundIsReportedOnce) {
  config_.tools[2].expected_turnaround = 30s;  // "dimse"
  MakeEngine();
  AddInput("2.25.100.1");
  const JobId id = CreateJob("dimse");
  RunDueSteps();
  ASSERT_EQ(Job(id).state, JobState::kAwaitingResults);
  const char* metric = "conduit_tool_turnaround_exceeded_total";

  clock_.Advance(20s);
  RunDueSteps();
  EXPECT_EQ(metrics_.Value(metric, R"(tool="dimse")"), 0);
  clock_.Advance(15s);
  RunDueSteps();
  EXPECT_EQ(metrics_.Value(metric, R"(tool="dimse")"), 1);
  clock_.Advance(15s);
  RunDueSteps();
  EXPECT_EQ(metrics_.Value(metric, R"(tool="dimse")"), 1) << "once per job";
  EXPECT_EQ(Job(id).state, JobState::kAwaitingResults) << "late is reported, not failed";

  MakeEngine();  // documented: the set is in memory, a restart reports a late job again
  RunDueSteps();
  EXPECT_EQ(metrics_.Value(metric, R"(tool="dimse")"), 2);

  ToolReturnsResult(id);
  clock_.Advance(5s);
  RunDueSteps();
  EXPECT_EQ(Job(id).state, JobState::kDelivering);
}

TEST_F(JobEngineTest, ADispatchStillRunningPastTheExpectedTurnaroundIsReported) {
  config_.tools[0].expected_turnaround = 30s;  // "fast"
  MakeEngine();
  AddInput("2.25.100.1");
  scripts_["fast"]->results_per_job = 0;
  scripts_["fast"]->SetGate(false);
  const JobId id = CreateJob("fast");
  ASSERT_TRUE(engine_->Start().ok());
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (scripts_["fast"]->Running() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_EQ(scripts_["fast"]->Running(), 1);
  const char* metric = "conduit_tool_turnaround_exceeded_total";
  EXPECT_EQ(metrics_.Value(metric, R"(tool="fast")"), 0);
  clock_.Advance(31s);
  deadline = std::chrono::steady_clock::now() + 60s;
  while (metrics_.Value(metric, R"(tool="fast")") == 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(metrics_.Value(metric, R"(tool="fast")"), 1);
  scripts_["fast"]->SetGate(true);
  EXPECT_TRUE(WaitForState(id, JobState::kDone));
  engine_->Stop();
  EXPECT_EQ(metrics_.Value(metric, R"(tool="fast")"), 1);
}

TEST_F(JobEngineTest, AToolThatSaysItIsDoneIsDeliveredWithoutWaitingForQuiet) {
  AddInput("2.25.100.1");
  const JobId id = CreateJob("dimse");
  scripts_["dimse"]->SetProgress(ToolAdapter::Progress::kRunning);
  RunDueSteps();
  ASSERT_EQ(Job(id).state, JobState::kAwaitingResults);

  ToolReturnsResult(id);
  clock_.Advance(10s);  // well past results_stable_after (5 s): still running, so it waits
  RunDueSteps();
  EXPECT_EQ(Job(id).state, JobState::kAwaitingResults) << "the tool has not said it is done";
  const int checks = scripts_["dimse"]->ProgressChecks();

  clock_.Advance(ToolAdapter::kProgressCheckInterval);
  scripts_["dimse"]->SetProgress(ToolAdapter::Progress::kDone);
  RunDueSteps();
  EXPECT_GT(scripts_["dimse"]->ProgressChecks(), checks) << "asked again within the interval";
  EXPECT_EQ(Job(id).state, JobState::kDelivering);
  EXPECT_EQ(ResultCount(id), 1u);
}

TEST_F(JobEngineTest, AToolThatGivesUpOnAJobHasItDispatchedAgain) {
  AddInput("2.25.100.1");
  const JobId id = CreateJob("dimse");
  scripts_["dimse"]->SetProgress(ToolAdapter::Progress::kRunning);
  RunDueSteps();
  ASSERT_EQ(Job(id).state, JobState::kAwaitingResults);
  ASSERT_EQ(scripts_["dimse"]->Calls(), 1);

  scripts_["dimse"]->SetProgress(ToolAdapter::Progress::kFailed, "workitem canceled: no GPU");
  engine_->Wake();
  RunDueSteps();
  JobRecord job = Job(id);
  EXPECT_EQ(job.state, JobState::kQueued);
  EXPECT_EQ(job.attempts, 1);
  EXPECT_NE(job.last_error.find("no GPU"), std::string::npos) << job.last_error;

  scripts_["dimse"]->SetProgress(ToolAdapter::Progress::kRunning);
  clock_.Advance(config_.retry.max_backoff);
  RunDueSteps();
  EXPECT_EQ(scripts_["dimse"]->Calls(), 2);
  EXPECT_EQ(Job(id).state, JobState::kAwaitingResults);
}

TEST_F(JobEngineTest, TheReporterHearsOfADeliveredJobBeforeItIsDoneAndARefusalIsRetried) {
  auto pacs = StartPacs();
  ASSERT_NE(pacs, nullptr);
  RecordingReporter reporter;
  engine_->SetReporter(&reporter);
  reporter.FailNext(1);
  AddInput("2.25.100.1");
  const JobId id = CreateJob("fast");

  RunDueSteps();  // dispatch: results at once
  RunDueSteps();  // deliver to PACS, then the reporter refuses
  JobRecord job = Job(id);
  EXPECT_EQ(job.state, JobState::kDelivering);
  EXPECT_EQ(job.attempts, 1);
  EXPECT_EQ(reporter.Calls().size(), 1u);

  clock_.Advance(config_.retry.max_backoff);
  RunDueSteps();
  EXPECT_EQ(Job(id).state, JobState::kDone);
  EXPECT_EQ(reporter.Calls(), (std::vector<int64_t>{id.value, id.value}));
  EXPECT_EQ(pacs->ReceivedCount(), 1) << "PACS got the result once despite the retry";
}

TEST_F(JobEngineTest, AShadowJobKeepsItsResultsAndTellsNeitherPacsNorTheRis) {
  auto pacs = StartPacs();
  ASSERT_NE(pacs, nullptr);
  RecordingReporter reporter;
  engine_->SetReporter(&reporter);
  AddInput("2.25.100.1");
  const JobId shadow = CreateJob("fast", /*shadow=*/true);
  RunDueSteps();  // dispatch: results at once
  RunDueSteps();  // "delivery": to no destination, no report
  const JobRecord job = Job(shadow);
  EXPECT_EQ(job.state, JobState::kDone);
  EXPECT_TRUE(job.shadow) << "kept in the index";
  EXPECT_TRUE(reporter.Calls().empty());
  EXPECT_EQ(pacs->ReceivedCount(), 0);
  auto results = index_->ListResults(shadow);
  ASSERT_TRUE(results.ok());
  EXPECT_FALSE(results->empty()) << "its results are kept, for the evidence layer";
  auto audit = index_->ListAudit(100, 0);
  ASSERT_TRUE(audit.ok());
  EXPECT_TRUE(std::any_of(audit->begin(), audit->end(), [&](const AuditEvent& a) {
    return a.job_id == shadow && a.action == "done" &&
           a.detail.find("\"shadow\":true") != std::string::npos;
  }));

  // The same tool in a clinical route is reported.
  const JobId clinical = CreateJob("fast");
  RunDueSteps();
  RunDueSteps();
  EXPECT_EQ(Job(clinical).state, JobState::kDone);
  EXPECT_EQ(reporter.Calls(), (std::vector<int64_t>{clinical.value}));
}

TEST_F(JobEngineTest, PriorsJoinTheInputsOfToolsThatAskForThem) {
  const fs::path prior = tmp_.path() / "prior.dcm";
  ASSERT_TRUE(WriteTestDicom(prior, "1.2.826.0.1.3680043.10.543.7",
                             "1.2.826.0.1.3680043.10.543.7.1", "2.25.700.1")
                  .ok());
  FilePriors priors(prior);
  engine_->SetPriorFetcher(&priors);
  AddInput("2.25.100.1");
  const JobId id = CreateJob("fast");
  RunDueSteps();
  EXPECT_EQ(Job(id).state, JobState::kDelivering);
  ASSERT_EQ(scripts_["fast"]->last_inputs.size(), 2u);
  EXPECT_EQ(scripts_["fast"]->last_inputs.back(), prior);

  // A prior that must be waited for and cannot be fetched: the dispatch is retried.
  priors.error = Unavailable("prior not fetched within 60 s");
  const JobId waiting = CreateJob("fast");
  RunDueSteps();
  JobRecord job = Job(waiting);
  EXPECT_EQ(job.state, JobState::kQueued);
  EXPECT_EQ(job.attempts, 1);
  EXPECT_EQ(scripts_["fast"]->Calls(), 1) << "nothing sent without its priors";
}

TEST(BackoffTest, DoublesWithJitterAndStaysWithinBounds) {
  RetryConfig retry;
  retry.initial_backoff = 2s;
  retry.max_backoff = 300s;
  struct Case {
    int attempt;
    double u;
    std::chrono::milliseconds want;
  };
  const std::vector<Case> cases = {
      {1, 0.0, 1000ms},   {1, 0.999999, 1999ms}, {2, 0.0, 2000ms},        {3, 0.5, 6000ms},
      {8, 0.0, 128000ms}, {9, 0.0, 150000ms},    {9, 0.999999, 299999ms}, {1000, 0.0, 150000ms},
      {0, 0.0, 1000ms},   {1, -1.0, 1000ms},     {1, 7.0, 2000ms},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(Backoff(retry, c.attempt, c.u), c.want) << "attempt " << c.attempt << " u " << c.u;
  }
  for (int attempt = 1; attempt < 40; ++attempt) {
    for (double u : {0.0, 0.25, 0.5, 0.75, 0.99}) {
      const auto d = Backoff(retry, attempt, u);
      EXPECT_GE(d, 1000ms);
      EXPECT_LE(d, 300s);
    }
  }
}

}  // namespace
}  // namespace conduit
