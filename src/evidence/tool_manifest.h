// ToolManifest: what a vendor (or a trust) declares about one version of an AI tool — who
// makes it, its regulatory marking, its intended use, what it reads and returns, how the
// gateway reaches it, where it is hosted and what it asks to keep. Onboarding a tool is adding
// its manifest to the registry (`conduit tool add`, POST /api/tools); a gateway config's
// `tools:` entry may name a manifest instead of spelling out the settings (docs/onboarding.md).
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/status.h"
#include "governance/policy.h"

namespace conduit {

// kAiwI: a pull-model tool on a UPS worklist (IHE AIW-I over UPS-RS; ToolKind::kWorklist).
enum class ToolProtocol { kDimse, kDicomweb, kAiwI, kExecutable };
// "dimse", "dicomweb", "ups-rs" (read also as "aiw-i"), "executable".
const char* ToolProtocolName(ToolProtocol protocol);

enum class RegulatoryMarking { kNone, kUkca, kCe };
const char* RegulatoryMarkingName(RegulatoryMarking marking);  // "none", "UKCA", "CE"

// What a tool returns; names as in manifests: sr, seg, gsps, kos, sc, parametric_map,
// triage_score.
enum class ToolOutput { kSr, kSeg, kGsps, kKos, kSc, kParametricMap, kTriageScore };
const char* ToolOutputName(ToolOutput output);

struct RegulatoryInfo {
  RegulatoryMarking marking = RegulatoryMarking::kNone;
  std::string device_class;   // "I", "IIa", "IIb", "III"; empty when marking is none
  std::string notified_body;  // required for class IIa and above (UK approved body / EU NB)
  std::string certificate;
};

struct IntendedUse {
  std::string condition;                // e.g. "pulmonary nodules"
  std::vector<std::string> body_parts;  // DICOM Body Part Examined values, e.g. CHEST
  std::string population;               // e.g. "adults (18 and over)"
  std::string setting;                  // e.g. "secondary care, outpatient CT"
  std::string user;                     // e.g. "consultant radiologist"
};

// The least a series must have for the tool to read it.
struct MinSeriesCriteria {
  int slices = 0;                     // 0: no minimum
  double slice_thickness_max_mm = 0;  // 0: no maximum
};

struct ToolInputs {
  std::vector<std::string> modalities;   // DICOM Modality values, e.g. CT
  std::vector<std::string> body_parts;   // may be empty: any
  std::vector<std::string> sop_classes;  // SOP Class UIDs; may be empty: any image
  MinSeriesCriteria min_series;
};

struct ToolEndpoint {
  // dimse: the tool's node (it sends results back to the gateway's AE).
  std::string ae_title;
  std::string host;
  int port = 104;
  // dicomweb: the service's base URL; ups-rs: optional (the performer pulls from Conduit),
  // the performer's own service, recorded only.
  std::string url;
  // executable: argv; the adapter appends --input DIR --output DIR.
  std::vector<std::string> command;
};

struct SupportContact {
  std::string name;
  std::string email;
  std::string phone;
};

struct ToolManifest {
  std::string name;  // [A-Za-z0-9._-], 1 to 64 characters: routes and URLs name it
  std::string vendor;
  std::string version;  // [A-Za-z0-9._+-], 1 to 64 characters
  std::string description;
  RegulatoryInfo regulatory;
  IntendedUse intended_use;
  ToolInputs inputs;
  std::vector<ToolOutput> outputs;  // at least one, each once
  ToolProtocol protocol = ToolProtocol::kExecutable;
  ToolEndpoint endpoint;
  std::string hosting_region;       // required for every protocol but executable
  std::string category;             // the policy's tool category
  std::vector<std::string> retain;  // profile options asked for beyond the policy's
  bool deidentify = false;          // executable only: de-identify although inside the trust
  std::chrono::milliseconds expected_turnaround{0};
  // From dispatch to all results; absent: twice the expected turnaround.
  std::optional<std::chrono::milliseconds> timeout;
  // Earlier studies of the patient the tool reads too (`priors:`, core/priors_yaml.h).
  PriorsConfig priors;
  SupportContact support;
  // SHA-256 hex of the text the manifest was parsed from (the file's bytes).
  std::string hash;
};

// Parses and validates a manifest. Unknown keys, missing required fields and values outside
// their enumerations are refused. `source` names the text in messages.
// Errors: kInvalidArgument "<source>:<line>: <key>: <problem>".
Result<ToolManifest> ParseToolManifest(const std::string& yaml, const std::string& source);
// Errors: kNotFound if the file cannot be read; otherwise those of ParseToolManifest.
Result<ToolManifest> LoadToolManifestFile(const std::filesystem::path& path);

// The canonical JSON form (keys sorted, every field present, durations in milliseconds):
// what the registry stores and the admin API returns.
std::string ToolManifestJson(const ToolManifest& manifest);
// The manifest back from its canonical JSON form: ToolManifestJson(ToolManifestFromJson(j))
// == j. Errors: kInternal for text that is not a canonical form (a damaged registry row).
Result<ToolManifest> ToolManifestFromJson(const std::string& canonical);

// The settings the gateway runs the tool with (for ups-rs without the performer's token, which
// the trust's config gives). Errors: kFailedPrecondition for a protocol this build has no
// adapter for (none at present: every protocol has one).
Result<ToolConfig> ToToolConfig(const ToolManifest& manifest);

// Checks the manifest against the policy as CheckToolsAgainstPolicy checks a configured tool:
// hosting region (every protocol but executable reaches outside the trust), retain options
// within its category. Errors: kFailedPrecondition naming the tool and what the policy allows.
Status CheckManifestAgainstPolicy(const Policy& policy, const ToolManifest& manifest);

// The policy the config names (or the built-in national default), for checking manifests.
// Errors: those of LoadPolicyFile.
Result<Policy> PolicyOfConfig(const Config& config);

// Fills every `tools:` entry that names a manifest (ToolConfig::manifest_file) from it,
// keeping the entry's name if it has one, its `circuit_breaker:` and, for a dicomweb tool, its
// `dicomweb:` settings
// (auth_token_file, chunk_bytes, poll_interval: the trust's, not the vendor's), for a ups-rs
// tool its `worklist:` settings (auth_token_file, priority), then checks
// the whole config again (routes name known tools). Idempotent. Errors: the manifest's own;
// ToToolConfig's; ValidateConfig's; kInvalidArgument for a dicomweb or worklist section on a
// tool whose manifest has another protocol, or a ups-rs manifest without a worklist section.
Status ResolveToolManifests(Config& config, const std::string& source);

}  // namespace conduit
