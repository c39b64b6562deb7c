#include "http/admin_server.h"

#include <httplib.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "core/dicom_uid.h"
#include "core/iso_time.h"
#include "evidence/tool_dpia.h"
#include "evidence/tool_manifest.h"
#include "evidence/tool_registry.h"
#include "http/auth_refusals.h"
#include "http/client_address.h"
#include "http/client_errors.h"
#include "http/connection_limits.h"
#include "http/dicomweb_read.h"
#include "http/dicomweb_request.h"
#include "http/dicomweb_stow.h"
#include "http/request_body.h"
#include "http/route_labels.h"
#include "pipeline/job_engine.h"
#include "store/audit_json.h"
#include "store/records.h"

#ifndef CONDUIT_VERSION
#define CONDUIT_VERSION "unknown"
#endif

namespace conduit {
namespace {

using nlohmann::json;
using SteadyTime = std::chrono::steady_clock::time_point;

// Limits of the admin API: its requests are small; anything bigger is hostile or a mistake.
constexpr size_t kMaxPayloadBytes = 1 << 20;
// A worker blocked on a silent client notices Stop() only when these expire, so they bound
// how long Stop() takes. They apply to each read or write, not to a whole request.
constexpr auto kReadTimeout = std::chrono::seconds(1);
constexpr auto kWriteTimeout = std::chrono::seconds(1);
constexpr time_t kKeepAliveTimeoutSeconds = 1;
constexpr size_t kKeepAliveMaxCount = 100;
constexpr int kDefaultLimit = 100;
constexpr int kMaxLimit = 1000;
constexpr int64_t kMaxOffset = 1'000'000'000;
// How many recent jobs /api/studies/{uid} looks through for the study's jobs.
constexpr int kStudyJobsScan = 10'000;
constexpr size_t kMaxEchoedInput = 64;

// A response: status, media type and body.
struct Payload {
  std::string content_type;
  std::string body;
  int status = 200;
};

// Invalid UTF-8 (e.g. a Latin-1 study description) is replaced, never thrown.
std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

Payload Json(const json& j) { return {"application/json", Dump(j)}; }

// Outside input echoed in an error message is clipped so an 8 KB parameter stays out.
std::string Echo(std::string_view input) {
  if (input.size() <= kMaxEchoedInput) return std::string(input);
  return std::string(input.substr(0, kMaxEchoedInput)) + "...";
}

// The one place Status codes become HTTP statuses.
int HttpStatusOf(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kInvalidArgument:
      return 400;
    case StatusCode::kPermissionDenied:
      return 403;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kAlreadyExists:
    case StatusCode::kFailedPrecondition:
      return 409;
    case StatusCode::kUnavailable:
    case StatusCode::kResourceExhausted:
      return 503;
    case StatusCode::kDeadlineExceeded:
      return 504;
    case StatusCode::kDataLoss:
    case StatusCode::kInternal:
      return 500;
  }
  return 500;
}

std::string ReasonOf(int status) {
  switch (status) {
    case 400:
      return "bad request";
    case 403:
      return "forbidden";
    case 404:
      return "not found";
    case 405:
      return "method not allowed";
    case 408:
      return "request timeout";
    case 413:
      return "payload too large";
    case 414:
      return "uri too long";
    case 415:
      return "unsupported media type";
    case 416:
      return "range not satisfiable";
    case 431:
      return "request header fields too large";
    case 500:
      return "internal error";
    case 503:
      return "unavailable";
  }
  return "http status " + std::to_string(status);
}

void SetError(httplib::Response& res, int status, const std::string& message) {
  res.status = status;
  res.set_content(Dump(json{{"error", message}}), "application/json");
}

// ISO 8601 UTC with milliseconds, e.g. "2023-11-14T22:13:20.000Z"; null for an unset time.
json IsoTime(TimePoint t) {
  if (t.time_since_epoch().count() == 0) return nullptr;
  return FormatIsoTime(t, IsoPrecision::kMillis);
}

json ModalitiesJson(const std::string& modalities) {
  json out = json::array();
  size_t start = 0;
  while (start <= modalities.size()) {
    size_t comma = modalities.find(',', start);
    if (comma == std::string::npos) comma = modalities.size();
    std::string m = modalities.substr(start, comma - start);
    if (!m.empty()) out.push_back(m);
    start = comma + 1;
  }
  return out;
}

// A study without patient names, IDs or accession numbers: StudySummary holds none.
json StudyJson(const StudySummary& s) {
  return json{{"study_uid", s.study_uid.str()},
              {"study_ref", StudyRef(s.study_uid)},
              {"study_date", s.study_date},
              {"description", s.study_description},
              {"modalities", ModalitiesJson(s.modalities)},
              {"series_count", s.series_count},
              {"instance_count", s.instance_count},
              {"size_bytes", s.size_bytes},
              {"first_received_at", IsoTime(s.first_received_at)},
              {"last_received_at", IsoTime(s.last_received_at)}};
}

json JobJson(const JobRecord& j) {
  json series = json::array();
  for (const SeriesUid& s : j.series) series.push_back(s.str());
  return json{{"id", j.id.value},
              {"study_ref", StudyRef(j.study_uid)},
              {"study_uid", j.study_uid.str()},
              {"route", j.route},
              {"tool", j.tool},
              {"destinations", j.destinations},
              {"shadow", j.shadow},
              {"series", series},
              {"generation", j.generation},
              {"state", JobStateName(j.state)},
              {"attempts", j.attempts},
              {"next_attempt_at", IsoTime(j.next_attempt_at)},
              {"last_error", j.last_error},
              {"created_at", IsoTime(j.created_at)},
              {"updated_at", IsoTime(j.updated_at)},
              {"dispatched_at", IsoTime(j.dispatched_at)},
              {"last_result_at", IsoTime(j.last_result_at)}};
}

// An outbox message for operators: what, where, how it went; never the message text, nor the
// patient key. last_error names codes and control ids only (RisOutbox, AckStatus).
json OutboxJson(const Hl7OutboxRecord& m) {
  return json{{"id", m.id},
              {"destination", m.destination},
              {"message_type", m.message_type},
              {"control_id", m.control_id},
              {"job_id", m.job_id.value > 0 ? json(m.job_id.value) : json(nullptr)},
              {"state", Hl7OutboxStateName(m.state)},
              {"attempts", m.attempts},
              {"next_attempt_at",
               m.state == Hl7OutboxState::kPending ? IsoTime(m.next_attempt_at) : json(nullptr)},
              {"last_error", m.last_error},
              {"created_at", IsoTime(m.created_at)},
              {"sent_at", m.sent_at ? IsoTime(*m.sent_at) : json(nullptr)}};
}

// Parses a whole decimal integer in [min, max]; anything else is kInvalidArgument.
Result<int64_t> ParseBoundedInt(std::string_view what, std::string_view text, int64_t min,
                                int64_t max) {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value < min ||
      value > max) {
    return InvalidArgument(std::string(what) + ": '" + Echo(text) + "' is not an integer in [" +
                           std::to_string(min) + ", " + std::to_string(max) + "]");
  }
  return value;
}

