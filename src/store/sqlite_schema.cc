#include "store/sqlite_schema.h"

#include <spdlog/spdlog.h>

#include <array>
#include <string>

namespace conduit {
namespace {

// Migration i brings the schema from version i to i + 1. Never edit a released migration:
// append a new one.
constexpr std::array<const char*, 13> kMigrations = {
    R"sql(
CREATE TABLE instances (
  sop_instance_uid TEXT PRIMARY KEY NOT NULL,
  study_uid TEXT NOT NULL,
  series_uid TEXT NOT NULL,
  sop_class_uid TEXT NOT NULL,
  transfer_syntax_uid TEXT NOT NULL,
  spool_key TEXT NOT NULL,
  size_bytes INTEGER NOT NULL,
  calling_ae TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  patient_id TEXT NOT NULL,
  patient_name TEXT NOT NULL,
  accession_number TEXT NOT NULL,
  study_date TEXT NOT NULL,
  study_description TEXT NOT NULL,
  modality TEXT NOT NULL,
  series_description TEXT NOT NULL,
  body_part TEXT NOT NULL,
  series_number INTEGER NOT NULL,
  instance_number INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX instances_by_study ON instances (study_uid, series_number, instance_number);
CREATE INDEX instances_by_received ON instances (received_at);

CREATE TABLE units (
  route TEXT NOT NULL,
  study_uid TEXT NOT NULL,
  series_uid TEXT NOT NULL,
  state TEXT NOT NULL,
  last_instance_at INTEGER NOT NULL,
  generation INTEGER NOT NULL,
  PRIMARY KEY (route, study_uid, series_uid)
);
CREATE INDEX units_by_study ON units (study_uid);
CREATE INDEX units_by_state ON units (state);

CREATE TABLE mpps (
  mpps_uid TEXT PRIMARY KEY NOT NULL,
  study_uid TEXT NOT NULL,
  status TEXT NOT NULL,
  instances TEXT NOT NULL
);
CREATE INDEX mpps_by_study ON mpps (study_uid);

CREATE TABLE jobs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  study_uid TEXT NOT NULL,
  route TEXT NOT NULL,
  tool TEXT NOT NULL,
  destinations TEXT NOT NULL,
  series TEXT NOT NULL,
  generation INTEGER NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  next_attempt_at INTEGER NOT NULL,
  last_error TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  dispatched_at INTEGER NOT NULL,
  last_result_at INTEGER NOT NULL,
  UNIQUE (study_uid, route, series, generation)
);
CREATE INDEX jobs_by_state ON jobs (state, next_attempt_at);
CREATE INDEX jobs_by_tool ON jobs (tool, study_uid);

CREATE TABLE results (
  job_id INTEGER NOT NULL REFERENCES jobs (id),
  sop_instance_uid TEXT NOT NULL,
  sop_class_uid TEXT NOT NULL,
  series_uid TEXT NOT NULL,
  spool_key TEXT NOT NULL,
  size_bytes INTEGER NOT NULL,
  received_at INTEGER NOT NULL,
  PRIMARY KEY (job_id, sop_instance_uid)
);

CREATE TABLE deliveries (
  job_id INTEGER NOT NULL REFERENCES jobs (id),
  sop_instance_uid TEXT NOT NULL,
  destination TEXT NOT NULL,
  delivered_at INTEGER NOT NULL,
  PRIMARY KEY (job_id, sop_instance_uid, destination)
);

CREATE TABLE audit (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  action TEXT NOT NULL,
  outcome TEXT NOT NULL,
  actor TEXT NOT NULL,
  study_ref TEXT NOT NULL,
  job_id INTEGER NOT NULL,
  detail TEXT NOT NULL
);
CREATE INDEX audit_by_time ON audit (at);
)sql",
    // 1 -> 2: the pseudonym crosswalk (re-identification inside the trust) and the hash of
    // the policy in force on each audit row ('' on rows written before it was recorded).
    R"sql(
CREATE TABLE crosswalk (
  pseudonym TEXT PRIMARY KEY NOT NULL,
  original TEXT NOT NULL,
  kind TEXT NOT NULL,
  study_uid TEXT NOT NULL,
  key_id TEXT NOT NULL,
  created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX crosswalk_by_created ON crosswalk (created_at);

ALTER TABLE audit ADD COLUMN policy_hash TEXT NOT NULL DEFAULT '';
)sql",
    // 2 -> 3: retention finds a study's jobs, and whether another row still refers to a
    // result's spool file, without scanning.
    R"sql(
CREATE INDEX jobs_by_study ON jobs (study_uid);
CREATE INDEX results_by_spool_key ON results (spool_key);
)sql",
    // 3 -> 4: the registry of AI tools, one row per (name, version), never overwritten.
    R"sql(
CREATE TABLE tool_registry (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  version TEXT NOT NULL,
  manifest_json TEXT NOT NULL,
  manifest_hash TEXT NOT NULL,
  added_at INTEGER NOT NULL,
  removed_at INTEGER,
  UNIQUE (name, version)
);
)sql",
    // 4 -> 5: every top-level text attribute of an instance (JSON object, keyword -> value),
    // so QIDO-RS matches and returns attributes without reading the spool.
    R"sql(
