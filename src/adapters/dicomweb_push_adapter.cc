// The DICOMweb push adapter: STOW-RS of the study to the tool, results back by STOW-RS to
// the gateway or, for tools that cannot, by polling (QIDO-RS, WADO-RS). The protocol is in
// dicomweb_push_adapter.h.
#include "adapters/dicomweb_push_adapter.h"

#include <httplib.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "adapters/tool_adapter.h"
#include "core/http_url.h"
#include "core/text_file.h"
#include "dicom/dicomweb_http.h"
#include "dicom/http_tls.h"
#include "dicom/instance_meta.h"
#include "dicom/stow_response.h"
#include "dicom/stow_sender.h"
#include "store/index.h"

namespace conduit {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using std::chrono::steady_clock;

// Jobs whose sent-instance lists PollResults keeps (reading them again costs a header read
// per input).
constexpr size_t kPollCacheJobs = 64;

const char* kDicomJson = "application/dicom+json";
const char* kTlsSetting = "dicomweb.tls";

int64_t MillisSince(steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(steady_clock::now() - start).count();
}

// Appends adapter notes to the job log (one line each); the log is for people, so a failure
// to write is ignored. Never given UIDs or tokens.
class JobLog {
 public:
  explicit JobLog(const fs::path& file) {
    if (file.empty()) return;
    std::error_code ec;
    if (file.has_parent_path()) fs::create_directories(file.parent_path(), ec);
    out_.open(file, std::ios::app);
  }
  void Note(const std::string& text) {
    if (!out_.is_open()) return;
    out_ << "conduit: " << text << '\n';
    out_.flush();
  }

 private:
  std::ofstream out_;
};

// What the adapter sent for a job: the study (as sent) and its instances.
struct SentStudy {
  std::string study_uid;
  std::set<std::string> sop_instance_uids;
};

class DicomwebPushAdapter final : public ToolAdapter {
 public:
  DicomwebPushAdapter(ToolConfig tool, std::string results_base_url, const JobTokens& tokens)
      : tool_(std::move(tool)), results_base_url_(std::move(results_base_url)), tokens_(tokens) {
    while (!results_base_url_.empty() && results_base_url_.back() == '/') {
      results_base_url_.pop_back();
    }
  }