Result<int64_t> QueryInt(const httplib::Request& req, const char* key, int64_t fallback,
                         int64_t min, int64_t max) {
  if (!req.has_param(key)) return fallback;
  return ParseBoundedInt(key, req.get_param_value(key), min, max);
}

Result<JobId> ParseJobId(std::string_view text) {
  ASSIGN_OR_RETURN(int64_t id,
                   ParseBoundedInt("job id", text, 1, std::numeric_limits<int64_t>::max()));
  return JobId{id};
}

// DICOM UIDs: 1..64 characters of digits and dots.
Result<StudyUid> ParseStudyUid(std::string_view text) {
  bool ok = !text.empty() && text.size() <= 64;
  for (char c : text) ok = ok && ((c >= '0' && c <= '9') || c == '.');
  if (!ok) return InvalidArgument("study uid: not a DICOM UID");
  return StudyUid(std::string(text));
}

// The fixed pool that serves connections: httplib's ThreadPool, with named threads, and the
// gauges that say whether it is big enough: connections accepted but waiting for a worker,
// and workers serving one.
class WorkerPool final : public httplib::TaskQueue {
 public:
  WorkerPool(int threads, Metrics& metrics) : metrics_(metrics) {
    metrics_.Describe("conduit_http_workers", "gauge", "HTTP worker threads (http.threads)");
    metrics_.Describe("conduit_http_workers_busy", "gauge", "HTTP workers serving a connection");
    metrics_.Describe("conduit_http_connections_waiting", "gauge",
                      "HTTP connections accepted and waiting for a free worker");
    metrics_.Set("conduit_http_workers", threads);
    Publish();
    for (int i = 0; i < threads; ++i) {
      workers_.emplace_back([this] {
        pthread_setname_np(pthread_self(), "http-worker");
        Work();
      });
    }
  }
  ~WorkerPool() override { shutdown(); }

  void enqueue(std::function<void()> fn) override {
    {
      std::lock_guard lock(mu_);
      jobs_.push_back(std::move(fn));
      Publish();
    }
    cv_.notify_one();
  }

  // Runs what is queued, then joins the workers (httplib calls it when listen ends).
  void shutdown() override {
    {
      std::lock_guard lock(mu_);
      if (shutdown_) return;
      shutdown_ = true;
    }
    cv_.notify_all();
    for (std::jthread& w : workers_) {
      if (w.joinable()) w.join();
    }
  }

 private:
  void Work() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return shutdown_ || !jobs_.empty(); });
        if (jobs_.empty()) return;  // shut down and drained
        job = std::move(jobs_.front());
        jobs_.pop_front();
        ++busy_;
        Publish();
      }
      job();  // serves one connection; closes its socket
      std::lock_guard lock(mu_);
      --busy_;
      Publish();
    }
  }

  void Publish() {  // under mu_, except from the constructor
    metrics_.Set("conduit_http_workers_busy", busy_);
    metrics_.Set("conduit_http_connections_waiting", static_cast<double>(jobs_.size()));
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;  // accepted connections waiting for a worker
  int busy_ = 0;                            // guarded by mu_
  bool shutdown_ = false;
  Metrics& metrics_;
  std::vector<std::jthread> workers_;
};

constexpr std::string_view kDicomwebRoot = "/dicom-web";

bool IsDicomwebPath(std::string_view path) {
  return path == kDicomwebRoot ||
         (path.starts_with(kDicomwebRoot) && path[kDicomwebRoot.size()] == '/');
}

// What a request needs when API tokens are configured. kOwnToken: the per-job DICOMweb
// endpoints (job and worklist tokens) and UPS-RS (worklist tokens) check their own, which are
// never API tokens. Read as the DICOMweb handlers read paths (empty segments skipped), so that
// no path is exempt here yet served as an original study there.
enum class Guard { kOpen, kApiToken, kOwnToken };

Guard GuardOf(const httplib::Request& req) {
  if (IsDicomwebPath(req.path)) {
    if (IsUpsRsPath(req.path)) return Guard::kOwnToken;
    std::vector<std::string> parts;
    for (std::string& p : SplitPath(req.path)) {
      if (!p.empty()) parts.push_back(std::move(p));
    }
    if (parts.size() >= 2 && parts[0] == kDicomwebRoot.substr(1) && parts[1] == "jobs") {
      return Guard::kOwnToken;
    }
    return Guard::kApiToken;
  }
  // Liveness and readiness, for load balancers and orchestrators that present no token.
  if ((req.method == "GET" || req.method == "HEAD") && req.path == "/api/health") {
    return Guard::kOpen;
  }
  return Guard::kApiToken;
}

