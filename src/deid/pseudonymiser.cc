// Substitutes are HMAC-SHA256(key, domain '\0' original), one domain per kind of identifier.
// When a substitute would contain its original it is re-derived under the domain
// "<domain>/<n>" (n = 1, 2, ...), so the rule costs nothing in the common case and stays
// deterministic.
#include "deid/pseudonymiser.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "core/sha256.h"
#include "core/text_file.h"

namespace conduit {
namespace {

constexpr size_t kMinKeyBytes = 32;
constexpr size_t kNewKeyBytes = 32;
// A key file is a few bytes; anything this large is the wrong file.
constexpr size_t kMaxKeyBytes = 64 * 1024;
// The alphabet of Patient ID and Accession Number substitutes (RFC 4648 base32).
constexpr std::string_view kBase32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
constexpr size_t kSubstituteBodyChars = 15;  // after the one-letter prefix: 16 in all
// Re-derivations before giving up. Each one succeeds with probability near 1, so reaching
// this bound means the code is broken, not the input.
constexpr int kMaxDerivations = 4096;

std::string KeyId(const std::vector<uint8_t>& key) {
  return Sha256Hex(std::string_view(reinterpret_cast<const char*>(key.data()), key.size()))
      .substr(0, 16);
}

std::string Upper(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string DerivationDomain(std::string_view domain, int attempt) {
  std::string d(domain);
  if (attempt > 0) d += "/" + std::to_string(attempt);
  return d;
}

[[noreturn]] void DerivationExhausted(std::string_view what) {
  std::fprintf(stderr, "pseudonymiser: no %.*s substitute after %d derivations\n",
               static_cast<int>(what.size()), what.data(), kMaxDerivations);
  std::abort();
}

// `count` characters of `alphabet` read off the MAC as a big-endian number in base
// alphabet.size() (least significant digit last). 15 digits use under 80 of its 256 bits, so
// every digit is uniform to within 2^-170.
std::string Render(std::array<uint8_t, 32> mac, std::string_view alphabet, size_t count) {
  const unsigned base = static_cast<unsigned>(alphabet.size());
  std::string out(count, '?');
  for (size_t i = count; i-- > 0;) {
    unsigned remainder = 0;
    for (uint8_t& byte : mac) {
      const unsigned value = (remainder << 8) | byte;
      byte = static_cast<uint8_t>(value / base);
      remainder = value % base;
    }
    out[i] = alphabet[remainder];
  }
  return out;
}

Status CloseFd(int fd, const std::string& what) {
  if (::close(fd) != 0) return ErrnoStatus(errno, what + ": close");
  return Status::Ok();
}

Status SyncDirectoryOf(const std::filesystem::path& path) {
  const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : ".";
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "key directory " + dir.string() + ": open");
  if (::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    return ErrnoStatus(err, "key directory " + dir.string() + ": fsync");
  }
  return CloseFd(fd, "key directory " + dir.string());
}

}  // namespace

Result<PseudonymKey> LoadKeyFile(const std::filesystem::path& path) {
  const std::string what = "key file " + path.string();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, what + ": open");
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return ErrnoStatus(err, what + ": stat");
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return InvalidArgument(what + ": not a regular file");
  }
  if (static_cast<uint64_t>(st.st_size) > kMaxKeyBytes) {
    ::close(fd);
    return InvalidArgument(what + ": " + std::to_string(st.st_size) + " bytes; a key file holds " +
                           std::to_string(kMinKeyBytes) + " to " + std::to_string(kMaxKeyBytes) +
                           " bytes");
  }
  WarnIfModeOpenToOthers(st.st_mode, what);

  PseudonymKey key;
  key.bytes.resize(kMaxKeyBytes + 1);
  size_t length = 0;
  while (length < key.bytes.size()) {
    const ssize_t n = ::read(fd, key.bytes.data() + length, key.bytes.size() - length);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      OPENSSL_cleanse(key.bytes.data(), key.bytes.size());
      ::close(fd);
      return ErrnoStatus(err, what + ": read");
    }
    if (n == 0) break;
    length += static_cast<size_t>(n);
  }
  ::close(fd);
  OPENSSL_cleanse(key.bytes.data() + length, key.bytes.size() - length);
  key.bytes.resize(length);
  if (length < kMinKeyBytes || length > kMaxKeyBytes) {
    OPENSSL_cleanse(key.bytes.data(), key.bytes.size());
    return InvalidArgument(what + ": " + std::to_string(length) + " bytes; a key needs at least " +
                           std::to_string(kMinKeyBytes) + " (make one with `conduit keygen`)");
  }
  key.id = KeyId(key.bytes);
  return key;
}

Status WriteNewKeyFile(const std::filesystem::path& path) {
  const std::string what = "key file " + path.string();
  std::array<uint8_t, kNewKeyBytes> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    return Internal(what + ": RAND_bytes failed");
  }
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    const int err = errno;
    OPENSSL_cleanse(bytes.data(), bytes.size());
    if (err == EEXIST) return AlreadyExists(what + ": exists; a key is never overwritten");
    return ErrnoStatus(err, what + ": create");
  }
  // On any failure the partial file goes, so that a retry can create it.
  auto fail = [&](int err, const char* step) {
    OPENSSL_cleanse(bytes.data(), bytes.size());
    ::close(fd);
    ::unlink(path.c_str());
    return ErrnoStatus(err, what + ": " + step);
  };
  // The umask may have removed bits, never added any; set exactly owner read/write.
  if (::fchmod(fd, 0600) != 0) return fail(errno, "chmod");
  size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(errno, "write");
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) return fail(errno, "fsync");
  OPENSSL_cleanse(bytes.data(), bytes.size());
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(path.c_str());
    return ErrnoStatus(err, what + ": close");
  }
  return SyncDirectoryOf(path);
}

