// The UPS Task Manager on a real SQLite index, a fake clock and a sink that records events.
#include "adapters/ups_worklist.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "adapters/ups_dataset.h"
#include "core/dicom_uid.h"
#include "store/sqlite_index.h"
#include "testing/testing.h"

namespace conduit {
namespace {

using json = nlohmann::json;
using std::chrono::minutes;
using std::chrono::seconds;

// Records what the Worklist sends, as the event channel would carry it.
class RecordingSink : public UpsEventSink {
 public:
  struct Sent {
    std::string subscriber;
    UpsEvent event;
  };
  void Send(const std::string& subscriber_ae, const UpsEvent& event) override {
    std::lock_guard lock(mu_);
    sent_.push_back({subscriber_ae, event});
  }
  std::vector<Sent> To(const std::string& subscriber) {
    std::lock_guard lock(mu_);
    std::vector<Sent> out;
    for (const Sent& s : sent_) {
      if (s.subscriber == subscriber) out.push_back(s);
    }
    return out;
  }
  std::vector<Sent> All() {
    std::lock_guard lock(mu_);
    return sent_;
  }

 private:
  std::mutex mu_;
  std::vector<Sent> sent_;
};

// A sequence of one item holding one element.
json OneItem(const std::string& tag, json element) {
  json item = json::object();
  item[tag] = std::move(element);
  return DicomJsonSequence({item});
}

std::string StateOf(const UpsEvent& e) {
  return DicomJsonString(json::parse(e.attributes), upstag::kProcedureStepState);
}

class WorklistTest : public ::testing::Test {
 protected:
  WorklistTest() {
    ToolConfig lungs;
    lungs.name = "lungs";
    lungs.kind = ToolKind::kWorklist;
    lungs.expected_turnaround = minutes(10);
    lungs.timeout = minutes(30);
    ToolConfig quick = lungs;
    quick.name = "quick";
    quick.expected_turnaround = minutes(0);
    quick.timeout = minutes(5);
    ToolConfig local;
    local.name = "local";
    local.kind = ToolKind::kExecutable;
    config_.tools = {lungs, quick, local};
    auto index = OpenSqliteIndex(dir_.path() / "index.sqlite");
    EXPECT_TRUE(index.ok()) << index.status().ToString();
    index_ = std::move(index).value();
    worklist_ = std::make_unique<Worklist>(
        *index_, clock_, config_, metrics_, &sink_,
        // A stand-in for the HTTP layer's query matching: the filter is a text to contain.
        [](const std::string& filter, const std::string& dataset) {
          return dataset.find(filter) != std::string::npos;
        },
        [this](JobId job) {
          std::lock_guard lock(changed_mu_);
          changed_.push_back(job);
        });
  }

  JobRecord Job(int64_t id) {
    JobRecord job;
    job.id = JobId{id};
    job.study_uid = StudyUid("1.2.3.4." + std::to_string(id));
    job.tool = "lungs";
    return job;
  }

  std::string Dataset() {
    return json{{upstag::kPatientId, DicomJsonValue("LO", "P0000000000000001")},
                {upstag::kInputReadinessState, DicomJsonValue("CS", "READY")}}
        .dump();
  }

  WorkitemRecord Schedule(int64_t job, const std::string& tool = "lungs",
                          const std::string& priority = "MEDIUM") {
    JobRecord j = Job(job);
    j.tool = tool;
    auto w = worklist_->ScheduleForJob(j, tool, Dataset(), priority);
    EXPECT_TRUE(w.ok()) << w.status().ToString();
    return w.ok() ? *w : WorkitemRecord{};
  }

  std::vector<JobId> Changed() {
    std::lock_guard lock(changed_mu_);
    return changed_;
  }

  std::vector<std::string> AuditActions() {
    std::vector<std::string> out;
    auto audit = index_->ListAudit(1000, 0);
    EXPECT_TRUE(audit.ok());
    for (auto it = audit->rbegin(); it != audit->rend(); ++it) out.push_back(it->action);
    return out;
  }

  double Count(const std::string& tool, const std::string& state) {
    return metrics_.Value("conduit_workitems_total",
                          "tool=\"" + tool + "\",state=\"" + state + "\"");
  }

