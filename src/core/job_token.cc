#include "core/job_token.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

namespace conduit {
namespace {

constexpr size_t kSecretBytes = 32;

Status WriteNewSecret(const std::filesystem::path& path) {
  std::string secret(kSecretBytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(secret.data()), kSecretBytes) != 1) {
    return Internal("job token secret: the random generator failed");
  }
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  if (ec) return Internal("creating " + path.parent_path().string() + ": " + ec.message());
  std::filesystem::permissions(path.parent_path(), std::filesystem::perms::owner_all,
                               std::filesystem::perm_options::replace, ec);
  // O_EXCL: two gateways starting at once never overwrite each other's secret.
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return Status::Ok();
    return Internal("creating " + path.string() + ": " + std::strerror(errno));
  }
  bool ok = ::write(fd, secret.data(), secret.size()) == static_cast<ssize_t>(secret.size()) &&
            ::fsync(fd) == 0;
  int saved = errno;
  ::close(fd);
  if (!ok) return Internal("writing " + path.string() + ": " + std::strerror(saved));
  return Status::Ok();
}

}  // namespace

Result<JobTokens> JobTokens::FromSecret(std::string secret) {
  if (secret.size() < kSecretBytes) {
    return InvalidArgument("job token secret: shorter than " + std::to_string(kSecretBytes) +
                           " bytes");
  }
  return JobTokens(std::move(secret));
}

Result<JobTokens> JobTokens::LoadOrCreate(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) RETURN_IF_ERROR(WriteNewSecret(path));
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("job token secret " + path.string() + ": cannot be read");
  std::string secret((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto tokens = FromSecret(std::move(secret));
  if (!tokens.ok()) return tokens.status().WithContext(path.string());
  return tokens;
}

std::string JobTokens::TokenFor(JobId job) const {
  const std::string message = "conduit-job-token:v1:" + std::to_string(job.value);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), secret_.data(), static_cast<int>(secret_.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &length);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(length * 2);
  for (unsigned int i = 0; i < length; ++i) {
    out.push_back(kHex[mac[i] >> 4]);
    out.push_back(kHex[mac[i] & 0xF]);
  }
  return out;
}

bool JobTokens::Verify(JobId job, std::string_view token) const {
  const std::string expected = TokenFor(job);
  if (token.size() != expected.size()) return false;
  return CRYPTO_memcmp(expected.data(), token.data(), expected.size()) == 0;
}

}  // namespace conduit
