// Config: the gateway's whole configuration, loaded from YAML (conduit serve --config FILE)
// or the embedded default. Loading validates everything up front; errors name the file,
// the line and the key, so a wrong config never starts a half-working gateway.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/address_range.h"
#include "core/ids.h"
#include "core/status.h"

namespace conduit {

using std::chrono::milliseconds;

struct NodeConfig {
  std::string name = "conduit";
  std::filesystem::path data_dir = "./var";
  std::string log_level = "info";  // trace, debug, info, warn, error
};

// How Conduit reaches a peer over TLS: a tool or PACS at an https URL, or a DICOM node with a
// `tls:` section (DICOM PS3.15 Annex B). The peer's certificate is always verified (chain,
// validity, and that it names the host Conduit connects to); empty paths: the system's CAs, no
// client certificate. Files are PEM, read at each connection so that renewed ones take effect
// at once.
struct TlsClientConfig {
  bool enabled = false;                           // the config has a tls: section
  std::filesystem::path ca_file;                  // CAs trusted instead of the system's
  std::filesystem::path client_certificate_file;  // presented for mutual TLS (with the key)
  std::filesystem::path client_key_file;          // its private key, unencrypted
  std::filesystem::path crl_file;  // PEM CRLs: a peer certificate they revoke is refused

