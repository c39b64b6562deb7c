// JobTokens: the bearer tokens that let one AI tool act on one job over HTTP (store its
// results by STOW-RS, fetch its inputs by WADO-RS) and nothing else. A token is
// HMAC-SHA256(secret, "conduit-job-token:v1:" + job id), so nothing is stored per job and a
// restart keeps outstanding tokens valid. The secret never leaves the gateway; tokens and the
// secret are never logged.
// Thread safety: const methods may be called concurrently.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "core/ids.h"
#include "core/status.h"

namespace conduit {

class JobTokens {
 public:
  // `secret`: at least 32 bytes. Errors: kInvalidArgument if shorter.
  static Result<JobTokens> FromSecret(std::string secret);
  // Reads the secret at `path`; creates it (32 random bytes, mode 0600, folder 0700) when it
  // does not exist. Errors: I/O errors naming the file; kInvalidArgument if it is too short.
  static Result<JobTokens> LoadOrCreate(const std::filesystem::path& path);

  // 64 lower-case hex digits.
  std::string TokenFor(JobId job) const;
  // True if `token` is the token of `job` (constant-time comparison).
  bool Verify(JobId job, std::string_view token) const;

 private:
  explicit JobTokens(std::string secret) : secret_(std::move(secret)) {}
  std::string secret_;
};

}  // namespace conduit
