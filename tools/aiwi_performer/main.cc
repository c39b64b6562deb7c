// conduit-aiwi-performer: a NON-CLINICAL IHE AIW-I Task Performer simulator for Conduit's
// end-to-end tests (see performer.h). NOT FOR DIAGNOSTIC USE.
// stdout: "control on 127.0.0.1:PORT" (with --control-port), then "ready" once polling or
// subscribed with the event channel open; logs go to stderr.
// Exit codes: 0 stopped (SIGTERM/SIGINT, or --once done); 1 start-up failure; 2 usage;
// 3 misbehaviour crash-mid-claim; 4 misbehaviour error.
#include <dcmtk/dcmdata/dcrledrg.h>
#include <dcmtk/dcmjpeg/djdecode.h>
#include <dcmtk/dcmjpls/djdecode.h>
#include <dcmtk/oflog/oflog.h>
#include <httplib.h>
#include <pthread.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <optional>
#include <thread>

#include "aiwi_performer/performer.h"
#include "common/sim_control.h"
#include "common/sim_main.h"

namespace {

using conduit::tools::AiwiPerformer;
using conduit::tools::PerformerMode;

constexpr int kErrorExitCode = 4;

// POST /sim/mode {"mode": "...", "count": N} and GET /sim/status on 127.0.0.1.
void Routes(httplib::Server& server, AiwiPerformer& performer) {
  auto text = [](httplib::Response& res, int status, const std::string& message) {
    res.status = status;
    res.set_content(message + "\n", "text/plain");
  };
  server.Post("/sim/mode", [&performer, text](const httplib::Request& req, httplib::Response& res) {
    std::string error;
    std::optional<conduit::tools::ModeRequest> request =
        conduit::tools::ParseModeRequest(req.body, error);
    if (!request) return text(res, 400, error);
    std::optional<PerformerMode> mode = conduit::tools::ParsePerformerMode(request->mode);
    if (!mode) return text(res, 400, "unknown mode");
    performer.modes().Set(*mode, request->count);
    spdlog::info("misbehaviour set to {} (count {})", conduit::tools::PerformerModeName(*mode),
                 request->count);
    res.set_content(performer.StatusJson().dump(), "application/json");
  });
  server.Get("/sim/status", [&performer](const httplib::Request&, httplib::Response& res) {
    res.set_content(performer.StatusJson().dump(), "application/json");
  });
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "conduit-aiwi-performer: NON-CLINICAL IHE AIW-I Task Performer simulator for Conduit's\n"
      "end-to-end tests. NOT FOR DIAGNOSTIC USE. Takes SCHEDULED workitems from a UPS-RS\n"
      "Task Manager (pull: polling; triggered: global subscription + WebSocket events),\n"
      "claims each, retrieves its inputs by WADO-RS, runs Conduit's reference tool, stores the\n"
      "results by STOW-RS, reports progress and completes it; misbehaves on request."};
  conduit::tools::PerformerOptions options;
  std::string token_file;
  std::string workflow = "pull";
  std::string misbehave = "none";
  std::string work;
  std::string log_file;
  int64_t poll_ms = options.poll.count();
  int64_t slow_ms = options.slow.count();
  int http_timeout_s = 60;
  int control_port = -1;
  app.add_option("--base-url", options.base_url,
                 "UPS-RS/DICOMweb service, e.g. http://127.0.0.1:8080/dicom-web")
      ->required();
  app.add_option("--token-file", token_file, "File holding the bearer token");
  app.add_option("--ae-title", options.ae_title, "The performer's AE title")->required();
  app.add_option("--workflow", workflow, "pull (RAD-81 polling) or triggered (RAD-86/109)")
      ->check(CLI::IsMember({"pull", "triggered"}))
      ->capture_default_str();
  app.add_option("--events-url", options.events_url,
                 "Triggered: the event channel, e.g. ws://127.0.0.1:8081/ws/subscribers/AE "
                 "(wss:// when the gateway serves HTTPS)");
  app.add_option("--ca-file", options.send.tls.ca_file,
                 "https and wss: the CAs to trust (PEM; default: the system's)");
  conduit::tools::AddClientCertificateOptions(app, "", "over https and wss",
                                              options.send.tls.client_certificate,
                                              options.send.tls.client_key);
  app.add_option("--poll-ms", poll_ms, "Pull: query interval")
      ->check(CLI::Range(int64_t{10}, int64_t{3'600'000}))
      ->capture_default_str();
  conduit::tools::AddMisbehaviourOptions(
      app,
      {{"none", "slow", "crash-mid-claim", "malformed", "wrong-references", "cancel", "error"},
       "Workitems",
       "Mode slow: wait before storing and completing"},
      misbehave, options.mode_count, slow_ms);
  app.add_option("--cancel-reason", options.cancel_reason, "Mode cancel: Reason For Cancellation")
      ->capture_default_str();
  app.add_option("--control-port", control_port,
                 "Serve POST /sim/mode and GET /sim/status on 127.0.0.1:PORT (0: any)")
      ->check(CLI::Range(0, 65535));
  app.add_option("--work", work, "Work folder (default: a new folder under the temp dir)");
  app.add_flag("--keep-files", options.keep_files, "Keep each workitem's inputs and results");
  app.add_flag("--once", options.once, "Exit after the first workitem claimed");
  app.add_option("--log", log_file, "Append one JSON line per workitem handled (uid, outcome)");
  app.add_option("--http-timeout-s", http_timeout_s, "Connect/read/write timeout")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  app.add_option("--send-attempts", options.send.attempts, "Attempts to STOW the results")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  spdlog::set_default_logger(spdlog::stderr_logger_mt("aiwi-performer"));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %l [aiwi-performer] %v");
  OFLog::configure(OFLogger::ERROR_LOG_LEVEL);

