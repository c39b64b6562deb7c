// The control port's POST /sim/mode body, shared by the NON-CLINICAL simulators:
// {"mode": "<name>", "count": N}, where an absent or null count means until changed.
#pragma once

#include <optional>
#include <string>

namespace conduit::tools {

struct ModeRequest {
  std::string mode;  // the misbehaviour's name, not yet checked against the simulator's modes
  int count = -1;    // -1: until changed
};

// Reads a POST /sim/mode body. nullopt, with `error` saying why (a 400's text), if it is not a
// JSON object with a string "mode" and an integer (or null) "count".
std::optional<ModeRequest> ParseModeRequest(const std::string& body, std::string& error);

}  // namespace conduit::tools
