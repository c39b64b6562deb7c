#include "http/client_errors.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <nlohmann/json.hpp>

namespace conduit {

ClientErrors::ClientErrors() : throttle_(std::chrono::minutes(1), 4096) {}

bool ClientErrors::Covers(int status) {
  return status >= 400 && status < 500 && status != 401 && status != 403;
}

void ClientErrors::Report(const std::string& remote_addr, const std::string& method,
                          const std::string& route, int status, Index& audit, TimePoint now) {
  if (!Covers(status)) return;
  // httplib learns the peer's address only once the request line and headers parse.
  const std::string peer = remote_addr.empty() ? "unknown" : remote_addr;
  const std::optional<int64_t> unreported =
      throttle_.Admit(peer + ' ' + method + ' ' + route + ' ' + std::to_string(status), now);
  if (!unreported) return;
  spdlog::warn("event=http_client_error status={} method={} route={} peer={} unreported_before={}",
               status, method, route, peer, *unreported);
  nlohmann::json detail{{"status", status}, {"method", method}, {"route", route}, {"peer", peer}};
  if (*unreported > 0) detail["unreported_before"] = *unreported;
  AuditEvent event;
  event.at = now;
  event.action = "http_client_error";
  event.outcome = "failure";
  event.actor = peer;
  event.detail = detail.dump();
  if (Status st = audit.AppendAudit(event); !st.ok()) {
    spdlog::error("event=audit_failed action=http_client_error error=\"{}\"",
                  StatusCodeName(st.code()));
  }
}

}  // namespace conduit
