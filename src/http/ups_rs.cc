#include "http/ups_rs.h"

#include <spdlog/spdlog.h>

#include <cctype>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "core/dicom_uid.h"
#include "http/client_address.h"
#include "http/dicomweb_read_internal.h"
#include "http/dicomweb_request.h"
#include "http/percent_decoding.h"
#include "http/qido_query.h"
#include "http/request_body.h"
#include "http/route_labels.h"
#include "http/ups_body.h"

namespace conduit {
namespace {

using json = nlohmann::json;

constexpr std::string_view kRoot = "/dicom-web/workitems";
constexpr char kGlobalSubscription[] = "1.2.840.10008.5.1.4.34.5";
constexpr char kFilteredGlobalSubscription[] = "1.2.840.10008.5.1.4.34.5.1";
constexpr size_t kMaxBodyBytes = 1 << 20;
constexpr uint32_t kMaxResults = 1000;
constexpr int kListPage = 500;
// A search looks at most this many workitems (the worklists hold the jobs in flight).
constexpr int kMaxScanned = 100'000;
constexpr std::string_view kActor = "UPS-RS";

constexpr uint32_t kSopClassUid = 0x00080016;
constexpr uint32_t kSopInstanceUid = 0x00080018;
constexpr uint32_t kProcedureStepState = 0x00741000;
constexpr uint32_t kScheduledProcedureStepPriority = 0x00741200;
constexpr uint32_t kInputReadinessState = 0x00404041;
constexpr char kUpsPushSopClass[] = "1.2.840.10008.5.1.4.34.6.1";

// Warning texts of PS3.18 §11.
constexpr char kWarnTxnMissing[] = "The Transaction UID is missing.";
constexpr char kWarnTxnIncorrect[] = "The Transaction UID is incorrect.";
constexpr char kWarnStateInconsistent[] =
    "The submitted request is inconsistent with the state of the UPS Instance.";
constexpr char kWarnNotClaimed[] = "The target URI did not reference a claimed Workitem.";
constexpr char kWarnUpdateInconsistent[] =
    "The submitted request is inconsistent with the current state of the Workitem.";
constexpr char kWarnAlreadyCompleted[] = "The UPS is already COMPLETED.";

std::string Key(uint32_t tag) {
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08X", tag);
  return buf;
}

// One request being served: the context, the route label (no UIDs) for logs and metrics.
struct Exchange {
  UpsRsContext& ctx;
  const httplib::Request& req;
  httplib::Response& res;
  std::string transaction = "unknown";

  void Warn(const std::string& text) { res.set_header("Warning", "299 conduit: \"" + text + "\""); }

  // An error answer with {"error": message}; logged at debug by code and transaction, never
  // by message (it may name a workitem). The port's ClientErrors (or AuthRefusals, for 401 and
  // 403) report it at warning, throttled.
  void Error(int status, const std::string& message) {
    SendDicomwebError(res, status, message);
    spdlog::debug("event=ups_rs_refused transaction={} status={} peer={}", transaction, status,
                  ClientOf(req, ctx.trusted_proxies).address);
  }

  void Json(int status, const json& body) {
    res.status = status;
    res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace),
                    "application/dicom+json");
  }

  void Empty(int status) {
    res.status = status;
    res.body.clear();
  }

  // The one place Worklist errors become HTTP statuses (transaction-specific cases first).
  void Fail(const Status& st) {
    int status = 500;
    switch (st.code()) {
      case StatusCode::kInvalidArgument:
        status = 400;
        break;
      case StatusCode::kNotFound:
        status = 404;
        break;
      case StatusCode::kFailedPrecondition:
      case StatusCode::kAlreadyExists:
        status = 409;
        break;
      case StatusCode::kPermissionDenied:
        status = 403;
        break;
      case StatusCode::kUnavailable:
      case StatusCode::kResourceExhausted:
        status = 503;
        break;
      default:
        break;
    }
    if (status >= 500) {
      spdlog::warn("ups-rs: {} failed: {}", transaction, StatusCodeName(st.code()));
      Error(status, "the worklist is unavailable (" + std::string(StatusCodeName(st.code())) + ")");
      return;
    }
    Error(status, st.message());
  }

