// Rendering with DCMTK's DicomImage, the way dcm2pnm does it: VOI on the source frame, then
// clipping, scaling and flipping, then a plugin (DiJPEGPlugin, DiPNGPlugin) writes the 8-bit
// output. The dataset is loaded lazily (values over 4 KiB stay on disk) and DicomImage is
// given CIF_UsePartialAccessToPixelData with a one-frame range, so a large multi-frame
// instance costs one decoded frame of memory.
#include "dicom/rendered_frame.h"

#include <dcmtk/config/osconfig.h>  // must come first among DCMTK headers
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmimgle/dcmimage.h>

// After dcmimgle: the output plugins, and diregist.h, which registers colour image support
// with dcmimgle through a static object (DCMTK's own design).
#include <dcmtk/dcmimage/dipipng.h>
#include <dcmtk/dcmimage/diregist.h>
#include <dcmtk/dcmjpeg/dipijpeg.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string_view>

#include "dicom/pixel_codecs.h"

namespace conduit {
namespace {

constexpr std::array<std::string_view, 9> kRenderablePhotometrics = {
    "MONOCHROME1",  "MONOCHROME2",     "RGB",     "PALETTE COLOR", "YBR_FULL",
    "YBR_FULL_422", "YBR_PARTIAL_420", "YBR_ICT", "YBR_RCT"};

// A FILE* writing into memory (open_memstream); the bytes are taken after Close().
class MemoryStream {
 public:
  MemoryStream() : file_(open_memstream(&data_, &size_)) {}
  ~MemoryStream() {
    if (file_ != nullptr) std::fclose(file_);
    std::free(data_);
  }
  MemoryStream(const MemoryStream&) = delete;
  MemoryStream& operator=(const MemoryStream&) = delete;

  FILE* file() const { return file_; }
  // Flushes and closes the stream; the written bytes, or nullopt if closing failed.
  std::optional<std::string> Close() {
    const bool ok = file_ != nullptr && std::fclose(file_) == 0;
    file_ = nullptr;
    if (!ok) return std::nullopt;
    return std::string(data_ == nullptr ? "" : data_, size_);
  }

