#include "app/ingest_service.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <system_error>

#include "store/received_instance.h"

namespace conduit {
namespace {

void RemoveQuietly(const std::filesystem::path& file) {
  std::error_code ec;
  std::filesystem::remove(file, ec);
}

}  // namespace

AttributeMap RoutingAttributes(const InstanceMeta& meta, const AeTitle& calling_ae) {
  AttributeMap attributes = meta.attributes;
  attributes["CallingAE"] = calling_ae.str();
  return attributes;
}

Status StorageErrorForSender(const Status& error) {
  if (error.ok() || error.code() == StatusCode::kResourceExhausted ||
      error.code() == StatusCode::kInternal) {
    return error;
  }
  return Internal(error.message());
}

IngestService::IngestService(const Config& config, Spool& spool, Index& index, const Router& router,
                             StudyAssembler& assembler, ResultIntake& intake, Metrics& metrics,
                             const Clock& clock, std::function<void()> wake_jobs,
                             TransferGuard* guard, MoveInbox* move_inbox,
                             CommitmentLedger* commitments)
    : config_(config),
      spool_(spool),
      index_(index),
      router_(router),
      assembler_(assembler),
      intake_(intake),
      metrics_(metrics),
      clock_(clock),
      wake_jobs_(std::move(wake_jobs)),
      guard_(guard),
      move_inbox_(move_inbox),
      commitments_(commitments) {
  metrics_.Describe("conduit_instances_received_total", "counter",
                    "Instances received and made durable (duplicates included)");
  metrics_.Describe("conduit_instances_duplicate_total", "counter",
                    "Instances received again with a known SOP Instance UID");
  metrics_.Describe("conduit_bytes_received_total", "counter", "Bytes of instances received");
  metrics_.Describe("conduit_instances_rejected_total", "counter",
                    "Objects or associations refused, by reason code");
  metrics_.Describe("conduit_ingest_seconds", "histogram",
                    "From dataset received to durable (spool and index)");
}

std::filesystem::path IngestService::NewIncomingPath() { return spool_.NewIncomingPath(); }

Status IngestService::CheckCapacity() { return spool_.CheckSpace(); }

const ToolConfig* IngestService::ToolByAe(const AeTitle& ae) const {
  for (const auto& tool : config_.tools) {
    if (tool.kind == ToolKind::kDimse && tool.ae_title == ae) return &tool;
  }
  return nullptr;
}

Status IngestService::OnInstance(const ReceivedInstance& instance) {
  // A prior the PACS sends on our C-MOVE: input to a job, never a new study.
  if (move_inbox_ != nullptr && instance.association.protocol == "DIMSE") {
    if (std::optional<Status> taken = move_inbox_->Take(instance)) return *taken;
  }
  // Only a DIMSE association can come from a tool's node; STOW-RS results use OnJobResult.
  if (instance.association.protocol == "DIMSE") {
    if (const ToolConfig* tool = ToolByAe(instance.association.calling_ae)) {
      return IngestToolResult(*tool, instance);
    }
  }
  return IngestStudyInstance(instance);
}

Status IngestService::IngestStudyInstance(const ReceivedInstance& instance) {
  const auto started = std::chrono::steady_clock::now();
  const InstanceMeta& meta = instance.meta;
  Receipt receipt;
  receipt.calling_ae = instance.association.calling_ae;
  receipt.received_at = clock_.Now();
  receipt.actor = instance.association.calling_ae.str();
  receipt.detail = {{"protocol", instance.association.protocol},
                    {"peer", instance.association.peer_host}};
  if (instance.association.tls) receipt.detail["tls"] = true;
  auto stored = StoreReceivedInstance(spool_, index_, instance.file, meta, receipt);
  if (!stored.ok()) {
    // If only the index failed, the file is in the spool but unknown to the index: the sender
    // is told to retry, and the re-sent instance replaces the orphan under the same key.
    spdlog::error("event=receive_failed study={} from={} error=\"{}\"", StudyRef(meta.study_uid),
                  instance.association.calling_ae.str(), stored.status().ToString());
    const Status for_sender = StorageErrorForSender(stored.status());
    metrics_.Add("conduit_instances_rejected_total", 1,
                 "reason=\"" + std::string(StatusCodeName(for_sender.code())) + "\"");
    return for_sender;
  }
  metrics_.Add("conduit_instances_received_total", 1);
  metrics_.Add("conduit_bytes_received_total", static_cast<double>(stored->size_bytes));
  if (stored->outcome == PutOutcome::kDuplicate)
    metrics_.Add("conduit_instances_duplicate_total", 1);
  metrics_.Observe(
      "conduit_ingest_seconds",
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());

  for (const RouteConfig* route :
       router_.Match(RoutingAttributes(meta, instance.association.calling_ae))) {
    Status st = assembler_.Add(*route, meta.study_uid, meta.series_uid);
    if (!st.ok()) {
      // The instance is durable; the unit will be refreshed by the next instance or the
      // operator can re-send. Say so loudly rather than refusing a stored instance.
      spdlog::error("event=assemble_failed route={} study={} error=\"{}\"", route->name,
                    StudyRef(meta.study_uid), st.ToString());
    }
  }
  return Status::Ok();
}

Status IngestService::IngestToolResult(const ToolConfig& tool, const ReceivedInstance& instance) {
  InstanceMeta meta = instance.meta;
  const bool deidentified = guard_ != nullptr && guard_->Deidentifies(tool.name);
  if (deidentified) {
    // The result names the pseudonymous study; its job is found by the original one.
    auto original = guard_->OriginalStudyOf(instance.file);
    if (!original.ok() || !*original) {
      Status st = intake_.QuarantineUnmatched(
          tool.name, instance.file, meta,
          original.ok() ? "the result's study is not one this trust sent to the tool"
                        : original.status().message());
      if (st.code() != StatusCode::kInvalidArgument) RemoveQuietly(instance.file);
      return st;
    }
    meta.study_uid = **original;
  }
  auto jobs = index_.AwaitingJobs(tool.name, meta.study_uid);
  if (!jobs.ok()) {
    RemoveQuietly(instance.file);
    return jobs.status();
  }
  if (jobs->empty()) {
    // Results for a study no job of this tool awaits (another study, or too late): kept in
    // quarantine as evidence, audited, and refused to the tool.
    Status st = intake_.QuarantineUnmatched(tool.name, instance.file, meta,
                                            "no job of this tool awaits results for this study");
    if (st.code() != StatusCode::kInvalidArgument) RemoveQuietly(instance.file);
    return st;
  }
  // The newest awaiting job for this study and tool takes the result.
  return AttachResult(jobs->back(), instance, std::move(meta));
}

Result<JobRecord> IngestService::JobTakingResults(JobId job_id) {
  ASSIGN_OR_RETURN(std::optional<JobRecord> job, index_.GetJob(job_id));
  if (!job) return NotFound("job " + std::to_string(job_id.value) + ": not found");
  if (job->state != JobState::kSending && job->state != JobState::kAwaitingResults) {
    return FailedPrecondition("job " + std::to_string(job_id.value) + ": " +
                              JobStateName(job->state) + ", takes no results");
  }
  return *job;
}

Status IngestService::OnJobResult(JobId job_id, const ReceivedInstance& instance) {
  auto job = JobTakingResults(job_id);
  if (!job.ok()) {
    RemoveQuietly(instance.file);
    return job.status();
  }
  return AttachResult(*job, instance, instance.meta);
}

Status IngestService::OnUnreadableJobResult(JobId job_id, const std::filesystem::path& file,
                                            const std::string& why) {
  auto job = JobTakingResults(job_id);
  if (!job.ok()) {
    RemoveQuietly(file);
    return job.status();
  }
  Status st = intake_.Quarantine(*job, file, why, job->tool);
  if (st.code() != StatusCode::kInvalidArgument) RemoveQuietly(file);
  spdlog::warn("event=result_quarantined job={} tool={} reason=\"{}\"", job->id.value, job->tool,
               why);
  return st;
}

Status IngestService::AttachResult(const JobRecord& job, const ReceivedInstance& instance,
                                   InstanceMeta meta) {
  const std::string study_ref = StudyRef(job.study_uid);
  const std::string& tool = job.tool;
  Status st;
  if (guard_ != nullptr && guard_->Deidentifies(tool)) {
    st = guard_->Reidentify(job, instance.file);
    if (st.code() == StatusCode::kInvalidArgument) {
      st = intake_.Quarantine(job, instance.file, st.message(), tool);
    } else if (st.ok()) {
      auto mapped = ReadInstanceMeta(instance.file);
      if (mapped.ok()) {
        meta = std::move(*mapped);
      } else if (mapped.status().code() == StatusCode::kInvalidArgument) {
        st =
            intake_.Quarantine(job, instance.file,
                               "unreadable once re-identified: " + mapped.status().message(), tool);
      } else {
        st = mapped.status();
      }
    }
    if (!st.ok() && st.code() != StatusCode::kInvalidArgument) RemoveQuietly(instance.file);
  }
  if (st.ok()) st = intake_.Attach(job, instance.file, meta, tool);
  if (st.code() == StatusCode::kInvalidArgument) {
    // Quarantined: durable and audited, never delivered; the tool is told it was refused.
    spdlog::warn("event=result_quarantined job={} tool={} reason=\"{}\"", job.id.value, tool,
                 st.message());
    return st;
  }
  if (st.ok()) {
    spdlog::info("event=result_received job={} tool={} study={}", job.id.value, tool, study_ref);
    wake_jobs_();
  }
  return st;
}

void IngestService::OnRejected(const AssociationInfo& association, const Status& why) {
  metrics_.Add("conduit_instances_rejected_total", 1,
               "reason=\"" + std::string(StatusCodeName(why.code())) + "\"");
  spdlog::warn("event=rejected from={} peer={} reason=\"{}\"", association.calling_ae.str(),
               association.peer_host, why.ToString());
  AuditEvent audit{
      clock_.Now(),
      "reject",
      "failure",
      association.calling_ae.str(),
      "",
      JobId{},
      nlohmann::json{{"peer", association.peer_host}, {"reason", why.ToString()}}.dump(),
      ""};
  Status st = index_.AppendAudit(audit);
  if (!st.ok()) spdlog::error("event=audit_failed error=\"{}\"", st.ToString());
}

void IngestService::OnAssociationRejected(const AssociationInfo& association, const Status& why) {
  metrics_.Add("conduit_instances_rejected_total", 1,
               "reason=\"" + std::string(StatusCodeName(why.code())) + "\"");
  const TimePoint now = clock_.Now();
  const std::optional<int64_t> unreported =
      association_refusals_.Admit(association.peer_host + ' ' + association.calling_ae.str() + ' ' +
                                      std::string(StatusCodeName(why.code())),
                                  now);
  if (!unreported) return;
  spdlog::warn("event=association_rejected from={} peer={} reason=\"{}\" unreported_before={}",
               association.calling_ae.str(), association.peer_host, why.ToString(), *unreported);
  nlohmann::json detail{{"peer", association.peer_host}, {"reason", why.ToString()}};
  if (*unreported > 0) detail["unreported_before"] = *unreported;
  AuditEvent audit{now, "reject", "failure",     association.calling_ae.str(),
                   "",  JobId{},  detail.dump(), ""};
  Status st = index_.AppendAudit(audit);
  if (!st.ok()) spdlog::error("event=audit_failed error=\"{}\"", st.ToString());
}

Status IngestService::OnMpps(const MppsEvent& event) {
  MppsRecord record;
  record.mpps_sop_instance_uid = event.mpps_sop_instance_uid;
  record.study_uid = event.study_uid;
  record.status = event.status;
  record.instances = event.instances;
  Status st = assembler_.OnMpps(record);
  if (st.ok()) wake_jobs_();
  return st;
}

Status IngestService::OnCommitmentReport(const CommitmentReport& report,
                                         const AssociationInfo& association) {
  if (commitments_ == nullptr) {
    return FailedPrecondition("this node asks no PACS for storage commitment");
  }
  Result<bool> taken = commitments_->OnReport(report);
  if (!taken.ok()) {
    spdlog::error("event=commitment_report_failed from={} error=\"{}\"",
                  association.calling_ae.str(), taken.status().ToString());
  }
  return taken.status();
}

}  // namespace conduit
