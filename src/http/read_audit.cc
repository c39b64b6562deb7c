#include "http/read_audit.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <nlohmann/json.hpp>

namespace conduit {

ReadAudit::ReadAudit() : throttle_(std::chrono::minutes(1), 4096) {}

void ReadAudit::Record(const DicomwebRead& read, Index& index, TimePoint now) {
  std::string key = read.credential + ' ' + read.peer + ' ' + read.via + ' ' + read.action + ' ' +
                    read.resource + ' ' +
                    (read.job ? "job " + std::to_string(read.job->value) : StudyRef(read.study));
  for (const std::string& k : read.keys) key += ' ' + k;  // searches on other attributes apart
  const std::optional<int64_t> unaudited = throttle_.Admit(key, now);
  if (!unaudited) return;

  AuditEvent event;
  event.at = now;
  event.action = read.action;
  event.outcome = "success";
  event.actor = read.credential == "none"  ? "DICOMWEB (no token)"
                : read.credential == "job" ? "DICOMWEB (job token)"
                                           : "DICOMWEB (API token)";
  if (!read.study.empty()) event.study_ref = StudyRef(read.study);
  nlohmann::json detail{{"protocol", "DICOMweb"},
                        {"resource", read.resource},
                        {"credential", read.credential},
                        {"peer", read.peer},
                        {"view", read.job ? "deidentified" : "original"},
                        {read.action == "query" ? "matches" : "instances", read.returned}};
  if (read.action == "query") detail["matched_on"] = read.keys;
  if (!read.via.empty()) detail["via"] = read.via;
  if (read.job) {
    event.job_id = *read.job;
    Result<std::optional<JobRecord>> job = index.GetJob(*read.job);
    if (job.ok() && job->has_value()) {
      event.actor = (*job)->tool;
      event.study_ref = StudyRef((*job)->study_uid);
    }
  }
  if (*unaudited > 0) detail["unaudited_before"] = *unaudited;
  event.detail = detail.dump();
  if (Status st = index.AppendAudit(event); !st.ok()) {
    spdlog::error("event=audit_failed action={} error=\"{}\"", read.action,
                  StatusCodeName(st.code()));
  }
}

}  // namespace conduit
