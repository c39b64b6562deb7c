// The UPS worklist tables of the SQLite index (workitems, ups_subscriptions): the bodies of
// SqliteIndex's "UPS worklist" methods, as documented in index.h. Writes go through the
// index's single writer, reads through its read connections. Internal to store.
// Thread safety: all methods may be called concurrently.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "store/records.h"
#include "store/sqlite_db.h"
#include "store/sqlite_writer.h"

namespace conduit {

class SqliteWorkitems {
 public:
  // Appends an audit row inside the current write transaction (SqliteIndex's own, which
  // stamps the policy hash).
  using AuditFn = std::function<Status(SqliteConnection&, const AuditEvent&)>;

  // `writer` and `readers` must outlive this object.
  SqliteWorkitems(SqliteWriter& writer, SqliteReaderPool& readers, AuditFn audit)
      : writer_(writer), readers_(readers), audit_(std::move(audit)) {}

  Status PutWorkitem(const WorkitemRecord& workitem, const AuditEvent& audit);
  Status UpdateWorkitem(const WorkitemRecord& workitem, UpsState expected, const AuditEvent& audit);
  Result<std::optional<WorkitemRecord>> GetWorkitem(const std::string& uid);
  Result<std::vector<WorkitemRecord>> ListWorkitems(const std::string& tool,
                                                    std::optional<UpsState> state, int limit,
                                                    int offset);
  Result<std::vector<WorkitemRecord>> WorkitemsOfJob(JobId job);
  Status PutSubscription(const UpsSubscription& subscription, const AuditEvent& audit);
  Status DeleteSubscription(const std::string& subscriber_ae, const std::string& tool,
                            const std::string& workitem_uid, const AuditEvent& audit);
  Result<std::vector<UpsSubscription>> ListSubscriptions(const std::string& tool,
                                                         const std::string& workitem_uid);
  Result<std::vector<UpsSubscription>> SubscriptionsOf(const std::string& subscriber_ae);
  Result<std::vector<WorkitemRecord>> OpenWorkitemsOfEndedJobs(const std::string& tool, int limit);

 private:
  SqliteWriter& writer_;
  SqliteReaderPool& readers_;
  const AuditFn audit_;
};

}  // namespace conduit
