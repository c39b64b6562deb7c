// Request bodies for handlers registered with httplib's content-reader overloads: httplib
// reads no body for those, so each handler reads its own, with its own limit (the admin API a
// small string, STOW-RS a stream to disk). A handler that leaves a body unread must close the
// connection ("Connection: close"), or the unread bytes would be taken for the next request.
#pragma once

#include <httplib.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "core/status.h"

namespace conduit {

// How a request's body is framed. Neither chunked nor Content-Length: no body (RFC 9112 6.3).
struct BodyFraming {
  bool chunked = false;
  std::optional<uint64_t> length;  // Content-Length (saturated at UINT64_MAX); unset if chunked
  bool present() const { return chunked || (length && *length > 0); }
};

// Errors: kInvalidArgument for a Content-Length that is not a decimal number.
Result<BodyFraming> FramingOf(const httplib::Request& req);

// Reads the whole body (empty if there is none) into a string of at most `max_bytes`.
// Errors: kResourceExhausted when it is longer (by Content-Length, before reading anything);
// kInvalidArgument for a bad Content-Length or a body that ends early or stalls.
Result<std::string> ReadSmallBody(const httplib::Request& req, const httplib::ContentReader& reader,
                                  size_t max_bytes);

// Reads and drops the body of a refused request if it is at most `max_bytes`, so the
// connection can serve the next request and the client surely reads the refusal. True if
// the body (or its absence) was read through; false if it was left unread. The response
// already written in `res` is kept (httplib sets a status when reading fails).
bool DiscardBody(const httplib::Request& req, httplib::Response& res,
                 const httplib::ContentReader& reader, uint64_t max_bytes);

}  // namespace conduit
