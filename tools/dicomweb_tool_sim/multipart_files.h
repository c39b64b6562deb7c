// A multipart/related; type="application/dicom" body made of files, streamed from disk in
// bounded memory with its exact length known up front (for STOW-RS requests the simulator
// sends and WADO-RS responses it serves). NON-CLINICAL test tool.
// Not thread-safe; one reader per body.
#pragma once

#include <cstddef>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace conduit::tools {

class MultipartFileBody {
 public:
  // One application/dicom part per file. Errors: kNotFound naming a file that cannot be sized.
  static Result<MultipartFileBody> FromFiles(const std::vector<std::filesystem::path>& files);

  // multipart/related; type="application/dicom"; boundary=...
  const std::string& content_type() const { return content_type_; }
  size_t size() const { return size_; }

  // Passes up to `max_bytes` bytes starting at `offset` to `write` (at least one byte when
  // offset < size()). Errors: kDataLoss if a file changed size or cannot be read.
  Status Read(size_t offset, size_t max_bytes, const std::function<void(std::string_view)>& write);

 private:
  struct Segment {
    size_t start = 0;
    size_t size = 0;
    std::string text;            // when path is empty
    std::filesystem::path path;  // else the file's bytes
  };

  std::string content_type_;
  std::vector<Segment> segments_;
  size_t size_ = 0;
  size_t open_segment_ = static_cast<size_t>(-1);
  std::ifstream open_file_;
  std::string buffer_;
};

}  // namespace conduit::tools
