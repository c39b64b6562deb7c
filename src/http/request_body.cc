#include "http/request_body.h"

#include <cctype>
#include <charconv>
#include <string_view>

namespace conduit {

Result<BodyFraming> FramingOf(const httplib::Request& req) {
  BodyFraming framing;
  std::string encoding = req.get_header_value("Transfer-Encoding");
  for (char& c : encoding) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  framing.chunked = encoding.find("chunked") != std::string::npos;
  if (!framing.chunked && req.has_header("Content-Length")) {
    const std::string field = req.get_header_value("Content-Length");
    std::string_view text = field;
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
    uint64_t n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (text.empty() || end != text.data() + text.size() ||
        (ec != std::errc() && ec != std::errc::result_out_of_range)) {
      return InvalidArgument("Content-Length: not a decimal number");
    }
    framing.length = ec == std::errc::result_out_of_range ? UINT64_MAX : n;
  }
  return framing;
}

Result<std::string> ReadSmallBody(const httplib::Request& req, const httplib::ContentReader& reader,
                                  size_t max_bytes) {
  ASSIGN_OR_RETURN(BodyFraming framing, FramingOf(req));
  const std::string limit =
      "request body: over the limit of " + std::to_string(max_bytes) + " bytes";
  if (framing.length && *framing.length > max_bytes) return ResourceExhausted(limit);
  std::string body;
  if (!framing.present()) return body;
  bool too_large = false;
  bool read = reader([&](const char* data, size_t n) {
    if (body.size() + n > max_bytes) {
      too_large = true;
      return false;
    }
    body.append(data, n);
    return true;
  });
  if (too_large) return ResourceExhausted(limit);
  if (!read) {
    return InvalidArgument("request body: ended early or stalled after " +
                           std::to_string(body.size()) + " bytes");
  }
  return body;
}

bool DiscardBody(const httplib::Request& req, httplib::Response& res,
                 const httplib::ContentReader& reader, uint64_t max_bytes) {
  auto framing = FramingOf(req);
  if (!framing.ok()) return false;
  if (!framing->present()) return true;
  if (framing->length && *framing->length > max_bytes) return false;
  const int status = res.status;
  uint64_t read = 0;
  const bool through = reader([&](const char*, size_t n) {
    read += n;
    return read <= max_bytes;
  });
  res.status = status;
  return through;
}

}  // namespace conduit
