#include "deid/dataset_io.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcxfer.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

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
  return loaded;
}

Status SaveAtomically(DcmFileFormat& file, E_TransferSyntax xfer, const fs::path& out,
                      bool zero_preamble) {
  fs::path part = out;
  part += ".part";
  std::error_code ec;
  OFCondition saved = file.saveFile(OFFilename(part.c_str()), xfer, EET_UndefinedLength,
                                    EGL_withoutGL, EPD_noChange, 0, 0, EWM_updateMeta);
  if (saved.bad()) {
    fs::remove(part, ec);
    if (saved == EC_CannotChangeRepresentation || saved == EC_IllegalCall)
      return InvalidArgument("cannot be written in its transfer syntax (" +
                             std::string(saved.text()) + ")");
    return Internal("writing " + part.string() + ": " + saved.text());
  }
  if (zero_preamble) {
    Status zeroed = ZeroPreamble(part);
    if (!zeroed.ok()) {
      fs::remove(part, ec);
      return zeroed;
    }
  }
  fs::rename(part, out, ec);
  if (ec) {
    fs::remove(part, ec);
    return ErrnoStatus(ec.value(), "renaming " + part.string());
  }
  return Status::Ok();
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
