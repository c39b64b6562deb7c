// Index: the catalogue of what Conduit holds and does — instances, assembly units, MPPS,
// jobs, results, deliveries and the audit trail. SQLite embedded (sqlite_index.h); a
// PostgreSQL backend implements the same interface for several nodes.
// Every mutating call is durable when it returns OK (committed, synced).
// Thread safety: all methods may be called concurrently.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/status.h"
#include "store/records.h"
#include "store/ris_records.h"

namespace conduit {

class Index {
 public:
  virtual ~Index() = default;

  // --- instances ---
  // Records a received instance and its audit event in one transaction. Concurrent callers
  // may be grouped into one commit. kDuplicate if the SOP Instance UID is known (the row is
  // then updated to the new spool key and size: a re-sent instance replaces the old bytes).
  virtual Result<PutOutcome> PutInstance(const InstanceRecord& instance,
                                         const AuditEvent& audit) = 0;
  virtual Result<std::optional<InstanceRecord>> FindInstance(const SopInstanceUid& sop) = 0;
  // Whether an instance (`sop` under `spool_key`) or a result (under `spool_key`) names the
  // spool file `spool_key`: the spool's check at start for files a crash left unrecorded.
  virtual Result<bool> RecordsSpoolFile(const std::string& spool_key,
                                        const SopInstanceUid& sop) = 0;
  // Every row that names a spool file (instances and results), in spool-key order;
  // stops at the first error `visit` returns. Memory stays bounded however many rows there are
  // (SQLite sorts, spilling to temporary files). For `conduit spool check`.
  using SpoolFileVisitor = std::function<Status(const SpoolFileRecord& record)>;
  virtual Status ScanSpoolFiles(const SpoolFileVisitor& visit) = 0;
  // The database's own consistency check (SQLite: PRAGMA quick_check): what it found wrong, at
  // most `max_problems` lines; empty when the index is sound. Reads every page.
  virtual Result<std::vector<std::string>> CheckIntegrity(int max_problems) = 0;
  // In series number, then instance number order. Empty `series` means every series.
  virtual Result<std::vector<InstanceRecord>> ListInstances(
      const StudyUid& study, const std::vector<SeriesUid>& series = {}) = 0;
  // Most recently received first.
  virtual Result<std::vector<StudySummary>> ListStudies(int limit, int offset) = 0;
  virtual Result<std::optional<StudySummary>> GetStudy(const StudyUid& study) = 0;

  // --- search (QIDO-RS) ---
  // Loads the attributes (InstanceRecord::attributes) of the row being visited.
  using AttributeLoader = std::function<Result<std::map<std::string, std::string>>()>;
  // Visits the entities `filter` selects, until `visit` returns false. Order: studies by
  // last receipt, newest first; series and instances likewise, except when filter.studies is
  // given: then by study, series number (and instance number). `load_attributes` loads the
  // row's representative instance's attributes, valid during the call only. The visitor must
  // not call the index (it holds a read connection).
  using EntityVisitor =
      std::function<bool(const EntityRow& row, const AttributeLoader& load_attributes)>;
  virtual Status ScanEntities(const EntityFilter& filter, const EntityVisitor& visit) = 0;

  // --- assembly ---
  virtual Status PutUnit(const AssemblyUnit& unit) = 0;  // insert or replace
  virtual Result<std::vector<AssemblyUnit>> ListUnits(std::optional<UnitState> state) = 0;
  virtual Result<std::vector<AssemblyUnit>> UnitsOfStudy(const StudyUid& study) = 0;
  virtual Status PutMpps(const MppsRecord& mpps) = 0;  // insert or merge (status, instances)
  virtual Result<std::optional<MppsRecord>> GetMpps(const std::string& mpps_uid) = 0;
  virtual Result<std::vector<MppsRecord>> MppsOfStudy(const StudyUid& study) = 0;

