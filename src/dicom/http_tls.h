// TLS for Conduit's outbound HTTP clients (cpp-httplib over OpenSSL): a client for a URL with the
// trust's TLS settings (core/config.h TlsClientConfig), and what a failed handshake means, in
// words an operator can act on. The files are checked at start-up by core/tls_files.h.
#pragma once

#include <httplib.h>

#include <memory>
#include <string>

#include "core/config.h"
#include "core/http_url.h"
#include "core/status.h"

namespace conduit {

// A client for `url`'s origin. For https the server's certificate must chain to tls.ca_file
// (the system's CAs when empty), be valid now, name the URL's host and not be revoked by
// tls.crl_file's CRLs (when set); tls's client certificate, if any, is presented. `setting` names
// the config section (e.g. "dicomweb.tls") in messages. Errors: kFailedPrecondition if TLS settings
// are given for an http URL, or this build has no TLS and the URL is https, or the client
// certificate or key cannot be loaded.
Result<std::unique_ptr<httplib::Client>> MakeHttpClient(const HttpUrl& url,
                                                        const TlsClientConfig& tls,
                                                        const std::string& setting);

// For a request on `client` that failed with `error`: what went wrong with TLS, e.g. "the TLS
// certificate of host:443 was not accepted (certificate has expired)", with a hint naming
// `setting`. For an https peer that ended the connection mid-request (how a TLS 1.3 server
// refuses a client certificate) it says so, with that hint. Empty otherwise; the caller
// must have ruled out its own cancellation first.
std::string DescribeTlsError(httplib::Error error, const httplib::Client& client,
                             const HttpUrl& url, const std::string& setting);

}  // namespace conduit
