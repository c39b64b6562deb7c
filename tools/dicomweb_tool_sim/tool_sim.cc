#include "dicomweb_tool_sim/tool_sim.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <random>
#include <regex>
#include <system_error>

#include "common/sim_control.h"
#include "common/uid.h"
#include "dicomweb_tool_sim/multipart_files.h"
#include "dicomweb_tool_sim/result_tampering.h"
#include "dicomweb_tool_sim/stoppable_sleep.h"
#include "http/multipart.h"
#include "reference_tool/reference_tool.h"

namespace conduit::tools {
namespace {

using nlohmann::json;

constexpr char kDicomJson[] = "application/dicom+json";
// How long completed studies wait for their STOW response to be written if the server never
// reports it (the client went away).
constexpr auto kAfterResponseGrace = std::chrono::seconds(2);
constexpr int kCrashExitCode = 3;

// STOW-RS failure reasons (PS3.18 table I.2-1 / PS3.4 C.4.2.1.4).
constexpr int kCannotUnderstand = 0xC000;
constexpr int kStudyMismatch = 0xA900;

void NameThread(const char* name) { pthread_setname_np(pthread_self(), name); }

std::string EscapeRegex(const std::string& text) {
  static const std::regex special(R"([.^$|()\[\]{}*+?\\])");
  return std::regex_replace(text, special, R"(\$&)");
}

json UiValue(const std::string& uid) { return {{"vr", "UI"}, {"Value", {uid}}}; }

void SetText(httplib::Response& res, int status, const std::string& text) {
  res.status = status;
  res.set_content(text + "\n", "text/plain");
}

// Reads and discards the rest of a request body, so the connection stays usable.
void Drain(const httplib::ContentReader& reader) {
  reader([](const char*, size_t) { return true; });
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

// Job ids come from outside: only a printable, bounded form is logged.
std::string Printable(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, 64)) out += (c >= 0x21 && c <= 0x7e) ? c : '?';
  return out;
}

}  // namespace

Result<std::unique_ptr<DicomwebToolSim>> DicomwebToolSim::Create(SimOptions options,
                                                                 const Clock& clock) {
  if (options.work_dir.empty()) return InvalidArgument("tool sim: --work is required");
  if (!options.base_path.empty() && options.base_path.front() != '/') {
    return InvalidArgument("tool sim: the base path must start with '/'");
  }
  while (!options.base_path.empty() && options.base_path.back() == '/') {
    options.base_path.pop_back();
  }
  if (options.workers < 1 || options.http_threads < 1) {
    return InvalidArgument("tool sim: workers and HTTP threads must be at least 1");
  }
  for (const char* sub : {"inputs", "results", "tmp"}) {
    std::error_code ec;
    std::filesystem::create_directories(options.work_dir / sub, ec);
    if (ec)
      return Internal("tool sim work folder " + options.work_dir.string() + ": " + ec.message());
  }
  std::unique_ptr<DicomwebToolSim> sim(new DicomwebToolSim(std::move(options), clock));
  if (!sim->server_->is_valid()) {
    return InvalidArgument("tool sim: the TLS certificate, key or client CA file cannot be loaded");
  }
  return sim;
}

DicomwebToolSim::DicomwebToolSim(SimOptions options, const Clock& clock)
    : options_(std::move(options)),
      clock_(clock),
      modes_(options_.misbehaviour, options_.misbehaviour_count),
      inbox_(options_.work_dir / "inputs", clock, options_.quiet) {
  if (options_.tls_certificate.empty()) {
    server_ = std::make_unique<httplib::Server>();
  } else {
    server_ = std::make_unique<httplib::SSLServer>(
        options_.tls_certificate.c_str(), options_.tls_key.c_str(),
        options_.tls_client_ca.empty() ? nullptr : options_.tls_client_ca.c_str());
  }
  const int threads = options_.http_threads;
  server_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server_->set_tcp_nodelay(true);
  server_->set_read_timeout(std::chrono::seconds(60));
  server_->set_write_timeout(std::chrono::seconds(60));
  server_->set_logger(
      [this](const httplib::Request& req, const httplib::Response&) { ReleaseAfterResponse(req); });
  Routes();
}

