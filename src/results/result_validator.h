// ResultValidator: decides whether an object an AI tool returned is a well-formed IHE AI
// Results (AIR) object for its job — one of the AIR result kinds, in the job's study, in a
// series of its own, its references resolving to the job's input instances — and extracts
// what it reports (findings, measurements, scores, flags) for the evidence layer.
// Pure: reads the file, touches no storage. Memory stays bounded: no value over 4 KiB is
// loaded, so pixel data stays on disk.
// Thread safety: const; Validate may run on many threads at once.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/ids.h"
#include "core/status.h"
#include "store/records.h"

namespace conduit {

// One input instance of the job, as a result's references must name it.
struct ResultInput {
  SopClassUid sop_class_uid;
  SeriesUid series_uid;
};

// What a result is checked against: the job's study, its input instances (original UIDs,
// after re-identification) and the results already attached to the job.
struct ResultContext {
  StudyUid study_uid;
  std::map<SopInstanceUid, ResultInput> inputs;
  std::map<SopInstanceUid, SopClassUid> job_results;
};

struct ValidatedResult {
  std::string kind;  // "sr", "seg", "gsps", "kos", "sc", "parametric_map"
  // What the object reports, with result_sop_uid and referenced_sop_uid filled; job_id, tool
  // and recorded_at are the caller's to fill.
  std::vector<FindingRecord> findings;
  // Accepted departures from good practice (e.g. a secondary capture naming no source
  // image); never patient identifiers.
  std::vector<std::string> warnings;
};

class ResultValidator {
 public:
  // Validates the DICOM file `file` against `context`. Errors: kInvalidArgument with the
  // reason (names attributes, never their values, except SOP Class UIDs) when the object is
  // not an acceptable result; kNotFound if the file is missing; kInternal on library failure.
  Result<ValidatedResult> Validate(const std::filesystem::path& file,
                                   const ResultContext& context) const;
};

// The AIR result kind of a SOP Class ("sr", "seg", ...), or "" if it is not one.
std::string ResultKindOf(const SopClassUid& sop_class);

// One reference an object makes: a Referenced SOP Instance UID (0008,1155) and the Referenced
// SOP Class UID beside it in the same item (empty if absent).
struct ObjectReference {
  SopClassUid sop_class_uid;
  SopInstanceUid sop_instance_uid;
};

// Every reference the DICOM file `file` makes, at any depth of its dataset, in dataset order.
// Errors: kNotFound if the file is missing; kInvalidArgument if it is not parsable DICOM.
Result<std::vector<ObjectReference>> ReferencesOf(const std::filesystem::path& file);

// The SOP Instance UID `file` names, read as far as the file can be read (a truncated object
// whose start survived still names itself); empty if it names none.
SopInstanceUid SopInstanceUidOf(const std::filesystem::path& file);

}  // namespace conduit