class HttpAdminServer final : public AdminServer {
 public:
  explicit HttpAdminServer(AdminContext context) : ctx_(std::move(context)) {
    ctx_.metrics.Describe("conduit_http_requests_total", "counter",
                          "HTTP requests served by the admin server, by method, route and code.");
    ctx_.metrics.Describe("conduit_http_request_duration_seconds", "histogram",
                          "Time to serve an admin HTTP request, by route.");
    AddRoute("GET", "/api/health", &HttpAdminServer::Health);
    AddRoute("GET", "/api/studies", &HttpAdminServer::Studies);
    AddRoute("GET", "/api/studies/{uid}", &HttpAdminServer::Study);
    AddRoute("GET", "/api/jobs", &HttpAdminServer::Jobs);
    AddRoute("GET", "/api/jobs/{id}", &HttpAdminServer::Job);
    AddRoute("POST", "/api/jobs/{id}/retry", &HttpAdminServer::Retry);
    AddRoute("GET", "/api/audit", &HttpAdminServer::Audit);
    AddRoute("GET", "/api/ris/outbox", &HttpAdminServer::RisOutbox);
    AddRoute("GET", "/api/tools", &HttpAdminServer::Tools);
    AddRoute("POST", "/api/tools", &HttpAdminServer::AddTool);
    AddRoute("GET", "/api/tools/{name}", &HttpAdminServer::Tool);
    AddRoute("GET", "/api/tools/{name}/dpia", &HttpAdminServer::ToolDpia);
    AddRoute("DELETE", "/api/tools/{name}/{version}", &HttpAdminServer::RemoveTool);
    AddRoute("POST", "/api/dpia", &HttpAdminServer::Dpia);
    AddRoute("GET", "/metrics", &HttpAdminServer::MetricsText);
    AuthRefusals::Describe(ctx_.metrics);
    if (ctx_.dicomweb != nullptr) DescribeStowMetrics(ctx_.metrics);
    if (ctx_.ups_rs != nullptr) DescribeUpsRsMetrics(ctx_.metrics);
  }

  ~HttpAdminServer() override { Stop(); }

  Status Start() override;
  void Stop() override;
  int port() const override { return port_.load(); }

 private:
  using Args = std::vector<std::string>;
  using Handler = Result<Payload> (HttpAdminServer::*)(const httplib::Request&, const Args&);
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<std::string> segments;
    Handler handler;
  };
  // What the logger needs to know about the request its thread is serving.
  struct Trace {
    SteadyTime start;
    std::string route;
  };

  void AddRoute(std::string method, std::string pattern, Handler handler) {
    std::vector<std::string> segments = SplitPath(pattern);
    routes_.push_back({std::move(method), std::move(pattern), std::move(segments), handler});
  }

  void Configure(httplib::Server& server);
  // http.request_header_timeout, and how a connection cut off by it is reported.
  ConnectionLimits ConnectionLimitsOf();
  // Entry points: requests without a body (GET, HEAD, OPTIONS) and with one (POST, PUT,
  // PATCH, DELETE: the handler reads it).
  void Serve(const httplib::Request& req, httplib::Response& res);
  void ServeWithBody(const httplib::Request& req, httplib::Response& res,
                     const httplib::ContentReader& reader);
  void ServeDicomweb(const httplib::Request& req, httplib::Response& res,
                     const httplib::ContentReader* reader);
  void Dispatch(const httplib::Request& req, httplib::Response& res);
  // True if `req` may go on; otherwise writes the 401, logs and audits the refusal.
  bool Authenticate(const httplib::Request& req, httplib::Response& res);
  // The route pattern of `path` for logs and audit (never the path: it may carry UIDs).
  std::string RouteLabelOf(const std::string& path) const;
  void Log(const httplib::Request& req, const httplib::Response& res);
  void SetTraceRoute(const std::string& route);

  Result<Payload> Health(const httplib::Request& req, const Args& args);
  Result<Payload> Studies(const httplib::Request& req, const Args& args);
  Result<Payload> Study(const httplib::Request& req, const Args& args);
  Result<Payload> Jobs(const httplib::Request& req, const Args& args);
  Result<Payload> Job(const httplib::Request& req, const Args& args);
  Result<Payload> Retry(const httplib::Request& req, const Args& args);
  Result<Payload> Audit(const httplib::Request& req, const Args& args);
  Result<Payload> RisOutbox(const httplib::Request& req, const Args& args);
  Result<Payload> Tools(const httplib::Request& req, const Args& args);
  Result<Payload> Tool(const httplib::Request& req, const Args& args);
  Result<Payload> ToolDpia(const httplib::Request& req, const Args& args);
  Result<Payload> AddTool(const httplib::Request& req, const Args& args);
  Result<Payload> Dpia(const httplib::Request& req, const Args& args);
  // The DPIA draft of `manifest` (?organisation= names the trust).
  Result<Payload> DpiaOf(const httplib::Request& req, const ToolManifest& manifest);
  Result<ToolRecord> RegisteredTool(const httplib::Request& req, const std::string& name_arg);
  Result<Payload> RemoveTool(const httplib::Request& req, const Args& args);
  Result<Payload> MetricsText(const httplib::Request& req, const Args& args);

  AdminContext ctx_;
  std::vector<Route> routes_;
  std::unique_ptr<httplib::Server> server_;
  std::jthread listener_;
  std::atomic<int> port_{0};

  std::mutex traces_mu_;
  std::map<std::thread::id, Trace> traces_;  // one entry per pool thread at most
  ClientErrors client_errors_;               // this port's 4xx other than 401/403
};

ConnectionLimits HttpAdminServer::ConnectionLimitsOf() {
  ConnectionLimits limits;
  limits.header_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
      ctx_.config.http.request_header_timeout);
  limits.max_per_client = static_cast<size_t>(ctx_.config.http.max_connections_per_client);
  // Counted and reported like the other client errors; no request was read to name.
  auto report = [this](const std::string& peer, int status) {
    ctx_.metrics.Add("conduit_http_requests_total", 1,
                     "method=\"other\",route=\"unparsed\",code=\"" + std::to_string(status) + "\"");
    client_errors_.Report(peer, "other", "unparsed", status, ctx_.index, ctx_.clock.Now());
  };
  limits.on_timeout = [report](const std::string& peer) { report(peer, 408); };
  limits.on_refused = [report](const std::string& peer) { report(peer, 429); };
  // Mutual TLS: a client without an accepted certificate is an authentication refusal, like
  // a request without an accepted token; no request was read, so no method or route.
  limits.on_certificate_refused = [this](const std::string& peer, bool missing,
                                         const std::string& reason) {
    ctx_.auth_refusals->Report(
        {.action = "http_auth",
         .actor = peer,
         .guard = "client_certificate",
         .peer = peer,
         .via = {},
         .method = "other",
         .route = "tls_handshake",
         .reason = reason,
         .kind = missing ? AuthRefusalKind::kMissing : AuthRefusalKind::kInvalid,
         .job = std::nullopt,
         .detail = nlohmann::json::object()},
        ctx_.index, ctx_.metrics, ctx_.clock.Now());
  };
  ctx_.metrics.Describe("conduit_http_connections_deferred", "gauge",
                        "HTTP connections waiting because their client already holds "
                        "http.max_connections_per_client workers");
  ctx_.metrics.Set("conduit_http_connections_deferred", 0);
  limits.on_waiting = [this](size_t waiting) {
    ctx_.metrics.Set("conduit_http_connections_deferred", static_cast<double>(waiting));
  };
  return limits;
}

