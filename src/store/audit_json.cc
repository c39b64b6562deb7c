#include "store/audit_json.h"

#include "core/iso_time.h"

namespace conduit {

nlohmann::json AuditEventJson(const AuditEvent& e) {
  using json = nlohmann::json;
  json detail = e.detail.empty() ? json(nullptr) : json::parse(e.detail, nullptr, false);
  if (detail.is_discarded()) detail = e.detail;
  const json at =
      ToUnixMillis(e.at) == 0 ? json(nullptr) : json(FormatIsoTime(e.at, IsoPrecision::kMillis));
  return json{{"at", at},
              {"action", e.action},
              {"outcome", e.outcome},
              {"actor", e.actor},
              {"study_ref", e.study_ref},
              {"job_id", e.job_id.value > 0 ? json(e.job_id.value) : json(nullptr)},
              {"detail", detail},
              {"policy_hash", e.policy_hash}};
}

}  // namespace conduit
