// The RIS (HL7 v2) tables of the embedded index. The outbox's order per patient is kept by the
// query that picks what may be sent: a message waits while an older message of its patient
// (same destination) is still pending.
#include "store/sqlite_ris.h"

#include <string_view>

#include "store/sqlite_rows.h"

namespace conduit {
namespace {

constexpr const char* kOutboxColumns =
    "id, destination, patient_key, job_id, message_type, control_id, message, state, attempts, "
    "next_attempt_at, last_error, created_at, sent_at";

Hl7OutboxRecord ReadOutbox(const SqliteStatement& s) {
  Hl7OutboxRecord r;
  r.id = s.Int(0);
  r.destination = s.Text(1);
  r.patient_key = s.Text(2);
  r.job_id = JobId{s.IsNull(3) ? 0 : s.Int(3)};
  r.message_type = s.Text(4);
  r.control_id = s.Text(5);
  r.message = s.Text(6);
  // A state this build does not know (never written by it) reads as failed: never sent.
  r.state = ParseHl7OutboxState(s.Text(7)).value_or(Hl7OutboxState::kFailed);
  r.attempts = static_cast<int>(s.Int(8));
  r.next_attempt_at = FromUnixMillis(s.Int(9));
  r.last_error = s.Text(10);
  r.created_at = FromUnixMillis(s.Int(11));
  r.sent_at = OptionalTime(s, 12);
  return r;
}

constexpr const char* kOrderColumns =
    "accession, placer_order, filler_order, patient_key, study_uid, order_control, "
    "order_status, priority, updated_at";

RisOrderRecord ReadOrder(const SqliteStatement& s) {
  RisOrderRecord r;
  r.accession = s.Text(0);
  r.placer_order = s.Text(1);
  r.filler_order = s.Text(2);
  r.patient_key = s.Text(3);
  r.study_uid = s.Text(4);
  r.order_control = s.Text(5);
  r.order_status = s.Text(6);
  r.priority = s.Text(7);
  r.updated_at = FromUnixMillis(s.Int(8));
  return r;
}

constexpr const char* kReportColumns =
    "id, sending_application, control_id, obr_index, accession, study_uid, result_status, "
    "observed_at, report_text, codes, received_at";

RisReportRecord ReadReport(const SqliteStatement& s) {
  RisReportRecord r;
  r.id = s.Int(0);
  r.sending_application = s.Text(1);
  r.control_id = s.Text(2);
  r.obr_index = static_cast<int>(s.Int(3));
  r.accession = s.Text(4);
  r.study_uid = s.Text(5);
  r.result_status = s.Text(6);
  r.observed_at = s.Text(7);
  r.text = s.Text(8);
  r.codes_json = s.Text(9);
  r.received_at = FromUnixMillis(s.Int(10));
  return r;
}

}  // namespace

Result<PutOutcome> SqliteRisTables::EnqueueHl7(const Hl7OutboxRecord& m) {
  PutOutcome outcome = PutOutcome::kInserted;
  Status written = writer_.Write("index enqueue hl7", [&](SqliteConnection& c) -> Status {
    ASSIGN_OR_RETURN(
        auto s, c.Prepare("INSERT INTO hl7_outbox (destination, patient_key, job_id, "
                          "message_type, control_id, message, state, attempts, next_attempt_at, "
                          "last_error, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
                          "?10, ?11) ON CONFLICT (destination, control_id) DO NOTHING"));
    s.Bind(1, m.destination)
        .Bind(2, m.patient_key)
        .Bind(4, m.message_type)
        .Bind(5, m.control_id)
        .Bind(6, m.message)
        .Bind(7, Hl7OutboxStateName(m.state))
        .Bind(8, int64_t{m.attempts})
        .Bind(9, ToUnixMillis(m.next_attempt_at))
        .Bind(10, m.last_error)
        .Bind(11, ToUnixMillis(m.created_at));
    if (m.job_id.value > 0) {
      s.Bind(3, m.job_id.value);
    } else {
      s.BindNull(3);
    }
    RETURN_IF_ERROR(s.Run());
    outcome = c.Changes() > 0 ? PutOutcome::kInserted : PutOutcome::kDuplicate;
    return Status::Ok();
  });
  if (!written.ok()) return written;
  return outcome;
}

Result<std::vector<Hl7OutboxRecord>> SqliteRisTables::SendableHl7(const std::string& destination,
                                                                  TimePoint now, int limit) {
  ASSIGN_OR_RETURN(auto lease, readers_.Acquire());
  ASSIGN_OR_RETURN(
      auto s,
      (*lease).Prepare(std::string("SELECT ") + kOutboxColumns +
                       " FROM hl7_outbox o WHERE destination = ?1 AND state = 'pending' AND "
                       "next_attempt_at <= ?2 AND NOT EXISTS (SELECT 1 FROM hl7_outbox p WHERE "
                       "p.destination = o.destination AND p.patient_key = o.patient_key AND "
                       "p.state = 'pending' AND p.id < o.id) ORDER BY id LIMIT ?3"));
  s.Bind(1, destination).Bind(2, ToUnixMillis(now)).Bind(3, int64_t{limit});
  return CollectRows<Hl7OutboxRecord>(s, ReadOutbox, "index sendable hl7");
}

Status SqliteRisTables::UpdateHl7(const Hl7OutboxRecord& m) {
  return writer_.Write(
      "index update hl7 " + std::to_string(m.id), [&](SqliteConnection& c) -> Status {
        ASSIGN_OR_RETURN(auto s, c.Prepare("UPDATE hl7_outbox SET state = ?2, attempts = ?3, "
                                           "next_attempt_at = ?4, last_error = ?5, "
                                           "sent_at = ?6 WHERE id = ?1"));
        s.Bind(1, m.id)
            .Bind(2, Hl7OutboxStateName(m.state))
            .Bind(3, int64_t{m.attempts})
            .Bind(4, ToUnixMillis(m.next_attempt_at))
            .Bind(5, m.last_error);
        BindOptionalTime(s, 6, m.sent_at);
        RETURN_IF_ERROR(s.Run());
        if (c.Changes() == 0) return NotFound("no such outbox message");
        return Status::Ok();
      });
}

Result<std::optional<TimePoint>> SqliteRisTables::NextHl7AttemptAt(const std::string& destination) {
  ASSIGN_OR_RETURN(auto lease, readers_.Acquire());
  ASSIGN_OR_RETURN(auto s, (*lease).Prepare("SELECT min(next_attempt_at) FROM hl7_outbox WHERE "
                                            "destination = ?1 AND state = 'pending'"));
  s.Bind(1, destination);
  Result<bool> row = s.Step();
  if (!row.ok()) return row.status().WithContext("index next hl7 attempt");
  if (!*row || s.IsNull(0)) return std::optional<TimePoint>();
  return std::optional<TimePoint>(FromUnixMillis(s.Int(0)));
}

Result<std::vector<Hl7OutboxRecord>> SqliteRisTables::ListHl7(const std::string& destination,
                                                              std::optional<Hl7OutboxState> state,
                                                              int limit) {
  return ListOutbox(destination, state, limit, /*newest_first=*/false, "index list hl7");
}

Result<std::vector<Hl7OutboxRecord>> SqliteRisTables::RecentHl7(const std::string& destination,
                                                                std::optional<Hl7OutboxState> state,
                                                                int limit) {
  return ListOutbox(destination, state, limit, /*newest_first=*/true, "index recent hl7");
}

Result<std::vector<Hl7OutboxRecord>> SqliteRisTables::ListOutbox(
    const std::string& destination, std::optional<Hl7OutboxState> state, int limit,
    bool newest_first, std::string_view what) {
  // The state clause only when asked for, so that (destination, state, id) serves it.
  ASSIGN_OR_RETURN(auto lease, readers_.Acquire());
  ASSIGN_OR_RETURN(auto s, (*lease).Prepare(std::string("SELECT ") + kOutboxColumns +
                                            " FROM hl7_outbox WHERE destination = ?1" +
                                            (state ? " AND state = ?2" : "") + " ORDER BY id" +
                                            (newest_first ? " DESC" : "") + " LIMIT ?3"));
  s.Bind(1, destination).Bind(3, int64_t{limit});
  if (state) s.Bind(2, Hl7OutboxStateName(*state));
  return CollectRows<Hl7OutboxRecord>(s, ReadOutbox, what);
}

Result<int64_t> SqliteRisTables::CountHl7(const std::string& destination, Hl7OutboxState state) {
  ASSIGN_OR_RETURN(auto lease, readers_.Acquire());
  ASSIGN_OR_RETURN(auto s, (*lease).Prepare("SELECT count(*) FROM hl7_outbox WHERE "
                                            "destination = ?1 AND state = ?2"));
  s.Bind(1, destination).Bind(2, Hl7OutboxStateName(state));
  return ReadCount(s, "index count hl7");
}

// Retention: each batch finds its rows by the indexes of migration 9
// (sqlite_schema_v9_ris_retention.inc), not by a scan of the table.

Result<int64_t> SqliteRisTables::PurgeHl7Before(TimePoint cutoff) {
  return PurgeInBatches(writer_, "index purge hl7 outbox",
                        "DELETE FROM hl7_outbox WHERE id IN (SELECT id FROM hl7_outbox WHERE "
                        "state IN ('sent', 'failed') AND sent_at < ?1 UNION ALL SELECT id FROM "
                        "hl7_outbox WHERE state IN ('sent', 'failed') AND sent_at IS NULL AND "
                        "created_at < ?1 LIMIT ?2)",
                        cutoff);
}

Result<int64_t> SqliteRisTables::PurgeRisOrdersBefore(TimePoint cutoff) {
  return PurgeInBatches(writer_, "index purge ris orders",
                        "DELETE FROM ris_orders WHERE rowid IN (SELECT rowid FROM ris_orders "
                        "WHERE updated_at < ?1 LIMIT ?2)",
                        cutoff);
}

Result<int64_t> SqliteRisTables::PurgeRisReportsBefore(TimePoint cutoff) {
  return PurgeInBatches(writer_, "index purge ris reports",
                        "DELETE FROM ris_reports WHERE id IN (SELECT id FROM ris_reports WHERE "
                        "received_at < ?1 LIMIT ?2)",
                        cutoff);
}

Status SqliteRisTables::PutRisOrder(const RisOrderRecord& o) {
  return writer_.Write("index put ris order", [&](SqliteConnection& c) -> Status {
    ASSIGN_OR_RETURN(auto s,
                     c.Prepare(std::string("INSERT OR REPLACE INTO ris_orders (") + kOrderColumns +
                               ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"));
    s.Bind(1, o.accession)
        .Bind(2, o.placer_order)
        .Bind(3, o.filler_order)
        .Bind(4, o.patient_key)
        .Bind(5, o.study_uid)
        .Bind(6, o.order_control)
        .Bind(7, o.order_status)
        .Bind(8, o.priority)
        .Bind(9, ToUnixMillis(o.updated_at));
    return s.Run();
  });
}

Result<std::optional<RisOrderRecord>> SqliteRisTables::GetRisOrder(const std::string& accession) {
  ASSIGN_OR_RETURN(auto lease, readers_.Acquire());
  ASSIGN_OR_RETURN(auto s, (*lease).Prepare(std::string("SELECT ") + kOrderColumns +
                                            " FROM ris_orders WHERE accession = ?1"));
  s.Bind(1, accession);
  return ReadOptionalRow<RisOrderRecord>(s, ReadOrder, "index get ris order");
}

Result<PutOutcome> SqliteRisTables::PutRisReport(const RisReportRecord& r) {
  PutOutcome outcome = PutOutcome::kInserted;
  Status written = writer_.Write("index put ris report", [&](SqliteConnection& c) -> Status {
    ASSIGN_OR_RETURN(
        auto s, c.Prepare("INSERT INTO ris_reports (sending_application, control_id, obr_index, "
                          "accession, study_uid, result_status, observed_at, report_text, codes, "
                          "received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) "
                          "ON CONFLICT (sending_application, control_id, obr_index) DO NOTHING"));
    s.Bind(1, r.sending_application)
        .Bind(2, r.control_id)
        .Bind(3, int64_t{r.obr_index})
        .Bind(4, r.accession)
        .Bind(5, r.study_uid)
        .Bind(6, r.result_status)
        .Bind(7, r.observed_at)
        .Bind(8, r.text)
        .Bind(9, r.codes_json.empty() ? std::string("[]") : r.codes_json)
        .Bind(10, ToUnixMillis(r.received_at));
    RETURN_IF_ERROR(s.Run());
    outcome = c.Changes() > 0 ? PutOutcome::kInserted : PutOutcome::kDuplicate;
    return Status::Ok();
  });
  if (!written.ok()) return written;
  return outcome;
}

Result<std::vector<RisReportRecord>> SqliteRisTables::ListRisReports(const std::string& accession) {
  ASSIGN_OR_RETURN(auto lease, readers_.Acquire());
  ASSIGN_OR_RETURN(auto s, (*lease).Prepare(std::string("SELECT ") + kReportColumns +
                                            " FROM ris_reports WHERE accession = ?1 "
                                            "ORDER BY received_at, id"));
  s.Bind(1, accession);
  return CollectRows<RisReportRecord>(s, ReadReport, "index list ris reports");
}

Result<std::vector<StudyUid>> SqliteRisTables::StudiesWithAccession(const std::string& accession) {
  if (accession.empty()) return std::vector<StudyUid>();
  ASSIGN_OR_RETURN(auto lease, readers_.Acquire());
  ASSIGN_OR_RETURN(auto s, (*lease).Prepare("SELECT study_uid FROM instances WHERE "
                                            "accession_number = ?1 GROUP BY study_uid "
                                            "ORDER BY max(received_at) DESC, study_uid"));
  s.Bind(1, accession);
  return CollectRows<StudyUid>(
      s, [](const SqliteStatement& row) { return StudyUid(row.Text(0)); },
      "index studies with accession");
}

}  // namespace conduit