void HttpAdminServer::Configure(httplib::Server& server) {
  int threads = std::max(1, ctx_.config.http.threads);
  server.new_task_queue = [this, threads] { return new WorkerPool(threads, ctx_.metrics); };
  // Handlers read bodies themselves (content-reader overloads below): admin routes into a
  // string of at most kMaxPayloadBytes, STOW-RS streamed to disk up to max_stow_bytes.
  // httplib's own limit (on Content-Length) only backs those up.
  uint64_t max_body = kMaxPayloadBytes;
  if (ctx_.dicomweb != nullptr) {
    max_body = std::max<uint64_t>(max_body, ctx_.config.http.max_stow_bytes);
  }
  server.set_payload_max_length(
      static_cast<size_t>(std::min<uint64_t>(max_body, std::numeric_limits<size_t>::max())));
  server.set_read_timeout(kReadTimeout);
  server.set_write_timeout(kWriteTimeout);
  server.set_keep_alive_timeout(kKeepAliveTimeoutSeconds);
  server.set_keep_alive_max_count(kKeepAliveMaxCount);
  // httplib's default also sets SO_REUSEPORT, which would let a second gateway share the
  // port silently; only SO_REUSEADDR (fast restart) is wanted.
  // TCP_NODELAY (inherited by accepted connections): a response written as headers then body
  // would otherwise wait for the client's delayed ACK, ~40 ms per request.
  server.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    ::setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
  });
  server.set_default_headers({{"X-Content-Type-Options", "nosniff"},
                              {"Cache-Control", "no-store"},
                              {"X-Frame-Options", "DENY"},
                              {"Content-Security-Policy", "default-src 'none'"}});

  auto serve = [this](const httplib::Request& req, httplib::Response& res) { Serve(req, res); };
  httplib::Server::HandlerWithContentReader serve_body =
      [this](const httplib::Request& req, httplib::Response& res,
             const httplib::ContentReader& reader) { ServeWithBody(req, res, reader); };
  // Every method reaches Dispatch (admin) or the DICOMweb handlers; Dispatch tells an unknown
  // path (404) from a known path with the wrong method (405). httplib reads no body for the
  // content-reader handlers: each reads its own.
  server.Get(".*", serve);
  server.Post(".*", serve_body);
  server.Put(".*", serve_body);
  server.Patch(".*", serve_body);
  server.Delete(".*", serve_body);
  server.Options(".*", serve);

  server.set_pre_routing_handler([this](const httplib::Request&, httplib::Response&) {
    std::lock_guard lock(traces_mu_);
    traces_[std::this_thread::get_id()] = Trace{std::chrono::steady_clock::now(), "unmatched"};
    return httplib::Server::HandlerResponse::Unhandled;
  });
  // Errors httplib raises itself (400 unparsable, 413, 414, ...) get a JSON body too; a body a
  // handler already wrote is kept.
  server.set_error_handler(
      httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        SetError(res, res.status, ReasonOf(res.status));
        return httplib::Server::HandlerResponse::Handled;
      }));
  server.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown exception";
        try {
          if (ep) std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        spdlog::error("http: request failed: {}", what);
        SetError(res, 500, "internal error: " + what);
      });
  server.set_logger(
      [this](const httplib::Request& req, const httplib::Response& res) { Log(req, res); });
}

Status HttpAdminServer::Start() {
  if (server_) return FailedPrecondition("http admin server: already started");
  const std::string& host = ctx_.config.http.bind;
  if (ctx_.api_tokens == nullptr && !ctx_.config.http.api_token_file.empty()) {
    return FailedPrecondition(
        "http admin server: http.api_token_file is set but its tokens "
        "were not loaded");
  }
  if (ctx_.api_tokens == nullptr && !IsLoopbackHost(host)) {
    return FailedPrecondition("http admin server: bind " + host +
                              " is not a loopback address: the admin API and DICOMweb need "
                              "http.api_token_file");
  }
  const int requested = ctx_.config.http.port;
  std::unique_ptr<httplib::Server> server;
  if (ctx_.config.http.tls()) {
#ifndef CPPHTTPLIB_OPENSSL_SUPPORT
    return FailedPrecondition("http admin server: http.tls: this build's HTTP server has no TLS");
#else
    auto tls = MakeLimitedTlsServer(
        ctx_.config.http.tls_certificate_file, ctx_.config.http.tls_key_file, ConnectionLimitsOf(),
        {.ca_file = ctx_.config.http.tls_ca_file, .crl_file = ctx_.config.http.tls_crl_file});
    if (!tls.ok()) return tls.status().WithContext("http admin server");
    server = std::move(*tls);
#endif
  } else {
    server = MakeLimitedServer(ConnectionLimitsOf());
  }
  Configure(*server);

  const int bound = BindWithBacklog(*server, host, requested);
  if (bound <= 0) {
    return Unavailable("http admin server: bind " + host + ":" + std::to_string(requested) +
                       ": cannot bind (in use, or not a local address)");
  }
  server_ = std::move(server);
  port_ = bound;
  httplib::Server* s = server_.get();
  auto ended = std::make_shared<std::atomic<bool>>(false);
  listener_ = std::jthread([s, ended] {
    pthread_setname_np(pthread_self(), "http-accept");
    if (!s->listen_after_bind()) spdlog::error("http admin server: accept loop failed");
    *ended = true;
  });
  // stop() is a no-op until the accept loop runs: wait for it (or its failure), so that
  // Stop() always ends it. Both come within moments of the thread starting.
  while (!s->is_running() && !*ended) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (*ended) {
    Stop();
    return Unavailable("http admin server: accept loop on " + host + ":" + std::to_string(bound) +
                       " ended at once");
  }
  spdlog::info("http admin server listening on {}:{} ({}, {} threads, {})", host, bound,
               ctx_.config.http.tls() ? "https" : "plain http",
               std::max(1, ctx_.config.http.threads),
               ctx_.api_tokens != nullptr
                   ? std::to_string(ctx_.api_tokens->size()) + " API token(s)"
                   : std::string("no API tokens: admin API and DICOMweb open on loopback"));
  return Status::Ok();
}