  Result<DispatchOutcome> Dispatch(const DispatchRequest& request) override {
    const std::string what = What(request);
    if (request.inputs.empty()) return InvalidArgument(what + ": no input instances to send");
    if (results_base_url_.empty() && tool_.poll_interval.count() <= 0) {
      return FailedPrecondition(what +
                                ": the tool cannot be told where to store its results: "
                                "set http.public_url, or dicomweb.poll_interval");
    }
    ASSIGN_OR_RETURN(HttpUrl url, ToolUrl(what));
    ASSIGN_OR_RETURN(std::optional<std::string> token, AuthToken(what));

    std::vector<uint64_t> sizes;
    sizes.reserve(request.inputs.size());
    for (const fs::path& input : request.inputs) {
      std::error_code ec;
      const uint64_t size = fs::file_size(input, ec);
      if (ec) return ErrnoStatus(ec.value(), what + ": size of input " + input.string());
      sizes.push_back(size);
    }
    const std::vector<StowChunk> chunks = PlanStowChunks(sizes, tool_.chunk_bytes);

    JobLog log(request.log_file);
    log.Note("dicomweb: sending " + std::to_string(request.inputs.size()) +
             " instance(s) to tool " + tool_.name + " at " + url.ToString() + " in " +
             std::to_string(chunks.size()) + " STOW-RS request(s), timeout " +
             std::to_string(tool_.timeout.count()) + " ms");
    ASSIGN_OR_RETURN(std::unique_ptr<httplib::Client> made, Client(url, what));
    httplib::Client& client = *made;
    HttpWatchdog watchdog(client, request.stop, steady_clock::now() + tool_.timeout);
    ConfigureHttpClient(client, token, watchdog);

    const std::string job = std::to_string(request.job.id.value);
    for (size_t i = 0; i < chunks.size(); ++i) {
      const std::string chunk_name =
          "STOW-RS " + std::to_string(i + 1) + "/" + std::to_string(chunks.size());
      if (watchdog.Cancelled()) return Cancelled(watchdog, what + ": " + chunk_name, log);
      StowBody body(request.inputs, sizes, chunks[i], watchdog);
      httplib::Headers headers = {
          {"Accept", kDicomJson},
          {"Conduit-Job", job},
          {"Conduit-Chunk", std::to_string(i + 1) + "/" + std::to_string(chunks.size())},
          {"Conduit-Results-Token", tokens_.TokenFor(request.job.id)},
      };
      if (!results_base_url_.empty()) {
        headers.emplace("Conduit-Results-URL", results_base_url_ + "/dicom-web/jobs/" + job);
      }
      const auto started = steady_clock::now();
      httplib::Result res = client.Post(
          url.path + "/studies", headers, static_cast<size_t>(body.length()),
          [&body](size_t offset, size_t, httplib::DataSink& sink) {
            return body.Provide(offset, sink);
          },
          body.content_type());
      const std::string sent = chunk_name + ": " + std::to_string(chunks[i].end - chunks[i].begin) +
                               " instance(s), " + std::to_string(body.length()) + " bytes";
      if (!res) {
        if (!body.error().ok() && !watchdog.Cancelled()) {
          log.Note("dicomweb: " + sent + ": " + body.error().message());
          return body.error().WithContext(what);
        }
        return TransportError(res.error(), client, url, watchdog, what + ": " + chunk_name, sent,
                              started, log);
      }
      Status st = CheckStowResponse(*res, chunks[i].end - chunks[i].begin, what + ": " + chunk_name,
                                    sent, started, log);
      if (!st.ok()) return st;
    }

    spdlog::info("{}: sent {} instance(s) of study {} in {} STOW-RS request(s)", what,
                 request.inputs.size(), StudyRef(request.job.study_uid), chunks.size());
    DispatchOutcome outcome;
    outcome.results_pending = true;
    return outcome;
  }

