// UIDs in the 2.25 form (ISO/IEC 9834-8: "2.25." + a 128-bit number in decimal), either random
// (new objects of a generated study) or derived from names (results that must be identical on
// every re-run, so a PACS never receives the same object under two UIDs).
#pragma once

#include <array>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>

namespace conduit::tools {

// "2.25." followed by the decimal value of the 16 bytes (big-endian); at most 44 characters.
std::string Uid225FromBytes(const std::array<uint8_t, 16>& bytes);

// A fresh 2.25 UID from `rng` (122 random bits shaped like a version-4 UUID).
std::string RandomUid(std::mt19937_64& rng);

// The 2.25 UID made of the first 128 bits of SHA-256 over the parts, each followed by a NUL
// byte so that ("ab","c") and ("a","bc") differ. Same parts, same UID, on every machine.
std::string DerivedUid(std::initializer_list<std::string_view> parts);

// First 16 hex digits of SHA-256(text): a reference to an identifier that is safe to log.
std::string LogRef(std::string_view text);

}  // namespace conduit::tools
