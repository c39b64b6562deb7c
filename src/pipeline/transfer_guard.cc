#include "pipeline/transfer_guard.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>
#include <system_error>

namespace conduit {
namespace {

namespace fs = std::filesystem;

// Crosswalk rows are written in batches so a study of any size keeps memory bounded.
constexpr size_t kCrosswalkBatch = 4096;

const char* KindName(PseudonymPair::Kind kind) {
  switch (kind) {
    case PseudonymPair::Kind::kUid:
      return "uid";
    case PseudonymPair::Kind::kPatientId:
      return "patient_id";
    case PseudonymPair::Kind::kAccessionNumber:
      return "accession_number";
  }
  return "uid";
}

std::string JobName(const JobRecord& job) { return "job " + std::to_string(job.id.value); }

}  // namespace

TransferGuard::TransferGuard(Index& index, Spool& spool, const Clock& clock, Metrics& metrics,
                             Pseudonymiser pseudonymiser,
                             std::map<std::string, DeidSettings> settings)
    : index_(index),
      spool_(spool),
      clock_(clock),
      metrics_(metrics),
      key_id_(pseudonymiser.key_id()),
      reidentifier_([this](const std::vector<std::string>& pseudonyms) {
        return index_.FindOriginals(pseudonyms);
      }) {
  for (auto& [tool, tool_settings] : settings)
    deidentifiers_.emplace(tool, Deidentifier(std::move(tool_settings), pseudonymiser));
  metrics_.Describe("conduit_deid_instances_total", "counter",
                    "Instances de-identified for tools, by outcome");
  metrics_.Describe("conduit_reid_results_total", "counter",
                    "Tool results re-identified, by outcome");
}

Result<std::vector<fs::path>> TransferGuard::Prepare(const JobRecord& job,
                                                     const std::vector<fs::path>& inputs,
                                                     const fs::path& dir) {
  auto found = deidentifiers_.find(job.tool);
  if (found == deidentifiers_.end()) return inputs;
  const Deidentifier& deidentifier = found->second;
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir, ec);
  if (ec) return ErrnoStatus(ec.value(), JobName(job) + ": de-identification folder");

  std::vector<fs::path> out;
  std::vector<CrosswalkRecord> crosswalk;
  std::map<std::string, int64_t> actions;
  nlohmann::json refused = nlohmann::json::array();
  const TimePoint now = clock_.Now();
  for (size_t i = 0; i < inputs.size(); ++i) {
    const fs::path target = dir / (std::to_string(i) + ".dcm");
    auto outcome = deidentifier.DeidentifyFile(inputs[i], target);
    if (!outcome.ok()) {
      if (outcome.status().code() == StatusCode::kInvalidArgument)
        return DataLoss(JobName(job) + ": input " + std::to_string(i) +
                        " cannot be de-identified: " + outcome.status().message());
      return outcome.status().WithContext(JobName(job) + ": de-identifying input " +
                                          std::to_string(i));
    }
    if (outcome->refused) {
      refused.push_back({{"input", i}, {"reason", outcome->refusal}});
      metrics_.Add("conduit_deid_instances_total", 1, "outcome=\"refused\"");
      continue;
    }
    metrics_.Add("conduit_deid_instances_total", 1, "outcome=\"deidentified\"");
    for (const auto& [action, n] : outcome->actions) actions[action] += n;
    for (auto& pair : outcome->pseudonyms) {
      crosswalk.push_back({std::move(pair.pseudonym), std::move(pair.original), KindName(pair.kind),
                           job.study_uid, key_id_, now});
    }
    if (crosswalk.size() >= kCrosswalkBatch) {
      RETURN_IF_ERROR(index_.PutPseudonyms(crosswalk).WithContext(JobName(job) + ": crosswalk"));
      crosswalk.clear();
    }
    out.push_back(target);
  }
  // Durable before the adapter can send anything: a result can always be mapped back.
  RETURN_IF_ERROR(index_.PutPseudonyms(crosswalk).WithContext(JobName(job) + ": crosswalk"));

  const DeidSettings& settings = deidentifier.settings();
  nlohmann::json detail{{"tool", job.tool},           {"policy", settings.policy_name},
                        {"key_id", key_id_},          {"inputs", inputs.size()},
                        {"deidentified", out.size()}, {"refused", refused},
                        {"actions", actions}};
  AuditEvent audit{now,
                   "deidentify",
                   out.empty() ? "failure" : "success",
                   job.tool,
                   StudyRef(job.study_uid),
                   job.id,
                   detail.dump(),
                   settings.policy_hash};
  RETURN_IF_ERROR(index_.AppendAudit(audit));
  if (!refused.empty()) {
    spdlog::warn("job {}: the policy refused {} of {} inputs for tool '{}' (first: {})",
                 job.id.value, refused.size(), inputs.size(), job.tool,
                 refused[0]["reason"].get<std::string>());
  }
  if (out.empty())
    return FailedPrecondition(JobName(job) + ": the policy refused every input instance (" +
                              refused[0]["reason"].get<std::string>() + ")");
  spdlog::info("job {}: {} instances de-identified for tool '{}'", job.id.value, out.size(),
               job.tool);
  return out;
}

Result<std::optional<StudyUid>> TransferGuard::OriginalStudyOf(const fs::path& result) {
  ASSIGN_OR_RETURN(auto original, reidentifier_.OriginalStudyOf(result));
  if (!original) return std::optional<StudyUid>();
  return std::optional<StudyUid>(StudyUid(*original));
}

Status TransferGuard::Reidentify(const JobRecord& job, const fs::path& result) {
  ASSIGN_OR_RETURN(auto originals, index_.ListInstances(job.study_uid, job.series));
  if (originals.empty())
    return FailedPrecondition(JobName(job) + ": no original instance to re-identify against");
  fs::path mapped = result;
  mapped += ".reid";
  auto outcome =
      reidentifier_.ReidentifyFile(result, mapped, spool_.PathOf(originals[0].spool_key));
  std::error_code ec;
  if (outcome.ok() && outcome->study_uid != job.study_uid.str()) {
    outcome = InvalidArgument("the result belongs to another study than the job's");
  }
  const bool ok = outcome.ok();
  metrics_.Add("conduit_reid_results_total", 1,
               ok ? "outcome=\"reidentified\"" : "outcome=\"refused\"");
  nlohmann::json detail{{"tool", job.tool}};
  if (ok) {
    detail["uids_restored"] = outcome->uids_restored;
    detail["identity_attributes_restored"] = outcome->identity_attributes_restored;
  } else {
    detail["reason"] = outcome.status().message();
  }
  RETURN_IF_ERROR(
      index_.AppendAudit(AuditEvent{clock_.Now(), "reidentify", ok ? "success" : "failure",
                                    job.tool, StudyRef(job.study_uid), job.id, detail.dump(), ""}));
  if (!ok) {
    fs::remove(mapped, ec);
    return outcome.status();
  }
  fs::rename(mapped, result, ec);
  if (ec) return ErrnoStatus(ec.value(), JobName(job) + ": replacing a re-identified result");
  return Status::Ok();
}

}  // namespace conduit