  Result<std::vector<fs::path>> PollResults(const DispatchRequest& request) override {
    const std::string what = What(request) + ": polling";
    std::vector<fs::path> fetched;
    if (request.inputs.empty()) return fetched;
    ASSIGN_OR_RETURN(HttpUrl url, ToolUrl(what));
    ASSIGN_OR_RETURN(std::optional<std::string> token, AuthToken(what));
    ASSIGN_OR_RETURN(std::shared_ptr<const SentStudy> sent, SentStudyOf(request, what));
    if (!IsUidText(sent->study_uid))
      return InvalidArgument(what + ": the inputs' study UID is odd");

    JobLog log(request.log_file);
    ASSIGN_OR_RETURN(std::unique_ptr<httplib::Client> made, Client(url, what));
    httplib::Client& client = *made;
    HttpWatchdog watchdog(client, request.stop, steady_clock::now() + tool_.timeout);
    ConfigureHttpClient(client, token, watchdog);

    const std::string study_path = url.path + "/studies/" + sent->study_uid;
    auto started = steady_clock::now();
    httplib::Result res = client.Get(study_path + "/instances?includefield=0020000E",
                                     httplib::Headers{{"Accept", kDicomJson}});
    if (!res) {
      return TransportError(res.error(), client, url, watchdog, what + ": QIDO-RS", "QIDO-RS",
                            started, log);
    }
    if (res->status == 204 || res->status == 404) {
      log.Note("dicomweb: poll QIDO-RS: HTTP " + std::to_string(res->status) + ", no instances, " +
               std::to_string(MillisSince(started)) + " ms");
      return fetched;
    }
    if (res->status != 200) {
      Status st = HttpStatusError(res->status, what + ": QIDO-RS");
      log.Note("dicomweb: poll QIDO-RS: HTTP " + std::to_string(res->status));
      return st;
    }
    json listing = json::parse(res->body, nullptr, /*allow_exceptions=*/false);
    if (!listing.is_array()) {
      log.Note("dicomweb: poll QIDO-RS: HTTP 200 but not a DICOM JSON array");
      return InvalidArgument(what + ": QIDO-RS answer is not a DICOM JSON array");
    }

    std::set<std::string> known;
    for (const SopInstanceUid& uid : request.received_results) known.insert(uid.str());
    struct Wanted {
      std::string series;
      std::string sop;
    };
    std::vector<Wanted> wanted;
    size_t unusable = 0;
    for (const json& item : listing) {
      if (!item.is_object()) {
        ++unusable;
        continue;
      }
      const std::string sop = DicomJsonString(item, "00080018");
      const std::string series = DicomJsonString(item, "0020000E");
      if (sent->sop_instance_uids.count(sop) || known.count(sop)) continue;
      if (!IsUidText(sop) || !IsUidText(series)) {
        ++unusable;
        continue;
      }
      known.insert(sop);
      wanted.push_back({series, sop});
    }
    log.Note("dicomweb: poll QIDO-RS: HTTP 200, " + std::to_string(listing.size()) +
             " instance(s), " + std::to_string(wanted.size()) + " new result(s)" +
             (unusable ? ", " + std::to_string(unusable) + " without usable UIDs" : "") + ", " +
             std::to_string(MillisSince(started)) + " ms");
    if (wanted.empty()) return fetched;

    const fs::path dir = request.work_dir / "polled";
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return ErrnoStatus(ec.value(), what + ": create " + dir.string());
    Status first_error;
    for (const Wanted& w : wanted) {
      if (watchdog.Cancelled()) {
        first_error = Cancelled(watchdog, what + ": WADO-RS", log);
        break;
      }
      auto file =
          Retrieve(client, url, watchdog,
                   study_path + "/series/" + w.series + "/instances/" + w.sop, dir, what, log);
      if (!file.ok()) {
        if (first_error.ok()) first_error = file.status();
        if (IsRetryable(file.status().code())) break;  // the tool is in trouble: later
        continue;
      }
      fetched.insert(fetched.end(), file->begin(), file->end());
    }
    if (fetched.empty() && !first_error.ok()) return first_error;
    if (!first_error.ok()) {
      spdlog::warn("{}: fetched {} result(s); the rest next time ({})", what, fetched.size(),
                   StatusCodeName(first_error.code()));
    }
    return fetched;
  }

 private:
  std::string What(const DispatchRequest& request) const {
    return "tool " + tool_.name + " job " + std::to_string(request.job.id.value);
  }

  Result<HttpUrl> ToolUrl(const std::string& what) const {
    Result<HttpUrl> url = ParseHttpUrl(tool_.url);
    if (!url.ok()) return FailedPrecondition(what + ": dicomweb.url: " + url.status().message());
    return url;
  }

  // A client for the tool, with the trust's TLS settings for an https url.
  Result<std::unique_ptr<httplib::Client>> Client(const HttpUrl& url,
                                                  const std::string& what) const {
    Result<std::unique_ptr<httplib::Client>> client = MakeHttpClient(url, tool_.tls, kTlsSetting);
    if (!client.ok()) return client.status().WithContext(what);
    return client;
  }

  // The bearer token, read at each use so that a rotated token takes effect at once.
  Result<std::optional<std::string>> AuthToken(const std::string& what) const {
    return ReadBearerTokenFile(tool_.auth_token_file, what, "dicomweb.auth_token_file");
  }

  Status Cancelled(const HttpWatchdog& watchdog, const std::string& what, JobLog& log) const {
    if (watchdog.Stopping()) {
      log.Note("dicomweb: stopped: the gateway is shutting down");
      return Unavailable(what + ": stopped because the gateway is shutting down");
    }
    log.Note("dicomweb: timed out after " + std::to_string(tool_.timeout.count()) + " ms");
    return DeadlineExceeded(what + ": no answer within the tool's timeout of " +
                            std::to_string(tool_.timeout.count()) + " ms");
  }

