// TransferGuard: the policy's checkpoint on the way to and from AI tools. For a tool whose
// transfers are de-identified (ToolConfig::Deidentified: every remote tool, and local ones
// that ask), it de-identifies a job's inputs into the job's folder, makes the crosswalk
// durable before anything can leave, and audits the transfer (policy hash, key id, counts of
// each action, refusals); and it maps the tool's results back onto the original study.
// Thread safety: all methods may be called concurrently.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/metrics.h"
#include "deid/deidentifier.h"
#include "deid/reidentifier.h"
#include "store/index.h"
#include "store/spool.h"

namespace conduit {

class TransferGuard {
 public:
  // `settings`: one entry per tool whose transfers are de-identified.
  TransferGuard(Index& index, Spool& spool, const Clock& clock, Metrics& metrics,
                Pseudonymiser pseudonymiser, std::map<std::string, DeidSettings> settings);

  bool Deidentifies(const std::string& tool) const { return deidentifiers_.count(tool) > 0; }

  // De-identifies `inputs` (spool paths, in order) into `dir` (created; emptied first) and
  // returns the files the tool may receive. Refused instances are left out, audited and
  // counted. Errors: kFailedPrecondition if the policy refused every input (not retryable);
  // kDataLoss for an input that is not readable; storage errors.
  Result<std::vector<std::filesystem::path>> Prepare(
      const JobRecord& job, const std::vector<std::filesystem::path>& inputs,
      const std::filesystem::path& dir);

  // The original study of a result from a de-identified tool; nullopt if its study is not
  // one this trust sent.
  Result<std::optional<StudyUid>> OriginalStudyOf(const std::filesystem::path& result);

  // Re-identifies a result of `job` in place. Errors: kInvalidArgument when the result does
  // not belong to the job's study or references what was never sent (to be quarantined).
  Status Reidentify(const JobRecord& job, const std::filesystem::path& result);

 private:
  Index& index_;
  Spool& spool_;
  const Clock& clock_;
  Metrics& metrics_;
  std::string key_id_;
  std::map<std::string, Deidentifier> deidentifiers_;
  Reidentifier reidentifier_;
};

}  // namespace conduit
