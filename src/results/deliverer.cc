#include "results/deliverer.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "core/dicom_uid.h"
#include "dicom/dimse_sender.h"
#include "dicom/dimse_status.h"
#include "dicom/storage_commitment.h"

namespace conduit {
namespace {

// Why a destination refused a file, without the file's name or UIDs: the DIMSE status the
// sender reports ("... status 0xC000"), or the missing presentation context.
std::string RefusalReason(const Status& status) {
  if (status.code() == StatusCode::kFailedPrecondition) {
    return "no presentation context accepted for its SOP class and transfer syntax";
  }
  const std::string& m = status.message();
  if (size_t at = m.rfind("status 0x"); at != std::string::npos && at + 13 <= m.size()) {
    return m.substr(at, 13);
  }
  return std::string(StatusCodeName(status.code()));
}

}  // namespace

Deliverer::Deliverer(const Config& config, Index& index, Spool& spool, const Clock& clock,
                     CommitmentWaiters* commitments, Metrics* metrics)
    : config_(config),
      index_(index),
      spool_(spool),
      clock_(clock),
      commitments_(commitments),
      metrics_(metrics) {
  if (metrics_ != nullptr) {
    metrics_->Describe("conduit_storage_commitment_requests_total", "counter",
                       "Storage commitment requests to PACS destinations, by outcome: "
                       "committed, partial (some not committed), no_report, refused");
    metrics_->Describe("conduit_storage_commitment_seconds", "histogram",
                       "From a storage commitment request to the PACS's report");
  }
}

Status Deliverer::Deliver(const JobRecord& job) {
  const std::string what = "deliver job " + std::to_string(job.id.value);
  const std::string study_ref = StudyRef(job.study_uid);

  // Every destination must be known before anything is sent.
  std::vector<const DestinationConfig*> destinations;
  for (const std::string& name : job.destinations) {
    const DestinationConfig* dest = config_.FindDestination(name);
    if (dest == nullptr) return NotFound(what + ": unknown destination '" + name + "'");
    destinations.push_back(dest);
  }

  ASSIGN_OR_RETURN(std::vector<ResultRecord> results, index_.ListResults(job.id));
  ASSIGN_OR_RETURN(auto delivered, index_.ListDelivered(job.id));

  std::optional<Status> retry_later;  // first retryable failure
  std::optional<Status> refused;      // first refusal for good
  for (const DestinationConfig* dest : destinations) {
    std::vector<const ResultRecord*> pending;
    std::vector<std::filesystem::path> files;
    for (const ResultRecord& result : results) {
      if (delivered.count({result.sop_instance_uid.str(), dest->name}) > 0) continue;
      std::filesystem::path path = spool_.PathOf(result.spool_key);
      std::error_code ec;
      if (!std::filesystem::is_regular_file(path, ec)) {
        return DataLoss(what + ": a result file is missing from the spool");
      }
      pending.push_back(&result);
      files.push_back(std::move(path));
    }
    if (pending.empty()) continue;

    DicomPeer peer;
    peer.calling_ae = config_.dicom.ae_title;
    peer.called_ae = dest->ae_title;
    peer.host = dest->host;
    peer.port = dest->port;
    peer.timeout = dest->timeout;
    peer.tls = dest->tls;

    const std::string to = what + " to " + dest->name;
    Result<std::vector<Status>> sent = StoreFiles(peer, files);
    if (!sent.ok()) {
      spdlog::warn("{} (study {}): {}", to, study_ref, sent.status().message());
      if (!retry_later) retry_later = Unavailable(to + ": " + sent.status().message());
      continue;
    }
    if (sent->size() != pending.size()) {
      return Internal(to + ": " + std::to_string(sent->size()) + " statuses for " +
                      std::to_string(pending.size()) + " files");
    }

    int ok_count = 0;
    std::vector<const ResultRecord*> stored;  // accepted, awaiting the PACS's commitment
    for (size_t i = 0; i < pending.size(); ++i) {
      const ResultRecord& result = *pending[i];
      const Status& st = (*sent)[i];
      AuditEvent audit;
      audit.at = clock_.Now();
      audit.action = "deliver";
      audit.actor = dest->name;
      audit.study_ref = study_ref;
      audit.job_id = job.id;
      audit.detail = nlohmann::json{{"destination", dest->name},
                                    {"sop_class", result.sop_class_uid.str()},
                                    {"size_bytes", result.size_bytes}}
                         .dump();
      if (st.ok()) {
        audit.outcome = "success";
        ++ok_count;
        if (dest->storage_commitment) {
          // Delivered only once committed: until then a retry sends it again.
          RETURN_IF_ERROR(index_.AppendAudit(audit));
          stored.push_back(&result);
          continue;
        }
        RETURN_IF_ERROR(index_.MarkDelivered(job.id, result.sop_instance_uid, dest->name, audit));
        continue;
      }
      audit.outcome = "failure";
      RETURN_IF_ERROR(index_.AppendAudit(audit));
      if (IsRetryable(st.code())) {
        if (!retry_later) {
          retry_later =
              Unavailable(to + ": destination out of resources (" + RefusalReason(st) + ")");
        }
      } else if (!refused) {
        refused = InvalidArgument(to + ": destination " + dest->name +
                                  " refused a result: " + RefusalReason(st));
      }
    }
    spdlog::info("{} (study {}): {} of {} result(s) {}", to, study_ref, ok_count, pending.size(),
                 dest->storage_commitment ? "stored" : "delivered");
    if (!stored.empty()) {
      if (Status committed = Commit(job, *dest, peer, stored); !committed.ok()) {
        spdlog::warn("{} (study {})", committed.message(), study_ref);
        if (!IsRetryable(committed.code())) {
          if (!refused) refused = committed;
        } else if (!retry_later) {
          retry_later = committed;
        }
      }
    }
  }

  // A retryable failure wins: the retry may still reach the other destination, and a
  // refusal for good repeats on the retry and ends the job then.
  if (retry_later) return *retry_later;
  if (refused) return *refused;
  return Status::Ok();
}

Status Deliverer::Commit(const JobRecord& job, const DestinationConfig& dest, const DicomPeer& peer,
                         const std::vector<const ResultRecord*>& stored) {
  const std::string what =
      "deliver job " + std::to_string(job.id.value) + " to " + dest.name + ": storage commitment";
  if (commitments_ == nullptr) {
    return FailedPrecondition(what + ": this deliverer cannot receive commitment reports");
  }
  std::vector<CommitmentReference> refs;
  std::map<std::string, const ResultRecord*> by_uid;
  for (const ResultRecord* result : stored) {
    refs.push_back({result->sop_class_uid, result->sop_instance_uid, 0});
    by_uid[result->sop_instance_uid.str()] = result;
  }
  const std::string transaction = NewDicomUid();
  auto ticket = commitments_->Expect(transaction);

  AuditEvent audit;
  audit.at = clock_.Now();
  audit.action = "commit";
  audit.actor = dest.name;
  audit.study_ref = StudyRef(job.study_uid);
  audit.job_id = job.id;
  nlohmann::json detail = {{"destination", dest.name}, {"requested", refs.size()}};

  const std::string label = "destination=\"" + dest.name + "\"";
  auto count = [this, &label](const char* outcome) {
    if (metrics_ != nullptr) {
      metrics_->Add("conduit_storage_commitment_requests_total", 1,
                    label + ",outcome=\"" + outcome + "\"");
    }
  };
  const auto asked_at = std::chrono::steady_clock::now();
  Status asked = RequestStorageCommitment(
      peer, transaction, refs,
      [this](const CommitmentReport& report) { commitments_->Deliver(report); });
  if (!asked.ok()) {
    count("refused");
    audit.outcome = "failure";
    detail["error"] = std::string(StatusCodeName(asked.code()));
    audit.detail = detail.dump();
    RETURN_IF_ERROR(index_.AppendAudit(audit));
    if (asked.code() == StatusCode::kFailedPrecondition) {
      // The PACS offers no storage commitment: a configuration to fix, not a job to retry.
      return InvalidArgument(what + ": " + asked.message() +
                             " (turn storage_commitment off for it, or have it offered)");
    }
    return Unavailable(what + ": " + asked.message());
  }
  std::optional<CommitmentReport> report = ticket->Wait(dest.commitment_timeout);
  audit.at = clock_.Now();
  if (!report) {
    const bool stopping = commitments_->shut_down();
    if (!stopping) count("no_report");
    audit.outcome = "failure";
    detail["error"] = stopping ? "stopping" : "no report";
    audit.detail = detail.dump();
    RETURN_IF_ERROR(index_.AppendAudit(audit));
    if (stopping) {
      return Unavailable(what +
                         ": Conduit is stopping; the results are sent and asked again "
                         "after the next start");
    }
    return Unavailable(what + ": no report within " +
                       std::to_string(dest.commitment_timeout.count() / 1000) +
                       " s (the results are sent again)");
  }

  if (metrics_ != nullptr) {
    metrics_->Observe(
        "conduit_storage_commitment_seconds",
        std::chrono::duration<double>(std::chrono::steady_clock::now() - asked_at).count(), label);
  }
  // Only what was asked counts; each committed result is recorded as delivered.
  std::set<std::string> committed;
  for (const CommitmentReference& ref : report->committed) {
    auto it = by_uid.find(ref.sop_instance.str());
    if (it == by_uid.end() || committed.count(it->first) > 0) continue;
    AuditEvent done = audit;
    done.outcome = "success";
    done.detail = nlohmann::json{
        {"destination", dest.name},
        {"sop_class", it->second->sop_class_uid.str()},
        {"committed",
         true}}.dump();
    RETURN_IF_ERROR(index_.MarkDelivered(job.id, it->second->sop_instance_uid, dest.name, done));
    committed.insert(it->first);
  }
  if (committed.size() == stored.size()) {
    count("committed");
    return Status::Ok();
  }
  count("partial");

  std::set<uint16_t> reasons;
  for (const CommitmentReference& ref : report->failed) {
    if (by_uid.count(ref.sop_instance.str()) > 0) reasons.insert(ref.failure_reason);
  }
  std::string reason_text;
  for (uint16_t r : reasons) reason_text += (reason_text.empty() ? "" : ", ") + DimseStatusText(r);
  audit.outcome = "failure";
  detail["committed"] = committed.size();
  detail["failure_reasons"] = reason_text;
  audit.detail = detail.dump();
  RETURN_IF_ERROR(index_.AppendAudit(audit));
  return Unavailable(what + ": " + std::to_string(stored.size() - committed.size()) + " of " +
                     std::to_string(stored.size()) + " result(s) not committed" +
                     (reason_text.empty() ? std::string(" (not in the report)")
                                          : " (failure reason " + reason_text + ")") +
                     "; they are sent again");
}

}  // namespace conduit
