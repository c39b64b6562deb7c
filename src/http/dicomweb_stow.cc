#include "http/dicomweb_stow.h"

#include <fcntl.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <deque>
#include <filesystem>
#include <future>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "core/dicom_uid.h"
#include "core/early_writeback.h"
#include "dicom/instance_meta.h"
#include "http/client_address.h"
#include "http/dicomweb_request.h"
#include "http/multipart.h"
#include "http/request_body.h"
#include "http/route_labels.h"

namespace conduit {
namespace {

using nlohmann::json;

// Part bytes are gathered into writes of this size: few system calls, bounded memory.
constexpr size_t kWriteBufferBytes = 1 << 20;
constexpr std::string_view kPrefix = "/dicom-web";
// The body of a request refused before reading is still read (and dropped) up to this size.
constexpr uint64_t kDiscardBytes = 1 << 20;
// Parts of one request being made durable at once (each on its own short-lived thread) while
// later parts are read.
constexpr size_t kMaxCommitsInFlight = 8;

void RemoveFile(const std::filesystem::path& file) {
  std::error_code ec;
  std::filesystem::remove(file, ec);
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Where a STOW-RS request stores: any study, one study, or one job's results.
struct StowTarget {
  std::optional<StudyUid> study;  // from the path
  std::optional<JobId> job;
  std::string job_text;  // the job segment as given (validated later)
};

// Splits the path under /dicom-web into segments; nullopt if it is not under it.
std::optional<std::vector<std::string_view>> DicomwebSegments(std::string_view path) {
  if (!path.starts_with(kPrefix)) return std::nullopt;
  path.remove_prefix(kPrefix.size());
  if (!path.empty() && path.front() != '/') return std::nullopt;
  if (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  std::vector<std::string_view> parts;
  if (path.size() <= 1) return parts;
  path.remove_prefix(1);
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    parts.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return parts;
}

// The STOW-RS target of `path`, or nullopt if it is not one (the study is not validated).
std::optional<StowTarget> ParseTarget(std::string_view path) {
  auto parts = DicomwebSegments(path);
  if (!parts) return std::nullopt;
  for (std::string_view p : *parts) {
    if (p.empty()) return std::nullopt;
  }
  StowTarget target;
  std::vector<std::string_view> rest = *parts;
  if (rest.size() >= 3 && rest[0] == "jobs" && rest[2] == "studies") {
    target.job_text = std::string(rest[1]);
    target.job = JobId{0};
    rest.erase(rest.begin(), rest.begin() + 2);
  }
  if (rest.empty() || rest[0] != "studies" || rest.size() > 2) return std::nullopt;
  if (rest.size() == 2) target.study = StudyUid(std::string(rest[1]));
  return target;
}

// The Failure Reason for a sink's error (the IngestSink contract's mapping).
uint16_t FailureReasonOf(const Status& st) {
  switch (st.code()) {
    case StatusCode::kResourceExhausted:
      return kStowOutOfResources;
    case StatusCode::kInvalidArgument:
      return kStowCannotUnderstand;
    case StatusCode::kPermissionDenied:
      return kStowNotAuthorized;
    default:
      return kStowProcessingFailure;
  }
}

void JsonError(httplib::Response& res, int status, const std::string& message) {
  res.status = status;
  res.set_content(json{{"error", message}}.dump(-1, ' ', false, json::error_handler_t::replace),
                  "application/json");
}

// True if the Accept field admits a DICOM JSON response (absent admits everything).
bool AcceptsJson(std::string_view accept) {
  if (Trim(accept).empty()) return true;
  size_t start = 0;
  while (start <= accept.size()) {
    size_t comma = accept.find(',', start);
    if (comma == std::string_view::npos) comma = accept.size();
    std::string_view item = accept.substr(start, comma - start);
    start = comma + 1;
    size_t semi = item.find(';');
    std::string media = Lower(Trim(item.substr(0, semi)));
    bool refused = false;  // q=0 means "not acceptable"
    while (semi != std::string_view::npos) {
      size_t next = item.find(';', semi + 1);
      std::string param = Lower(Trim(item.substr(semi + 1, next - semi - 1)));
      if (param.starts_with("q=")) {
        std::string_view q = std::string_view(param).substr(2);
        refused = !q.empty() && q.find_first_not_of("0.") == std::string_view::npos;
      }
      semi = next;
    }
    if (refused) continue;
    if (media == "application/dicom+json" || media == "application/json" ||
        media == "application/*" || media == "*/*") {
      return true;
    }
  }
  return false;
}

// A part's file being written: buffered writes, removed unless released.
class PartFile {
 public:
  PartFile() = default;
  ~PartFile() { Discard(); }
  PartFile(const PartFile&) = delete;
  PartFile& operator=(const PartFile&) = delete;

  Status Open(std::filesystem::path path) {
    Discard();
    if (!buffer_) buffer_.reset(new char[kWriteBufferBytes]);
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd_ < 0) return ErrnoStatus(errno, "stow part " + path.filename().string() + ": open");
    path_ = std::move(path);
    used_ = 0;
    size_ = 0;
    written_ = 0;
    writeback_.emplace(fd_);
    return Status::Ok();
  }

  Status Append(std::string_view bytes) {
    size_ += bytes.size();
    while (!bytes.empty()) {
      if (used_ == 0 && bytes.size() >= kWriteBufferBytes) return WriteAll(bytes);
      size_t n = std::min(kWriteBufferBytes - used_, bytes.size());
      std::memcpy(buffer_.get() + used_, bytes.data(), n);
      used_ += n;
      bytes.remove_prefix(n);
      if (used_ == kWriteBufferBytes) RETURN_IF_ERROR(Flush());
    }
    return Status::Ok();
  }

  // Writes what is buffered and closes; the file stays until released or discarded.
  Status Close() {
    Status st = Flush();
    if (writeback_ && st.ok()) writeback_->Finish();  // it uses fd_: before the close
    writeback_.reset();
    if (fd_ >= 0 && ::close(fd_) != 0 && st.ok()) {
      st = ErrnoStatus(errno, "stow part " + path_.filename().string() + ": close");
    }
    fd_ = -1;
    return st;
  }

  // Hands the file to its next owner: it is no longer removed here.
  std::filesystem::path Release() {
    std::filesystem::path p = std::move(path_);
    path_.clear();
    return p;
  }

  void Discard() {
    writeback_.reset();
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    used_ = 0;
    if (!path_.empty()) {
      std::error_code ec;
      std::filesystem::remove(path_, ec);
      path_.clear();
    }
  }

  const std::filesystem::path& path() const { return path_; }
  uint64_t size() const { return size_; }

 private:
  Status Flush() {
    Status st = WriteAll({buffer_.get(), used_});
    used_ = 0;
    return st;
  }

  Status WriteAll(std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = ::write(fd_, bytes.data(), bytes.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus(errno, "stow part " + path_.filename().string() + ": write");
      }
      bytes.remove_prefix(static_cast<size_t>(n));
      written_ += static_cast<uint64_t>(n);
    }
    if (writeback_) writeback_->Progress(written_);
    return Status::Ok();
  }

  int fd_ = -1;
  std::filesystem::path path_;
  std::unique_ptr<char[]> buffer_;
  size_t used_ = 0;
  uint64_t size_ = 0;     // bytes appended
  uint64_t written_ = 0;  // bytes written to the file
  std::optional<EarlyWriteback> writeback_;
};

json UidValue(const std::string& uid) {
  if (uid.empty()) return json{{"vr", "UI"}};
  return json{{"vr", "UI"}, {"Value", json::array({uid})}};
}

json UrlValue(const std::string& url) {
  if (url.empty()) return json{{"vr", "UR"}};
  return json{{"vr", "UR"}, {"Value", json::array({url})}};
}

struct StoredInstance {
  std::string study;
  std::string series;
  std::string sop_class;
  std::string sop_instance;
};

struct FailedInstance {
  std::string sop_class;  // empty when the part could not be read
  std::string sop_instance;
  uint16_t reason = kStowProcessingFailure;
};

// One STOW-RS request body, part by part.
class StoreTransaction {
 public:
  StoreTransaction(DicomwebContext& ctx, StowTarget target, AssociationInfo association,
                   std::string base_url, const std::string& boundary)
      : ctx_(ctx),
        target_(std::move(target)),
        association_(std::move(association)),
        base_url_(std::move(base_url)),
        reader_(boundary, MultipartCallbacks{
                              [this](const std::vector<HeaderField>& h) { return OnPartBegin(h); },
                              [this](std::string_view b) { return OnPartData(b); },
                              [this] { return OnPartEnd(); }, nullptr}) {}

