// conduit-dicomweb-tool-sim: a NON-CLINICAL simulator of an AI vendor's DICOMweb endpoint for
// Conduit's end-to-end tests (see tool_sim.h). NOT FOR DIAGNOSTIC USE.
// Prints "listening on HOST:PORT" on stdout once bound; logs go to stderr.
// Exit codes: 0 stopped by SIGTERM/SIGINT; 1 start-up failure; 2 usage; 3 misbehaviour crash.
#include <dcmtk/dcmdata/dcrledrg.h>
#include <dcmtk/dcmjpeg/djdecode.h>
#include <dcmtk/dcmjpls/djdecode.h>
#include <dcmtk/oflog/oflog.h>
#include <pthread.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <optional>
#include <thread>

#include "common/sim_main.h"
#include "dicomweb_tool_sim/tool_sim.h"

int main(int argc, char** argv) {
  using conduit::tools::Misbehaviour;
  CLI::App app{
      "conduit-dicomweb-tool-sim: NON-CLINICAL simulator of an AI vendor's DICOMweb endpoint,\n"
      "for Conduit's end-to-end tests. NOT FOR DIAGNOSTIC USE. Receives studies by STOW-RS,\n"
      "runs Conduit's reference tool on each and returns its SEG, SR and SC by STOW-RS to the\n"
      "job's Conduit-Results-URL (store) or serves them by QIDO-RS/WADO-RS (poll); misbehaves\n"
      "on request (--misbehave, or POST /sim/mode {\"mode\":..., \"count\":N})."};
  conduit::tools::SimOptions options;
  std::string work;
  std::string token_file;
  std::string results_mode = "store";
  std::string misbehave = "none";
  int64_t quiet_ms = options.quiet.count();
  int64_t slow_ms = options.slow.count();
  int send_timeout_s = 60;
  app.add_option("--port", options.port, "Port to listen on (0: any free port)")
      ->check(CLI::Range(0, 65535));
  app.add_option("--bind", options.bind, "Address to listen on")->capture_default_str();
  app.add_option("--base-path", options.base_path, "DICOMweb base path")->capture_default_str();
  app.add_option("--work", work, "Work folder (received inputs, results)")->required();
  app.add_option("--require-token-file", token_file,
                 "DICOMweb requests must carry \"Authorization: Bearer <token in FILE>\"");
  app.add_option("--quiet-ms", quiet_ms,
                 "Without Conduit-Chunk, a job/study is complete after this long without a new "
                 "instance")
      ->check(CLI::Range(int64_t{1}, int64_t{3'600'000}))
      ->capture_default_str();
  app.add_option("--results-mode", results_mode, "store (STOW-RS back) or poll (QIDO/WADO)")
      ->check(CLI::IsMember({"store", "poll"}))
      ->capture_default_str();
  conduit::tools::AddMisbehaviourOptions(
      app,
      {{"none", "slow", "error5xx", "malformed", "wrong-references", "other-job", "crash"},
       "Studies (error5xx: requests)",
       "Delay before returning results in mode slow"},
      misbehave, options.misbehaviour_count, slow_ms);
  app.add_option("--send-attempts", options.send.attempts,
                 "Attempts to STOW results (connection failures, 429/502/503/504)")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  app.add_option("--send-timeout-s", send_timeout_s, "Connect/read/write timeout for results")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  app.add_option("--results-ca-file", options.send.tls.ca_file,
                 "PEM file of CAs trusted for an https results URL");
  conduit::tools::AddClientCertificateOptions(app, "results-", "to an https results URL",
                                              options.send.tls.client_certificate,
                                              options.send.tls.client_key);
  auto* tls_cert = app.add_option("--tls-cert", options.tls_certificate,
                                  "Serve https with this PEM certificate (with --tls-key)");
  auto* tls_key =
      app.add_option("--tls-key", options.tls_key, "PEM private key of --tls-cert (unencrypted)");
  tls_cert->needs(tls_key);
  tls_key->needs(tls_cert);
  app.add_option("--tls-client-ca", options.tls_client_ca,
                 "With --tls-cert: want a client certificate issued by a CA in this PEM file")
      ->needs(tls_cert);
  app.add_option("--http-threads", options.http_threads, "HTTP worker threads")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--workers", options.workers, "Studies analysed at once")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  spdlog::set_default_logger(spdlog::stderr_logger_mt("dicomweb-tool-sim"));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %l [tool-sim] %v");
  OFLog::configure(OFLogger::ERROR_LOG_LEVEL);

  options.work_dir = work;
  options.quiet = std::chrono::milliseconds(quiet_ms);
  options.slow = std::chrono::milliseconds(slow_ms);
  options.send.timeout = std::chrono::seconds(send_timeout_s);
  options.results_mode = results_mode == "poll" ? conduit::tools::ResultsMode::kPoll
                                                : conduit::tools::ResultsMode::kStore;
  options.misbehaviour = *conduit::tools::ParseMisbehaviour(misbehave);
  if (!token_file.empty()) {
    std::optional<std::string> token = conduit::tools::ReadTokenFile(token_file);
    if (!token) {
      std::fprintf(stderr, "conduit-dicomweb-tool-sim: cannot read a token from %s\n",
                   token_file.c_str());
      return 1;
    }
    options.required_token = *token;
  }

  // SIGTERM and SIGINT are taken by a thread of our own (blocked before any thread starts).
  conduit::tools::BlockStopSignals();

  DJDecoderRegistration::registerCodecs();
  DJLSDecoderRegistration::registerCodecs();
  DcmRLEDecoderRegistration::registerCodecs();

  conduit::SystemClock clock;
  auto sim = conduit::tools::DicomwebToolSim::Create(options, clock);
  if (!sim.ok()) {
    std::fprintf(stderr, "conduit-dicomweb-tool-sim: %s\n", sim.status().ToString().c_str());
    return 1;
  }
  conduit::Result<int> port = (*sim)->Bind();
  if (!port.ok()) {
    std::fprintf(stderr, "conduit-dicomweb-tool-sim: %s\n", port.status().ToString().c_str());
    return 1;
  }
  spdlog::info("NON-CLINICAL DICOMweb tool simulator: results {}, misbehaviour {}", results_mode,
               misbehave);
  std::printf("listening on %s:%d\n", options.bind.c_str(), *port);
  std::fflush(stdout);

  conduit::tools::DicomwebToolSim& server = **sim;
  std::jthread signal_thread([&server](std::stop_token stop) {
    pthread_setname_np(pthread_self(), "sim-signals");
    if (const int sig = conduit::tools::WaitForStopSignal(stop)) {
      spdlog::info("signal {}: stopping", sig);
    }
    // Repeated until Serve returns: a stop before the server runs would be lost.
    while (!stop.stop_requested()) {
      server.Stop();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  server.Serve();
  signal_thread.request_stop();
  signal_thread.join();
  sim->reset();
  DJDecoderRegistration::cleanup();
  DJLSDecoderRegistration::cleanup();
  DcmRLEDecoderRegistration::cleanup();
  spdlog::info("stopped");
  return 0;
}
