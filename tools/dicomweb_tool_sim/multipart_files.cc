#include "dicomweb_tool_sim/multipart_files.h"

#include <algorithm>
#include <cstdint>
#include <system_error>

#include "http/multipart.h"

namespace conduit::tools {
namespace {
constexpr size_t kReadBytes = 256 * 1024;
}  // namespace

Result<MultipartFileBody> MultipartFileBody::FromFiles(
    const std::vector<std::filesystem::path>& files) {
  MultipartWriter writer;
  MultipartFileBody body;
  body.content_type_ = writer.ContentType("application/dicom");
  auto add_text = [&body](std::string text) {
    Segment segment;
    segment.start = body.size_;
    segment.size = text.size();
    segment.text = std::move(text);
    body.size_ += segment.size;
    body.segments_.push_back(std::move(segment));
  };
  for (const std::filesystem::path& file : files) {
    std::error_code ec;
    uintmax_t bytes = std::filesystem::file_size(file, ec);
    if (ec) return NotFound("multipart part " + file.filename().string() + ": " + ec.message());
    add_text(writer.PartHeader("application/dicom"));
    Segment segment;
    segment.start = body.size_;
    segment.size = static_cast<size_t>(bytes);
    segment.path = file;
    body.size_ += segment.size;
    body.segments_.push_back(std::move(segment));
  }
  add_text(writer.Close());
  return body;
}

Status MultipartFileBody::Read(size_t offset, size_t max_bytes,
                               const std::function<void(std::string_view)>& write) {
  if (offset >= size_ || max_bytes == 0) return Status::Ok();
  auto it = std::upper_bound(segments_.begin(), segments_.end(), offset,
                             [](size_t value, const Segment& s) { return value < s.start; });
  const size_t index = static_cast<size_t>(it - segments_.begin()) - 1;
  const Segment& segment = segments_[index];
  const size_t within = offset - segment.start;
  const size_t count = std::min({max_bytes, segment.size - within, kReadBytes});
  if (segment.path.empty()) {
    write(std::string_view(segment.text).substr(within, count));
    return Status::Ok();
  }
  if (open_segment_ != index) {
    open_file_ = std::ifstream(segment.path, std::ios::binary);
    open_segment_ = index;
  }
  buffer_.resize(count);
  open_file_.clear();
  open_file_.seekg(static_cast<std::streamoff>(within));
  open_file_.read(buffer_.data(), static_cast<std::streamsize>(count));
  if (!open_file_ || open_file_.gcount() != static_cast<std::streamsize>(count)) {
    open_segment_ = static_cast<size_t>(-1);
    return DataLoss("multipart part " + segment.path.filename().string() +
                    ": short read (file changed?)");
  }
  write(std::string_view(buffer_.data(), count));
  return Status::Ok();
}

}  // namespace conduit::tools