  ~StoreTransaction() {
    if (pending_) RemoveFile(pending_->file);  // the body was never read to its end
  }

  // Reads the whole body (up to max_bytes); true if it was read to its end.
  bool ReadBody(const httplib::ContentReader& content_reader, uint64_t max_bytes) {
    bool too_large = false;
    Status feed;
    bool read = content_reader([&](const char* data, size_t n) {
      bytes_ += n;
      if (bytes_ > max_bytes) {
        too_large = true;
        return false;
      }
      feed = reader_.Feed({data, n});
      return feed.ok();
    });
    ctx_.metrics.Add("conduit_stow_bytes_total", static_cast<double>(bytes_));
    if (read) feed = reader_.Finish();
    if (too_large) {
      SetError(413, "request body: over the limit of " + std::to_string(max_bytes) + " bytes");
    } else if (!feed.ok()) {
      SetError(400, "request body: " + feed.message());
    } else if (!read) {
      SetError(400,
               "request body: ended early or stalled after " + std::to_string(bytes_) + " bytes");
    }
    // Parts still being made durable are waited for: the response reports each one.
    CommitLastPart();
    if (in_part_) {  // cut short: what was written of it goes
      file_.Discard();
      in_part_ = false;
      Fail(too_large ? kStowOutOfResources : kStowCannotUnderstand, nullptr,
           InvalidArgument("part " + std::to_string(reader_.part_count()) + ": incomplete"));
    }
    return read;
  }

