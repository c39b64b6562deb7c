// The embedded Index: writes go through SqliteWriter (group commit on the callers' threads), reads
// through a small pool of query-only connections, which WAL lets run beside the writer.
#include "store/sqlite_index.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <functional>
#include <initializer_list>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

#include "store/sqlite_db.h"
#include "store/sqlite_index_internal.h"
#include "store/sqlite_ris.h"
#include "store/sqlite_rows.h"
#include "store/sqlite_schema.h"
#include "store/sqlite_workitems.h"
#include "store/sqlite_writer.h"

namespace conduit {
namespace {

using json = nlohmann::json;

// ---- row <-> record ----

constexpr const char* kInstanceColumns =
    "sop_instance_uid, study_uid, series_uid, sop_class_uid, transfer_syntax_uid, spool_key, "
    "size_bytes, calling_ae, received_at, patient_id, patient_name, accession_number, "
    "study_date, study_description, modality, series_description, body_part, series_number, "
    "instance_number, attributes";

// InstanceRecord::attributes as stored: a JSON object of strings. A malformed value (never
// written by this code) reads as no attributes.
std::string AttributesToJson(const std::map<std::string, std::string>& attributes) {
  return json(attributes).dump(-1, ' ', false, json::error_handler_t::replace);
}

std::map<std::string, std::string> AttributesFromJson(const std::string& text) {
  std::map<std::string, std::string> out;
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return out;
  for (const auto& [key, value] : j.items()) {
    if (value.is_string()) out.emplace(key, value.get<std::string>());
  }
  return out;
}

InstanceRecord ReadInstance(const SqliteStatement& s) {
  InstanceRecord r;
  r.sop_instance_uid = SopInstanceUid(s.Text(0));
  r.study_uid = StudyUid(s.Text(1));
  r.series_uid = SeriesUid(s.Text(2));
  r.sop_class_uid = SopClassUid(s.Text(3));
  r.transfer_syntax_uid = s.Text(4);
  r.spool_key = s.Text(5);
  r.size_bytes = static_cast<uint64_t>(s.Int(6));
  r.calling_ae = AeTitle(s.Text(7));
  r.received_at = FromUnixMillis(s.Int(8));
  r.patient_id = s.Text(9);
  r.patient_name = s.Text(10);
  r.accession_number = s.Text(11);
  r.study_date = s.Text(12);
  r.study_description = s.Text(13);
  r.modality = s.Text(14);
  r.series_description = s.Text(15);
  r.body_part = s.Text(16);
  r.series_number = static_cast<int>(s.Int(17));
  r.instance_number = static_cast<int>(s.Int(18));
  r.attributes = AttributesFromJson(s.Text(19));
  return r;
}

constexpr const char* kStudyColumns =
    "study_uid, max(study_date), max(study_description), "
    "group_concat(DISTINCT nullif(modality, '')), count(DISTINCT series_uid), count(*), "
    "sum(size_bytes), min(received_at), max(received_at)";

StudySummary ReadStudy(const SqliteStatement& s) {
  StudySummary r;
  r.study_uid = StudyUid(s.Text(0));
  r.study_date = s.Text(1);
  r.study_description = s.Text(2);
  std::vector<std::string> modalities;
  std::stringstream in(s.Text(3));
  for (std::string m; std::getline(in, m, ',');) modalities.push_back(m);
  std::sort(modalities.begin(), modalities.end());
  for (const auto& m : modalities) r.modalities += (r.modalities.empty() ? "" : ",") + m;
  r.series_count = s.Int(4);
  r.instance_count = s.Int(5);
  r.size_bytes = static_cast<uint64_t>(s.Int(6));
  r.first_received_at = FromUnixMillis(s.Int(7));
  r.last_received_at = FromUnixMillis(s.Int(8));
  return r;
}

const char* UnitStateName(UnitState state) {
  return state == UnitState::kComplete ? "complete" : "open";
}

constexpr const char* kUnitColumns =
    "route, study_uid, series_uid, state, last_instance_at, generation";

AssemblyUnit ReadUnit(const SqliteStatement& s) {
  AssemblyUnit u;
  u.route = s.Text(0);
  u.study_uid = StudyUid(s.Text(1));
  u.series_uid = SeriesUid(s.Text(2));
  u.state = s.Text(3) == "complete" ? UnitState::kComplete : UnitState::kOpen;
  u.last_instance_at = FromUnixMillis(s.Int(4));
  u.generation = static_cast<int>(s.Int(5));
  return u;
}

// A JSON array of strings; a damaged value reads as empty rather than throwing.
std::vector<std::string> ParseStringArray(const std::string& text) {
  std::vector<std::string> out;
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_array()) return out;
  for (const auto& v : j) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

template <typename Id>
std::string IdsToJson(const std::vector<Id>& ids) {
  json j = json::array();
  for (const auto& id : ids) j.push_back(id.str());
  return j.dump();
}

MppsRecord ReadMpps(const SqliteStatement& s) {
  MppsRecord m;
  m.mpps_sop_instance_uid = s.Text(0);
  m.study_uid = StudyUid(s.Text(1));
  m.status = s.Text(2);
  for (auto& uid : ParseStringArray(s.Text(3))) m.instances.emplace_back(std::move(uid));
  return m;
}

constexpr const char* kJobColumns =
    "id, study_uid, route, tool, destinations, series, generation, state, attempts, "
    "next_attempt_at, last_error, created_at, updated_at, dispatched_at, last_result_at, shadow";

JobRecord ReadJob(const SqliteStatement& s) {
  JobRecord j;
  j.id = JobId{s.Int(0)};
  j.study_uid = StudyUid(s.Text(1));
  j.route = s.Text(2);
  j.tool = s.Text(3);
  j.destinations = ParseStringArray(s.Text(4));
  for (auto& uid : ParseStringArray(s.Text(5))) j.series.emplace_back(std::move(uid));
  j.generation = static_cast<int>(s.Int(6));
  // A state this build does not know (written by a newer one) reads as failed: it is then
  // neither retried nor lost, and an operator can replay it.
  j.state = ParseJobState(s.Text(7)).value_or(JobState::kFailed);
  j.attempts = static_cast<int>(s.Int(8));
  j.next_attempt_at = FromUnixMillis(s.Int(9));
  j.last_error = s.Text(10);
  j.created_at = FromUnixMillis(s.Int(11));
  j.updated_at = FromUnixMillis(s.Int(12));
  j.dispatched_at = FromUnixMillis(s.Int(13));
  j.last_result_at = FromUnixMillis(s.Int(14));
  j.shadow = s.Int(15) != 0;
  return j;
}

// Binds every column of a job but id, as ?2 .. ?16.
void BindJob(SqliteStatement& s, const JobRecord& j) {
  s.Bind(2, j.study_uid.str())
      .Bind(3, j.route)
      .Bind(4, j.tool)
      .Bind(5, json(j.destinations).dump())
      .Bind(6, IdsToJson(j.series))
      .Bind(7, int64_t{j.generation})
      .Bind(8, JobStateName(j.state))
      .Bind(9, int64_t{j.attempts})
      .Bind(10, ToUnixMillis(j.next_attempt_at))
      .Bind(11, j.last_error)
      .Bind(12, ToUnixMillis(j.created_at))
      .Bind(13, ToUnixMillis(j.updated_at))
      .Bind(14, ToUnixMillis(j.dispatched_at))
      .Bind(15, ToUnixMillis(j.last_result_at))
      .Bind(16, int64_t{j.shadow ? 1 : 0});
}

constexpr const char* kResultColumns =
    "job_id, sop_instance_uid, sop_class_uid, series_uid, spool_key, size_bytes, received_at";

ResultRecord ReadResult(const SqliteStatement& s) {
  ResultRecord r;
  r.job_id = JobId{s.Int(0)};
  r.sop_instance_uid = SopInstanceUid(s.Text(1));
  r.sop_class_uid = SopClassUid(s.Text(2));
  r.series_uid = SeriesUid(s.Text(3));
  r.spool_key = s.Text(4);
  r.size_bytes = static_cast<uint64_t>(s.Int(5));
  r.received_at = FromUnixMillis(s.Int(6));
  return r;
}

constexpr const char* kCommitmentColumns =
    "transaction_uid, job_id, destination, sop_instance_uid, sop_class_uid, requested_at, "
    "deadline, asked, reported, failure_reason";

CommitmentRecord ReadCommitment(const SqliteStatement& s) {
  CommitmentRecord r;
  r.transaction_uid = s.Text(0);
  r.job_id = JobId{s.Int(1)};
  r.destination = s.Text(2);
  r.sop_instance_uid = SopInstanceUid(s.Text(3));
  r.sop_class_uid = SopClassUid(s.Text(4));
  r.requested_at = FromUnixMillis(s.Int(5));
  r.deadline = FromUnixMillis(s.Int(6));
  r.asked = s.Int(7) != 0;
  r.reported = s.Int(8) != 0;
  r.failure_reason = static_cast<uint16_t>(s.Int(9));
  return r;
}

constexpr const char* kToolColumns =
    "name, version, manifest_json, manifest_hash, added_at, removed_at";

ToolRecord ReadTool(const SqliteStatement& s) {
  ToolRecord t;
  t.name = s.Text(0);
  t.version = s.Text(1);
  t.manifest_json = s.Text(2);
  t.manifest_hash = s.Text(3);
  t.added_at = FromUnixMillis(s.Int(4));
  t.removed_at = OptionalTime(s, 5);
  return t;
}

AuditEvent ReadAudit(const SqliteStatement& s) {
  AuditEvent e;
  e.at = FromUnixMillis(s.Int(0));
  e.action = s.Text(1);
  e.outcome = s.Text(2);
  e.actor = s.Text(3);
  e.study_ref = s.Text(4);
  e.job_id = JobId{s.Int(5)};
  e.detail = s.Text(6);
  e.policy_hash = s.Text(7);
  return e;
}

// ---- statements run inside a write transaction ----

Result<bool> RowExists(SqliteConnection& c, const std::string& sql,
                       const std::function<void(SqliteStatement&)>& bind) {
  ASSIGN_OR_RETURN(auto s, c.Prepare(sql));
  bind(s);
  return s.Step();
}

// (spool key, SOP Instance UID) of the study's instances, then of its jobs' results.
Status ReadSpoolFilesOfStudy(SqliteConnection& c, const StudyUid& study,
                             std::vector<std::pair<std::string, std::string>>& files) {
  for (const char* sql :
       {"SELECT spool_key, sop_instance_uid FROM instances WHERE study_uid = ?1",
        "SELECT spool_key, sop_instance_uid FROM results WHERE job_id IN (SELECT id FROM "
        "jobs WHERE study_uid = ?1)"}) {
    ASSIGN_OR_RETURN(auto s, c.Prepare(sql));
    s.Bind(1, study.str());
    for (;;) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      files.emplace_back(s.Text(0), s.Text(1));
    }
  }
  return Status::Ok();
}

Result<bool> JobExists(SqliteConnection& c, JobId id) {
  return RowExists(c, "SELECT 1 FROM jobs WHERE id = ?1",
                   [&](SqliteStatement& s) { s.Bind(1, id.value); });
}

Status InsertQuarantined(SqliteConnection& c, const QuarantinedRecord& q) {
  ASSIGN_OR_RETURN(auto s, c.Prepare("INSERT INTO quarantined_results (job_id, sop_instance_uid, "
                                     "reason, quarantined_at) VALUES (?1, ?2, ?3, ?4)"));
  s.Bind(1, q.job_id.value)
      .Bind(2, q.sop_instance_uid.str())
      .Bind(3, q.reason)
      .Bind(4, ToUnixMillis(q.quarantined_at));
  return s.Run();
}

// The non-terminal job states as an SQL list ('queued', 'sending', ...), from IsTerminal.
const std::string& ActiveJobStatesSql() {
  static const std::string list = [] {
    std::string out;
    for (JobState st :
         {JobState::kQueued, JobState::kSending, JobState::kAwaitingResults, JobState::kDelivering,
          JobState::kDone, JobState::kFailed, JobState::kDeadLetter}) {
      if (IsTerminal(st)) continue;
      out += (out.empty() ? "'" : ", '") + std::string(JobStateName(st)) + "'";
    }
    return out;
  }();
  return list;
}

// ---- the index ----

class SqliteIndex final : public Index {
 public:
  SqliteIndex(const std::filesystem::path& path, const SqliteIndexOptions& options,
              std::unique_ptr<SqliteConnection> writer)
      : options_(options),
        readers_(path, options.max_readers),
        writer_(std::move(writer), options.max_batch, options.queue_capacity) {}