DicomwebToolSim::~DicomwebToolSim() {
  Stop();
  for (std::jthread& thread : threads_) thread.request_stop();
  queue_cv_.notify_all();
}

Result<int> DicomwebToolSim::Bind() {
  int port = options_.port;
  if (port == 0) {
    port = server_->bind_to_any_port(options_.bind);
    if (port < 0) return Unavailable("tool sim: cannot bind " + options_.bind);
  } else if (!server_->bind_to_port(options_.bind, port)) {
    return Unavailable("tool sim: cannot bind " + options_.bind + ":" + std::to_string(port));
  }
  return port;
}

void DicomwebToolSim::Serve() {
  threads_.emplace_back([this](std::stop_token stop) {
    NameThread("sim-quiet");
    QuietLoop(stop);
  });
  for (int i = 0; i < options_.workers; ++i) {
    threads_.emplace_back([this](std::stop_token stop) {
      NameThread("sim-worker");
      WorkerLoop(stop);
    });
  }
  server_->listen_after_bind();
  for (std::jthread& thread : threads_) thread.request_stop();
  queue_cv_.notify_all();
  threads_.clear();  // joins
}

void DicomwebToolSim::Stop() { server_->stop(); }

void DicomwebToolSim::Routes() {
  const std::string base = EscapeRegex(options_.base_path);
  auto stow = [this](const httplib::Request& req, httplib::Response& res,
                     const httplib::ContentReader& reader) { HandleStow(req, res, reader); };
  server_->Post(base + "/studies", stow);
  server_->Post(base + "/studies/([^/]+)", stow);
  auto qido = [this](const httplib::Request& req, httplib::Response& res) { HandleQido(req, res); };
  server_->Get(base + "/studies/([^/]+)/instances", qido);
  server_->Get(base + "/studies/([^/]+)/series/([^/]+)/instances", qido);
  auto wado = [this](const httplib::Request& req, httplib::Response& res) { HandleWado(req, res); };
  server_->Get(base + "/studies/([^/]+)", wado);
  server_->Get(base + "/studies/([^/]+)/series/([^/]+)", wado);
  server_->Get(base + "/studies/([^/]+)/series/([^/]+)/instances/([^/]+)", wado);
  server_->Post("/sim/mode", [this](const httplib::Request& req, httplib::Response& res) {
    HandleMode(req, res);
  });
  server_->Get("/sim/status", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(StatusJson().dump(), "application/json");
  });
}

bool DicomwebToolSim::Authorized(const httplib::Request& req) const {
  if (options_.required_token.empty()) return true;
  const std::string value = req.get_header_value("Authorization");
  constexpr std::string_view kBearer = "bearer ";
  if (value.size() <= kBearer.size()) return false;
  std::string scheme = value.substr(0, kBearer.size());
  std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return scheme == kBearer && ConstantTimeEquals(std::string_view(value).substr(kBearer.size()),
                                                 options_.required_token);
}

