// The UPS Task Manager. Each change reads the workitem, decides, and stores it with a
// compare-and-set on its state (Index::UpdateWorkitem) under one lock, then reports it; the
// compare-and-set keeps the state machine safe across nodes sharing an index too.
#include "adapters/ups_worklist.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "adapters/ups_dataset.h"
#include "core/dicom_uid.h"

namespace conduit {
namespace {

using json = nlohmann::json;

// Workitems listed per query when a worklist subscription begins, and at most in all.
constexpr int kListPage = 500;
constexpr int kMaxInitialWorkitems = 10'000;
// Reason For Cancellation is an LT.
constexpr size_t kMaxReasonChars = 10'240;

// A workitem as logs and audit name it: not its UID.
std::string WorkitemRef(const std::string& uid) { return StudyRef(StudyUid(uid)); }

std::string ActorOf(const UpsCaller& caller) {
  if (!caller.ae_title.empty()) return caller.ae_title;
  if (!caller.tool.empty()) return caller.tool;
  return "administrator";
}

bool Sees(const UpsCaller& caller, const WorkitemRecord& w) {
  return caller.tool.empty() || caller.tool == w.tool;
}

// What callers get: never the Transaction UID.
WorkitemRecord Shown(WorkitemRecord w) {
  w.transaction_uid.clear();
  return w;
}

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// A stored dataset; one this code did not write reads as empty rather than failing a change.
json StoredDataset(const std::string& text) {
  json ds = json::parse(text, nullptr, /*allow_exceptions=*/false);
  return ds.is_object() ? ds : json::object();
}

bool SameSecret(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

bool IsAeTitle(const std::string& ae) {
  if (ae.empty() || ae.size() > 16) return false;
  if (ae.find_first_not_of(' ') == std::string::npos) return false;
  return std::none_of(ae.begin(), ae.end(), [](char c) {
    return c == '\\' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
  });
}

bool IsTag(const std::string& key) {
  return key.size() == 8 && std::all_of(key.begin(), key.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
         });
}

// "(0074,1000)".
std::string TagText(const std::string& key) {
  return "(" + key.substr(0, 4) + "," + key.substr(4) + ")";
}

std::string Truncated(const std::string& text, size_t max) {
  return text.size() <= max ? text : text.substr(0, max);
}

// What RAD-84 may change: progress, and what was performed (with its output information).
const std::set<std::string>& PerformerSettableTags() {
  static const std::set<std::string> tags = {upstag::kProcedureStepProgressInformationSequence,
                                             upstag::kUpsPerformedProcedureSequence};
  return tags;
}

std::string UpsLabels(const std::string& tool, UpsState state) {
  return "tool=\"" + tool + "\",state=\"" + std::string(UpsStateName(state)) + "\"";
}

void SetState(json& ds, UpsState state) {
  ds[upstag::kProcedureStepState] = DicomJsonValue("CS", std::string(UpsStateName(state)));
}

// PS3.4 CC.2.5.1.3: a canceled workitem records when and why in its Procedure Step Progress
// Information Sequence.
void RecordCancellation(json& ds, TimePoint at, const std::string& reason) {
  json& seq = ds[upstag::kProcedureStepProgressInformationSequence];
  if (!seq.is_object()) seq = json::object();
  seq["vr"] = "SQ";
  json& items = seq["Value"];
  if (!items.is_array() || items.empty()) items = json::array({json::object()});
  if (!items[0].is_object()) items[0] = json::object();
  items[0][upstag::kProcedureStepCancellationDateTime] = DicomJsonValue("DT", DicomDateTimeUtc(at));
  if (!reason.empty()) items[0][upstag::kReasonForCancellation] = DicomJsonValue("LT", reason);
}

// `w` as CANCELED at `at` for `reason`: its state, update time and dataset (state and the
// cancellation record) changed together.
WorkitemRecord Canceled(const WorkitemRecord& w, TimePoint at, const std::string& reason) {
  WorkitemRecord canceled = w;
  canceled.state = UpsState::kCanceled;
  canceled.updated_at = at;
  json ds = StoredDataset(w.dataset);
  SetState(ds, UpsState::kCanceled);
  RecordCancellation(ds, at, reason);
  canceled.dataset = Dump(ds);
  return canceled;
}

AuditEvent SubscriptionAudit(TimePoint at, const std::string& action, const std::string& subscriber,
                             const std::string& tool, const std::string& workitem_uid) {
  AuditEvent e;
  e.at = at;
  e.action = action;
  e.outcome = "ok";
  e.actor = subscriber;
  json detail = {{"tool", tool}};
  if (!workitem_uid.empty()) detail["workitem"] = WorkitemRef(workitem_uid);
  e.detail = Dump(detail);
  return e;
}

}  // namespace

Worklist::Worklist(Index& index, const Clock& clock, const Config& config, Metrics& metrics,
                   UpsEventSink* events, FilterMatcher filter_matches,
                   std::function<void(JobId)> on_change)
    : index_(index),
      clock_(clock),
      config_(config),
      metrics_(metrics),
      events_(events),
      filter_matches_(std::move(filter_matches)),
      on_change_(std::move(on_change)) {
  metrics_.Describe("conduit_workitems_total", "counter",
                    "UPS workitems entering each state, by tool (IHE AIW-I worklists)");
  metrics_.Describe("conduit_workitems_abandoned_total", "counter",
                    "Claimed workitems abandoned by their performer and scheduled again");
}

// --- Task Requester side ---

Result<WorkitemRecord> Worklist::ScheduleForJob(const JobRecord& job, const std::string& tool,
                                                const std::string& dataset,
                                                const std::string& priority) {
  const std::string what = "worklist schedule job " + std::to_string(job.id.value);
  const ToolConfig* t = config_.FindTool(tool);
  if (t == nullptr || t->kind != ToolKind::kWorklist) {
    return InvalidArgument(what + ": tool '" + tool + "' is not a worklist tool");
  }
  if (priority != "HIGH" && priority != "MEDIUM" && priority != "LOW") {
    return InvalidArgument(what + ": priority '" + priority + "' is not HIGH, MEDIUM or LOW");
  }
  json ds = json::parse(dataset, nullptr, /*allow_exceptions=*/false);
  if (!ds.is_object()) return InvalidArgument(what + ": the dataset is not a DICOM JSON object");

  std::lock_guard lock(mu_);
  Result<std::vector<WorkitemRecord>> existing = index_.WorkitemsOfJob(job.id);
  if (!existing.ok()) return existing.status().WithContext(what);
  for (auto it = existing->rbegin(); it != existing->rend(); ++it) {
    if (it->state == UpsState::kScheduled || it->state == UpsState::kInProgress) return Shown(*it);
  }
  const TimePoint now = clock_.Now();
  WorkitemRecord w;
  w.uid = NewDicomUid();
  w.job_id = job.id;
  w.tool = tool;
  w.state = UpsState::kScheduled;
  w.priority = priority;
  w.created_at = now;
  w.updated_at = now;
  ds[upstag::kSopClassUid] = DicomJsonValue("UI", kUpsPushSopClassUid);
  ds[upstag::kSopInstanceUid] = DicomJsonValue("UI", w.uid);
  SetState(ds, UpsState::kScheduled);
  ds[upstag::kScheduledProcedureStepPriority] = DicomJsonValue("CS", priority);
  if (!ds.contains(upstag::kWorklistLabel)) {
    ds[upstag::kWorklistLabel] = DicomJsonValue("LO", Truncated(tool, 64));
  }
  w.dataset = Dump(ds);
  Status created = Create(w, "worklist", "");
  if (!created.ok()) return created.WithContext(what);
  spdlog::info("event=workitem_scheduled tool={} job={} workitem={} study={} priority={}", tool,
               job.id.value, WorkitemRef(w.uid), StudyRef(job.study_uid), priority);
  return Shown(w);
}

Result<std::optional<WorkitemRecord>> Worklist::CurrentForJob(const JobRecord& job) {
  const std::string what = "worklist current for job " + std::to_string(job.id.value);
  std::optional<JobId> changed;
  Result<std::optional<WorkitemRecord>> out = [&]() -> Result<std::optional<WorkitemRecord>> {
    std::lock_guard lock(mu_);
    ASSIGN_OR_RETURN(std::vector<WorkitemRecord> items, index_.WorkitemsOfJob(job.id));
    if (items.empty()) return std::optional<WorkitemRecord>();
    WorkitemRecord newest = items.back();
    ASSIGN_OR_RETURN(bool abandoned, AbandonIfSilent(newest));
    if (abandoned) changed = job.id;
    // Also after a crash between the abandonment and its replacement.
    if (newest.state == UpsState::kCanceled &&
        UpsCancellationReason(newest.dataset) == kAbandonedReason) {
      ASSIGN_OR_RETURN(WorkitemRecord fresh, Replace(newest));
      return std::optional<WorkitemRecord>(Shown(fresh));
    }
    return std::optional<WorkitemRecord>(Shown(newest));
  }();
  TellJob(changed);
  if (!out.ok()) return out.status().WithContext(what);
  return out;
}

Result<bool> Worklist::AbandonIfSilent(WorkitemRecord& w) {
  if (w.state != UpsState::kInProgress) return false;
  const ToolConfig* tool = config_.FindTool(w.tool);
  if (tool == nullptr) return false;
  const auto limit =
      tool->expected_turnaround.count() > 0 ? tool->expected_turnaround : tool->timeout;
  if (limit.count() <= 0) return false;
  TimePoint last = w.claimed_at.value_or(w.updated_at);
  if (w.progress_at && *w.progress_at > last) last = *w.progress_at;
  const TimePoint now = clock_.Now();
  if (now - last <= limit) return false;

  const WorkitemRecord canceled = Canceled(w, now, kAbandonedReason);
  Status st =
      Change(canceled, UpsState::kInProgress, "workitem_abandoned", "worklist", kAbandonedReason);
  if (st.code() == StatusCode::kFailedPrecondition) {
    // The performer finished it meanwhile (another node): report what it is now.
    ASSIGN_OR_RETURN(std::optional<WorkitemRecord> now_stored, index_.GetWorkitem(w.uid));
    if (now_stored) w = *now_stored;
    return false;
  }
  RETURN_IF_ERROR(st);
  metrics_.Add("conduit_workitems_abandoned_total", 1, "tool=\"" + w.tool + "\"");
  spdlog::warn("event=workitem_abandoned tool={} job={} workitem={} silent_for_s={}", w.tool,
               w.job_id.value, WorkitemRef(w.uid),
               std::chrono::duration_cast<std::chrono::seconds>(now - last).count());
  w = canceled;
  return true;
}

Result<WorkitemRecord> Worklist::Replace(const WorkitemRecord& abandoned) {
  const TimePoint now = clock_.Now();
  WorkitemRecord w;
  w.uid = NewDicomUid();
  w.job_id = abandoned.job_id;
  w.tool = abandoned.tool;
  w.state = UpsState::kScheduled;
  w.priority = abandoned.priority;
  w.created_at = now;
  w.updated_at = now;
  // The dataset as scheduled: what the performer added goes, and it names what it replaces.
  json ds = StoredDataset(abandoned.dataset);
  for (const std::string& tag : PerformerSettableTags()) ds.erase(tag);
  ds[upstag::kSopInstanceUid] = DicomJsonValue("UI", w.uid);
  SetState(ds, UpsState::kScheduled);
  json replaced = json::object();
  replaced[upstag::kReferencedSopClassUid] = DicomJsonValue("UI", kUpsPushSopClassUid);
  replaced[upstag::kReferencedSopInstanceUid] = DicomJsonValue("UI", abandoned.uid);
  ds[upstag::kReplacedProcedureStepSequence] = DicomJsonSequence({replaced});
  w.dataset = Dump(ds);
  RETURN_IF_ERROR(Create(w, "worklist", "replaces an abandoned workitem"));
  spdlog::info("event=workitem_rescheduled tool={} job={} workitem={} replaces={}", w.tool,
               w.job_id.value, WorkitemRef(w.uid), WorkitemRef(abandoned.uid));
  return w;
}

// --- UPS-RS transactions ---

Result<std::vector<WorkitemRecord>> Worklist::List(const UpsCaller& caller,
                                                   std::optional<UpsState> state, int limit,
                                                   int offset) {
  if (Status swept = CancelWorkitemsOfEndedJobs(caller.tool); !swept.ok()) {
    return swept.WithContext("worklist search");
  }
  ASSIGN_OR_RETURN(std::vector<WorkitemRecord> items,
                   index_.ListWorkitems(caller.tool, state, limit, offset));
  for (WorkitemRecord& w : items) w.transaction_uid.clear();
  return items;
}

Result<WorkitemRecord> Worklist::Get(const UpsCaller& caller, const std::string& uid) {
  ASSIGN_OR_RETURN(WorkitemRecord w, Visible(caller, uid));
  return Shown(std::move(w));
}

Result<WorkitemRecord> Worklist::Visible(const UpsCaller& caller, const std::string& uid) {
  ASSIGN_OR_RETURN(std::optional<WorkitemRecord> found, index_.GetWorkitem(uid));
  if (!found || !Sees(caller, *found)) return NotFound("no such workitem");
  return *std::move(found);
}

Status Worklist::Claim(const UpsCaller& caller, const std::string& uid,
                       const std::string& transaction_uid) {
  if (!IsDicomUidText(transaction_uid)) {
    return InvalidArgument("claim: the Transaction UID is not a valid UID");
  }
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(WorkitemRecord w, Visible(caller, uid));
  Result<bool> ended = CancelIfJobEnded(w);
  if (!ended.ok()) return ended.status().WithContext("claim");
  if (*ended) {
    return FailedPrecondition(std::string("claim: the workitem is CANCELED (") + kJobEndedReason +
                              "), not SCHEDULED");
  }
  if (w.state != UpsState::kScheduled) {
    return FailedPrecondition("claim: the workitem is " + std::string(UpsStateName(w.state)) +
                              ", not SCHEDULED");
  }
  const TimePoint now = clock_.Now();
  WorkitemRecord claimed = w;
  claimed.state = UpsState::kInProgress;
  claimed.transaction_uid = transaction_uid;
  claimed.performer = caller.ae_title;
  claimed.claimed_at = now;
  claimed.progress_at.reset();
  claimed.updated_at = now;
  json ds = StoredDataset(w.dataset);
  SetState(ds, UpsState::kInProgress);
  claimed.dataset = Dump(ds);
  Status st = Change(claimed, UpsState::kScheduled, "workitem_claimed", ActorOf(caller), "");
  if (!st.ok()) return st.WithContext("claim");
  spdlog::info("event=workitem_claimed tool={} job={} workitem={} performer={}", w.tool,
               w.job_id.value, WorkitemRef(w.uid), ActorOf(caller));
  return Status::Ok();
}

Status Worklist::Update(const UpsCaller& caller, const std::string& uid,
                        const std::string& transaction_uid, const std::string& changes) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(WorkitemRecord w, Visible(caller, uid));
  if (w.state != UpsState::kInProgress) {
    return FailedPrecondition("update: the workitem is " + std::string(UpsStateName(w.state)) +
                              ", not IN PROGRESS");
  }
  if (!SameSecret(transaction_uid, w.transaction_uid)) {
    return PermissionDenied("update: not the Transaction UID of this workitem's claim");
  }
  const json delta = json::parse(changes, nullptr, /*allow_exceptions=*/false);
  if (!delta.is_object()) return InvalidArgument("update: the body is not a DICOM JSON object");
  json ds = StoredDataset(w.dataset);
  const json progress_before = ds.contains(upstag::kProcedureStepProgressInformationSequence)
                                   ? ds[upstag::kProcedureStepProgressInformationSequence]
                                   : json();
  for (const auto& [key, value] : delta.items()) {
    if (!IsTag(key)) return InvalidArgument("update: '" + Truncated(key, 32) + "' is not a tag");
    // The Transaction UID travels beside the dataset, never in it.
    if (key == upstag::kTransactionUid) continue;
    if (!PerformerSettableTags().contains(key)) {
      return InvalidArgument("update: " + TagText(key) +
                             " may not be changed by the performer (only progress information "
                             "and the performed procedure)");
    }
    if (!value.is_object() || !value.contains("vr") || value["vr"] != "SQ" ||
        (value.contains("Value") && !value["Value"].is_array())) {
      return InvalidArgument("update: " + TagText(key) + " is not a DICOM JSON sequence");
    }
    ds[key] = value;
  }
  const bool progress_changed =
      ds.contains(upstag::kProcedureStepProgressInformationSequence) &&
      ds[upstag::kProcedureStepProgressInformationSequence] != progress_before;
  const TimePoint now = clock_.Now();
  WorkitemRecord updated = w;
  updated.dataset = Dump(ds);
  updated.progress_at = now;
  updated.updated_at = now;
  Status st = index_.UpdateWorkitem(updated, UpsState::kInProgress,
                                    Audit("workitem_updated", ActorOf(caller), updated));
  if (!st.ok()) return st.WithContext("update");
  if (progress_changed) {
    UpsEvent event;
    event.event_type = 3;
    event.workitem_uid = w.uid;
    event.attributes = Dump({{upstag::kProcedureStepState, DicomJsonValue("CS", "IN PROGRESS")},
                             {upstag::kProcedureStepProgressInformationSequence,
                              ds[upstag::kProcedureStepProgressInformationSequence]}});
    Notify(updated, event);
  }
  return Status::Ok();
}

