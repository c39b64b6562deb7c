// The conduit command line: each subcommand is a function taking parsed options and
// returning the process exit status (0 success, 1 failure, 2 usage or config error).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/config.h"

namespace conduit::cli {

// Loads --config FILE, or the embedded default (tool found beside `self`).
Result<Config> LoadConfigOrDefault(const std::optional<std::string>& path,
                                   const std::filesystem::path& self);

int Serve(const Config& config);
int RouteTest(const Config& config, const std::vector<std::string>& paths, bool json);
int JobsList(const Config& config, const std::string& state, int limit, bool json);
// `conduit ris outbox`: the HL7 messages to the RIS (config ris.name), newest first; no
// message text or patient data. Exit 2 for an unknown state, 1 when the index cannot be read.
int RisOutboxList(const Config& config, const std::string& state, int limit, bool json);
int JobsRetry(const Config& config, const std::vector<int64_t>& ids);
// `conduit audit --study UID`: that study's audit trail (receipts, reads, transfers,
// deliveries, expiry), newest first, as GET /api/audit?study= gives it; the UID is not printed.
// Exit 2 for a malformed UID, 1 when the index cannot be read.
int AuditOfStudy(const Config& config, const std::string& study_uid, int limit, bool json);
// `conduit config check`: the config (already parsed, manifests resolved, tools checked against
// the policy) plus the secrets `serve` reads at start-up: the pseudonymisation key (if it exists
// yet), worklist and API tokens with their reuse checks. Exit 0 if all pass, 1 otherwise.
int ConfigCheck(const Config& config, const std::string& source);
// C-ECHO to a destination or DIMSE tool named in the config.
int EchoPeer(const Config& config, const std::string& name);

}  // namespace conduit::cli