  // 401 (or 403) for a caller that is not let in: counted, logged and audited (AuthRefusals),
  // never with the token.
  void Refuse(int status, const std::string& reason) {
    const bool missing = reason == "no bearer token";
    const ClientAddress client = ClientOf(req, ctx.trusted_proxies);
    ctx.auth_refusals->Report({.action = "ups_refused",
                               .actor = std::string(kActor),
                               .guard = "worklist",
                               .peer = client.address,
                               .via = client.via,
                               .method = MethodLabel(req.method),
                               .route = DicomwebRouteLabel(req.path),
                               .reason = reason,
                               .kind = status == 403 ? AuthRefusalKind::kForbidden
                                       : missing     ? AuthRefusalKind::kMissing
                                                     : AuthRefusalKind::kInvalid,
                               .job = std::nullopt,
                               .detail = {{"protocol", "UPS-RS"}, {"transaction", transaction}}},
                              ctx.index, ctx.metrics, ctx.clock.Now());
    if (status == 401) {
      res.set_header("WWW-Authenticate", missing
                                             ? "Bearer realm=\"conduit\""
                                             : "Bearer realm=\"conduit\", error=\"invalid_token\"");
    }
    SendDicomwebError(res, status, reason);
  }
};

// Who the bearer token says the caller is; nullopt after answering 401/403.
std::optional<UpsCaller> Authenticate(Exchange& x, bool read_only) {
  const std::string token = BearerToken(x.req);
  if (token.empty()) {
    x.Refuse(401, "no bearer token");
    return std::nullopt;
  }
  if (std::optional<std::string> tool = x.ctx.tokens.ToolOf(token)) return UpsCaller{*tool, ""};
  if (!x.ctx.admin_token.empty() && TokensEqual(token, x.ctx.admin_token)) {
    if (!read_only) {
      x.Refuse(403, "the administrator token reads worklists only");
      return std::nullopt;
    }
    return UpsCaller{"", ""};
  }
  x.Refuse(401, "the bearer token is not a worklist's");
  return std::nullopt;
}

// The workitem as a performer sees it: its dataset with the SOP Class/Instance UIDs and the
// current Procedure Step State, never the Transaction UID.
json WorkitemJson(const WorkitemRecord& w) {
  json ds = json::parse(w.dataset, nullptr, /*allow_exceptions=*/false);
  if (!ds.is_object()) ds = json::object();
  ds.erase(Key(0x00081195));
  ds[Key(kSopClassUid)] = json{{"vr", "UI"}, {"Value", json::array({kUpsPushSopClass})}};
  ds[Key(kSopInstanceUid)] = json{{"vr", "UI"}, {"Value", json::array({w.uid})}};
  ds[Key(kProcedureStepState)] =
      json{{"vr", "CS"}, {"Value", json::array({std::string(UpsStateName(w.state))})}};
  if (!ds.contains(Key(kScheduledProcedureStepPriority)) && !w.priority.empty()) {
    ds[Key(kScheduledProcedureStepPriority)] =
        json{{"vr", "CS"}, {"Value", json::array({w.priority})}};
  }
  return ds;
}

QidoLimits SearchLimits() {
  QidoLimits limits;
  limits.max_results = kMaxResults;
  return limits;
}

bool MatchesDataset(const QidoQuery& q, const json& ds) {
  return Matches(q, [&ds](uint32_t tag) { return DicomJsonValueString(ds, tag); });
}

// The attributes a search returns for `q`: everything by default or with includefield=all;
// otherwise the matching keys, the includefields and the workitem's identity and state.
json Project(const QidoQuery& q, json ds) {
  if (q.include_all || q.include_fields.empty()) return ds;
  std::set<std::string> keep = {Key(kSopClassUid), Key(kSopInstanceUid), Key(kProcedureStepState),
                                Key(kScheduledProcedureStepPriority), Key(kInputReadinessState)};
  for (const QidoCondition& c : q.conditions) keep.insert(Key(c.tag));
  for (uint32_t tag : q.include_fields) keep.insert(Key(tag));
  json out = json::object();
  for (const auto& [k, v] : ds.items()) {
    if (keep.count(k)) out[k] = v;
  }
  return out;
}