  SqliteIndexStats Stats() const { return {writer_.commits(), writer_.writes()}; }

  // --- instances ---

  Result<PutOutcome> PutInstance(const InstanceRecord& r, const AuditEvent& audit) override {
    PutOutcome outcome = PutOutcome::kInserted;
    Status written = writer_.Write("index put instance", [&](SqliteConnection& c) -> Status {
      ASSIGN_OR_RETURN(bool exists,
                       RowExists(c, "SELECT 1 FROM instances WHERE sop_instance_uid = ?1",
                                 [&](SqliteStatement& s) { s.Bind(1, r.sop_instance_uid.str()); }));
      outcome = exists ? PutOutcome::kDuplicate : PutOutcome::kInserted;
      ASSIGN_OR_RETURN(
          auto s,
          c.Prepare(std::string("INSERT INTO instances (") + kInstanceColumns +
                    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, "
                    "?16, ?17, ?18, ?19, ?20) ON CONFLICT (sop_instance_uid) DO UPDATE SET "
                    "study_uid = excluded.study_uid, series_uid = excluded.series_uid, "
                    "sop_class_uid = excluded.sop_class_uid, "
                    "transfer_syntax_uid = excluded.transfer_syntax_uid, "
                    "spool_key = excluded.spool_key, size_bytes = excluded.size_bytes, "
                    "calling_ae = excluded.calling_ae, received_at = excluded.received_at, "
                    "patient_id = excluded.patient_id, patient_name = excluded.patient_name, "
                    "accession_number = excluded.accession_number, "
                    "study_date = excluded.study_date, "
                    "study_description = excluded.study_description, "
                    "modality = excluded.modality, "
                    "series_description = excluded.series_description, "
                    "body_part = excluded.body_part, series_number = excluded.series_number, "
                    "instance_number = excluded.instance_number, "
                    "attributes = excluded.attributes"));
      s.Bind(1, r.sop_instance_uid.str())
          .Bind(2, r.study_uid.str())
          .Bind(3, r.series_uid.str())
          .Bind(4, r.sop_class_uid.str())
          .Bind(5, r.transfer_syntax_uid)
          .Bind(6, r.spool_key)
          .Bind(7, static_cast<int64_t>(r.size_bytes))
          .Bind(8, r.calling_ae.str())
          .Bind(9, ToUnixMillis(r.received_at))
          .Bind(10, r.patient_id)
          .Bind(11, r.patient_name)
          .Bind(12, r.accession_number)
          .Bind(13, r.study_date)
          .Bind(14, r.study_description)
          .Bind(15, r.modality)
          .Bind(16, r.series_description)
          .Bind(17, r.body_part)
          .Bind(18, int64_t{r.series_number})
          .Bind(19, int64_t{r.instance_number})
          .Bind(20, AttributesToJson(r.attributes));
      RETURN_IF_ERROR(s.Run());
      return Audit(c, audit);
    });
    if (!written.ok()) return written;
    return outcome;
  }

  Result<std::optional<InstanceRecord>> FindInstance(const SopInstanceUid& sop) override {
    ASSIGN_OR_RETURN(auto lease, readers_.Acquire());
    ASSIGN_OR_RETURN(auto s, (*lease).Prepare(std::string("SELECT ") + kInstanceColumns +
                                              " FROM instances WHERE sop_instance_uid = ?1"));
    s.Bind(1, sop.str());
    return ReadOptionalRow<InstanceRecord>(s, ReadInstance, "index find instance");
  }

  Result<bool> RecordsSpoolFile(const std::string& spool_key, const SopInstanceUid& sop) override {
    ASSIGN_OR_RETURN(auto lease, readers_.Acquire());
    return RowExists(*lease,
                     "SELECT 1 FROM instances WHERE sop_instance_uid = ?2 AND spool_key = ?1 "
                     "UNION ALL SELECT 1 FROM results WHERE spool_key = ?1 LIMIT 1",
                     [&](SqliteStatement& s) { s.Bind(1, spool_key).Bind(2, sop.str()); });
  }

  Status ScanSpoolFiles(const SpoolFileVisitor& visit) override {
    ASSIGN_OR_RETURN(auto lease, readers_.Acquire());
    ASSIGN_OR_RETURN(auto s,
                     (*lease).Prepare("SELECT spool_key, size_bytes, study_uid, 0 FROM instances "
                                      "UNION ALL SELECT r.spool_key, r.size_bytes, j.study_uid, 1 "
                                      "FROM results r JOIN jobs j ON j.id = r.job_id ORDER BY 1"));
    for (;;) {
      ASSIGN_OR_RETURN(bool row, WithStepContext(s.Step(), "index scan spool files"));
      if (!row) return Status::Ok();
      SpoolFileRecord r;
      r.spool_key = s.Text(0);
      r.size_bytes = static_cast<uint64_t>(s.Int(1));
      r.study_uid = StudyUid(s.Text(2));
      r.result = s.Int(3) != 0;
      RETURN_IF_ERROR(visit(r));
    }
  }

  Result<std::vector<std::string>> CheckIntegrity(int max_problems) override {
    ASSIGN_OR_RETURN(auto lease, readers_.Acquire());
    ASSIGN_OR_RETURN(auto s, (*lease).Prepare("PRAGMA quick_check(" +
                                              std::to_string(std::max(1, max_problems)) + ")"));
    std::vector<std::string> problems;
    for (;;) {
      ASSIGN_OR_RETURN(bool row, WithStepContext(s.Step(), "index integrity check"));
      if (!row) break;
      if (std::string line = s.Text(0); line != "ok") problems.push_back(std::move(line));
    }
    return problems;
  }