  const UpsCaller performer_{"lungs", "PERFORMER1"};
  const UpsCaller admin_{};
  testing::TempDir dir_;
  FakeClock clock_;
  Metrics metrics_;
  Config config_;
  RecordingSink sink_;
  std::mutex changed_mu_;
  std::vector<JobId> changed_;
  std::unique_ptr<Index> index_;
  std::unique_ptr<Worklist> worklist_;
};

TEST_F(WorklistTest, ScheduleCreatesOneScheduledUpsPushWorkitemPerJob) {
  WorkitemRecord w = Schedule(1, "lungs", "HIGH");
  EXPECT_TRUE(IsDicomUidText(w.uid)) << w.uid;
  EXPECT_EQ(w.uid.rfind("2.25.", 0), 0u);
  EXPECT_EQ(w.state, UpsState::kScheduled);
  EXPECT_EQ(w.priority, "HIGH");
  const json ds = json::parse(w.dataset);
  EXPECT_EQ(DicomJsonString(ds, upstag::kSopClassUid), kUpsPushSopClassUid);
  EXPECT_EQ(DicomJsonString(ds, upstag::kSopInstanceUid), w.uid);
  EXPECT_EQ(DicomJsonString(ds, upstag::kProcedureStepState), "SCHEDULED");
  EXPECT_EQ(DicomJsonString(ds, upstag::kScheduledProcedureStepPriority), "HIGH");
  EXPECT_EQ(DicomJsonString(ds, upstag::kWorklistLabel), "lungs");
  EXPECT_EQ(DicomJsonString(ds, upstag::kPatientId), "P0000000000000001") << "kept as given";

  WorkitemRecord again = Schedule(1);
  EXPECT_EQ(again.uid, w.uid) << "a dispatch retried after a crash makes no second workitem";
  EXPECT_EQ(index_->WorkitemsOfJob(JobId{1})->size(), 1u);
  EXPECT_EQ(Count("lungs", "SCHEDULED"), 1);
  EXPECT_EQ(AuditActions(), std::vector<std::string>{"workitem_scheduled"});
}

TEST_F(WorklistTest, ScheduleRefusesWhatIsNotAWorklistJob) {
  JobRecord job = Job(1);
  EXPECT_EQ(worklist_->ScheduleForJob(job, "local", Dataset(), "MEDIUM").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(worklist_->ScheduleForJob(job, "nosuch", Dataset(), "MEDIUM").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(worklist_->ScheduleForJob(job, "lungs", Dataset(), "STAT").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(worklist_->ScheduleForJob(job, "lungs", "[1,2]", "LOW").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(index_->WorkitemsOfJob(JobId{1})->empty());
}

TEST_F(WorklistTest, ClaimStartsTheWorkOnceAndNeverShowsTheTransactionUid) {
  WorkitemRecord w = Schedule(1);
  const std::string txn = "2.25.424242424242";
  EXPECT_EQ(worklist_->Claim(performer_, w.uid, "not-a-uid").code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(worklist_->Claim(performer_, w.uid, txn).ok());
  Status again = worklist_->Claim(performer_, w.uid, "2.25.1");
  EXPECT_EQ(again.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(again.message().find("IN PROGRESS"), std::string::npos) << again.message();

  auto got = worklist_->Get(performer_, w.uid);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->state, UpsState::kInProgress);
  EXPECT_EQ(got->performer, "PERFORMER1");
  EXPECT_TRUE(got->transaction_uid.empty());
  EXPECT_EQ(got->claimed_at, clock_.Now());
  EXPECT_EQ(DicomJsonString(json::parse(got->dataset), upstag::kProcedureStepState), "IN PROGRESS");
  EXPECT_EQ(got->dataset.find(txn), std::string::npos);
  auto listed = worklist_->List(admin_, std::nullopt, 10, 0);
  ASSERT_TRUE(listed.ok());
  for (const auto& w2 : *listed) EXPECT_TRUE(w2.transaction_uid.empty());
  EXPECT_EQ((*index_->GetWorkitem(w.uid))->transaction_uid, txn) << "stored, for the checks";
  auto audit = index_->ListAudit(100, 0);
  ASSERT_TRUE(audit.ok());
  for (const AuditEvent& e : *audit) {
    EXPECT_EQ(e.detail.find(txn), std::string::npos) << e.detail;
    EXPECT_EQ(e.detail.find(w.uid), std::string::npos) << "no UID in clear: " << e.detail;
  }
  EXPECT_EQ(Count("lungs", "IN PROGRESS"), 1);
}

TEST_F(WorklistTest, AToolSeesOnlyItsOwnWorklist) {
  WorkitemRecord lungs = Schedule(1, "lungs");
  WorkitemRecord quick = Schedule(2, "quick");
  const UpsCaller other{"quick", "QUICK1"};
  EXPECT_EQ(worklist_->Get(other, lungs.uid).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(worklist_->Claim(other, lungs.uid, "2.25.5").code(), StatusCode::kNotFound);
  EXPECT_EQ(worklist_->RequestCancel(other, lungs.uid, "").code(), StatusCode::kNotFound);
  EXPECT_EQ(worklist_->Subscribe(other, "QUICK1", lungs.uid, false, "").code(),
            StatusCode::kNotFound);
  auto mine = worklist_->List(other, std::nullopt, 10, 0);
  ASSERT_EQ(mine->size(), 1u);
  EXPECT_EQ((*mine)[0].uid, quick.uid);
  EXPECT_EQ(worklist_->List(admin_, std::nullopt, 10, 0)->size(), 2u);
  EXPECT_EQ(worklist_->List(admin_, UpsState::kInProgress, 10, 0)->size(), 0u);
  EXPECT_TRUE(worklist_->Get(admin_, lungs.uid).ok()) << "the administrator sees every worklist";
}

TEST_F(WorklistTest, UpdateMergesProgressAndRefusesWhatAPerformerMayNotSet) {
  WorkitemRecord w = Schedule(1);
  const std::string txn = "2.25.77";
  ASSERT_TRUE(worklist_->Subscribe(performer_, "WATCHER", w.uid, false, "").ok());
  const json progress = {{upstag::kProcedureStepProgressInformationSequence,
                          OneItem("00741004", DicomJsonValue("DS", "50"))}};
  EXPECT_EQ(worklist_->Update(performer_, w.uid, txn, progress.dump()).code(),
            StatusCode::kFailedPrecondition)
      << "not claimed yet";
  ASSERT_TRUE(worklist_->Claim(performer_, w.uid, txn).ok());
  EXPECT_EQ(worklist_->Update(performer_, w.uid, "2.25.78", progress.dump()).code(),
            StatusCode::kPermissionDenied);

  clock_.Advance(seconds(30));
  ASSERT_TRUE(worklist_->Update(performer_, w.uid, txn, progress.dump()).ok());
  WorkitemRecord got = *worklist_->Get(performer_, w.uid);
  EXPECT_EQ(got.progress_at, clock_.Now());
  const json ds = json::parse(got.dataset);
  EXPECT_EQ(ds[upstag::kProcedureStepProgressInformationSequence],
            progress[upstag::kProcedureStepProgressInformationSequence]);
  EXPECT_EQ(DicomJsonString(ds, upstag::kProcedureStepState), "IN PROGRESS");

  auto events = sink_.To("WATCHER");
  ASSERT_EQ(events.size(), 3u) << "state at subscription, claim, progress";
  EXPECT_EQ(events[2].event.event_type, 3);
  EXPECT_EQ(events[2].event.workitem_uid, w.uid);
  EXPECT_EQ(
      json::parse(events[2].event.attributes)[upstag::kProcedureStepProgressInformationSequence],
      progress[upstag::kProcedureStepProgressInformationSequence]);
  // The same progress again is no news.
  ASSERT_TRUE(worklist_->Update(performer_, w.uid, txn, progress.dump()).ok());
  EXPECT_EQ(sink_.To("WATCHER").size(), 3u);

  struct Forbidden {
    std::string tag;
    std::string vr;
  };
  for (const Forbidden& f : std::vector<Forbidden>{{"00741000", "CS"},  // state
                                                   {"00080018", "UI"},  // SOP Instance UID
                                                   {"00080016", "UI"},  // SOP Class UID
                                                   {"00100010", "PN"},  // patient
                                                   {"00100020", "LO"},
                                                   {"0020000D", "UI"},     // study
                                                   {"00404005", "DT"},     // scheduled start
                                                   {"00741200", "CS"},     // priority
                                                   {"00404021", "SQ"}}) {  // inputs
    json change = {{f.tag, DicomJsonValue(f.vr, "X")}};
    Status st = worklist_->Update(performer_, w.uid, txn, change.dump());
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << f.tag;
    const std::string named = "(" + f.tag.substr(0, 4) + "," + f.tag.substr(4) + ")";
    EXPECT_NE(st.message().find(named), std::string::npos) << st.message();
  }
  EXPECT_EQ(worklist_->Update(performer_, w.uid, txn, "not json").code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(worklist_->Update(performer_, w.uid, txn, R"({"bad":{"vr":"SQ"}})").code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(
      worklist_->Update(performer_, w.uid, txn, R"({"00741002":{"vr":"SQ","Value":"x"}})").code(),
      StatusCode::kInvalidArgument);
  EXPECT_EQ(json::parse(worklist_->Get(performer_, w.uid)->dataset), ds)
      << "refused updates change nothing";
}

TEST_F(WorklistTest, CompletingTellsTheJobAndTheSubscribers) {
  WorkitemRecord w = Schedule(7);
  const std::string txn = "2.25.99";
  ASSERT_TRUE(worklist_->Subscribe(performer_, "PERFORMER1", w.uid, true, "").ok());
  ASSERT_TRUE(worklist_->Claim(performer_, w.uid, txn).ok());
  EXPECT_EQ(worklist_->Finish(performer_, w.uid, txn, UpsState::kInProgress, "").code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(worklist_->Finish(performer_, w.uid, "2.25.98", UpsState::kCompleted, "").code(),
            StatusCode::kPermissionDenied);
  EXPECT_TRUE(Changed().empty());
  ASSERT_TRUE(worklist_->Finish(performer_, w.uid, txn, UpsState::kCompleted, "").ok());
  EXPECT_EQ(Changed(), std::vector<JobId>{JobId{7}});
  EXPECT_TRUE(worklist_->Finish(performer_, w.uid, txn, UpsState::kCompleted, "").ok())
      << "a retried completion";
  EXPECT_EQ(worklist_->Finish(performer_, w.uid, txn, UpsState::kCanceled, "").code(),
            StatusCode::kFailedPrecondition);
  auto current = worklist_->CurrentForJob(Job(7));
  ASSERT_TRUE(current.ok());
  ASSERT_TRUE(current->has_value());
  EXPECT_EQ((*current)->state, UpsState::kCompleted);

  auto events = sink_.To("PERFORMER1");
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(StateOf(events[0].event), "SCHEDULED");
  EXPECT_EQ(StateOf(events[1].event), "IN PROGRESS");
  EXPECT_EQ(StateOf(events[2].event), "COMPLETED");
  for (const auto& e : events) EXPECT_EQ(e.event.event_type, 1);
  EXPECT_EQ(Count("lungs", "COMPLETED"), 1);
  EXPECT_EQ(AuditActions(), (std::vector<std::string>{"workitem_scheduled", "ups_subscribed",
                                                      "workitem_claimed", "workitem_completed"}));
  // A later job's dispatch makes a new workitem: the completed one is history.
  EXPECT_NE(Schedule(7).uid, w.uid);
}

TEST_F(WorklistTest, APerformerCancelingRecordsWhyAndTellsTheJob) {
  WorkitemRecord w = Schedule(3);
  ASSERT_TRUE(worklist_->Claim(performer_, w.uid, "2.25.3").ok());
  ASSERT_TRUE(
      worklist_->Finish(performer_, w.uid, "2.25.3", UpsState::kCanceled, "no lung in view").ok());
  WorkitemRecord got = *worklist_->Get(admin_, w.uid);
  EXPECT_EQ(got.state, UpsState::kCanceled);
  EXPECT_EQ(UpsCancellationReason(got.dataset), "no lung in view");
  EXPECT_EQ(Changed(), std::vector<JobId>{JobId{3}});
  EXPECT_EQ(Count("lungs", "CANCELED"), 1);
}

TEST_F(WorklistTest, CancelRequestsCancelAScheduledWorkitemAndAskAPerformer) {
  WorkitemRecord waiting = Schedule(1);
  ASSERT_TRUE(worklist_->RequestCancel(admin_, waiting.uid, "study withdrawn").ok());
  WorkitemRecord got = *worklist_->Get(admin_, waiting.uid);
  EXPECT_EQ(got.state, UpsState::kCanceled);
  EXPECT_EQ(UpsCancellationReason(got.dataset), "study withdrawn");
  EXPECT_EQ(Changed(), std::vector<JobId>{JobId{1}});
  EXPECT_EQ(worklist_->RequestCancel(admin_, waiting.uid, "").code(),
            StatusCode::kFailedPrecondition);

  WorkitemRecord working = Schedule(2);
  ASSERT_TRUE(worklist_->Subscribe(performer_, "PERFORMER1", working.uid, false, "").ok());
  ASSERT_TRUE(worklist_->Claim(performer_, working.uid, "2.25.2").ok());
  const UpsCaller requester{"", "RIS1"};
  ASSERT_TRUE(worklist_->RequestCancel(requester, working.uid, "patient moved").ok());
  got = *worklist_->Get(admin_, working.uid);
  EXPECT_EQ(got.state, UpsState::kInProgress) << "the performer decides";
  EXPECT_TRUE(got.cancel_requested);
  auto events = sink_.To("PERFORMER1");
  ASSERT_FALSE(events.empty());
  const UpsEvent& asked = events.back().event;
  EXPECT_EQ(asked.event_type, 2);
  const json attributes = json::parse(asked.attributes);
  EXPECT_EQ(DicomJsonString(attributes, upstag::kReasonForCancellation), "patient moved");
  EXPECT_EQ(DicomJsonString(attributes, upstag::kRequestingAe), "RIS1");
  EXPECT_EQ(Changed().size(), 1u) << "the job is told only when the workitem ends";
}

TEST_F(WorklistTest, WorklistSubscribersFollowNewWorkitemsUnlessSuspendedOrFilteredOut) {
  ASSERT_TRUE(worklist_->Subscribe(performer_, "WATCH", "", false, "").ok());
  ASSERT_TRUE(worklist_->Subscribe(performer_, "URGENT", "", false, "HIGH").ok());
  EXPECT_EQ(worklist_->Subscribe(performer_, "BAD\\AE", "", false, "").code(),
            StatusCode::kInvalidArgument);
  WorkitemRecord first = Schedule(1, "lungs", "MEDIUM");
  WorkitemRecord urgent = Schedule(2, "lungs", "HIGH");
  Schedule(3, "quick");  // another worklist
  ASSERT_EQ(sink_.To("WATCH").size(), 2u);
  EXPECT_EQ(sink_.To("WATCH")[0].event.workitem_uid, first.uid);
  ASSERT_EQ(sink_.To("URGENT").size(), 1u);
  EXPECT_EQ(sink_.To("URGENT")[0].event.workitem_uid, urgent.uid);

  ASSERT_TRUE(worklist_->Suspend(performer_, "WATCH").ok());
  EXPECT_EQ(worklist_->Suspend(performer_, "NOBODY").code(), StatusCode::kNotFound);
  Schedule(4);
  EXPECT_EQ(sink_.To("WATCH").size(), 2u) << "suspended: new workitems are not followed";
  ASSERT_TRUE(worklist_->Claim(performer_, first.uid, "2.25.11").ok());
  ASSERT_EQ(sink_.To("WATCH").size(), 3u) << "those already followed still are";
  EXPECT_EQ(StateOf(sink_.To("WATCH")[2].event), "IN PROGRESS");

  // Unsubscribing from the worklist ends the workitem subscriptions it made too.
  ASSERT_TRUE(worklist_->Unsubscribe(performer_, "WATCH", "").ok());
  ASSERT_TRUE(worklist_->Unsubscribe(performer_, "WATCH", "").ok()) << "twice is fine";
  ASSERT_TRUE(worklist_->Finish(performer_, first.uid, "2.25.11", UpsState::kCompleted, "").ok());
  EXPECT_EQ(sink_.To("WATCH").size(), 3u);
}

TEST_F(WorklistTest, ANewSubscriberHearsTheCurrentStateAtOnce) {
  WorkitemRecord open = Schedule(1);
  WorkitemRecord claimed = Schedule(2);
  WorkitemRecord done = Schedule(3);
  ASSERT_TRUE(worklist_->Claim(performer_, claimed.uid, "2.25.2").ok());
  ASSERT_TRUE(worklist_->Claim(performer_, done.uid, "2.25.3").ok());
  ASSERT_TRUE(worklist_->Finish(performer_, done.uid, "2.25.3", UpsState::kCompleted, "").ok());

  ASSERT_TRUE(worklist_->Subscribe(performer_, "ONE", done.uid, false, "").ok());
  ASSERT_EQ(sink_.To("ONE").size(), 1u);
  EXPECT_EQ(StateOf(sink_.To("ONE")[0].event), "COMPLETED");

  ASSERT_TRUE(worklist_->Subscribe(performer_, "ALL", "", false, "").ok());
  auto all = sink_.To("ALL");
  ASSERT_EQ(all.size(), 2u) << "each open workitem of the worklist, not the finished one";
  EXPECT_EQ(all[0].event.workitem_uid, open.uid);
  EXPECT_EQ(StateOf(all[0].event), "SCHEDULED");
  EXPECT_EQ(all[1].event.workitem_uid, claimed.uid);
  EXPECT_EQ(StateOf(all[1].event), "IN PROGRESS");
}

TEST_F(WorklistTest, AClaimSilentPastTheTurnaroundIsAbandonedAndScheduledAgain) {
  WorkitemRecord w = Schedule(5);
  ASSERT_TRUE(worklist_->Subscribe(performer_, "PERFORMER1", w.uid, false, "").ok());
  const std::string txn = "2.25.5";
  ASSERT_TRUE(worklist_->Claim(performer_, w.uid, txn).ok());
  const json progress = {{upstag::kProcedureStepProgressInformationSequence,
                          OneItem("00741004", DicomJsonValue("DS", "10"))}};
  clock_.Advance(minutes(9));
  ASSERT_TRUE(worklist_->Update(performer_, w.uid, txn, progress.dump()).ok());
  clock_.Advance(minutes(9));
  auto current = worklist_->CurrentForJob(Job(5));
  ASSERT_TRUE(current.ok());
  EXPECT_EQ((*current)->uid, w.uid) << "progress 9 min ago: within the 10 min turnaround";
  EXPECT_EQ((*current)->state, UpsState::kInProgress);
  EXPECT_TRUE(Changed().empty());

  clock_.Advance(minutes(2));
  current = worklist_->CurrentForJob(Job(5));
  ASSERT_TRUE(current.ok()) << current.status().ToString();
  ASSERT_TRUE(current->has_value());
  const WorkitemRecord fresh = **current;
  EXPECT_NE(fresh.uid, w.uid);
  EXPECT_EQ(fresh.state, UpsState::kScheduled);
  EXPECT_EQ(fresh.job_id, JobId{5});
  EXPECT_TRUE(fresh.performer.empty());

  WorkitemRecord old = *worklist_->Get(admin_, w.uid);
  EXPECT_EQ(old.state, UpsState::kCanceled);
  EXPECT_EQ(UpsCancellationReason(old.dataset), Worklist::kAbandonedReason);
  EXPECT_EQ(worklist_->Update(performer_, w.uid, txn, progress.dump()).code(),
            StatusCode::kFailedPrecondition)
      << "the silent performer's claim is over";

  // The same request, anew: no progress of the old claim, a reference to what it replaces.
  json old_ds = json::parse(old.dataset);
  json fresh_ds = json::parse(fresh.dataset);
  EXPECT_FALSE(fresh_ds.contains(upstag::kProcedureStepProgressInformationSequence));
  EXPECT_EQ(DicomJsonString(fresh_ds, upstag::kSopInstanceUid), fresh.uid);
  EXPECT_EQ(DicomJsonString(fresh_ds, upstag::kProcedureStepState), "SCHEDULED");
  EXPECT_EQ(DicomJsonString(fresh_ds[upstag::kReplacedProcedureStepSequence]["Value"][0],
                            upstag::kReferencedSopInstanceUid),
            w.uid);
  for (const char* tag : {upstag::kProcedureStepState, upstag::kSopInstanceUid,
                          upstag::kProcedureStepProgressInformationSequence,
                          upstag::kReplacedProcedureStepSequence}) {
    old_ds.erase(tag);
    fresh_ds.erase(tag);
  }
  EXPECT_EQ(fresh_ds, old_ds);

  EXPECT_EQ(metrics_.Value("conduit_workitems_abandoned_total", "tool=\"lungs\""), 1);
  EXPECT_EQ(Count("lungs", "CANCELED"), 1);
  EXPECT_EQ(Count("lungs", "SCHEDULED"), 2);
  EXPECT_EQ(Changed(), std::vector<JobId>{JobId{5}});
  auto events = sink_.To("PERFORMER1");
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(StateOf(events.back().event), "CANCELED");
  EXPECT_EQ(
      DicomJsonString(json::parse(events.back().event.attributes), upstag::kReasonForCancellation),
      Worklist::kAbandonedReason);
  auto actions = AuditActions();
  EXPECT_NE(std::find(actions.begin(), actions.end(), "workitem_abandoned"), actions.end());
  EXPECT_EQ(actions.back(), "workitem_scheduled");

  auto later = worklist_->CurrentForJob(Job(5));
  ASSERT_TRUE(later.ok());
  EXPECT_EQ((*later)->uid, fresh.uid) << "abandoned once, replaced once";
}

TEST_F(WorklistTest, WithoutATurnaroundTheTimeoutBoundsTheSilence) {
  WorkitemRecord w = Schedule(1, "quick");
  const UpsCaller quick{"quick", "Q1"};
  ASSERT_TRUE(worklist_->Claim(quick, w.uid, "2.25.1").ok());
  JobRecord job = Job(1);
  job.tool = "quick";
  clock_.Advance(minutes(5));
  EXPECT_EQ((*worklist_->CurrentForJob(job))->uid, w.uid) << "exactly the timeout: not yet";
  clock_.Advance(seconds(1));
  EXPECT_NE((*worklist_->CurrentForJob(job))->uid, w.uid);
  EXPECT_EQ(metrics_.Value("conduit_workitems_abandoned_total", "tool=\"quick\""), 1);
}

TEST_F(WorklistTest, AnAbandonmentInterruptedByACrashIsCompletedOnTheNextLook) {
  WorkitemRecord w = Schedule(9);
  // As a crash would leave it: canceled as abandoned, no replacement yet.
  WorkitemRecord stored = **index_->GetWorkitem(w.uid);
  stored.state = UpsState::kCanceled;
  json ds = json::parse(stored.dataset);
  ds[upstag::kProcedureStepProgressInformationSequence] =
      OneItem(upstag::kReasonForCancellation, DicomJsonValue("LT", Worklist::kAbandonedReason));
  stored.dataset = ds.dump();
  AuditEvent audit;
  audit.action = "test";
  ASSERT_TRUE(index_->UpdateWorkitem(stored, UpsState::kScheduled, audit).ok());

  auto current = worklist_->CurrentForJob(Job(9));
  ASSERT_TRUE(current.ok());
  ASSERT_TRUE(current->has_value());
  EXPECT_NE((*current)->uid, w.uid);
  EXPECT_EQ((*current)->state, UpsState::kScheduled);
  EXPECT_FALSE(worklist_->CurrentForJob(Job(10))->has_value()) << "a job without workitems";
}

TEST_F(WorklistTest, OfPerformersRacingToClaimExactlyOneWins) {
  WorkitemRecord w = Schedule(1);
  constexpr int kPerformers = 6;
  std::atomic<int> won{0};
  std::atomic<int> lost{0};
  {
    std::vector<std::jthread> threads;
    for (int i = 0; i < kPerformers; ++i) {
      threads.emplace_back([&, i] {
        const UpsCaller caller{"lungs", "P" + std::to_string(i)};
        Status st = worklist_->Claim(caller, w.uid, "2.25.10" + std::to_string(i));
        if (st.ok()) {
          won.fetch_add(1);
        } else if (st.code() == StatusCode::kFailedPrecondition) {
          lost.fetch_add(1);
        }
      });
    }
  }
  EXPECT_EQ(won.load(), 1);
  EXPECT_EQ(lost.load(), kPerformers - 1);
  EXPECT_EQ(Count("lungs", "IN PROGRESS"), 1);
}

// --- workitems of jobs that ended, and AE titles owned by one tool ---

class WorklistOfEndedJobsTest : public WorklistTest {
 protected:
  // A job of `tool` in the index (state queued) with a SCHEDULED workitem.
  std::pair<JobRecord, WorkitemRecord> LiveJob(const std::string& tool = "lungs") {
    JobRecord job;
    job.study_uid = StudyUid("1.2.3.9." + std::to_string(++jobs_));
    job.route = "r";
    job.tool = tool;
    job.state = JobState::kQueued;
    job.created_at = job.updated_at = job.next_attempt_at = clock_.Now();
    auto id = index_->CreateJob(job, JobAudit("route"));
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    if (id.ok()) job.id = *id;
    auto w = worklist_->ScheduleForJob(job, tool, Dataset(), "MEDIUM");
    EXPECT_TRUE(w.ok()) << w.status().ToString();
    return {job, w.ok() ? *w : WorkitemRecord{}};
  }

  // What the job engine does to the job (dead-letter, fail, finish, replay).
  void SetJobState(JobRecord& job, JobState state) {
    job.state = state;
    job.updated_at = clock_.Now();
    ASSERT_TRUE(index_->UpdateJob(job, JobAudit(JobStateName(state))).ok());
  }

  AuditEvent JobAudit(const std::string& action) {
    AuditEvent audit;
    audit.at = clock_.Now();
    audit.action = action;
    audit.outcome = "success";
    return audit;
  }

  std::vector<std::string> Uids(const std::vector<WorkitemRecord>& items) {
    std::vector<std::string> out;
    for (const WorkitemRecord& w : items) out.push_back(w.uid);
    return out;
  }

  int jobs_ = 0;
};

TEST_F(WorklistOfEndedJobsTest, ASearchCancelsWorkitemsOfEndedJobsAndDoesNotOfferThem) {
  auto [dead, dead_item] = LiveJob();
  auto [failed, failed_item] = LiveJob();
  auto [done, done_item] = LiveJob();
  auto [live, live_item] = LiveJob();
  ASSERT_TRUE(worklist_->Subscribe(performer_, "PERFORMER1", dead_item.uid, false, "").ok());
  const std::string txn = "2.25.77";
  ASSERT_TRUE(worklist_->Claim(performer_, failed_item.uid, txn).ok());
  SetJobState(dead, JobState::kDeadLetter);
  SetJobState(failed, JobState::kFailed);
  SetJobState(done, JobState::kDone);

  auto scheduled = worklist_->List(performer_, UpsState::kScheduled, 100, 0);
  ASSERT_TRUE(scheduled.ok()) << scheduled.status().ToString();
  EXPECT_EQ(Uids(*scheduled), std::vector<std::string>{live_item.uid});
  auto in_progress = worklist_->List(performer_, UpsState::kInProgress, 100, 0);
  ASSERT_TRUE(in_progress.ok());
  EXPECT_TRUE(in_progress->empty()) << "the failed job's claimed workitem is canceled too";

  for (const WorkitemRecord* w : {&dead_item, &failed_item, &done_item}) {
    WorkitemRecord now = *worklist_->Get(admin_, w->uid);
    EXPECT_EQ(now.state, UpsState::kCanceled);
    EXPECT_EQ(UpsCancellationReason(now.dataset), Worklist::kJobEndedReason);
  }
  EXPECT_EQ(worklist_->Get(admin_, live_item.uid)->state, UpsState::kScheduled);
  EXPECT_EQ(worklist_->Update(performer_, failed_item.uid, txn, "{}").code(),
            StatusCode::kFailedPrecondition)
      << "the performer of a job that ended is told its claim is over";

  auto events = sink_.To("PERFORMER1");
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().event.workitem_uid, dead_item.uid);
  EXPECT_EQ(StateOf(events.back().event), "CANCELED");
  EXPECT_EQ(
      DicomJsonString(json::parse(events.back().event.attributes), upstag::kReasonForCancellation),
      Worklist::kJobEndedReason);
  auto actions = AuditActions();
  EXPECT_EQ(std::count(actions.begin(), actions.end(), "workitem_job_ended"), 3);
  EXPECT_EQ(Count("lungs", "CANCELED"), 3);

  ASSERT_TRUE(worklist_->List(performer_, std::nullopt, 100, 0).ok());
  actions = AuditActions();
  EXPECT_EQ(std::count(actions.begin(), actions.end(), "workitem_job_ended"), 3) << "canceled once";
}

TEST_F(WorklistOfEndedJobsTest, ASearchOfAnotherWorklistLeavesThisOneAlone) {
  auto [dead, dead_item] = LiveJob("lungs");
  SetJobState(dead, JobState::kDeadLetter);
  ASSERT_TRUE(worklist_->List(UpsCaller{"quick", ""}, std::nullopt, 100, 0).ok());
  EXPECT_EQ(worklist_->Get(admin_, dead_item.uid)->state, UpsState::kScheduled);
  ASSERT_TRUE(worklist_->List(admin_, std::nullopt, 100, 0).ok());
  EXPECT_EQ(worklist_->Get(admin_, dead_item.uid)->state, UpsState::kCanceled)
      << "the administrator's search covers every worklist";
}

TEST_F(WorklistOfEndedJobsTest, AClaimOfAWorkitemWhoseJobEndedIsRefusedAndCancelsIt) {
  auto [job, item] = LiveJob();
  SetJobState(job, JobState::kDeadLetter);
  Status claim = worklist_->Claim(performer_, item.uid, "2.25.8");
  EXPECT_EQ(claim.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(claim.message().find(Worklist::kJobEndedReason), std::string::npos) << claim.message();
  WorkitemRecord now = *worklist_->Get(performer_, item.uid);
  EXPECT_EQ(now.state, UpsState::kCanceled);
  EXPECT_TRUE(now.performer.empty());
  EXPECT_EQ(Worklist::kJobEndedReason, UpsCancellationReason(now.dataset));
  EXPECT_EQ(worklist_->Claim(performer_, item.uid, "2.25.8").code(),
            StatusCode::kFailedPrecondition);
  auto actions = AuditActions();
  EXPECT_EQ(std::count(actions.begin(), actions.end(), "workitem_job_ended"), 1);
  EXPECT_EQ(std::count(actions.begin(), actions.end(), "workitem_claimed"), 0);
}

TEST_F(WorklistOfEndedJobsTest, AReplayedJobGetsANewWorkitemAndTheCanceledOneStaysCanceled) {
  auto [job, first] = LiveJob();
  SetJobState(job, JobState::kDeadLetter);
  ASSERT_TRUE(worklist_->List(performer_, std::nullopt, 100, 0).ok());
  ASSERT_EQ(worklist_->Get(admin_, first.uid)->state, UpsState::kCanceled);

  SetJobState(job, JobState::kQueued);  // replayed
  auto again = worklist_->ScheduleForJob(job, "lungs", Dataset(), "MEDIUM");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_NE(again->uid, first.uid);
  EXPECT_EQ(again->state, UpsState::kScheduled);

  auto scheduled = worklist_->List(performer_, UpsState::kScheduled, 100, 0);
  ASSERT_TRUE(scheduled.ok());
  EXPECT_EQ(Uids(*scheduled), std::vector<std::string>{again->uid})
      << "the replayed job is live: its new workitem is offered";
  EXPECT_EQ(worklist_->Get(admin_, first.uid)->state, UpsState::kCanceled);
  auto current = worklist_->CurrentForJob(job);
  ASSERT_TRUE(current.ok() && current->has_value());
  EXPECT_EQ((*current)->uid, again->uid);
  EXPECT_TRUE(worklist_->Claim(performer_, again->uid, "2.25.9").ok());
}

TEST_F(WorklistOfEndedJobsTest, AWorkitemOfAReplayedJobNotYetSweptIsDispatchedOnce) {
  auto [job, first] = LiveJob();
  SetJobState(job, JobState::kDeadLetter);
  SetJobState(job, JobState::kQueued);  // replayed before any search looked
  auto again = worklist_->ScheduleForJob(job, "lungs", Dataset(), "MEDIUM");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->uid, first.uid) << "still open, and the job is live again: one workitem";
  ASSERT_TRUE(worklist_->List(performer_, std::nullopt, 100, 0).ok());
  EXPECT_EQ(worklist_->Get(admin_, first.uid)->state, UpsState::kScheduled);
}

TEST_F(WorklistTest, AnAeTitleBelongsToTheToolThatSubscribedUnderIt) {
  const UpsCaller quick{"quick", ""};
  WorkitemRecord w = Schedule(40);
  ASSERT_TRUE(worklist_->Subscribe(performer_, "PERFORMER1", "", false, "").ok());
  EXPECT_TRUE(*worklist_->HoldsSubscriber("lungs", "PERFORMER1"));
  EXPECT_FALSE(*worklist_->HoldsSubscriber("quick", "PERFORMER1"));
  EXPECT_FALSE(*worklist_->HoldsSubscriber("lungs", "NOBODY"));

  Status taken = worklist_->Subscribe(quick, "PERFORMER1", "", false, "");
  EXPECT_EQ(taken.code(), StatusCode::kPermissionDenied);
  EXPECT_NE(taken.message().find("another"), std::string::npos) << taken.message();
  EXPECT_FALSE(*worklist_->HoldsSubscriber("quick", "PERFORMER1"));
  EXPECT_TRUE(worklist_->Subscribe(performer_, "PERFORMER1", w.uid, true, "").ok())
      << "the owner subscribes again, to a workitem too";

  ASSERT_TRUE(worklist_->Unsubscribe(performer_, "PERFORMER1", "").ok());
  EXPECT_FALSE(*worklist_->HoldsSubscriber("lungs", "PERFORMER1"));
  EXPECT_TRUE(worklist_->Subscribe(quick, "PERFORMER1", "", false, "").ok())
      << "an AE title with no subscription left is free";
  EXPECT_TRUE(*worklist_->HoldsSubscriber("quick", "PERFORMER1"));
}

TEST_F(WorklistTest, AWorkitemSubscriptionAloneMakesTheAeTitleTheTools) {
  WorkitemRecord w = Schedule(41);
  ASSERT_TRUE(worklist_->Subscribe(performer_, "ONEITEM", w.uid, false, "").ok());
  EXPECT_TRUE(*worklist_->HoldsSubscriber("lungs", "ONEITEM"));
  EXPECT_EQ(worklist_->Subscribe(UpsCaller{"quick", ""}, "ONEITEM", "", false, "").code(),
            StatusCode::kPermissionDenied);
}
}  // namespace
}  // namespace conduit