ALTER TABLE instances ADD COLUMN attributes TEXT NOT NULL DEFAULT '{}';
CREATE INDEX instances_by_series ON instances (series_uid);
)sql",
    // 5 -> 6: what tools found (IHE AI Results), extracted from validated results for the
    // evidence layer.
    R"sql(
CREATE TABLE findings (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id INTEGER NOT NULL,
  tool TEXT NOT NULL,
  result_sop_uid TEXT NOT NULL,
  kind TEXT NOT NULL,
  concept_scheme TEXT NOT NULL,
  concept_value TEXT NOT NULL,
  concept_meaning TEXT NOT NULL,
  value_scheme TEXT NOT NULL,
  value_code TEXT NOT NULL,
  value_meaning TEXT NOT NULL,
  numeric_value REAL,
  units TEXT NOT NULL,
  tracking_id TEXT NOT NULL,
  referenced_sop_uid TEXT NOT NULL,
  recorded_at INTEGER NOT NULL
);
CREATE INDEX findings_by_job ON findings (job_id);
CREATE INDEX findings_by_tool ON findings (tool, recorded_at);
)sql",
// 6 -> 7, 7 -> 8 and 8 -> 9: each in its own file, kept beside the component that owns it.
#include "store/sqlite_schema_v7_worklist.inc"
    ,
#include "store/sqlite_schema_v8_ris.inc"
    ,
#include "store/sqlite_schema_v9_ris_retention.inc"
    ,
// 9 -> 10: quarantined results of each job.
#include "store/sqlite_schema_v10_quarantined_results.inc"
    ,
// 10 -> 11: shadow jobs.
#include "store/sqlite_schema_v11_shadow_jobs.inc"
    ,
// 11 -> 12: storage commitment requests awaiting their reports.
#include "store/sqlite_schema_v12_commitments.inc"
    ,
// 12 -> 13: the audit trail by study.
#include "store/sqlite_schema_v13_audit_by_study.inc"
    ,
};

Result<bool> TableExists(SqliteConnection& conn, const char* name) {
  ASSIGN_OR_RETURN(auto stmt,
                   conn.Prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1"));
  stmt.Bind(1, name);
  return stmt.Step();
}

Result<int> CurrentVersion(SqliteConnection& conn) {
  ASSIGN_OR_RETURN(bool has_version, TableExists(conn, "schema_version"));
  if (!has_version) {
    ASSIGN_OR_RETURN(auto any, conn.Prepare("SELECT count(*) FROM sqlite_master"));
    ASSIGN_OR_RETURN(bool row, any.Step());
    if (row && any.Int(0) > 0) {
      return InvalidArgument("holds tables but no schema_version: not a Conduit index");
    }
    return 0;
  }
  ASSIGN_OR_RETURN(auto stmt, conn.Prepare("SELECT max(version) FROM schema_version"));
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  return row ? static_cast<int>(stmt.Int(0)) : 0;
}

}  // namespace

int SqliteSchemaVersion() { return static_cast<int>(kMigrations.size()); }

Status MigrateSqliteSchema(SqliteConnection& conn) {
  // One migration per transaction; the version is read inside it, so two processes opening
  // the same file never apply a migration twice.
  for (;;) {
    RETURN_IF_ERROR(conn.Exec("BEGIN IMMEDIATE"));
    Result<int> version = CurrentVersion(conn);
    if (!version.ok() || *version >= SqliteSchemaVersion()) {
      (void)conn.Exec("ROLLBACK");
      if (!version.ok()) return version.status();
      if (*version > SqliteSchemaVersion()) {
        return InvalidArgument("schema version " + std::to_string(*version) +
                               " is newer than this build's " +
                               std::to_string(SqliteSchemaVersion()));
      }
      return Status::Ok();
    }
    const int next = *version + 1;
    Status st = conn.Exec(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY NOT NULL)");
    if (st.ok()) st = conn.Exec(kMigrations[*version]);
    if (st.ok()) {
      st = conn.Exec("INSERT INTO schema_version (version) VALUES (" + std::to_string(next) + ")");
    }
    if (st.ok()) st = conn.Exec("COMMIT");
    if (!st.ok()) {
      (void)conn.Exec("ROLLBACK");
      return st.WithContext("migration to schema version " + std::to_string(next));
    }
    spdlog::info("index: schema migrated to version {}", next);
  }
}

}  // namespace conduit
