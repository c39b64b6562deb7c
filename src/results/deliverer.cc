#include "results/deliverer.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "dicom/dimse_sender.h"

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

Deliverer::Deliverer(const Config& config, Index& index, Spool& spool, const Clock& clock)
    : config_(config), index_(index), spool_(spool), clock_(clock) {}

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
        RETURN_IF_ERROR(index_.MarkDelivered(job.id, result.sop_instance_uid, dest->name, audit));
        ++ok_count;
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
    spdlog::info("{} (study {}): {} of {} result(s) delivered", to, study_ref, ok_count,
                 pending.size());
  }

  // A retryable failure wins: the retry may still reach the other destination, and a
  // refusal for good repeats on the retry and ends the job then.
  if (retry_later) return *retry_later;
  if (refused) return *refused;
  return Status::Ok();
}

}  // namespace conduit