Status Worklist::Finish(const UpsCaller& caller, const std::string& uid,
                        const std::string& transaction_uid, UpsState final_state,
                        const std::string& reason) {
  if (final_state != UpsState::kCompleted && final_state != UpsState::kCanceled) {
    return InvalidArgument("finish: the final state must be COMPLETED or CANCELED");
  }
  std::optional<JobId> changed;
  Status st = [&]() -> Status {
    std::lock_guard lock(mu_);
    ASSIGN_OR_RETURN(WorkitemRecord w, Visible(caller, uid));
    if (w.state == final_state && !w.transaction_uid.empty() &&
        SameSecret(transaction_uid, w.transaction_uid)) {
      return Status::Ok();  // a retried request: already done
    }
    if (w.state != UpsState::kInProgress) {
      return FailedPrecondition("finish: the workitem is " + std::string(UpsStateName(w.state)) +
                                ", not IN PROGRESS");
    }
    if (!SameSecret(transaction_uid, w.transaction_uid)) {
      return PermissionDenied("finish: not the Transaction UID of this workitem's claim");
    }
    const TimePoint now = clock_.Now();
    const std::string why = Truncated(reason, kMaxReasonChars);
    WorkitemRecord done = w;
    done.state = final_state;
    done.updated_at = now;
    json ds = StoredDataset(w.dataset);
    SetState(ds, final_state);
    if (final_state == UpsState::kCanceled) RecordCancellation(ds, now, why);
    done.dataset = Dump(ds);
    RETURN_IF_ERROR(
        Change(done, UpsState::kInProgress,
               final_state == UpsState::kCompleted ? "workitem_completed" : "workitem_canceled",
               ActorOf(caller), why));
    spdlog::info("event=workitem_finished tool={} job={} workitem={} state={}", w.tool,
                 w.job_id.value, WorkitemRef(w.uid), UpsStateName(final_state));
    changed = w.job_id;
    return Status::Ok();
  }();
  TellJob(changed);
  return st.ok() ? st : st.WithContext("finish");
}