void HttpAdminServer::Stop() {
  if (!server_) return;
  server_->stop();
  if (listener_.joinable()) listener_.join();
  server_.reset();
  port_ = 0;
}

void HttpAdminServer::SetTraceRoute(const std::string& route) {
  std::lock_guard lock(traces_mu_);
  auto it = traces_.find(std::this_thread::get_id());
  if (it != traces_.end()) it->second.route = route;
}

void HttpAdminServer::Serve(const httplib::Request& req, httplib::Response& res) {
  if (!Authenticate(req, res)) return;
  if (IsDicomwebPath(req.path)) return ServeDicomweb(req, res, nullptr);
  Dispatch(req, res);
}

void HttpAdminServer::ServeWithBody(const httplib::Request& req, httplib::Response& res,
                                    const httplib::ContentReader& reader) {
  if (!Authenticate(req, res)) {
    // Read a small body through so the client surely reads the refusal; else close.
    if (!DiscardBody(req, res, reader, kMaxPayloadBytes)) res.set_header("Connection", "close");
    return;
  }
  if (IsDicomwebPath(req.path)) return ServeDicomweb(req, res, &reader);
  Result<std::string> body = ReadSmallBody(req, reader, kMaxPayloadBytes);
  if (!body.ok()) {
    // The rest of the body is unread: the connection ends with this response.
    res.set_header("Connection", "close");
    const bool too_large = body.status().code() == StatusCode::kResourceExhausted;
    SetError(res, too_large ? 413 : 400, body.status().message());
    return;
  }
  httplib::Request with_body = req;
  with_body.body = std::move(*body);
  Dispatch(with_body, res);
}

void HttpAdminServer::ServeDicomweb(const httplib::Request& req, httplib::Response& res,
                                    const httplib::ContentReader* reader) {
  SetTraceRoute(DicomwebRouteLabel(req.path));
  if (IsUpsRsPath(req.path) && ctx_.ups_rs != nullptr) {
    ServeUpsRs(*ctx_.ups_rs, req, res, reader);
    return;
  }
  if (ctx_.dicomweb == nullptr || IsUpsRsPath(req.path)) {
    if (reader != nullptr && !DiscardBody(req, res, *reader, kMaxPayloadBytes)) {
      res.set_header("Connection", "close");
    }
    SetError(res, 404, "no such resource");
    return;
  }
  if (req.method == "GET" || req.method == "HEAD") {
    ServeDicomwebRead(*ctx_.dicomweb, req, res,
                      ctx_.api_tokens != nullptr ? OriginalsOpenedBy::kApiToken
                                                 : OriginalsOpenedBy::kNoTokenConfigured);
  } else if (reader != nullptr) {
    ServeDicomwebStore(*ctx_.dicomweb, req, res, *reader);  // 405 for other than POST
  } else {
    res.set_header("Allow", IsStowResource(req.path) ? "POST" : "GET, HEAD");
    SetError(res, 405, "method " + Echo(req.method) + " not allowed");
  }
}

bool HttpAdminServer::Authenticate(const httplib::Request& req, httplib::Response& res) {
  if (ctx_.api_tokens == nullptr || GuardOf(req) != Guard::kApiToken) return true;
  const std::string token = BearerToken(req);
  if (ctx_.api_tokens->Accepts(token)) return true;

  const std::string route = RouteLabelOf(req.path);
  const bool missing = token.empty();
  SetTraceRoute(route);
  const ClientAddress client = ClientOf(req, ctx_.config.http.trusted_proxies);
  ctx_.auth_refusals->Report(
      {.action = "http_auth",
       .actor = client.address,
       .guard = "api",
       .peer = client.address,
       .via = client.via,
       .method = MethodLabel(req.method),
       .route = route,
       .reason = missing ? "no bearer token" : "token not accepted",
       .kind = missing ? AuthRefusalKind::kMissing : AuthRefusalKind::kInvalid,
       .job = std::nullopt,
       .detail = nlohmann::json::object()},
      ctx_.index, ctx_.metrics, ctx_.clock.Now());
  res.set_header("WWW-Authenticate", missing ? "Bearer realm=\"conduit\""
                                             : "Bearer realm=\"conduit\", error=\"invalid_token\"");
  SetError(res, 401,
           missing ? "authentication required: Authorization: Bearer <API token>"
                   : "the bearer token is not an API token of this gateway");
  return false;
}

std::string HttpAdminServer::RouteLabelOf(const std::string& path) const {
  if (IsDicomwebPath(path)) return DicomwebRouteLabel(path);
  const std::vector<std::string> parts = SplitPath(path);
  for (const Route& route : routes_) {
    if (route.segments.size() != parts.size()) continue;
    bool same = true;
    for (size_t i = 0; i < parts.size() && same; ++i) {
      const std::string& seg = route.segments[i];
      same = (seg.size() > 2 && seg.front() == '{' && seg.back() == '}') ? !parts[i].empty()
                                                                         : seg == parts[i];
    }
    if (same) return route.pattern;
  }
  return "unmatched";
}

