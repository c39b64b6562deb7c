#include "store/records.h"

#include <array>
#include <utility>

namespace conduit {
namespace {

constexpr std::array<std::pair<JobState, const char*>, 7> kJobStateNames = {{
    {JobState::kQueued, "queued"},
    {JobState::kSending, "sending"},
    {JobState::kAwaitingResults, "awaiting_results"},
    {JobState::kDelivering, "delivering"},
    {JobState::kDone, "done"},
    {JobState::kFailed, "failed"},
    {JobState::kDeadLetter, "dead_letter"},
}};

}  // namespace

const char* JobStateName(JobState state) {
  for (const auto& [s, name] : kJobStateNames) {
    if (s == state) return name;
  }
  return "unknown";
}

std::optional<JobState> ParseJobState(std::string_view name) {
  for (const auto& [s, n] : kJobStateNames) {
    if (name == n) return s;
  }
  return std::nullopt;
}

bool IsTerminal(JobState state) {
  return state == JobState::kDone || state == JobState::kFailed || state == JobState::kDeadLetter;
}

}  // namespace conduit

namespace conduit {
namespace {

constexpr std::array<std::pair<UpsState, std::string_view>, 4> kUpsStateNames = {{
    {UpsState::kScheduled, "SCHEDULED"},
    {UpsState::kInProgress, "IN PROGRESS"},
    {UpsState::kCanceled, "CANCELED"},
    {UpsState::kCompleted, "COMPLETED"},
}};

}  // namespace

std::string_view UpsStateName(UpsState state) {
  for (const auto& [s, name] : kUpsStateNames) {
    if (s == state) return name;
  }
  return "UNKNOWN";
}

std::optional<UpsState> ParseUpsState(std::string_view name) {
  for (const auto& [s, n] : kUpsStateNames) {
    if (name == n) return s;
  }
  return std::nullopt;
}

}  // namespace conduit
