// An audit row as the admin API (GET /api/audit) and the CLI (conduit audit) print it: at (ISO
// 8601, UTC), action, outcome, actor, study_ref, job_id (null for none), detail (the JSON
// object it holds; its text if that is not JSON) and policy_hash.
#pragma once

#include <nlohmann/json.hpp>

#include "store/records.h"

namespace conduit {

nlohmann::json AuditEventJson(const AuditEvent& event);

}  // namespace conduit