void Search(Exchange& x) {
  x.transaction = "search";
  std::optional<UpsCaller> caller = Authenticate(x, /*read_only=*/true);
  if (!caller) return;
  if (!AcceptsDicomJson(x.req.get_header_value("Accept"))) {
    return x.Error(406, "Accept: only application/dicom+json responses are available");
  }
  Result<QidoQuery> q = ParseQidoQuery(QidoLevel::kInstance, QueryStringOf(x.req), SearchLimits());
  if (!q.ok()) return x.Error(400, q.status().message());
  // A single-valued state condition narrows the listing; matching still applies.
  std::optional<UpsState> state;
  for (const QidoCondition& c : q->conditions) {
    if (c.tag == kProcedureStepState && c.kind == QidoMatchKind::kSingleValue) {
      state = ParseUpsState(c.value);
      if (!state) return x.Empty(204);
    }
  }
  const uint32_t limit = q->limit.value_or(kMaxResults);
  json results = json::array();
  uint32_t skipped = 0;
  bool truncated = false;
  for (int offset = 0; offset < kMaxScanned && results.size() < limit; offset += kListPage) {
    Result<std::vector<WorkitemRecord>> page =
        x.ctx.worklist.List(*caller, state, kListPage, offset);
    if (!page.ok()) return x.Fail(page.status());
    for (const WorkitemRecord& w : *page) {
      json ds = WorkitemJson(w);
      if (!MatchesDataset(*q, ds)) continue;
      if (skipped < q->offset) {
        ++skipped;
        continue;
      }
      if (results.size() >= limit) {
        truncated = true;
        break;
      }
      results.push_back(Project(*q, std::move(ds)));
    }
    if (static_cast<int>(page->size()) < kListPage) break;
    if (offset + kListPage >= kMaxScanned) truncated = true;
  }
  if (q->limit_capped) {
    x.Warn("The limit was above the maximum of " + std::to_string(kMaxResults) +
           " results and was reduced to it.");
  }
  if (!q->ignored_parameters.empty()) {
    std::string names;
    for (const std::string& n : q->ignored_parameters) names += (names.empty() ? "" : ", ") + n;
    if (names.size() > 200) names = names.substr(0, 200) + "...";
    x.Warn("The following parameters are not supported and were ignored: " + names);
  }
  if (truncated && results.size() >= limit && !q->limit) {
    x.Warn("The results were limited to " + std::to_string(kMaxResults) +
           "; use offset to see more.");
  }
  if (results.empty()) return x.Empty(204);
  x.Json(200, results);
}

void Retrieve(Exchange& x, const std::string& uid) {
  x.transaction = "retrieve";
  std::optional<UpsCaller> caller = Authenticate(x, /*read_only=*/true);
  if (!caller) return;
  if (!AcceptsDicomJson(x.req.get_header_value("Accept"))) {
    return x.Error(406, "Accept: only application/dicom+json responses are available");
  }
  Result<WorkitemRecord> w = x.ctx.worklist.Get(*caller, uid);
  if (!w.ok()) return x.Fail(w.status());
  x.Json(200, json::array({WorkitemJson(*w)}));
}

// The current state of `uid` for the caller, to tell a repeated request from a conflict.
std::optional<UpsState> CurrentState(Exchange& x, const UpsCaller& caller, const std::string& uid) {
  Result<WorkitemRecord> w = x.ctx.worklist.Get(caller, uid);
  if (!w.ok()) return std::nullopt;
  return w->state;
}

