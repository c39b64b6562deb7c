// DicomwebToolSim: a NON-CLINICAL simulator of an AI vendor's DICOMweb endpoint for Conduit's
// end-to-end tests. It receives studies by STOW-RS (grouped by Conduit-Job, complete on the
// last Conduit-Chunk or after a quiet period), runs Conduit's reference tool on each, and
// returns the SEG, SR and SC by STOW-RS to the job's Conduit-Results-URL (store mode) or keeps
// them for QIDO-RS/WADO-RS (poll mode); on request it misbehaves (see sim_modes.h).
// HTTP: POST <base>/studies[/{study}], GET <base>/studies/{study}[/series/{series}]/instances
// (QIDO-RS), GET <base>/studies/{study}[/series/{series}[/instances/{sop}]] (WADO-RS),
// POST /sim/mode, GET /sim/status.
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "dicomweb_tool_sim/instance_catalog.h"
#include "dicomweb_tool_sim/sim_modes.h"
#include "dicomweb_tool_sim/stow_sender.h"
#include "dicomweb_tool_sim/study_inbox.h"

namespace conduit::tools {

enum class ResultsMode { kStore, kPoll };

struct SimOptions {
  std::string bind = "127.0.0.1";
  int port = 0;  // 0: any free port (Bind returns it)
  std::string base_path = "/dicom-web";
  std::filesystem::path work_dir;  // inputs/, results/, tmp/ are made under it
  std::string required_token;      // non-empty: DICOMweb requests need "Bearer <token>"
  std::chrono::milliseconds quiet{500};
  std::chrono::milliseconds slow{5'000};
  ResultsMode results_mode = ResultsMode::kStore;
  Misbehaviour misbehaviour = Misbehaviour::kNone;
  int misbehaviour_count = -1;  // -1: until changed
  SendOptions send;
  // Non-empty: serve https with this PEM certificate and key; with tls_client_ca, also want
  // a client certificate that chains to one of its CAs (mutual TLS).
  std::filesystem::path tls_certificate;
  std::filesystem::path tls_key;
  std::filesystem::path tls_client_ca;
  int http_threads = 8;
  int workers = 1;
};

class DicomwebToolSim {
 public:
  // Makes the work folders. Errors: kInvalidArgument for a bad option (such as a TLS
  // certificate or key that cannot be loaded); kInternal if the work folder cannot be made. `clock`
  // must outlive the simulator.
  static Result<std::unique_ptr<DicomwebToolSim>> Create(SimOptions options, const Clock& clock);
  ~DicomwebToolSim();

  // Binds the listening socket. Returns the port. Errors: kUnavailable if it cannot bind.
  Result<int> Bind();
  // Starts the worker and quiet-timer threads and serves until Stop(); then stops them (a
  // study being analysed is finished first).
  void Serve();
  // Makes Serve return. Thread-safe.
  void Stop();

 private:
  DicomwebToolSim(SimOptions options, const Clock& clock);

  struct Counters {
    uint64_t stow_requests = 0;
    uint64_t stow_rejected = 0;  // 401, 503 (error5xx) and malformed requests
    uint64_t instances_received = 0;
    uint64_t instances_failed = 0;
    uint64_t studies_received = 0;  // groups complete and handed to the algorithm
    uint64_t studies_processed = 0;
    uint64_t algorithm_failures = 0;
    uint64_t result_requests_sent = 0;
    uint64_t results_sent = 0;  // result instances acknowledged by the results endpoint
    uint64_t result_send_failures = 0;
    uint64_t results_ready = 0;  // poll mode: result instances listed for QIDO-RS
    std::string last_error;
  };
  struct WorkItem {
    CompletedStudy study;
  };
  struct AfterResponse {
    TimePoint created;
    std::vector<CompletedStudy> studies;
  };

  void Routes();
  bool Authorized(const httplib::Request& req) const;
  void HandleStow(const httplib::Request& req, httplib::Response& res,
                  const httplib::ContentReader& reader);
  void HandleQido(const httplib::Request& req, httplib::Response& res);
  void HandleWado(const httplib::Request& req, httplib::Response& res);
  void HandleMode(const httplib::Request& req, httplib::Response& res);
  nlohmann::json StatusJson();

  void Enqueue(std::vector<CompletedStudy> studies);
  void ReleaseAfterResponse(const httplib::Request& req);
  void QuietLoop(std::stop_token stop);
  void WorkerLoop(std::stop_token stop);
  void Process(CompletedStudy study, std::stop_token stop);
  Status ReturnResults(const CompletedStudy& study, Misbehaviour mode,
                       const std::vector<std::filesystem::path>& files, std::stop_token stop);
  void RecordError(const std::string& message);

  const SimOptions options_;
  const Clock& clock_;
  ModeSwitch modes_;
  StudyInbox inbox_;
  InstanceCatalog catalog_;
  std::unique_ptr<httplib::Server> server_;  // an SSLServer for https
  std::atomic<uint64_t> next_temp_{1};

  std::mutex counters_mu_;
  Counters counters_;

  std::mutex queue_mu_;
  std::condition_variable_any queue_cv_;
  std::deque<WorkItem> queue_;
  // Studies completed by a STOW-RS request, held until its response has been written.
  std::map<const void*, AfterResponse> after_response_;

  std::mutex targets_mu_;
  ResultsTarget last_target_;  // of the last study returned: the "other job" for other-job

  std::vector<std::jthread> threads_;
};

}  // namespace conduit::tools
