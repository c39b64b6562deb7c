// ResultIntake: accepts an object a tool returned for a job — from an executable's output
// folder or stored back to our listener by a DIMSE tool — checks that it belongs to the job
// (same study, a result SOP Instance UID that is not one of the inputs) and that it is a valid
// IHE AI Results object whose references resolve to the job's inputs (ResultValidator),
// commits it to the spool, attaches it to the job in the index and records its findings.
// Objects that fail the checks are moved to quarantine/ under the spool root with the
// reason, audited, counted (conduit_tool_results_invalid_total{tool}) and never delivered.
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

 private:
  // Moves `file` into quarantine/<folder>/ with a reason file and audits it.
  Status QuarantineInto(const std::string& folder, JobId job, const StudyUid& study,
                        const std::filesystem::path& file, const std::string& why,
                        const std::string& actor);
  // The job's inputs and results, as the validator checks references against them.
  Result<ResultContext> ContextOf(const JobRecord& job);

  Index& index_;
  Spool& spool_;
  const Clock& clock_;
  Metrics& metrics_;
  ResultValidator validator_;
};

}  // namespace conduit