void ChangeState(Exchange& x, const std::string& uid, const std::string& body) {
  x.transaction = "change_state";
  std::optional<UpsCaller> caller = Authenticate(x, /*read_only=*/false);
  if (!caller) return;
  Result<UpsStateChangeRequest> change = ParseStateChangeBody(body, UpsBodyLimits{});
  if (!change.ok()) return x.Error(400, change.status().message());
  if (change->transaction_uid.empty()) {
    x.Warn(kWarnTxnMissing);
    return x.Error(400, "request body: Transaction UID (0008,1195) is missing");
  }
  Status st;
  if (change->state == UpsState::kInProgress) {
    x.transaction = "claim";
    st = x.ctx.worklist.Claim(*caller, uid, change->transaction_uid);
  } else {
    x.transaction = change->state == UpsState::kCompleted ? "complete" : "cancel";
    st =
        x.ctx.worklist.Finish(*caller, uid, change->transaction_uid, change->state, change->reason);
  }
  if (st.ok()) {
    spdlog::info("event=ups_state_changed transaction={} tool={}", x.transaction, caller->tool);
    return x.Empty(200);
  }
  if (st.code() == StatusCode::kPermissionDenied) {
    x.Warn(kWarnTxnIncorrect);
    return x.Error(400, "the Transaction UID is not the one this workitem was claimed with");
  }
  if (st.code() == StatusCode::kFailedPrecondition) {
    const std::optional<UpsState> now = CurrentState(x, *caller, uid);
    if (now && *now == change->state && change->state != UpsState::kInProgress) {
      x.Warn("The UPS is already in the requested state of " +
             std::string(UpsStateName(change->state)) + ".");
      return x.Empty(200);
    }
    x.Warn(kWarnStateInconsistent);
    return x.Error(409, st.message());
  }
  x.Fail(st);
}

// The Transaction UID of an update's query: "?<uid>" (PS3.18 §11.6.1) or "?transaction=<uid>".
Result<std::string> QueryTransactionUid(const httplib::Request& req) {
  std::string_view query = QueryStringOf(req);
  if (query.empty()) return std::string();
  if (query.find('=') == std::string_view::npos && query.find('&') == std::string_view::npos) {
    std::optional<std::string> uid = PercentDecode(query);
    if (!uid || !IsDicomUidAsFound(*uid))
      return InvalidArgument("query: the Transaction UID is not a UID");
    return *uid;
  }
  std::string found;
  for (const char* name : {"transaction", "TransactionUID", "00081195"}) {
    if (!req.has_param(name)) continue;
    const std::string value = req.get_param_value(name);
    if (!IsDicomUidAsFound(value))
      return InvalidArgument(std::string("query: ") + name + " is not a UID");
    if (!found.empty() && found != value) {
      return InvalidArgument("query: two different Transaction UIDs");
    }
    found = value;
  }
  return found;
}

void Update(Exchange& x, const std::string& uid, const std::string& body) {
  x.transaction = "update";
  std::optional<UpsCaller> caller = Authenticate(x, /*read_only=*/false);
  if (!caller) return;
  Result<std::string> from_query = QueryTransactionUid(x.req);
  if (!from_query.ok()) return x.Error(400, from_query.status().message());
  Result<UpsUpdateRequest> update = ParseUpdateBody(body, UpsBodyLimits{});
  if (!update.ok()) return x.Error(400, update.status().message());
  std::string transaction = *from_query;
  if (!update->transaction_uid.empty()) {
    if (!transaction.empty() && transaction != update->transaction_uid) {
      return x.Error(400, "the Transaction UID of the query and of the body differ");
    }
    transaction = update->transaction_uid;
  }
  if (transaction.empty()) {
    x.Warn(kWarnTxnMissing);
    return x.Error(400, "the Transaction UID is missing (query ?<uid> or (0008,1195) in the body)");
  }
  Status st = x.ctx.worklist.Update(*caller, uid, transaction, update->changes);
  if (st.ok()) return x.Empty(200);
  if (st.code() == StatusCode::kPermissionDenied) {
    x.Warn(kWarnTxnIncorrect);
    return x.Error(400, "the Transaction UID is not the one this workitem was claimed with");
  }
  if (st.code() == StatusCode::kFailedPrecondition) {
    const std::optional<UpsState> now = CurrentState(x, *caller, uid);
    if (now && (*now == UpsState::kCompleted || *now == UpsState::kCanceled)) {
      x.Warn(kWarnNotClaimed);
      return x.Error(400, st.message());
    }
    x.Warn(kWarnUpdateInconsistent);
    return x.Error(409, st.message());
  }
  x.Fail(st);
}