Status Worklist::RequestCancel(const UpsCaller& caller, const std::string& uid,
                               const std::string& reason) {
  std::optional<JobId> changed;
  Status st = [&]() -> Status {
    std::lock_guard lock(mu_);
    ASSIGN_OR_RETURN(WorkitemRecord w, Visible(caller, uid));
    const std::string why = Truncated(reason, kMaxReasonChars);
    const TimePoint now = clock_.Now();
    if (w.state == UpsState::kScheduled) {
      const WorkitemRecord canceled = Canceled(w, now, why);
      RETURN_IF_ERROR(
          Change(canceled, UpsState::kScheduled, "workitem_canceled", ActorOf(caller), why));
      changed = w.job_id;
      return Status::Ok();
    }
    if (w.state != UpsState::kInProgress) {
      return FailedPrecondition("request cancel: the workitem is already " +
                                std::string(UpsStateName(w.state)));
    }
    if (!w.cancel_requested) {
      WorkitemRecord requested = w;
      requested.cancel_requested = true;
      requested.updated_at = now;
      RETURN_IF_ERROR(
          index_.UpdateWorkitem(requested, UpsState::kInProgress,
                                Audit("workitem_cancel_requested", ActorOf(caller), requested)));
    }
    // Asked again, the performer is told again.
    UpsEvent event;
    event.event_type = 2;
    event.workitem_uid = w.uid;
    json attributes = {{upstag::kProcedureStepState, DicomJsonValue("CS", "IN PROGRESS")}};
    if (!why.empty()) attributes[upstag::kReasonForCancellation] = DicomJsonValue("LT", why);
    if (IsAeTitle(caller.ae_title)) {
      attributes[upstag::kRequestingAe] = DicomJsonValue("AE", caller.ae_title);
    }
    event.attributes = Dump(attributes);
    Notify(w, event);
    return Status::Ok();
  }();
  TellJob(changed);
  return st.ok() ? st : st.WithContext("request cancel");
}

