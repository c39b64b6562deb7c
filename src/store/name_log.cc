#include "store/name_log.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <system_error>

#include "core/sha256.h"

namespace conduit {
namespace fs = std::filesystem;

namespace {

// "<key> <sop>" whose key is the SOP Instance UID's hash (so a well-formed spool key), or
// nothing: a torn line, or a UID that itself held a line break, names no file to remove.
std::optional<NameLog::Entry> ParseLine(std::string_view line) {
  if (line.size() < 66 || line[64] != ' ') return std::nullopt;
  const std::string_view sop = line.substr(65);
  if (Sha256Hex(sop) != line.substr(0, 64)) return std::nullopt;
  return NameLog::Entry{std::string(line.substr(0, 64)), SopInstanceUid(std::string(sop))};
}

}  // namespace

NameLog::NameLog(fs::path dir, std::string run, uint64_t rotate_bytes)
    : dir_(std::move(dir)), run_(std::move(run)), rotate_bytes_(rotate_bytes) {}

NameLog::~NameLog() {
  std::lock_guard lock(mu_);
  if (fd_ >= 0) CloseGenerationLocked();
}

fs::path NameLog::FileOf(uint64_t generation) const {
  return dir_ / (run_ + "-" + std::to_string(generation) + ".log");
}

void NameLog::Add(const std::string& key, const SopInstanceUid& sop) {
  const std::string line = key + ' ' + sop.str() + '\n';
  std::lock_guard lock(mu_);
  if (fd_ >= 0 && bytes_ >= rotate_bytes_) CloseGenerationLocked();
  if (fd_ < 0) {
    fd_ = ::open(FileOf(generation_).c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    bytes_ = 0;
    if (fd_ >= 0) unsettled_[generation_] = 0;
  }
  ssize_t written = fd_ >= 0 ? ::write(fd_, line.data(), line.size()) : -1;
  if (written != static_cast<ssize_t>(line.size())) {
    // The caller goes on: at worst a crash then leaves one file behind that nothing names.
    if (!warned_) {
      spdlog::warn("spool: cannot write the name log in {}: {} (further failures not logged)",
                   dir_.string(), written < 0 ? std::strerror(errno) : "short write");
      warned_ = true;
    }
  }
  if (fd_ < 0) return;
  bytes_ += written > 0 ? static_cast<uint64_t>(written) : 0;
  ++unsettled_[generation_];
  generation_of_.emplace(key, generation_);
}

void NameLog::Settle(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = generation_of_.find(key);
  if (it == generation_of_.end()) return;
  const uint64_t generation = it->second;
  generation_of_.erase(it);
  --unsettled_[generation];
  DeleteIfDoneLocked(generation);
}

void NameLog::CloseGenerationLocked() {
  ::close(fd_);
  fd_ = -1;
  const uint64_t closed = generation_++;
  DeleteIfDoneLocked(closed);
}

void NameLog::DeleteIfDoneLocked(uint64_t generation) {
  if (generation == generation_ && fd_ >= 0) return;  // still written
  auto it = unsettled_.find(generation);
  if (it == unsettled_.end() || it->second != 0) return;
  unsettled_.erase(it);
  if (::unlink(FileOf(generation).c_str()) != 0 && errno != ENOENT) {
    spdlog::warn("spool: cannot delete name log {}: {}", FileOf(generation).string(),
                 std::strerror(errno));
  }
}

Result<NameLog::Earlier> NameLog::ReadEarlier() const {
  Earlier earlier;
  std::error_code ec;
  const std::string own_prefix = run_ + "-";
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (it->path().extension() != ".log" || name.starts_with(own_prefix)) continue;
    std::ifstream in(it->path(), std::ios::binary);
    if (!in) {
      if (!fs::exists(it->path())) continue;
      return ErrnoStatus(EIO, "spool: read name log " + it->path().string());
    }
    std::string line;
    while (std::getline(in, line)) {
      if (auto entry = ParseLine(line)) earlier.entries.push_back(std::move(*entry));
    }
    if (in.bad()) return ErrnoStatus(EIO, "spool: read name log " + it->path().string());
    earlier.files.push_back(it->path());
  }
  if (ec) return ErrnoStatus(ec.value(), "spool: list name logs in " + dir_.string());
  return earlier;
}

}  // namespace conduit