  Result<std::vector<InstanceRecord>> ListInstances(const StudyUid& study,
                                                    const std::vector<SeriesUid>& series) override {
    ASSIGN_OR_RETURN(auto lease, readers_.Acquire());
    ASSIGN_OR_RETURN(auto s,
                     (*lease).Prepare(std::string("SELECT ") + kInstanceColumns +
                                      " FROM instances WHERE study_uid = ?1 AND (?2 IS NULL OR "
                                      "series_uid IN (SELECT value FROM json_each(?2))) "
                                      "ORDER BY series_number, series_uid, instance_number, "
                                      "sop_instance_uid"));
    s.Bind(1, study.str());
    if (series.empty()) {
      s.BindNull(2);
    } else {
      s.Bind(2, IdsToJson(series));
    }
    return CollectRows<InstanceRecord>(s, ReadInstance, "index list instances");
  }

  Result<std::vector<StudySummary>> ListStudies(int limit, int offset) override {
    ASSIGN_OR_RETURN(auto lease, readers_.Acquire());
    ASSIGN_OR_RETURN(auto s, (*lease).Prepare(std::string("SELECT ") + kStudyColumns +
                                              " FROM instances GROUP BY study_uid ORDER BY "
                                              "max(received_at) DESC, study_uid LIMIT ?1 "
                                              "OFFSET ?2"));
    s.Bind(1, int64_t{limit}).Bind(2, int64_t{std::max(0, offset)});
    return CollectRows<StudySummary>(s, ReadStudy, "index list studies");
  }

  Result<std::optional<StudySummary>> GetStudy(const StudyUid& study) override {
    ASSIGN_OR_RETURN(auto lease, readers_.Acquire());
    ASSIGN_OR_RETURN(auto s, (*lease).Prepare(std::string("SELECT ") + kStudyColumns +
                                              " FROM instances WHERE study_uid = ?1 "
                                              "GROUP BY study_uid"));
    s.Bind(1, study.str());
    return ReadOptionalRow<StudySummary>(s, ReadStudy, "index get study");
  }

  // --- search ---

  Status ScanEntities(const EntityFilter& filter, const EntityVisitor& visit) override {
    const bool scoped = !filter.studies.empty();
    std::string sql =
        "SELECT study_uid, series_uid, sop_instance_uid, sop_class_uid, transfer_syntax_uid, "
        "patient_id, patient_name, accession_number, study_date, modality, series_number, "
        "instance_number, ";
    switch (filter.level) {
      case EntityLevel::kStudy:
        // The bare columns come from the row of max(received_at): the instance received last.
        sql +=
            "max(received_at), count(DISTINCT series_uid), count(*), "
            "group_concat(DISTINCT nullif(modality, ''))";
        break;
      case EntityLevel::kSeries:
        sql += "max(received_at), 1, count(*), ''";
        break;
      case EntityLevel::kInstance:
        sql += "received_at, 1, 1, ''";
        break;
    }
    // Only the lists given become conditions, so SQLite can use their indexes.
    std::vector<std::string> lists;
    std::string where;
    auto restrict_to = [&](const char* column, const auto& ids) {
      if (ids.empty()) return;
      lists.push_back(IdsToJson(ids));
      where += std::string(where.empty() ? " WHERE " : " AND ") + column +
               " IN (SELECT value FROM json_each(?" + std::to_string(lists.size()) + "))";
    };
    restrict_to("study_uid", filter.studies);
    restrict_to("series_uid", filter.series);
    restrict_to("sop_instance_uid", filter.instances);
    sql += " FROM instances" + where;
    switch (filter.level) {
      case EntityLevel::kStudy:
        sql += " GROUP BY study_uid ORDER BY max(received_at) DESC, study_uid";
        break;
      case EntityLevel::kSeries:
        sql += scoped ? " GROUP BY study_uid, series_uid ORDER BY study_uid, "
                        "min(series_number), series_uid"
                      : " GROUP BY study_uid, series_uid ORDER BY max(received_at) DESC, "
                        "series_uid";
        break;
      case EntityLevel::kInstance:
        sql += scoped ? " ORDER BY study_uid, series_number, series_uid, instance_number, "
                        "sop_instance_uid"
                      : " ORDER BY received_at DESC, sop_instance_uid";
        break;
    }
    ASSIGN_OR_RETURN(auto lease, readers_.Acquire());
    SqliteConnection& conn = *lease;
    ASSIGN_OR_RETURN(auto s, conn.Prepare(sql));
    for (size_t i = 0; i < lists.size(); ++i) s.Bind(static_cast<int>(i + 1), lists[i]);
    for (;;) {
      ASSIGN_OR_RETURN(bool row, WithStepContext(s.Step(), "index scan entities"));
      if (!row) return Status::Ok();
      EntityRow e;
      e.study_uid = StudyUid(s.Text(0));
      e.series_uid = SeriesUid(s.Text(1));
      e.sop_instance_uid = SopInstanceUid(s.Text(2));
      e.sop_class_uid = SopClassUid(s.Text(3));
      e.transfer_syntax_uid = s.Text(4);
      e.patient_id = s.Text(5);
      e.patient_name = s.Text(6);
      e.accession_number = s.Text(7);
      e.study_date = s.Text(8);
      e.modality = s.Text(9);
      e.series_number = static_cast<int>(s.Int(10));
      e.instance_number = static_cast<int>(s.Int(11));
      e.last_received_at = FromUnixMillis(s.Int(12));
      e.series_count = s.Int(13);
      e.instance_count = s.Int(14);
      std::vector<std::string> modalities;
      std::stringstream in(s.Text(15));
      for (std::string m; std::getline(in, m, ',');) modalities.push_back(m);
      std::sort(modalities.begin(), modalities.end());
      for (const auto& m : modalities) e.modalities += (e.modalities.empty() ? "" : ",") + m;
      const AttributeLoader load = [&conn, &e]() -> Result<std::map<std::string, std::string>> {
        ASSIGN_OR_RETURN(auto a, conn.Prepare("SELECT attributes FROM instances WHERE "
                                              "sop_instance_uid = ?1"));
        a.Bind(1, e.sop_instance_uid.str());
        ASSIGN_OR_RETURN(bool found, WithStepContext(a.Step(), "index load attributes"));
        if (!found) return std::map<std::string, std::string>();
        return AttributesFromJson(a.Text(0));
      };
      if (!visit(e, load)) return Status::Ok();
    }
  }

  // --- assembly ---

  Status PutUnit(const AssemblyUnit& u) override {
    return writer_.Write("index put unit", [&](SqliteConnection& c) -> Status {
      ASSIGN_OR_RETURN(auto s, c.Prepare(std::string("INSERT OR REPLACE INTO units (") +
                                         kUnitColumns + ") VALUES (?1, ?2, ?3, ?4, ?5, ?6)"));
      s.Bind(1, u.route)
          .Bind(2, u.study_uid.str())
          .Bind(3, u.series_uid.str())
          .Bind(4, UnitStateName(u.state))
          .Bind(5, ToUnixMillis(u.last_instance_at))
          .Bind(6, int64_t{u.generation});
      return s.Run();
    });
  }

  Result<std::vector<AssemblyUnit>> ListUnits(std::optional<UnitState> state) override {
    ASSIGN_OR_RETURN(auto lease, readers_.Acquire());
    ASSIGN_OR_RETURN(auto s, (*lease).Prepare(std::string("SELECT ") + kUnitColumns +
                                              " FROM units WHERE ?1 IS NULL OR state = ?1 "
                                              "ORDER BY last_instance_at, route, study_uid, "
                                              "series_uid"));
    if (state) {
      s.Bind(1, UnitStateName(*state));
    } else {
      s.BindNull(1);
    }
    return CollectRows<AssemblyUnit>(s, ReadUnit, "index list units");
  }

  Result<std::vector<AssemblyUnit>> UnitsOfStudy(const StudyUid& study) override {
    ASSIGN_OR_RETURN(auto lease, readers_.Acquire());
    ASSIGN_OR_RETURN(auto s, (*lease).Prepare(std::string("SELECT ") + kUnitColumns +
                                              " FROM units WHERE study_uid = ?1 "
                                              "ORDER BY route, series_uid"));
    s.Bind(1, study.str());
    return CollectRows<AssemblyUnit>(s, ReadUnit, "index units of study");
  }

  Status PutMpps(const MppsRecord& m) override {
    return writer_.Write("index put mpps", [&](SqliteConnection& c) -> Status {
      MppsRecord merged = m;
      {
        ASSIGN_OR_RETURN(auto s, c.Prepare("SELECT mpps_uid, study_uid, status, instances "
                                           "FROM mpps WHERE mpps_uid = ?1"));
        s.Bind(1, m.mpps_sop_instance_uid);
        ASSIGN_OR_RETURN(bool row, s.Step());
        if (row) {
          merged = ReadMpps(s);
          if (!m.study_uid.empty()) merged.study_uid = m.study_uid;
          if (!m.status.empty()) merged.status = m.status;
          for (const auto& sop : m.instances) {
            if (std::find(merged.instances.begin(), merged.instances.end(), sop) ==
                merged.instances.end()) {
              merged.instances.push_back(sop);
            }
          }
        }
      }
      ASSIGN_OR_RETURN(auto s, c.Prepare("INSERT OR REPLACE INTO mpps (mpps_uid, study_uid, "
                                         "status, instances) VALUES (?1, ?2, ?3, ?4)"));
      s.Bind(1, merged.mpps_sop_instance_uid)
          .Bind(2, merged.study_uid.str())
          .Bind(3, merged.status)
          .Bind(4, IdsToJson(merged.instances));
      return s.Run();
    });
  }

