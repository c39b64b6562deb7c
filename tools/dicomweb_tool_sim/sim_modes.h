// The DICOMweb tool simulator's misbehaviours (NON-CLINICAL test tool): what it does wrong,
// and for how many requests or studies, so end-to-end tests can drive each failure the
// gateway must survive.
#pragma once

#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace conduit::tools {

enum class Misbehaviour {
  kNone,             // behave
  kSlow,             // wait slow_ms before returning results
  kError5xx,         // answer STOW-RS requests with 503 (counted per request)
  kMalformed,        // return a truncated, unparsable SEG (the SR and SC are sent as made)
  kWrongReferences,  // results reference instances and series that are not the inputs
  kOtherJob,         // results go to another job's URL and token
  kCrash,            // exit the process once a study is complete (its STOWs acknowledged)
};

// "none", "slow", "error5xx", "malformed", "wrong-references", "other-job", "crash".
std::string_view MisbehaviourName(Misbehaviour mode);
// The mode named `name` (as MisbehaviourName writes it), or nullopt.
std::optional<Misbehaviour> ParseMisbehaviour(std::string_view name);

// The current misbehaviour and how many more requests (error5xx) or studies (the others) it
// applies to; when that reaches zero the simulator behaves again. Thread-safe.
class ModeSwitch {
 public:
  struct Snapshot {
    Misbehaviour mode = Misbehaviour::kNone;
    int remaining = -1;  // -1: until changed
  };

  // `count` < 0: until changed.
  ModeSwitch(Misbehaviour mode, int count) { Set(mode, count); }

  // Replaces the current mode (count < 0: until changed; 0: behave at once).
  void Set(Misbehaviour mode, int count);
  Snapshot Current() const;

  // For an incoming STOW-RS request: true if it must be refused with 503; consumes one count.
  bool TakeRequestRejection();
  // For a study whose inputs are complete: the misbehaviour to apply to it (kNone while
  // error5xx is set); consumes one count of a study-level mode.
  Misbehaviour TakeForStudy();

 private:
  void ConsumeLocked();

  mutable std::mutex mu_;
  Snapshot state_;
};

}  // namespace conduit::tools
