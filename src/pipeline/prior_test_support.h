// Test support for priors: CT studies of a given patient written as Part 10 files, and
// stored in a spool and index as ingest stores received instances. Test-only.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "core/clock.h"
#include "store/index.h"
#include "store/spool.h"

namespace conduit::testing {

struct PatientStudySpec {
  std::string patient_id = "PRIORS-0001";
  std::string study_uid;
  std::string study_date;  // YYYYMMDD
  std::string modality = "CT";
  std::string body_part = "CHEST";
  std::string study_description = "CT CHEST";
};

// Writes `instances` small CT images of one series of the study into `dir`; aborts the test
// on failure. Returns the files in instance order.
std::vector<std::filesystem::path> WritePatientStudy(const std::filesystem::path& dir,
                                                     const PatientStudySpec& spec, int instances);

// Commits copies of `files` to the spool and records them in the index (audit "receive").
Status StoreReceived(Index& index, Spool& spool, const std::vector<std::filesystem::path>& files,
                     TimePoint at);

}  // namespace conduit::testing
