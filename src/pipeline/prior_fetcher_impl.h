// The gateway's PriorFetcher: priors are found on and fetched from the PACS named by the
// config's priors_source (C-FIND + C-GET or C-MOVE, or QIDO-RS + WADO-RS), then stored in the spool
// and the index like received instances (audit "prior_fetched") but never offered to the router: a
// prior is input to a job, not a new study. A prior already in the index is reused.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/config.h"
#include "core/metrics.h"
#include "dicom/study_match.h"
#include "pipeline/move_inbox.h"
#include "pipeline/prior_fetcher.h"
#include "store/index.h"
#include "store/spool.h"

namespace conduit {

// The calling AE recorded for instances fetched as priors: longer than any AE title, so no
// sender can have it. Recovery (app/recovery.cc) never routes instances that carry it.
inline constexpr std::string_view kPriorFetchedCaller = "conduit-prior-fetch";

// The current study as the index knows it: what priors are compared with.
struct CurrentStudy {
  StudyUid study_uid;
  std::string patient_id;
  std::string study_date;               // YYYYMMDD
  std::vector<std::string> modalities;  // of its instances, distinct
  std::vector<std::string> body_parts;  // of its instances, distinct, non-empty
};

// The studies among `candidates` that may be priors of `current`, most recent first (ties by
// UID): not the current study, the same patient, dated and not after it, within max_age, and
// comparable as `priors` says. A candidate whose modalities or body part the PACS did not give
// passes here; Comparable() checks its instances once fetched.
std::vector<StudyMatch> RankPriors(const CurrentStudy& current,
                                   const std::vector<StudyMatch>& candidates,
                                   const PriorsConfig& priors);

// Whether instances of a prior with these modalities and body parts (from its instances) are
// comparable to `current` as `priors` says.
bool Comparable(const CurrentStudy& current, const std::vector<std::string>& modalities,
                const std::vector<std::string>& body_parts, const PriorsConfig& priors);

// Where priors are found and fetched from. Implementations hold no state between calls.
// Thread safety: all methods may be called concurrently.
class PriorSource {
 public:
  virtual ~PriorSource() = default;
  // "DIMSE PACS@host:104" or "DICOMweb http://...": for messages (no identifiers).
  virtual std::string Name() const = 0;
  // The studies of `patient_id` the PACS holds. Errors: the protocol's (unavailable,
  // deadline exceeded, invalid argument for a patient ID that cannot be queried exactly).
  virtual Result<std::vector<StudyMatch>> Find(const std::string& patient_id,
                                               std::chrono::steady_clock::time_point deadline,
                                               std::stop_token stop) = 0;
  // Fetches every instance of `study` into `dir`; returns the files.
  virtual Result<std::vector<std::filesystem::path>> Fetch(
      const StudyMatch& study, const std::filesystem::path& dir,
      std::chrono::steady_clock::time_point deadline, std::stop_token stop) = 0;
};

// The source config.priors_source names (calling from config.dicom.ae_title over DIMSE);
// null when there is none. With priors_source.retrieve: move, studies are fetched by C-MOVE
// to dicom.ae_title and taken aside by `move_inbox`, which the ingest path must consult.
std::unique_ptr<PriorSource> MakePriorSource(const Config& config, MoveInbox* move_inbox);

// Thread safety: Gather may be called concurrently (the job pool).
class PriorFetcherImpl final : public PriorFetcher {
 public:
  PriorFetcherImpl(std::unique_ptr<PriorSource> source, Index& index, Spool& spool,
                   const Clock& clock, Metrics& metrics);

  Result<std::vector<std::filesystem::path>> Gather(const JobRecord& job, const ToolConfig& tool,
                                                    std::stop_token stop) override;

 private:
  // The spool files of `prior` if the index already holds all of it and it is comparable;
  // empty if it must be fetched.
  Result<std::vector<std::filesystem::path>> Reuse(const CurrentStudy& current,
                                                   const StudyMatch& prior,
                                                   const PriorsConfig& priors);
  // Fetches `prior` and makes it durable; errors say why it is missing.
  // `comparable` is false (and nothing stored) when its instances show it is not comparable.
  Result<std::vector<std::filesystem::path>> FetchAndStore(
      const JobRecord& job, const CurrentStudy& current, const StudyMatch& prior,
      const PriorsConfig& priors, std::chrono::steady_clock::time_point deadline,
      std::stop_token stop, bool& comparable);
  void ReportMissing(const JobRecord& job, const ToolConfig& tool, const StudyUid* prior,
                     const Status& why);

  std::unique_ptr<PriorSource> source_;
  Index& index_;
  Spool& spool_;
  const Clock& clock_;
  Metrics& metrics_;
};

}  // namespace conduit
