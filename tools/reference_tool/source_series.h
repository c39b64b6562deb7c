// Finding the series the reference tool analyses: every DICOM file under a directory is read
// up to (not including) its pixel data, CT and MR images are grouped by series, and the largest
// series whose slices share one geometry (size, spacing, orientation, frame of reference,
// evenly spaced parallel planes) is chosen.
#pragma once

#include <array>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"

class DcmFileFormat;

namespace conduit::tools {

struct SourceSlice {
  std::filesystem::path path;
  std::string sop_class_uid;
  std::string sop_instance_uid;
  std::array<double, 3> position{};  // Image Position (Patient), mm
  double along_normal_mm = 0;        // position projected on the slice normal
};

struct SourceSeries {
  std::string modality;  // "CT" or "MR"
  std::string study_uid;
  std::string series_uid;
  std::string frame_of_reference_uid;
  int rows = 0;
  int cols = 0;
  std::array<double, 6> orientation{};    // Image Orientation (Patient): row then column cosines
  std::array<double, 2> pixel_spacing{};  // mm between rows, mm between columns
  double slice_spacing_mm = 0;            // between adjacent slice centres
  double slice_thickness_mm = 0;
  std::vector<SourceSlice> slices;  // ordered along the normal (ascending)
  // Header (no pixel data) of the first slice: the patient and study modules to copy.
  std::shared_ptr<DcmFileFormat> header;
};

struct ScanReport {
  int files_seen = 0;
  int dicom_files = 0;
  int image_series = 0;       // CT/MR series found
  int consistent_series = 0;  // of which usable
};

// Reads every regular file under `dir` (recursively) and returns the chosen series.
// Errors: kNotFound when `dir` is not a directory or holds no CT or MR series with consistent
// geometry (the message says why the candidates were rejected). Unreadable and non-DICOM
// files are skipped.
Result<SourceSeries> FindLargestConsistentSeries(const std::filesystem::path& dir,
                                                 ScanReport* report);

}  // namespace conduit::tools