  Status TransportError(httplib::Error error, const httplib::Client& client, const HttpUrl& url,
                        const HttpWatchdog& watchdog, const std::string& what,
                        const std::string& sent, steady_clock::time_point started,
                        JobLog& log) const {
    if (watchdog.Cancelled()) return Cancelled(watchdog, what, log);
    const std::string reason = httplib::to_string(error);
    if (const std::string tls = DescribeTlsError(error, client, url, kTlsSetting); !tls.empty()) {
      log.Note("dicomweb: " + sent + ": no response (" + reason + ": " + tls + ")");
      return Unavailable(what + ": " + tool_.url + ": " + tls);
    }
    log.Note("dicomweb: " + sent + ": no response (" + reason + ") after " +
             std::to_string(MillisSince(started)) + " ms");
    if (error == httplib::Error::ConnectionTimeout) {
      return DeadlineExceeded(what + ": connecting to " + tool_.url + " timed out");
    }
    return Unavailable(what + ": " + tool_.url + ": " + reason);
  }

  // Maps an HTTP status that is not success to a Status (see the header).
  static Status HttpStatusError(int status, const std::string& what) {
    const std::string http = "HTTP " + std::to_string(status);
    if (status == 408) return DeadlineExceeded(what + ": the tool timed out (" + http + ")");
    if (status == 429) return Unavailable(what + ": the tool is busy (" + http + ")");
    if (status >= 500) return Unavailable(what + ": the tool failed (" + http + ")");
    if (status == 401 || status == 403) {
      return InvalidArgument(what + ": the tool refused our credentials (" + http +
                             "): check dicomweb.auth_token_file");
    }
    if (status == 413) {
      return InvalidArgument(what + ": the request is too large for the tool (" + http +
                             "): lower dicomweb.chunk_bytes");
    }
    if (status >= 300 && status < 400) {
      return InvalidArgument(what + ": the tool redirects (" + http +
                             "); redirects are not followed: configure the final URL");
    }
    return InvalidArgument(what + ": the tool refused the request (" + http + ")");
  }

  Status CheckStowResponse(const httplib::Response& res, size_t instances, const std::string& what,
                           const std::string& sent, steady_clock::time_point started,
                           JobLog& log) const {
    const std::string http = "HTTP " + std::to_string(res.status);
    const std::string took = ", " + std::to_string(MillisSince(started)) + " ms";
    const bool parsed_status = res.status == 200 || res.status == 202 || res.status == 409;
    if (!parsed_status && !(res.status >= 200 && res.status < 300)) {
      log.Note("dicomweb: " + sent + ": " + http + took);
      return HttpStatusError(res.status, what);
    }
    StowResponse answer;
    if (parsed_status) {
      Result<StowResponse> parsed = ParseStowResponse(res.body);
      if (parsed.ok()) {
        answer = *parsed;
      } else if (res.status != 200) {
        log.Note("dicomweb: " + sent + ": " + http + " with an unreadable body" + took);
        return InvalidArgument(what + ": the tool answered " + http +
                               " without a readable DICOM JSON response");
      }
    }
    const size_t duplicates = answer.failure_reasons.count(kDuplicateSopInstance)
                                  ? answer.failure_reasons.at(kDuplicateSopInstance)
                                  : 0;
    const size_t failed = answer.failed - duplicates;
    log.Note("dicomweb: " + sent + ": " + http + ", " + std::to_string(answer.stored) +
             " stored, " + std::to_string(answer.failed) + " failed" +
             (duplicates ? " (" + std::to_string(duplicates) + " already held)" : "") + took);
    if (failed == 0 && res.status != 409) return Status::Ok();
    if (failed == 0 && duplicates > 0) return Status::Ok();  // 409: all were already there
    if (failed == 0) {
      return InvalidArgument(what + ": the tool refused the request (" + http +
                             ") without saying which instances failed");
    }
    std::string reasons;
    bool all_resources = true;
    for (const auto& [reason, count] : answer.failure_reasons) {
      if (reason == kDuplicateSopInstance) continue;
      if ((reason & 0xFF00) != 0xA700) all_resources = false;
      reasons += (reasons.empty() ? "" : ", ") + DescribeFailureReason(reason) + " x" +
                 std::to_string(count);
    }
    const std::string message = what + ": the tool refused " + std::to_string(failed) + " of " +
                                std::to_string(instances) + " instance(s) (" + http +
                                "; FailureReason " + reasons + ")";
    spdlog::warn("{}", message);
    if (all_resources) return ResourceExhausted(message);
    return InvalidArgument(message);
  }

