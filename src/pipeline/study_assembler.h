// StudyAssembler decides when a study (or series, per route) is complete: after the route's
// quiet period since its last instance, or at once when an MPPS COMPLETED lists instances
// that have all arrived. Each completion creates one job (study x route x generation) in the
// index. Late instances after completion are ignored or re-open the unit (a new generation),
// as the route says. Units are written to the index when they open, re-open and complete;
// the time of a unit's last instance is kept in memory (the index already records every
// instance's receipt time, from which a restart restores it), so an instance of an open unit
// costs no index write here.
// Thread safety: Add/OnMpps/Tick may be called from any thread (internally serialised).
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "core/clock.h"
#include "core/config.h"
#include "store/index.h"

namespace conduit {

class StudyAssembler {
 public:
  // `on_job` is called after a job was created for a completed unit (e.g. to wake the engine),
  // outside the internal lock; it may be called again for the same job after a restart.
  StudyAssembler(Index& index, const Clock& clock, const Config& config,
                 std::function<void(JobId)> on_job);

  // An instance of `study`/`series` matched `route` (call after it is in the index). Opens or
  // refreshes the unit; completes it at once if an MPPS COMPLETED was only waiting for it.
  Status Add(const RouteConfig& route, const StudyUid& study, const SeriesUid& series);

  // An MPPS message: stored; on COMPLETED, units of the study whose listed instances have
  // all arrived complete now.
  Status OnMpps(const MppsRecord& mpps);

  // Completes every open unit whose quiet period has passed. Returns jobs created.
  Result<std::vector<JobId>> Tick();

  // When the earliest open unit's quiet period ends (a Tick then completes it); nullopt when
  // no unit is open or the open units are not loaded yet. Lets a ticker sleep until then.
  std::optional<TimePoint> NextQuietPeriodEnd();

  // Completes every open unit of `study` now, whatever its quiet period (the RIS says the
  // exam is complete), as an MPPS COMPLETED would; `why` goes to the audit. Returns the jobs
  // created: none when no unit of the study is open.
  Result<std::vector<JobId>> CompleteStudy(const StudyUid& study, const std::string& why);

 private:
  // Creates the unit's job (none if its route left the config), then marks it complete.
  // Returns the job id (0 when none was made). Caller holds mu_.
  Result<JobId> Complete(AssemblyUnit unit, const std::string& why);
  Result<std::vector<JobId>> CompleteOpenUnitsOfStudy(const StudyUid& study,
                                                      const std::string& why);
  // True if every instance the MPPS lists is in the index (false for an empty list).
  Result<bool> AllArrived(const MppsRecord& mpps);
  // True if the study has an MPPS COMPLETED whose listed instances have all arrived.
  Result<bool> MppsSatisfied(const StudyUid& study);
  // Loads the open units from the index once, restoring each one's last instance time from
  // the index's receipt times. Caller holds mu_.
  Status LoadOpenUnits();

  using UnitKey = std::tuple<std::string, std::string, std::string>;  // route, study, series
  static UnitKey KeyOf(const AssemblyUnit& unit);

  Index& index_;
  const Clock& clock_;
  const Config& config_;
  std::function<void(JobId)> on_job_;
  std::mutex mu_;
  bool loaded_ = false;
  std::map<UnitKey, AssemblyUnit> open_;            // open units, last_instance_at current
  std::set<StudyUid> studies_with_mpps_completed_;  // worth checking on each new instance
};

}  // namespace conduit
