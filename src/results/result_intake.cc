#include "results/result_intake.h"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <system_error>

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
    return Quarantine(job, file, "result for another study", actor);
  }
  // A result must be a new object: a tool echoing an input back would otherwise be
  // delivered to PACS as a result, and share the input's spool key.
  ASSIGN_OR_RETURN(std::optional<InstanceRecord> input, index_.FindInstance(meta.sop_instance_uid));
  if (input.has_value()) {
    return Quarantine(job, file,
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
    return Quarantine(job, file, "not a valid AI result: " + valid.status().message(), actor);
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
  metrics_.Add("conduit_tool_results_invalid_total", 1, "tool=\"" + job.tool + "\"");
  return QuarantineInto(std::to_string(job.id.value), job.id, job.study_uid, file, why, actor);
}

Status ResultIntake::QuarantineUnmatched(const std::string& tool, const fs::path& file,
                                         const InstanceMeta& meta, const std::string& why) {
  return QuarantineInto("unmatched-" + tool, JobId{}, meta.study_uid, file, why, tool);
}

Status ResultIntake::QuarantineInto(const std::string& folder, JobId job, const StudyUid& study,
                                    const fs::path& file, const std::string& why,
                                    const std::string& actor) {
  const std::string owner = job.value != 0 ? "job " + std::to_string(job.value) : folder;
  const std::string what = "quarantine result of " + owner;
  const fs::path dir = spool_.root() / "quarantine" / folder;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return ErrnoStatus(ec.value(), what + ": create " + dir.string());

  fs::path name = file.filename();
  if (name.empty()) name = "result.dcm";
  const fs::path target = UnusedName(dir, name);
  RETURN_IF_ERROR(MoveFile(file, target).WithContext(what));
  {
    std::ofstream reason(target.string() + ".reason.txt", std::ios::trunc);
    reason << why << "\nactor: " << actor << "\n";
    if (job.value != 0) reason << "job: " << job.value << "\n";
    if (!reason.flush()) {
      return ErrnoStatus(errno != 0 ? errno : EIO, what + ": write reason for " + target.string());
    }
  }

  AuditEvent audit;
  audit.at = clock_.Now();
  audit.action = "quarantine";
  audit.outcome = "failure";
  audit.actor = actor;
  audit.study_ref = StudyRef(study);
  audit.job_id = job;
  audit.detail = nlohmann::json{{"reason", why}}.dump();
  RETURN_IF_ERROR(index_.AppendAudit(audit));

  spdlog::warn("result from {} for {} (study {}) quarantined: {}", actor, owner, audit.study_ref,
               why);
  return InvalidArgument("result for " + owner + " quarantined: " + why);
}

}  // namespace conduit