  // --- jobs ---
  // Creates a job unless one exists for (study, route, series, generation), in which case
  // that job's id is returned unchanged: completing a unit twice never makes two jobs.
  virtual Result<JobId> CreateJob(const JobRecord& job, const AuditEvent& audit) = 0;
  // Replaces the job row (by id) and appends the audit event, in one transaction.
  virtual Status UpdateJob(const JobRecord& job, const AuditEvent& audit) = 0;
  // Moves the job's next_attempt_at only, without an audit event: a scheduling decision (the
  // tool's circuit is open), not a step. Errors: kNotFound for no such job.
  virtual Status DeferJob(JobId id, TimePoint next_attempt_at) = 0;
  virtual Result<std::optional<JobRecord>> GetJob(JobId id) = 0;
  // Newest first; nullopt state means all.
  virtual Result<std::vector<JobRecord>> ListJobs(std::optional<JobState> state, int limit) = 0;
  // Non-terminal jobs whose next_attempt_at <= now, oldest first.
  virtual Result<std::vector<JobRecord>> DueJobs(TimePoint now, int limit) = 0;
  // Jobs of `tool` for `study` that can still take results (sending, awaiting_results),
  // oldest first. A result arriving once delivery began finds none.
  virtual Result<std::vector<JobRecord>> AwaitingJobs(const std::string& tool,
                                                      const StudyUid& study) = 0;
  virtual Result<std::map<JobState, int64_t>> CountJobsByState() = 0;

  // --- retention ---
  // Up to `limit` studies whose newest instance was received before `received_before`, that
  // have no job in a non-terminal state (queued, sending, awaiting_results, delivering) and
  // no open assembly unit: their data may be expired. Oldest first.
  virtual Result<std::vector<StudyUid>> StudiesToExpire(TimePoint received_before, int limit) = 0;
  // In one transaction: deletes the study's instance rows, the result rows of its jobs, its
  // assembly units and MPPS rows (job rows, deliveries and audit are kept as history), and
  // appends `audit` with "instances" and "results" counts added to its detail. Returns the
  // spool keys (instances, results) no remaining row refers to: the caller removes those
  // files afterwards (never rows without files; the caller tracks them in the spool first,
  // Spool::Track, so a crash in between leaves them to the next start).
  // Errors: kFailedPrecondition if the study has a non-terminal job or an open unit (work
  // began since StudiesToExpire); kNotFound if nothing of the study is left to expire.
  virtual Result<std::vector<std::string>> ExpireStudy(const StudyUid& study,
                                                       const AuditEvent& audit) = 0;
  // Every job of `study`, in any state, oldest first.
  virtual Result<std::vector<JobId>> JobsOfStudy(const StudyUid& study) = 0;
  // The spool files (key, SOP Instance UID) of the rows ExpireStudy would delete now: the
  // study's instances, then the results of its jobs.
  virtual Result<std::vector<std::pair<std::string, SopInstanceUid>>> SpoolFilesOfStudy(
      const StudyUid& study) = 0;

  // --- results and deliveries ---
  // Attaches a result to its job; kDuplicate if the job already has this SOP Instance UID
  // (the row is updated to the new spool key).
  virtual Result<PutOutcome> PutResult(const ResultRecord& result, const AuditEvent& audit) = 0;
  virtual Result<std::vector<ResultRecord>> ListResults(JobId job) = 0;
  virtual Status MarkDelivered(JobId job, const SopInstanceUid& sop, const std::string& destination,
                               const AuditEvent& audit) = 0;
  // The (sop, destination) pairs already delivered for a job.
  virtual Result<std::set<std::pair<std::string, std::string>>> ListDelivered(JobId job) = 0;

