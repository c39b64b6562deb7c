#include "app/retention.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

namespace conduit {
namespace {

constexpr const char* kActor = "retention";

// What one sweep did; every field becomes a count in the audit event and a metric.
struct SweepCounts {
  int64_t audit_purged = 0;
  int64_t crosswalk_purged = 0;
  int64_t hl7_outbox_purged = 0;   // sent or failed for good, past the crosswalk period
  int64_t ris_orders_purged = 0;   // past the crosswalk period
  int64_t ris_reports_purged = 0;  // past the audit period
  int64_t studies_expired = 0;
  int64_t studies_skipped = 0;  // became busy (or empty) between selection and expiry
  int64_t files_removed = 0;
  int64_t files_not_removed = 0;     // left as orphans; logged by key prefix
  int64_t work_folders_removed = 0;  // of the expired studies' jobs (failed, dead-lettered)
  int64_t work_folders_not_removed = 0;
};

// Keeps the first error of a sweep.
void Keep(Status& first, Status st) {
  if (first.ok() && !st.ok()) first = std::move(st);
}

// Removes the work folders of every job of an expired study; failures are logged by job id.
void RemoveWorkFolders(Index& index, Spool& spool, const StudyUid& study,
                       const std::string& study_ref, SweepCounts& n) {
  auto jobs = index.JobsOfStudy(study);
  if (!jobs.ok()) {
    ++n.work_folders_not_removed;
    spdlog::warn("event=retention_work_folders_not_removed study={} error=\"{}\"", study_ref,
                 jobs.status().ToString());
    return;
  }
  for (const JobId& job : *jobs) {
    Result<bool> removed = spool.RemoveJobDir(job.value);
    if (!removed.ok()) {
      ++n.work_folders_not_removed;
      spdlog::warn("event=retention_work_folder_not_removed study={} job={} error=\"{}\"",
                   study_ref, job.value, removed.status().ToString());
    } else if (*removed) {
      ++n.work_folders_removed;
    }
  }
}

}  // namespace

RetentionSweeper::RetentionSweeper(Index& index, Spool& spool, const Clock& clock, Metrics& metrics,
                                   RetentionPolicy policy, std::chrono::milliseconds interval)
    : index_(index),
      spool_(spool),
      clock_(clock),
      metrics_(metrics),
      policy_(policy),
      interval_(interval) {
  metrics_.Describe("conduit_retention_sweeps_total", "counter", "Retention sweeps run");
  metrics_.Describe("conduit_retention_sweep_failures_total", "counter",
                    "Retention sweeps that met an error");
  metrics_.Describe("conduit_retention_studies_expired_total", "counter",
                    "Studies whose instances and results retention deleted");
  metrics_.Describe("conduit_retention_files_removed_total", "counter",
                    "Spool files retention removed");
  metrics_.Describe("conduit_retention_files_not_removed_total", "counter",
                    "Spool files retention could not remove (left as orphans)");
  metrics_.Describe("conduit_retention_work_folders_removed_total", "counter",
                    "Work folders of expired studies' jobs retention removed");
  metrics_.Describe("conduit_retention_audit_purged_total", "counter",
                    "Audit rows deleted past the audit retention period");
  metrics_.Describe("conduit_retention_crosswalk_purged_total", "counter",
                    "Crosswalk mappings deleted past the crosswalk retention period");
  metrics_.Describe("conduit_retention_hl7_outbox_purged_total", "counter",
                    "HL7 outbox messages (sent or failed) deleted past the crosswalk period");
  metrics_.Describe("conduit_retention_ris_orders_purged_total", "counter",
                    "RIS orders deleted past the crosswalk retention period");
  metrics_.Describe("conduit_retention_ris_reports_purged_total", "counter",
                    "RIS reports deleted past the audit retention period");
  metrics_.Describe("conduit_retention_last_sweep_timestamp_seconds", "gauge",
                    "Unix time of the last retention sweep");
}

RetentionSweeper::~RetentionSweeper() { Stop(); }

Status RetentionSweeper::SweepOnce() { return Sweep(std::stop_token()); }

Status RetentionSweeper::Sweep(std::stop_token stop) {
  std::lock_guard lock(sweep_mu_);
  const TimePoint now = clock_.Now();
  SweepCounts n;
  Status first;

  // The audit purge runs before this sweep's own event is written, so never deletes it.
  if (auto purged = index_.PurgeAuditBefore(now - policy_.audit); purged.ok()) {
    n.audit_purged = *purged;
  } else {
    Keep(first, purged.status().WithContext("retention: audit purge"));
  }
  // Results of jobs older than this can no longer be re-identified: they are quarantined.
  if (auto purged = index_.PurgePseudonymsBefore(now - policy_.crosswalk); purged.ok()) {
    n.crosswalk_purged = *purged;
  } else {
    Keep(first, purged.status().WithContext("retention: crosswalk purge"));
  }
  // The RIS link: outbox messages and orders tie the patient's identifiers to jobs and studies,
  // as the crosswalk does, and go with it; pending messages are never purged. Reports are the
  // evidence layer's ground truth and stay as long as the audit trail that cites them.
  if (auto purged = index_.PurgeHl7Before(now - policy_.crosswalk); purged.ok()) {
    n.hl7_outbox_purged = *purged;
  } else {
    Keep(first, purged.status().WithContext("retention: hl7 outbox purge"));
  }
  if (auto purged = index_.PurgeRisOrdersBefore(now - policy_.crosswalk); purged.ok()) {
    n.ris_orders_purged = *purged;
  } else {
    Keep(first, purged.status().WithContext("retention: ris orders purge"));
  }
  if (auto purged = index_.PurgeRisReportsBefore(now - policy_.audit); purged.ok()) {
    n.ris_reports_purged = *purged;
  } else {
    Keep(first, purged.status().WithContext("retention: ris reports purge"));
  }

  const TimePoint received_before = now - policy_.spool;
  const std::string expire_detail = nlohmann::json{{"spool_days", policy_.spool.count()}}.dump();
  bool more = true;
  while (more && !stop.stop_requested()) {
    auto studies = index_.StudiesToExpire(received_before, kStudiesPerBatch);
    if (!studies.ok()) {
      Keep(first, studies.status().WithContext("retention: selecting studies"));
      break;
    }
    int64_t expired_in_batch = 0;
    for (const StudyUid& study : *studies) {
      if (stop.stop_requested()) break;
      AuditEvent audit;
      audit.at = now;
      audit.action = "expire";
      audit.outcome = "success";
      audit.actor = kActor;
      audit.study_ref = StudyRef(study);
      audit.detail = expire_detail;
      // No instance may be stored while its study's rows and files go (see Spool::expiry_lock).
      std::unique_lock expiring(spool_.expiry_lock());
      // The files are tracked before their rows go: if the process dies between the rows
      // and the files, the next start removes the files the index no longer records.
      auto files = index_.SpoolFilesOfStudy(study);
      if (!files.ok()) {
        Keep(first, files.status().WithContext("retention: files of study " + audit.study_ref));
        more = false;
        break;
      }
      for (const auto& [key, sop] : *files) spool_.Track(key, sop);
      auto keys = index_.ExpireStudy(study, audit);
      std::set<std::string> not_removed;
      if (keys.ok()) {
        ++n.studies_expired;
        ++expired_in_batch;
        // The rows are gone (committed): only now the files, so nothing names a missing file.
        for (const std::string& key : *keys) {
          Status removed = spool_.Remove(key);
          if (removed.ok()) {
            ++n.files_removed;
          } else {
            ++n.files_not_removed;
            not_removed.insert(key);  // stays tracked: the next start tries again
            spdlog::warn("event=retention_file_not_removed study={} key={} error=\"{}\"",
                         audit.study_ref, key.substr(0, 16), removed.ToString());
          }
        }
      }
      for (const auto& [key, sop] : *files) {
        if (!not_removed.contains(key)) spool_.Settled(key);
      }
      // A job that did not end done keeps its work folder for whoever investigates; its
      // inputs are hard links to the spool files, so their bytes outlive the files until the
      // folder goes. Every job of the study is over (ExpireStudy checked, in its transaction).
      if (keys.ok()) {
        expiring.unlock();  // receipts need not wait for the folders
        RemoveWorkFolders(index_, spool_, study, audit.study_ref, n);
      }
      if (!keys.ok()) {
        const StatusCode code = keys.status().code();
        if (code == StatusCode::kFailedPrecondition || code == StatusCode::kNotFound) {
          ++n.studies_skipped;  // work began (or another sweep ran) since it was selected
          continue;
        }
        Keep(first, keys.status().WithContext("retention: expiring study " + audit.study_ref));
        more = false;
        break;
      }
    }
    // A batch shorter than asked for was the last; one that expired nothing (every study
    // busy) would only be selected again.
    if (static_cast<int>(studies->size()) < kStudiesPerBatch || expired_in_batch == 0) {
      more = false;
    }
  }

  nlohmann::json detail = {{"audit_purged", n.audit_purged},
                           {"crosswalk_purged", n.crosswalk_purged},
                           {"hl7_outbox_purged", n.hl7_outbox_purged},
                           {"ris_orders_purged", n.ris_orders_purged},
                           {"ris_reports_purged", n.ris_reports_purged},
                           {"studies_expired", n.studies_expired},
                           {"studies_skipped", n.studies_skipped},
                           {"files_removed", n.files_removed},
                           {"files_not_removed", n.files_not_removed},
                           {"work_folders_removed", n.work_folders_removed},
                           {"work_folders_not_removed", n.work_folders_not_removed},
                           {"periods_days",
                            {{"spool", policy_.spool.count()},
                             {"crosswalk", policy_.crosswalk.count()},
                             {"audit", policy_.audit.count()}}}};
  if (!first.ok()) detail["error"] = first.ToString();
  AuditEvent event;
  event.at = now;
  event.action = "retention";
  event.outcome = first.ok() ? "success" : "failure";
  event.actor = kActor;
  event.detail = detail.dump();
  Keep(first, index_.AppendAudit(event).WithContext("retention: audit"));

  metrics_.Add("conduit_retention_sweeps_total", 1);
  if (!first.ok()) metrics_.Add("conduit_retention_sweep_failures_total", 1);
  metrics_.Add("conduit_retention_studies_expired_total", static_cast<double>(n.studies_expired));
  metrics_.Add("conduit_retention_files_removed_total", static_cast<double>(n.files_removed));
  metrics_.Add("conduit_retention_files_not_removed_total",
               static_cast<double>(n.files_not_removed));
  metrics_.Add("conduit_retention_work_folders_removed_total",
               static_cast<double>(n.work_folders_removed));
  metrics_.Add("conduit_retention_audit_purged_total", static_cast<double>(n.audit_purged));
  metrics_.Add("conduit_retention_crosswalk_purged_total", static_cast<double>(n.crosswalk_purged));
  metrics_.Add("conduit_retention_hl7_outbox_purged_total",
               static_cast<double>(n.hl7_outbox_purged));
  metrics_.Add("conduit_retention_ris_orders_purged_total",
               static_cast<double>(n.ris_orders_purged));
  metrics_.Add("conduit_retention_ris_reports_purged_total",
               static_cast<double>(n.ris_reports_purged));
  metrics_.Set("conduit_retention_last_sweep_timestamp_seconds",
               static_cast<double>(ToUnixMillis(now)) / 1000.0);

  const bool changed = n.audit_purged + n.crosswalk_purged + n.hl7_outbox_purged +
                           n.ris_orders_purged + n.ris_reports_purged + n.studies_expired >
                       0;
  if (changed || !first.ok()) {
    spdlog::info(
        "event=retention_sweep audit_purged={} crosswalk_purged={} hl7_outbox_purged={} "
        "ris_orders_purged={} ris_reports_purged={} studies_expired={} studies_skipped={} "
        "files_removed={} files_not_removed={} outcome={}",
        n.audit_purged, n.crosswalk_purged, n.hl7_outbox_purged, n.ris_orders_purged,
        n.ris_reports_purged, n.studies_expired, n.studies_skipped, n.files_removed,
        n.files_not_removed, event.outcome);
  }
  return first;
}

Status RetentionSweeper::Start() {
  if (thread_.joinable()) return FailedPrecondition("retention: already started");
  thread_ = std::jthread([this](std::stop_token stop) {
    pthread_setname_np(pthread_self(), "retention");
    std::mutex mu;
    std::condition_variable_any cv;
    while (!stop.stop_requested()) {
      Status st = Sweep(stop);
      if (!st.ok()) spdlog::error("event=retention_sweep_failed error=\"{}\"", st.ToString());
      std::unique_lock lock(mu);
      cv.wait_for(lock, stop, interval_, [] { return false; });
    }
  });
  return Status::Ok();
}

void RetentionSweeper::Stop() {
  if (!thread_.joinable()) return;
  thread_.request_stop();
  thread_.join();
}

}  // namespace conduit
