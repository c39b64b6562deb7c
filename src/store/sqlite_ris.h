// The RIS (HL7 v2) tables of the embedded index: hl7_outbox, ris_orders, ris_reports (schema
// in sqlite_schema_v8_ris.inc). SqliteIndex forwards its "RIS (HL7 v2)" methods here; the
// contracts are those of Index. Internal to store.
// Thread safety: all methods may be called concurrently (writes go through the writer).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/index.h"
#include "store/sqlite_db.h"
#include "store/sqlite_writer.h"

namespace conduit {

class SqliteRisTables {
 public:
  SqliteRisTables(SqliteWriter& writer, SqliteReaderPool& readers)
      : writer_(writer), readers_(readers) {}

  Result<PutOutcome> EnqueueHl7(const Hl7OutboxRecord& message);
  Result<std::vector<Hl7OutboxRecord>> SendableHl7(const std::string& destination, TimePoint now,
                                                   int limit);
  Status UpdateHl7(const Hl7OutboxRecord& message);
  Result<std::optional<TimePoint>> NextHl7AttemptAt(const std::string& destination);
  Result<std::vector<Hl7OutboxRecord>> ListHl7(const std::string& destination,
                                               std::optional<Hl7OutboxState> state, int limit);
  Result<int64_t> CountHl7(const std::string& destination, Hl7OutboxState state);
  Result<std::vector<Hl7OutboxRecord>> RecentHl7(const std::string& destination,
                                                 std::optional<Hl7OutboxState> state, int limit);
  Result<int64_t> PurgeHl7Before(TimePoint cutoff);
  Result<int64_t> PurgeRisOrdersBefore(TimePoint cutoff);
  Result<int64_t> PurgeRisReportsBefore(TimePoint cutoff);
  Status PutRisOrder(const RisOrderRecord& order);
  Result<std::optional<RisOrderRecord>> GetRisOrder(const std::string& accession);
  Result<PutOutcome> PutRisReport(const RisReportRecord& report);
  Result<std::vector<RisReportRecord>> ListRisReports(const std::string& accession);
  Result<std::vector<StudyUid>> StudiesWithAccession(const std::string& accession);

 private:
  Result<std::vector<Hl7OutboxRecord>> ListOutbox(const std::string& destination,
                                                  std::optional<Hl7OutboxState> state, int limit,
                                                  bool newest_first, std::string_view what);

  SqliteWriter& writer_;
  SqliteReaderPool& readers_;
};

}  // namespace conduit
