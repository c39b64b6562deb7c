#include "store/ris_records.h"

#include <array>
#include <utility>

namespace conduit {
namespace {

constexpr std::array<std::pair<Hl7OutboxState, std::string_view>, 3> kOutboxStateNames = {{
    {Hl7OutboxState::kPending, "pending"},
    {Hl7OutboxState::kSent, "sent"},
    {Hl7OutboxState::kFailed, "failed"},
}};

}  // namespace

std::string_view Hl7OutboxStateName(Hl7OutboxState state) {
  for (const auto& [s, name] : kOutboxStateNames) {
    if (s == state) return name;
  }
  return "pending";
}

std::optional<Hl7OutboxState> ParseHl7OutboxState(std::string_view name) {
  for (const auto& [s, n] : kOutboxStateNames) {
    if (n == name) return s;
  }
  return std::nullopt;
}

}  // namespace conduit
