// The reference AI tool's run: find the largest consistent CT or MR series under the input
// directory, segment body and lungs slice by slice, and write a SEG, a TID 1500 SR and a
// Secondary Capture into the output directory, all in the input's study. NON-CLINICAL.
// Memory: one slice of pixels at a time plus the SEG's bit-packed frames.
#pragma once

#include <filesystem>
#include <string>

#include "core/status.h"

namespace conduit::tools {

struct ReferenceRunSummary {
  std::string modality;
  size_t slices = 0;
  double body_ml = 0;
  double lung_ml = 0;
  std::filesystem::path seg_file, sr_file, sc_file;
};

// Errors: kNotFound when the input holds no suitable series ("no suitable input"); other codes
// for failures reading the chosen series or writing the results.
Result<ReferenceRunSummary> RunReferenceTool(const std::filesystem::path& input_dir,
                                             const std::filesystem::path& output_dir);

}  // namespace conduit::tools