  void Respond(httplib::Response& res) const {
    const bool stored_any = !stored_.empty();
    int status;
    if (error_status_ != 0) {
      if (!stored_any) return JsonError(res, error_status_, error_message_);
      // A body cut short after some parts were stored: 202 like any partial store. 413, 404
      // and 409 keep their status and list what was stored before.
      status = error_status_ == 400 ? 202 : error_status_;
    } else if (stored_.empty() && failed_.empty()) {
      return JsonError(res, 400, "request body: no parts");
    } else {
      status = failed_.empty() ? 200 : (stored_any ? 202 : 409);
    }
    res.status = status;
    res.set_content(ResponseModule().dump(-1, ' ', false, json::error_handler_t::replace),
                    "application/dicom+json");
  }

  size_t stored() const { return stored_.size(); }
  size_t failed() const { return failed_.size(); }
  uint64_t bytes() const { return bytes_; }

 private:
  void SetError(int status, std::string message) {
    if (error_status_ != 0) return;  // the first cause is the one reported
    error_status_ = status;
    error_message_ = std::move(message);
  }

  std::string PartName() const { return "part " + std::to_string(reader_.part_count()); }

  // The current part is refused: its remaining bytes are ignored and it is reported failed.
  void SkipPart(uint16_t reason, Status why) {
    file_.Discard();
    skip_reason_ = reason;
    skip_status_ = std::move(why);
  }

  Status OnPartBegin(const std::vector<HeaderField>& headers) {
    LaunchPendingPart();
    in_part_ = true;
    skip_reason_.reset();
    if (auto type = FindHeader(headers, "content-type")) {
      auto media = ParseMediaType(*type);
      if (!media.ok() || media->type != "application" || media->subtype != "dicom") {
        SkipPart(kStowCannotUnderstand,
                 InvalidArgument(PartName() + ": media type is not application/dicom"));
        return Status::Ok();
      }
    }
    Status st = ctx_.ingest.CheckCapacity();
    if (st.ok()) st = file_.Open(ctx_.ingest.NewIncomingPath());
    if (!st.ok()) SkipPart(FailureReasonOf(st), st);
    return Status::Ok();
  }