  // --- storage commitment (results/commitment_ledger.h) ---
  // Records the results one transaction asks a destination to commit to, with `audit`, in one
  // transaction. Errors: kNotFound for no such job; kAlreadyExists for a known transaction.
  virtual Status OpenCommitment(const std::vector<CommitmentRecord>& items,
                                const AuditEvent& audit) = 0;
  // The job's commitment rows (open, or reported not committed), oldest request first.
  virtual Result<std::vector<CommitmentRecord>> ListCommitments(JobId job) = 0;
  // The rows of one transaction, in any state; empty if none.
  virtual Result<std::vector<CommitmentRecord>> CommitmentRows(
      const std::string& transaction_uid) = 0;
  // Applies a report, in one transaction: each committed result is recorded as delivered to
  // the row's destination (with its audit) and its row goes; any other is marked reported
  // with its failure reason. Then appends `audit`. Rows already reported are left as they are.
  virtual Status SettleCommitment(const std::string& transaction_uid,
                                  const std::vector<CommitmentOutcome>& outcomes,
                                  const AuditEvent& audit) = 0;
  // Per destination with any, the results whose report is awaited (open rows), and the oldest
  // such request; by destination name.
  virtual Result<std::vector<CommitmentBacklog>> CommitmentBacklogs() = 0;
  // Records that the PACS took the transaction's request (its rows become `asked`).
  virtual Status MarkCommitmentAsked(const std::string& transaction_uid) = 0;
  // Removes a transaction's rows (withdrawn, or given up on before a retry) and appends `audit`.
  virtual Status CloseCommitment(const std::string& transaction_uid, const AuditEvent& audit) = 0;

  // --- quarantined results ---
  // Records that a result of job `record.job_id` was quarantined and appends `audit`, in one
  // transaction. Errors: kNotFound for no such job.
  virtual Status PutQuarantined(const QuarantinedRecord& record, const AuditEvent& audit) = 0;
  // Withholds an attached result: in one transaction, records it as quarantined, removes its
  // result row and findings (it is never delivered) and appends `audit`. Returns its spool key
  // if no other result row names that key (the caller removes the file once it is kept in
  // quarantine), else empty. Errors: kNotFound if the job has no such result attached.
  virtual Result<std::optional<std::string>> WithholdResult(const QuarantinedRecord& record,
                                                            const AuditEvent& audit) = 0;
  // The job's quarantined results, in the order quarantined.
  virtual Result<std::vector<QuarantinedRecord>> ListQuarantined(JobId job) = 0;

  // --- findings (extracted from validated results) ---
  // Records a result's findings, in one transaction; a result's findings given again
  // (same job and result SOP Instance UID) replace the earlier ones.
  virtual Status PutFindings(JobId job, const SopInstanceUid& result,
                             const std::vector<FindingRecord>& findings) = 0;
  // In the order recorded.
  virtual Result<std::vector<FindingRecord>> ListFindings(JobId job) = 0;

  // --- crosswalk (pseudonym -> original), inside the trust ---
  // Records substitutes made for a transfer. A pseudonym already known keeps its first row.
  virtual Status PutPseudonyms(const std::vector<CrosswalkRecord>& records) = 0;
  // The originals of those pseudonyms the crosswalk knows; unknown ones are absent.
  virtual Result<std::map<std::string, std::string>> FindOriginals(
      const std::vector<std::string>& pseudonyms) = 0;
  // Deletes rows created before `cutoff` (retention); returns how many.
  virtual Result<int64_t> PurgePseudonymsBefore(TimePoint cutoff) = 0;

  // --- tool registry ---
  // Registers one version of a tool with its audit event, in one transaction. kInserted for a
  // new (name, version), or for a removed one given again with the same hash (it is restored);
  // kDuplicate, changing nothing, if it is registered with the same hash. Errors:
  // kAlreadyExists if (name, version) is known with another hash (a changed manifest needs a
  // new version).
  virtual Result<PutOutcome> AddToolVersion(const ToolRecord& tool, const AuditEvent& audit) = 0;
  // Ordered by name, then by when each version was added.
  virtual Result<std::vector<ToolRecord>> ListTools(bool include_removed) = 0;
  // That version (removed or not); without one, the version of `name` added last that is not
  // removed. Empty if there is none.
  virtual Result<std::optional<ToolRecord>> GetTool(const std::string& name,
                                                    const std::optional<std::string>& version) = 0;
  // Dates the version removed at `audit.at` (the row stays, as history) and appends `audit`; a
  // version already removed is left as it is. Errors: kNotFound if (name, version) is unknown.
  virtual Status RemoveTool(const std::string& name, const std::string& version,
                            const AuditEvent& audit) = 0;

