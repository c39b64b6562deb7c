#include "http/token_digest.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

namespace conduit {

TokenDigest DigestOfToken(std::string_view token) {
  TokenDigest out{};
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), out.data());
  return out;
}

bool SameDigest(const TokenDigest& a, const TokenDigest& b) {
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool TokensEqual(std::string_view a, std::string_view b) {
  return SameDigest(DigestOfToken(a), DigestOfToken(b));
}

}  // namespace conduit
