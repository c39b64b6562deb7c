// ClientErrors: how the HTTP port reports the requests it answers with a client error (4xx)
// other than a credential refusal (AuthRefusals reports those): a probe of unknown paths, a
// malformed query or body, a wrong method, an oversized request. The first with its key (peer,
// method, route pattern, status) in each minute gets a warning log line and an
// `http_client_error` audit entry, which say how many with that key went unreported before
// them; conduit_http_requests_total{code} counts them all. Neither holds the request path or
// query (they may carry UIDs). Thread safety: Report may be called concurrently.
#pragma once

#include <string>

#include "core/clock.h"
#include "core/refusal_throttle.h"
#include "store/index.h"

namespace conduit {

class ClientErrors {
 public:
  ClientErrors();  // a one-minute window over at most 4096 keys

  // Whether a response with `status` is one this reporter is for.
  static bool Covers(int status);

  // Logs and audits (into `audit`) the response when its key is due a report; otherwise only
  // counts it towards the next report. Statuses Covers refuses are ignored. An empty
  // `remote_addr` (a request too malformed to parse) is reported as peer "unknown".
  void Report(const std::string& remote_addr, const std::string& method, const std::string& route,
              int status, Index& audit, TimePoint now);

 private:
  RefusalThrottle throttle_;
};

}  // namespace conduit
