#include "core/sha256.h"

#include <openssl/evp.h>

#include <cstdlib>
#include <iostream>

namespace conduit {

std::string Sha256Hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) != 1) {
    // Only fails when OpenSSL itself is broken (no SHA-256 provider): an invariant.
    std::cerr << "SHA-256 unavailable in OpenSSL\n";
    std::abort();
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 0xf]);
  }
  return out;
}

}  // namespace conduit