Pseudonymiser::Pseudonymiser(PseudonymKey key) : key_(std::move(key)) {
  if (key_.bytes.empty()) {
    std::fprintf(stderr, "Pseudonymiser: constructed with an empty key\n");
    std::abort();
  }
  if (key_.id.empty()) key_.id = KeyId(key_.bytes);
}

std::array<uint8_t, 32> Pseudonymiser::Mac(std::string_view domain, std::string_view value) const {
  std::string message;
  message.reserve(domain.size() + 1 + value.size());
  message.append(domain);
  message.push_back('\0');
  message.append(value);
  std::array<uint8_t, 32> out{};
  unsigned int length = 0;
  if (HMAC(EVP_sha256(), key_.bytes.data(), static_cast<int>(key_.bytes.size()),
           reinterpret_cast<const unsigned char*>(message.data()), message.size(), out.data(),
           &length) == nullptr ||
      length != out.size()) {
    std::fprintf(stderr, "Pseudonymiser: HMAC-SHA256 failed\n");
    std::abort();
  }
  return out;
}

std::string Pseudonymiser::Uid(std::string_view original) const {
  for (int attempt = 0; attempt < kMaxDerivations; ++attempt) {
    std::array<uint8_t, 32> mac = Mac(DerivationDomain("uid", attempt), original);
    // The last 16 bits mark the UID as ours, so a re-identifier can tell our pseudonyms from
    // UIDs a tool made (1 in 2^22 of those matches by chance). Low bits: the decimal's
    // leading digits stay random, so no short original is in every pseudonym.
    mac[14] = 0xC0;
    mac[15] = 0xDE;
    mac[6] = static_cast<uint8_t>((mac[6] & 0x0F) | 0x80);  // version 8 (bits 48-51 = 1000)
    mac[8] = static_cast<uint8_t>((mac[8] & 0x3F) | 0x80);  // variant (bits 64-65 = 10)
    unsigned __int128 value = 0;
    for (size_t i = 0; i < 16; ++i) value = (value << 8) | mac[i];
    char digits[40];
    size_t n = 0;
    do {
      digits[n++] = static_cast<char>('0' + static_cast<int>(value % 10));
      value /= 10;
    } while (value != 0);
    std::string uid = "2.25.";
    while (n > 0) uid.push_back(digits[--n]);
    if (original.size() < 6 || uid.find(original) == std::string::npos) return uid;
  }
  DerivationExhausted("UID");
}

namespace {

// "<prefix>" + 15 characters: base32 of the MAC, or for originals under 4 characters, of an
// alphabet without their characters (compared case-insensitively). Re-derived while the
// result contains the original, ignoring case. An original that is the prefix letter itself
// can only be kept out of the 15 characters, not out of the prefix.
template <typename MacFn>
std::string Substitute(char prefix, std::string_view domain, std::string_view original, MacFn mac) {
  if (original.empty()) return "";
  const std::string upper = Upper(original);
  std::string alphabet(kBase32);
  if (original.size() < 4) {
    std::erase_if(alphabet, [&](char c) { return upper.find(c) != std::string::npos; });
  }
  const bool only_body = upper.size() == 1 && upper[0] == prefix;
  for (int attempt = 0; attempt < kMaxDerivations; ++attempt) {
    std::string body =
        Render(mac(DerivationDomain(domain, attempt)), alphabet, kSubstituteBodyChars);
    std::string out = std::string(1, prefix) + body;
    const std::string& checked = only_body ? body : out;
    if (checked.find(upper) == std::string::npos) return out;
  }
  DerivationExhausted(domain);
}

}  // namespace

std::string Pseudonymiser::PatientId(std::string_view original) const {
  return Substitute('P', "patient_id", original,
                    [&](const std::string& domain) { return Mac(domain, original); });
}

std::string Pseudonymiser::AccessionNumber(std::string_view original) const {
  return Substitute('A', "accession_number", original,
                    [&](const std::string& domain) { return Mac(domain, original); });
}

std::string Pseudonymiser::PatientName(std::string_view original_patient_id) const {
  return "PSEUDO^" + PatientId(original_patient_id);
}

int Pseudonymiser::DateShiftDays(std::string_view original_patient_id, int min_days,
                                 int max_days) const {
  if (min_days > max_days) std::swap(min_days, max_days);
  const uint64_t range = static_cast<uint64_t>(static_cast<int64_t>(max_days) - min_days) + 1;
  // Rejection keeps the draw exactly uniform: values at or above the largest multiple of
  // `range` that fits are re-derived (probability below range / 2^64).
  const uint64_t limit = UINT64_MAX - (UINT64_MAX % range + 1) % range;
  for (int attempt = 0; attempt < kMaxDerivations; ++attempt) {
    const std::array<uint8_t, 32> mac =
        Mac(DerivationDomain("date_shift", attempt), original_patient_id);
    uint64_t value = 0;
    for (size_t i = 0; i < 8; ++i) value = (value << 8) | mac[i];
    if (value > limit) continue;
    return static_cast<int>(static_cast<int64_t>(min_days) + static_cast<int64_t>(value % range));
  }
  DerivationExhausted("date shift");
}

}  // namespace conduit
