// The UPS worklist part of the SQLite index. A workitem's state change is a compare-and-set
// (UPDATE ... WHERE state = expected) run on the single writer, so of two racing claims
// exactly one changes the row; the loser finds no row changed and learns the state it lost to.
#include "store/sqlite_workitems.h"

#include <algorithm>
#include <string>

#include "store/sqlite_rows.h"

namespace conduit {
namespace {

constexpr const char* kWorkitemColumns =
    "uid, job_id, tool, state, priority, transaction_uid, performer, cancel_requested, dataset, "
    "created_at, updated_at, claimed_at, progress_at";

WorkitemRecord ReadWorkitem(const SqliteStatement& s) {
  WorkitemRecord w;
  w.uid = s.Text(0);
  w.job_id = JobId{s.Int(1)};
  w.tool = s.Text(2);
  // A state this build does not know (written by a newer one) reads as CANCELED: no
  // performer claims it and no job waits on it.
  w.state = ParseUpsState(s.Text(3)).value_or(UpsState::kCanceled);
  w.priority = s.Text(4);
  w.transaction_uid = s.Text(5);
  w.performer = s.Text(6);
  w.cancel_requested = s.Int(7) != 0;
  w.dataset = s.Text(8);
  w.created_at = FromUnixMillis(s.Int(9));
  w.updated_at = FromUnixMillis(s.Int(10));
  w.claimed_at = OptionalTime(s, 11);
  w.progress_at = OptionalTime(s, 12);
  return w;
}

// Binds every column as ?1 .. ?13, in kWorkitemColumns order.
void BindWorkitem(SqliteStatement& s, const WorkitemRecord& w) {
  s.Bind(1, w.uid)
      .Bind(2, w.job_id.value)
      .Bind(3, w.tool)
      .Bind(4, UpsStateName(w.state))
      .Bind(5, w.priority)
      .Bind(6, w.transaction_uid)
      .Bind(7, w.performer)
      .Bind(8, int64_t{w.cancel_requested ? 1 : 0})
      .Bind(9, w.dataset)
      .Bind(10, ToUnixMillis(w.created_at))
      .Bind(11, ToUnixMillis(w.updated_at));
  BindOptionalTime(s, 12, w.claimed_at);
  BindOptionalTime(s, 13, w.progress_at);
}

constexpr const char* kSubscriptionColumns =
    "subscriber_ae, tool, workitem_uid, deletion_lock, filter, suspended, created_at";

UpsSubscription ReadSubscription(const SqliteStatement& s) {
  UpsSubscription u;
  u.subscriber_ae = s.Text(0);
  u.tool = s.Text(1);
  u.workitem_uid = s.Text(2);
  u.deletion_lock = s.Int(3) != 0;
  u.filter = s.Text(4);
  u.suspended = s.Int(5) != 0;
  u.created_at = FromUnixMillis(s.Int(6));
  return u;
}

}  // namespace

Status SqliteWorkitems::PutWorkitem(const WorkitemRecord& w, const AuditEvent& audit) {
  if (w.uid.empty()) return InvalidArgument("index put workitem: empty UID");
  return writer_.Write("index put workitem", [&](SqliteConnection& c) -> Status {
    ASSIGN_OR_RETURN(auto exists, c.Prepare("SELECT 1 FROM workitems WHERE uid = ?1"));
    exists.Bind(1, w.uid);
    ASSIGN_OR_RETURN(bool found, exists.Step());
    if (found) return AlreadyExists("a workitem with this UID exists");
    ASSIGN_OR_RETURN(auto s, c.Prepare(std::string("INSERT INTO workitems (") + kWorkitemColumns +
                                       ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
                                       "?12, ?13)"));
    BindWorkitem(s, w);
    RETURN_IF_ERROR(s.Run());
    return audit_(c, audit);
  });
}

Status SqliteWorkitems::UpdateWorkitem(const WorkitemRecord& w, UpsState expected,
                                       const AuditEvent& audit) {
  return writer_.Write("index update workitem", [&](SqliteConnection& c) -> Status {
    ASSIGN_OR_RETURN(auto s, c.Prepare("UPDATE workitems SET job_id = ?2, tool = ?3, state = ?4, "
                                       "priority = ?5, transaction_uid = ?6, performer = ?7, "
                                       "cancel_requested = ?8, dataset = ?9, created_at = ?10, "
                                       "updated_at = ?11, claimed_at = ?12, progress_at = ?13 "
                                       "WHERE uid = ?1 AND state = ?14"));
    BindWorkitem(s, w);
    s.Bind(14, UpsStateName(expected));
    RETURN_IF_ERROR(s.Run());
    if (c.Changes() == 0) {
      ASSIGN_OR_RETURN(auto now, c.Prepare("SELECT state FROM workitems WHERE uid = ?1"));
      now.Bind(1, w.uid);
      ASSIGN_OR_RETURN(bool found, now.Step());
      if (!found) return NotFound("no such workitem");
      return FailedPrecondition("the workitem is " + now.Text(0) + ", not " +
                                std::string(UpsStateName(expected)));
    }
    return audit_(c, audit);
  });
}

Result<std::optional<WorkitemRecord>> SqliteWorkitems::GetWorkitem(const std::string& uid) {
  ASSIGN_OR_RETURN(auto lease, readers_.Acquire());
  ASSIGN_OR_RETURN(auto s, (*lease).Prepare(std::string("SELECT ") + kWorkitemColumns +
                                            " FROM workitems WHERE uid = ?1"));
  s.Bind(1, uid);
  return ReadOptionalRow<WorkitemRecord>(s, ReadWorkitem, "index get workitem");
}

Result<std::vector<WorkitemRecord>> SqliteWorkitems::ListWorkitems(const std::string& tool,
                                                                   std::optional<UpsState> state,
                                                                   int limit, int offset) {
  ASSIGN_OR_RETURN(auto lease, readers_.Acquire());
  ASSIGN_OR_RETURN(auto s, (*lease).Prepare(std::string("SELECT ") + kWorkitemColumns +
                                            " FROM workitems WHERE (?1 = '' OR tool = ?1) AND "
                                            "(?2 IS NULL OR state = ?2) ORDER BY created_at, "
                                            "rowid LIMIT ?3 OFFSET ?4"));
  s.Bind(1, tool);
  if (state) {
    s.Bind(2, UpsStateName(*state));
  } else {
    s.BindNull(2);
  }
  s.Bind(3, int64_t{std::max(0, limit)}).Bind(4, int64_t{std::max(0, offset)});
  return CollectRows<WorkitemRecord>(s, ReadWorkitem, "index list workitems");
}

Result<std::vector<WorkitemRecord>> SqliteWorkitems::WorkitemsOfJob(JobId job) {
  ASSIGN_OR_RETURN(auto lease, readers_.Acquire());
  ASSIGN_OR_RETURN(auto s, (*lease).Prepare(std::string("SELECT ") + kWorkitemColumns +
                                            " FROM workitems WHERE job_id = ?1 ORDER BY "
                                            "created_at, rowid"));
  s.Bind(1, job.value);
  return CollectRows<WorkitemRecord>(s, ReadWorkitem, "index workitems of job");
}

Status SqliteWorkitems::PutSubscription(const UpsSubscription& u, const AuditEvent& audit) {
  if (u.subscriber_ae.empty()) return InvalidArgument("index put subscription: no subscriber");
  return writer_.Write("index put subscription", [&](SqliteConnection& c) -> Status {
    ASSIGN_OR_RETURN(
        auto s, c.Prepare(std::string("INSERT INTO ups_subscriptions (") + kSubscriptionColumns +
                          ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT "
                          "(subscriber_ae, tool, workitem_uid) DO UPDATE SET "
                          "deletion_lock = excluded.deletion_lock, "
                          "filter = excluded.filter, "
                          "suspended = excluded.suspended"));
    s.Bind(1, u.subscriber_ae)
        .Bind(2, u.tool)
        .Bind(3, u.workitem_uid)
        .Bind(4, int64_t{u.deletion_lock ? 1 : 0})
        .Bind(5, u.filter)
        .Bind(6, int64_t{u.suspended ? 1 : 0})
        .Bind(7, ToUnixMillis(u.created_at));
    RETURN_IF_ERROR(s.Run());
    return audit_(c, audit);
  });
}

Status SqliteWorkitems::DeleteSubscription(const std::string& subscriber_ae,
                                           const std::string& tool, const std::string& workitem_uid,
                                           const AuditEvent& audit) {
  return writer_.Write("index delete subscription", [&](SqliteConnection& c) -> Status {
    // A worklist unsubscription also ends the subscriber's subscriptions to that worklist's
    // workitems (PS3.4 CC.2.3.2); the administrator's ('' tool) spans every worklist.
    ASSIGN_OR_RETURN(auto s, c.Prepare("DELETE FROM ups_subscriptions WHERE subscriber_ae = ?1 "
                                       "AND ((?3 <> '' AND tool = ?2 AND workitem_uid = ?3) OR "
                                       "(?3 = '' AND (?2 = '' OR tool = ?2)))"));
    s.Bind(1, subscriber_ae).Bind(2, tool).Bind(3, workitem_uid);
    RETURN_IF_ERROR(s.Run());
    if (c.Changes() == 0) return NotFound("no such subscription");
    return audit_(c, audit);
  });
}

Result<std::vector<UpsSubscription>> SqliteWorkitems::ListSubscriptions(
    const std::string& tool, const std::string& workitem_uid) {
  ASSIGN_OR_RETURN(auto lease, readers_.Acquire());
  ASSIGN_OR_RETURN(auto s, (*lease).Prepare(std::string("SELECT ") + kSubscriptionColumns +
                                            " FROM ups_subscriptions WHERE (workitem_uid = '' "
                                            "AND (tool = ?1 OR tool = '')) OR (?2 <> '' AND "
                                            "workitem_uid = ?2) ORDER BY created_at, "
                                            "subscriber_ae, tool, workitem_uid"));
  s.Bind(1, tool).Bind(2, workitem_uid);
  return CollectRows<UpsSubscription>(s, ReadSubscription, "index list subscriptions");
}

Result<std::vector<UpsSubscription>> SqliteWorkitems::SubscriptionsOf(
    const std::string& subscriber_ae) {
  ASSIGN_OR_RETURN(auto lease, readers_.Acquire());
  ASSIGN_OR_RETURN(auto s, (*lease).Prepare(std::string("SELECT ") + kSubscriptionColumns +
                                            " FROM ups_subscriptions WHERE subscriber_ae = ?1 "
                                            "ORDER BY created_at, tool, workitem_uid"));
  s.Bind(1, subscriber_ae);
  return CollectRows<UpsSubscription>(s, ReadSubscription, "index subscriptions of subscriber");
}

Result<std::vector<WorkitemRecord>> SqliteWorkitems::OpenWorkitemsOfEndedJobs(
    const std::string& tool, int limit) {
  ASSIGN_OR_RETURN(auto lease, readers_.Acquire());
  // Open workitems come from workitems_by_tool_state; each one's job is a primary-key lookup.
  ASSIGN_OR_RETURN(
      auto s, (*lease).Prepare(std::string("SELECT ") + kWorkitemColumns +
                               " FROM workitems WHERE (?1 = '' OR tool = ?1) AND state IN (?2, "
                               "?3) AND EXISTS (SELECT 1 FROM jobs WHERE jobs.id = "
                               "workitems.job_id AND jobs.state IN (?4, ?5, ?6)) ORDER BY "
                               "created_at, rowid LIMIT ?7"));
  s.Bind(1, tool)
      .Bind(2, UpsStateName(UpsState::kScheduled))
      .Bind(3, UpsStateName(UpsState::kInProgress))
      .Bind(4, JobStateName(JobState::kDone))
      .Bind(5, JobStateName(JobState::kFailed))
      .Bind(6, JobStateName(JobState::kDeadLetter))
      .Bind(7, int64_t{std::max(0, limit)});
  return CollectRows<WorkitemRecord>(s, ReadWorkitem, "index open workitems of ended jobs");
}

}  // namespace conduit
