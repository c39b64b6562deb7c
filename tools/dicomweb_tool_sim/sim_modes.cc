#include "dicomweb_tool_sim/sim_modes.h"

#include <array>
#include <utility>

namespace conduit::tools {
namespace {

constexpr std::array<std::pair<Misbehaviour, std::string_view>, 7> kNames{{
    {Misbehaviour::kNone, "none"},
    {Misbehaviour::kSlow, "slow"},
    {Misbehaviour::kError5xx, "error5xx"},
    {Misbehaviour::kMalformed, "malformed"},
    {Misbehaviour::kWrongReferences, "wrong-references"},
    {Misbehaviour::kOtherJob, "other-job"},
    {Misbehaviour::kCrash, "crash"},
}};

}  // namespace

std::string_view MisbehaviourName(Misbehaviour mode) {
  for (const auto& [value, name] : kNames) {
    if (value == mode) return name;
  }
  return "none";
}

std::optional<Misbehaviour> ParseMisbehaviour(std::string_view name) {
  for (const auto& [value, text] : kNames) {
    if (text == name) return value;
  }
  return std::nullopt;
}

void ModeSwitch::Set(Misbehaviour mode, int count) {
  std::lock_guard lock(mu_);
  state_.mode = count == 0 ? Misbehaviour::kNone : mode;
  state_.remaining = state_.mode == Misbehaviour::kNone || count < 0 ? -1 : count;
}

ModeSwitch::Snapshot ModeSwitch::Current() const {
  std::lock_guard lock(mu_);
  return state_;
}

void ModeSwitch::ConsumeLocked() {
  if (state_.remaining < 0) return;
  if (--state_.remaining == 0) {
    state_.mode = Misbehaviour::kNone;
    state_.remaining = -1;
  }
}

bool ModeSwitch::TakeRequestRejection() {
  std::lock_guard lock(mu_);
  if (state_.mode != Misbehaviour::kError5xx) return false;
  ConsumeLocked();
  return true;
}

Misbehaviour ModeSwitch::TakeForStudy() {
  std::lock_guard lock(mu_);
  if (state_.mode == Misbehaviour::kNone || state_.mode == Misbehaviour::kError5xx) {
    return Misbehaviour::kNone;
  }
  Misbehaviour mode = state_.mode;
  ConsumeLocked();
  return mode;
}

}  // namespace conduit::tools
