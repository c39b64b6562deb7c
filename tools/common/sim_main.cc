#include "common/sim_main.h"

#include <pthread.h>

#include <fstream>
#include <sstream>

namespace conduit::tools {

void AddClientCertificateOptions(CLI::App& app, const std::string& prefix, const std::string& use,
                                 std::string& certificate, std::string& key) {
  const std::string cert_flag = "--" + prefix + "client-cert";
  const std::string key_flag = "--" + prefix + "client-key";
  auto* cert = app.add_option(cert_flag, certificate,
                              "Present this PEM client certificate " + use + " (with " + key_flag +
                                  "), for a gateway that asks for one")
                   ->check(CLI::ExistingFile);
  auto* private_key =
      app.add_option(key_flag, key, "PEM private key of " + cert_flag + " (unencrypted)")
          ->check(CLI::ExistingFile);
  cert->needs(private_key);
  private_key->needs(cert);
}

void AddMisbehaviourOptions(CLI::App& app, const MisbehaviourHelp& help, std::string& mode,
                            int& count, int64_t& slow_ms) {
  std::string names;
  for (size_t i = 0; i < help.modes.size(); ++i) {
    if (i > 0) names += i + 1 == help.modes.size() ? " or " : ", ";
    names += help.modes[i];
  }
  app.add_option("--misbehave", mode, names)
      ->check(CLI::IsMember(help.modes))
      ->capture_default_str();
  app.add_option("--misbehave-count", count, help.count + " the misbehaviour applies to; -1: all")
      ->capture_default_str();
  app.add_option("--slow-ms", slow_ms, help.slow)
      ->check(CLI::Range(int64_t{0}, int64_t{86'400'000}))
      ->capture_default_str();
}

std::optional<std::string> ReadTokenFile(const std::string& file) {
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) return std::nullopt;
  const std::string all = text.str();
  const char* space = " \t\r\n";
  const size_t begin = all.find_first_not_of(space);
  if (begin == std::string::npos) return std::nullopt;
  return all.substr(begin, all.find_last_not_of(space) - begin + 1);
}

void BlockStopSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

int WaitForStopSignal(std::stop_token stop) {
  sigset_t wanted;
  sigemptyset(&wanted);
  sigaddset(&wanted, SIGTERM);
  sigaddset(&wanted, SIGINT);
  const timespec wait{0, 200'000'000};
  while (!stop.stop_requested()) {
    const int sig = sigtimedwait(&wanted, nullptr, &wait);
    if (sig == SIGTERM || sig == SIGINT) return sig;
  }
  return 0;
}

}  // namespace conduit::tools
