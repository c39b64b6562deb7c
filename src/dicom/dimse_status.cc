#include "dicom/dimse_status.h"

#include <cstdio>
#include <string>

namespace conduit {

uint16_t StoreResponseStatus(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk:
      return kDimseSuccess;
    case StatusCode::kResourceExhausted:
      return 0xA700;  // Refused: Out of Resources
    case StatusCode::kInvalidArgument:
      return 0xC000;  // Error: Cannot understand
    case StatusCode::kPermissionDenied:
      return 0x0124;  // Refused: Not authorized
    default:
      return 0x0110;  // Processing failure
  }
}

uint16_t NResponseStatus(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk:
      return kDimseSuccess;
    case StatusCode::kResourceExhausted:
      return 0x0213;  // Resource limitation
    case StatusCode::kInvalidArgument:
      return 0x0106;  // Invalid attribute value
    case StatusCode::kPermissionDenied:
      return 0x0124;  // Refused: Not authorized
    default:
      return 0x0110;  // Processing failure
  }
}

std::string DimseStatusText(uint16_t dimse_status) {
  char text[8];
  std::snprintf(text, sizeof text, "0x%04X", dimse_status);
  return text;
}

Status StatusFromStoreResponse(uint16_t dimse_status, std::string_view what) {
  if (dimse_status == kDimseSuccess || dimse_status == 0x0001 ||
      (dimse_status & 0xF000) == 0xB000) {
    return Status::Ok();
  }
  const std::string message =
      std::string(what) + ": peer answered C-STORE with status " + DimseStatusText(dimse_status);
  if ((dimse_status & 0xFF00) == 0xA700) return Unavailable(message + " (out of resources)");
  return InvalidArgument(message);
}

}  // namespace conduit
