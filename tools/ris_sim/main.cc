// conduit-ris-sim: NON-CLINICAL RIS simulator (see ris_sim.h).
//   listen: conduit-ris-sim --listen 2575 --mode ae-first-2 --log received.jsonl
//   send:   conduit-ris-sim --send orm-complete --accession ACC1 --to 127.0.0.1:2576
//           (also: --send oru-report, or --send @message.hl7); exit code 0 AA, 1 AE, 2 AR,
//           3 no answer / no connection, 4 bad usage.
//   TLS (either way): --tls-ca CA.pem [--tls-cert C.pem --tls-key C.key]; listening needs the
//   certificate, and then wants a client certificate from that CA.
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <thread>

#include "hl7/hl7_ack.h"
#include "hl7/mllp.h"
#include "ris_sim/ris_sim.h"

namespace {

volatile std::sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

// The TLS files given on the command line (all empty: MLLP in the clear).
struct TlsFiles {
  std::string ca, certificate, key;
  bool on() const { return !ca.empty() || !certificate.empty(); }
};

int Send(const std::string& what, const conduit::tools::RisSimOutgoing& outgoing,
         const std::string& to, int ack_timeout_ms, const TlsFiles& tls) {
  std::string er7;
  if (!what.empty() && what[0] == '@') {
    std::ifstream in(what.substr(1), std::ios::binary);
    if (!in) {
      std::cerr << "ris sim: cannot read " << what.substr(1) << "\n";
      return 4;
    }
    er7.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  } else {
    conduit::tools::RisSimOutgoing o = outgoing;
    o.kind = what;
    auto built = conduit::tools::BuildOutgoing(o, conduit::SystemClock().Now());
    if (!built.ok()) {
      std::cerr << built.status().message() << "\n";
      return 4;
    }
    er7 = *built;
  }
  auto message = conduit::Hl7Message::Parse(er7);
  if (!message.ok()) {
    std::cerr << "ris sim: message does not parse: " << message.status().message() << "\n";
    return 4;
  }
  const size_t colon = to.rfind(':');
  if (colon == std::string::npos) {
    std::cerr << "ris sim: --to is HOST:PORT\n";
    return 4;
  }
  conduit::MllpSenderOptions options;
  options.host = to.substr(0, colon);
  options.port = std::atoi(to.substr(colon + 1).c_str());
  options.ack_timeout = std::chrono::milliseconds(ack_timeout_ms);
  if (tls.on()) {
    auto context = conduit::MakeMllpClientContext({true, tls.ca, tls.certificate, tls.key, {}},
                                                  "ris sim --tls");
    if (!context.ok()) {
      std::cerr << context.status().message() << "\n";
      return 4;
    }
    options.tls = *context;
  }
  conduit::MllpSender sender(options);
  auto ack = sender.Exchange(*message);
  if (!ack.ok()) {
    std::cerr << ack.status().ToString() << "\n";
    return 3;
  }
  std::cout << conduit::AckCodeText(ack->code) << " " << ack->acknowledged_control_id
            << (ack->error_code.empty() ? "" : " error " + ack->error_code) << "\n";
  switch (ack->code) {
    case conduit::AckCode::kAccept:
      return 0;
    case conduit::AckCode::kError:
      return 1;
    case conduit::AckCode::kReject:
      return 2;
  }
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"conduit-ris-sim: NON-CLINICAL RIS simulator over HL7 v2 / MLLP"};
  int listen_port = -1;
  std::string bind = "127.0.0.1";
  std::string mode_text = "aa";
  int slow_ms = 2000;
  std::string log_file;
  std::string port_file;
  std::string send;
  std::string to;
  int ack_timeout_ms = 10'000;
  conduit::tools::RisSimOutgoing outgoing;
  TlsFiles tls;
  app.add_option("--tls-ca", tls.ca, "TLS: CA file the peer's certificate must chain to");
  app.add_option("--tls-cert", tls.certificate, "TLS: our certificate (PEM)");
  app.add_option("--tls-key", tls.key, "TLS: its private key (PEM, unencrypted)");
  app.add_option("--listen", listen_port, "MLLP port to listen on (0: any free port)")
      ->check(CLI::Range(0, 65535));
  app.add_option("--bind", bind, "Address to listen on (IPv4)");
  app.add_option("--mode", mode_text, "aa, ae-first-N, ar, silent or slow");
  app.add_option("--slow-ms", slow_ms, "Delay before each ACK in slow mode")
      ->check(CLI::Range(0, 3'600'000));
  app.add_option("--log", log_file, "Append one JSON line per message received to this file");
  app.add_option("--port-file", port_file, "Write the port listened on to this file");
  app.add_option("--send", send, "orm-complete, oru-report or @FILE (an ER7 message)");
  app.add_option("--to", to, "HOST:PORT to send to");
  app.add_option("--ack-timeout-ms", ack_timeout_ms, "Wait this long for the ACK")
      ->check(CLI::Range(1, 3'600'000));
  app.add_option("--accession", outgoing.accession, "Accession number of the order or report");
  app.add_option("--patient-id", outgoing.patient_id, "PID-3");
  app.add_option("--control-id", outgoing.control_id, "MSH-10 (default from the time)");
  app.add_option("--report-text", outgoing.report_text, "oru-report: the report text");
  app.add_option("--report-status", outgoing.report_status, "oru-report: OBR-25 (P, F, C)");
  app.add_option("--code", outgoing.code, "oru-report: a coded finding SCHEME:VALUE");
  CLI11_PARSE(app, argc, argv);
  std::signal(SIGPIPE, SIG_IGN);  // a peer gone mid-write is an error, not the end

