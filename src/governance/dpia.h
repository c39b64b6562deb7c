// A pre-filled data protection impact assessment (DPIA) for one AI tool: what the trust's
// policy makes Conduit do with the tool's data (de-identification, pseudonymisation, where the
// data may go, retention) and what the vendor declared in its manifest, as a Markdown draft
// for the IG lead and the DPO. Facts only; every judgement is left marked "To complete".
#pragma once

#include <string>
#include <vector>

#include "core/clock.h"
#include "core/config.h"
#include "governance/policy.h"

namespace conduit {

// What the vendor declared about the tool (evidence/tool_dpia.h fills it from a manifest).
struct DpiaTool {
  std::string name, vendor, version, description;
  std::string
      regulatory;  // e.g. "UKCA class IIa (approved body ..., certificate ...)"; empty: none
  std::string condition, population, setting, user;  // intended use
  std::vector<std::string> modalities, body_parts, sop_classes;
  std::string minimum_series;        // e.g. "at least 20 slices"; empty: none
  std::vector<std::string> outputs;  // manifest names: sr, seg, gsps, kos, sc, ...
  std::string protocol;              // dimse, dicomweb, ups-rs, executable
  std::string endpoint;              // URL, AE@host:port, or the command
  std::string support;               // the vendor's support contact, one line
  std::string manifest_hash;         // SHA-256 hex of the manifest file
  ToolConfig settings;               // how the gateway runs it (kind, region, retain, ...)
};

struct DpiaContext {
  std::string organisation;  // the trust or network; empty: left to complete
  TimePoint generated_at;
  // The gateway's configuration, if known: its routes that name the tool (which studies it
  // gets) and their destinations (where its results go) are listed. Null: left to complete.
  const Config* gateway = nullptr;
};

// The DPIA draft. Errors: kFailedPrecondition when the policy refuses the tool (its hosting
// region, or a retain option its category may not have), naming why.
Result<std::string> RenderDpia(const Policy& policy, const DpiaTool& tool,
                               const DpiaContext& context);

}  // namespace conduit
