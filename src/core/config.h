// Config: the gateway's whole configuration, loaded from YAML (conduit serve --config FILE)
// or the embedded default. Loading validates everything up front; errors name the file,
// the line and the key, so a wrong config never starts a half-working gateway.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "core/ids.h"
#include "core/status.h"

namespace conduit {

using std::chrono::milliseconds;

struct NodeConfig {
  std::string name = "conduit";
  std::filesystem::path data_dir = "./var";
  std::string log_level = "info";  // trace, debug, info, warn, error
};

struct DicomConfig {
  AeTitle ae_title{"CONDUIT"};
  std::string bind = "0.0.0.0";
  int port = 11112;
  // Calling AE titles allowed to associate; empty means any.
  std::vector<std::string> allowed_calling_aes;
  // Concurrent associations; one more is rejected (transient, local limit exceeded).
  int max_associations = 32;
  milliseconds acse_timeout{30'000};
  milliseconds dimse_timeout{60'000};
  uint32_t max_pdu_bytes = 131072;
  // Below this much free space in data_dir, C-STORE is refused (out of resources).
  uint64_t min_free_bytes = 512ull << 20;
};

struct HttpConfig {
  std::string bind = "127.0.0.1";
  int port = 8080;  // 0 disables the HTTP front end
  int threads = 4;
  // The base URL tools use to reach this gateway (results by STOW-RS, inputs by WADO-RS),
  // e.g. "https://conduit.trust.nhs.uk:8443". Empty: "http://<bind>:<port>".
  std::string public_url;
  // Largest STOW-RS request body accepted (bytes; streamed to disk, never held in memory).
  uint64_t max_stow_bytes = 16ull << 30;
};

// A DICOM peer that results are delivered to (usually PACS).
struct DestinationConfig {
  std::string name;
  AeTitle ae_title;
  std::string host;
  int port = 104;
  milliseconds timeout{30'000};
};

enum class ToolKind { kExecutable, kDimse, kDicomweb };

// When a tool keeps failing (unavailable, exhausted, timed out), its jobs stop being sent to
// it for a while instead of burning their retries; one probe then tests whether it is back.
struct CircuitBreakerConfig {
  // Consecutive failures that open the circuit; 0 disables the breaker.
  int failure_threshold = 5;
  // How long it stays open before one probe; doubled each time a probe fails, up to the max.
  milliseconds open_for{60'000};
  milliseconds max_open_for{900'000};
};

struct ToolConfig {
  std::string name;
  // Set when the config names a tool manifest (`manifest: FILE`) instead of the settings
  // below: the composition root fills them from it (ResolveToolManifests), keeping `name` if
  // given. Relative to the config file's folder once loaded.
  std::filesystem::path manifest_file;
  ToolKind kind = ToolKind::kExecutable;
  // kExecutable: argv; the adapter appends --input DIR --output DIR.
  std::vector<std::string> command;
  // kDimse: the tool's node, which receives the study and sends results back to our AE.
  AeTitle ae_title;
  std::string host;
  int port = 104;
  // kDicomweb: the tool's DICOMweb base URL (STOW-RS goes to <url>/studies), http or https.
  std::string url;
  // kDicomweb: a file holding the bearer token the tool expects (kept out of the config and
  // the logs); empty: no Authorization header.
  std::filesystem::path auth_token_file;
  // kDicomweb: a STOW-RS request carries at most this many bytes of instances; a larger study
  // goes in several requests.
  uint64_t chunk_bytes = 64ull << 20;
  // kDicomweb: when above zero, Conduit also polls the tool (QIDO-RS on the study it sent,
  // then WADO-RS) for results at this interval, for tools that cannot STOW back.
  milliseconds poll_interval{0};
  // Jobs running on this tool at once; others wait, without delaying other tools.
  int max_concurrent = 2;
  // From dispatch to all results received.
  milliseconds timeout{600'000};
  // kDimse, kDicomweb: results are complete when none arrived for this long.
  milliseconds results_stable_after{5'000};
  // From dispatch to results, as the tool declares (its manifest); a job taking longer is
  // reported (log, metric), not failed. 0: no alert.
  milliseconds expected_turnaround{0};
  CircuitBreakerConfig circuit_breaker;
  // Information governance (checked against the policy at load):
  // where the tool runs (e.g. "UK"); required for tools outside the trust.
  std::string hosting_region;
  // its category in the policy (e.g. "triage"): decides which retain options it may have.
  std::string category;
  // profile options it asks for beyond the policy's (names as in the policy file).
  std::vector<std::string> retain;
  // Whether transfers to it are de-identified. Always for remote tools (IsRemote), whatever
  // this says; for a local executable, inside the trust, only when true.
  bool deidentify = false;

  bool IsRemote() const { return kind != ToolKind::kExecutable; }
  bool Deidentified() const { return IsRemote() || deidentify; }
};

// One condition of a route: the attribute (DICOM keyword, or CallingAE) must match one of
// the patterns. Patterns are case-insensitive globs (* and ?); a leading '!' negates.
struct RouteCondition {
  std::string attribute;
  std::vector<std::string> patterns;
};

enum class RouteScope { kStudy, kSeries };
enum class LateInstancePolicy { kIgnore, kRerun };

// A route selects studies (or series) for a deployment: a tool plus where its results go.
struct RouteConfig {
  std::string name;
  std::vector<RouteCondition> when;  // all must hold
  std::string tool;
  std::vector<std::string> results_to;
  milliseconds stable_after{60'000};
  RouteScope select = RouteScope::kStudy;
  LateInstancePolicy on_late = LateInstancePolicy::kIgnore;
};

struct RetryConfig {
  int max_attempts = 6;
  milliseconds initial_backoff{2'000};
  milliseconds max_backoff{300'000};
};

// Information governance: the policy file and the pseudonymisation key.
struct GovernanceConfig {
  // Empty: the built-in national default policy.
  std::filesystem::path policy_file;
  // Empty: <data_dir>/keys/pseudonym.key, created (0600) at first start if absent.
  std::filesystem::path key_file;
};

struct Config {
  NodeConfig node;
  GovernanceConfig governance;
  DicomConfig dicom;
  HttpConfig http;
  std::vector<DestinationConfig> destinations;
  std::vector<ToolConfig> tools;
  std::vector<RouteConfig> routes;
  RetryConfig retry;

  const ToolConfig* FindTool(std::string_view name) const;
  const DestinationConfig* FindDestination(std::string_view name) const;
  const RouteConfig* FindRoute(std::string_view name) const;
};

// Parses and validates YAML. `source` names the text in error messages (a file path).
// Errors: kInvalidArgument with "<source>:<line>: <key>: <problem>".
Result<Config> ParseConfig(const std::string& yaml, const std::string& source);
Result<Config> LoadConfigFile(const std::filesystem::path& path);

// The configuration `conduit serve` runs with no --config: local data dir, the reference
// tool next to the conduit binary, a PACS at ORTHANC@127.0.0.1:4242.
Config EmbeddedDefaultConfig(const std::filesystem::path& binary_dir);

// Cross-reference checks: routes name known tools and destinations, names are unique,
// ports in range. ParseConfig already calls it; while a tool named by its manifest alone is
// unresolved (empty name), routes may name tools not yet known.
Status ValidateConfig(const Config& config, const std::string& source);

}  // namespace conduit