  Status OnPartData(std::string_view bytes) {
    if (skip_reason_) return Status::Ok();
    Status st = file_.Append(bytes);
    if (!st.ok()) SkipPart(FailureReasonOf(st), st);
    return Status::Ok();
  }

  Status OnPartEnd() {
    in_part_ = false;
    if (skip_reason_) {
      Refuse(*skip_reason_, nullptr, skip_status_);
      return Status::Ok();
    }
    Status st = file_.Close();
    if (!st.ok()) {
      file_.Discard();
      Fail(FailureReasonOf(st), nullptr, st);
      return Status::Ok();
    }
    if (!target_.job) {
      pending_ = PendingPart{file_.Release(), PartName()};
      return Status::Ok();
    }
    auto meta = ReadInstanceMeta(file_.path());
    if (!meta.ok() && target_.job) {
      // A tool's unreadable result is kept as evidence and counted against the tool.
      st = ctx_.job_results.OnUnreadableJobResult(
          *target_.job, file_.Release(),
          "not readable DICOM (" + std::string(StatusCodeName(meta.status().code())) + ")");
      if (st.code() == StatusCode::kNotFound || st.code() == StatusCode::kFailedPrecondition) {
        return JobTakesNoResults(nullptr, st);
      }
      Fail(st.code() == StatusCode::kInvalidArgument ? kStowResultQuarantined : FailureReasonOf(st),
           nullptr, st.code() == StatusCode::kInvalidArgument ? meta.status() : st);
      return Status::Ok();
    }
    if (!meta.ok()) {
      file_.Discard();
      Refuse(kStowCannotUnderstand, nullptr, meta.status().WithContext(PartName()));
      return Status::Ok();
    }
    if (target_.study && meta->study_uid != *target_.study) {
      file_.Discard();
      Refuse(kStowStudyMismatch, &*meta,
             InvalidArgument(PartName() + ": not of the study named in the request path"));
      return Status::Ok();
    }
    ReceivedInstance instance{file_.Release(), std::move(*meta), association_, {}};
    {
      st = ctx_.job_results.OnJobResult(*target_.job, instance);
      if (st.code() == StatusCode::kNotFound || st.code() == StatusCode::kFailedPrecondition) {
        return JobTakesNoResults(&instance.meta, st);
      }
      if (!st.ok()) {
        Fail(st.code() == StatusCode::kInvalidArgument ? kStowResultQuarantined
                                                       : FailureReasonOf(st),
             &instance.meta, st);
        return Status::Ok();
      }
    }
    Stored(instance.meta);
    return Status::Ok();
  }

  // What became of one part made durable off the request thread.
  struct CommitOutcome {
    std::optional<InstanceMeta> meta;  // absent when the part is not readable DICOM
    Status status;
    uint16_t reason = 0;   // failure reason when !status.ok()
    bool refused = false;  // refused here (not by the sink): reported to OnRejected
  };

  // A complete part not yet handed on: whether another part follows is not known yet.
  struct PendingPart {
    std::filesystem::path file;
    std::string name;
  };

  // Another part follows the pending one: the pending one is made durable on a thread of its
  // own while the rest is read, so that the fsyncs and index commits of one request overlap
  // (the index groups concurrent commits).
  void LaunchPendingPart() {
    if (!pending_) return;
    DrainCommits(kMaxCommitsInFlight - 1);
    commits_.push_back(std::async(
        std::launch::async,
        [this](PendingPart part) {
          pthread_setname_np(pthread_self(), "stow-commit");
          return CommitPart(std::move(part.file), part.name);
        },
        std::move(*pending_)));
    pending_.reset();
  }

  // The body has ended: its last part is made durable on the request thread (a request of
  // one instance starts no thread), then every outcome is recorded in part order.
  void CommitLastPart() {
    std::optional<CommitOutcome> last;
    if (pending_) {
      PendingPart part = std::move(*pending_);
      pending_.reset();
      last = CommitPart(std::move(part.file), part.name);
    }
    DrainCommits(0);
    if (last) Record(*last);
  }

