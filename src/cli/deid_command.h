// `conduit deid`, `conduit keygen` and `conduit policy show`: de-identify a folder tree with
// the policy, outside the gateway (research or evaluation data), make a pseudonymisation key,
// and show the policy.
#pragma once

#include <filesystem>
#include <optional>

namespace conduit::cli {

struct DeidCommand {
  std::optional<std::filesystem::path> policy;  // the built-in national default if absent
  std::filesystem::path key_file;
  std::filesystem::path in, out;
  std::optional<std::filesystem::path> report;  // JSON report
  int jobs = 0;                                 // 0: one per core
  bool progress = true;                         // a progress bar when stderr is a terminal
};

// Exit status: 0 every file de-identified; 1 any file refused or failed; 2 usage, policy or
// key error (nothing written).
int Deidentify(const DeidCommand& command);
// Writes a new random key file (0600); 2 if it exists or cannot be written.
int KeyGen(const std::filesystem::path& file);
// Prints the policy in force (the file, or the built-in national default): its name, version,
// SHA-256 and text. 2 if the file does not parse.
int PolicyShow(const std::optional<std::filesystem::path>& file);

}  // namespace conduit::cli
