// Small readers of DICOMweb request parts shared by STOW-RS and the read side: UIDs and job ids
// in paths, the bearer token of the job endpoints, and the base of the URLs answers carry.
// Pure functions; reentrant.
#pragma once

#include <httplib.h>

#include <optional>
#include <string>
#include <string_view>

#include "core/ids.h"
#include "http/dicomweb_context.h"

namespace conduit {

// A positive decimal job id, the whole of `text`; nullopt otherwise.
std::optional<JobId> ParseJobIdSegment(std::string_view text);

// The token of "Authorization: Bearer <token>" (scheme case-insensitive, spaces trimmed);
// empty if the header is absent or of another scheme.
std::string BearerToken(const httplib::Request& req);

// What the client reached us by, for the URLs in answers (Retrieve URL, QIDO-RS results):
// http.public_url, else the scheme this front end serves (https with http.tls) and the Host
// the client used, or bind:port when Host is absent or holds anything but a host name, IPv4
// or bracketed IPv6 address and port. No trailing slash.
std::string RequestBaseUrl(const Config& config, const httplib::Request& req);

// Whether `token` opens the per-job endpoints of `job`: the job's own token (JobTokens), or
// the worklist token of the job's tool (a pull performer reads its inputs and stores its
// results with its one token). False for an empty token, or when the job cannot be read.
bool MayActOnJob(DicomwebContext& ctx, JobId job, std::string_view token);

}  // namespace conduit