  Result<std::optional<MppsRecord>> GetMpps(const std::string& mpps_uid) override {
    ASSIGN_OR_RETURN(auto lease, readers_.Acquire());
    ASSIGN_OR_RETURN(auto s, (*lease).Prepare("SELECT mpps_uid, study_uid, status, instances "
                                              "FROM mpps WHERE mpps_uid = ?1"));
    s.Bind(1, mpps_uid);
    return ReadOptionalRow<MppsRecord>(s, ReadMpps, "index get mpps");
  }

  Result<std::vector<MppsRecord>> MppsOfStudy(const StudyUid& study) override {
    ASSIGN_OR_RETURN(auto lease, readers_.Acquire());
    ASSIGN_OR_RETURN(auto s, (*lease).Prepare("SELECT mpps_uid, study_uid, status, instances "
                                              "FROM mpps WHERE study_uid = ?1 ORDER BY mpps_uid"));
    s.Bind(1, study.str());
    return CollectRows<MppsRecord>(s, ReadMpps, "index mpps of study");
  }

  // --- jobs ---

  Result<JobId> CreateJob(const JobRecord& job, const AuditEvent& audit) override {
    JobId id;
    Status written = writer_.Write("index create job", [&](SqliteConnection& c) -> Status {
      {
        ASSIGN_OR_RETURN(auto s, c.Prepare("SELECT id FROM jobs WHERE study_uid = ?1 AND "
                                           "route = ?2 AND generation = ?3 AND series = ?4"));
        s.Bind(1, job.study_uid.str())
            .Bind(2, job.route)
            .Bind(3, int64_t{job.generation})
            .Bind(4, IdsToJson(job.series));
        ASSIGN_OR_RETURN(bool row, s.Step());
        if (row) {
          id = JobId{s.Int(0)};
          return Status::Ok();
        }
      }
      ASSIGN_OR_RETURN(auto s, c.Prepare("INSERT INTO jobs (study_uid, route, tool, "
                                         "destinations, series, generation, state, attempts, "
                                         "next_attempt_at, last_error, created_at, updated_at, "
                                         "dispatched_at, last_result_at, shadow) VALUES (?2, "
                                         "?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, "
                                         "?15, ?16)"));
      BindJob(s, job);
      RETURN_IF_ERROR(s.Run());
      id = JobId{c.LastInsertRowId()};
      AuditEvent event = audit;
      if (event.job_id.value == 0) event.job_id = id;
      return Audit(c, event);
    });
    if (!written.ok()) return written;
    return id;
  }

  Status UpdateJob(const JobRecord& job, const AuditEvent& audit) override {
    return writer_.Write(
        "index update job " + std::to_string(job.id.value), [&](SqliteConnection& c) -> Status {
          ASSIGN_OR_RETURN(auto s,
                           c.Prepare("UPDATE jobs SET study_uid = ?2, route = ?3, tool = ?4, "
                                     "destinations = ?5, series = ?6, generation = ?7, state = ?8, "
                                     "attempts = ?9, next_attempt_at = ?10, last_error = ?11, "
                                     "created_at = ?12, updated_at = ?13, dispatched_at = ?14, "
                                     "last_result_at = ?15, shadow = ?16 WHERE id = ?1"));
          s.Bind(1, job.id.value);
          BindJob(s, job);
          RETURN_IF_ERROR(s.Run());
          if (c.Changes() == 0) return NotFound("no such job");
          return Audit(c, audit);
        });
  }

  Status DeferJob(JobId id, TimePoint next_attempt_at) override {
    return writer_.Write(
        "index defer job " + std::to_string(id.value), [&](SqliteConnection& c) -> Status {
          ASSIGN_OR_RETURN(auto s, c.Prepare("UPDATE jobs SET next_attempt_at = ?2 WHERE id = ?1"));
          s.Bind(1, id.value);
          s.Bind(2, ToUnixMillis(next_attempt_at));
          RETURN_IF_ERROR(s.Run());
          if (c.Changes() == 0) return NotFound("no such job");
          return Status::Ok();
        });
  }

  Result<std::optional<JobRecord>> GetJob(JobId id) override {
    ASSIGN_OR_RETURN(auto lease, readers_.Acquire());
    ASSIGN_OR_RETURN(auto s, (*lease).Prepare(std::string("SELECT ") + kJobColumns +
                                              " FROM jobs WHERE id = ?1"));
    s.Bind(1, id.value);
    return ReadOptionalRow<JobRecord>(s, ReadJob, "index get job");
  }

  Result<std::vector<JobRecord>> ListJobs(std::optional<JobState> state, int limit) override {
    ASSIGN_OR_RETURN(auto lease, readers_.Acquire());
    ASSIGN_OR_RETURN(auto s, (*lease).Prepare(std::string("SELECT ") + kJobColumns +
                                              " FROM jobs WHERE ?1 IS NULL OR state = ?1 "
                                              "ORDER BY id DESC LIMIT ?2"));
    if (state) {
      s.Bind(1, JobStateName(*state));
    } else {
      s.BindNull(1);
    }
    s.Bind(2, int64_t{limit});
    return CollectRows<JobRecord>(s, ReadJob, "index list jobs");
  }

  Result<std::vector<JobRecord>> DueJobs(TimePoint now, int limit) override {
    ASSIGN_OR_RETURN(auto lease, readers_.Acquire());
    ASSIGN_OR_RETURN(auto s, (*lease).Prepare(std::string("SELECT ") + kJobColumns +
                                              " FROM jobs WHERE state NOT IN ('done', "
                                              "'failed', 'dead_letter') AND next_attempt_at <= "
                                              "?1 ORDER BY next_attempt_at, id LIMIT ?2"));
    s.Bind(1, ToUnixMillis(now)).Bind(2, int64_t{limit});
    return CollectRows<JobRecord>(s, ReadJob, "index due jobs");
  }

  // Jobs that can still take results: sending (a fast tool may answer before the last instance
  // is sent) and awaiting_results. Once delivery has begun a late result would never be
  // delivered, so it finds no job and is quarantined. Oldest first.
  Result<std::vector<JobRecord>> AwaitingJobs(const std::string& tool,
                                              const StudyUid& study) override {
    ASSIGN_OR_RETURN(auto lease, readers_.Acquire());
    ASSIGN_OR_RETURN(auto s, (*lease).Prepare(std::string("SELECT ") + kJobColumns +
                                              " FROM jobs WHERE tool = ?1 AND study_uid = ?2 "
                                              "AND state IN ('sending', 'awaiting_results') "
                                              "ORDER BY id"));
    s.Bind(1, tool).Bind(2, study.str());
    return CollectRows<JobRecord>(s, ReadJob, "index awaiting jobs");
  }

  // --- retention ---

  Result<std::vector<StudyUid>> StudiesToExpire(TimePoint received_before, int limit) override {
    ASSIGN_OR_RETURN(auto lease, readers_.Acquire());
    // Only instances older than the cutoff are read (INDEXED BY: without statistics SQLite
    // would rather scan every instance in study order); each of their studies is then
    // checked for a newer instance, an active job or an open unit.
    ASSIGN_OR_RETURN(
        auto s,
        (*lease).Prepare("WITH old AS (SELECT study_uid, max(received_at) AS newest FROM "
                         "instances INDEXED BY instances_by_received WHERE received_at < ?1 "
                         "GROUP BY study_uid) "
                         "SELECT o.study_uid FROM old o WHERE NOT EXISTS (SELECT 1 FROM "
                         "instances n WHERE n.study_uid = o.study_uid AND n.received_at >= ?1) "
                         "AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.study_uid = o.study_uid "
                         "AND j.state IN (" +
                         ActiveJobStatesSql() +
                         ")) AND NOT EXISTS (SELECT 1 FROM units u WHERE u.study_uid = "
                         "o.study_uid AND u.state = 'open') "
                         "ORDER BY o.newest, o.study_uid LIMIT ?2"));
    s.Bind(1, ToUnixMillis(received_before)).Bind(2, int64_t{std::max(0, limit)});
    return CollectRows<StudyUid>(
        s, [](const SqliteStatement& row) { return StudyUid(row.Text(0)); },
        "index studies to expire");
  }

  Result<std::vector<std::pair<std::string, SopInstanceUid>>> SpoolFilesOfStudy(
      const StudyUid& study) override {
    ASSIGN_OR_RETURN(auto lease, readers_.Acquire());
    std::vector<std::pair<std::string, std::string>> files;
    RETURN_IF_ERROR(ReadSpoolFilesOfStudy(*lease, study, files).WithContext("index"));
    std::vector<std::pair<std::string, SopInstanceUid>> out;
    out.reserve(files.size());
    for (auto& [key, sop] : files) out.emplace_back(std::move(key), SopInstanceUid(std::move(sop)));
    return out;
  }