// --- subscriptions ---

Status Worklist::Subscribe(const UpsCaller& caller, const std::string& subscriber_ae,
                           const std::string& uid, bool deletion_lock, const std::string& filter) {
  if (!IsAeTitle(subscriber_ae)) {
    return InvalidArgument("subscribe: the subscriber is not an AE title");
  }
  std::lock_guard lock(mu_);
  // An AE title is one tool's: its event channel carries that tool's workitems only.
  Result<std::vector<UpsSubscription>> held = index_.SubscriptionsOf(subscriber_ae);
  if (!held.ok()) return held.status().WithContext("subscribe");
  for (const UpsSubscription& s : *held) {
    if (s.tool == caller.tool) continue;
    spdlog::warn("event=ups_subscribe_refused tool={} subscriber={} reason=held_by_another_tool",
                 caller.tool.empty() ? "administrator" : caller.tool, subscriber_ae);
    return PermissionDenied("subscribe: the AE title '" + subscriber_ae +
                            "' is already subscribed by another worklist's performer; an AE "
                            "title belongs to one tool until all its subscriptions are removed: "
                            "choose another AE title");
  }
  const TimePoint now = clock_.Now();
  auto subscribe_to = [&](const WorkitemRecord& w) -> Status {
    UpsSubscription s;
    s.subscriber_ae = subscriber_ae;
    s.tool = w.tool;
    s.workitem_uid = w.uid;
    s.deletion_lock = deletion_lock;
    s.created_at = now;
    RETURN_IF_ERROR(index_.PutSubscription(
        s, SubscriptionAudit(now, "ups_subscribed", subscriber_ae, w.tool, w.uid)));
    if (events_ != nullptr) {
      events_->Send(subscriber_ae, StateReport(w, UpsCancellationReason(w.dataset)));
    }
    return Status::Ok();
  };
  if (!uid.empty()) {
    // A filter selects workitems of a worklist; one workitem needs none.
    ASSIGN_OR_RETURN(WorkitemRecord w, Visible(caller, uid));
    Status st = subscribe_to(w);
    return st.ok() ? st : st.WithContext("subscribe");
  }
  UpsSubscription global;
  global.subscriber_ae = subscriber_ae;
  global.tool = caller.tool;
  global.deletion_lock = deletion_lock;
  global.filter = filter;
  global.created_at = now;
  Status put = index_.PutSubscription(
      global, SubscriptionAudit(now, "ups_subscribed", subscriber_ae, caller.tool, ""));
  if (!put.ok()) return put.WithContext("subscribe");
  // The worklist's open workitems join at once (PS3.4 CC.2.3.2), each with its state.
  int seen = 0;
  for (UpsState state : {UpsState::kScheduled, UpsState::kInProgress}) {
    for (int offset = 0; seen < kMaxInitialWorkitems; offset += kListPage) {
      Result<std::vector<WorkitemRecord>> page =
          index_.ListWorkitems(caller.tool, state, kListPage, offset);
      if (!page.ok()) return page.status().WithContext("subscribe");
      for (const WorkitemRecord& w : *page) {
        if (++seen > kMaxInitialWorkitems) break;
        if (!filter.empty() && filter_matches_ && !filter_matches_(filter, w.dataset)) continue;
        Status st = subscribe_to(w);
        if (!st.ok()) return st.WithContext("subscribe");
      }
      if (static_cast<int>(page->size()) < kListPage) break;
    }
  }
  return Status::Ok();
}

