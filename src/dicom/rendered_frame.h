// Renders one frame of a stored instance as a consumer image (JPEG or PNG), for the DICOMweb
// rendered and thumbnail resources (PS3.18 §8.3.5.1, §10.4.1.1.3). The frame is decoded
// through DCMTK's registered decoders (JPEG, JPEG-LS, RLE), with only that frame in memory.
// No DCMTK types in this header.
// Thread safety: reentrant; decoder registration is done once, thread-safely.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "core/status.h"

namespace conduit {

enum class RenderedFormat { kJpeg, kPng };

// The VOI LUT function of a requested window (PS3.18 §8.3.5.1.4, PS3.3 C.11.2.1.2).
enum class VoiFunction { kLinear, kLinearExact, kSigmoid };

struct RenderWindow {
  double center = 0;
  double width = 1;  // > 0; >= 1 for kLinear
  VoiFunction function = VoiFunction::kLinear;
};

// PS3.18 §8.3.5.1.3: the output fits within width x height, keeping the aspect ratio of the
// source region. The source region (sx, sy, sw, sh) defaults to the whole frame; a negative
// sw or sh flips the output horizontally or vertically.
struct RenderViewport {
  int width = 0;   // 1..kMaxRenderedSide
  int height = 0;  // 1..kMaxRenderedSide
  bool has_region = false;
  int64_t sx = 0, sy = 0, sw = 0, sh = 0;  // sw, sh != 0 when has_region
};

inline constexpr int kMaxRenderedSide = 4096;
// Frames larger than this (Rows x Columns x Samples per Pixel) are not rendered.
inline constexpr uint64_t kMaxRenderedSourceSamples = 256ull * 1024 * 1024;

struct RenderOptions {
  RenderedFormat format = RenderedFormat::kJpeg;
  int quality = 90;                        // JPEG quality, 1..100
  std::optional<RenderWindow> window;      // none: stored window, VOI LUT, else min/max
  std::optional<RenderViewport> viewport;  // none: the frame at its own size
};

struct RenderedImage {
  std::string bytes;  // the encoded image
  int width = 0;
  int height = 0;
};

// Renders frame `frame` (1-based) of the Part 10 file `file`: monochrome images through the
// modality LUT and the window, colour images (RGB, YBR_*, PALETTE COLOR) as RGB.
// Errors: kNotFound if `frame` is not in [1, NumberOfFrames] (the message says how many there
// are); kDataLoss if the file is missing, unreadable or not DICOM; kInvalidArgument if the
// viewport's source region lies outside the frame or the window cannot be applied;
// kFailedPrecondition if it has no renderable pixel data (no Pixel Data, an unsupported
// photometric interpretation or transfer syntax, a decoding failure, a frame over
// kMaxRenderedSourceSamples); kInternal if encoding fails.
Result<RenderedImage> RenderFrame(const std::filesystem::path& file, int frame,
                                  const RenderOptions& options);

}  // namespace conduit
