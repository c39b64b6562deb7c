// Small readers of DICOMweb request parts shared by STOW-RS and the read side: UIDs and job ids
// in paths, and the bearer token of the job endpoints. Pure functions; reentrant.
#pragma once

#include <httplib.h>

#include <optional>
#include <string>
#include <string_view>

#include "core/ids.h"

namespace conduit {

// PS3.5 §9.1: 1 to 64 characters of digits and dots.
bool IsDicomUid(std::string_view s);

// A positive decimal job id, the whole of `text`; nullopt otherwise.
std::optional<JobId> ParseJobIdSegment(std::string_view text);

// The token of "Authorization: Bearer <token>" (scheme case-insensitive, spaces trimmed);
// empty if the header is absent or of another scheme.
std::string BearerToken(const httplib::Request& req);

}  // namespace conduit