void DicomwebToolSim::HandleStow(const httplib::Request& req, httplib::Response& res,
                                 const httplib::ContentReader& reader) {
  {
    std::lock_guard lock(counters_mu_);
    ++counters_.stow_requests;
  }
  auto reject = [&](int status, const std::string& why) {
    Drain(reader);
    std::lock_guard lock(counters_mu_);
    ++counters_.stow_rejected;
    SetText(res, status, why);
  };
  if (!Authorized(req)) {
    res.set_header("WWW-Authenticate", "Bearer");
    return reject(401, "missing or wrong bearer token");
  }
  if (modes_.TakeRequestRejection()) {
    res.set_header("Retry-After", "1");
    spdlog::info("STOW-RS answered 503 (misbehaviour error5xx)");
    return reject(503, "simulated outage (error5xx)");
  }
  Result<MediaType> media = ParseMediaType(req.get_header_value("Content-Type"));
  if (!media.ok() || media->type != "multipart" || media->subtype != "related" ||
      !media->Parameter("boundary")) {
    return reject(415, "STOW-RS needs Content-Type multipart/related with a boundary");
  }
  if (std::optional<std::string_view> type = media->Parameter("type");
      type && *type != "application/dicom") {
    return reject(415, "STOW-RS: only type=\"application/dicom\" is accepted");
  }
  DeliveryHeaders delivery;
  delivery.job = req.get_header_value("Conduit-Job");
  delivery.results_url = req.get_header_value("Conduit-Results-URL");
  delivery.results_token = req.get_header_value("Conduit-Results-Token");
  if (req.has_header("Conduit-Chunk")) {
    Result<std::pair<int, int>> chunk = ParseChunk(req.get_header_value("Conduit-Chunk"));
    if (!chunk.ok()) return reject(400, chunk.status().message());
    delivery.chunk_index = chunk->first;
    delivery.chunk_count = chunk->second;
  }
  const std::string url_study = req.matches.size() > 1 ? req.matches[1].str() : "";

  json stored = json::array();
  json failed = json::array();
  StudyInbox::RequestKeys keys;
  std::filesystem::path part_path;
  std::ofstream part;
  Status io_error;
  MultipartCallbacks callbacks;
  callbacks.on_part_begin = [&](const std::vector<HeaderField>&) -> Status {
    part_path = options_.work_dir / "tmp" / (std::to_string(next_temp_++) + ".part");
    part = std::ofstream(part_path, std::ios::binary | std::ios::trunc);
    if (!part) return Internal("STOW part: cannot create a temporary file");
    return Status::Ok();
  };
  callbacks.on_part_data = [&](std::string_view bytes) -> Status {
    part.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!part) return Internal("STOW part: write failed");
    return Status::Ok();
  };
  callbacks.on_part_end = [&]() -> Status {
    part.close();
    if (!part) return Internal("STOW part: write failed");
    Result<InstanceInfo> info = ReadInstanceInfo(part_path);
    auto fail = [&](int reason, const std::string& uid_class, const std::string& uid) {
      json item = {{"00081197", {{"vr", "US"}, {"Value", {reason}}}}};
      if (!uid_class.empty()) item["00081150"] = UiValue(uid_class);
      if (!uid.empty()) item["00081155"] = UiValue(uid);
      failed.push_back(std::move(item));
      std::error_code ec;
      std::filesystem::remove(part_path, ec);
      std::lock_guard lock(counters_mu_);
      ++counters_.instances_failed;
    };
    if (!info.ok()) {
      spdlog::warn("STOW part {} refused: {}", failed.size() + stored.size() + 1,
                   info.status().message());
      fail(kCannotUnderstand, "", "");
      return Status::Ok();
    }
    if (!url_study.empty() && info->study_uid != url_study) {
      fail(kStudyMismatch, info->sop_class_uid, info->sop_instance_uid);
      return Status::Ok();
    }
    Result<InstanceInfo> added = inbox_.Add(delivery, *info, part_path, keys);
    if (!added.ok()) return added.status();
    catalog_.Add(*added);
    stored.push_back({{"00081150", UiValue(added->sop_class_uid)},
                      {"00081155", UiValue(added->sop_instance_uid)}});
    std::lock_guard lock(counters_mu_);
    ++counters_.instances_received;
    return Status::Ok();
  };
  MultipartReader multipart(std::string(*media->Parameter("boundary")), std::move(callbacks));
  Status feed_status;
  bool read_ok = reader([&](const char* data, size_t size) {
    feed_status = multipart.Feed(std::string_view(data, size));
    return feed_status.ok();
  });
  if (read_ok && feed_status.ok()) feed_status = multipart.Finish();
  if (!read_ok || !feed_status.ok()) {
    if (part.is_open()) part.close();
    std::error_code ec;
    if (!part_path.empty()) std::filesystem::remove(part_path, ec);
    DeliveryHeaders no_chunk = delivery;
    no_chunk.chunk_index = no_chunk.chunk_count = 0;
    Enqueue(inbox_.EndRequest(no_chunk, keys));
    res.set_header("Connection", "close");
    const std::string why =
        feed_status.ok() ? "request body could not be read" : feed_status.message();
    RecordError("STOW-RS request refused: " + why);
    {
      std::lock_guard lock(counters_mu_);
      ++counters_.stow_rejected;
    }
    SetText(res, feed_status.code() == StatusCode::kInternal ? 500 : 400, why);
    return;
  }
  if (stored.empty() && failed.empty()) {
    DeliveryHeaders no_chunk = delivery;
    no_chunk.chunk_index = no_chunk.chunk_count = 0;
    Enqueue(inbox_.EndRequest(no_chunk, keys));
    std::lock_guard lock(counters_mu_);
    ++counters_.stow_rejected;
    return SetText(res, 400, "STOW-RS request holds no instances");
  }

  json body = json::object();
  if (!stored.empty()) body["00081199"] = {{"vr", "SQ"}, {"Value", stored}};
  if (!failed.empty()) body["00081198"] = {{"vr", "SQ"}, {"Value", failed}};
  res.status = failed.empty() ? 200 : stored.empty() ? 409 : 202;
  res.set_content(body.dump(), kDicomJson);
  spdlog::info("STOW-RS{}{}: {} stored, {} failed",
               delivery.job.empty() ? "" : " job " + Printable(delivery.job),
               delivery.chunk_count > 0 ? " chunk " + std::to_string(delivery.chunk_index) + "/" +
                                              std::to_string(delivery.chunk_count)
                                        : "",
               stored.size(), failed.size());

  std::vector<CompletedStudy> completed = inbox_.EndRequest(delivery, keys);
  if (!completed.empty()) {
    // Analysis begins once this response is on the wire (see ReleaseAfterResponse).
    std::lock_guard lock(queue_mu_);
    AfterResponse& after = after_response_[&req];
    after.created = clock_.Now();
    for (CompletedStudy& study : completed) after.studies.push_back(std::move(study));
  }
}