void RequestCancel(Exchange& x, const std::string& uid, const std::string& body) {
  x.transaction = "request_cancel";
  std::optional<UpsCaller> caller = Authenticate(x, /*read_only=*/false);
  if (!caller) return;
  Result<UpsCancelRequest> cancel = ParseCancelRequestBody(body, UpsBodyLimits{});
  if (!cancel.ok()) return x.Error(400, cancel.status().message());
  Status st = x.ctx.worklist.RequestCancel(*caller, uid, cancel->reason);
  if (st.ok()) return x.Empty(202);
  if (st.code() == StatusCode::kFailedPrecondition) {
    const std::optional<UpsState> now = CurrentState(x, *caller, uid);
    if (now && *now == UpsState::kCanceled) {
      x.Warn("The UPS is already in the requested state of CANCELED.");
      return x.Empty(202);
    }
    x.Warn(kWarnAlreadyCompleted);
    return x.Error(409, st.message());
  }
  x.Fail(st);
}

// The query string without its deletionlock parameter: a filtered subscription's filter.
std::string FilterOf(std::string_view query) {
  std::string out;
  size_t start = 0;
  while (start <= query.size()) {
    size_t amp = query.find('&', start);
    if (amp == std::string_view::npos) amp = query.size();
    std::string_view part = query.substr(start, amp - start);
    start = amp + 1;
    std::string_view name = part.substr(0, part.find('='));
    std::string lower(name);
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (part.empty() || lower == "deletionlock") continue;
    if (!out.empty()) out += '&';
    out += part;
  }
  return out;
}

void Subscription(Exchange& x, const std::string& target, const std::string& ae_segment,
                  bool suspend) {
  const bool global = target == kGlobalSubscription || target == kFilteredGlobalSubscription;
  const bool filtered = target == kFilteredGlobalSubscription;
  x.transaction = suspend ? "suspend" : (x.req.method == "DELETE" ? "unsubscribe" : "subscribe");
  std::optional<UpsCaller> caller = Authenticate(x, /*read_only=*/false);
  if (!caller) return;
  std::optional<std::string> decoded = PercentDecode(ae_segment);
  std::optional<std::string> ae = decoded ? ParseUpsAeTitle(*decoded) : std::nullopt;
  if (!ae) return x.Error(400, "the AE title in the path is not 1-16 printable characters");
  caller->ae_title = *ae;
  if (suspend) {
    if (!global) return x.Error(404, "only a worklist subscription can be suspended");
    Status st = x.ctx.worklist.Suspend(*caller, *ae);
    if (!st.ok()) return x.Fail(st);
    return x.Empty(200);
  }
  const std::string uid = global ? std::string() : target;
  if (x.req.method == "DELETE") {
    Status st = x.ctx.worklist.Unsubscribe(*caller, *ae, uid);
    if (!st.ok()) return x.Fail(st);
    return x.Empty(200);
  }
  bool deletion_lock = false;
  if (x.req.has_param("deletionlock")) {
    const std::string v = x.req.get_param_value("deletionlock");
    if (v != "true" && v != "false") return x.Error(400, "deletionlock: expected true or false");
    deletion_lock = v == "true";
  }
  std::string filter;
  if (filtered) {
    filter = FilterOf(QueryStringOf(x.req));
    Result<QidoQuery> q = ParseQidoQuery(QidoLevel::kInstance, filter, SearchLimits());
    if (!q.ok()) return x.Error(400, "filter: " + q.status().message());
    if (q->conditions.empty()) return x.Error(400, "filter: a filtered subscription needs a match");
  }
  Status st = x.ctx.worklist.Subscribe(*caller, *ae, uid, deletion_lock, filter);
  if (!st.ok()) return x.Fail(st);
  spdlog::info("event=ups_subscribed ae=\"{}\" scope={}", *ae,
               global ? (filtered ? "filtered_worklist" : "worklist") : "workitem");
  x.Empty(201);
}

