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
#include "dicom/stow_sender.h"

namespace conduit {
namespace {

// Why a destination refused a file, without the file's name or UIDs: the DIMSE status the
// sender reports ("... status 0xC000"), or the missing presentation context; for STOW-RS,
// what StowFiles says (the FailureReason or HTTP status).
std::string RefusalReason(const DestinationConfig& dest, const Status& status) {
  if (dest.stow()) return status.message();
  if (status.code() == StatusCode::kFailedPrecondition) {
    return "no presentation context accepted for its SOP class and transfer syntax";
  }
  const std::string& m = status.message();
  if (size_t at = m.rfind("status 0x"); at != std::string::npos && at + 13 <= m.size()) {
    return m.substr(at, 13);
  }
  return std::string(StatusCodeName(status.code()));
}

// Sends `files` (the results `pending`) to `dest` by C-STORE (with `peer`) or STOW-RS: one
// status per file, as StoreFiles and StowFiles give them.
Result<std::vector<Status>> SendResults(const DestinationConfig& dest, const DicomPeer& peer,
                                        const std::vector<const ResultRecord*>& pending,
                                        const std::vector<std::filesystem::path>& files) {
  if (!dest.stow()) return StoreFiles(peer, files);
  StowTarget target;
  target.url = dest.dicomweb_url;
  target.auth_token_file = dest.auth_token_file;
  target.tls = dest.tls;
  target.timeout = dest.timeout;
  target.chunk_bytes = dest.chunk_bytes;
  target.setting = "destinations[" + dest.name + "].dicomweb";
  std::vector<std::string> uids;
  uids.reserve(pending.size());
  for (const ResultRecord* result : pending) uids.push_back(result->sop_instance_uid.str());
  return StowFiles(target, files, uids);
}

const char* ProtocolName(const DestinationConfig& dest) {
  return dest.stow() ? "stow-rs" : "c-store";
}

}  // namespace

Deliverer::Deliverer(const Config& config, Index& index, Spool& spool, const Clock& clock,
                     CommitmentLedger* commitments, Metrics* metrics)
    : config_(config),
      index_(index),
      spool_(spool),
      clock_(clock),
      commitments_(commitments),
      metrics_(metrics) {
  if (metrics_ != nullptr) {
    metrics_->Describe("conduit_results_sent_total", "counter",
                       "Results sent to a destination, by what it answered: accepted (for one "
                       "with storage commitment, before its report), retry (sent again later) "
                       "or refused (for good)");
  }
}

Result<DeliveryProgress> Deliverer::Deliver(const JobRecord& job) {
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
  ASSIGN_OR_RETURN(std::vector<CommitmentRecord> commitments, index_.ListCommitments(job.id));

  std::optional<Status> retry_later;  // first retryable failure
  std::optional<Status> refused;      // first refusal for good
  for (const DestinationConfig* dest : destinations) {
    // Results whose commitment was asked of this destination: awaited, or given up on now
    // and sent again on the retry.
    std::set<std::string> held;
    RETURN_IF_ERROR(ReviewCommitments(job, *dest, commitments, held, retry_later));
    std::vector<const ResultRecord*> pending;
    std::vector<std::filesystem::path> files;
    for (const ResultRecord& result : results) {
      if (delivered.count({result.sop_instance_uid.str(), dest->name}) > 0) continue;
      if (held.count(result.sop_instance_uid.str()) > 0) continue;
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
    Result<std::vector<Status>> sent = SendResults(*dest, peer, pending, files);
    if (!sent.ok()) {
      CountSent(*dest, "retry", pending.size());
      spdlog::warn("{} (study {}): {}", to, study_ref, sent.status().message());
      if (!retry_later) retry_later = Unavailable(to + ": " + sent.status().message());
      continue;
    }
    if (sent->size() != pending.size()) {
      return Internal(to + ": " + std::to_string(sent->size()) + " statuses for " +
                      std::to_string(pending.size()) + " files");
    }

    size_t ok_count = 0;
    std::string first_failure;                // why the first failed result was not delivered
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
      nlohmann::json detail{{"destination", dest->name},
                            {"protocol", ProtocolName(*dest)},
                            {"sop_class", result.sop_class_uid.str()},
                            {"size_bytes", result.size_bytes}};
      if (!st.ok()) detail["error"] = RefusalReason(*dest, st);
      audit.detail = detail.dump();
      CountSent(*dest, st.ok() ? "accepted" : IsRetryable(st.code()) ? "retry" : "refused", 1);
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
      if (first_failure.empty()) first_failure = detail["error"].get<std::string>();
      if (IsRetryable(st.code())) {
        if (!retry_later) {
          retry_later = Unavailable(dest->stow() ? to + ": " + st.message()
                                                 : to + ": destination out of resources (" +
                                                       RefusalReason(*dest, st) + ")");
        }
      } else if (!refused) {
        refused = InvalidArgument(to + ": destination " + dest->name +
                                  " refused a result: " + RefusalReason(*dest, st));
      }
    }
    spdlog::info("{} (study {}): {} of {} result(s) {}", to, study_ref, ok_count, pending.size(),
                 dest->storage_commitment ? "stored" : "delivered");
    if (ok_count < pending.size()) {
      spdlog::warn("{} (study {}): {} of {} result(s) not delivered: {}", to, study_ref,
                   pending.size() - ok_count, pending.size(), first_failure);
    }
    if (!stored.empty()) {
      if (Status asked = RequestCommitment(job, *dest, peer, stored); !asked.ok()) {
        spdlog::warn("{} (study {})", asked.message(), study_ref);
        if (!IsRetryable(asked.code())) {
          if (!refused) refused = asked;
        } else if (!retry_later) {
          retry_later = asked;
        }
      }
    }
  }

  // A retryable failure wins: the retry may still reach the other destination, and a
  // refusal for good repeats on the retry and ends the job then.
  if (retry_later) return *retry_later;
  if (refused) return *refused;

  // Done only when every result is delivered everywhere; otherwise reports are awaited (or
  // one came during this step: step again now).
  ASSIGN_OR_RETURN(delivered, index_.ListDelivered(job.id));
  bool all = true;
  for (const ResultRecord& result : results) {
    for (const DestinationConfig* dest : destinations) {
      all = all && delivered.count({result.sop_instance_uid.str(), dest->name}) > 0;
    }
  }
  if (all) return DeliveryProgress{};
  ASSIGN_OR_RETURN(commitments, index_.ListCommitments(job.id));
  DeliveryProgress progress;
  progress.done = false;
  progress.until = clock_.Now();
  std::optional<TimePoint> earliest;
  for (const CommitmentRecord& row : commitments) {
    if (row.reported) {
      earliest = clock_.Now();  // reported not committed during this step: retry now
      break;
    }
    ++progress.awaited;
    if (!earliest || row.deadline < *earliest) earliest = row.deadline;
  }
  if (earliest) progress.until = *earliest;
  return progress;
}

void Deliverer::CountSent(const DestinationConfig& dest, const char* outcome, size_t results) {
  if (metrics_ == nullptr) return;
  metrics_->Add("conduit_results_sent_total", static_cast<double>(results),
                "destination=\"" + dest.name + "\",protocol=\"" + ProtocolName(dest) +
                    "\",outcome=\"" + outcome + "\"");
}

Result<size_t> Deliverer::AwaitedResults(const JobRecord& job) {
  ASSIGN_OR_RETURN(std::vector<CommitmentRecord> rows, index_.ListCommitments(job.id));
  size_t awaited = 0;
  for (const CommitmentRecord& row : rows) awaited += row.reported ? 0 : 1;
  return awaited;
}

Status Deliverer::ReviewCommitments(const JobRecord& job, const DestinationConfig& dest,
                                    const std::vector<CommitmentRecord>& rows,
                                    std::set<std::string>& held,
                                    std::optional<Status>& retry_later) {
  std::map<std::string, std::vector<const CommitmentRecord*>> by_transaction;
  for (const CommitmentRecord& row : rows) {
    if (row.destination != dest.name) continue;
    held.insert(row.sop_instance_uid.str());
    by_transaction[row.transaction_uid].push_back(&row);
  }
  const TimePoint now = clock_.Now();
  const std::string what =
      "deliver job " + std::to_string(job.id.value) + " to " + dest.name + ": storage commitment";
  for (const auto& [transaction, items] : by_transaction) {
    size_t open = 0;
    std::set<uint16_t> reasons;
    for (const CommitmentRecord* row : items) {
      if (!row->reported) {
        ++open;
      } else if (row->failure_reason != 0) {
        reasons.insert(row->failure_reason);
      }
    }
    // A request an earlier process recorded but may never have sent (it stopped in between):
    // no report is coming for it, so it is not waited for.
    const bool interrupted =
        open > 0 && commitments_ != nullptr && commitments_->WasInterrupted(*items.front());
    const bool overdue = open > 0 && !interrupted && now >= items.front()->deadline;
    if (open > 0 && !overdue && !interrupted) continue;  // awaited

    // Given up on: the results go again on the retry.
    if (overdue && commitments_ != nullptr) commitments_->CountRequest(dest.name, "no_report");
    std::string reason_text;
    for (uint16_t r : reasons) {
      reason_text += (reason_text.empty() ? "" : ", ") + DimseStatusText(r);
    }
    AuditEvent audit;
    audit.at = now;
    audit.action = "commit";
    audit.outcome = "failure";
    audit.actor = dest.name;
    audit.study_ref = StudyRef(job.study_uid);
    audit.job_id = job.id;
    nlohmann::json detail = {{"destination", dest.name}, {"not_committed", items.size()}};
    if (overdue) detail["error"] = "no report";
    if (interrupted) detail["error"] = "request interrupted";
    if (!reason_text.empty()) detail["failure_reasons"] = reason_text;
    audit.detail = detail.dump();
    RETURN_IF_ERROR(index_.CloseCommitment(transaction, audit));
    const long long waited =
        std::chrono::duration_cast<std::chrono::seconds>(now - items.front()->requested_at).count();
    std::string why;
    if (interrupted) {
      why = " (the request may never have been sent: Conduit stopped while sending it)";
    } else if (overdue) {
      why = " (no report within " + std::to_string(waited) + " s)";
    } else if (reason_text.empty()) {
      why = " (not in the report)";
    } else {
      why = " (failure reason " + reason_text + ")";
    }
    Status given_up = Unavailable(what + ": " + std::to_string(items.size()) +
                                  " result(s) not committed" + why + "; they are sent again");
    spdlog::warn("{} (study {})", given_up.message(), StudyRef(job.study_uid));
    if (!retry_later) retry_later = std::move(given_up);
  }
  return Status::Ok();
}

Status Deliverer::RequestCommitment(const JobRecord& job, const DestinationConfig& dest,
                                    const DicomPeer& peer,
                                    const std::vector<const ResultRecord*>& stored) {
  const std::string what =
      "deliver job " + std::to_string(job.id.value) + " to " + dest.name + ": storage commitment";
  if (commitments_ == nullptr) {
    return FailedPrecondition(what + ": this deliverer cannot receive commitment reports");
  }
  std::vector<CommitmentReference> refs;
  for (const ResultRecord* result : stored) {
    refs.push_back({result->sop_class_uid, result->sop_instance_uid, 0});
  }
  const std::string transaction = NewDicomUid();
  RETURN_IF_ERROR(commitments_->Open(job, dest.name, transaction, stored,
                                     clock_.Now() + dest.commitment_timeout));
  CommitmentLedger* ledger = commitments_;
  Status asked = RequestStorageCommitment(
      peer, transaction, refs, [ledger](const CommitmentReport& report) -> Status {
        // A report on the request's own association; the listener takes the others.
        Result<bool> taken = ledger->OnReport(report);
        if (!taken.ok()) {
          spdlog::error("event=commitment_report_failed error=\"{}\"", taken.status().ToString());
        }
        return taken.status();
      });
  if (asked.ok()) {
    // Unmarked, the request would be given up after a restart and asked again: no loss.
    if (Status marked = commitments_->MarkAsked(transaction); !marked.ok()) {
      spdlog::error("event=commitment_mark_failed error=\"{}\"", marked.ToString());
    }
    return Status::Ok();
  }

  commitments_->CountRequest(dest.name, "refused");
  AuditEvent audit;
  audit.at = clock_.Now();
  audit.action = "commit";
  audit.outcome = "failure";
  audit.actor = dest.name;
  audit.study_ref = StudyRef(job.study_uid);
  audit.job_id = job.id;
  audit.detail = nlohmann::json{{"destination", dest.name},
                                {"not_committed", stored.size()},
                                {"error", std::string(StatusCodeName(asked.code()))}}
                     .dump();
  RETURN_IF_ERROR(index_.CloseCommitment(transaction, audit));
  if (asked.code() == StatusCode::kFailedPrecondition) {
    // The PACS offers no storage commitment: a configuration to fix, not a job to retry.
    return InvalidArgument(what + ": " + asked.message() +
                           " (turn storage_commitment off for it, or have it offered)");
  }
  return Unavailable(what + ": " + asked.message());
}

}  // namespace conduit
