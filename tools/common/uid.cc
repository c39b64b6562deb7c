#include "common/uid.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace conduit::tools {
namespace {

constexpr size_t kSha256Bytes = 32;

// SHA-256 over the parts; with `separate`, each part is followed by a NUL byte.
std::array<uint8_t, kSha256Bytes> Sha256(std::initializer_list<std::string_view> parts,
                                         bool separate) {
  std::array<uint8_t, kSha256Bytes> digest{};
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr) std::abort();  // allocation failure: nothing sensible to do
  const char nul = '\0';
  bool ok = EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) == 1;
  for (std::string_view part : parts) {
    ok = ok && EVP_DigestUpdate(ctx, part.data(), part.size()) == 1;
    if (separate) ok = ok && EVP_DigestUpdate(ctx, &nul, 1) == 1;
  }
  unsigned int len = 0;
  ok = ok && EVP_DigestFinal_ex(ctx, digest.data(), &len) == 1 && len == kSha256Bytes;
  EVP_MD_CTX_free(ctx);
  if (!ok) std::abort();  // SHA-256 is always available in OpenSSL's default provider
  return digest;
}

}  // namespace

std::string Uid225FromBytes(const std::array<uint8_t, 16>& bytes) {
  unsigned __int128 value = 0;
  for (uint8_t b : bytes) value = (value << 8) | b;
  std::string digits;
  do {
    digits.push_back(static_cast<char>('0' + static_cast<int>(value % 10)));
    value /= 10;
  } while (value != 0);
  std::reverse(digits.begin(), digits.end());
  return "2.25." + digits;
}

std::string RandomUid(std::mt19937_64& rng) {
  std::array<uint8_t, 16> bytes{};
  for (size_t i = 0; i < bytes.size(); i += 8) {
    uint64_t r = rng();
    for (size_t j = 0; j < 8; ++j) bytes[i + j] = static_cast<uint8_t>(r >> (8 * j));
  }
  bytes[6] = static_cast<uint8_t>((bytes[6] & 0x0f) | 0x40);  // version 4
  bytes[8] = static_cast<uint8_t>((bytes[8] & 0x3f) | 0x80);  // RFC 4122 variant
  return Uid225FromBytes(bytes);
}

std::string DerivedUid(std::initializer_list<std::string_view> parts) {
  auto digest = Sha256(parts, /*separate=*/true);
  std::array<uint8_t, 16> bytes{};
  std::copy_n(digest.begin(), bytes.size(), bytes.begin());
  return Uid225FromBytes(bytes);
}

std::string LogRef(std::string_view text) {
  auto digest = Sha256({text}, /*separate=*/false);
  std::string hex;
  char buf[3];
  for (size_t i = 0; i < 8; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", digest[i]);
    hex += buf;
  }
  return hex;
}

}  // namespace conduit::tools
