// Start-up shared by the NON-CLINICAL simulators' mains (conduit-dicomweb-tool-sim,
// conduit-aiwi-performer): the misbehaviour options, the bearer token file, and SIGTERM/SIGINT
// taken by a thread of the program's own.
#pragma once

#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdint>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

namespace conduit::tools {

// What the misbehaviour options say in --help.
struct MisbehaviourHelp {
  std::vector<std::string> modes;  // every mode's name, "none" first
  std::string count;               // what --misbehave-count counts
  std::string slow;                // what mode slow does with --slow-ms
};

// Adds --misbehave (one of help.modes), --misbehave-count and --slow-ms (0 to 86,400,000),
// each showing its default, bound to `mode`, `count` and `slow_ms`.
void AddMisbehaviourOptions(CLI::App& app, const MisbehaviourHelp& help, std::string& mode,
                            int& count, int64_t& slow_ms);

// Adds --<prefix>client-cert and --<prefix>client-key (existing files, each needing the
// other): the PEM client certificate a simulator presents over https and wss to a gateway
// that asks for one, and its unencrypted key. `use` says where, for the help text.
void AddClientCertificateOptions(CLI::App& app, const std::string& prefix, const std::string& use,
                                 std::string& certificate, std::string& key);

// The bearer token held in `file`, surrounding white space removed; nullopt if the file cannot
// be read or holds nothing else.
std::optional<std::string> ReadTokenFile(const std::string& file);

// Blocks SIGTERM and SIGINT in the calling thread (call before any thread starts, so that
// every thread inherits it) and ignores SIGPIPE.
void BlockStopSignals();

// Waits for SIGTERM or SIGINT (blocked by BlockStopSignals), waking every 200 ms to look at
// `stop`. The signal's number, or 0 once `stop` is requested.
int WaitForStopSignal(std::stop_token stop);

}  // namespace conduit::tools
