#include "dicom/deflated_file.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcelem.h>
#include <dcmtk/dcmdata/dcistrmf.h>
#include <dcmtk/dcmdata/dcxfer.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <vector>

namespace conduit {
namespace {

constexpr uint64_t kMaxInflatedBytes = uint64_t{1} << 30;
// Meta header values larger than this are not loaded (a meta header has no large values).
constexpr Uint32 kMaxLoadedValueBytes = 4096;
constexpr Uint32 kMaxUidBytes = 64;

}  // namespace

InflatedDataset::~InflatedDataset() {
  if (fd_ >= 0) ::close(fd_);
  if (!path_.empty()) ::unlink(path_.c_str());
}

Status InflatedDataset::Create() {
  std::error_code ec;
  const std::filesystem::path dir = std::filesystem::temp_directory_path(ec);
  std::string name =
      ((ec ? std::filesystem::path("/tmp") : dir) / "conduit-inflate-XXXXXX").string();
  fd_ = ::mkstemp(name.data());
  if (fd_ < 0) return ErrnoStatus(errno, "create temporary file for inflated dataset");
  path_ = name;
  return Status::Ok();
}

Status InflatedDataset::Write(const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd_, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, "write inflated dataset");
    data += n;
    size -= static_cast<size_t>(n);
  }
  return Status::Ok();
}

Result<std::unique_ptr<InflatedDataset>> InflateIfDeflated(const std::filesystem::path& file) {
  DcmInputFileStream stream(file.c_str());
  if (stream.status().bad()) return std::unique_ptr<InflatedDataset>();
  auto inflated = std::make_unique<InflatedDataset>();
  DcmMetaInfo& meta = inflated->meta();
  meta.transferInit();
  const OFCondition cond = meta.read(stream, EXS_Unknown, EGL_noChange, kMaxLoadedValueBytes);
  meta.transferEnd();
  // The value is read only if its declared length is plausible: a hostile header can declare
  // gigabytes, which DCMTK would allocate before reading.
  OFString syntax;
  DcmElement* syntax_element = nullptr;
  if (meta.findAndGetElement(DCM_TransferSyntaxUID, syntax_element).good() &&
      syntax_element != nullptr && syntax_element->getLengthField() <= kMaxUidBytes) {
    syntax_element->getOFString(syntax, 0);
  }
  if (syntax.empty() || DcmXfer(syntax.c_str()).getStreamCompression() == ESC_none) {
    return std::unique_ptr<InflatedDataset>();
  }
  if (cond.bad()) return InvalidArgument(std::string("not DICOM or truncated: ") + cond.text());
  if (stream.installCompressionFilter(DcmXfer(syntax.c_str()).getStreamCompression()).bad()) {
    return InvalidArgument("deflated dataset: cannot start inflating");
  }
  RETURN_IF_ERROR(inflated->Create());
  std::vector<char> buffer(64 * 1024);
  uint64_t total = 0;
  while (!stream.eos() && stream.status().good()) {
    const offile_off_t n = stream.read(buffer.data(), static_cast<offile_off_t>(buffer.size()));
    if (n <= 0) break;
    total += static_cast<uint64_t>(n);
    if (total > kMaxInflatedBytes) {
      return InvalidArgument("deflated dataset inflates to more than " +
                             std::to_string(kMaxInflatedBytes >> 20) + " MiB");
    }
    RETURN_IF_ERROR(inflated->Write(buffer.data(), static_cast<size_t>(n)));
  }
  if (stream.status().bad()) {
    return InvalidArgument(std::string("deflated dataset corrupt or truncated: ") +
                           stream.status().text());
  }
  return inflated;
}

}  // namespace conduit