  Result<std::vector<JobId>> JobsOfStudy(const StudyUid& study) override {
    ASSIGN_OR_RETURN(auto lease, readers_.Acquire());
    ASSIGN_OR_RETURN(auto s,
                     (*lease).Prepare("SELECT id FROM jobs WHERE study_uid = ?1 ORDER BY id"));
    s.Bind(1, study.str());
    std::vector<JobId> ids;
    for (;;) {
      ASSIGN_OR_RETURN(bool row, WithStepContext(s.Step(), "index jobs of study"));
      if (!row) return ids;
      ids.push_back(JobId{s.Int(0)});
    }
  }

  Result<std::vector<std::string>> ExpireStudy(const StudyUid& study,
                                               const AuditEvent& audit) override {
    std::vector<std::string> keys;
    auto expire = [&](SqliteConnection& c) -> Status {
      keys.clear();  // a write may run again after SQLite abandoned its transaction
      auto bind_study = [&](SqliteStatement& s) { s.Bind(1, study.str()); };
      ASSIGN_OR_RETURN(bool active,
                       RowExists(c,
                                 "SELECT 1 FROM jobs WHERE study_uid = ?1 AND state IN (" +
                                     ActiveJobStatesSql() +
                                     ") UNION ALL SELECT 1 FROM units WHERE study_uid = ?1 "
                                     "AND state = 'open' LIMIT 1",
                                 bind_study));
      if (active) return FailedPrecondition("the study has a job in progress or an open unit");

      // Spool files of the rows about to go: (key, sop) of instances, then of results.
      std::vector<std::pair<std::string, std::string>> files;
      RETURN_IF_ERROR(ReadSpoolFilesOfStudy(c, study, files));
      std::map<std::string, int64_t> deleted;
      for (const auto& [what, sql] : std::initializer_list<std::pair<const char*, const char*>>{
               {"instances", "DELETE FROM instances WHERE study_uid = ?1"},
               {"results",
                "DELETE FROM results WHERE job_id IN (SELECT id FROM jobs WHERE study_uid = ?1)"},
               {"commitments",
                "DELETE FROM commitments WHERE job_id IN (SELECT id FROM jobs WHERE study_uid = "
                "?1)"},
               {"units", "DELETE FROM units WHERE study_uid = ?1"},
               {"mpps", "DELETE FROM mpps WHERE study_uid = ?1"}}) {
        ASSIGN_OR_RETURN(auto s, c.Prepare(sql));
        bind_study(s);
        RETURN_IF_ERROR(s.Run().WithContext(std::string("delete ") + what));
        deleted[what] = c.Changes();
      }
      if (deleted["instances"] + deleted["results"] + deleted["units"] + deleted["mpps"] == 0) {
        return NotFound("nothing of the study is left to expire");
      }

      // A file another row still names (a result stored under the same key for a job of
      // another study, or an instance with a result's SOP Instance UID) stays.
      std::set<std::string> seen;
      for (const auto& [key, sop] : files) {
        if (!seen.insert(key).second) continue;
        ASSIGN_OR_RETURN(bool referenced,
                         RowExists(c,
                                   "SELECT 1 FROM results WHERE spool_key = ?1 UNION ALL "
                                   "SELECT 1 FROM instances WHERE sop_instance_uid = ?2 AND "
                                   "spool_key = ?1 LIMIT 1",
                                   [&](SqliteStatement& s) { s.Bind(1, key).Bind(2, sop); }));
        if (!referenced) keys.push_back(key);
      }

      AuditEvent event = audit;
      json detail = json::parse(audit.detail.empty() ? std::string("{}") : audit.detail, nullptr,
                                /*allow_exceptions=*/false);
      if (!detail.is_object()) detail = json::object();
      detail["instances"] = deleted["instances"];
      detail["results"] = deleted["results"];
      event.detail = detail.dump();
      return Audit(c, event);
    };
    Status written = writer_.Write("index expire study " + StudyRef(study), expire);
    if (!written.ok()) return written;
    return keys;
  }

  Result<std::map<JobState, int64_t>> CountJobsByState() override {
    ASSIGN_OR_RETURN(auto lease, readers_.Acquire());
    ASSIGN_OR_RETURN(auto s, (*lease).Prepare("SELECT state, count(*) FROM jobs GROUP BY state"));
    std::map<JobState, int64_t> counts;
    for (JobState st :
         {JobState::kQueued, JobState::kSending, JobState::kAwaitingResults, JobState::kDelivering,
          JobState::kDone, JobState::kFailed, JobState::kDeadLetter}) {
      counts[st] = 0;
    }
    for (;;) {
      ASSIGN_OR_RETURN(bool row, WithStepContext(s.Step(), "index count jobs"));
      if (!row) break;
      counts[ParseJobState(s.Text(0)).value_or(JobState::kFailed)] += s.Int(1);
    }
    return counts;
  }

  // --- results and deliveries ---

