// Pseudonymiser: keyed, deterministic substitutes for identifiers. The key is a secret that
// stays in the trust (a key file of >= 32 raw bytes); the same key and original always give
// the same pseudonym, so references stay consistent across instances, series and studies.
// Substitutes are derived with HMAC-SHA256 and never contain the original. Re-identification
// does not invert them: it looks them up in the crosswalk recorded when they were made, so a
// new key (rotation) never loses earlier results. Never log a key or an original.
// Thread safety: const methods may be called concurrently.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace conduit {

struct PseudonymKey {
  std::vector<uint8_t> bytes;
  // First 16 hex digits of SHA-256 of the key: names the key in audit and crosswalk, safely.
  std::string id;
};

// Reads a key file as raw bytes. Errors: kInvalidArgument if shorter than 32 bytes (the
// message says how long it is, never what it holds), kNotFound, kPermissionDenied.
Result<PseudonymKey> LoadKeyFile(const std::filesystem::path& path);
// Writes 32 random bytes (OpenSSL RAND_bytes) to a new file readable only by its owner
// (0600). Errors: kAlreadyExists if the file exists (a key is never overwritten).
Status WriteNewKeyFile(const std::filesystem::path& path);

class Pseudonymiser {
 public:
  explicit Pseudonymiser(PseudonymKey key);

  // "2.25." + the decimal of a 128-bit value (an RFC 9562 version 8 UUID whose last 16 bits
  // are 0xC0DE, the mark of our pseudonyms) derived from HMAC(key, "uid\0" + uid). At most 44
  // characters. Never contains an original of 6 or more characters (re-derived with a counter if it
  // would; real UIDs are longer).
  std::string Uid(std::string_view original) const;
  // 16 characters: "P"/"A" and 15 base32 characters [A-Z2-7] of the HMAC: Patient ID and
  // Accession Number substitutes. An empty original gives "". Never contains the original:
  // re-derived with a counter if it would, and for originals under 4 characters drawn from
  // an alphabet without their characters.
  std::string PatientId(std::string_view original) const;
  std::string AccessionNumber(std::string_view original) const;
  // Patient's Name for a patient: "PSEUDO^" + the pseudonymous Patient ID.
  std::string PatientName(std::string_view original_patient_id) const;
  // Days to move every date of this patient back by, in [min_days, max_days].
  int DateShiftDays(std::string_view original_patient_id, int min_days, int max_days) const;

  const std::string& key_id() const { return key_.id; }

 private:
  // HMAC-SHA256(key, domain + '\0' + value).
  std::array<uint8_t, 32> Mac(std::string_view domain, std::string_view value) const;
  PseudonymKey key_;
};

}  // namespace conduit