  bool empty() const {
    return ca_file.empty() && client_certificate_file.empty() && client_key_file.empty() &&
           crl_file.empty();
  }
};

// The DICOM TLS listener (`dicom.tls`): a second port, same AE title and rules as the plain
// one, speaking only TLS (BCP 195 non-downgrading profile). PEM files.
struct DicomTlsListenerConfig {
  int port = 0;                            // 0: no TLS listener
  std::filesystem::path certificate_file;  // ours, followed by any intermediate CAs
  std::filesystem::path key_file;          // its private key, unencrypted
  // CAs whose client certificates are accepted; empty: the system's CAs.
  std::filesystem::path ca_file;
  // Refuse a peer that presents no certificate (else verify one if presented).
  bool require_client_certificate = true;
  // PEM certificate revocation lists (the CAs' of ca_file): a client certificate they revoke is
  // refused. Read again whenever the file changes. Empty: no revocation check.
  std::filesystem::path crl_file;
};

struct DicomConfig {
  AeTitle ae_title{"CONDUIT"};
  std::string bind = "0.0.0.0";
  int port = 11112;
  // Calling AE titles allowed to associate; empty means any.
  std::vector<std::string> allowed_calling_aes;
  // Of those, the ones bound to addresses: they may associate from these only (the YAML item
  // {ae_title: CT1, hosts: [10.1.2.3]} in allowed_calling_aes).
  std::map<std::string, std::vector<AddressRange>> calling_ae_hosts;
  // Concurrent associations; one more is rejected (transient, local limit exceeded).
  int max_associations = 32;
  milliseconds acse_timeout{30'000};
  milliseconds dimse_timeout{60'000};
  uint32_t max_pdu_bytes = 131072;
  // Below this much free space in data_dir, C-STORE is refused (out of resources).
  uint64_t min_free_bytes = 512ull << 20;
  DicomTlsListenerConfig tls;
};

struct HttpConfig {
  // Anything but a loopback address (IsLoopbackHost) needs api_token_file.
  std::string bind = "127.0.0.1";
  int port = 8080;  // 0 disables the HTTP front end
  // The bearer tokens (one a line; # comments) that open the admin API, /metrics and the
  // DICOMweb server on the original studies; GET /api/health stays open. Per-job and UPS-RS
  // endpoints keep their own tokens. Empty: no authentication (loopback bind only).
  std::filesystem::path api_token_file;
  int threads = 4;
  // How many connections of one client (IP address) are served at once; its others wait for
  // one of these to end, so the remaining workers stay free for other clients. Defaults to
  // threads - 1 (at least 1) when not given.
  int max_connections_per_client = 3;
  // A request's line and headers (and a TLS handshake) must arrive within this; a client that
  // drips them is cut off, so that few can hold the `threads` workers.
  milliseconds request_header_timeout{20'000};
  // The base URL tools use to reach this gateway (results by STOW-RS, inputs by WADO-RS),
  // e.g. "https://conduit.trust.nhs.uk:8443". Empty: "http://<bind>:<port>".
  std::string public_url;
  // Largest STOW-RS request body accepted (bytes; streamed to disk, never held in memory).
  uint64_t max_stow_bytes = 16ull << 30;
  // The UPS-RS event channel (WebSocket, IHE AIW-I RAD-109) on bind:event_channel_port, served
  // when a worklist tool is configured and the HTTP front end is on. -1 (the default, when
  // not given): port + 1. 0: no event channel (subscribers then catch up by query).
  int event_channel_port = -1;
  // Serve https with this certificate (ours, then any intermediate CAs) and unencrypted key,
  // PEM both, loaded at start; both empty: plain http. The event channel is then wss://.
  std::filesystem::path tls_certificate_file;
  std::filesystem::path tls_key_file;
  // With tls: mutual TLS. Every client (PACS, tools, performers, Prometheus, browsers) must
  // present a certificate that chains to a CA in this PEM file and, with tls_crl_file, is not
  // revoked (the CRL file is re-read when it changes); on the event channel too. Empty: no
  // client certificate is asked for. Bearer tokens are still required where they are.
  std::filesystem::path tls_ca_file;
  std::filesystem::path tls_crl_file;
  // Reverse proxies (addresses or CIDR blocks) whose X-Forwarded-For is believed: a request
  // from one is logged and audited with the client address the header gives (the first from
  // the right that is not itself such a proxy), and the proxy as `via`. Empty: the header is
  // ignored, from anyone.
  std::vector<AddressRange> trusted_proxies;
  bool tls() const { return !tls_certificate_file.empty(); }
};

// A DICOM peer that results are delivered to (usually PACS).
// A PACS (or archive) that results go to: by C-STORE to ae_title@host:port, or, when
// dicomweb_url is set, by STOW-RS to <dicomweb_url>/studies.
struct DestinationConfig {
  std::string name;
  AeTitle ae_title;
  std::string host;
  int port = 104;
  // DIMSE: the longest wait for any one answer; STOW-RS: for each request (at most
  // chunk_bytes of results), from connecting to its answer.
  milliseconds timeout{30'000};
  TlsClientConfig tls;       // DIMSE: enabled for DICOM over TLS; STOW-RS: for an https url
  std::string dicomweb_url;  // base URL, http(s)://host[:port]/path
  std::filesystem::path auth_token_file;  // STOW-RS bearer token; empty: none
  uint64_t chunk_bytes = 64ull << 20;     // STOW-RS: results per request, by size

  bool stow() const { return !dicomweb_url.empty(); }
  // Storage Commitment (PS3.4 Annex J, IHE RAD-10): a result counts as delivered only once
  // this PACS has reported it committed, within commitment_timeout of the request (else it
  // is sent and asked again); the report comes back to Conduit's listener on an association
  // the PACS opens, whenever it comes (results/commitment_ledger.h).
  bool storage_commitment = false;
  milliseconds commitment_timeout{120'000};
};

// kWorklist: a pull-model tool (IHE AIW-I): Conduit schedules a UPS workitem on the tool's
// worklist, which the tool's performer claims and completes over UPS-RS.
enum class ToolKind { kExecutable, kDimse, kDicomweb, kWorklist };

// When a tool keeps failing (unavailable, exhausted, timed out), its jobs stop being sent to
// it for a while instead of burning their retries; one probe then tests whether it is back.
struct CircuitBreakerConfig {
  // Consecutive failures that open the circuit; 0 disables the breaker.
  int failure_threshold = 5;
  // How long it stays open before one probe; doubled each time a probe fails, up to the max.
  milliseconds open_for{60'000};
  milliseconds max_open_for{900'000};
};

// Earlier studies of the same patient that a tool reads beside the current one (its manifest's
// or its entry's `priors:`), found on and fetched from the config's priors_source.
enum class PriorsOnMissing { kProceed, kWait };
struct PriorsConfig {
  // How many priors, the most recent first; 0: the tool asks for none.
  int count = 0;
  // Only studies at most this much older than the current one; 0: any age.
  milliseconds max_age{0};
  // Comparable studies: the current study's modality among theirs (unless same_modality is
  // false), the same body part when asked, and a study description matching the pattern
  // (case-insensitive glob, * and ?) when one is given.
  bool same_modality = true;
  bool same_body_part = false;
  std::string study_description;
  // Finding and fetching them may take this long; what is not fetched by then is missing.
  milliseconds time_limit{60'000};
  // A missing prior: send the job without it, or wait (the dispatch is retried with backoff).
  PriorsOnMissing on_missing = PriorsOnMissing::kProceed;
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
  // kWorklist (required): inbound instead, the bearer token the tool's performer presents to
  // Conduit's UPS-RS service; it identifies the tool, so no two worklist tools share one file.
  std::filesystem::path auth_token_file;
  // kWorklist: the Scheduled Procedure Step Priority of its workitems: HIGH, MEDIUM or LOW.
  std::string priority = "MEDIUM";
  // kDicomweb (an https url) and kDimse (enabled: DICOM over TLS): the trust's CAs and
  // client certificate.
  TlsClientConfig tls;
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
  // reported (log, metric), not failed. 0: no alert. kWorklist: a claimed workitem with no
  // progress for this long (for `timeout` when 0) is abandoned and scheduled again.
  milliseconds expected_turnaround{0};
  CircuitBreakerConfig circuit_breaker;
  // Earlier studies sent with each job (see PriorsConfig); count 0: none.
  PriorsConfig priors;
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
  // An evaluation before go-live: the tool gets the studies and its results are validated,
  // kept and their findings recorded like any other job's, but nothing is delivered to PACS
  // or reported to the RIS. results_to must then be empty.
  bool shadow = false;
  milliseconds stable_after{60'000};
  RouteScope select = RouteScope::kStudy;
  LateInstancePolicy on_late = LateInstancePolicy::kIgnore;
};

// Where priors are found and fetched from: a PACS over DIMSE (C-FIND and C-GET, from our
// dicom.ae_title) or over DICOMweb (QIDO-RS and WADO-RS).
enum class PriorsSourceKind { kNone, kDimse, kDicomweb };
// How a DIMSE priors source hands a study over: C-GET on our association, or C-MOVE to our AE
// title (the PACS opens associations to our listener).
enum class PriorsRetrieve { kGet, kMove };

struct PriorsSourceConfig {
  PriorsSourceKind kind = PriorsSourceKind::kNone;
  // kDimse: the PACS's node.
  AeTitle ae_title;
  std::string host;
  int port = 104;
  PriorsRetrieve retrieve = PriorsRetrieve::kGet;  // kDimse
  // kDicomweb: the PACS's DICOMweb base URL and a file holding its bearer token (optional).
  std::string url;
  std::filesystem::path auth_token_file;
  TlsClientConfig tls;  // kDicomweb: for an https url; kDimse: enabled means DICOM over TLS
  // Longest wait for any one answer (association, DIMSE message, HTTP read).
  milliseconds timeout{30'000};
};

// When a job's findings make its study urgent, so that the RIS is asked to raise the order's
// priority to stat. A job is urgent when any of its findings matches: a finding, triage or flag
// whose coded value (or, for a flag, its concept: the KOS title) is one of `codes`, or a score
// at least `score_at_least`. No codes and no threshold: never urgent.
struct RisUrgencyRule {
  std::vector<std::string> codes;        // "SCHEME:VALUE", e.g. "SCT:52101004"
  std::optional<double> score_at_least;  // kind "score" (a NUM whose concept names a score)
};

enum class RisPriorityMessage { kNone, kOmi, kOrm };  // none, OMI^O23, ORM^O01

// The RIS over HL7 v2.5.1 and MLLP: where AI results and priority updates go, and the port
// the RIS sends orders and reports to. Absent `ris:` (host empty): no RIS.
struct RisConfig {
  std::string name = "ris";  // the outbox destination, in metrics, audit and logs
  std::string host;          // the RIS's MLLP endpoint; empty: nothing is sent
  int port = 0;
  std::string receiving_application;            // MSH-5
  std::string receiving_facility;               // MSH-6
  std::string sending_application = "CONDUIT";  // MSH-3 (also of our ACKs)
  std::string sending_facility;                 // MSH-4
  std::string processing_id = "P";              // MSH-11: P, T or D
  std::string listen_bind = "0.0.0.0";
  int listen_port = 0;  // MLLP listener for orders and reports from the RIS; 0: off
  // Addresses the listener takes connections from; empty: any (warned about at start when
  // listen_bind is not a loopback address).
  std::vector<AddressRange> listen_allowed_hosts;
  // MLLP over TLS (ris.tls), both ways: the listener's certificate and the CAs of the RIS's
  // client certificate (listen_tls; port unused), and the CAs the RIS's server certificate
  // must chain to, with our certificate for mutual TLS (send_tls). Off unless tls is true.
  bool tls = false;
  DicomTlsListenerConfig listen_tls;
  TlsClientConfig send_tls;
  milliseconds connect_timeout{10'000};
  milliseconds ack_timeout{30'000};
  milliseconds initial_backoff{5'000};
  milliseconds max_backoff{600'000};
  // Attempts ending in AE, a timeout or no connection before a message fails for good;
  // 0: retried until it is acknowledged or refused (AR).
  int max_attempts = 0;
  bool send_results = true;  // ORU^R01 with the AI findings of each delivered job
  RisPriorityMessage priority_message = RisPriorityMessage::kOmi;
  RisUrgencyRule urgent_when;

  bool sends() const { return !host.empty(); }
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
  RisConfig ris;
  PriorsSourceConfig priors_source;

  const ToolConfig* FindTool(std::string_view name) const;
  const DestinationConfig* FindDestination(std::string_view name) const;
  const RouteConfig* FindRoute(std::string_view name) const;
};

// What in a valid configuration leaves a door open that the operator may not mean to (e.g. an
// MLLP listener that takes orders and reports from any address), one sentence each; shown by
// `conduit config check` and logged as warnings at start.
std::vector<std::string> ExposureWarnings(const Config& config);

// True if `host` is a loopback address: "localhost", 127.0.0.0/8, ::1 (also IPv4-mapped
// ::ffff:127.x.y.z). Anything else, the wildcards 0.0.0.0 and :: included, is reachable from
// the network.
bool IsLoopbackHost(std::string_view host);

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