void HttpAdminServer::Dispatch(const httplib::Request& req, httplib::Response& res) {
  const std::vector<std::string> parts = SplitPath(req.path);
  const Route* match = nullptr;
  const Route* path_match = nullptr;  // a route with this path, whatever its method
  std::vector<std::string> allowed;
  Args args;
  for (const Route& route : routes_) {
    if (route.segments.size() != parts.size()) continue;
    Args candidate;
    bool same = true;
    for (size_t i = 0; i < parts.size() && same; ++i) {
      const std::string& seg = route.segments[i];
      if (seg.size() > 2 && seg.front() == '{' && seg.back() == '}') {
        same = !parts[i].empty();
        candidate.push_back(parts[i]);
      } else {
        same = seg == parts[i];
      }
    }
    if (!same) continue;
    if (path_match == nullptr) path_match = &route;
    bool method_ok = route.method == req.method || (route.method == "GET" && req.method == "HEAD");
    if (method_ok) {
      match = &route;
      args = std::move(candidate);
      break;
    }
    allowed.push_back(route.method);
    if (route.method == "GET") allowed.push_back("HEAD");
  }

  if (match == nullptr) {
    if (allowed.empty()) {
      SetError(res, 404, "no such resource");
      return;
    }
    SetTraceRoute(path_match->pattern);
    std::string allow;
    for (const std::string& m : allowed) allow += (allow.empty() ? "" : ", ") + m;
    res.set_header("Allow", allow);
    SetError(res, 405, "method " + Echo(req.method) + " not allowed; allowed: " + allow);
    return;
  }
  SetTraceRoute(match->pattern);

  if ((req.method == "POST" || req.method == "DELETE") && req.has_header("Origin")) {
    // A browser on another origin must not drive the admin API (CSRF).
    std::string origin = req.get_header_value("Origin");
    std::string host = req.get_header_value("Host");
    if (origin != "http://" + host && origin != "https://" + host) {
      SetError(res, 403, "cross-origin request refused");
      return;
    }
  }

  Result<Payload> payload = (this->*match->handler)(req, args);
  if (!payload.ok()) {
    const Status& st = payload.status();
    int status = HttpStatusOf(st.code());
    // The code only: a store's message may name a study, and logs never do.
    if (status >= 500) {
      spdlog::warn("http {} {}: {}", MethodLabel(req.method), match->pattern,
                   StatusCodeName(st.code()));
    }
    SetError(res, status, st.message());
    return;
  }
  res.status = payload->status;
  res.set_content(std::move(payload->body), payload->content_type.c_str());
}

// Logs the route pattern, never the path: paths and queries may carry Study UIDs.
void HttpAdminServer::Log(const httplib::Request& req, const httplib::Response& res) {
  std::optional<Trace> trace;
  {
    std::lock_guard lock(traces_mu_);
    auto it = traces_.find(std::this_thread::get_id());
    if (it != traces_.end()) {
      trace = std::move(it->second);
      traces_.erase(it);
    }
  }
  std::string route = trace ? trace->route : "unparsed";
  std::string method = MethodLabel(req.method);
  double seconds =
      trace ? std::chrono::duration<double>(std::chrono::steady_clock::now() - trace->start).count()
            : 0.0;
  ctx_.metrics.Add("conduit_http_requests_total", 1,
                   "method=\"" + method + "\",route=\"" + route + "\",code=\"" +
                       std::to_string(res.status) + "\"");
  if (trace) {
    ctx_.metrics.Observe("conduit_http_request_duration_seconds", seconds,
                         "route=\"" + route + "\"");
  }
  spdlog::debug("http {} {} {} {:.1f}ms", method, route, res.status, seconds * 1000);
  client_errors_.Report(ClientOf(req, ctx_.config.http.trusted_proxies).address, method, route,
                        res.status, ctx_.index, ctx_.clock.Now());
}

Result<Payload> HttpAdminServer::Health(const httplib::Request&, const Args&) {
  json body{{"node", ctx_.config.node.name},
            {"version", CONDUIT_VERSION},
            {"time", IsoTime(ctx_.clock.Now())}};
  bool ready = true;
  Result<std::map<JobState, int64_t>> counts = ctx_.index.CountJobsByState();
  if (counts.ok()) {
    body["index"] = "up";
    json jobs = json::object();
    for (const auto& [state, n] : *counts) jobs[JobStateName(state)] = n;
    body["jobs"] = jobs;
  } else {
    ready = false;
    body["index"] = "down";
    body["index_error"] = counts.status().message();
  }
  if (ctx_.health_facts) {
    for (const auto& [key, value] : ctx_.health_facts()) {
      if (body.contains(key)) continue;
      body[key] = value;
      if (value == "down") ready = false;
    }
  }
  body["status"] = ready ? "ok" : "unavailable";
  // Readiness is the status code: a load balancer needs no JSON.
  Payload payload = Json(body);
  if (!ready) payload.status = 503;
  return payload;
}

Result<Payload> HttpAdminServer::Studies(const httplib::Request& req, const Args&) {
  ASSIGN_OR_RETURN(int64_t limit, QueryInt(req, "limit", kDefaultLimit, 1, kMaxLimit));
  ASSIGN_OR_RETURN(int64_t offset, QueryInt(req, "offset", 0, 0, kMaxOffset));
  ASSIGN_OR_RETURN(std::vector<StudySummary> studies,
                   ctx_.index.ListStudies(static_cast<int>(limit), static_cast<int>(offset)));
  json list = json::array();
  for (const StudySummary& s : studies) list.push_back(StudyJson(s));
  return Json(json{{"studies", list}, {"limit", limit}, {"offset", offset}});
}

Result<Payload> HttpAdminServer::Study(const httplib::Request&, const Args& args) {
  ASSIGN_OR_RETURN(StudyUid uid, ParseStudyUid(args.at(0)));
  ASSIGN_OR_RETURN(std::optional<StudySummary> study, ctx_.index.GetStudy(uid));
  if (!study) return NotFound("study " + StudyRef(uid) + ": not found");
  ASSIGN_OR_RETURN(std::vector<JobRecord> jobs, ctx_.index.ListJobs(std::nullopt, kStudyJobsScan));
  json body = StudyJson(*study);
  json list = json::array();
  for (const JobRecord& j : jobs) {
    if (j.study_uid == uid) list.push_back(JobJson(j));
  }
  body["jobs"] = list;
  return Json(body);
}

Result<Payload> HttpAdminServer::Jobs(const httplib::Request& req, const Args&) {
  std::optional<JobState> state;
  if (req.has_param("state")) {
    std::string name = req.get_param_value("state");
    state = ParseJobState(name);
    if (!state) return InvalidArgument("state: unknown job state '" + Echo(name) + "'");
  }
  ASSIGN_OR_RETURN(int64_t limit, QueryInt(req, "limit", kDefaultLimit, 1, kMaxLimit));
  ASSIGN_OR_RETURN(std::vector<JobRecord> jobs,
                   ctx_.index.ListJobs(state, static_cast<int>(limit)));
  json list = json::array();
  for (const JobRecord& j : jobs) list.push_back(JobJson(j));
  return Json(json{{"jobs", list},
                   {"state", state ? json(JobStateName(*state)) : json(nullptr)},
                   {"limit", limit}});
}

