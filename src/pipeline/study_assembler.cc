#include "pipeline/study_assembler.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

namespace conduit {
namespace {

bool IsCompleted(const std::string& status) {
  std::string s;
  for (char c : status) {
    if (c != ' ') s.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  }
  return s == "COMPLETED";
}

}  // namespace

StudyAssembler::StudyAssembler(Index& index, const Clock& clock, const Config& config,
                               std::function<void(JobId)> on_job)
    : index_(index), clock_(clock), config_(config), on_job_(std::move(on_job)) {}

StudyAssembler::UnitKey StudyAssembler::KeyOf(const AssemblyUnit& unit) {
  return {unit.route, unit.study_uid.str(), unit.series_uid.str()};
}

Status StudyAssembler::LoadOpenUnits() {
  if (loaded_) return Status::Ok();
  ASSIGN_OR_RETURN(std::vector<AssemblyUnit> open, index_.ListUnits(UnitState::kOpen));
  for (AssemblyUnit& unit : open) {
    // The unit row holds the time it was opened; the index knows when its last instance came.
    if (unit.series_uid.empty()) {
      ASSIGN_OR_RETURN(std::optional<StudySummary> study, index_.GetStudy(unit.study_uid));
      if (study) unit.last_instance_at = std::max(unit.last_instance_at, study->last_received_at);
    } else {
      ASSIGN_OR_RETURN(std::vector<InstanceRecord> instances,
                       index_.ListInstances(unit.study_uid, {unit.series_uid}));
      for (const auto& i : instances) {
        unit.last_instance_at = std::max(unit.last_instance_at, i.received_at);
      }
    }
    ASSIGN_OR_RETURN(std::vector<MppsRecord> mpps, index_.MppsOfStudy(unit.study_uid));
    for (const auto& m : mpps) {
      if (IsCompleted(m.status)) studies_with_mpps_completed_.insert(unit.study_uid);
    }
    open_[KeyOf(unit)] = unit;
  }
  loaded_ = true;
  return Status::Ok();
}

Status StudyAssembler::Add(const RouteConfig& route, const StudyUid& study,
                           const SeriesUid& series) {
  std::vector<JobId> created;
  {
    std::lock_guard lock(mu_);
    RETURN_IF_ERROR(LoadOpenUnits());
    const SeriesUid unit_series = route.select == RouteScope::kSeries ? series : SeriesUid{};
    const UnitKey key{route.name, study.str(), unit_series.str()};
    const TimePoint now = clock_.Now();
    if (auto open = open_.find(key); open != open_.end()) {
      open->second.last_instance_at = now;  // the common case: no index write
    } else {
      ASSIGN_OR_RETURN(std::vector<AssemblyUnit> units, index_.UnitsOfStudy(study));
      auto it = std::find_if(units.begin(), units.end(), [&](const AssemblyUnit& u) {
        return u.route == route.name && u.series_uid == unit_series;
      });
      AssemblyUnit unit;
      if (it == units.end()) {
        unit.route = route.name;
        unit.study_uid = study;
        unit.series_uid = unit_series;
        unit.state = UnitState::kOpen;
        unit.generation = 0;
      } else {
        unit = *it;
        if (unit.state == UnitState::kComplete) {
          if (route.on_late == LateInstancePolicy::kIgnore) {
            spdlog::info(
                "assembler: late instance for study {} on route '{}' ignored "
                "(unit already complete, on_late: ignore)",
                StudyRef(study), route.name);
            return Status::Ok();
          }
          unit.generation += 1;
          unit.state = UnitState::kOpen;
          spdlog::info("assembler: late instance re-opens study {} on route '{}' as generation {}",
                       StudyRef(study), route.name, unit.generation);
        }
      }
      unit.last_instance_at = now;
      RETURN_IF_ERROR(index_.PutUnit(unit));
      open_[key] = unit;
    }

    // An MPPS COMPLETED may have arrived before its last instance: this may be that instance.
    if (studies_with_mpps_completed_.count(study)) {
      ASSIGN_OR_RETURN(bool mpps_done, MppsSatisfied(study));
      if (mpps_done) {
        ASSIGN_OR_RETURN(created, CompleteOpenUnitsOfStudy(study, "mpps completed"));
      }
    }
  }
  for (JobId id : created) {
    if (on_job_) on_job_(id);
  }
  return Status::Ok();
}

Status StudyAssembler::OnMpps(const MppsRecord& mpps) {
  std::vector<JobId> created;
  {
    std::lock_guard lock(mu_);
    RETURN_IF_ERROR(LoadOpenUnits());
    MppsRecord record = mpps;
    // N-SET usually lacks the study: keep the link made by the N-CREATE.
    ASSIGN_OR_RETURN(std::optional<MppsRecord> stored, index_.GetMpps(mpps.mpps_sop_instance_uid));
    if (record.study_uid.empty() && stored) record.study_uid = stored->study_uid;
    RETURN_IF_ERROR(index_.PutMpps(record));

    ASSIGN_OR_RETURN(std::optional<MppsRecord> merged, index_.GetMpps(mpps.mpps_sop_instance_uid));
    if (!merged) merged = record;
    if (merged->study_uid.empty()) merged->study_uid = record.study_uid;
    if (!IsCompleted(merged->status) || merged->study_uid.empty()) return Status::Ok();
    studies_with_mpps_completed_.insert(merged->study_uid);

    ASSIGN_OR_RETURN(bool all_arrived, AllArrived(*merged));
    if (!all_arrived) {
      spdlog::info(
          "assembler: MPPS COMPLETED for study {} lists instances not yet received; "
          "waiting for them or the quiet period",
          StudyRef(merged->study_uid));
      return Status::Ok();
    }
    ASSIGN_OR_RETURN(created, CompleteOpenUnitsOfStudy(merged->study_uid, "mpps completed"));
  }
  for (JobId id : created) {
    if (on_job_) on_job_(id);
  }
  return Status::Ok();
}

Result<std::vector<JobId>> StudyAssembler::Tick() {
  std::vector<JobId> created;
  Status first_error;
  {
    std::lock_guard lock(mu_);
    RETURN_IF_ERROR(LoadOpenUnits());
    const TimePoint now = clock_.Now();
    std::vector<AssemblyUnit> open;
    for (const auto& [key, unit] : open_) open.push_back(unit);
    for (auto& unit : open) {
      const RouteConfig* route = config_.FindRoute(unit.route);
      if (route != nullptr && now - unit.last_instance_at < route->stable_after) continue;
      auto id = Complete(unit, route == nullptr ? "route removed" : "quiet period");
      if (!id.ok()) {
        spdlog::error("assembler: completing study {} on route '{}': {}", StudyRef(unit.study_uid),
                      unit.route, StatusCodeName(id.status().code()));
        if (first_error.ok()) first_error = id.status();
        continue;
      }
      if (id->value > 0) created.push_back(*id);
    }
  }
  for (JobId id : created) {
    if (on_job_) on_job_(id);
  }
  if (!first_error.ok()) return first_error;
  return created;
}

std::optional<TimePoint> StudyAssembler::NextQuietPeriodEnd() {
  std::lock_guard lock(mu_);
  if (!loaded_) return std::nullopt;
  std::optional<TimePoint> next;
  for (const auto& [key, unit] : open_) {
    const RouteConfig* route = config_.FindRoute(unit.route);
    const TimePoint end =
        route == nullptr ? unit.last_instance_at : unit.last_instance_at + route->stable_after;
    if (!next || end < *next) next = end;
  }
  return next;
}

Result<std::vector<JobId>> StudyAssembler::CompleteStudy(const StudyUid& study,
                                                         const std::string& why) {
  std::vector<JobId> created;
  {
    std::lock_guard lock(mu_);
    RETURN_IF_ERROR(LoadOpenUnits());
    ASSIGN_OR_RETURN(created, CompleteOpenUnitsOfStudy(study, why));
  }
  for (JobId id : created) {
    if (on_job_) on_job_(id);
  }
  return created;
}

Result<bool> StudyAssembler::AllArrived(const MppsRecord& mpps) {
  if (mpps.instances.empty()) return false;  // nothing to check against: quiet period decides
  for (const auto& sop : mpps.instances) {
    ASSIGN_OR_RETURN(std::optional<InstanceRecord> found, index_.FindInstance(sop));
    if (!found) return false;
  }
  return true;
}

Result<bool> StudyAssembler::MppsSatisfied(const StudyUid& study) {
  ASSIGN_OR_RETURN(std::vector<MppsRecord> mpps, index_.MppsOfStudy(study));
  for (const auto& m : mpps) {
    if (!IsCompleted(m.status) || m.instances.empty()) continue;
    // One listing of the study instead of one lookup per listed instance.
    ASSIGN_OR_RETURN(std::vector<InstanceRecord> have, index_.ListInstances(study));
    std::set<SopInstanceUid> known;
    for (const auto& i : have) known.insert(i.sop_instance_uid);
    const bool all = std::all_of(m.instances.begin(), m.instances.end(),
                                 [&](const SopInstanceUid& s) { return known.count(s) > 0; });
    if (all) return true;
  }
  return false;
}

Result<std::vector<JobId>> StudyAssembler::CompleteOpenUnitsOfStudy(const StudyUid& study,
                                                                    const std::string& why) {
  std::vector<JobId> created;
  std::vector<AssemblyUnit> units;
  for (const auto& [key, unit] : open_) {
    if (unit.study_uid == study) units.push_back(unit);
  }
  for (auto& unit : units) {
    ASSIGN_OR_RETURN(JobId id, Complete(unit, why));
    if (id.value > 0) created.push_back(id);
  }
  return created;
}

Result<JobId> StudyAssembler::Complete(AssemblyUnit unit, const std::string& why) {
  const RouteConfig* route = config_.FindRoute(unit.route);
  JobId id;
  if (route == nullptr) {
    spdlog::warn(
        "assembler: study {} waited on route '{}', which is no longer configured; "
        "completed without a job",
        StudyRef(unit.study_uid), unit.route);
  } else {
    const TimePoint now = clock_.Now();
    JobRecord job;
    job.study_uid = unit.study_uid;
    job.route = route->name;
    job.tool = route->tool;
    job.destinations = route->results_to;
    job.shadow = route->shadow;
    if (route->select == RouteScope::kSeries && !unit.series_uid.empty()) {
      job.series = {unit.series_uid};
    }
    job.generation = unit.generation;
    job.state = JobState::kQueued;
    job.next_attempt_at = now;
    job.created_at = now;
    job.updated_at = now;

    AuditEvent audit;
    audit.at = now;
    audit.action = "assemble";
    audit.outcome = "success";
    audit.actor = "assembler";
    audit.study_ref = StudyRef(unit.study_uid);
    audit.detail = nlohmann::json{
        {"route", route->name},
        {"tool", route->tool},
        {"scope", route->select == RouteScope::kSeries ? "series" : "study"},
        {"generation", unit.generation},
        {"reason",
         why}}.dump();
    // The job first: if we crash before the unit is marked complete, the next Tick completes
    // it again and CreateJob returns the same job.
    ASSIGN_OR_RETURN(id, index_.CreateJob(job, audit));
    spdlog::info("assembler: study {} complete on route '{}' ({}), job {}",
                 StudyRef(unit.study_uid), route->name, why, id.value);
  }
  unit.state = UnitState::kComplete;
  RETURN_IF_ERROR(index_.PutUnit(unit));
  open_.erase(KeyOf(unit));
  return id;
}

}  // namespace conduit
