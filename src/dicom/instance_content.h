// What DICOMweb retrieval needs from a stored instance beyond its bytes: its metadata as
// DICOM JSON (PS3.18 Annex F) without bulk data, and its pixel data frames one at a time.
// Both read the file lazily (no value over 4 KiB is loaded until asked for), so memory stays
// bounded whatever the size of the instance. No DCMTK types in this header.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"

namespace conduit {

// Binary values (VR OB, OD, OF, OL, OV, OW, UN) longer than this are left out of InstanceJson,
// as is Pixel Data whatever its length.
inline constexpr uint32_t kMaxInlineBinaryBytes = 4096;

// The dataset of the Part 10 file `file` (without its File Meta Information) as one DICOM JSON
// object, text in UTF-8 (converted from the Specific Character Set when it can be; left as
// stored otherwise). Pixel Data and longer binary values, at any depth, are omitted.
// Errors: kNotFound if missing; kInvalidArgument if not DICOM or truncated.
Result<std::string> InstanceJson(const std::filesystem::path& file);

// Reads the frames of one instance's Pixel Data as stored (no decompression):
// - native (uncompressed) syntaxes: frame n is the n-th run of Rows x Columns x
//   SamplesPerPixel x BitsAllocated bits, in little-endian byte order;
// - encapsulated syntaxes: frame n is its fragment(s) concatenated, found from the Basic
//   Offset Table, or one fragment per frame, or every fragment when there is one frame.
// Not thread-safe; one reader per response.
class FrameReader {
 public:
  virtual ~FrameReader() = default;

  // Errors: kNotFound if missing; kInvalidArgument if not DICOM, truncated or without Pixel
  // Data; kFailedPrecondition when the frames cannot be delimited without decoding (a native
  // frame that is not a whole number of bytes, fragments neither one per frame nor located
  // by an offset table, a video transfer syntax).
  static Result<std::unique_ptr<FrameReader>> Open(const std::filesystem::path& file);

  virtual int frame_count() const = 0;
  virtual bool encapsulated() const = 0;
  virtual const std::string& transfer_syntax_uid() const = 0;

  // Streams frame `number` (1-based) to `sink` in chunks of at most 1 MiB.
  // Errors: kInvalidArgument if `number` is not in [1, frame_count()]; kDataLoss if the file
  // cannot be read; any error of `sink`, as returned.
  virtual Status ReadFrame(int number,
                           const std::function<Status(std::string_view bytes)>& sink) = 0;
};

}  // namespace conduit