Status Worklist::Unsubscribe(const UpsCaller& caller, const std::string& subscriber_ae,
                             const std::string& uid) {
  std::lock_guard lock(mu_);
  std::string tool = caller.tool;
  if (!uid.empty()) {
    ASSIGN_OR_RETURN(WorkitemRecord w, Visible(caller, uid));
    tool = w.tool;
  }
  Status st = index_.DeleteSubscription(
      subscriber_ae, tool, uid,
      SubscriptionAudit(clock_.Now(), "ups_unsubscribed", subscriber_ae, tool, uid));
  // Unsubscribing twice leaves the same state: not an error.
  if (st.code() == StatusCode::kNotFound) return Status::Ok();
  return st.ok() ? st : st.WithContext("unsubscribe");
}

Status Worklist::Suspend(const UpsCaller& caller, const std::string& subscriber_ae) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(std::vector<UpsSubscription> subs, index_.ListSubscriptions(caller.tool, ""));
  for (UpsSubscription s : subs) {
    if (s.subscriber_ae != subscriber_ae || s.tool != caller.tool) continue;
    s.suspended = true;
    Status st =
        index_.PutSubscription(s, SubscriptionAudit(clock_.Now(), "ups_subscription_suspended",
                                                    subscriber_ae, caller.tool, ""));
    return st.ok() ? st : st.WithContext("suspend");
  }
  return NotFound("suspend: no subscription of this subscriber to the worklist");
}