void DicomwebToolSim::ReleaseAfterResponse(const httplib::Request& req) {
  std::vector<CompletedStudy> studies;
  {
    std::lock_guard lock(queue_mu_);
    auto it = after_response_.find(&req);
    if (it == after_response_.end()) return;
    studies = std::move(it->second.studies);
    after_response_.erase(it);
  }
  Enqueue(std::move(studies));
}

void DicomwebToolSim::Enqueue(std::vector<CompletedStudy> studies) {
  if (studies.empty()) return;
  {
    std::lock_guard lock(counters_mu_);
    counters_.studies_received += studies.size();
  }
  {
    std::lock_guard lock(queue_mu_);
    for (CompletedStudy& study : studies) {
      spdlog::info("{} complete: {} instance(s)", study.log_name, study.instances.size());
      queue_.push_back(WorkItem{std::move(study)});
    }
  }
  queue_cv_.notify_all();
}

void DicomwebToolSim::QuietLoop(std::stop_token stop) {
  const auto period =
      std::clamp(options_.quiet / 5, std::chrono::milliseconds(10), std::chrono::milliseconds(100));
  while (SleepUnlessStopped(period, stop)) {
    Enqueue(inbox_.TakeQuiet());
    std::vector<CompletedStudy> stranded;
    {
      std::lock_guard lock(queue_mu_);
      const TimePoint now = clock_.Now();
      for (auto it = after_response_.begin(); it != after_response_.end();) {
        if (now - it->second.created < kAfterResponseGrace) {
          ++it;
          continue;
        }
        for (CompletedStudy& study : it->second.studies) stranded.push_back(std::move(study));
        it = after_response_.erase(it);
      }
    }
    Enqueue(std::move(stranded));
  }
}

