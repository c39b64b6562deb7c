#include "results/commitment_ledger.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

namespace conduit {

CommitmentLedger::CommitmentLedger(Index& index, const Clock& clock, std::function<void()> wake,
                                   Metrics* metrics)
    : index_(index),
      clock_(clock),
      wake_(std::move(wake)),
      metrics_(metrics),
      started_at_(clock.Now()) {
  if (metrics_ != nullptr) {
    metrics_->Describe("conduit_storage_commitment_requests_total", "counter",
                       "Storage commitment requests to PACS destinations, by outcome: "
                       "committed, partial (some not committed), no_report, refused");
    metrics_->Describe("conduit_storage_commitment_seconds", "histogram",
                       "From a storage commitment request to the PACS's report");
  }
}

void CommitmentLedger::CountRequest(const std::string& destination, const char* outcome) {
  if (metrics_ == nullptr) return;
  metrics_->Add("conduit_storage_commitment_requests_total", 1,
                "destination=\"" + destination + "\",outcome=\"" + outcome + "\"");
}

Status CommitmentLedger::Open(const JobRecord& job, const std::string& destination,
                              const std::string& transaction,
                              const std::vector<const ResultRecord*>& results, TimePoint deadline) {
  const TimePoint now = clock_.Now();
  std::vector<CommitmentRecord> rows;
  for (const ResultRecord* result : results) {
    CommitmentRecord row;
    row.transaction_uid = transaction;
    row.job_id = job.id;
    row.destination = destination;
    row.sop_instance_uid = result->sop_instance_uid;
    row.sop_class_uid = result->sop_class_uid;
    row.requested_at = now;
    row.deadline = deadline;
    rows.push_back(std::move(row));
  }
  AuditEvent audit;
  audit.at = now;
  audit.action = "commit_request";
  audit.outcome = "success";
  audit.actor = destination;
  audit.study_ref = StudyRef(job.study_uid);
  audit.job_id = job.id;
  audit.detail =
      nlohmann::json{{"destination", destination},
                     {"requested", rows.size()},
                     {"report_due_in_s",
                      std::chrono::duration_cast<std::chrono::seconds>(deadline - now).count()}}
          .dump();
  return index_.OpenCommitment(rows, audit);
}

Status CommitmentLedger::MarkAsked(const std::string& transaction) {
  return index_.MarkCommitmentAsked(transaction);
}

bool CommitmentLedger::WasInterrupted(const CommitmentRecord& row) const {
  return !row.asked && row.requested_at < started_at_;
}

Result<bool> CommitmentLedger::OnReport(const CommitmentReport& report) {
  const TimePoint now = clock_.Now();
  ASSIGN_OR_RETURN(std::vector<CommitmentRecord> rows,
                   index_.CommitmentRows(report.transaction_uid));
  std::vector<const CommitmentRecord*> open;
  for (const CommitmentRecord& row : rows) {
    if (!row.reported) open.push_back(&row);
  }

  AuditEvent audit;
  audit.at = now;
  audit.action = "commitment_report";
  audit.actor = report.reported_by.str();
  nlohmann::json detail = {{"committed", report.committed.size()},
                           {"failed", report.failed.size()},
                           {"awaited", !open.empty()}};
  if (open.empty()) {
    audit.outcome = "unexpected";
    audit.detail = detail.dump();
    RETURN_IF_ERROR(index_.AppendAudit(audit));
    spdlog::warn("event=commitment_report_unexpected from={} committed={} failed={}",
                 report.reported_by.str(), report.committed.size(), report.failed.size());
    return false;
  }

  const JobId job_id = open.front()->job_id;
  ASSIGN_OR_RETURN(std::optional<JobRecord> job, index_.GetJob(job_id));
  const std::string study_ref = job ? StudyRef(job->study_uid) : "";
  std::set<std::string> committed;
  for (const CommitmentReference& ref : report.committed) committed.insert(ref.sop_instance.str());
  std::map<std::string, uint16_t> failed;
  for (const CommitmentReference& ref : report.failed) {
    failed[ref.sop_instance.str()] = ref.failure_reason;
  }

  std::vector<CommitmentOutcome> outcomes;
  size_t committed_count = 0;
  for (const CommitmentRecord* row : open) {
    CommitmentOutcome outcome;
    outcome.sop_instance_uid = row->sop_instance_uid;
    // A result both committed and failed in one report is not taken as committed.
    const std::string sop = row->sop_instance_uid.str();
    outcome.committed = committed.count(sop) > 0 && failed.count(sop) == 0;
    if (outcome.committed) {
      ++committed_count;
      outcome.audit.at = now;
      outcome.audit.action = "commit";
      outcome.audit.outcome = "success";
      outcome.audit.actor = row->destination;
      outcome.audit.study_ref = study_ref;
      outcome.audit.job_id = job_id;
      outcome.audit.detail = nlohmann::json{
          {"destination", row->destination},
          {"sop_class", row->sop_class_uid.str()},
          {"committed", true}}.dump();
    } else if (auto it = failed.find(sop); it != failed.end()) {
      outcome.failure_reason = it->second;
    }
    outcomes.push_back(std::move(outcome));
  }
  audit.outcome = "success";
  audit.study_ref = study_ref;
  audit.job_id = job_id;
  detail["destination"] = open.front()->destination;
  detail["results_committed"] = committed_count;
  detail["results_not_committed"] = open.size() - committed_count;
  audit.detail = detail.dump();
  RETURN_IF_ERROR(index_.SettleCommitment(report.transaction_uid, outcomes, audit));

  const std::string& destination = open.front()->destination;
  CountRequest(destination, committed_count == open.size() ? "committed" : "partial");
  if (metrics_ != nullptr) {
    metrics_->Observe("conduit_storage_commitment_seconds",
                      std::chrono::duration<double>(now - open.front()->requested_at).count(),
                      "destination=\"" + destination + "\"");
  }
  spdlog::info("job {}: {} reported {} of {} result(s) committed", job_id.value,
               report.reported_by.str(), committed_count, open.size());
  // The job steps again now: to finish, or to send again what was not committed.
  Status due = index_.DeferJob(job_id, now);
  if (!due.ok() && due.code() != StatusCode::kNotFound) return due;
  if (wake_) wake_();
  return true;
}

}  // namespace conduit
