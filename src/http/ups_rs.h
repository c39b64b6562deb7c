// UPS-RS (PS3.18 §11) as profiled by IHE AI Workflow for Imaging: the worklists of pull-model
// tools, served under /dicom-web/workitems on the HTTP port. Conduit is its own Task
// Requester, so outside requesters cannot create workitems (RAD-80 is refused with 403).
//
//   GET    /workitems?{match}&includefield=&limit=&offset=        RAD-81 Search
//   GET    /workitems/{uid}                                        RAD-83 Retrieve
//   PUT    /workitems/{uid}/state                                  RAD-82 claim / RAD-85 complete,
//                                                                  cancel (body: state +
//                                                                  Transaction UID)
//   POST   /workitems/{uid}?{transaction-uid}                      RAD-84 Update
//   POST   /workitems/{uid}/cancelrequest                          RAD-88 Request Cancellation
//   POST   /workitems/{uid}/subscribers/{ae}?deletionlock=true     RAD-86 Subscribe (workitem)
//   POST   /workitems/1.2.840.10008.5.1.4.34.5/subscribers/{ae}    RAD-86 Subscribe (worklist)
//   POST   /workitems/1.2.840.10008.5.1.4.34.5.1/subscribers/{ae}?{match}  (filtered worklist)
//   DELETE the three subscription resources                        RAD-86 Unsubscribe
//   POST   /workitems/1.2.840.10008.5.1.4.34.5/subscribers/{ae}/suspend    Suspend
//   POST   /workitems                                              RAD-80: 403
// Authentication: "Authorization: Bearer <token>". A worklist tool's token (WorklistTokens)
// gives that tool's worklist; the administrator token, when configured, reads every worklist
// (GET only). Refused tokens get 401 (reported through AuthRefusals as "ups_refused"). Status codes
// and Warning headers follow PS3.18 §11; docs/conformance.md (UPS-RS section) lists them all.
// Thread safety: reentrant; called from the HTTP worker threads.
#pragma once

#include <httplib.h>

#include <memory>
#include <string>
#include <string_view>

#include "adapters/ups_worklist.h"
#include "core/address_range.h"
#include "core/clock.h"
#include "core/metrics.h"
#include "http/auth_refusals.h"
#include "http/worklist_tokens.h"
#include "store/index.h"

namespace conduit {

// What the UPS-RS front end works with. Every member outlives the HTTP server.
struct UpsRsContext {
  Worklist& worklist;
  const WorklistTokens& tokens;
  Index& index;  // the audit trail of refusals
  const Clock& clock;
  Metrics& metrics;
  // The administrator's bearer token (read-only access to every worklist); empty: none.
  std::string admin_token;
  // Reports requests refused for their bearer token (counted, logged and audited with a
  // throttle); share one among the contexts of a port.
  std::shared_ptr<AuthRefusals> auth_refusals = std::make_shared<AuthRefusals>();
  // http.trusted_proxies: whose X-Forwarded-For names the client (http/client_address.h).
  std::vector<AddressRange> trusted_proxies = {};
};

// True if `path` is /dicom-web/workitems or below it.
bool IsUpsRsPath(std::string_view path);

// Describes conduit_ups_rs_requests_total{transaction, code}.
void DescribeUpsRsMetrics(Metrics& metrics);

// Serves one request under /dicom-web/workitems; `reader` is null for methods without a body
// (GET, HEAD, OPTIONS). Writes status, headers and body; never throws on bad input. A body
// over 1 MiB gets 413 and the connection is closed.
void ServeUpsRs(UpsRsContext& context, const httplib::Request& req, httplib::Response& res,
                const httplib::ContentReader* reader);

// The Worklist's FilterMatcher: whether the workitem `dataset` (DICOM JSON object text)
// matches `filter` (the match parameters of a filtered global subscription, a query string).
// An unparsable filter or dataset matches nothing.
bool UpsFilterMatches(const std::string& filter, const std::string& dataset);

}  // namespace conduit
