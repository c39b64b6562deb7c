// The spool's consistency check (`conduit spool check`): every file under instances/ against
// the index rows that name spool files, bucket by bucket in key order, so memory is bounded by
// one bucket's listing whatever the store holds. It finds files no row names (a power failure
// between a file's fsync and its index commit can leave one, with patient data that retention
// would then never delete), rows whose file is gone, files whose size is not the recorded one,
// and work folders of ended jobs whose study retention took. Run it with the gateway stopped:
// the caller holds the spool, so nothing writes meanwhile.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/status.h"
#include "store/index.h"
#include "store/spool.h"

namespace conduit {

struct SpoolProblem {
  enum class Kind {
    kUnrecorded,       // a file no row names (removed when asked)
    kMissing,          // a row whose file is not there
    kSizeDiffers,      // a file whose size is none of its rows'
    kStray,            // an entry of a bucket that is not named as the spool names files
    kStaleWorkFolder,  // the work folder of an ended job whose study is gone (removed when
                       // asked): retention stopped between the study's rows and its folders
  };
  Kind kind = Kind::kUnrecorded;
  std::string key;        // the spool key; empty for a stray
  std::string study_ref;  // the row's study (StudyRef, never the UID); empty for files alone
  uint64_t recorded_bytes = 0;
  uint64_t file_bytes = 0;
  std::filesystem::path path;
  bool removed = false;
};

const char* SpoolProblemName(SpoolProblem::Kind kind);

struct SpoolCheckReport {
  int64_t files = 0;    // instance files found
  int64_t records = 0;  // index rows naming a spool file
  int64_t unrecorded = 0;
  uint64_t unrecorded_bytes = 0;
  int64_t removed = 0;  // unrecorded files removed
  int64_t missing = 0;
  int64_t size_differs = 0;
  int64_t strays = 0;
  int64_t stale_work_folders = 0;
  int64_t work_folders_removed = 0;
  std::vector<SpoolProblem> problems;  // the first `max_listed`: files in key order, then folders

  // Nothing left to act on: every file recorded (or removed), every row's file there whole.
  bool consistent() const {
    return unrecorded == removed && missing == 0 && size_differs == 0 && strays == 0 &&
           stale_work_folders == work_folders_removed;
  }
};

struct SpoolCheckOptions {
  // Remove files no row names (each bucket fsync'd after) and stale work folders.
  bool remove_unrecorded = false;
  size_t max_listed = 100;
};

// Errors: the index's or the file system's; the report is then incomplete and not returned
// (files removed before the error stay removed).
Result<SpoolCheckReport> CheckSpool(Spool& spool, Index& index, const SpoolCheckOptions& options);

}  // namespace conduit
