#include "app/recovery.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>

#include "app/ingest_service.h"
#include "dicom/instance_meta.h"
#include "pipeline/prior_fetcher_impl.h"

namespace conduit {

Result<int> OpenUnitsLostInACrash(Index& index, Spool& spool, const Router& router,
                                  StudyAssembler& assembler, TimePoint since) {
  int opened = 0;
  constexpr int kPage = 200;
  for (int offset = 0;; offset += kPage) {
    ASSIGN_OR_RETURN(std::vector<StudySummary> studies, index.ListStudies(kPage, offset));
    bool older_reached = studies.empty();
    for (const StudySummary& study : studies) {
      if (study.last_received_at < since) {
        older_reached = true;  // most recently received first: the rest are older
        break;
      }
      ASSIGN_OR_RETURN(std::vector<AssemblyUnit> units, index.UnitsOfStudy(study.study_uid));
      ASSIGN_OR_RETURN(std::vector<InstanceRecord> instances, index.ListInstances(study.study_uid));
      std::map<SeriesUid, const InstanceRecord*> one_per_series;
      for (const auto& i : instances) {
        // A prior fetched for a job is input to that job, never a study to route.
        if (i.calling_ae.str() == kPriorFetchedCaller) continue;
        one_per_series.emplace(i.series_uid, &i);
      }
      for (const auto& [series, instance] : one_per_series) {
        auto meta = ReadInstanceMeta(spool.PathOf(instance->spool_key));
        if (!meta.ok()) {
          spdlog::warn("recovery: study {}: a stored instance cannot be read ({}); not re-routed",
                       StudyRef(study.study_uid), StatusCodeName(meta.status().code()));
          continue;
        }
        for (const RouteConfig* route :
             router.Match(RoutingAttributes(*meta, instance->calling_ae))) {
          const SeriesUid unit_series = route->select == RouteScope::kSeries ? series : SeriesUid{};
          const bool known = std::any_of(units.begin(), units.end(), [&](const AssemblyUnit& u) {
            return u.route == route->name && u.series_uid == unit_series;
          });
          if (known) continue;
          RETURN_IF_ERROR(assembler.Add(*route, study.study_uid, series));
          AssemblyUnit unit;
          unit.route = route->name;
          unit.study_uid = study.study_uid;
          unit.series_uid = unit_series;
          units.push_back(unit);
          ++opened;
          spdlog::warn(
              "recovery: study {} had no unit on route '{}' (a crash before routing); "
              "opened now",
              StudyRef(study.study_uid), route->name);
        }
      }
    }
    if (older_reached || static_cast<int>(studies.size()) < kPage) break;
  }
  return opened;
}

}  // namespace conduit
