// IngestService: where every received object lands. Ordinary instances (DIMSE C-STORE or
// DICOMweb STOW-RS) are committed to the spool, recorded in the index with their audit event,
// and offered to the router and the assembler; objects sent back by a DIMSE tool's node, or
// stored by a tool to its job's DICOMweb results endpoint, are attached to that job as
// results. OnInstance and OnJobResult return OK only once the object is durable.
// Thread safety: called concurrently from association and HTTP threads.
#pragma once

#include <functional>

#include "core/clock.h"
#include "core/config.h"
#include "core/metrics.h"
#include "core/refusal_throttle.h"
#include "dicom/dimse_listener.h"
#include "http/dicomweb_context.h"
#include "pipeline/move_inbox.h"
#include "pipeline/router.h"
#include "pipeline/study_assembler.h"
#include "pipeline/transfer_guard.h"
#include "results/commitment_ledger.h"
#include "results/result_intake.h"
#include "store/index.h"
#include "store/spool.h"

namespace conduit {

class IngestService final : public IngestSink, public JobResultSink {
 public:
  IngestService(const Config& config, Spool& spool, Index& index, const Router& router,
                StudyAssembler& assembler, ResultIntake& intake, Metrics& metrics,
                const Clock& clock, std::function<void()> wake_jobs, TransferGuard* guard = nullptr,
                MoveInbox* move_inbox = nullptr, CommitmentLedger* commitments = nullptr);

  std::filesystem::path NewIncomingPath() override;
  Status CheckCapacity() override;
  Status OnInstance(const ReceivedInstance& instance) override;
  void OnRejected(const AssociationInfo& association, const Status& why) override;
  // Counted like OnRejected; logged and audited at most once a minute per peer, calling AE
  // title and reason, the entry saying how many went unreported before it.
  void OnAssociationRejected(const AssociationInfo& association, const Status& why) override;
  Status OnMpps(const MppsEvent& event) override;
  // Settles its storage commitment request (CommitmentLedger::OnReport), audited. A report
  // for no open request (given up on: those results are sent again anyway) is acknowledged
  // too, so that the PACS does not keep re-sending it; it is audited as "unexpected". An
  // index error, or no ledger to settle it in, is returned (the PACS is told 0110).
  Status OnCommitmentReport(const CommitmentReport& report,
                            const AssociationInfo& association) override;
  // A result stored for `job` over DICOMweb: the job must be sending or awaiting results.
  Status OnJobResult(JobId job, const ReceivedInstance& instance) override;
  Status OnUnreadableJobResult(JobId job, const std::filesystem::path& file,
                               const std::string& why) override;

 private:
  Status IngestStudyInstance(const ReceivedInstance& instance);
  Status IngestToolResult(const ToolConfig& tool, const ReceivedInstance& instance);
  // Re-identifies (for a de-identified tool) and attaches a result of `job`; owns the file.
  // The job if it takes results now; else kNotFound / kFailedPrecondition.
  Result<JobRecord> JobTakingResults(JobId job);
  Status AttachResult(const JobRecord& job, const ReceivedInstance& instance, InstanceMeta meta);
  const ToolConfig* ToolByAe(const AeTitle& ae) const;

  const Config& config_;
  Spool& spool_;
  Index& index_;
  const Router& router_;
  StudyAssembler& assembler_;
  ResultIntake& intake_;
  Metrics& metrics_;
  const Clock& clock_;
  std::function<void()> wake_jobs_;
  TransferGuard* guard_;           // maps results of de-identified tools back; may be null
  MoveInbox* move_inbox_;          // takes instances a prior retrieve by C-MOVE awaits; may be null
  CommitmentLedger* commitments_;  // storage commitment requests awaiting reports; may be null
  RefusalThrottle association_refusals_{std::chrono::minutes(1), 4096};
};

// What a sender is told when storing its object failed on our side (spool or index): out of
// resources stays kResourceExhausted (A700, retry later); any other error becomes kInternal
// (0110, processing failure), never kInvalidArgument (C000, "your object is bad") nor
// kPermissionDenied (0124, "you may not"), which would blame the sender for a fault of ours.
Status StorageErrorForSender(const Status& error);

// The attributes routes match on: the instance's text attributes plus "CallingAE".
AttributeMap RoutingAttributes(const InstanceMeta& meta, const AeTitle& calling_ae);

}  // namespace conduit