Result<Payload> HttpAdminServer::RisOutbox(const httplib::Request& req, const Args&) {
  std::optional<Hl7OutboxState> state;
  if (req.has_param("state")) {
    std::string name = req.get_param_value("state");
    state = ParseHl7OutboxState(name);
    if (!state) return InvalidArgument("state: not pending, sent or failed: '" + Echo(name) + "'");
  }
  ASSIGN_OR_RETURN(int64_t limit, QueryInt(req, "limit", kDefaultLimit, 1, kMaxLimit));
  const std::string& destination = ctx_.config.ris.name;
  ASSIGN_OR_RETURN(std::vector<Hl7OutboxRecord> messages,
                   ctx_.index.RecentHl7(destination, state, static_cast<int>(limit)));
  ASSIGN_OR_RETURN(int64_t pending, ctx_.index.CountHl7(destination, Hl7OutboxState::kPending));
  ASSIGN_OR_RETURN(int64_t failed, ctx_.index.CountHl7(destination, Hl7OutboxState::kFailed));
  json list = json::array();
  for (const Hl7OutboxRecord& m : messages) list.push_back(OutboxJson(m));
  return Json(json{{"destination", destination},
                   {"sending", ctx_.config.ris.sends()},
                   {"pending", pending},
                   {"failed", failed},
                   {"messages", list},
                   {"state", state ? json(Hl7OutboxStateName(*state)) : json(nullptr)},
                   {"limit", limit}});
}

Result<Payload> HttpAdminServer::Job(const httplib::Request&, const Args& args) {
  ASSIGN_OR_RETURN(JobId id, ParseJobId(args.at(0)));
  ASSIGN_OR_RETURN(std::optional<JobRecord> job, ctx_.index.GetJob(id));
  if (!job) return NotFound("job " + std::to_string(id.value) + ": not found");
  ASSIGN_OR_RETURN(std::vector<ResultRecord> results, ctx_.index.ListResults(id));
  ASSIGN_OR_RETURN(auto delivered, ctx_.index.ListDelivered(id));
  ASSIGN_OR_RETURN(std::vector<FindingRecord> findings, ctx_.index.ListFindings(id));
  ASSIGN_OR_RETURN(std::vector<CommitmentRecord> commitments, ctx_.index.ListCommitments(id));
  json body = JobJson(*job);
  json result_list = json::array();
  for (const ResultRecord& r : results) {
    result_list.push_back(json{{"sop_instance_uid", r.sop_instance_uid.str()},
                               {"sop_class_uid", r.sop_class_uid.str()},
                               {"series_uid", r.series_uid.str()},
                               {"size_bytes", r.size_bytes},
                               {"received_at", IsoTime(r.received_at)}});
  }
  json delivery_list = json::array();
  for (const auto& [sop, destination] : delivered) {
    delivery_list.push_back(json{{"sop_instance_uid", sop}, {"destination", destination}});
  }
  // What the results report (IHE AIR findings), without the images they refer to.
  json finding_list = json::array();
  for (const FindingRecord& f : findings) {
    finding_list.push_back(
        json{{"kind", f.kind},
             {"concept",
              {{"scheme", f.concept_scheme},
               {"value", f.concept_value},
               {"meaning", f.concept_meaning}}},
             {"value",
              {{"scheme", f.value_scheme}, {"code", f.value_code}, {"meaning", f.value_meaning}}},
             {"numeric_value", f.numeric_value ? json(*f.numeric_value) : json(nullptr)},
             {"units", f.units},
             {"tracking_id", f.tracking_id}});
  }
  // Storage commitment asked of a PACS and not yet settled: awaited until `report_due`, or
  // reported not committed (sent again on the job's next step).
  json commitment_list = json::array();
  for (const CommitmentRecord& c : commitments) {
    json item{{"sop_instance_uid", c.sop_instance_uid.str()},
              {"destination", c.destination},
              {"requested_at", IsoTime(c.requested_at)},
              {"report_due", IsoTime(c.deadline)},
              {"state", c.reported ? "not_committed" : "awaited"}};
    if (c.reported && c.failure_reason != 0) item["failure_reason"] = c.failure_reason;
    commitment_list.push_back(std::move(item));
  }
  body["results"] = result_list;
  body["deliveries"] = delivery_list;
  body["commitments"] = commitment_list;
  body["findings"] = finding_list;
  return Json(body);
}

Result<Payload> HttpAdminServer::Retry(const httplib::Request&, const Args& args) {
  ASSIGN_OR_RETURN(JobId id, ParseJobId(args.at(0)));
  RETURN_IF_ERROR(ReplayJob(ctx_.index, ctx_.clock, id, "http"));
  ASSIGN_OR_RETURN(std::optional<JobRecord> job, ctx_.index.GetJob(id));
  if (!job) return NotFound("job " + std::to_string(id.value) + ": not found after replay");
  spdlog::info("http: job {} of study {} replayed", id.value, StudyRef(job->study_uid));
  return Json(JobJson(*job));
}

Result<Payload> HttpAdminServer::Audit(const httplib::Request& req, const Args&) {
  ASSIGN_OR_RETURN(int64_t limit, QueryInt(req, "limit", kDefaultLimit, 1, kMaxLimit));
  ASSIGN_OR_RETURN(int64_t offset, QueryInt(req, "offset", 0, 0, kMaxOffset));
  // ?study=<Study Instance UID>: that study's rows only. The UID is turned into its reference
  // here and never logged (logs carry route patterns, not paths or queries).
  std::vector<AuditEvent> events;
  if (req.has_param("study")) {
    const std::string study = req.get_param_value("study");
    if (!IsDicomUidAsFound(study)) return InvalidArgument("study: expected a Study Instance UID");
    ASSIGN_OR_RETURN(events,
                     ctx_.index.ListAuditOfStudy(StudyRef(StudyUid(study)), static_cast<int>(limit),
                                                 static_cast<int>(offset)));
  } else {
    ASSIGN_OR_RETURN(events,
                     ctx_.index.ListAudit(static_cast<int>(limit), static_cast<int>(offset)));
  }
  json list = json::array();
  for (const AuditEvent& e : events) list.push_back(AuditEventJson(e));
  return Json(json{{"events", list}, {"limit", limit}, {"offset", offset}});
}

