// The one place where Conduit's Status codes meet DIMSE status codes (PS3.7 Annex C), in both
// directions: what the listener answers for a sink's outcome, and what a peer's answer means
// to the sender. Private to src/dicom.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/status.h"

namespace conduit {

inline constexpr uint16_t kDimseSuccess = 0x0000;

// C-STORE-RSP status: OK -> 0000, kResourceExhausted -> A700 (out of resources),
// kInvalidArgument -> C000 (cannot understand), kPermissionDenied -> 0124 (not authorized),
// others -> 0110 (processing failure).
uint16_t StoreResponseStatus(const Status& status);

// N-CREATE-RSP / N-SET-RSP status: OK -> 0000, kResourceExhausted -> 0213 (resource
// limitation), kInvalidArgument -> 0106 (invalid attribute value), kPermissionDenied -> 0124,
// others -> 0110.
uint16_t NResponseStatus(const Status& status);

// A peer's C-STORE-RSP status as a Status for the file `what`: success and warnings (0001,
// Bxxx) -> OK; A7xx (out of resources) -> kUnavailable; any other refusal -> kInvalidArgument.
Status StatusFromStoreResponse(uint16_t dimse_status, std::string_view what);

// "0xA700" style rendering for messages.
std::string DimseStatusText(uint16_t dimse_status);

}  // namespace conduit
