// Builds the DICOM Segmentation (binary) with two segments, "Body" (1) and "Lung" (2), one
// frame per source slice and segment, each frame referencing its source image and carrying
// its plane position. Frames are packed to one bit per pixel as they are added.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>

#include "core/status.h"
#include "reference_tool/result_common.h"
#include "reference_tool/source_series.h"

class DcmSegmentation;

namespace conduit::tools {

inline constexpr uint16_t kBodySegment = 1;
inline constexpr uint16_t kLungSegment = 2;

class SegmentationBuilder {
 public:
  // `source` and `uids` must outlive the builder.
  // Errors: kInternal when DCMTK refuses the object's set-up.
  static Result<std::unique_ptr<SegmentationBuilder>> Create(const SourceSeries& source,
                                                             const ResultUids& uids);
  ~SegmentationBuilder();

  // Adds the frames of source slice `index` (labels from LabelSlice, rows x cols). Slices must
  // be added in order, each once.
  Status AddSlice(size_t index, std::span<const uint8_t> labels);

  // Writes the object once every slice was added.
  Status Write(const std::filesystem::path& path);

 private:
  SegmentationBuilder(const SourceSeries& source, const ResultUids& uids,
                      std::unique_ptr<DcmSegmentation> seg);
  const SourceSeries& source_;
  std::unique_ptr<DcmSegmentation> seg_;
  size_t next_slice_ = 0;
};

}  // namespace conduit::tools