// Tool names and versions as manifests allow them (ParseToolManifest): nothing else is looked up.
Result<std::string> ToolNameArg(std::string_view what, std::string_view text) {
  bool ok = !text.empty() && text.size() <= 64;
  for (char c : text) {
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' ||
                c == '+');
  }
  if (!ok) return InvalidArgument(std::string(what) + ": '" + Echo(text) + "' is not valid");
  return std::string(text);
}

Result<Payload> HttpAdminServer::Tools(const httplib::Request& req, const Args&) {
  bool include_removed = false;
  if (req.has_param("include_removed")) {
    const std::string value = req.get_param_value("include_removed");
    if (value != "true" && value != "false") {
      return InvalidArgument("include_removed: expected true or false");
    }
    include_removed = value == "true";
  }
  ASSIGN_OR_RETURN(std::vector<ToolRecord> tools, ctx_.index.ListTools(include_removed));
  json list = json::array();
  for (const ToolRecord& t : tools) list.push_back(json::parse(ToolRecordJson(t)));
  return Json(json{{"tools", list}, {"include_removed", include_removed}});
}

// The registered tool {name}, at ?version= or the version added last that is not removed.
Result<ToolRecord> HttpAdminServer::RegisteredTool(const httplib::Request& req,
                                                   const std::string& name_arg) {
  ASSIGN_OR_RETURN(std::string name, ToolNameArg("tool name", name_arg));
  std::optional<std::string> version;
  if (req.has_param("version")) {
    ASSIGN_OR_RETURN(version, ToolNameArg("version", req.get_param_value("version")));
  }
  ASSIGN_OR_RETURN(std::optional<ToolRecord> tool, ctx_.index.GetTool(name, version));
  if (!tool) {
    return NotFound("tool " + name + (version ? " version " + *version : "") +
                    ": not in the registry");
  }
  return *tool;
}

Result<Payload> HttpAdminServer::Tool(const httplib::Request& req, const Args& args) {
  ASSIGN_OR_RETURN(ToolRecord tool, RegisteredTool(req, args.at(0)));
  return Payload{"application/json", ToolRecordJson(tool)};
}

// The DPIA draft of a registered tool under the running policy and config: the same text as
// POST /api/dpia with the manifest it was registered from.
Result<Payload> HttpAdminServer::ToolDpia(const httplib::Request& req, const Args& args) {
  ASSIGN_OR_RETURN(ToolRecord record, RegisteredTool(req, args.at(0)));
  ASSIGN_OR_RETURN(ToolManifest manifest, ToolManifestFromJson(record.manifest_json));
  return DpiaOf(req, manifest);
}

// The body is the manifest's YAML; errors name its line ("request body:12: ...").
Result<Payload> HttpAdminServer::AddTool(const httplib::Request& req, const Args&) {
  ASSIGN_OR_RETURN(ToolManifest manifest, ParseToolManifest(req.body, "request body"));
  ASSIGN_OR_RETURN(Policy policy, PolicyOfConfig(ctx_.config));
  ASSIGN_OR_RETURN(PutOutcome outcome,
                   RegisterTool(ctx_.index, policy, manifest, "http", ctx_.clock));
  ASSIGN_OR_RETURN(std::optional<ToolRecord> tool,
                   ctx_.index.GetTool(manifest.name, manifest.version));
  if (!tool) return Internal("tool " + manifest.name + ": not found after adding it");
  Payload payload{"application/json", ToolRecordJson(*tool)};
  payload.status = outcome == PutOutcome::kInserted ? 201 : 200;
  return payload;
}

// The body is a tool manifest's YAML (as for POST /api/tools; nothing is registered); the
// answer the tool's pre-filled DPIA under the config's policy, as Markdown.
Result<Payload> HttpAdminServer::Dpia(const httplib::Request& req, const Args&) {
  ASSIGN_OR_RETURN(ToolManifest manifest, ParseToolManifest(req.body, "request body"));
  return DpiaOf(req, manifest);
}

Result<Payload> HttpAdminServer::DpiaOf(const httplib::Request& req, const ToolManifest& manifest) {
  ASSIGN_OR_RETURN(Policy policy, PolicyOfConfig(ctx_.config));
  ASSIGN_OR_RETURN(DpiaTool tool, DpiaToolOf(manifest));
  const std::string organisation =
      req.has_param("organisation") ? req.get_param_value("organisation") : "";
  if (organisation.size() > 200) return InvalidArgument("organisation: over 200 characters");
  ASSIGN_OR_RETURN(
      std::string markdown,
      RenderDpia(policy, tool, DpiaContext{organisation, ctx_.clock.Now(), &ctx_.config}));
  return Payload{"text/markdown; charset=utf-8", std::move(markdown)};
}

Result<Payload> HttpAdminServer::RemoveTool(const httplib::Request&, const Args& args) {
  ASSIGN_OR_RETURN(std::string name, ToolNameArg("tool name", args.at(0)));
  ASSIGN_OR_RETURN(std::string version, ToolNameArg("version", args.at(1)));
  RETURN_IF_ERROR(UnregisterTool(ctx_.index, name, version, "http", ctx_.clock));
  ASSIGN_OR_RETURN(std::optional<ToolRecord> tool, ctx_.index.GetTool(name, version));
  if (!tool) return Internal("tool " + name + ": not found after removing it");
  return Payload{"application/json", ToolRecordJson(*tool)};
}

Result<Payload> HttpAdminServer::MetricsText(const httplib::Request&, const Args&) {
  if (ctx_.refresh_gauges) ctx_.refresh_gauges();
  return Payload{"text/plain; version=0.0.4; charset=utf-8", ctx_.metrics.RenderPrometheus()};
}

}  // namespace

std::unique_ptr<AdminServer> MakeAdminServer(AdminContext context) {
  return std::make_unique<HttpAdminServer>(std::move(context));
}

}  // namespace conduit
