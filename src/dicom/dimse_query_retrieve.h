// DIMSE query/retrieve SCU towards a PACS: C-FIND of a patient's studies, and C-GET or C-MOVE
// of a study (Study Root). C-GET brings the instances back on the same association as C-STORE
// sub-operations, which are streamed to files: nothing arrives on the listener, so nothing
// retrieved is routed as a new study. C-MOVE's instances do arrive on the listener, on
// associations the PACS opens (pipeline/move_inbox.h takes them aside). TCP_NODELAY is on. Every
// wait is bounded by `deadline` and ends within about a second of `stop`. Thread safety: each call
// opens its own association.
#pragma once

#include <chrono>
#include <filesystem>
#include <stop_token>
#include <string>
#include <vector>

#include "core/status.h"
#include "dicom/dimse_sender.h"
#include "dicom/study_match.h"

namespace conduit {

// C-FIND at STUDY level for studies whose PatientID is exactly `patient_id` (wildcards are
// refused, not sent), asking for StudyInstanceUID, StudyDate, ModalitiesInStudy,
// StudyDescription, BodyPartExamined, SOPClassesInStudy and NumberOfStudyRelatedInstances.
// Answers naming another patient, or no study, are dropped.
// Errors: kInvalidArgument for an empty or wildcard patient ID; kUnavailable if the PACS is
// unreachable, refuses the association or Study Root FIND, answers a failure status, or
// `stop` is requested; kDeadlineExceeded past `deadline`.
Result<std::vector<StudyMatch>> FindStudies(const DicomPeer& peer, const std::string& patient_id,
                                            std::chrono::steady_clock::time_point deadline,
                                            std::stop_token stop);

// C-GET of study `study` into `dir` (created), one file per instance received; returns them.
// Storage contexts (our role SCP) are proposed for `sop_classes` (the study's, from C-FIND)
// in their compressed and uncompressed syntaxes, or, if none are given, for the common
// storage SOP classes uncompressed. Instances of another study are refused.
// Errors: as FindStudies; kUnavailable also when the PACS reports failed sub-operations (the
// files received are left in `dir` for the caller to discard).
Result<std::vector<std::filesystem::path>> GetStudy(const DicomPeer& peer, const StudyUid& study,
                                                    const std::vector<std::string>& sop_classes,
                                                    const std::filesystem::path& dir,
                                                    std::chrono::steady_clock::time_point deadline,
                                                    std::stop_token stop);

// C-MOVE of study `study` to `destination` (Study Root): the PACS opens associations of its own
// to the AE title `destination` names in its configuration (ours) and sends the instances as
// C-STORE sub-operations, which our listener receives. Returns, once the PACS's final
// response has come, the number of instances it says it sent. Errors: as FindStudies;
// kUnavailable also when the PACS refuses the move (e.g. A801, destination unknown) or reports
// failed sub-operations.
Result<int> MoveStudy(const DicomPeer& peer, const StudyUid& study, const AeTitle& destination,
                      std::chrono::steady_clock::time_point deadline, std::stop_token stop);

}  // namespace conduit
