#include "aiwi_performer/performer_modes.h"

#include <array>
#include <utility>

namespace conduit::tools {
namespace {

constexpr std::array<std::pair<PerformerMode, std::string_view>, 7> kNames{{
    {PerformerMode::kNone, "none"},
    {PerformerMode::kSlow, "slow"},
    {PerformerMode::kCrashMidClaim, "crash-mid-claim"},
    {PerformerMode::kMalformed, "malformed"},
    {PerformerMode::kWrongReferences, "wrong-references"},
    {PerformerMode::kCancel, "cancel"},
    {PerformerMode::kError, "error"},
}};

}  // namespace

std::string_view PerformerModeName(PerformerMode mode) {
  for (const auto& [value, name] : kNames) {
    if (value == mode) return name;
  }
  return "none";
}

std::optional<PerformerMode> ParsePerformerMode(std::string_view name) {
  for (const auto& [value, text] : kNames) {
    if (text == name) return value;
  }
  return std::nullopt;
}

void PerformerModeSwitch::Set(PerformerMode mode, int count) {
  std::lock_guard lock(mu_);
  state_.mode = count == 0 ? PerformerMode::kNone : mode;
  state_.remaining = state_.mode == PerformerMode::kNone || count < 0 ? -1 : count;
}

PerformerModeSwitch::Snapshot PerformerModeSwitch::Current() const {
  std::lock_guard lock(mu_);
  return state_;
}

PerformerMode PerformerModeSwitch::TakeForWorkitem() {
  std::lock_guard lock(mu_);
  const PerformerMode mode = state_.mode;
  if (state_.remaining > 0 && --state_.remaining == 0) {
    state_.mode = PerformerMode::kNone;
    state_.remaining = -1;
  }
  return mode;
}

}  // namespace conduit::tools