  // Reads the part's metadata and hands it to the ingest sink (which makes it durable).
  // May run on a thread of its own; touches no member but the sink and constants.
  CommitOutcome CommitPart(std::filesystem::path file, const std::string& part_name) {
    CommitOutcome out;
    auto meta = ReadInstanceMeta(file);
    if (!meta.ok()) {
      RemoveFile(file);
      out.status = meta.status().WithContext(part_name);
      out.reason = kStowCannotUnderstand;
      out.refused = true;
      return out;
    }
    out.meta = std::move(*meta);
    if (target_.study && out.meta->study_uid != *target_.study) {
      RemoveFile(file);
      out.status = InvalidArgument(part_name + ": not of the study named in the request path");
      out.reason = kStowStudyMismatch;
      out.refused = true;
      return out;
    }
    out.status =
        ctx_.ingest.OnInstance(ReceivedInstance{std::move(file), *out.meta, association_, {}});
    if (!out.status.ok()) out.reason = FailureReasonOf(out.status);
    return out;
  }

  // Waits, oldest first, until at most `keep` commits are in flight, and records each
  // outcome (so stored and failed items stay in part order).
  void DrainCommits(size_t keep) {
    while (commits_.size() > keep) {
      CommitOutcome out = commits_.front().get();
      commits_.pop_front();
      Record(out);
    }
  }

  void Record(const CommitOutcome& out) {
    const InstanceMeta* meta = out.meta ? &*out.meta : nullptr;
    if (out.status.ok()) {
      Stored(*out.meta);
    } else if (out.refused) {
      Refuse(out.reason, meta, out.status);
    } else {
      Fail(out.reason, meta, out.status);
    }
  }

  void Stored(const InstanceMeta& meta) {
    ctx_.metrics.Add("conduit_stow_instances_total", 1, "outcome=\"stored\"");
    stored_.push_back({meta.study_uid.str(), meta.series_uid.str(), meta.sop_class_uid.str(),
                       meta.sop_instance_uid.str()});
  }

  // The job cannot take results (any more): the request fails and the rest of the body is
  // not read.
  Status JobTakesNoResults(const InstanceMeta* meta, const Status& st) {
    Fail(kStowProcessingFailure, meta, st);
    SetError(st.code() == StatusCode::kNotFound ? 404 : 409,
             "job " + std::to_string(target_.job->value) + ": " +
                 (st.code() == StatusCode::kNotFound ? "not found" : "takes no results now"));
    return st;
  }

  // A part refused here (not by a sink): also reported to the sink for audit and metrics.
  void Refuse(uint16_t reason, const InstanceMeta* meta, const Status& why) {
    ctx_.ingest.OnRejected(association_, why);
    Fail(reason, meta, why);
  }

  void Fail(uint16_t reason, const InstanceMeta* meta, const Status& why) {
    ctx_.metrics.Add("conduit_stow_instances_total", 1, "outcome=\"failed\"");
    // The code only: messages may name an instance, and logs never do.
    spdlog::warn("event=stow_part_failed job={} study={} reason=0x{:04X} code={}",
                 target_.job ? target_.job->value : 0,
                 meta != nullptr ? StudyRef(meta->study_uid) : "", reason,
                 StatusCodeName(why.code()));
    FailedInstance failed;
    failed.reason = reason;
    if (meta != nullptr) {
      failed.sop_class = meta->sop_class_uid.str();
      failed.sop_instance = meta->sop_instance_uid.str();
    }
    failed_.push_back(std::move(failed));
  }

  std::string StudyUrl(const std::string& study) const {
    if (target_.job || !IsDicomUidAsFound(study)) return "";
    return base_url_ + std::string(kPrefix) + "/studies/" + study;
  }