void DicomwebToolSim::WorkerLoop(std::stop_token stop) {
  while (!stop.stop_requested()) {
    WorkItem item;
    {
      std::unique_lock lock(queue_mu_);
      if (!queue_cv_.wait(lock, stop, [this] { return !queue_.empty(); })) return;
      item = std::move(queue_.front());
      queue_.pop_front();
    }
    Process(std::move(item.study), stop);
  }
}

void DicomwebToolSim::Process(CompletedStudy study, std::stop_token stop) {
  const Misbehaviour mode = modes_.TakeForStudy();
  if (mode != Misbehaviour::kNone) {
    spdlog::info("{}: misbehaviour {}", study.log_name, MisbehaviourName(mode));
  }
  if (mode == Misbehaviour::kCrash) {
    spdlog::critical("{}: exiting mid-study (misbehaviour crash)", study.log_name);
    spdlog::default_logger()->flush();
    std::_Exit(kCrashExitCode);
  }
  const std::filesystem::path out = options_.work_dir / "results" / study.dir.filename();
  std::error_code ec;
  std::filesystem::remove_all(out, ec);
  Result<ReferenceRunSummary> run = RunReferenceTool(study.dir, out);
  if (!run.ok()) {
    RecordError(study.log_name + ": reference tool: " + run.status().ToString());
    std::lock_guard lock(counters_mu_);
    ++counters_.algorithm_failures;
    return;
  }
  std::vector<std::filesystem::path> files = {run->seg_file, run->sr_file, run->sc_file};

  if (mode == Misbehaviour::kWrongReferences) {
    // Every input SOP instance and series, and each result's own UIDs, get new UIDs.
    std::map<std::string, std::string> replace;
    auto remap = [&replace](const std::string& uid) {
      if (!uid.empty()) replace.emplace(uid, DerivedUid({"conduit-tool-sim:wrong", uid}));
    };
    for (const InstanceInfo& input : study.instances) {
      remap(input.sop_instance_uid);
      remap(input.series_uid);
    }
    for (const std::filesystem::path& file : files) {
      Result<InstanceInfo> info = ReadInstanceInfo(file);
      if (!info.ok()) continue;
      remap(info->sop_instance_uid);
      remap(info->series_uid);
    }
    for (std::filesystem::path& file : files) {
      std::filesystem::path rewritten = file.parent_path() / ("wrong-" + file.filename().string());
      if (Status s = RewriteUids(file, rewritten, replace); !s.ok()) {
        RecordError(study.log_name + ": wrong-references: " + s.ToString());
        return;
      }
      file = rewritten;
    }
  }
  std::vector<InstanceInfo> infos;
  for (const std::filesystem::path& file : files) {
    Result<InstanceInfo> info = ReadInstanceInfo(file);
    if (!info.ok()) {
      RecordError(study.log_name + ": result unreadable: " + info.status().ToString());
      return;
    }
    infos.push_back(*info);
  }
  if (mode == Misbehaviour::kMalformed) {
    std::filesystem::path truncated = files[0].parent_path() / "truncated-seg.dcm";
    if (Status s = WriteTruncated(files[0], truncated); !s.ok()) {
      RecordError(study.log_name + ": malformed: " + s.ToString());
      return;
    }
    files[0] = infos[0].path = truncated;
  }
  {
    std::lock_guard lock(counters_mu_);
    ++counters_.studies_processed;
  }
  if (mode == Misbehaviour::kSlow) {
    spdlog::info("{}: holding results for {} ms (misbehaviour slow)", study.log_name,
                 options_.slow.count());
    if (!SleepUnlessStopped(options_.slow, stop)) return;
  }

  if (options_.results_mode == ResultsMode::kPoll) {
    for (const InstanceInfo& info : infos) catalog_.Add(info);
    std::lock_guard lock(counters_mu_);
    counters_.results_ready += infos.size();
    spdlog::info("{}: {} result(s) ready for QIDO-RS/WADO-RS", study.log_name, infos.size());
    return;
  }
  if (Status s = ReturnResults(study, mode, files, stop); !s.ok()) {
    RecordError(study.log_name + ": " + s.ToString());
    std::lock_guard lock(counters_mu_);
    ++counters_.result_send_failures;
  }
}