Result<bool> Worklist::HoldsSubscriber(const std::string& tool, const std::string& subscriber_ae) {
  Result<std::vector<UpsSubscription>> held = index_.SubscriptionsOf(subscriber_ae);
  if (!held.ok()) return held.status().WithContext("worklist subscriber " + subscriber_ae);
  return std::any_of(held->begin(), held->end(),
                     [&](const UpsSubscription& s) { return s.tool == tool; });
}

// --- internals ---

Result<bool> Worklist::CancelIfJobEnded(WorkitemRecord& w) {
  if (w.state != UpsState::kScheduled && w.state != UpsState::kInProgress) return false;
  ASSIGN_OR_RETURN(std::optional<JobRecord> job, index_.GetJob(w.job_id));
  if (!job || !IsTerminal(job->state)) return false;
  const TimePoint now = clock_.Now();
  const WorkitemRecord canceled = Canceled(w, now, kJobEndedReason);
  Status st = Change(canceled, w.state, "workitem_job_ended", "worklist", kJobEndedReason);
  if (st.code() == StatusCode::kFailedPrecondition) {
    // Changed meanwhile (another node): the caller decides on what it is now.
    ASSIGN_OR_RETURN(std::optional<WorkitemRecord> stored, index_.GetWorkitem(w.uid));
    if (stored) w = *stored;
    return false;
  }
  RETURN_IF_ERROR(st);
  spdlog::info("event=workitem_canceled_job_ended tool={} job={} workitem={} was={} job_state={}",
               w.tool, w.job_id.value, WorkitemRef(w.uid), UpsStateName(w.state),
               JobStateName(job->state));
  w = canceled;
  return true;
}

