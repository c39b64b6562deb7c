// The reference tool's classical segmentation, slice by slice: the body is everything not
// reachable from the image border through background; the lungs are the air inside it.
// Pure functions on rescaled pixel values (Hounsfield units for CT).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

namespace conduit::tools {

// Label bits of a voxel.
inline constexpr uint8_t kBodyLabel = 1;
inline constexpr uint8_t kLungLabel = 2;

struct Thresholds {
  int tissue_above;  // value > tissue_above is tissue (not background)
  int air_below;     // value < air_below inside the body is lung
};

// CT: tissue above -500 HU, lung below -400 HU.
inline constexpr Thresholds kCtThresholds{-500, -400};

// MR: tissue above the Otsu threshold of the whole series; lung at or below it.
inline Thresholds MrThresholds(int otsu) { return {otsu, otsu + 1}; }

// Labels one slice of rows x cols values (row-major). A pixel is body unless a 4-connected path
// of background pixels joins it to the border; body pixels below the air threshold are also lung.
std::vector<uint8_t> LabelSlice(std::span<const int16_t> values, int rows, int cols,
                                const Thresholds& thresholds);

// A histogram over the whole int16 range, for Otsu's threshold.
class Histogram {
 public:
  Histogram() : counts_(65536, 0) {}
  void Add(std::span<const int16_t> values);
  // The value t maximising the between-class variance of {v <= t} and {v > t}; the minimum
  // value seen when all values are equal. Requires at least one value.
  int OtsuThreshold() const;
  uint64_t total() const { return total_; }

 private:
  std::vector<uint64_t> counts_;
  uint64_t total_ = 0;
};

// Voxel counts per label over a series.
struct LabelCounts {
  uint64_t body = 0;
  uint64_t lung = 0;
  void Add(std::span<const uint8_t> labels);
};

}  // namespace conduit::tools
