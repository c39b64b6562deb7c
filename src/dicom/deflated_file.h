// Files in Deflated Explicit VR Little Endian. The dataset after the meta header is a zlib
// stream, which DCMTK cannot seek in: it would load every value, pixel data included, and
// allocate each value's declared length (up to 4 GiB, whatever the file holds) before reading
// it. InflateIfDeflated instead writes the dataset, inflated, to a temporary file (at most
// 1 GiB) that can be parsed lazily like any other file.
#pragma once

#include <dcmtk/config/osconfig.h>  // must come first among DCMTK headers
#include <dcmtk/dcmdata/dcmetinf.h>

#include <filesystem>
#include <memory>
#include <string>

#include "core/status.h"

namespace conduit {

class InflatedDataset {
 public:
  InflatedDataset() = default;
  InflatedDataset(const InflatedDataset&) = delete;
  InflatedDataset& operator=(const InflatedDataset&) = delete;
  ~InflatedDataset();  // removes the temporary file

  // The inflated dataset: Explicit VR Little Endian, no preamble, no meta header.
  const std::filesystem::path& path() const { return path_; }
  // The file's meta header, as read.
  DcmMetaInfo& meta() { return meta_; }

 private:
  friend Result<std::unique_ptr<InflatedDataset>> InflateIfDeflated(
      const std::filesystem::path& file);
  Status Create();
  Status Write(const char* data, size_t size);

  int fd_ = -1;
  std::filesystem::path path_;
  DcmMetaInfo meta_;
};

// nullptr when `file` is not deflated (or has no readable meta header: the ordinary parse
// reports that). Errors: kInvalidArgument for a corrupt or truncated stream, or one that
// inflates to more than 1 GiB; storage errors for the temporary file.
Result<std::unique_ptr<InflatedDataset>> InflateIfDeflated(const std::filesystem::path& file);

}  // namespace conduit
