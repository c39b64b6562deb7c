// Bearer tokens kept as SHA-256 digests and compared in constant time: the one way every
// token set of the HTTP front end (API tokens, worklist tokens) holds and checks its tokens,
// so no token is kept in clear beyond start-up and no comparison leaks where it differed.
// Pure functions; reentrant.
#pragma once

#include <array>
#include <string_view>

namespace conduit {

using TokenDigest = std::array<unsigned char, 32>;

// SHA-256 of `token`.
TokenDigest DigestOfToken(std::string_view token);

// True if `a` and `b` are equal, in time independent of where they differ.
bool SameDigest(const TokenDigest& a, const TokenDigest& b);

// True if `a` and `b` are equal, in time that depends only on their SHA-256 digests.
bool TokensEqual(std::string_view a, std::string_view b);

}  // namespace conduit
