// Worklist: Conduit as the UPS Task Manager of IHE AI Workflow for Imaging (PS3.4 Annex CC;
// served over UPS-RS by http/ups_rs.h). Each configured pull-model tool (ToolKind::kWorklist)
// has its own worklist, held in the Index. The Worklist enforces the UPS state machine and
// Transaction UIDs, records every change before answering, audits it, and tells subscribers
// through a UpsEventSink. Claims that go quiet past the tool's turnaround are abandoned: the
// workitem is canceled and a fresh SCHEDULED one returns the job to the queue.
// Records returned never carry the Transaction UID (WorkitemRecord::transaction_uid is empty).
// Thread safety: every method may be called from any thread; changes are serialised, events
// are sent in the order of the changes, and on_change is called outside the lock.
#pragma once

#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/config.h"
#include "core/metrics.h"
#include "core/status.h"
#include "store/index.h"
#include "store/records.h"

namespace conduit {

// A UPS event (PS3.4 CC.2.4; sent as the DICOM JSON of the N-EVENT-REPORT over the event
// channel, RAD-87).
struct UpsEvent {
  // Event Type ID (0000,1002): 1 UPS State Report, 2 UPS Cancel Requested, 3 UPS Progress
  // Report, 4 SCP Status Change, 5 UPS Assigned.
  int event_type = 1;
  std::string workitem_uid;  // Affected SOP Instance UID (empty for SCP Status Change)
  // The event's attributes as a DICOM JSON object text (PS3.18 F.2), e.g. Procedure Step
  // State, Reason For Cancellation, Progress Information; without the Transaction UID.
  std::string attributes;
  // The worklist (tool) the workitem is on: a channel opened by another tool's performer never
  // carries it. Empty (SCP Status Change): every subscriber may receive it.
  std::string tool;
};

// Where the Worklist sends events: the event channel (RAD-87 over RAD-109's WebSocket).
class UpsEventSink {
 public:
  virtual ~UpsEventSink() = default;
  // Sends `event` to the subscriber `subscriber_ae` if it has an open channel; otherwise it
  // is dropped (the subscriber catches up by query). Must not block on the network.
  virtual void Send(const std::string& subscriber_ae, const UpsEvent& event) = 0;
};

// Who is asking: the tool a bearer token identified (performers), or the gateway's own
// administrator (empty tool: may see every worklist).
struct UpsCaller {
  std::string tool;
  std::string ae_title;  // the performer's AE title, when it gave one
};

class Worklist {
 public:
  // Whether a workitem (DICOM JSON text) matches a filtered global subscription's filter (a
  // UPS-RS query string); supplied by the HTTP layer, which owns the query syntax.
  using FilterMatcher = std::function<bool(const std::string& filter, const std::string& dataset)>;
  // `on_change` is called after a workitem of a job completed, was canceled or was
  // abandoned (e.g. to wake the job engine). `events` may be null (no event channel).
  Worklist(Index& index, const Clock& clock, const Config& config, Metrics& metrics,
           UpsEventSink* events, FilterMatcher filter_matches,
           std::function<void(JobId)> on_change);

  // --- Task Requester side (the worklist adapter) ---
  // Schedules a workitem for `job` on `tool`'s worklist with `dataset` (DICOM JSON text of
  // the UPS attributes, built by the adapter; Procedure Step State is set here). Unless a
  // workitem of the job is already SCHEDULED or IN PROGRESS, in which case that one is
  // returned unchanged (a dispatch retried after a crash never makes two). Workitems already
  // COMPLETED or CANCELED stay so: a replayed job dispatched again gets a new one.
  Result<WorkitemRecord> ScheduleForJob(const JobRecord& job, const std::string& tool,
                                        const std::string& dataset, const std::string& priority);
  // The job's newest workitem, after abandoning it if it is IN PROGRESS and silent (no claim
  // or update) for longer than the tool's expected_turnaround (or timeout when none is
  // declared): then the replacement is returned. Empty if the job has none.
  Result<std::optional<WorkitemRecord>> CurrentForJob(const JobRecord& job);

