// DicomwebContext: what the DICOMweb front end (/dicom-web on the HTTP port) works with.
// STOW-RS hands every stored instance to `ingest` (durable before the response), results a
// tool stores for a job to `job_results`; WADO-RS and QIDO-RS read the index and the spool.
// Every member outlives the HTTP server.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "core/clock.h"
#include "core/config.h"
#include "core/job_token.h"
#include "core/metrics.h"
#include "core/status.h"
#include "dicom/dimse_listener.h"
#include "http/auth_refusals.h"
#include "http/read_audit.h"
#include "http/worklist_tokens.h"
#include "store/index.h"
#include "store/spool.h"

namespace conduit {

// Where results a tool stores over HTTP for one job go (implemented by IngestService).
class JobResultSink {
 public:
  virtual ~JobResultSink() = default;
  // Takes ownership of `instance.file` (moves or removes it). OK once the result is durable
  // and attached to `job`. Errors: kNotFound if the job does not exist; kFailedPrecondition if
  // it no longer takes results; kInvalidArgument when the result was quarantined (the message
  // says why); storage errors otherwise.
  virtual Status OnJobResult(JobId job, const ReceivedInstance& instance) = 0;
  // A part stored for `job` that is not readable DICOM: kept in the job's quarantine with
  // `why`, audited and counted against the tool. Takes ownership of `file`. Returns
  // kInvalidArgument (quarantined) or the errors of OnJobResult.
  virtual Status OnUnreadableJobResult(JobId job, const std::filesystem::path& file,
                                       const std::string& why) = 0;
};

struct DicomwebContext {
  const Config& config;
  Index& index;
  Spool& spool;
  IngestSink& ingest;
  JobResultSink& job_results;
  const JobTokens& tokens;
  Metrics& metrics;
  const Clock& clock;
  // The tokens of worklist tools' performers: each also opens the per-job endpoints of its
  // own tool's jobs (inputs by WADO-RS, results by STOW-RS). Null: only job tokens do.
  const WorklistTokens* worklist_tokens = nullptr;
  // Reports requests refused for their bearer token (counted, logged and audited with a
  // throttle); share one among the contexts of a port.
  std::shared_ptr<AuthRefusals> auth_refusals = std::make_shared<AuthRefusals>();
  // Audits what is read (WADO-RS, QIDO-RS), throttled per client, study and resource.
  std::shared_ptr<ReadAudit> read_audit = std::make_shared<ReadAudit>();
};

}  // namespace conduit
