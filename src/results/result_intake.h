// ResultIntake: accepts an object a tool returned for a job — from an executable's output
// folder or stored back to our listener by a DIMSE tool — checks that it belongs to the job
// (same study, a result SOP Instance UID that is not one of the inputs) and that it is a valid
// IHE AI Results object whose references resolve to the job's inputs (ResultValidator),
// commits it to the spool, attaches it to the job in the index and records its findings.
// Objects that fail the checks are moved to quarantine/ under the spool root with the
// reason, audited, counted (conduit_tool_results_invalid_total{tool}) and never delivered;
// so are the job's results that refer to them (WithholdDependents, before delivery).
// Thread safety: all methods may be called concurrently.
#pragma once

#include <filesystem>
#include <string>

#include "core/clock.h"
#include "core/metrics.h"
#include "dicom/instance_meta.h"
#include "results/result_validator.h"
#include "store/index.h"
#include "store/spool.h"

namespace conduit {

class ResultIntake {
 public:
  ResultIntake(Index& index, Spool& spool, const Clock& clock, Metrics& metrics);
  // Takes ownership of `file`. Validates it against the job's inputs (the instances of
  // job.study_uid in job.series, original UIDs); once recorded, its findings replace any the
  // same result had. Errors: kInvalidArgument when quarantined (the message says why);
  // storage errors as Spool::Commit and Index report them.
  Status Attach(const JobRecord& job, const std::filesystem::path& file, const InstanceMeta& meta,
                const std::string& actor);

  // Quarantines an object a tool sent when no job of that tool awaits results for its study
  // (under quarantine/unmatched-<tool>/). Returns kInvalidArgument with the reason, or the
  // storage error if the file could not be kept.
  Status QuarantineUnmatched(const std::string& tool, const std::filesystem::path& file,
                             const InstanceMeta& meta, const std::string& why);

  // Quarantines a result of `job` that failed a check made elsewhere (re-identification, not
  // readable DICOM), under quarantine/<job>/, and counts it against the tool. Returns
  // kInvalidArgument with the reason, or the storage error.
  Status Quarantine(const JobRecord& job, const std::filesystem::path& file, const std::string& why,
                    const std::string& actor);

  // Withholds from delivery, by quarantining them, the job's attached results not yet
  // delivered to every destination that refer (Referenced SOP Instance UID at any depth) to a
  // quarantined result of the job, or to one withheld here (transitively). When a quarantined
  // object could not be read far enough to name itself, a reference to a result kind that is
  // neither an input nor attached is taken to be to it. Withheld results are audited and
  // counted like other quarantines; call before delivering. Returns how many were withheld.
  // Errors: storage errors; kDataLoss if an attached result cannot be read from the spool.
  Result<int> WithholdDependents(const JobRecord& job, const std::string& actor);

 private:
  // Counts a quarantined result of `job` against its tool, then QuarantineInto.
  Status QuarantineResult(const JobRecord& job, const SopInstanceUid& sop,
                          const std::filesystem::path& file, const std::string& why,
                          const std::string& actor);
  // Moves `file` into quarantine/<folder>/ with a reason file and audits it; for a job, also
  // records `sop` (empty: not known) as one of its quarantined results.
  Status QuarantineInto(const std::string& folder, JobId job, const StudyUid& study,
                        const SopInstanceUid& sop, const std::filesystem::path& file,
                        const std::string& why, const std::string& actor);
  // Puts `file` (moved, or copied when `keep_source`) into quarantine/<folder>/ as `name`, or
  // a variant of it no file has yet, beside its reason file. Returns the path it took.
  Result<std::filesystem::path> KeepInQuarantine(const std::string& folder, JobId job,
                                                 const std::filesystem::path& file,
                                                 const std::filesystem::path& name,
                                                 const std::string& why, const std::string& actor,
                                                 bool keep_source);
  // Quarantines the attached result `result` of `job`: kept under quarantine/<job>/, detached
  // from the job in the index with its audit event, its spool file removed, counted.
  Status Withhold(const JobRecord& job, const ResultRecord& result, const std::string& why,
                  const std::string& actor);
  // The job's inputs and results, as the validator checks references against them.
  Result<ResultContext> ContextOf(const JobRecord& job);

  Index& index_;
  Spool& spool_;
  const Clock& clock_;
  Metrics& metrics_;
  ResultValidator validator_;
};

// A short, stable, non-reversible reference for a result in logs, reasons and audit: the first
// 16 hex digits of SHA-256 of its SOP Instance UID.
std::string ResultRef(const std::string& sop_instance_uid);

}  // namespace conduit