  // Fetches one instance by WADO-RS into `dir`; the files written (one per part).
  Result<std::vector<fs::path>> Retrieve(httplib::Client& client, const HttpUrl& url,
                                         const HttpWatchdog& watchdog, const std::string& path,
                                         const fs::path& dir, const std::string& what,
                                         JobLog& log) {
    const auto started = steady_clock::now();
    WadoFetch fetch = FetchDicomParts(client, path, what, [&] {
      return dir / ("result-" + std::to_string(++file_counter_) + "-" + std::to_string(::getpid()) +
                    ".dcm");
    });
    if (fetch.http_status != 0 && fetch.http_status != 200) {
      log.Note("dicomweb: poll WADO-RS: HTTP " + std::to_string(fetch.http_status));
      return HttpStatusError(fetch.http_status, what + ": WADO-RS");
    }
    if (!fetch.error.ok()) {
      log.Note(fetch.malformed
                   ? std::string("dicomweb: poll WADO-RS: malformed multipart body")
                   : "dicomweb: poll WADO-RS: " + std::string(StatusCodeName(fetch.error.code())));
      return fetch.error;
    }
    if (fetch.transport != httplib::Error::Success) {
      return TransportError(fetch.transport, client, url, watchdog, what + ": WADO-RS",
                            "poll WADO-RS", started, log);
    }
    log.Note("dicomweb: poll WADO-RS: HTTP 200, " + std::to_string(fetch.files.size()) +
             " part(s), " + std::to_string(fetch.bytes) + " bytes, " +
             std::to_string(MillisSince(started)) + " ms");
    return fetch.files;
  }

  // The study UID and instances as sent for `request`, read from its inputs once per job.
  Result<std::shared_ptr<const SentStudy>> SentStudyOf(const DispatchRequest& request,
                                                       const std::string& what) {
    const int64_t job = request.job.id.value;
    {
      std::lock_guard lock(mu_);
      for (const auto& [id, count, sent] : sent_cache_) {
        if (id == job && count == request.inputs.size()) return sent;
      }
    }
    auto sent = std::make_shared<SentStudy>();
    for (const fs::path& input : request.inputs) {
      Result<InstanceMeta> meta = ReadInstanceMeta(input);
      if (!meta.ok()) return meta.status().WithContext(what + ": reading an input");
      if (sent->study_uid.empty()) sent->study_uid = meta->study_uid.str();
      sent->sop_instance_uids.insert(meta->sop_instance_uid.str());
    }
    std::lock_guard lock(mu_);
    std::erase_if(sent_cache_, [&](const auto& entry) { return std::get<0>(entry) == job; });
    sent_cache_.emplace_back(job, request.inputs.size(), sent);
    if (sent_cache_.size() > kPollCacheJobs) sent_cache_.pop_front();
    return std::shared_ptr<const SentStudy>(sent);
  }

  const ToolConfig tool_;
  std::string results_base_url_;
  const JobTokens& tokens_;
  std::mutex mu_;
  // (job id, input count, what was sent), oldest first.
  std::deque<std::tuple<int64_t, size_t, std::shared_ptr<const SentStudy>>> sent_cache_;
  std::atomic<uint64_t> file_counter_{0};
};

}  // namespace

std::unique_ptr<ToolAdapter> MakeDicomwebPushAdapter(const ToolConfig& tool,
                                                     std::string results_base_url,
                                                     const JobTokens& tokens) {
  return std::make_unique<DicomwebPushAdapter>(tool, std::move(results_base_url), tokens);
}

}  // namespace conduit