  Result<PutOutcome> PutResult(const ResultRecord& r, const AuditEvent& audit) override {
    PutOutcome outcome = PutOutcome::kInserted;
    auto put = [&](SqliteConnection& c) -> Status {
      ASSIGN_OR_RETURN(bool job_exists, JobExists(c, r.job_id));
      if (!job_exists) return NotFound("no such job");
      auto bind_key = [&](SqliteStatement& s) {
        s.Bind(1, r.job_id.value).Bind(2, r.sop_instance_uid.str());
      };
      ASSIGN_OR_RETURN(
          bool exists,
          RowExists(c, "SELECT 1 FROM results WHERE job_id = ?1 AND sop_instance_uid = ?2",
                    bind_key));
      outcome = exists ? PutOutcome::kDuplicate : PutOutcome::kInserted;
      ASSIGN_OR_RETURN(
          auto s, c.Prepare(std::string("INSERT INTO results (") + kResultColumns +
                            ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (job_id, "
                            "sop_instance_uid) DO UPDATE SET sop_class_uid = "
                            "excluded.sop_class_uid, series_uid = excluded.series_uid, "
                            "spool_key = excluded.spool_key, size_bytes = excluded.size_bytes, "
                            "received_at = excluded.received_at"));
      bind_key(s);
      s.Bind(3, r.sop_class_uid.str())
          .Bind(4, r.series_uid.str())
          .Bind(5, r.spool_key)
          .Bind(6, static_cast<int64_t>(r.size_bytes))
          .Bind(7, ToUnixMillis(r.received_at));
      RETURN_IF_ERROR(s.Run());
      return Audit(c, audit);
    };
    Status written =
        writer_.Write("index put result for job " + std::to_string(r.job_id.value), put);
    if (!written.ok()) return written;
    return outcome;
  }

  Result<std::vector<ResultRecord>> ListResults(JobId job) override {
    ASSIGN_OR_RETURN(auto lease, readers_.Acquire());
    ASSIGN_OR_RETURN(auto s, (*lease).Prepare(std::string("SELECT ") + kResultColumns +
                                              " FROM results WHERE job_id = ?1 "
                                              "ORDER BY received_at, sop_instance_uid"));
    s.Bind(1, job.value);
    return CollectRows<ResultRecord>(s, ReadResult, "index list results");
  }

  Status MarkDelivered(JobId job, const SopInstanceUid& sop, const std::string& destination,
                       const AuditEvent& audit) override {
    return writer_.Write("index mark delivered for job " + std::to_string(job.value),
                         [&](SqliteConnection& c) -> Status {
                           ASSIGN_OR_RETURN(bool job_exists, JobExists(c, job));
                           if (!job_exists) return NotFound("no such job");
                           ASSIGN_OR_RETURN(auto s,
                                            c.Prepare("INSERT OR IGNORE INTO deliveries "
                                                      "(job_id, sop_instance_uid, destination, "
                                                      "delivered_at) VALUES (?1, ?2, ?3, ?4)"));
                           s.Bind(1, job.value)
                               .Bind(2, sop.str())
                               .Bind(3, destination)
                               .Bind(4, ToUnixMillis(audit.at));
                           RETURN_IF_ERROR(s.Run());
                           return Audit(c, audit);
                         });
  }

  Result<std::set<std::pair<std::string, std::string>>> ListDelivered(JobId job) override {
    ASSIGN_OR_RETURN(auto lease, readers_.Acquire());
    ASSIGN_OR_RETURN(auto s, (*lease).Prepare("SELECT sop_instance_uid, destination FROM "
                                              "deliveries WHERE job_id = ?1"));
    s.Bind(1, job.value);
    std::set<std::pair<std::string, std::string>> out;
    for (;;) {
      ASSIGN_OR_RETURN(bool row, WithStepContext(s.Step(), "index list delivered"));
      if (!row) break;
      out.emplace(s.Text(0), s.Text(1));
    }
    return out;
  }

  // --- storage commitment ---

  Status OpenCommitment(const std::vector<CommitmentRecord>& items,
                        const AuditEvent& audit) override {
    if (items.empty()) return InvalidArgument("index open commitment: no results");
    const std::string what =
        "index open commitment for job " + std::to_string(items.front().job_id.value);
    return writer_.Write(what, [&](SqliteConnection& c) -> Status {
      ASSIGN_OR_RETURN(bool job_exists, JobExists(c, items.front().job_id));
      if (!job_exists) return NotFound("no such job");
      ASSIGN_OR_RETURN(
          bool known,
          RowExists(c, "SELECT 1 FROM commitments WHERE transaction_uid = ?1",
                    [&](SqliteStatement& s) { s.Bind(1, items.front().transaction_uid); }));
      if (known) return AlreadyExists("transaction already recorded");
      const std::string insert = std::string("INSERT INTO commitments (") + kCommitmentColumns +
                                 ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
      for (const CommitmentRecord& r : items) {
        ASSIGN_OR_RETURN(auto s, c.Prepare(insert));
        s.Bind(1, r.transaction_uid)
            .Bind(2, r.job_id.value)
            .Bind(3, r.destination)
            .Bind(4, r.sop_instance_uid.str())
            .Bind(5, r.sop_class_uid.str())
            .Bind(6, ToUnixMillis(r.requested_at))
            .Bind(7, ToUnixMillis(r.deadline))
            .Bind(8, int64_t{r.asked ? 1 : 0})
            .Bind(9, int64_t{r.reported ? 1 : 0})
            .Bind(10, int64_t{r.failure_reason});
        RETURN_IF_ERROR(s.Run());
      }
      return Audit(c, audit);
    });
  }

  Result<std::vector<CommitmentRecord>> ListCommitments(JobId job) override {
    ASSIGN_OR_RETURN(auto lease, readers_.Acquire());
    ASSIGN_OR_RETURN(auto s, (*lease).Prepare(std::string("SELECT ") + kCommitmentColumns +
                                              " FROM commitments WHERE job_id = ?1 "
                                              "ORDER BY requested_at, transaction_uid, "
                                              "sop_instance_uid"));
    s.Bind(1, job.value);
    return CollectRows<CommitmentRecord>(s, ReadCommitment, "index list commitments");
  }

  Result<std::vector<CommitmentRecord>> CommitmentRows(const std::string& transaction) override {
    ASSIGN_OR_RETURN(auto lease, readers_.Acquire());
    ASSIGN_OR_RETURN(auto s, (*lease).Prepare(std::string("SELECT ") + kCommitmentColumns +
                                              " FROM commitments WHERE transaction_uid = ?1 "
                                              "ORDER BY sop_instance_uid"));
    s.Bind(1, transaction);
    return CollectRows<CommitmentRecord>(s, ReadCommitment, "index commitment rows");
  }

  Status SettleCommitment(const std::string& transaction,
                          const std::vector<CommitmentOutcome>& outcomes,
                          const AuditEvent& audit) override {
    return writer_.Write("index settle commitment", [&](SqliteConnection& c) -> Status {
      for (const CommitmentOutcome& o : outcomes) {
        ASSIGN_OR_RETURN(auto row, c.Prepare("SELECT job_id, destination FROM commitments "
                                             "WHERE transaction_uid = ?1 AND "
                                             "sop_instance_uid = ?2 AND reported = 0"));
        row.Bind(1, transaction).Bind(2, o.sop_instance_uid.str());
        ASSIGN_OR_RETURN(bool open, row.Step());
        if (!open) continue;
        const int64_t job = row.Int(0);
        const std::string destination = row.Text(1);
        if (o.committed) {
          ASSIGN_OR_RETURN(auto d, c.Prepare("INSERT OR IGNORE INTO deliveries (job_id, "
                                             "sop_instance_uid, destination, delivered_at) "
                                             "VALUES (?1, ?2, ?3, ?4)"));
          d.Bind(1, job)
              .Bind(2, o.sop_instance_uid.str())
              .Bind(3, destination)
              .Bind(4, ToUnixMillis(o.audit.at));
          RETURN_IF_ERROR(d.Run());
          ASSIGN_OR_RETURN(auto del, c.Prepare("DELETE FROM commitments WHERE transaction_uid "
                                               "= ?1 AND sop_instance_uid = ?2"));
          del.Bind(1, transaction).Bind(2, o.sop_instance_uid.str());
          RETURN_IF_ERROR(del.Run());
          RETURN_IF_ERROR(Audit(c, o.audit));
        } else {
          ASSIGN_OR_RETURN(auto u, c.Prepare("UPDATE commitments SET reported = 1, "
                                             "failure_reason = ?3 WHERE transaction_uid = ?1 "
                                             "AND sop_instance_uid = ?2"));
          u.Bind(1, transaction)
              .Bind(2, o.sop_instance_uid.str())
              .Bind(3, int64_t{o.failure_reason});
          RETURN_IF_ERROR(u.Run());
        }
      }
      return Audit(c, audit);
    });
  }

  Result<std::vector<CommitmentBacklog>> CommitmentBacklogs() override {
    ASSIGN_OR_RETURN(auto lease, readers_.Acquire());
    ASSIGN_OR_RETURN(auto s, (*lease).Prepare("SELECT destination, count(*), min(requested_at) "
                                              "FROM commitments WHERE reported = 0 "
                                              "GROUP BY destination ORDER BY destination"));
    std::vector<CommitmentBacklog> out;
    for (;;) {
      ASSIGN_OR_RETURN(bool row, WithStepContext(s.Step(), "index commitment backlogs"));
      if (!row) break;
      out.push_back({s.Text(0), s.Int(1), FromUnixMillis(s.Int(2))});
    }
    return out;
  }

  Status MarkCommitmentAsked(const std::string& transaction) override {
    return writer_.Write("index mark commitment asked", [&](SqliteConnection& c) -> Status {
      ASSIGN_OR_RETURN(auto s,
                       c.Prepare("UPDATE commitments SET asked = 1 WHERE transaction_uid = ?1"));
      s.Bind(1, transaction);
      return s.Run();
    });
  }

  Status CloseCommitment(const std::string& transaction, const AuditEvent& audit) override {
    return writer_.Write("index close commitment", [&](SqliteConnection& c) -> Status {
      ASSIGN_OR_RETURN(auto s, c.Prepare("DELETE FROM commitments WHERE transaction_uid = ?1"));
      s.Bind(1, transaction);
      RETURN_IF_ERROR(s.Run());
      return Audit(c, audit);
    });
  }

  // --- quarantined results ---

  Status PutQuarantined(const QuarantinedRecord& q, const AuditEvent& audit) override {
    return writer_.Write("index put quarantined result of job " + std::to_string(q.job_id.value),
                         [&](SqliteConnection& c) -> Status {
                           ASSIGN_OR_RETURN(bool job_exists, JobExists(c, q.job_id));
                           if (!job_exists) return NotFound("no such job");
                           RETURN_IF_ERROR(InsertQuarantined(c, q));
                           return Audit(c, audit);
                         });
  }

  Result<std::optional<std::string>> WithholdResult(const QuarantinedRecord& q,
                                                    const AuditEvent& audit) override {
    std::optional<std::string> freed;
    auto withhold = [&](SqliteConnection& c) -> Status {
      freed.reset();  // a write may run again after SQLite abandoned its transaction
      ASSIGN_OR_RETURN(auto find, c.Prepare("SELECT spool_key FROM results WHERE job_id = ?1 AND "
                                            "sop_instance_uid = ?2"));
      find.Bind(1, q.job_id.value).Bind(2, q.sop_instance_uid.str());
      ASSIGN_OR_RETURN(bool found, find.Step());
      if (!found) return NotFound("the job has no such result attached");
      const std::string key = find.Text(0);
      for (const char* sql : {"DELETE FROM results WHERE job_id = ?1 AND sop_instance_uid = ?2",
                              "DELETE FROM findings WHERE job_id = ?1 AND result_sop_uid = ?2"}) {
        ASSIGN_OR_RETURN(auto del, c.Prepare(sql));
        del.Bind(1, q.job_id.value).Bind(2, q.sop_instance_uid.str());
        RETURN_IF_ERROR(del.Run());
      }
      RETURN_IF_ERROR(InsertQuarantined(c, q));
      ASSIGN_OR_RETURN(bool shared,
                       RowExists(c, "SELECT 1 FROM results WHERE spool_key = ?1 LIMIT 1",
                                 [&](SqliteStatement& s) { s.Bind(1, key); }));
      if (!shared) freed = key;
      return Audit(c, audit);
    };
    Status written =
        writer_.Write("index withhold result of job " + std::to_string(q.job_id.value), withhold);
    if (!written.ok()) return written;
    return freed;
  }

  Result<std::vector<QuarantinedRecord>> ListQuarantined(JobId job) override {
    ASSIGN_OR_RETURN(auto lease, readers_.Acquire());
    ASSIGN_OR_RETURN(auto s, (*lease).Prepare("SELECT job_id, sop_instance_uid, reason, "
                                              "quarantined_at FROM quarantined_results WHERE "
                                              "job_id = ?1 ORDER BY id"));
    s.Bind(1, job.value);
    return CollectRows<QuarantinedRecord>(
        s,
        [](const SqliteStatement& row) {
          QuarantinedRecord q;
          q.job_id = JobId{row.Int(0)};
          q.sop_instance_uid = SopInstanceUid(row.Text(1));
          q.reason = row.Text(2);
          q.quarantined_at = FromUnixMillis(row.Int(3));
          return q;
        },
        "index list quarantined results");
  }

  // --- crosswalk ---

  // One transaction for the whole batch. Records without a pseudonym (an empty original
  // gives an empty substitute) have nothing to look up and are skipped.
  Status PutPseudonyms(const std::vector<CrosswalkRecord>& records) override {
    if (records.empty()) return Status::Ok();
    return writer_.Write("index put pseudonyms", [&](SqliteConnection& c) -> Status {
      for (const CrosswalkRecord& r : records) {
        if (r.pseudonym.empty()) continue;
        ASSIGN_OR_RETURN(auto s, c.Prepare("INSERT OR IGNORE INTO crosswalk (pseudonym, "
                                           "original, kind, study_uid, key_id, created_at) "
                                           "VALUES (?1, ?2, ?3, ?4, ?5, ?6)"));
        s.Bind(1, r.pseudonym)
            .Bind(2, r.original)
            .Bind(3, r.kind)
            .Bind(4, r.study_uid.str())
            .Bind(5, r.key_id)
            .Bind(6, ToUnixMillis(r.created_at));
        RETURN_IF_ERROR(s.Run());
      }
      return Status::Ok();
    });
  }

  Result<std::map<std::string, std::string>> FindOriginals(
      const std::vector<std::string>& pseudonyms) override {
    // One cached statement probing the primary key per pseudonym: exact for any bytes, and
    // a few microseconds each.
    std::map<std::string, std::string> found;
    if (pseudonyms.empty()) return found;
    ASSIGN_OR_RETURN(auto lease, readers_.Acquire());
    for (const std::string& pseudonym : pseudonyms) {
      ASSIGN_OR_RETURN(auto s, (*lease).Prepare("SELECT original FROM crosswalk "
                                                "WHERE pseudonym = ?1"));
      s.Bind(1, pseudonym);
      ASSIGN_OR_RETURN(bool row, WithStepContext(s.Step(), "index find originals"));
      if (row) found.emplace(pseudonym, s.Text(0));
    }
    return found;
  }

  Result<int64_t> PurgePseudonymsBefore(TimePoint cutoff) override {
    return PurgeInBatches(writer_, "index purge pseudonyms",
                          "DELETE FROM crosswalk WHERE pseudonym IN (SELECT pseudonym FROM "
                          "crosswalk WHERE created_at < ?1 LIMIT ?2)",
                          cutoff);
  }

  // --- findings ---

  Status PutFindings(JobId job, const SopInstanceUid& result,
                     const std::vector<FindingRecord>& findings) override {
    return writer_.Write("index put findings", [&](SqliteConnection& c) -> Status {
      ASSIGN_OR_RETURN(auto del, c.Prepare("DELETE FROM findings WHERE job_id = ?1 AND "
                                           "result_sop_uid = ?2"));
      del.Bind(1, job.value).Bind(2, result.str());
      RETURN_IF_ERROR(del.Run());
      for (const FindingRecord& f : findings) {
        ASSIGN_OR_RETURN(
            auto s, c.Prepare("INSERT INTO findings (job_id, tool, result_sop_uid, kind, "
                              "concept_scheme, concept_value, concept_meaning, value_scheme, "
                              "value_code, value_meaning, numeric_value, units, tracking_id, "
                              "referenced_sop_uid, recorded_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
                              "?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"));
        s.Bind(1, job.value)
            .Bind(2, f.tool)
            .Bind(3, result.str())
            .Bind(4, f.kind)
            .Bind(5, f.concept_scheme)
            .Bind(6, f.concept_value)
            .Bind(7, f.concept_meaning)
            .Bind(8, f.value_scheme)
            .Bind(9, f.value_code)
            .Bind(10, f.value_meaning);
        if (f.numeric_value) {
          s.BindDouble(11, *f.numeric_value);
        } else {
          s.BindNull(11);
        }
        s.Bind(12, f.units)
            .Bind(13, f.tracking_id)
            .Bind(14, f.referenced_sop_uid)
            .Bind(15, ToUnixMillis(f.recorded_at));
        RETURN_IF_ERROR(s.Run());
      }
      return Status::Ok();
    });
  }

  Result<std::vector<FindingRecord>> ListFindings(JobId job) override {
    ASSIGN_OR_RETURN(auto lease, readers_.Acquire());
    ASSIGN_OR_RETURN(
        auto s, (*lease).Prepare("SELECT job_id, tool, result_sop_uid, kind, concept_scheme, "
                                 "concept_value, concept_meaning, value_scheme, value_code, "
                                 "value_meaning, numeric_value, units, tracking_id, "
                                 "referenced_sop_uid, recorded_at FROM findings WHERE job_id = ?1 "
                                 "ORDER BY id"));
    s.Bind(1, job.value);
    std::vector<FindingRecord> out;
    while (true) {
      ASSIGN_OR_RETURN(bool row, WithStepContext(s.Step(), "index list findings"));
      if (!row) break;
      FindingRecord f;
      f.job_id = JobId{s.Int(0)};
      f.tool = s.Text(1);
      f.result_sop_uid = SopInstanceUid(s.Text(2));
      f.kind = s.Text(3);
      f.concept_scheme = s.Text(4);
      f.concept_value = s.Text(5);
      f.concept_meaning = s.Text(6);
      f.value_scheme = s.Text(7);
      f.value_code = s.Text(8);
      f.value_meaning = s.Text(9);
      if (!s.IsNull(10)) f.numeric_value = s.Double(10);
      f.units = s.Text(11);
      f.tracking_id = s.Text(12);
      f.referenced_sop_uid = s.Text(13);
      f.recorded_at = FromUnixMillis(s.Int(14));
      out.push_back(std::move(f));
    }
    return out;
  }

  // --- tool registry ---

  Result<PutOutcome> AddToolVersion(const ToolRecord& t, const AuditEvent& audit) override {
    PutOutcome outcome = PutOutcome::kInserted;
    auto add = [&](SqliteConnection& c) -> Status {
      ASSIGN_OR_RETURN(auto find, c.Prepare("SELECT manifest_hash, removed_at IS NOT NULL FROM "
                                            "tool_registry WHERE name = ?1 AND version = ?2"));
      find.Bind(1, t.name).Bind(2, t.version);
      ASSIGN_OR_RETURN(bool row, find.Step());
      if (row) {
        if (find.Text(0) != t.manifest_hash) {
          return AlreadyExists("version " + t.version + " is registered with another manifest (" +
                               find.Text(0).substr(0, 16) +
                               "); a changed manifest needs a new version");
        }
        if (find.Int(1) == 0) {
          outcome = PutOutcome::kDuplicate;
          return Status::Ok();
        }
        outcome = PutOutcome::kInserted;
        ASSIGN_OR_RETURN(auto restore, c.Prepare("UPDATE tool_registry SET removed_at = NULL "
                                                 "WHERE name = ?1 AND version = ?2"));
        restore.Bind(1, t.name).Bind(2, t.version);
        RETURN_IF_ERROR(restore.Run());
        return Audit(c, audit);
      }
      outcome = PutOutcome::kInserted;
      ASSIGN_OR_RETURN(auto s, c.Prepare(std::string("INSERT INTO tool_registry (") + kToolColumns +
                                         ") VALUES (?1, ?2, ?3, ?4, ?5, NULL)"));
      s.Bind(1, t.name)
          .Bind(2, t.version)
          .Bind(3, t.manifest_json)
          .Bind(4, t.manifest_hash)
          .Bind(5, ToUnixMillis(t.added_at));
      RETURN_IF_ERROR(s.Run());
      return Audit(c, audit);
    };
    Status written = writer_.Write("index add tool " + t.name + " " + t.version, add);
    if (!written.ok()) return written;
    return outcome;
  }

  Result<std::vector<ToolRecord>> ListTools(bool include_removed) override {
    ASSIGN_OR_RETURN(auto lease, readers_.Acquire());
    ASSIGN_OR_RETURN(auto s, (*lease).Prepare(std::string("SELECT ") + kToolColumns +
                                              " FROM tool_registry WHERE ?1 OR removed_at IS "
                                              "NULL ORDER BY name, id"));
    s.Bind(1, int64_t{include_removed ? 1 : 0});
    return CollectRows<ToolRecord>(s, ReadTool, "index list tools");
  }

  Result<std::optional<ToolRecord>> GetTool(const std::string& name,
                                            const std::optional<std::string>& version) override {
    ASSIGN_OR_RETURN(auto lease, readers_.Acquire());
    ASSIGN_OR_RETURN(auto s, (*lease).Prepare(std::string("SELECT ") + kToolColumns +
                                              " FROM tool_registry WHERE name = ?1 AND "
                                              "(CASE WHEN ?2 IS NULL THEN removed_at IS NULL "
                                              "ELSE version = ?2 END) ORDER BY id DESC LIMIT 1"));
    s.Bind(1, name);
    if (version) {
      s.Bind(2, *version);
    } else {
      s.BindNull(2);
    }
    return ReadOptionalRow<ToolRecord>(s, ReadTool, "index get tool");
  }

  Status RemoveTool(const std::string& name, const std::string& version,
                    const AuditEvent& audit) override {
    return writer_.Write(
        "index remove tool " + name + " " + version, [&](SqliteConnection& c) -> Status {
          ASSIGN_OR_RETURN(auto find, c.Prepare("SELECT removed_at IS NOT NULL FROM "
                                                "tool_registry WHERE name = ?1 AND version = ?2"));
          find.Bind(1, name).Bind(2, version);
          ASSIGN_OR_RETURN(bool row, find.Step());
          if (!row) return NotFound("no such tool version");
          if (find.Int(0) != 0) return Status::Ok();
          ASSIGN_OR_RETURN(auto s, c.Prepare("UPDATE tool_registry SET removed_at = ?3 "
                                             "WHERE name = ?1 AND version = ?2"));
          s.Bind(1, name).Bind(2, version).Bind(3, ToUnixMillis(audit.at));
          RETURN_IF_ERROR(s.Run());
          return Audit(c, audit);
        });
  }

  // --- audit ---

  void SetPolicyHash(const std::string& hash) override {
    std::lock_guard lock(policy_mu_);
    policy_hash_ = hash;
  }

  Status AppendAudit(const AuditEvent& event) override {
    return writer_.Write("index append audit",
                         [&](SqliteConnection& c) -> Status { return Audit(c, event); });
  }

  Result<int64_t> PurgeAuditBefore(TimePoint cutoff) override {
    return PurgeInBatches(
        writer_, "index purge audit",
        "DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at < ?1 LIMIT ?2)", cutoff);
  }

  Result<std::vector<AuditEvent>> ListAudit(int limit, int offset) override {
    ASSIGN_OR_RETURN(auto lease, readers_.Acquire());
    ASSIGN_OR_RETURN(auto s, (*lease).Prepare("SELECT at, action, outcome, actor, study_ref, "
                                              "job_id, detail, policy_hash FROM audit ORDER BY "
                                              "at DESC, id DESC LIMIT ?1 OFFSET ?2"));
    s.Bind(1, int64_t{limit}).Bind(2, int64_t{std::max(0, offset)});
    return CollectRows<AuditEvent>(s, ReadAudit, "index list audit");
  }

  Result<std::vector<AuditEvent>> ListAuditOfStudy(const std::string& study_ref, int limit,
                                                   int offset) override {
    ASSIGN_OR_RETURN(auto lease, readers_.Acquire());
    ASSIGN_OR_RETURN(auto s, (*lease).Prepare("SELECT at, action, outcome, actor, study_ref, "
                                              "job_id, detail, policy_hash FROM audit WHERE "
                                              "study_ref = ?1 ORDER BY at DESC, id DESC LIMIT ?2 "
                                              "OFFSET ?3"));
    s.Bind(1, study_ref).Bind(2, int64_t{limit}).Bind(3, int64_t{std::max(0, offset)});
    return CollectRows<AuditEvent>(s, ReadAudit, "index list audit of a study");
  }

 private:
  // --- RIS (HL7 v2): sqlite_ris.cc ---

  Result<PutOutcome> EnqueueHl7(const Hl7OutboxRecord& m) override { return ris_.EnqueueHl7(m); }
  Result<std::vector<Hl7OutboxRecord>> SendableHl7(const std::string& destination, TimePoint now,
                                                   int limit) override {
    return ris_.SendableHl7(destination, now, limit);
  }
  Status UpdateHl7(const Hl7OutboxRecord& m) override { return ris_.UpdateHl7(m); }
  Result<std::optional<TimePoint>> NextHl7AttemptAt(const std::string& destination) override {
    return ris_.NextHl7AttemptAt(destination);
  }
  Result<std::vector<Hl7OutboxRecord>> ListHl7(const std::string& destination,
                                               std::optional<Hl7OutboxState> state,
                                               int limit) override {
    return ris_.ListHl7(destination, state, limit);
  }
  Result<int64_t> CountHl7(const std::string& destination, Hl7OutboxState state) override {
    return ris_.CountHl7(destination, state);
  }
  Result<std::vector<Hl7OutboxRecord>> RecentHl7(const std::string& destination,
                                                 std::optional<Hl7OutboxState> state,
                                                 int limit) override {
    return ris_.RecentHl7(destination, state, limit);
  }
  Result<int64_t> PurgeHl7Before(TimePoint cutoff) override { return ris_.PurgeHl7Before(cutoff); }
  Result<int64_t> PurgeRisOrdersBefore(TimePoint cutoff) override {
    return ris_.PurgeRisOrdersBefore(cutoff);
  }
  Result<int64_t> PurgeRisReportsBefore(TimePoint cutoff) override {
    return ris_.PurgeRisReportsBefore(cutoff);
  }
  Status PutRisOrder(const RisOrderRecord& o) override { return ris_.PutRisOrder(o); }
  Result<std::optional<RisOrderRecord>> GetRisOrder(const std::string& accession) override {
    return ris_.GetRisOrder(accession);
  }
  Result<PutOutcome> PutRisReport(const RisReportRecord& r) override {
    return ris_.PutRisReport(r);
  }
  Result<std::vector<RisReportRecord>> ListRisReports(const std::string& accession) override {
    return ris_.ListRisReports(accession);
  }
  Result<std::vector<StudyUid>> StudiesWithAccession(const std::string& accession) override {
    return ris_.StudiesWithAccession(accession);
  }

  // --- UPS worklist (IHE AIW-I): sqlite_workitems.cc ---

  Status PutWorkitem(const WorkitemRecord& w, const AuditEvent& audit) override {
    return workitems_.PutWorkitem(w, audit);
  }
  Status UpdateWorkitem(const WorkitemRecord& w, UpsState expected,
                        const AuditEvent& audit) override {
    return workitems_.UpdateWorkitem(w, expected, audit);
  }
  Result<std::optional<WorkitemRecord>> GetWorkitem(const std::string& uid) override {
    return workitems_.GetWorkitem(uid);
  }
  Result<std::vector<WorkitemRecord>> ListWorkitems(const std::string& tool,
                                                    std::optional<UpsState> state, int limit,
                                                    int offset) override {
    return workitems_.ListWorkitems(tool, state, limit, offset);
  }
  Result<std::vector<WorkitemRecord>> WorkitemsOfJob(JobId job) override {
    return workitems_.WorkitemsOfJob(job);
  }
  Status PutSubscription(const UpsSubscription& u, const AuditEvent& audit) override {
    return workitems_.PutSubscription(u, audit);
  }
  Status DeleteSubscription(const std::string& subscriber_ae, const std::string& tool,
                            const std::string& workitem_uid, const AuditEvent& audit) override {
    return workitems_.DeleteSubscription(subscriber_ae, tool, workitem_uid, audit);
  }
  Result<std::vector<UpsSubscription>> ListSubscriptions(const std::string& tool,
                                                         const std::string& workitem_uid) override {
    return workitems_.ListSubscriptions(tool, workitem_uid);
  }
  Result<std::vector<UpsSubscription>> SubscriptionsOf(const std::string& subscriber_ae) override {
    return workitems_.SubscriptionsOf(subscriber_ae);
  }
  Result<std::vector<WorkitemRecord>> OpenWorkitemsOfEndedJobs(const std::string& tool,
                                                               int limit) override {
    return workitems_.OpenWorkitemsOfEndedJobs(tool, limit);
  }

  // Inserts an audit row stamped with the index's policy hash when the event carries none.
  Status Audit(SqliteConnection& c, const AuditEvent& e) {
    std::string hash;
    {
      std::lock_guard lock(policy_mu_);
      hash = policy_hash_;
    }
    return InsertAudit(c, e, hash);
  }

  const SqliteIndexOptions options_;
  std::mutex policy_mu_;
  std::string policy_hash_;  // guarded by policy_mu_
  SqliteReaderPool readers_;
  // The RIS (HL7 v2) tables; keeps references only (writer_ is bound, not used, before it is
  // constructed).
  SqliteRisTables ris_{writer_, readers_};
  // The UPS worklist tables; keeps references only, like ris_.
  SqliteWorkitems workitems_{
      writer_, readers_, [this](SqliteConnection& c, const AuditEvent& e) { return Audit(c, e); }};
  SqliteWriter writer_;  // last: stopped first, while the pool is still there
};

}  // namespace

Result<std::unique_ptr<Index>> OpenSqliteIndexWithOptions(const std::filesystem::path& path,
                                                          const SqliteIndexOptions& options) {
  const std::string what = "index open " + path.string();
  if (path.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(path.parent_path(), ec);
    if (ec) return InvalidArgument(what + ": create directory: " + ec.message());
  }
  auto writer = SqliteConnection::Open(path, /*create=*/true, /*query_only=*/false);
  if (!writer.ok()) return InvalidArgument(what + ": " + writer.status().message());
  if (options.max_page_count > 0) {
    RETURN_IF_ERROR(
        (*writer)->Exec("PRAGMA max_page_count = " + std::to_string(options.max_page_count)));
  }
  Status migrated = MigrateSqliteSchema(**writer);
  if (!migrated.ok()) {
    if (migrated.code() == StatusCode::kInvalidArgument ||
        migrated.code() == StatusCode::kDataLoss) {
      return InvalidArgument(what + ": " + migrated.message());
    }
    return migrated.WithContext(what);
  }
  return std::unique_ptr<Index>(
      std::make_unique<SqliteIndex>(path, options, std::move(writer).value()));
}

Result<std::unique_ptr<Index>> OpenSqliteIndex(const std::filesystem::path& path) {
  return OpenSqliteIndexWithOptions(path, SqliteIndexOptions{});
}

SqliteIndexStats GetSqliteIndexStats(const Index& index) {
  const auto* sqlite = dynamic_cast<const SqliteIndex*>(&index);
  return sqlite != nullptr ? sqlite->Stats() : SqliteIndexStats{};
}

}  // namespace conduit
