// Routing of the DICOMweb read side: which resource a path names, where its instances come
// from (the index and spool, or a job's de-identified folder behind its bearer token), and the
// answers common to all (errors, Accept checks). Logs name route patterns, never UIDs.
#include "http/dicomweb_read.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>

#include "core/dicom_uid.h"
#include "http/client_address.h"
#include "http/dicomweb_read_internal.h"
#include "http/dicomweb_request.h"
#include "http/multipart.h"
#include "http/route_labels.h"

namespace conduit {
namespace {

constexpr std::string_view kPrefix = "/dicom-web";

std::vector<std::string> Segments(std::string_view path) {
  std::vector<std::string> out;
  while (!path.empty()) {
    if (path.front() == '/') {
      path.remove_prefix(1);
      continue;
    }
    const size_t slash = path.find('/');
    out.emplace_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash);
  }
  return out;
}

// What a path below /studies/{study} names.
enum class Resource {
  kRetrieve,
  kMetadata,
  kFrames,
  kRendered,
  kThumbnail,
  kSearchSeries,
  kSearchInstances
};
struct Target {
  StudyUid study;
  SeriesUid series;         // empty: the whole study
  SopInstanceUid instance;  // empty: the whole series
  Resource resource = Resource::kRetrieve;
  std::string frames;   // kFrames: the frame list; kRendered, kThumbnail: "" or a frame list
  std::string pattern;  // for logs: the route with placeholders
};

// Parses segments {"studies", s, ...}; nullopt if they name no read resource. Sets
// `bad_uid` when the shape is right but a UID is malformed.
std::optional<Target> ParseTarget(const std::vector<std::string>& seg, size_t from, bool& bad_uid) {
  const size_t n = seg.size() - from;
  auto at = [&](size_t i) -> const std::string& { return seg[from + i]; };
  if (n < 2 || at(0) != "studies") return std::nullopt;
  Target t;
  t.study = StudyUid(at(1));
  t.pattern = "/studies/{study}";
  size_t i = 2;
  if (n > i + 1 && at(i) == "series") {
    t.series = SeriesUid(at(i + 1));
    t.pattern += "/series/{series}";
    i += 2;
    if (n > i + 1 && at(i) == "instances") {
      t.instance = SopInstanceUid(at(i + 1));
      t.pattern += "/instances/{instance}";
      i += 2;
    }
  }
  if (n == i) {
    t.resource = Resource::kRetrieve;
  } else if (n == i + 1 && at(i) == "metadata") {
    t.resource = Resource::kMetadata;
    t.pattern += "/metadata";
  } else if (n == i + 2 && at(i) == "frames" && !t.instance.empty()) {
    t.resource = Resource::kFrames;
    t.frames = at(i + 1);
    t.pattern += "/frames/{frames}";
  } else if (n == i + 1 && at(i) == "rendered" && !t.instance.empty()) {
    t.resource = Resource::kRendered;
    t.pattern += "/rendered";
  } else if (n == i + 1 && at(i) == "thumbnail") {
    t.resource = Resource::kThumbnail;
    t.pattern += "/thumbnail";
  } else if (n == i + 3 && at(i) == "frames" && !t.instance.empty() &&
             (at(i + 2) == "rendered" || at(i + 2) == "thumbnail")) {
    t.resource = at(i + 2) == "rendered" ? Resource::kRendered : Resource::kThumbnail;
    t.frames = at(i + 1);
    t.pattern += "/frames/{frames}/" + at(i + 2);
  } else if (n == i + 1 && at(i) == "series" && t.series.empty()) {
    t.resource = Resource::kSearchSeries;
    t.pattern += "/series";
  } else if (n == i + 1 && at(i) == "instances" && t.instance.empty()) {
    t.resource = Resource::kSearchInstances;
    t.pattern += "/instances";
  } else {
    return std::nullopt;
  }
  bad_uid = !IsDicomUidAsFound(t.study.str()) ||
            (!t.series.empty() && !IsDicomUidAsFound(t.series.str())) ||
            (!t.instance.empty() && !IsDicomUidAsFound(t.instance.str()));
  return t;
}

// "<base>/dicom-web", the base as RequestBaseUrl says.
std::string BaseUrl(const DicomwebContext& ctx, const httplib::Request& req) {
  return RequestBaseUrl(ctx.config, req) + std::string(kPrefix);
}

const char* ResourceName(Resource resource) {
  switch (resource) {
    case Resource::kRetrieve:
      return "instances";
    case Resource::kMetadata:
      return "metadata";
    case Resource::kFrames:
      return "frames";
    case Resource::kRendered:
      return "rendered";
    case Resource::kThumbnail:
      return "thumbnail";
    case Resource::kSearchSeries:
      return "series";
    case Resource::kSearchInstances:
      return "instances";
  }
  return "instances";
}

// Serves a retrieval of `t` over `instances` (already narrowed to the target). Returns how
// many instances the answer draws on (0 when it is an error).
size_t Retrieve(const Target& t, std::vector<StoredInstance> instances, const httplib::Request& req,
                httplib::Response& res) {
  if (instances.empty()) {
    SendDicomwebError(res, 404, "no such study, series or instance");
    return 0;
  }
  const size_t count = instances.size();
  switch (t.resource) {
    case Resource::kRetrieve:
      RetrieveInstances(std::move(instances), req, res);
      return count;
    case Resource::kMetadata:
      RetrieveMetadata(std::move(instances), req, res);
      return count;
    case Resource::kFrames:
      RetrieveFrames(instances.front(), t.frames, req, res);
      return 1;
    case Resource::kRendered:
      RetrieveRendered(instances.front(), t.frames, /*thumbnail=*/false, req, res);
      return 1;
    case Resource::kThumbnail:
      // A study's or series' thumbnail is its middle instance's (series, instance order).
      RetrieveRendered(instances[(instances.size() - 1) / 2], t.frames, /*thumbnail=*/true, req,
                       res);
      return 1;
    case Resource::kSearchSeries:
    case Resource::kSearchInstances:
      break;
  }
  SendDicomwebError(res, 404, "no such resource");
  return 0;
}

// Audits a read that was answered with success (ReadAudit throttles). HEAD discloses nothing.
void AuditRead(DicomwebContext& ctx, const httplib::Request& req, const httplib::Response& res,
               DicomwebRead read) {
  if (req.method != "GET" || res.status < 200 || res.status > 299) return;
  ClientAddress client = ClientOf(req, ctx.config.http.trusted_proxies);
  read.peer = std::move(client.address);
  read.via = std::move(client.via);
  ctx.read_audit->Record(read, ctx.index, ctx.clock.Now());
}

const char* LevelResource(QidoLevel level) {
  return level == QidoLevel::kStudy    ? "studies"
         : level == QidoLevel::kSeries ? "series"
                                       : "instances";
}

// Searches the index and audits the answer.
void SearchAndAudit(DicomwebContext& ctx, const httplib::Request& req, httplib::Response& res,
                    QidoLevel level, const std::string& base_url, const StudyUid& study,
                    const SeriesUid& series, const std::string& credential) {
  std::optional<SearchAnswer> answer = SearchIndex(ctx, req, res, level, base_url, study, series);
  if (!answer) return;
  AuditRead(ctx, req, res,
            {.action = "query",
             .resource = LevelResource(level),
             .credential = credential,
             .peer = {},
             .via = {},
             .study = study,
             .job = std::nullopt,
             .returned = answer->returned,
             .keys = std::move(answer->keys)});
}

// The instances of `t` in the index, in series and instance number order.
Result<std::vector<StoredInstance>> IndexedInstances(DicomwebContext& ctx, const Target& t) {
  std::vector<StoredInstance> out;
  if (!t.instance.empty()) {
    ASSIGN_OR_RETURN(std::optional<InstanceRecord> found, ctx.index.FindInstance(t.instance));
    if (found && found->study_uid == t.study && found->series_uid == t.series) {
      out.push_back({ctx.spool.PathOf(found->spool_key), found->sop_instance_uid,
                     found->transfer_syntax_uid});
    }
    return out;
  }
  std::vector<SeriesUid> series;
  if (!t.series.empty()) series.push_back(t.series);
  ASSIGN_OR_RETURN(std::vector<InstanceRecord> records, ctx.index.ListInstances(t.study, series));
  for (const InstanceRecord& r : records) {
    out.push_back({ctx.spool.PathOf(r.spool_key), r.sop_instance_uid, r.transfer_syntax_uid});
  }
  return out;
}

void ServeIndexed(DicomwebContext& ctx, const std::vector<std::string>& seg,
                  const httplib::Request& req, httplib::Response& res, std::string& pattern,
                  OriginalsOpenedBy opened_by) {
  const std::string base = BaseUrl(ctx, req);
  const std::string credential = opened_by == OriginalsOpenedBy::kApiToken ? "api" : "none";
  if (seg.size() == 2 && (seg[1] == "studies" || seg[1] == "series" || seg[1] == "instances")) {
    pattern = "/" + seg[1];
    const QidoLevel level = seg[1] == "studies"  ? QidoLevel::kStudy
                            : seg[1] == "series" ? QidoLevel::kSeries
                                                 : QidoLevel::kInstance;
    SearchAndAudit(ctx, req, res, level, base, StudyUid(), SeriesUid(), credential);
    return;
  }
  bool bad_uid = false;
  std::optional<Target> t = ParseTarget(seg, 1, bad_uid);
  if (!t) {
    SendDicomwebError(res, 404, "no such resource");
    return;
  }
  pattern = t->pattern;
  if (bad_uid) {
    SendDicomwebError(res, 400, "a UID in the path is not a valid UID");
    return;
  }
  if (t->resource == Resource::kSearchSeries) {
    SearchAndAudit(ctx, req, res, QidoLevel::kSeries, base, t->study, SeriesUid(), credential);
    return;
  }
  if (t->resource == Resource::kSearchInstances) {
    SearchAndAudit(ctx, req, res, QidoLevel::kInstance, base, t->study, t->series, credential);
    return;
  }
  Result<std::vector<StoredInstance>> instances = IndexedInstances(ctx, *t);
  if (!instances.ok()) {
    spdlog::warn("dicomweb: GET {} failed: {}", pattern, StatusCodeName(instances.status().code()));
    SendDicomwebError(res, 500, "retrieval failed");
    return;
  }
  const size_t returned = Retrieve(*t, std::move(instances).value(), req, res);
  AuditRead(ctx, req, res,
            {.action = "retrieve",
             .resource = ResourceName(t->resource),
             .credential = credential,
             .peer = {},
             .via = {},
             .study = t->study,
             .job = std::nullopt,
             .returned = returned,
             .keys = {}});
}

// /dicom-web/jobs/{job}/studies/...: the de-identified files the job engine prepared for a
// job's tool, to whoever holds the job's token. Never the originals.
void ServeJob(DicomwebContext& ctx, const std::vector<std::string>& seg,
              const httplib::Request& req, httplib::Response& res, std::string& pattern) {
  pattern = "/jobs/{job}";
  std::optional<JobId> job = seg.size() >= 3 ? ParseJobIdSegment(seg[2]) : std::nullopt;
  const std::string token = BearerToken(req);
  if (!job || !MayActOnJob(ctx, *job, token)) {
    const ClientAddress client = ClientOf(req, ctx.config.http.trusted_proxies);
    ctx.auth_refusals->Report(
        {.action = "job_read_refused",
         .actor = "DICOMWEB",
         .guard = "job",
         .peer = client.address,
         .via = client.via,
         .method = MethodLabel(req.method),
         .route = DicomwebRouteLabel(req.path),
         .reason = token.empty() ? "no bearer token" : "wrong token for this job",
         .kind = token.empty() ? AuthRefusalKind::kMissing : AuthRefusalKind::kInvalid,
         .job = job,
         .detail = {{"protocol", "DICOMweb"}}},
        ctx.index, ctx.metrics, ctx.clock.Now());
    res.set_header("WWW-Authenticate", token.empty()
                                           ? "Bearer realm=\"conduit\""
                                           : "Bearer realm=\"conduit\", error=\"invalid_token\"");
    SendDicomwebError(res, 401, "a valid bearer token for this job is required");
    return;
  }
  bool bad_uid = false;
  std::optional<Target> t = ParseTarget(seg, 3, bad_uid);
  if (!t || t->resource == Resource::kSearchSeries) {
    SendDicomwebError(res, 404, "no such resource");
    return;
  }
  pattern += t->pattern;
  if (bad_uid) {
    SendDicomwebError(res, 400, "a UID in the path is not a valid UID");
    return;
  }
  // Spool layout (spool.h): jobs/<job id>/ is the job's work folder; the job engine puts the
  // de-identified inputs in its deidentified/ folder.
  const std::filesystem::path dir =
      ctx.spool.root() / "jobs" / std::to_string(job->value) / "deidentified";
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    SendDicomwebError(res, 404, "this job has no de-identified instances");
    return;
  }
  MetaScan scan = ScanInstanceMetas(dir);
  if (!scan.errors.empty()) {
    spdlog::warn("dicomweb: job {}: {} unreadable file(s) in its de-identified folder", job->value,
                 scan.errors.size());
  }
  std::sort(scan.instances.begin(), scan.instances.end(), [](const auto& a, const auto& b) {
    return std::tie(a.second.series_number, a.second.series_uid, a.second.instance_number,
                    a.second.sop_instance_uid) <
           std::tie(b.second.series_number, b.second.series_uid, b.second.instance_number,
                    b.second.sop_instance_uid);
  });
  if (t->resource == Resource::kSearchInstances) {
    std::optional<SearchAnswer> answer =
        SearchFiles(scan.instances, req, res,
                    BaseUrl(ctx, req) + "/jobs/" + std::to_string(job->value), t->study, t->series);
    if (answer) {
      AuditRead(ctx, req, res,
                {.action = "query",
                 .resource = "instances",
                 .credential = "job",
                 .peer = {},
                 .via = {},
                 .study = StudyUid(),
                 .job = job,
                 .returned = answer->returned,
                 .keys = std::move(answer->keys)});
    }
    return;
  }
  std::vector<StoredInstance> instances;
  for (const auto& [path, meta] : scan.instances) {
    if (meta.study_uid != t->study) continue;
    if (!t->series.empty() && meta.series_uid != t->series) continue;
    if (!t->instance.empty() && meta.sop_instance_uid != t->instance) continue;
    instances.push_back({path, meta.sop_instance_uid, meta.transfer_syntax_uid});
  }
  const size_t returned = Retrieve(*t, std::move(instances), req, res);
  AuditRead(ctx, req, res,
            {.action = "retrieve",
             .resource = ResourceName(t->resource),
             .credential = "job",
             .peer = {},
             .via = {},
             .study = StudyUid(),  // the job's view holds pseudonymised UIDs: its job names it
             .job = job,
             .returned = returned,
             .keys = {}});
}

}  // namespace