  json ResponseModule() const {
    std::string study;
    if (target_.study) {
      study = target_.study->str();
    } else if (!stored_.empty()) {
      study = stored_.front().study;
      for (const StoredInstance& s : stored_) {
        if (s.study != study) study.clear();
      }
    }
    json module = json::object();
    module["00081190"] = UrlValue(StudyUrl(study));
    if (!failed_.empty()) {
      json items = json::array();
      for (const FailedInstance& f : failed_) {
        items.push_back(json{{"00081150", UidValue(f.sop_class)},
                             {"00081155", UidValue(f.sop_instance)},
                             {"00081197", json{{"vr", "US"}, {"Value", json::array({f.reason})}}}});
      }
      module["00081198"] = json{{"vr", "SQ"}, {"Value", items}};
    }
    if (!stored_.empty()) {
      json items = json::array();
      for (const StoredInstance& s : stored_) {
        std::string url;
        if (IsDicomUidAsFound(s.series) && IsDicomUidAsFound(s.sop_instance) &&
            !StudyUrl(s.study).empty()) {
          url = StudyUrl(s.study) + "/series/" + s.series + "/instances/" + s.sop_instance;
        }
        items.push_back(json{{"00081150", UidValue(s.sop_class)},
                             {"00081155", UidValue(s.sop_instance)},
                             {"00081190", UrlValue(url)}});
      }
      module["00081199"] = json{{"vr", "SQ"}, {"Value", items}};
    }
    return module;
  }