  if (!send.empty()) {
    if (to.empty()) {
      std::cerr << "ris sim: --send needs --to HOST:PORT\n";
      return 4;
    }
    return Send(send, outgoing, to, ack_timeout_ms, tls);
  }
  if (listen_port < 0) {
    std::cerr << "ris sim: give --listen PORT or --send KIND --to HOST:PORT\n";
    return 4;
  }
  auto mode = conduit::tools::RisSimMode::Parse(mode_text);
  if (!mode.ok()) {
    std::cerr << mode.status().message() << "\n";
    return 4;
  }
  mode->delay = std::chrono::milliseconds(slow_ms);
  std::FILE* log = nullptr;
  if (!log_file.empty()) {
    log = std::fopen(log_file.c_str(), "a");
    if (log == nullptr) {
      std::cerr << "ris sim: cannot open " << log_file << "\n";
      return 4;
    }
  }
  conduit::SystemClock clock;
  conduit::tools::RisSimPeer peer(*mode, log, clock);
  conduit::MllpListenerOptions options;
  options.bind = bind;
  options.port = listen_port;
  options.application = "RISSIM";
  if (tls.on()) {
    conduit::DicomTlsListenerConfig files;
    files.certificate_file = tls.certificate;
    files.key_file = tls.key;
    files.ca_file = tls.ca;
    auto context = conduit::MakeMllpServerContext(files, "ris sim --tls");
    if (!context.ok()) {
      std::cerr << context.status().message() << "\n";
      return 4;
    }
    options.tls = *context;
  }
  conduit::MllpListener listener(
      options, [&peer](std::string_view payload) { return peer.Handle(payload); }, clock);
  if (auto st = listener.Start(); !st.ok()) {
    std::cerr << st.ToString() << "\n";
    return 3;
  }
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  if (!port_file.empty()) {
    std::ofstream out(port_file + ".tmp");
    out << listener.port() << "\n";
    out.close();
    std::rename((port_file + ".tmp").c_str(), port_file.c_str());
  }
  std::cout << "conduit-ris-sim (NON-CLINICAL) listening on " << bind << ":" << listener.port()
            << " mode " << mode_text << (tls.on() ? " over TLS" : "") << std::endl;
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  peer.Stopping();
  listener.Stop();
  if (log != nullptr) std::fclose(log);
  return 0;
}
