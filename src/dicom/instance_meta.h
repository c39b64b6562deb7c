// InstanceMeta: what Conduit needs to know about a DICOM instance, in Conduit's own types.
// Read from a file without loading pixel data, so memory stays bounded for any size.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

#include "core/ids.h"
#include "core/status.h"

namespace conduit {

struct InstanceMeta {
  StudyUid study_uid;
  SeriesUid series_uid;
  SopInstanceUid sop_instance_uid;
  SopClassUid sop_class_uid;
  std::string transfer_syntax_uid;
  // Patient identifiers: stored in the index, never logged.
  std::string patient_id;
  std::string patient_name;
  std::string accession_number;
  std::string study_date;
  std::string modality;
  std::string body_part;
  std::string study_description;
  std::string series_description;
  int series_number = 0;
  int instance_number = 0;
  // Every top-level element with a text value (at most 1 KiB), by DICOM keyword
  // (e.g. "Modality" -> "CT", "SOPClassUID" -> "1.2..."): what routes match on. Binary
  // numbers (US, SS, UL, SL, FL, FD) are included as decimal text ("Rows" -> "512").
  std::map<std::string, std::string> attributes;
};

// Reads a DICOM Part 10 file without loading pixel data (no value over 4 KiB is loaded; a
// deflated dataset is first inflated to a temporary file, at most 1 GiB).
// Errors: kNotFound if missing; kInvalidArgument if not DICOM, truncated anywhere (pixel data
// included), inflating to over 1 GiB, or missing (or over 1 KiB) Study/Series/SOP Instance UID
// or SOP Class UID.
Result<InstanceMeta> ReadInstanceMeta(const std::filesystem::path& file);

// Reads every regular file under `path` (a file or a directory, recursively).
// Files that are not DICOM are reported in `errors` as "<path>: <reason>".
struct MetaScan {
  std::vector<std::pair<std::filesystem::path, InstanceMeta>> instances;
  std::vector<std::string> errors;
};
MetaScan ScanInstanceMetas(const std::filesystem::path& path);

}  // namespace conduit