  // --- audit ---
  // The policy hash stamped on audit events that carry none.
  virtual void SetPolicyHash(const std::string& hash) = 0;
  virtual Status AppendAudit(const AuditEvent& event) = 0;
  // Deletes audit rows dated before `cutoff` (retention), in batches so other writes are not
  // held up; returns how many.
  virtual Result<int64_t> PurgeAuditBefore(TimePoint cutoff) = 0;
  // Newest first.
  virtual Result<std::vector<AuditEvent>> ListAudit(int limit, int offset) = 0;
  // The rows of one study (`study_ref`: StudyRef()), newest first.
  virtual Result<std::vector<AuditEvent>> ListAuditOfStudy(const std::string& study_ref, int limit,
                                                           int offset) = 0;

  // --- RIS (HL7 v2) --- (SQLite: sqlite_ris.cc)
  // Queues an outgoing message. kInserted; kDuplicate, changing nothing, when
  // (destination, control_id) is in the outbox already, whatever its state.
  virtual Result<PutOutcome> EnqueueHl7(const Hl7OutboxRecord& message) = 0;
  // Pending messages of `destination` that may be sent at `now`, oldest first: of each
  // patient_key only its oldest pending message, and only if its next_attempt_at <= now.
  virtual Result<std::vector<Hl7OutboxRecord>> SendableHl7(const std::string& destination,
                                                           TimePoint now, int limit) = 0;
  // Records an attempt's outcome: state, attempts, next_attempt_at, last_error and sent_at of
  // the message `message.id`. Errors: kNotFound for no such message.
  virtual Status UpdateHl7(const Hl7OutboxRecord& message) = 0;
  // The earliest next_attempt_at among pending messages of `destination`; empty if none.
  virtual Result<std::optional<TimePoint>> NextHl7AttemptAt(const std::string& destination) = 0;
  // Messages of `destination` in the order queued, of `state` only when given.
  virtual Result<std::vector<Hl7OutboxRecord>> ListHl7(const std::string& destination,
                                                       std::optional<Hl7OutboxState> state,
                                                       int limit) = 0;
  virtual Result<int64_t> CountHl7(const std::string& destination, Hl7OutboxState state) = 0;
  // The operators' view: messages of `destination`, newest first, of `state` only when given.
  virtual Result<std::vector<Hl7OutboxRecord>> RecentHl7(const std::string& destination,
                                                         std::optional<Hl7OutboxState> state,
                                                         int limit) = 0;
  // Retention (app/retention.h), in batches like PurgeAuditBefore; each returns the rows
  // deleted. Sent and failed messages whose outcome (sent_at; created_at if it has none) is
  // dated before `cutoff`; a pending message is never deleted, however old.
  virtual Result<int64_t> PurgeHl7Before(TimePoint cutoff) = 0;
  // Orders last updated before `cutoff`.
  virtual Result<int64_t> PurgeRisOrdersBefore(TimePoint cutoff) = 0;
  // Reports received before `cutoff`.
  virtual Result<int64_t> PurgeRisReportsBefore(TimePoint cutoff) = 0;
  // Inserts or replaces the order of `order.accession`.
  virtual Status PutRisOrder(const RisOrderRecord& order) = 0;
  virtual Result<std::optional<RisOrderRecord>> GetRisOrder(const std::string& accession) = 0;
  // kInserted; kDuplicate, changing nothing, if (sending_application, control_id, obr_index)
  // is stored already (the RIS sent the message again).
  virtual Result<PutOutcome> PutRisReport(const RisReportRecord& report) = 0;
  // The reports for an accession number, in the order received.
  virtual Result<std::vector<RisReportRecord>> ListRisReports(const std::string& accession) = 0;
  // The studies with an instance of that accession number, most recently received first;
  // empty for an empty accession.
  virtual Result<std::vector<StudyUid>> StudiesWithAccession(const std::string& accession) = 0;

