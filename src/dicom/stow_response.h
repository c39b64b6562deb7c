// What a DICOMweb server's answer to a STOW-RS request (PS3.18 §10.5.3) says: which instances
// it stored and which failed, with their FailureReason. The body is the peer's, read as hostile.
// Pure functions; reentrant.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>

#include "core/status.h"

namespace conduit {

// FailureReason 0x0111: the instance was stored before (a chunk sent again after a retry).
constexpr uint16_t kDuplicateSopInstance = 0x0111;

// What a STOW-RS response body says.
struct StowResponse {
  size_t stored = 0;                           // ReferencedSOPSequence items
  size_t failed = 0;                           // FailedSOPSequence items
  std::map<uint16_t, size_t> failure_reasons;  // FailureReason -> items (0: none given)
  // The items' ReferencedSOPInstanceUIDs, where given: stored, and failed with their reason.
  std::set<std::string> stored_instances;
  std::map<std::string, uint16_t> failed_instances;
};

// Parses an application/dicom+json STOW-RS response (an object, or an array of one object);
// an empty body says nothing (all zero). Errors: kInvalidArgument if it is not such JSON.
Result<StowResponse> ParseStowResponse(std::string_view body);

// "0xA700 (out of resources)": a FailureReason and what it means.
std::string DescribeFailureReason(uint16_t reason);

}  // namespace conduit
