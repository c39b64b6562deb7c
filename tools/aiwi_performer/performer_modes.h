// The AIW-I performer simulator's misbehaviours (NON-CLINICAL test tool): what it does wrong
// and for how many workitems, so end-to-end tests can drive each failure the Task Manager
// must survive.
#pragma once

#include <mutex>
#include <optional>
#include <string_view>

namespace conduit::tools {

enum class PerformerMode {
  kNone,             // claim, retrieve, analyse, store, report progress, complete
  kSlow,             // no progress reports; wait slow_ms before storing and completing
  kCrashMidClaim,    // claim, then exit the process (code 3): the claim is abandoned
  kMalformed,        // the SEG is stored truncated (not parsable DICOM)
  kWrongReferences,  // results reference series and instances that are not the inputs
  kCancel,           // claim, then cancel the workitem with a reason
  kError,            // exit at start-up (code 4)
};

// "none", "slow", "crash-mid-claim", "malformed", "wrong-references", "cancel", "error".
std::string_view PerformerModeName(PerformerMode mode);
// The mode named `name` (as PerformerModeName writes it), or nullopt.
std::optional<PerformerMode> ParsePerformerMode(std::string_view name);

// The current misbehaviour and for how many more workitems it applies; then the performer
// behaves again. Thread-safe.
class PerformerModeSwitch {
 public:
  struct Snapshot {
    PerformerMode mode = PerformerMode::kNone;
    int remaining = -1;  // -1: until changed
  };

  // `count` < 0: until changed; 0: behave at once.
  PerformerModeSwitch(PerformerMode mode, int count) { Set(mode, count); }

  void Set(PerformerMode mode, int count);
  Snapshot Current() const;
  // The misbehaviour for the next workitem claimed; consumes one count.
  PerformerMode TakeForWorkitem();

 private:
  mutable std::mutex mu_;
  Snapshot state_;
};

}  // namespace conduit::tools
