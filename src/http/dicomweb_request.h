// Small readers of request parts shared by STOW-RS, the read side, UPS-RS and the admin API:
// UIDs and job ids in paths, the bearer token of the job endpoints, the base of the URLs
// answers carry, and who the client is.
// Pure functions; reentrant.
#pragma once

#include <httplib.h>

#include <optional>
#include <string>
#include <string_view>

#include "core/address_range.h"
#include "core/ids.h"
#include "http/client_address.h"
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

// The client of `req` for logs and the audit trail: ClientAddressOf (http/client_address.h)
// over its remote_addr and its X-Forwarded-For fields, joined in the order received.
ClientAddress ClientOf(const httplib::Request& req,
                       const std::vector<AddressRange>& trusted_proxies);

// Whether `token` opens the per-job endpoints of `job`: the job's own token (JobTokens), or
// the worklist token of the job's tool (a pull performer reads its inputs and stores its
// results with its one token). False for an empty token, or when the job cannot be read.
bool MayActOnJob(DicomwebContext& ctx, JobId job, std::string_view token);

}  // namespace conduit
