// Rows of the index, in Conduit's own types. Patient identifiers live only in InstanceRecord
// and StudySummary; nothing here is ever logged as is.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/ids.h"

namespace conduit {

struct InstanceRecord {
  StudyUid study_uid;
  SeriesUid series_uid;
  SopInstanceUid sop_instance_uid;
  SopClassUid sop_class_uid;
  std::string transfer_syntax_uid;
  std::string spool_key;
  uint64_t size_bytes = 0;
  AeTitle calling_ae;
  TimePoint received_at;
  // Descriptive, for the admin API and routing explanations.
  std::string patient_id;
  std::string patient_name;
  std::string accession_number;
  std::string study_date;
  std::string study_description;
  std::string modality;
  std::string series_description;
  std::string body_part;
  int series_number = 0;
  int instance_number = 0;
  // Every top-level text attribute (InstanceMeta::attributes), for QIDO-RS.
  std::map<std::string, std::string> attributes;
};

enum class PutOutcome { kInserted, kDuplicate };

struct StudySummary {
  StudyUid study_uid;
  std::string study_date;
  std::string study_description;
  std::string modalities;  // distinct, comma-separated
  int64_t series_count = 0;
  int64_t instance_count = 0;
  uint64_t size_bytes = 0;
  TimePoint first_received_at;
  TimePoint last_received_at;
};

// Search (QIDO-RS) over what the index holds, one row per study, series or instance.
enum class EntityLevel { kStudy, kSeries, kInstance };

// Which entities a search scans: each non-empty list restricts to those UIDs (the study,
// series or instance of the entity's representative instance).
struct EntityFilter {
  EntityLevel level = EntityLevel::kStudy;
  std::vector<StudyUid> studies;
  std::vector<SeriesUid> series;
  std::vector<SopInstanceUid> instances;
};

// One study, series or instance found by a search. The descriptive values are those of its
// representative instance: the one received last (at instance level, the instance itself).
struct EntityRow {
  StudyUid study_uid;
  SeriesUid series_uid;
  SopInstanceUid sop_instance_uid;
  SopClassUid sop_class_uid;
  std::string transfer_syntax_uid;
  std::string patient_id;
  std::string patient_name;
  std::string accession_number;
  std::string study_date;
  std::string modality;
  int series_number = 0;
  int instance_number = 0;
  int64_t series_count = 0;    // study level: series in the study
  int64_t instance_count = 0;  // study and series levels: instances in the entity
  std::string modalities;      // study level: distinct, sorted, comma-separated
  TimePoint last_received_at;
};

// A unit of assembly: a study (or one series) that one route waits on until it is complete.
enum class UnitState { kOpen, kComplete };
struct AssemblyUnit {
  std::string route;
  StudyUid study_uid;
  SeriesUid series_uid;  // empty when the route selects whole studies
  UnitState state = UnitState::kOpen;
  TimePoint last_instance_at;
  int generation = 0;  // incremented each time a late instance re-opens a completed unit
};

struct MppsRecord {
  std::string mpps_sop_instance_uid;
  StudyUid study_uid;
  std::string status;
  std::vector<SopInstanceUid> instances;
};

enum class JobState {
  kQueued,
  kSending,
  kAwaitingResults,
  kDelivering,
  kDone,
  kFailed,      // a non-retryable error; replayable
  kDeadLetter,  // retries exhausted; replayable
};
const char* JobStateName(JobState state);  // "queued", "sending", "awaiting_results", ...
std::optional<JobState> ParseJobState(std::string_view name);
bool IsTerminal(JobState state);  // done, failed, dead_letter

struct JobRecord {
  JobId id;
  StudyUid study_uid;
  std::string route;
  std::string tool;
  std::vector<std::string> destinations;
  std::vector<SeriesUid> series;  // empty: the whole study
  int generation = 0;
  JobState state = JobState::kQueued;
  int attempts = 0;  // failed attempts of the current step
  TimePoint next_attempt_at;
  std::string last_error;  // never contains patient identifiers
  TimePoint created_at;
  TimePoint updated_at;
  TimePoint dispatched_at;   // when the tool was handed the study (kAwaitingResults)
  TimePoint last_result_at;  // when the latest result arrived
  // Its route's `shadow` when the job was made: results kept and their findings recorded,
  // never delivered to a destination or reported to the RIS.
  bool shadow = false;
};

// A result object returned by a tool for a job, held in the spool until delivered.
struct ResultRecord {
  JobId job_id;
  SopInstanceUid sop_instance_uid;
  SopClassUid sop_class_uid;
  SeriesUid series_uid;
  std::string spool_key;
  uint64_t size_bytes = 0;
  TimePoint received_at;
};

// One row of the index that names a spool file: an instance, or a result of a job (a key may
// be named by several results of the same object). For the spool's consistency check.
struct SpoolFileRecord {
  std::string spool_key;
  uint64_t size_bytes = 0;
  StudyUid study_uid;
  bool result = false;
};

// A result of a job that was quarantined (failed its checks, or withheld because it refers to
// a quarantined result): never delivered. Its SOP Instance UID is empty when the object could
// not be read far enough to name it.
struct QuarantinedRecord {
  JobId job_id;
  SopInstanceUid sop_instance_uid;
  std::string reason;  // never contains patient identifiers nor UIDs in clear
  TimePoint quarantined_at;
};

// A Unified Procedure Step of the AI worklist (IHE AIW-I): one per dispatch of a job to a
// pull-model tool. States and transitions as PS3.4 Annex CC.
enum class UpsState { kScheduled, kInProgress, kCanceled, kCompleted };
// "SCHEDULED", "IN PROGRESS", "CANCELED", "COMPLETED" (the DICOM defined terms).
std::string_view UpsStateName(UpsState state);
std::optional<UpsState> ParseUpsState(std::string_view name);

struct WorkitemRecord {
  std::string uid;  // the workitem's SOP Instance UID (2.25.x)
  JobId job_id;
  std::string tool;  // the tool whose worklist holds it
  UpsState state = UpsState::kScheduled;
  std::string priority = "MEDIUM";  // HIGH, MEDIUM, LOW
  // Set by the claim (RAD-82); required for every later change by the performer; never
  // shown to anyone else.
  std::string transaction_uid;
  std::string performer;  // who claimed it (the performer's AE title, if it gave one)
  bool cancel_requested = false;
  // The workitem's attributes as DICOM JSON (PS3.18 F.2), without the Transaction UID. Holds
  // only what the tool may see (pseudonymous when the tool is de-identified).
  std::string dataset;
  TimePoint created_at;
  TimePoint updated_at;
  std::optional<TimePoint> claimed_at;
  std::optional<TimePoint> progress_at;  // the performer's last update
};

// A subscription to UPS events (RAD-86): to one workitem, or to the whole worklist
// (workitem_uid empty), optionally filtered (filter: a UPS-RS query string).
struct UpsSubscription {
  std::string subscriber_ae;
  // The worklist: the tool subscribed to (global), or the workitem's tool; empty for the
  // administrator's subscription to every worklist.
  std::string tool;
  std::string workitem_uid;
  bool deletion_lock = false;
  std::string filter;
  bool suspended = false;
  TimePoint created_at;
};

// One line of the audit trail: who did what to which object, and how it ended.
struct AuditEvent {
  TimePoint at;
  std::string action;     // receive, reject, dispatch, result, deliver, retry, dead_letter, ...
  std::string outcome;    // success, failure
  std::string actor;      // AE title, tool or destination name, "cli"
  std::string study_ref;  // StudyRef() of the study, never the UID itself
  JobId job_id;
  std::string detail;  // JSON object text; no patient identifiers
  // SHA-256 of the policy in force; the index stamps its own (SetPolicyHash) when empty.
  std::string policy_hash;
};

// One result a PACS destination was asked to commit to, under one storage commitment
// transaction, until the PACS's report settles it.
struct CommitmentRecord {
  std::string transaction_uid;
  JobId job_id;
  std::string destination;
  SopInstanceUid sop_instance_uid;
  SopClassUid sop_class_uid;
  TimePoint requested_at;
  TimePoint deadline;           // no report by then: the result is sent and asked again
  bool asked = false;           // the PACS answered the request (N-ACTION success)
  bool reported = false;        // the report came and did not commit this result
  uint16_t failure_reason = 0;  // its Failure Reason (0: the report left it out)
};

// What a report says of one result of its transaction: committed (a delivery, recorded with
// `audit`) or not (with the report's Failure Reason, 0 when it left the result out).
struct CommitmentOutcome {
  SopInstanceUid sop_instance_uid;
  bool committed = false;
  uint16_t failure_reason = 0;
  AuditEvent audit;  // for a committed result
};

// Storage commitment awaited from one destination: how many results, and since when.
struct CommitmentBacklog {
  std::string destination;
  int64_t results = 0;
  TimePoint oldest_requested_at;
};

// A substitute made when de-identifying for a transfer, kept inside the trust so results can
// be re-identified. Never leaves the index; never logged.
struct CrosswalkRecord {
  std::string pseudonym;
  std::string original;
  std::string kind;    // "uid", "patient_id", "accession_number"
  StudyUid study_uid;  // the original study it was made for
  std::string key_id;  // PseudonymKey::id of the key that made it
  TimePoint created_at;
};

// One thing a tool reported in a validated result (IHE AI Results): a coded finding, a
// measurement, a score or a triage flag, with the image it refers to (original UID, after
// re-identification). Codes are (scheme, value, meaning) as in the object; absent parts empty.
struct FindingRecord {
  JobId job_id;
  std::string tool;
  SopInstanceUid result_sop_uid;
  std::string kind;  // "finding", "measurement", "score", "triage", "flag" (a KOS title)
  std::string concept_scheme, concept_value, concept_meaning;  // what was observed/measured
  std::string value_scheme, value_code, value_meaning;         // a coded answer, if any
  std::optional<double> numeric_value;                         // a measured or scored value
  std::string units;                                           // UCUM code, if numeric
  std::string tracking_id;                                     // TID 1500 Tracking Identifier
  std::string referenced_sop_uid;                              // the image it is about
  TimePoint recorded_at;
};

// One version of an AI tool in the registry, as its manifest declared it. A new version is a
// new row; a row is never overwritten, and removing it only dates it (removed_at).
struct ToolRecord {
  std::string name;
  std::string version;
  std::string manifest_json;  // the manifest's canonical JSON form
  std::string manifest_hash;  // SHA-256 hex of the manifest file's bytes
  TimePoint added_at;
  std::optional<TimePoint> removed_at;  // empty while the version is registered
};

}  // namespace conduit
