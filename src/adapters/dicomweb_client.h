// DICOMweb query/retrieve towards a PACS (for priors): QIDO-RS search of a patient's studies
// and WADO-RS retrieval of a whole study, streamed into files (never a study in memory).
// Every call is bounded by `deadline` and ends promptly once `stop` is requested.
// Thread safety: each call uses its own connection.
#pragma once

#include <chrono>
#include <filesystem>
#include <stop_token>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/status.h"
#include "dicom/study_match.h"

namespace conduit {

struct DicomwebPeer {
  std::string url;                            // base URL, e.g. http://pacs:8042/dicom-web
  std::filesystem::path auth_token_file;      // bearer token; empty: none
  TlsClientConfig tls;                        // for an https url
  std::chrono::milliseconds timeout{30'000};  // longest wait for any one answer
};

// GET <url>/studies?PatientID=<id>&includefield=... (Accept: application/dicom+json): the
// studies whose PatientID is exactly `patient_id` (answers naming another are dropped).
// Errors: kInvalidArgument for an empty or wildcard patient ID, or an answer that is not a
// DICOM JSON array; kFailedPrecondition for a refused or unreadable token; kUnavailable for
// an unreachable PACS, 429, 5xx or `stop`; kDeadlineExceeded past `deadline`.
Result<std::vector<StudyMatch>> SearchStudies(const DicomwebPeer& peer,
                                              const std::string& patient_id,
                                              std::chrono::steady_clock::time_point deadline,
                                              std::stop_token stop);

// GET <url>/studies/<study> (multipart/related; type="application/dicom") into files under
// `dir` (created), one per part. Errors: as SearchStudies; kNotFound for 404; on any error
// nothing is left in `dir` by this call.
Result<std::vector<std::filesystem::path>> RetrieveStudy(
    const DicomwebPeer& peer, const StudyUid& study, const std::filesystem::path& dir,
    std::chrono::steady_clock::time_point deadline, std::stop_token stop);

}  // namespace conduit