  options.workflow = workflow == "triggered" ? conduit::tools::Workflow::kTriggered
                                             : conduit::tools::Workflow::kPull;
  if (options.workflow == conduit::tools::Workflow::kTriggered && options.events_url.empty()) {
    std::fprintf(stderr, "conduit-aiwi-performer: --workflow triggered needs --events-url\n");
    return 2;
  }
  options.poll = std::chrono::milliseconds(poll_ms);
  options.slow = std::chrono::milliseconds(slow_ms);
  options.http_timeout = std::chrono::seconds(http_timeout_s);
  options.send.timeout = options.http_timeout;
  options.mode = *conduit::tools::ParsePerformerMode(misbehave);
  options.log_file = log_file;
  options.work_dir = !work.empty() ? std::filesystem::path(work)
                                   : std::filesystem::temp_directory_path() /
                                         ("conduit-aiwi-performer-" + std::to_string(getpid()));
  if (!token_file.empty()) {
    std::optional<std::string> token = conduit::tools::ReadTokenFile(token_file);
    if (!token) {
      std::fprintf(stderr, "conduit-aiwi-performer: cannot read a token from %s\n",
                   token_file.c_str());
      return 1;
    }
    options.token = *token;
  }
  if (options.mode == PerformerMode::kError) {
    spdlog::critical("exiting at start-up (misbehaviour error)");
    return kErrorExitCode;
  }

  // SIGTERM and SIGINT are taken by a thread of our own (blocked before any thread starts).
  conduit::tools::BlockStopSignals();

  DJDecoderRegistration::registerCodecs();
  DJLSDecoderRegistration::registerCodecs();
  DcmRLEDecoderRegistration::registerCodecs();

  const bool own_work_dir = work.empty();
  auto performer = AiwiPerformer::Create(options);
  if (!performer.ok()) {
    std::fprintf(stderr, "conduit-aiwi-performer: %s\n", performer.status().ToString().c_str());
    return 1;
  }
  spdlog::info("NON-CLINICAL AIW-I performer {}: {} workflow, misbehaviour {}", options.ae_title,
               workflow, misbehave);

  httplib::Server control;
  std::jthread control_thread;
  if (control_port >= 0) {
    Routes(control, **performer);
    control.new_task_queue = [] { return new httplib::ThreadPool(2); };
    const int port = control_port == 0
                         ? control.bind_to_any_port("127.0.0.1")
                         : (control.bind_to_port("127.0.0.1", control_port) ? control_port : -1);
    if (port < 0) {
      std::fprintf(stderr, "conduit-aiwi-performer: cannot bind the control port\n");
      return 1;
    }
    std::printf("control on 127.0.0.1:%d\n", port);
    std::fflush(stdout);
    control_thread = std::jthread([&control] {
      pthread_setname_np(pthread_self(), "aiwi-control");
      control.listen_after_bind();
    });
  }

  std::stop_source stop;
  std::jthread signal_thread([&stop](std::stop_token own) {
    pthread_setname_np(pthread_self(), "aiwi-signals");
    if (const int sig = conduit::tools::WaitForStopSignal(own)) {
      spdlog::info("signal {}: stopping", sig);
      stop.request_stop();
    }
  });

  conduit::Status ran = (*performer)->Run(stop.get_token(), [] {
    std::printf("ready\n");
    std::fflush(stdout);
  });
  signal_thread.request_stop();
  signal_thread.join();
  if (control_thread.joinable()) {
    control.stop();
    control_thread.join();
  }
  performer->reset();
  if (own_work_dir) {
    std::error_code ignored;
    std::filesystem::remove_all(options.work_dir, ignored);
  }
  DJDecoderRegistration::cleanup();
  DJLSDecoderRegistration::cleanup();
  DcmRLEDecoderRegistration::cleanup();
  if (!ran.ok()) {
    std::fprintf(stderr, "conduit-aiwi-performer: %s\n", ran.ToString().c_str());
    return 1;
  }
  spdlog::info("stopped");
  return 0;
}
