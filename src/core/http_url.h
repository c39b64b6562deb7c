// HttpUrl: an http:// or https:// base URL as tools are configured with
// ("https://ai.vendor.example:8443/dicom-web"): scheme, host, port and a path prefix; no user
// info, query or fragment.
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

namespace conduit {

struct HttpUrl {
  std::string scheme;  // "http" or "https"
  std::string host;    // a name, an IPv4 address or a bracketed IPv6 address ("[::1]")
  int port = 0;        // the URL's, or 80/443 by scheme
  std::string path;    // "" or "/a/b": no trailing slash

  // "scheme://host:port", what an HTTP client connects to.
  std::string Origin() const;
  // Origin() + path.
  std::string ToString() const;
};

// Parses `text` as scheme://host[:port][/path]. Errors: kInvalidArgument saying what is wrong
// (another scheme, an empty or malformed host, a port outside 1..65535, user info, a query or
// fragment, whitespace or control characters).
Result<HttpUrl> ParseHttpUrl(std::string_view text);

}  // namespace conduit
