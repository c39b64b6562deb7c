// RisReporter: tells the RIS over HL7 v2 about a job whose results reached PACS. It queues in
// the index's outbox (sent later by RisOutbox):
//  - when the rule (RisConfig::urgent_when) finds the job urgent, a priority update to stat
//    (OMI^O23 or ORM^O01, as configured), queued first so the worklist changes soonest;
//  - an ORU^R01 with the job's findings (Index::ListFindings) as preliminary results.
// Both name the ORIGINAL patient, accession and study (the study's instances in the index):
// the RIS is inside the trust. Control ids derive from the job ("J<id>P", "J<id>R"), so a
// job reported again queues nothing new. A job that cannot be reported (its study expired,
// no patient ID or accession number) is logged and audited, never failed for it.
// Thread safety: OnDelivered may be called concurrently.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/config.h"
#include "hl7/patient_key.h"
#include "hl7/ris_messages.h"
#include "results/result_reporter.h"
#include "store/index.h"

namespace conduit {

// Whether `findings` make the study urgent under `rule` (see RisUrgencyRule).
bool IsUrgent(const RisUrgencyRule& rule, const std::vector<FindingRecord>& findings);

// The OBX lines for a job's findings: coded findings, triage and flags as CWE, measurements
// and scores as NM; a single TX line saying there were none when nothing was coded.
std::vector<AiObservation> ObservationsOf(const std::vector<FindingRecord>& findings,
                                          const RisUrgencyRule& rule);

class RisReporter final : public ResultReporter {
 public:
  // `config.sends()` should hold; `on_queued` is called after a message was queued (e.g. to
  // wake the outbox's sender).
  RisReporter(RisConfig config, Index& index, const Clock& clock, const PatientKeyer& keyer,
              std::function<void()> on_queued);

  // Errors: index errors only (the engine retries the delivering step).
  Status OnDelivered(const JobRecord& job) override;

  static std::string ResultControlId(JobId job) { return "J" + std::to_string(job.value) + "R"; }
  static std::string PriorityControlId(JobId job) { return "J" + std::to_string(job.value) + "P"; }

 private:
  void AuditSkipped(const JobRecord& job, const std::string& why);

  const RisConfig config_;
  Index& index_;
  const Clock& clock_;
  const PatientKeyer& keyer_;
  std::function<void()> on_queued_;
};

}  // namespace conduit
