// WorklistTokens: the bearer tokens of the performers of pull-model tools (`kind: worklist`,
// the trimmed content of each tool's auth_token_file), read once at start-up. A token names
// its tool: it opens that tool's worklist over UPS-RS, its event channel, and the per-job
// DICOMweb endpoints of that tool's jobs. Tokens are kept only as SHA-256 digests, compared
// in constant time, and never logged.
// Thread safety: const methods may be called concurrently.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/config.h"
#include "core/status.h"
#include "http/token_digest.h"

namespace conduit {

class WorklistTokens {
 public:
  WorklistTokens() = default;
  // Reads the token file of every kWorklist tool of `config`.
  // Errors (kInvalidArgument, naming the tool and the file, never the token): a file that
  // cannot be read, is empty, or holds the same token as another tool's.
  static Result<WorklistTokens> Load(const Config& config);
  // From (tool, token) pairs. Errors as Load's for an empty or shared token.
  static Result<WorklistTokens> FromTokens(
      const std::vector<std::pair<std::string, std::string>>& tool_tokens);

  // The tool whose token `token` is; nullopt for none (or an empty token).
  std::optional<std::string> ToolOf(std::string_view token) const;
  // The tool whose token has SHA-256 `digest`; nullopt for none.
  std::optional<std::string> ToolOfDigest(const TokenDigest& digest) const;
  bool empty() const { return entries_.empty(); }

 private:
  struct Entry {
    std::string tool;
    TokenDigest digest;
  };
  std::vector<Entry> entries_;
};

}  // namespace conduit