Status Worklist::CancelWorkitemsOfEndedJobs(const std::string& tool) {
  ASSIGN_OR_RETURN(std::vector<WorkitemRecord> ended,
                   index_.OpenWorkitemsOfEndedJobs(tool, kListPage));
  if (ended.empty()) return Status::Ok();
  std::lock_guard lock(mu_);
  for (const WorkitemRecord& found : ended) {
    // Read again under the lock: an update may have changed the dataset since, and a replay
    // may have made the job live again (CancelIfJobEnded reads the job again too).
    ASSIGN_OR_RETURN(std::optional<WorkitemRecord> w, index_.GetWorkitem(found.uid));
    if (!w) continue;
    ASSIGN_OR_RETURN(bool canceled, CancelIfJobEnded(*w));
    (void)canceled;
  }
  return Status::Ok();
}

Status Worklist::Create(const WorkitemRecord& w, const std::string& actor,
                        const std::string& detail_note) {
  AuditEvent audit = Audit("workitem_scheduled", actor, w);
  if (!detail_note.empty()) {
    json detail = StoredDataset(audit.detail);
    detail["note"] = detail_note;
    audit.detail = Dump(detail);
  }
  RETURN_IF_ERROR(index_.PutWorkitem(w, audit));
  metrics_.Add("conduit_workitems_total", 1, UpsLabels(w.tool, w.state));
  // Worklist subscribers not suspended (and whose filter matches) follow the new workitem.
  Result<std::vector<UpsSubscription>> subs = index_.ListSubscriptions(w.tool, "");
  if (!subs.ok()) {
    spdlog::warn("event=workitem_subscribers_failed tool={} workitem={} error=\"{}\"", w.tool,
                 WorkitemRef(w.uid), subs.status().ToString());
  } else {
    for (const UpsSubscription& global : *subs) {
      if (!global.workitem_uid.empty() || global.suspended) continue;
      if (!global.filter.empty() && filter_matches_ && !filter_matches_(global.filter, w.dataset)) {
        continue;
      }
      UpsSubscription s;
      s.subscriber_ae = global.subscriber_ae;
      s.tool = w.tool;
      s.workitem_uid = w.uid;
      s.deletion_lock = global.deletion_lock;
      s.created_at = w.created_at;
      Status st = index_.PutSubscription(
          s, SubscriptionAudit(w.created_at, "ups_subscribed", s.subscriber_ae, w.tool, w.uid));
      if (!st.ok()) {
        spdlog::warn("event=workitem_subscribe_failed tool={} workitem={} error=\"{}\"", w.tool,
                     WorkitemRef(w.uid), st.ToString());
      }
    }
  }
  Notify(w, StateReport(w, ""));
  return Status::Ok();
}

