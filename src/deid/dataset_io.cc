#include "deid/dataset_io.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfcache.h>
#include <dcmtk/dcmdata/dcpixel.h>
#include <dcmtk/dcmdata/dcxfer.h>
#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <optional>
#include <system_error>
#include <vector>

#include "core/unique_fd.h"

namespace conduit::deid_io {
namespace {

namespace fs = std::filesystem;

constexpr Uint32 kLazyLoadBytes = 4096;

Status ZeroPreamble(const fs::path& file) {
  int fd = ::open(file.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "opening " + file.string());
  char zeros[128] = {};
  ssize_t n = ::pwrite(fd, zeros, sizeof zeros, 0);
  int saved = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(sizeof zeros))
    return ErrnoStatus(saved, "writing " + file.string());
  return Status::Ok();
}

// Writes `file` in `xfer` to `part` (no group lengths, sequences of undefined length, a new
// file meta). Errors: kInvalidArgument when the dataset cannot be written in `xfer`.
Status WritePart(DcmFileFormat& file, E_TransferSyntax xfer, const fs::path& part) {
  OFCondition saved = file.saveFile(OFFilename(part.c_str()), xfer, EET_UndefinedLength,
                                    EGL_withoutGL, EPD_noChange, 0, 0, EWM_createNewMeta);
  if (saved.good()) return Status::Ok();
  if (saved == EC_CannotChangeRepresentation || saved == EC_IllegalCall)
    return InvalidArgument("cannot be written in its transfer syntax (" +
                           std::string(saved.text()) + ")");
  return Internal("writing " + part.string() + ": " + saved.text());
}

// Blanks the preamble if asked and renames `part` to `out`.
Status FinishPart(const fs::path& part, const fs::path& out, bool zero_preamble) {
  if (zero_preamble) RETURN_IF_ERROR(ZeroPreamble(part));
  std::error_code ec;
  fs::rename(part, out, ec);
  if (ec) return ErrnoStatus(ec.value(), "renaming " + part.string());
  return Status::Ok();
}

// Where an unchanged top-level Pixel Data value sits in the input file, and the element header
// (tag, VR, length) that precedes it there and that DCMTK would write before it.
struct PixelDataSpan {
  DcmElement* element = nullptr;
  off_t value_offset = 0;
  Uint32 length = 0;
  std::array<unsigned char, 12> header{};
  size_t header_size = 0;
};

bool ReadExactly(int fd, void* buffer, size_t size, off_t offset) {
  auto* bytes = static_cast<unsigned char*>(buffer);
  while (size > 0) {
    const ssize_t n = ::pread(fd, bytes, size, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes += n;
    size -= static_cast<size_t>(n);
    offset += n;
  }
  return true;
}

// The span of `loaded`'s Pixel Data in `in_fd` when it can be copied as is into an output in
// `xfer` (see SaveAtomicallyCopyingPixelData); nullopt whenever any condition fails.
std::optional<PixelDataSpan> FindUnchangedPixelData(LoadedFile& loaded, E_TransferSyntax xfer,
                                                    int in_fd) {
  if (loaded.inflated != nullptr || !loaded.pixel_data_last || xfer != loaded.xfer)
    return std::nullopt;
  const bool explicit_vr = xfer == EXS_LittleEndianExplicit;
  if (!explicit_vr && xfer != EXS_LittleEndianImplicit) return std::nullopt;
  DcmDataset& dataset = loaded.dataset();
  if (dataset.card() == 0) return std::nullopt;
  DcmElement* element = dataset.getElement(dataset.card() - 1);
  if (element == nullptr || element->getTag() != DCM_PixelData || element->ident() != EVR_PixelData)
    return std::nullopt;
  E_TransferSyntax representation = EXS_Unknown;
  const DcmRepresentationParameter* parameter = nullptr;
  static_cast<DcmPixelData*>(element)->getCurrentRepresentationKey(representation, parameter);
  if (DcmXfer(representation).isEncapsulated()) return std::nullopt;
  // A loaded value may have been changed (blanked regions); an odd one is padded on writing.
  const Uint32 length = element->getLengthField();
  if (length == 0 || length == DCM_UndefinedLength || length % 2 != 0 || element->valueLoaded())
    return std::nullopt;
  const DcmEVR vr = element->getVR();
  if (explicit_vr && vr != EVR_OB && vr != EVR_OW) return std::nullopt;

  PixelDataSpan span;
  span.element = element;
  span.length = length;
  span.header_size = explicit_vr ? 12 : 8;
  unsigned char* h = span.header.data();
  h[0] = 0xE0, h[1] = 0x7F, h[2] = 0x10, h[3] = 0x00;
  size_t at = 4;
  if (explicit_vr) {
    h[4] = 'O', h[5] = vr == EVR_OB ? 'B' : 'W', h[6] = 0, h[7] = 0;
    at = 8;
  }
  for (int i = 0; i < 4; ++i) h[at + i] = static_cast<unsigned char>(length >> (8 * i));

  struct stat input {};
  if (::fstat(in_fd, &input) != 0 || !S_ISREG(input.st_mode) ||
      input.st_size < static_cast<off_t>(length + span.header_size))
    return std::nullopt;
  span.value_offset = input.st_size - static_cast<off_t>(length);
  std::array<unsigned char, 12> found{};
  if (!ReadExactly(in_fd, found.data(), span.header_size,
                   span.value_offset - static_cast<off_t>(span.header_size)) ||
      std::memcmp(found.data(), span.header.data(), span.header_size) != 0)
    return std::nullopt;
  // The value's first and last bytes, as DCMTK reads them from where it found the element.
  const Uint32 sample = std::min<Uint32>(length, 64);
  DcmFileCache cache;  // one open of the input for both samples
  for (const Uint32 offset : {Uint32{0}, length - sample}) {
    std::array<unsigned char, 64> ours{}, dcmtk{};
    if (!ReadExactly(in_fd, ours.data(), sample, span.value_offset + offset) ||
        element->getPartialValue(dcmtk.data(), offset, sample, &cache, EBO_LittleEndian).bad() ||
        std::memcmp(ours.data(), dcmtk.data(), sample) != 0)
      return std::nullopt;
  }
  return span;
}

// Copies `length` bytes from `in_fd` at `in_offset` to `out_fd` at `out_offset` in the kernel:
// copy_file_range (a reflink where the file system can share extents), else sendfile between
// file systems (copy_file_range gives EXDEV there), else through a buffer.
Status CopyRange(int in_fd, off_t in_offset, int out_fd, off_t out_offset, uint64_t length,
                 const fs::path& in, const fs::path& part) {
  const std::string what = "copying Pixel Data from " + in.string() + " to " + part.string();
  enum class Way { kCopyFileRange, kSendfile, kBuffer } way = Way::kCopyFileRange;
  std::vector<char> buffer;
  while (length > 0) {
    const size_t chunk = static_cast<size_t>(std::min<uint64_t>(length, 1u << 30));
    ssize_t n = 0;
    if (way == Way::kCopyFileRange) {
      n = ::copy_file_range(in_fd, &in_offset, out_fd, &out_offset, chunk, 0);
      if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) {
        // sendfile writes at the output's file position.
        if (::lseek(out_fd, out_offset, SEEK_SET) < 0) return ErrnoStatus(errno, what);
        way = Way::kSendfile;
        continue;
      }
    } else if (way == Way::kSendfile) {
      n = ::sendfile(out_fd, in_fd, &in_offset, chunk);
      if (n > 0) out_offset += n;
      if (n < 0 && (errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) {
        way = Way::kBuffer;
        buffer.resize(1 << 20);
        continue;
      }
    } else {
      n = ::pread(in_fd, buffer.data(), std::min(chunk, buffer.size()), in_offset);
      for (ssize_t done = 0; n > 0 && done < n;) {
        const ssize_t w = ::pwrite(out_fd, buffer.data() + done, static_cast<size_t>(n - done),
                                   out_offset + done);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return ErrnoStatus(errno, what);
        done += w;
      }
      if (n > 0) {
        in_offset += n;
        out_offset += n;
      }
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, what);
    if (n == 0) return DataLoss(what + ": the input ended early");
    length -= static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

// Appends the element header and the value copied from the input to `part`.
Status AppendPixelData(const PixelDataSpan& span, int in_fd, const fs::path& in,
                       const fs::path& part) {
  UniqueFd output(::open(part.c_str(), O_WRONLY | O_CLOEXEC));
  if (!output.ok()) return ErrnoStatus(errno, "opening " + part.string());
  struct stat written {};
  if (::fstat(output.get(), &written) != 0)
    return ErrnoStatus(errno, "reading the size of " + part.string());
  off_t offset = written.st_size;
  for (size_t done = 0; done < span.header_size;) {
    const ssize_t n = ::pwrite(output.get(), span.header.data() + done, span.header_size - done,
                               offset + static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, "writing " + part.string());
    done += static_cast<size_t>(n);
  }
  offset += static_cast<off_t>(span.header_size);
  RETURN_IF_ERROR(CopyRange(in_fd, span.value_offset, output.get(), offset, span.length, in, part));
  return output.Close(part);
}

fs::path PartOf(const fs::path& out) {
  fs::path part = out;
  part += ".part";
  return part;
}

}  // namespace

Result<std::unique_ptr<LoadedFile>> LoadLazily(const fs::path& path) {
  auto loaded = std::make_unique<LoadedFile>();
  auto inflated = InflateIfDeflated(path);
  if (!inflated.ok()) return InvalidArgument(path.string() + ": " + inflated.status().message());
  if (*inflated != nullptr) {
    loaded->inflated = std::move(*inflated);
    *loaded->file.getMetaInfo() = loaded->inflated->meta();
    OFString syntax;
    loaded->inflated->meta().findAndGetOFString(DCM_TransferSyntaxUID, syntax);
    loaded->xfer = DcmXfer(syntax.c_str()).getXfer();
    OFCondition read =
        loaded->dataset().loadFile(OFFilename(loaded->inflated->path().c_str()),
                                   EXS_LittleEndianExplicit, EGL_noChange, kLazyLoadBytes);
    if (read.bad())
      return InvalidArgument(path.string() + ": not readable DICOM (" + read.text() + ")");
    return loaded;
  }
  OFCondition read = loaded->file.loadFile(OFFilename(path.c_str()), EXS_Unknown, EGL_noChange,
                                           kLazyLoadBytes, ERM_autoDetect);
  if (read.bad())
    return InvalidArgument(path.string() + ": not readable DICOM (" + read.text() + ")");
  loaded->xfer = loaded->dataset().getOriginalXfer();
  loaded->path = path;
  DcmDataset& dataset = loaded->dataset();
  loaded->pixel_data_last =
      dataset.card() > 0 && dataset.getElement(dataset.card() - 1)->getTag() == DCM_PixelData;
  return loaded;
}

Status SaveAtomically(DcmFileFormat& file, E_TransferSyntax xfer, const fs::path& out,
                      bool zero_preamble) {
  const fs::path part = PartOf(out);
  Status saved = WritePart(file, xfer, part);
  if (saved.ok()) saved = FinishPart(part, out, zero_preamble);
  if (!saved.ok()) {
    std::error_code ec;
    fs::remove(part, ec);
  }
  return saved;
}

Result<PixelDataWrite> SaveAtomicallyCopyingPixelData(LoadedFile& loaded, E_TransferSyntax xfer,
                                                      const fs::path& out, bool zero_preamble,
                                                      bool allow_copy) {
  std::optional<PixelDataSpan> span;
  UniqueFd input(
      allow_copy && !loaded.path.empty() ? ::open(loaded.path.c_str(), O_RDONLY | O_CLOEXEC) : -1);
  if (input.ok()) span = FindUnchangedPixelData(loaded, xfer, input.get());
  if (!span) {
    RETURN_IF_ERROR(SaveAtomically(loaded.file, xfer, out, zero_preamble));
    return PixelDataWrite::kThroughDcmtk;
  }
  // DCMTK writes everything before the Pixel Data; its header and value are appended.
  DcmDataset& dataset = loaded.dataset();
  DcmElement* pixels = dataset.remove(span->element);
  const fs::path part = PartOf(out);
  Status saved = WritePart(loaded.file, xfer, part);
  if (pixels != nullptr && dataset.insert(pixels).bad()) delete pixels;
  if (saved.ok()) saved = AppendPixelData(*span, input.get(), loaded.path, part);
  if (saved.ok()) saved = FinishPart(part, out, zero_preamble);
  if (!saved.ok()) {
    std::error_code ec;
    fs::remove(part, ec);
    return saved;
  }
  return PixelDataWrite::kCopiedFromInput;
}

std::string StringOf(DcmItem& item, const DcmTagKey& key) {
  OFString value;
  if (item.findAndGetOFStringArray(key, value).bad()) return "";
  return TrimValue(std::string(value.c_str(), value.length()));
}

std::string TrimValue(std::string value) {
  while (!value.empty() && (value.back() == ' ' || value.back() == '\0')) value.pop_back();
  size_t start = 0;
  while (start < value.size() && value[start] == ' ') ++start;
  return value.substr(start);
}

std::vector<std::string> SplitValues(const std::string& value) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t pos = value.find('\\', start);
    out.push_back(value.substr(start, pos == std::string::npos ? std::string::npos : pos - start));
    if (pos == std::string::npos) break;
    start = pos + 1;
  }
  return out;
}

std::string JoinValues(const std::vector<std::string>& values) {
  std::string out;
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) out += '\\';
    out += values[i];
  }
  return out;
}

}  // namespace conduit::deid_io
