#include "results/result_intake.h"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <system_error>

#include "core/sha256.h"

namespace conduit {
namespace {

namespace fs = std::filesystem;

// Moves `from` to `to`: a rename, or copy and remove across filesystems.
Status MoveFile(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::rename(from, to, ec);
  if (!ec) return Status::Ok();
  if (ec != std::errc::cross_device_link) {
    return ErrnoStatus(ec.value(), "move " + from.string() + " to " + to.string());
  }
  fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
  if (ec) {
    fs::remove(to, ec);
    return ErrnoStatus(ec.value(), "copy " + from.string() + " to " + to.string());
  }
  fs::remove(from, ec);
  return Status::Ok();
}

// A name in `dir` like `name` that no file has yet.
fs::path UnusedName(const fs::path& dir, const fs::path& name) {
  fs::path candidate = dir / name;
  for (int n = 1; fs::exists(candidate); ++n) {
    candidate = dir / (name.stem().string() + "-" + std::to_string(n) + name.extension().string());
  }
  return candidate;
}

}  // namespace

std::string ResultRef(const std::string& sop) { return Sha256Hex(sop).substr(0, 16); }

ResultIntake::ResultIntake(Index& index, Spool& spool, const Clock& clock, Metrics& metrics)
    : index_(index), spool_(spool), clock_(clock), metrics_(metrics) {
  metrics_.Describe("conduit_tool_results_invalid_total", "counter",
                    "Results a tool returned for a job that failed the checks and were "
                    "quarantined, by tool");
}

Result<ResultContext> ResultIntake::ContextOf(const JobRecord& job) {
  ResultContext context;
  context.study_uid = job.study_uid;
  ASSIGN_OR_RETURN(std::vector<InstanceRecord> inputs,
                   index_.ListInstances(job.study_uid, job.series));
  for (const InstanceRecord& input : inputs) {
    context.inputs.emplace(input.sop_instance_uid,
                           ResultInput{input.sop_class_uid, input.series_uid});
  }
  ASSIGN_OR_RETURN(std::vector<ResultRecord> results, index_.ListResults(job.id));
  for (const ResultRecord& result : results) {
    context.job_results.emplace(result.sop_instance_uid, result.sop_class_uid);
  }
  return context;
}

Status ResultIntake::Attach(const JobRecord& job, const fs::path& file, const InstanceMeta& meta,
                            const std::string& actor) {
  const std::string what = "result intake job " + std::to_string(job.id.value);
  if (meta.study_uid != job.study_uid) {
    return QuarantineResult(job, meta.sop_instance_uid, file, "result for another study", actor);
  }
  // A result must be a new object: a tool echoing an input back would otherwise be
  // delivered to PACS as a result, and share the input's spool key.
  ASSIGN_OR_RETURN(std::optional<InstanceRecord> input, index_.FindInstance(meta.sop_instance_uid));
  if (input.has_value()) {
    // Recorded under the input's UID, which WithholdDependents leaves deliverable.
    return QuarantineResult(job, meta.sop_instance_uid, file,
                            input->study_uid == job.study_uid
                                ? "result repeats an input instance of the study"
                                : "result reuses the SOP Instance UID of a received instance",
                            actor);
  }
  ASSIGN_OR_RETURN(ResultContext context, ContextOf(job));
  Result<ValidatedResult> valid = validator_.Validate(file, context);
  if (!valid.ok()) {
    if (valid.status().code() != StatusCode::kInvalidArgument) {
      return valid.status().WithContext(what);
    }
    return QuarantineResult(job, meta.sop_instance_uid, file,
                            "not a valid AI result: " + valid.status().message(), actor);
  }
  for (const std::string& warning : valid->warnings) {
    spdlog::warn("{}: result from {} accepted with a warning: {}", what, actor, warning);
  }

  std::error_code ec;
  const uint64_t size = fs::file_size(file, ec);
  if (ec) return ErrnoStatus(ec.value(), what + ": size of " + file.string());

  const fs::path incoming = spool_.NewIncomingPath();
  fs::create_directories(incoming.parent_path(), ec);
  RETURN_IF_ERROR(MoveFile(file, incoming).WithContext(what));
  ASSIGN_OR_RETURN(std::string key, spool_.Commit(incoming, meta.sop_instance_uid));

  const TimePoint now = clock_.Now();
  ResultRecord record;
  record.job_id = job.id;
  record.sop_instance_uid = meta.sop_instance_uid;
  record.sop_class_uid = meta.sop_class_uid;
  record.series_uid = meta.series_uid;
  record.spool_key = key;
  record.size_bytes = size;
  record.received_at = now;

  AuditEvent audit;
  audit.at = now;
  audit.action = "result";
  audit.outcome = "success";
  audit.actor = actor;
  audit.study_ref = StudyRef(job.study_uid);
  audit.job_id = job.id;
  audit.detail = nlohmann::json{{"sop_class", meta.sop_class_uid.str()},
                                {"kind", valid->kind},
                                {"size_bytes", size},
                                {"findings", valid->findings.size()},
                                {"warnings", valid->warnings}}
                     .dump();

  ASSIGN_OR_RETURN(PutOutcome outcome, index_.PutResult(record, audit));
  spool_.Settled(key);
  for (FindingRecord& finding : valid->findings) {
    finding.job_id = job.id;
    finding.tool = job.tool;
    finding.recorded_at = now;
  }
  RETURN_IF_ERROR(index_.PutFindings(job.id, meta.sop_instance_uid, valid->findings)
                      .WithContext(what + ": recording findings"));
  spdlog::info("{}: {} {} result ({} bytes, {} findings) from {} for study {}", what,
               outcome == PutOutcome::kDuplicate ? "replaced" : "attached", valid->kind, size,
               valid->findings.size(), actor, audit.study_ref);
  return Status::Ok();
}

Status ResultIntake::Quarantine(const JobRecord& job, const fs::path& file, const std::string& why,
                                const std::string& actor) {
  return QuarantineResult(job, SopInstanceUidOf(file), file, why, actor);
}

Status ResultIntake::QuarantineResult(const JobRecord& job, const SopInstanceUid& sop,
                                      const fs::path& file, const std::string& why,
                                      const std::string& actor) {
  metrics_.Add("conduit_tool_results_invalid_total", 1, "tool=\"" + job.tool + "\"");
  return QuarantineInto(std::to_string(job.id.value), job.id, job.study_uid, sop, file, why, actor);
}

Status ResultIntake::QuarantineUnmatched(const std::string& tool, const fs::path& file,
                                         const InstanceMeta& meta, const std::string& why) {
  return QuarantineInto("unmatched-" + tool, JobId{}, meta.study_uid, SopInstanceUid(""), file, why,
                        tool);
}

Result<fs::path> ResultIntake::KeepInQuarantine(const std::string& folder, JobId job,
                                                const fs::path& file, const fs::path& name,
                                                const std::string& why, const std::string& actor,
                                                bool keep_source) {
  const std::string what =
      "quarantine result of " + (job.value != 0 ? "job " + std::to_string(job.value) : folder);
  const fs::path dir = spool_.root() / "quarantine" / folder;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return ErrnoStatus(ec.value(), what + ": create " + dir.string());

  const fs::path target = UnusedName(dir, name.empty() ? fs::path("result.dcm") : name);
  if (keep_source) {
    fs::copy_file(file, target, ec);
    if (ec) {
      fs::remove(target, ec);
      return ErrnoStatus(ec.value(), what + ": copy to " + target.string());
    }
  } else {
    RETURN_IF_ERROR(MoveFile(file, target).WithContext(what));
  }
  {
    std::ofstream reason(target.string() + ".reason.txt", std::ios::trunc);
    reason << why << "\nactor: " << actor << "\n";
    if (job.value != 0) reason << "job: " << job.value << "\n";
    if (!reason.flush()) {
      return ErrnoStatus(errno != 0 ? errno : EIO, what + ": write reason for " + target.string());
    }
  }
  return target;
}

Status ResultIntake::QuarantineInto(const std::string& folder, JobId job, const StudyUid& study,
                                    const SopInstanceUid& sop, const fs::path& file,
                                    const std::string& why, const std::string& actor) {
  const std::string owner = job.value != 0 ? "job " + std::to_string(job.value) : folder;
  RETURN_IF_ERROR(
      KeepInQuarantine(folder, job, file, file.filename(), why, actor, /*keep_source=*/false)
          .status());

  AuditEvent audit;
  audit.at = clock_.Now();
  audit.action = "quarantine";
  audit.outcome = "failure";
  audit.actor = actor;
  audit.study_ref = StudyRef(study);
  audit.job_id = job;
  audit.detail = nlohmann::json{{"reason", why}}.dump();
  if (job.value != 0) {
    RETURN_IF_ERROR(index_.PutQuarantined(QuarantinedRecord{job, sop, why, audit.at}, audit));
  } else {
    RETURN_IF_ERROR(index_.AppendAudit(audit));
  }

  spdlog::warn("result from {} for {} (study {}) quarantined: {}", actor, owner, audit.study_ref,
               why);
  return InvalidArgument("result for " + owner + " quarantined: " + why);
}

Result<int> ResultIntake::WithholdDependents(const JobRecord& job, const std::string& actor) {
  const std::string what = "withhold results of job " + std::to_string(job.id.value);
  ASSIGN_OR_RETURN(std::vector<QuarantinedRecord> quarantined, index_.ListQuarantined(job.id));
  if (quarantined.empty()) return 0;  // the common case: one query

  ASSIGN_OR_RETURN(std::vector<ResultRecord> results, index_.ListResults(job.id));
  ASSIGN_OR_RETURN(auto delivered, index_.ListDelivered(job.id));
  ASSIGN_OR_RETURN(std::vector<InstanceRecord> inputs,
                   index_.ListInstances(job.study_uid, job.series));
  std::set<std::string> input_sops;
  for (const InstanceRecord& input : inputs) input_sops.insert(input.sop_instance_uid.str());
  std::set<std::string> attached;
  for (const ResultRecord& r : results) attached.insert(r.sop_instance_uid.str());

  // What will never reach PACS: quarantined objects (unless an input, or attached after all:
  // a valid copy given again), and what is withheld below.
  std::set<std::string> missing;
  bool unnamed = false;  // a quarantined object could not be read far enough to name itself
  for (const QuarantinedRecord& q : quarantined) {
    const std::string& sop = q.sop_instance_uid.str();
    if (sop.empty()) {
      unnamed = true;
    } else if (!attached.contains(sop) && !input_sops.contains(sop)) {
      missing.insert(sop);
    }
  }

  // Results that some destination still waits for, with their references.
  struct Pending {
    const ResultRecord* result;
    std::vector<ObjectReference> references;
  };
  std::vector<Pending> pending;
  for (const ResultRecord& r : results) {
    bool outstanding = job.destinations.empty();
    for (const std::string& dest : job.destinations) {
      if (!delivered.contains({r.sop_instance_uid.str(), dest})) outstanding = true;
    }
    if (!outstanding) continue;
    Result<std::vector<ObjectReference>> refs = ReferencesOf(spool_.PathOf(r.spool_key));
    if (!refs.ok()) {
      return DataLoss(
          what + ": an attached result cannot be read from the spool: " + refs.status().message());
    }
    pending.push_back({&r, std::move(*refs)});
  }

  // Why `p` must be withheld, or "" if it may go.
  auto verdict = [&](const Pending& p) -> std::string {
    const std::string& self = p.result->sop_instance_uid.str();
    for (const ObjectReference& ref : p.references) {
      const std::string& sop = ref.sop_instance_uid.str();
      if (sop == self || input_sops.contains(sop)) continue;
      if (missing.contains(sop)) return "references quarantined result " + ResultRef(sop);
      if (unnamed && !attached.contains(sop) && !ResultKindOf(ref.sop_class_uid).empty()) {
        return "references result " + ResultRef(sop) +
               " that is not among the job's results, and a result of the job was quarantined "
               "unreadable";
      }
    }
    return {};
  };

  int withheld = 0;
  std::set<std::string> done;
  for (bool changed = true; changed;) {
    changed = false;
    for (const Pending& p : pending) {
      const std::string& sop = p.result->sop_instance_uid.str();
      if (done.contains(sop)) continue;
      const std::string why = verdict(p);
      if (why.empty()) continue;
      RETURN_IF_ERROR(Withhold(job, *p.result, why, actor));
      done.insert(sop);
      attached.erase(sop);
      missing.insert(sop);
      ++withheld;
      changed = true;
    }
  }
  return withheld;
}

Status ResultIntake::Withhold(const JobRecord& job, const ResultRecord& result,
                              const std::string& why, const std::string& actor) {
  const std::string folder = std::to_string(job.id.value);
  const std::string ref = ResultRef(result.sop_instance_uid.str());
  const std::string what = "withhold result " + ref + " of job " + folder;
  // Kept in quarantine durably before the index forgets it, so a crash loses nothing.
  ASSIGN_OR_RETURN(fs::path kept,
                   KeepInQuarantine(folder, job.id, spool_.PathOf(result.spool_key),
                                    "withheld-" + ref + ".dcm", why, actor, /*keep_source=*/true));
  RETURN_IF_ERROR(FsyncPath(kept).WithContext(what));
  RETURN_IF_ERROR(FsyncDirectory(kept.parent_path()).WithContext(what));

  AuditEvent audit;
  audit.at = clock_.Now();
  audit.action = "quarantine";
  audit.outcome = "failure";
  audit.actor = actor;
  audit.study_ref = StudyRef(job.study_uid);
  audit.job_id = job.id;
  audit.detail = nlohmann::json{
      {"reason", why},
      {"withheld", true},
      {"sop_class", result.sop_class_uid.str()},
      {"result_ref",
       ref}}.dump();
  // Tracked before its row goes, so a crash before the file does leaves it to the next start.
  spool_.Track(result.spool_key, result.sop_instance_uid);
  ASSIGN_OR_RETURN(std::optional<std::string> freed,
                   index_.WithholdResult(
                       QuarantinedRecord{job.id, result.sop_instance_uid, why, audit.at}, audit));
  bool settled = true;
  if (freed) {
    Status removed = spool_.Remove(*freed);
    if (!removed.ok()) {
      settled = false;  // stays tracked: the next start removes it
      spdlog::warn("{}: removing its spool file: {}", what, StatusCodeName(removed.code()));
    }
  }
  if (settled) spool_.Settled(result.spool_key);
  metrics_.Add("conduit_tool_results_invalid_total", 1, "tool=\"" + job.tool + "\"");
  spdlog::warn("result {} of job {} (study {}) from {} withheld and quarantined: {}", ref, folder,
               audit.study_ref, actor, why);
  return Status::Ok();
}

}  // namespace conduit