 private:
  char* data_ = nullptr;
  size_t size_ = 0;
  FILE* file_;
};

// Sets the VOI transformation of a monochrome image: the requested window, else the first
// stored window, else the first stored VOI LUT, else the range of the frame's values.
Status ApplyVoi(DicomImage& image, const std::optional<RenderWindow>& window) {
  if (!image.isMonochrome()) return Status::Ok();  // windows apply to grayscale only
  if (window) {
    double center = window->center, width = window->width;
    EF_VoiLutFunction function = EFV_Linear;
    if (window->function == VoiFunction::kSigmoid) function = EFV_Sigmoid;
    // LINEAR_EXACT (PS3.3 C.11.2.1.3.2) is LINEAR with the center raised by 0.5 and the width
    // by 1: both then map x <= c - w/2 to the minimum and x > c + w/2 to the maximum.
    if (window->function == VoiFunction::kLinearExact) {
      center += 0.5;
      width += 1;
    }
    if (!image.setVoiLutFunction(function) || !image.setWindow(center, width)) {
      return InvalidArgument("window: not applicable to this image");
    }
    return Status::Ok();
  }
  if (image.getWindowCount() > 0 && image.setWindow(0)) return Status::Ok();
  if (image.getVoiLutCount() > 0 && image.setVoiLut(0)) return Status::Ok();
  image.setMinMaxWindow(0);
  return Status::Ok();
}

// Clips, scales and flips `image` per `viewport`; returns the image to write (`image` itself
// or a new one held in `owned`).
Result<DicomImage*> ApplyViewport(DicomImage& image, const RenderViewport& viewport,
                                  std::unique_ptr<DicomImage>& owned) {
  DicomImage* current = &image;
  const int64_t columns = static_cast<int64_t>(image.getWidth());
  const int64_t rows = static_cast<int64_t>(image.getHeight());
  int64_t x = 0, y = 0, w = columns, h = rows;
  if (viewport.has_region) {
    w = std::llabs(viewport.sw);
    h = std::llabs(viewport.sh);
    x = viewport.sw < 0 ? viewport.sx + viewport.sw : viewport.sx;
    y = viewport.sh < 0 ? viewport.sy + viewport.sh : viewport.sy;
    if (w == 0 || h == 0 || x < 0 || y < 0 || x + w > columns || y + h > rows) {
      return InvalidArgument("viewport: the source region lies outside the frame (" +
                             std::to_string(columns) + " x " + std::to_string(rows) + ")");
    }
    if (x != 0 || y != 0 || w != columns || h != rows) {
      owned.reset(current->createClippedImage(static_cast<long>(x), static_cast<long>(y),
                                              static_cast<unsigned long>(w),
                                              static_cast<unsigned long>(h)));
      if (!owned) return Internal("viewport: clipping the frame failed");
      current = owned.get();
    }
  }
  const double scale = std::min(static_cast<double>(viewport.width) / static_cast<double>(w),
                                static_cast<double>(viewport.height) / static_cast<double>(h));
  const auto out_w = static_cast<unsigned long>(
      std::clamp<double>(std::lround(static_cast<double>(w) * scale), 1, kMaxRenderedSide));
  const auto out_h = static_cast<unsigned long>(
      std::clamp<double>(std::lround(static_cast<double>(h) * scale), 1, kMaxRenderedSide));
  if (out_w != static_cast<unsigned long>(w) || out_h != static_cast<unsigned long>(h)) {
    std::unique_ptr<DicomImage> scaled(current->createScaledImage(out_w, out_h, /*interpolate=*/1,
                                                                  /*aspect=*/0));
    if (!scaled) return Internal("viewport: scaling the frame failed");
    owned = std::move(scaled);
    current = owned.get();
  }
  const bool flip_x = viewport.has_region && viewport.sw < 0;
  const bool flip_y = viewport.has_region && viewport.sh < 0;
  if ((flip_x || flip_y) && !current->flipImage(flip_x, flip_y)) {
    return Internal("viewport: flipping the frame failed");
  }
  return current;
}

}  // namespace

Result<RenderedImage> RenderFrame(const std::filesystem::path& file, int frame,
                                  const RenderOptions& options) {
  RegisterPixelDecoders();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) {
    return DataLoss("render: the instance file is missing");
  }
  DcmFileFormat format;
  OFCondition cond = format.loadFile(file.c_str(), EXS_Unknown, EGL_noChange, 4096, ERM_autoDetect);
  if (cond.bad()) return DataLoss(std::string("render: reading the instance: ") + cond.text());
  DcmDataset* dataset = format.getDataset();
  if (!dataset->tagExists(DCM_PixelData)) {
    return FailedPrecondition("the instance has no Pixel Data to render");
  }
  OFString photometric;
  dataset->findAndGetOFString(DCM_PhotometricInterpretation, photometric);
  const std::string_view pi(photometric.c_str());
  if (std::find(kRenderablePhotometrics.begin(), kRenderablePhotometrics.end(), pi) ==
      kRenderablePhotometrics.end()) {
    return FailedPrecondition("photometric interpretation '" + std::string(pi.substr(0, 16)) +
                              "' is not rendered");
  }
  Uint16 rows = 0, columns = 0, samples = 1;
  dataset->findAndGetUint16(DCM_Rows, rows);
  dataset->findAndGetUint16(DCM_Columns, columns);
  dataset->findAndGetUint16(DCM_SamplesPerPixel, samples);
  if (rows == 0 || columns == 0) return FailedPrecondition("the image has no Rows or Columns");
  if (uint64_t{rows} * columns * std::max<Uint16>(samples, 1) > kMaxRenderedSourceSamples) {
    return FailedPrecondition("the frame is too large to render");
  }
  Sint32 frames = 1;
  if (dataset->findAndGetSint32(DCM_NumberOfFrames, frames).bad() || frames < 1) frames = 1;
  if (frame < 1 || frame > frames) {
    return NotFound("frame " + std::to_string(frame) + " does not exist (the instance has " +
                    std::to_string(frames) + ")");
  }

  const E_TransferSyntax xfer = dataset->getOriginalXfer();
  DicomImage image(dataset, xfer, CIF_UsePartialAccessToPixelData,
                   static_cast<unsigned long>(frame - 1), 1);
  if (image.getStatus() != EIS_Normal) {
    return FailedPrecondition(std::string("the frame cannot be decoded: ") +
                              DicomImage::getString(image.getStatus()));
  }
  RETURN_IF_ERROR(ApplyVoi(image, options.window));
  DicomImage* out = &image;
  std::unique_ptr<DicomImage> owned;
  if (options.viewport) {
    ASSIGN_OR_RETURN(out, ApplyViewport(image, *options.viewport, owned));
  }

  MemoryStream stream;
  if (stream.file() == nullptr) return Internal("render: cannot open a memory stream");
  int written = 0;
  if (options.format == RenderedFormat::kPng) {
    DiPNGPlugin png;
    png.setInterlaceType(E_pngInterlaceNone);
    png.setMetainfoType(E_pngNoMetainfo);
    png.setBitsPerSample(8);
    written = out->writePluginFormat(&png, stream.file(), 0);
  } else {
    DiJPEGPlugin jpeg;
    jpeg.setQuality(static_cast<unsigned int>(std::clamp(options.quality, 1, 100)));
    jpeg.setSampling(ESS_444);
    written = out->writePluginFormat(&jpeg, stream.file(), 0);
  }
  std::optional<std::string> bytes = stream.Close();
  if (!written || !bytes || bytes->empty()) return Internal("render: encoding the image failed");
  RenderedImage rendered;
  rendered.bytes = std::move(*bytes);
  rendered.width = static_cast<int>(out->getWidth());
  rendered.height = static_cast<int>(out->getHeight());
  return rendered;
}

}  // namespace conduit