void MethodNotAllowed(Exchange& x, const char* allow) {
  x.res.set_header("Allow", allow);
  x.Error(405, "method " + std::string(x.req.method.size() > 16 ? "?" : x.req.method) +
                   " not allowed here; allowed: " + allow);
}

void Dispatch(Exchange& x, const std::string& body) {
  const std::vector<std::string> seg = SplitPath(x.req.path);  // dicom-web, workitems, ...
  const std::string& m = x.req.method;
  const bool get = m == "GET" || m == "HEAD";
  if (seg.size() == 2) {
    if (get) return Search(x);
    if (m == "POST") {
      x.transaction = "create";
      if (!Authenticate(x, /*read_only=*/false)) return;
      return x.Error(403,
                     "workitems are created by Conduit only: it is the Task Requester of its "
                     "worklists (IHE AIW-I RAD-80 is not offered)");
    }
    return MethodNotAllowed(x, "GET, HEAD");
  }
  const std::string& uid = seg[2];
  if (!IsDicomUidAsFound(uid)) return x.Error(400, "the workitem UID in the path is not a UID");
  if (seg.size() == 3) {
    if (get) return Retrieve(x, uid);
    if (m == "POST") return Update(x, uid, body);
    return MethodNotAllowed(x, "GET, HEAD, POST");
  }
  if (seg.size() == 4 && seg[3] == "state") {
    if (m == "PUT") return ChangeState(x, uid, body);
    return MethodNotAllowed(x, "PUT");
  }
  if (seg.size() == 4 && seg[3] == "cancelrequest") {
    if (m == "POST") return RequestCancel(x, uid, body);
    return MethodNotAllowed(x, "POST");
  }
  if (seg.size() == 5 && seg[3] == "subscribers") {
    if (m == "POST" || m == "DELETE") return Subscription(x, uid, seg[4], /*suspend=*/false);
    return MethodNotAllowed(x, "POST, DELETE");
  }
  if (seg.size() == 6 && seg[3] == "subscribers" && seg[5] == "suspend") {
    if (m == "POST") return Subscription(x, uid, seg[4], /*suspend=*/true);
    return MethodNotAllowed(x, "POST");
  }
  x.Error(404, "no such resource");
}

}  // namespace

bool IsUpsRsPath(std::string_view path) {
  return path == kRoot || (path.starts_with(kRoot) && path[kRoot.size()] == '/');
}

void DescribeUpsRsMetrics(Metrics& metrics) {
  metrics.Describe("conduit_ups_rs_requests_total", "counter",
                   "UPS-RS requests by transaction and HTTP status.");
}

void ServeUpsRs(UpsRsContext& context, const httplib::Request& req, httplib::Response& res,
                const httplib::ContentReader* reader) {
  Exchange x{context, req, res};
  std::string body;
  bool readable = true;
  if (reader != nullptr) {
    Result<std::string> read = ReadSmallBody(req, *reader, kMaxBodyBytes);
    if (read.ok()) {
      body = std::move(*read);
    } else {
      readable = false;
      res.set_header("Connection", "close");  // the rest of the body is unread
      const bool too_large = read.status().code() == StatusCode::kResourceExhausted;
      x.Error(too_large ? 413 : 400, read.status().message());
    }
  }
  if (readable) Dispatch(x, body);
  context.metrics.Add(
      "conduit_ups_rs_requests_total", 1,
      "transaction=\"" + x.transaction + "\",code=\"" + std::to_string(res.status) + "\"");
}

bool UpsFilterMatches(const std::string& filter, const std::string& dataset) {
  Result<QidoQuery> q = ParseQidoQuery(QidoLevel::kInstance, filter, SearchLimits());
  if (!q.ok()) return false;
  json ds = json::parse(dataset, nullptr, /*allow_exceptions=*/false);
  if (!ds.is_object()) return false;
  return MatchesDataset(*q, ds);
}

}  // namespace conduit
