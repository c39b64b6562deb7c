#include "hl7/patient_key.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace conduit {

Result<PatientKeyer> PatientKeyer::FromSecret(std::string secret) {
  if (secret.size() < 32) {
    return InvalidArgument("hl7 patient key: secret of " + std::to_string(secret.size()) +
                           " bytes; at least 32 needed");
  }
  return PatientKeyer(std::move(secret));
}

std::string PatientKeyer::KeyOf(std::string_view patient_id) const {
  if (patient_id.empty()) return "-";
  const std::string message = "conduit-hl7-patient:v1:" + std::string(patient_id);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), secret_.data(), static_cast<int>(secret_.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &length);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length && out.size() < 32; ++i) {
    out.push_back(kHex[mac[i] >> 4]);
    out.push_back(kHex[mac[i] & 0xF]);
  }
  return out;
}

}  // namespace conduit