  // --- UPS worklist (IHE AIW-I) --- (SQLite: sqlite_workitems.cc)
  // Workitems are never deleted (history); each mutating call appends `audit` in its
  // transaction. The Worklist (adapters/ups_worklist.h) keeps the UPS state machine.
  // Inserts a workitem. Errors: kAlreadyExists if its UID is known; kInvalidArgument for an
  // empty UID.
  virtual Status PutWorkitem(const WorkitemRecord& workitem, const AuditEvent& audit) = 0;
  // Replaces the workitem's row (by uid) if its stored state is still `expected`: a
  // compare-and-set, so of two racing claims exactly one succeeds. Errors: kNotFound;
  // kFailedPrecondition, naming the stored state, when it is no longer `expected`.
  virtual Status UpdateWorkitem(const WorkitemRecord& workitem, UpsState expected,
                                const AuditEvent& audit) = 0;
  virtual Result<std::optional<WorkitemRecord>> GetWorkitem(const std::string& uid) = 0;
  // Workitems of `tool`'s worklist (empty: every worklist), of `state` only when given, in
  // creation order.
  virtual Result<std::vector<WorkitemRecord>> ListWorkitems(const std::string& tool,
                                                            std::optional<UpsState> state,
                                                            int limit, int offset) = 0;
  // The job's workitems, oldest first.
  virtual Result<std::vector<WorkitemRecord>> WorkitemsOfJob(JobId job) = 0;
  // Inserts the subscription, or updates deletion_lock, filter and suspended of the one with
  // the same (subscriber_ae, tool, workitem_uid). Errors: kInvalidArgument without subscriber.
  virtual Status PutSubscription(const UpsSubscription& subscription, const AuditEvent& audit) = 0;
  // Removes the subscriber's subscription to the workitem (`tool`: the workitem's); with an
  // empty `workitem_uid`, its subscription to `tool`'s worklist and to every workitem of that
  // worklist ('' tool: every worklist). Errors: kNotFound if nothing was removed (no audit).
  virtual Status DeleteSubscription(const std::string& subscriber_ae, const std::string& tool,
                                    const std::string& workitem_uid, const AuditEvent& audit) = 0;
  // The worklist subscriptions of `tool` and the administrator's (tool ''), and when
  // `workitem_uid` is given the subscriptions to that workitem; oldest first.
  virtual Result<std::vector<UpsSubscription>> ListSubscriptions(
      const std::string& tool, const std::string& workitem_uid) = 0;
  // Every subscription (to a worklist or a workitem, of any tool) held under `subscriber_ae`,
  // oldest first: whose AE title it is (the event channel's and RAD-86's ownership checks).
  virtual Result<std::vector<UpsSubscription>> SubscriptionsOf(
      const std::string& subscriber_ae) = 0;
  // SCHEDULED or IN PROGRESS workitems of `tool`'s worklist (empty: every worklist) whose job
  // is done, failed or dead-lettered; oldest first, at most `limit`. One query, not one per
  // workitem: the Worklist cancels them before a search offers them.
  virtual Result<std::vector<WorkitemRecord>> OpenWorkitemsOfEndedJobs(const std::string& tool,
                                                                       int limit) = 0;
};

// A short, stable, non-reversible reference for a study in logs and audit: the first 16 hex
// digits of SHA-256 of the Study Instance UID.
std::string StudyRef(const StudyUid& study);

}  // namespace conduit