Status DicomwebToolSim::ReturnResults(const CompletedStudy& study, Misbehaviour mode,
                                      const std::vector<std::filesystem::path>& files,
                                      std::stop_token stop) {
  if (study.results_url.empty()) {
    return FailedPrecondition("no Conduit-Results-URL was given: results not returned");
  }
  const ResultsTarget own{study.results_url, study.results_token, study.job};
  ResultsTarget target = own;
  if (mode == Misbehaviour::kOtherJob) {
    std::lock_guard lock(targets_mu_);
    if (!last_target_.url.empty() && last_target_.url != own.url) {
      target = last_target_;
    } else {
      // No other job seen: a made-up (numeric) job id in place of this job's id at the end of
      // its URL, with this job's token.
      std::random_device rd;
      const std::string made_up = std::to_string(900'000'000 + rd() % 1'000'000);
      const std::string suffix = "/" + own.job;
      if (!own.job.empty() && target.url.size() > suffix.size() &&
          target.url.compare(target.url.size() - suffix.size(), suffix.size(), suffix) == 0) {
        target.url.replace(target.url.size() - own.job.size(), own.job.size(), made_up);
      }
      target.job = made_up;
    }
    spdlog::info("{}: sending results to job {} (misbehaviour other-job)", study.log_name,
                 Printable(target.job));
  }
  {
    std::lock_guard lock(targets_mu_);
    last_target_ = own;
  }
  Result<int> posted = PostInstances(target, files, options_.send, stop);
  if (!posted.ok()) return posted.status().WithContext("results STOW-RS");
  spdlog::info("{}: {} result(s) stored by the results endpoint (HTTP {})", study.log_name,
               files.size(), *posted);
  std::lock_guard lock(counters_mu_);
  ++counters_.result_requests_sent;
  counters_.results_sent += files.size();
  return Status::Ok();
}

void DicomwebToolSim::HandleQido(const httplib::Request& req, httplib::Response& res) {
  if (!Authorized(req)) {
    res.set_header("WWW-Authenticate", "Bearer");
    return SetText(res, 401, "missing or wrong bearer token");
  }
  InstanceFilter filter;
  if (req.matches.size() > 2) filter.series_uid = req.matches[2].str();
  auto param = [&req](const char* keyword, const char* tag, std::string& out) {
    if (req.has_param(keyword)) out = req.get_param_value(keyword);
    if (req.has_param(tag)) out = req.get_param_value(tag);
  };
  param("SeriesInstanceUID", "0020000E", filter.series_uid);
  param("SOPInstanceUID", "00080018", filter.sop_instance_uid);
  param("SOPClassUID", "00080016", filter.sop_class_uid);
  param("Modality", "00080060", filter.modality);
  const std::string study = req.matches[1].str();
  const std::string host = req.get_header_value("Host");
  json body = json::array();
  for (const InstanceInfo& info : catalog_.Find(study, filter)) {
    json item = {{"0020000D", UiValue(info.study_uid)},
                 {"0020000E", UiValue(info.series_uid)},
                 {"00080018", UiValue(info.sop_instance_uid)},
                 {"00080016", UiValue(info.sop_class_uid)}};
    if (!info.modality.empty()) item["00080060"] = {{"vr", "CS"}, {"Value", {info.modality}}};
    if (!info.instance_number.empty()) {
      try {
        item["00200013"] = {{"vr", "IS"}, {"Value", {std::stol(info.instance_number)}}};
      } catch (const std::exception&) {
        // A non-numeric Instance Number is left out of the answer.
      }
    }
    if (!host.empty()) {
      item["00081190"] = {{"vr", "UR"},
                          {"Value",
                           {"http://" + host + options_.base_path + "/studies/" + info.study_uid +
                            "/series/" + info.series_uid + "/instances/" + info.sop_instance_uid}}};
    }
    body.push_back(std::move(item));
  }
  res.set_content(body.dump(), kDicomJson);
}

