// PatientKeyer: the keyed hash that stands for a patient in the HL7 outbox and the RIS order
// table (patient_key), so messages are kept in order per patient without the patient ID in
// clear. HMAC-SHA256(secret, "conduit-hl7-patient:v1:" + patient ID), 32 hex digits. The
// gateway uses the pseudonymisation key as the secret (the label keeps the two uses apart).
// Thread safety: const methods may be called concurrently.
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

namespace conduit {

class PatientKeyer {
 public:
  // `secret`: at least 32 bytes. Errors: kInvalidArgument if shorter (its length is named,
  // never its content).
  static Result<PatientKeyer> FromSecret(std::string secret);

  // 32 lower-case hex digits; "-" for an empty patient ID (messages without one share a key).
  std::string KeyOf(std::string_view patient_id) const;

 private:
  explicit PatientKeyer(std::string secret) : secret_(std::move(secret)) {}
  std::string secret_;
};

}  // namespace conduit
