// ApiTokens: the bearer tokens of operators and trusted systems (http.api_token_file), which
// open the admin API (/api/*, /metrics) and the trust-side DICOMweb server on the original
// studies (/dicom-web/studies...). They open nothing else: the per-job endpoints take job
// tokens and UPS-RS takes worklist tokens. Kept only as SHA-256 digests, compared in constant
// time, never logged; read once at start-up (rotation: edit the file, restart).
// Thread safety: const methods may be called concurrently.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "http/token_digest.h"
#include "http/worklist_tokens.h"

namespace conduit {

class ApiTokens {
 public:
  // Tokens shorter than this are refused: a bearer token must not be guessable.
  static constexpr size_t kMinLength = 32;

  // Parses a token file's text: one token per line, surrounding spaces trimmed; blank lines
  // and lines starting with '#' ignored. `source` names the file in errors.
  // Errors (kInvalidArgument "<source>:<line>: ...", never quoting the token): a token
  // shorter than kMinLength, or holding spaces or characters other than printable ASCII; a
  // text with no token at all.
  static Result<ApiTokens> Parse(std::string_view text, std::string_view source);
  // Reads and parses the file at `path`. Errors: Parse's, and kInvalidArgument naming the
  // file when it cannot be read.
  static Result<ApiTokens> Load(const std::filesystem::path& path);

  // True if `token` is one of the tokens. Every token is compared: the time taken does not
  // depend on which (if any) matches.
  bool Accepts(std::string_view token) const;
  // The first tool of `worklist` whose token is also an API token; nullopt if none is. A
  // token in both would let that tool's performer into the admin API.
  std::optional<std::string> SharedWith(const WorklistTokens& worklist) const;
  size_t size() const { return digests_.size(); }

 private:
  std::vector<TokenDigest> digests_;
};

}  // namespace conduit