void DicomwebToolSim::HandleWado(const httplib::Request& req, httplib::Response& res) {
  if (!Authorized(req)) {
    res.set_header("WWW-Authenticate", "Bearer");
    return SetText(res, 401, "missing or wrong bearer token");
  }
  InstanceFilter filter;
  if (req.matches.size() > 2) filter.series_uid = req.matches[2].str();
  if (req.matches.size() > 3) filter.sop_instance_uid = req.matches[3].str();
  std::vector<std::filesystem::path> files;
  for (const InstanceInfo& info : catalog_.Find(req.matches[1].str(), filter)) {
    files.push_back(info.path);
  }
  if (files.empty()) return SetText(res, 404, "no such instance");
  Result<MultipartFileBody> body = MultipartFileBody::FromFiles(files);
  if (!body.ok()) return SetText(res, 500, body.status().message());
  auto shared = std::make_shared<MultipartFileBody>(std::move(*body));
  res.set_content_provider(shared->size(), shared->content_type(),
                           [shared](size_t offset, size_t length, httplib::DataSink& sink) {
                             Status status =
                                 shared->Read(offset, length, [&sink](std::string_view bytes) {
                                   sink.write(bytes.data(), bytes.size());
                                 });
                             if (!status.ok()) spdlog::warn("WADO-RS: {}", status.message());
                             return status.ok();
                           });
}

void DicomwebToolSim::HandleMode(const httplib::Request& req, httplib::Response& res) {
  std::string error;
  std::optional<ModeRequest> request = ParseModeRequest(req.body, error);
  if (!request) return SetText(res, 400, error);
  std::optional<Misbehaviour> mode = ParseMisbehaviour(request->mode);
  if (!mode) return SetText(res, 400, "unknown mode");
  modes_.Set(*mode, request->count);
  spdlog::info("misbehaviour set to {} (count {})", MisbehaviourName(*mode), request->count);
  res.set_content(StatusJson().dump(), "application/json");
}

json DicomwebToolSim::StatusJson() {
  const ModeSwitch::Snapshot mode = modes_.Current();
  size_t queued = 0;
  {
    std::lock_guard lock(queue_mu_);
    queued = queue_.size();
    for (const auto& [req, after] : after_response_) queued += after.studies.size();
  }
  std::lock_guard lock(counters_mu_);
  const Counters& c = counters_;
  return {{"non_clinical", true},
          {"results_mode", options_.results_mode == ResultsMode::kPoll ? "poll" : "store"},
          {"mode", std::string(MisbehaviourName(mode.mode))},
          {"mode_remaining", mode.remaining < 0 ? json(nullptr) : json(mode.remaining)},
          {"stow_requests", c.stow_requests},
          {"stow_rejected", c.stow_rejected},
          {"instances_received", c.instances_received},
          {"instances_failed", c.instances_failed},
          {"studies_pending", inbox_.pending()},
          {"studies_queued", queued},
          {"studies_received", c.studies_received},
          {"studies_processed", c.studies_processed},
          {"algorithm_failures", c.algorithm_failures},
          {"result_requests_sent", c.result_requests_sent},
          {"results_sent", c.results_sent},
          {"result_send_failures", c.result_send_failures},
          {"results_ready", c.results_ready},
          {"last_error", c.last_error}};
}

void DicomwebToolSim::RecordError(const std::string& message) {
  spdlog::error("{}", message);
  std::lock_guard lock(counters_mu_);
  counters_.last_error = message;
}

}  // namespace conduit::tools
