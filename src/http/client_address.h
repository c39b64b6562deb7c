// ClientAddress: who an HTTP request came from, for logs and the audit trail. Behind a reverse
// proxy listed in http.trusted_proxies, the client is the one X-Forwarded-For names: reading
// the header's entries from the right (the nearest hop first), the first that is not itself a
// trusted proxy; the proxy (the TCP peer) is kept as `via`. From any other peer the header is
// ignored, so that no client can have itself recorded as someone else. An entry that is not an
// IPv4 address (optionally with ":port") ends the walk, as does the 64th: the client is then
// the last trusted hop reached. For an httplib request: ClientOf (http/dicomweb_request.h).
// Pure function; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/address_range.h"

namespace conduit {

struct ClientAddress {
  std::string address;  // the client's
  std::string via;      // the trusted proxy it came through; empty when it came directly
};

// `peer`: the TCP peer's address; `forwarded_for`: every X-Forwarded-For field value of the
// request, joined by commas in the order received ("" when none).
ClientAddress ClientAddressOf(std::string_view peer, std::string_view forwarded_for,
                              const std::vector<AddressRange>& trusted_proxies);

}  // namespace conduit