  DicomwebContext& ctx_;
  const StowTarget target_;
  const AssociationInfo association_;
  const std::string base_url_;
  MultipartReader reader_;
  PartFile file_;
  bool in_part_ = false;
  std::optional<uint16_t> skip_reason_;  // the current part is refused
  Status skip_status_;
  uint64_t bytes_ = 0;
  std::vector<StoredInstance> stored_;
  // Parts being made durable, oldest first (STOW-RS route only; job results stay in order).
  std::deque<std::future<CommitOutcome>> commits_;
  std::optional<PendingPart> pending_;  // the last complete part, not yet handed on
  std::vector<FailedInstance> failed_;
  int error_status_ = 0;  // a request-level error (the body could not be read through)
  std::string error_message_;
};

// Refuses a result attempt on the job endpoint: 401 with the challenge, counted, logged and
// audited (AuthRefusals).
void RefuseToken(DicomwebContext& ctx, const httplib::Request& req, httplib::Response& res,
                 JobId job, bool missing) {
  const std::string reason = missing ? "no bearer token" : "wrong token for this job";
  const ClientAddress client = ClientOf(req, ctx.config.http.trusted_proxies);
  ctx.auth_refusals->Report(
      {.action = "result_refused",
       .actor = std::string(kStowActor),
       .guard = "job",
       .peer = client.address,
       .via = client.via,
       .method = MethodLabel(req.method),
       .route = DicomwebRouteLabel(req.path),
       .reason = reason,
       .kind = missing ? AuthRefusalKind::kMissing : AuthRefusalKind::kInvalid,
       .job = job,
       .detail = {{"protocol", "DICOMweb"}}},
      ctx.index, ctx.metrics, ctx.clock.Now());
  res.set_header("WWW-Authenticate", missing ? "Bearer realm=\"conduit\""
                                             : "Bearer realm=\"conduit\", error=\"invalid_token\"");
  JsonError(res, 401, "job " + std::to_string(job.value) + ": " + reason);
}

// Checks everything that can be checked before reading the body; on failure writes the
// response and returns false.
bool Admit(DicomwebContext& ctx, const httplib::Request& req, httplib::Response& res,
           StowTarget& target, const BodyFraming& framing, std::string& boundary) {
  if (target.job) {
    auto job = ParseJobIdSegment(target.job_text);
    if (!job) {
      JsonError(res, 404, "no such job");
      return false;
    }
    target.job = *job;
    std::string token = BearerToken(req);
    if (!MayActOnJob(ctx, *job, token)) {
      RefuseToken(ctx, req, res, *job, token.empty());
      return false;
    }
  }
  if (target.study && !IsDicomUidAsFound(target.study->str())) {
    JsonError(res, 400, "study uid in the path: not a DICOM UID");
    return false;
  }
  if (!AcceptsJson(req.get_header_value("Accept"))) {
    JsonError(res, 406, "Accept: only application/dicom+json responses are available");
    return false;
  }
  const std::string content_type = req.get_header_value("Content-Type");
  auto media = ParseMediaType(content_type);
  if (!media.ok() || media->type != "multipart" || media->subtype != "related") {
    JsonError(res, 415, "Content-Type: expected multipart/related; type=\"application/dicom\"");
    return false;
  }
  if (auto type = media->Parameter("type")) {
    auto related = ParseMediaType(*type);
    if (!related.ok() || related->type != "application" || related->subtype != "dicom") {
      JsonError(res, 415,
                "Content-Type: only type=\"application/dicom\" parts are supported (no "
                "metadata and bulkdata)");
      return false;
    }
  }
  auto b = media->Parameter("boundary");
  if (!b) {
    JsonError(res, 400, "Content-Type: no boundary parameter");
    return false;
  }
  if (Status st = CheckBoundary(*b); !st.ok()) {
    JsonError(res, 400, "Content-Type: " + st.message());
    return false;
  }
  boundary = std::string(*b);
  const uint64_t max_bytes = ctx.config.http.max_stow_bytes;
  if (framing.length && *framing.length > max_bytes) {
    JsonError(res, 413, "request body: over the limit of " + std::to_string(max_bytes) + " bytes");
    return false;
  }
  if (!framing.chunked && !framing.length) {
    JsonError(res, 411, "request body: Content-Length or chunked Transfer-Encoding required");
    return false;
  }
  if (target.job) {
    auto job = ctx.index.GetJob(*target.job);
    if (!job.ok()) {
      JsonError(res, 503, "job " + std::to_string(target.job->value) + ": index unavailable");
      return false;
    }
    if (!job->has_value()) {
      JsonError(res, 404, "job " + std::to_string(target.job->value) + ": not found");
      return false;
    }
  }
  if (Status st = ctx.ingest.CheckCapacity(); !st.ok()) {
    int status = st.code() == StatusCode::kResourceExhausted ? 503 : 500;
    if (status == 503) res.set_header("Retry-After", "60");
    JsonError(res, status, "cannot store now: " + std::string(StatusCodeName(st.code())));
    return false;
  }
  return true;
}

}  // namespace

bool IsStowResource(std::string_view path) { return ParseTarget(path).has_value(); }

void DescribeStowMetrics(Metrics& metrics) {
  metrics.Describe("conduit_stow_instances_total", "counter",
                   "STOW-RS parts (instances) stored or failed, by outcome");
  metrics.Describe("conduit_stow_bytes_total", "counter", "STOW-RS request body bytes read");
}

void ServeDicomwebStore(DicomwebContext& ctx, const httplib::Request& req, httplib::Response& res,
                        const httplib::ContentReader& content_reader) {
  auto framing = FramingOf(req);
  auto target = ParseTarget(req.path);
  bool read_through = false;
  bool reading_started = false;  // then whatever is left of the body is not read here
  if (!framing.ok()) {
    JsonError(res, 400, framing.status().message());
  } else if (!target) {
    res.set_header("Allow", "GET, HEAD");
    JsonError(res, 405, "method " + req.method.substr(0, 16) + " not allowed; allowed: GET, HEAD");
  } else if (req.method != "POST") {
    res.set_header("Allow", "POST");
    JsonError(res, 405, "method " + req.method.substr(0, 16) + " not allowed; allowed: POST");
  } else {
    std::string boundary;
    if (Admit(ctx, req, res, *target, *framing, boundary)) {
      AssociationInfo association;
      association.calling_ae = AeTitle(std::string(kStowActor));
      association.called_ae = ctx.config.dicom.ae_title;
      association.peer_host = ClientOf(req, ctx.config.http.trusted_proxies).address;
      association.protocol = "DICOMweb";
      StoreTransaction transaction(ctx, *target, association, RequestBaseUrl(ctx.config, req),
                                   boundary);
      read_through = !framing->present() ||
                     transaction.ReadBody(content_reader, ctx.config.http.max_stow_bytes);
      reading_started = true;
      transaction.Respond(res);
      spdlog::info("event=stow job={} study={} status={} stored={} failed={} bytes={}",
                   target->job ? target->job->value : 0,
                   target->study ? StudyRef(*target->study) : "", res.status, transaction.stored(),
                   transaction.failed(), transaction.bytes());
    }
  }
  // A refused request's body is read if small; otherwise the connection ends with the
  // response, or its unread bytes would be taken for the next request.
  if (!read_through && (reading_started || !DiscardBody(req, res, content_reader, kDiscardBytes))) {
    res.set_header("Connection", "close");
  }
}

}  // namespace conduit
