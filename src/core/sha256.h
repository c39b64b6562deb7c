// SHA-256 as lower-case hex: the one digest Conduit derives names, references and policy
// hashes from.
#pragma once

#include <string>
#include <string_view>

namespace conduit {

// 64 lower-case hex digits of SHA-256(`data`).
std::string Sha256Hex(std::string_view data);

}  // namespace conduit
