#include "http/auth_refusals.h"

#include <spdlog/spdlog.h>

#include <chrono>

namespace conduit {
namespace {

const char* KindLabel(AuthRefusalKind kind) {
  switch (kind) {
    case AuthRefusalKind::kMissing:
      return "missing";
    case AuthRefusalKind::kInvalid:
      return "invalid";
    case AuthRefusalKind::kForbidden:
      return "forbidden";
  }
  return "invalid";
}

}  // namespace

AuthRefusals::AuthRefusals() : throttle_(std::chrono::minutes(1), 4096) {}

void AuthRefusals::Describe(Metrics& metrics) {
  metrics.Describe("conduit_http_auth_refused_total", "counter",
                   "HTTP requests refused for a missing or wrong bearer token, by the credential "
                   "wanted (api, job, worklist) and reason (missing, invalid, forbidden)");
}

void AuthRefusals::Report(const AuthRefusal& refusal, Index& audit, Metrics& metrics,
                          TimePoint now) {
  metrics.Add("conduit_http_auth_refused_total", 1,
              "guard=\"" + refusal.guard + "\",reason=\"" + KindLabel(refusal.kind) + "\"");
  const std::optional<int64_t> unreported =
      throttle_.Admit(refusal.guard + ' ' + refusal.peer + ' ' + refusal.method + ' ' +
                          refusal.route + ' ' + refusal.reason,
                      now);
  if (!unreported) return;
  spdlog::warn(
      "event=http_auth_refused guard={} method={} route={} peer={} reason=\"{}\" "
      "unreported_before={}",
      refusal.guard, refusal.method, refusal.route, refusal.peer, refusal.reason, *unreported);
  AuditEvent event;
  event.at = now;
  event.action = refusal.action;
  event.outcome = "failure";
  event.actor = refusal.actor;
  if (refusal.job) event.job_id = *refusal.job;
  nlohmann::json detail = refusal.detail.is_object() ? refusal.detail : nlohmann::json::object();
  detail["method"] = refusal.method;
  detail["route"] = refusal.route;
  detail["peer"] = refusal.peer;
  if (!refusal.via.empty()) detail["via"] = refusal.via;
  detail["reason"] = refusal.reason;
  if (*unreported > 0) detail["unreported_before"] = *unreported;
  event.detail = detail.dump();
  if (Status st = audit.AppendAudit(event); !st.ok()) {
    spdlog::error("event=audit_failed action={} error=\"{}\"", refusal.action,
                  StatusCodeName(st.code()));
  }
}

}  // namespace conduit
