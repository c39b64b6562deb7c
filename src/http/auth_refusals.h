// AuthRefusals: how every guarded HTTP route reports a request refused for its credentials
// (no bearer token, or one that does not open the resource). Each refusal is counted in
// conduit_http_auth_refused_total{guard, reason}; the first with its key (guard, peer, method,
// route pattern, reason) in each minute also gets a warning log line and an audit entry, which
// say how many with that key went unreported before them, so a client hammering the port can
// flood neither. Neither ever holds the token or the request path (it may carry UIDs).
// Thread safety: Report may be called concurrently.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "core/clock.h"
#include "core/ids.h"
#include "core/metrics.h"
#include "core/refusal_throttle.h"
#include "store/index.h"

namespace conduit {

enum class AuthRefusalKind {
  kMissing,    // no bearer token (401)
  kInvalid,    // a token that opens nothing here (401)
  kForbidden,  // a token that does not allow this request (403)
};

struct AuthRefusal {
  std::string action;  // the audit action: "http_auth", "result_refused", "ups_refused", ...
  std::string actor;   // the audit actor
  std::string guard;   // which credential was wanted: "api", "job", "worklist"
  std::string peer;    // the client's address (http/client_address.h)
  std::string via;     // the trusted reverse proxy it came through; empty: none
  std::string method;  // the method label (GET, POST, ..., OTHER)
  std::string route;   // the route pattern, never the path
  std::string reason;  // a fixed text, e.g. "no bearer token"
  AuthRefusalKind kind = AuthRefusalKind::kMissing;  // the metric's reason label
  std::optional<JobId> job;
  nlohmann::json detail = nlohmann::json::object();  // more for the audit entry
};

class AuthRefusals {
 public:
  AuthRefusals();  // a one-minute window over at most 4096 keys

  static void Describe(Metrics& metrics);

  // Counts `refusal`; logs and audits it (into `audit`) when its key is due a report.
  void Report(const AuthRefusal& refusal, Index& audit, Metrics& metrics, TimePoint now);

 private:
  RefusalThrottle throttle_;
};

}  // namespace conduit
