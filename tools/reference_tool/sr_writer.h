// Writes the TID 1500 Measurement Report (Enhanced SR): the procedure reported, one volumetric
// ROI measurement group per SEG segment (lung first) with its volume in ml, and a qualitative
// "finding present/absent" on the lung group. Every text says NON-CLINICAL.
#pragma once

#include <filesystem>

#include "core/status.h"
#include "reference_tool/result_common.h"
#include "reference_tool/source_series.h"

namespace conduit::tools {

struct Measurements {
  double body_ml = 0;
  double lung_ml = 0;
};

// Errors: kInternal when DCMTK refuses the report's content or the file cannot be written.
Status WriteMeasurementReport(const SourceSeries& source, const ResultUids& uids,
                              const Measurements& measurements, const std::filesystem::path& path);

}  // namespace conduit::tools
