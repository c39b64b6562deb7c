// AdminServer: the HTTP front end for operators — JSON admin API and Prometheus /metrics.
//   GET  /api/health              liveness and readiness: node, version, listener state
//   GET  /api/studies             ?limit=&offset= ; no patient names or IDs
//   GET  /api/studies/{uid}       one study with its jobs
//   GET  /api/jobs                ?state=&limit= ; GET /api/jobs/{id} with results, deliveries
//   POST /api/jobs/{id}/retry     replays a failed or dead-lettered job
//   GET  /api/audit               ?limit=&offset=
//   GET  /api/ris/outbox          HL7 messages to the RIS, newest first: ?state=pending|sent|
//                                 failed&limit= ; no message text, no patient data
//   GET  /api/tools               the tool registry; ?include_removed=true for its history
//   GET  /api/tools/{name}        latest version, or ?version=V; with its manifest
//   GET  /api/tools/{name}/dpia   its pre-filled DPIA (Markdown) under the running policy and
//                                 config; ?version=V, ?organisation=
//   POST /api/tools               body: a tool manifest (YAML); 201 added, 200 already there
//   DELETE /api/tools/{name}/{version}  dates the version removed (kept as history)
//   POST /api/dpia                body: a tool manifest (YAML); its DPIA, registering nothing
//   GET  /metrics                 Prometheus text format
//   /dicom-web/...                DICOMweb, when AdminContext::dicomweb is set (404 otherwise):
//                                 POST to STOW-RS (http/dicomweb_stow.h), GET and HEAD to
//                                 WADO-RS/QIDO-RS (http/dicomweb_read.h), other methods 405
//   /dicom-web/workitems/...      UPS-RS worklists (http/ups_rs.h), when AdminContext::ups_rs
//                                 is set (404 otherwise)
// Authentication: when AdminContext::api_tokens is set (http.api_token_file), every request
// to /api/*, /metrics and the DICOMweb server on the original studies needs
// "Authorization: Bearer <API token>", except GET /api/health (liveness); others get 401 with
// a challenge and are reported through AuthRefusals ("http_auth"). Per-job DICOMweb endpoints
// (/dicom-web/jobs/...) and UPS-RS keep their own tokens, which open nothing else. Start()
// refuses a non-loopback http.bind without API tokens.
// Hostile input (bad numbers, huge bodies, unknown paths) gets a 4xx with a JSON error. Admin
// request bodies are limited to 1 MiB (413); STOW-RS bodies to http.max_stow_bytes, streamed.
// Cross-origin POST/DELETE with an Origin header is refused on admin routes (CSRF); DICOMweb
// sends no CORS headers (see dicomweb_stow.h).
// Thread safety: Start/Stop from one thread; requests are served by a fixed pool.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/clock.h"
#include "core/config.h"
#include "core/metrics.h"
#include "core/status.h"
#include "http/api_tokens.h"
#include "http/dicomweb_context.h"
#include "http/ups_rs.h"
#include "store/index.h"

namespace conduit {

struct AdminContext {
  const Config& config;
  Index& index;
  Metrics& metrics;
  const Clock& clock;
  // Called before /metrics renders, to refresh gauges (queue depths, job states).
  std::function<void()> refresh_gauges;
  // Extra health facts, e.g. {"dicom_listener":"up"}; merged into /api/health.
  std::function<std::map<std::string, std::string>()> health_facts;
  // What /dicom-web serves from; null: DICOMweb is not served (404). Outlives the server.
  DicomwebContext* dicomweb = nullptr;
  // What /dicom-web/workitems (UPS-RS, http/ups_rs.h) serves from; null: 404. Outlives the
  // server.
  UpsRsContext* ups_rs = nullptr;
  // The API tokens (http.api_token_file); null: the admin API and /dicom-web/studies are open,
  // which Start() allows only on a loopback http.bind. Outlives the server.
  const ApiTokens* api_tokens = nullptr;
  // Reports requests refused for their bearer token (counted, logged and audited with a
  // throttle); share one among the contexts of a port.
  std::shared_ptr<AuthRefusals> auth_refusals = std::make_shared<AuthRefusals>();
};

class AdminServer {
 public:
  virtual ~AdminServer() = default;
  // Binds http.bind:http.port (0 picks a free port) and starts serving.
  // Errors: kUnavailable if the port cannot be bound; kFailedPrecondition if http.bind is not
  // a loopback address and there are no API tokens, or http.api_token_file is set but
  // api_tokens is not.
  virtual Status Start() = 0;
  virtual void Stop() = 0;
  virtual int port() const = 0;
};

std::unique_ptr<AdminServer> MakeAdminServer(AdminContext context);

}  // namespace conduit
