// Writes the Secondary Capture: one source slice rendered in grey with the body (green) and
// lung (red) contours and the words NON-CLINICAL drawn into RGB pixels.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <vector>

#include "core/status.h"
#include "reference_tool/result_common.h"
#include "reference_tool/source_series.h"

namespace conduit::tools {

// Renders rows x cols `values` (rescaled) and `labels` to interleaved RGB bytes.
std::vector<uint8_t> RenderOverlay(std::span<const int16_t> values, std::span<const uint8_t> labels,
                                   int rows, int cols, bool is_ct);

// Writes the capture of source slice `slice_index`.
// Errors: kInternal when DCMTK refuses an attribute or the file cannot be written.
Status WriteOverlayCapture(const SourceSeries& source, const ResultUids& uids, size_t slice_index,
                           std::span<const int16_t> values, std::span<const uint8_t> labels,
                           const std::filesystem::path& path);

}  // namespace conduit::tools