void SendDicomwebError(httplib::Response& res, int status, std::string_view message) {
  res.status = status;
  res.set_content(nlohmann::json{{"error", std::string(message)}}.dump(
                      -1, ' ', false, nlohmann::json::error_handler_t::replace),
                  "application/json");
}

std::string_view QueryStringOf(const httplib::Request& req) {
  std::string_view target = req.target;
  const size_t q = target.find('?');
  if (q == std::string_view::npos) return {};
  target.remove_prefix(q + 1);
  const size_t fragment = target.find('#');
  return target.substr(0, fragment);
}

bool AcceptsDicomJson(std::string_view accept) {
  if (accept.find_first_not_of(" \t") == std::string_view::npos) return true;
  size_t start = 0;
  while (start <= accept.size()) {
    size_t comma = accept.find(',', start);
    if (comma == std::string_view::npos) comma = accept.size();
    Result<MediaType> type = ParseMediaType(accept.substr(start, comma - start));
    start = comma + 1;
    if (!type.ok()) continue;
    if (auto q = type->Parameter("q"); q && q->find_first_not_of("0.") == std::string_view::npos) {
      continue;
    }
    if ((type->type == "*" && type->subtype == "*") ||
        (type->type == "application" &&
         (type->subtype == "*" || type->subtype == "dicom+json" || type->subtype == "json"))) {
      return true;
    }
  }
  return false;
}

void ServeDicomwebRead(DicomwebContext& context, const httplib::Request& req,
                       httplib::Response& res, OriginalsOpenedBy opened_by) {
  std::string pattern = "(unknown)";
  std::string_view path = req.path;
  const std::vector<std::string> seg = Segments(path);
  if (seg.empty() || "/" + seg[0] != kPrefix || seg.size() < 2) {
    SendDicomwebError(res, 404, "no such resource");
  } else if (seg[1] == "jobs") {
    ServeJob(context, seg, req, res, pattern);
  } else {
    ServeIndexed(context, seg, req, res, pattern, opened_by);
  }
  context.metrics.Add("conduit_dicomweb_read_requests_total", 1,
                      "status=\"" + std::to_string(res.status) + "\"");
  spdlog::debug("dicomweb: {} {}{} -> {}", req.method, kPrefix, pattern, res.status);
}

}  // namespace conduit