Status Worklist::Change(const WorkitemRecord& w, UpsState expected, const std::string& action,
                        const std::string& actor, const std::string& reason) {
  RETURN_IF_ERROR(index_.UpdateWorkitem(w, expected, Audit(action, actor, w)));
  if (w.state != expected) {
    metrics_.Add("conduit_workitems_total", 1, UpsLabels(w.tool, w.state));
    Notify(w, StateReport(w, reason));
  }
  return Status::Ok();
}

void Worklist::Notify(const WorkitemRecord& w, const UpsEvent& event) {
  if (events_ == nullptr) return;
  Result<std::vector<UpsSubscription>> subs = index_.ListSubscriptions(w.tool, w.uid);
  if (!subs.ok()) {
    // The change is recorded; subscribers catch up by query.
    spdlog::warn("event=workitem_notify_failed tool={} workitem={} error=\"{}\"", w.tool,
                 WorkitemRef(w.uid), subs.status().ToString());
    return;
  }
  UpsEvent scoped = event;
  scoped.tool = w.tool;
  std::set<std::string> told;
  for (const UpsSubscription& s : *subs) {
    if (s.workitem_uid != w.uid || !told.insert(s.subscriber_ae).second) continue;
    events_->Send(s.subscriber_ae, scoped);
  }
}

UpsEvent Worklist::StateReport(const WorkitemRecord& w, const std::string& reason) const {
  UpsEvent event;
  event.event_type = 1;
  event.workitem_uid = w.uid;
  event.tool = w.tool;
  const json ds = StoredDataset(w.dataset);
  std::string readiness = DicomJsonString(ds, upstag::kInputReadinessState);
  json attributes = {
      {upstag::kProcedureStepState, DicomJsonValue("CS", std::string(UpsStateName(w.state)))},
      {upstag::kInputReadinessState, DicomJsonValue("CS", readiness.empty() ? "READY" : readiness)},
  };
  if (w.state == UpsState::kCanceled && !reason.empty()) {
    attributes[upstag::kReasonForCancellation] = DicomJsonValue("LT", reason);
  }
  event.attributes = Dump(attributes);
  return event;
}

AuditEvent Worklist::Audit(const std::string& action, const std::string& actor,
                           const WorkitemRecord& w) const {
  AuditEvent e;
  e.at = clock_.Now();
  e.action = action;
  e.outcome = "ok";
  e.actor = actor;
  e.job_id = w.job_id;
  e.detail = Dump({{"tool", w.tool},
                   {"workitem", WorkitemRef(w.uid)},
                   {"state", std::string(UpsStateName(w.state))},
                   {"priority", w.priority}});
  return e;
}

void Worklist::TellJob(std::optional<JobId> job) {
  if (job && on_change_) on_change_(*job);
}

}  // namespace conduit