  // --- UPS-RS transactions (the caller is authenticated; a tool sees its own worklist) ---
  // RAD-81: workitems of the caller's worklist (all worklists for the administrator) in
  // creation order, optionally in one state. The HTTP layer applies the query's matching.
  // First, SCHEDULED or IN PROGRESS workitems of the worklist whose job has ended (done,
  // failed, dead-lettered) are canceled (kJobEndedReason), so they are never offered.
  Result<std::vector<WorkitemRecord>> List(const UpsCaller& caller, std::optional<UpsState> state,
                                           int limit, int offset);
  // RAD-83. Errors: kNotFound (also for another tool's workitem).
  Result<WorkitemRecord> Get(const UpsCaller& caller, const std::string& uid);
  // RAD-82: SCHEDULED -> IN PROGRESS under `transaction_uid` (a valid UID). A workitem
  // whose job has ended is canceled instead (kJobEndedReason). Errors: kNotFound;
  // kFailedPrecondition when not SCHEDULED (the message names the state, and says when the
  // job ended); kInvalidArgument for a bad Transaction UID.
  Status Claim(const UpsCaller& caller, const std::string& uid, const std::string& transaction_uid);
  // RAD-84: merges `changes` (DICOM JSON object text: progress information, performed
  // procedure attributes, output information) into the workitem and records the update
  // time. Errors: kNotFound; kFailedPrecondition when not IN PROGRESS; kPermissionDenied for
  // a wrong Transaction UID; kInvalidArgument for attributes a performer may not set.
  Status Update(const UpsCaller& caller, const std::string& uid, const std::string& transaction_uid,
                const std::string& changes);
  // RAD-85: IN PROGRESS -> COMPLETED or CANCELED (`final_state`) under the claim's
  // Transaction UID; the job engine is told. Finishing again in the same final state under the
  // same Transaction UID is OK (a retried request). Errors as Update's; kInvalidArgument for a
  // `final_state` that is neither.
  Status Finish(const UpsCaller& caller, const std::string& uid, const std::string& transaction_uid,
                UpsState final_state, const std::string& reason);
  // RAD-88: a SCHEDULED workitem is canceled at once; an IN PROGRESS one gets a Cancel
  // Requested event for its performer. Errors: kNotFound; kFailedPrecondition when already
  // COMPLETED or CANCELED.
  Status RequestCancel(const UpsCaller& caller, const std::string& uid, const std::string& reason);

  // RAD-86: subscribe `subscriber_ae` to one workitem, or to the caller's worklist when
  // `uid` is empty (optionally filtered). A new subscriber to a workitem gets its current
  // state at once (a State Report). Unsubscribe removes; Suspend stops a global subscription
  // from adding new workitems while keeping the ones already subscribed.
  // An AE title belongs to the tool that first subscribed under it, until it has no
  // subscription left: Subscribe errors with kAlreadyExists when another tool (or the
  // administrator) holds subscriptions under `subscriber_ae`.
  Status Subscribe(const UpsCaller& caller, const std::string& subscriber_ae,
                   const std::string& uid, bool deletion_lock, const std::string& filter);
  Status Unsubscribe(const UpsCaller& caller, const std::string& subscriber_ae,
                     const std::string& uid);
  // Suspend errors: kNotFound when the subscriber has no subscription to the caller's worklist.
  Status Suspend(const UpsCaller& caller, const std::string& subscriber_ae);
  // Whether `tool` holds a subscription under `subscriber_ae` (any worklist or workitem
  // subscription): who may open that AE title's event channel. One index read; no lock.
  Result<bool> HoldsSubscriber(const std::string& tool, const std::string& subscriber_ae);

  // The Reason For Cancellation of an abandoned workitem.
  static constexpr char kAbandonedReason[] = "abandoned by its performer";
  // The Reason For Cancellation of a workitem whose job ended (done, failed, dead-lettered)
  // while it was still SCHEDULED or IN PROGRESS.
  static constexpr char kJobEndedReason[] = "the job ended";

 private:
  Result<WorkitemRecord> Visible(const UpsCaller& caller, const std::string& uid);
  // Inserts `workitem`, gives it the worklist's subscribers, and reports its state.
  Status Create(const WorkitemRecord& workitem, const std::string& actor,
                const std::string& detail_note);
  // Stores `workitem` if its state is still `expected`, audited as `action`; counts a state
  // change and reports it (with `reason` when canceled).
  Status Change(const WorkitemRecord& workitem, UpsState expected, const std::string& action,
                const std::string& actor, const std::string& reason);
  void Notify(const WorkitemRecord& workitem, const UpsEvent& event);
  UpsEvent StateReport(const WorkitemRecord& workitem, const std::string& reason) const;
  AuditEvent Audit(const std::string& action, const std::string& actor,
                   const WorkitemRecord& workitem) const;
  // Abandons `workitem` when its claim went quiet too long; returns whether it did.
  Result<bool> AbandonIfSilent(WorkitemRecord& workitem);
  Result<WorkitemRecord> Replace(const WorkitemRecord& abandoned);
  // Cancels the SCHEDULED or IN PROGRESS `workitem` if its job has ended (read again here);
  // returns whether it did, `workitem` then being the canceled one. Call with mu_ held.
  Result<bool> CancelIfJobEnded(WorkitemRecord& workitem);
  // Cancels what OpenWorkitemsOfEndedJobs finds on `tool`'s worklist ('' every worklist).
  Status CancelWorkitemsOfEndedJobs(const std::string& tool);
  void TellJob(std::optional<JobId> job);  // on_change, called without the lock

  Index& index_;
  const Clock& clock_;
  const Config& config_;
  Metrics& metrics_;
  UpsEventSink* events_;
  FilterMatcher filter_matches_;
  std::function<void(JobId)> on_change_;
  std::mutex mu_;  // serialises changes: read, decide, compare-and-set, notify
};

}  // namespace conduit
