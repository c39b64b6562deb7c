#include "core/http_url.h"

#include <algorithm>
#include <cctype>

namespace conduit {
namespace {

bool IsHostChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
}

bool IsIpv6Char(char c) {
  return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.';
}

}  // namespace

std::string HttpUrl::Origin() const { return scheme + "://" + host + ":" + std::to_string(port); }

std::string HttpUrl::ToString() const { return Origin() + path; }

Result<HttpUrl> ParseHttpUrl(std::string_view text) {
  const std::string quoted = "'" + std::string(text.substr(0, 200)) + "'";
  auto bad = [&](const std::string& why) { return InvalidArgument("URL " + quoted + ": " + why); };
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return bad("contains whitespace or a control character");
  }
  HttpUrl url;
  std::string_view rest;
  if (text.substr(0, 7) == "http://") {
    url.scheme = "http";
    url.port = 80;
    rest = text.substr(7);
  } else if (text.substr(0, 8) == "https://") {
    url.scheme = "https";
    url.port = 443;
    rest = text.substr(8);
  } else {
    return bad("expected http://host[:port][/path] or https://host[:port][/path]");
  }
  if (rest.find_first_of("?#") != std::string_view::npos) {
    return bad("a base URL takes no query or fragment");
  }
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
  if (authority.find('@') != std::string_view::npos) {
    return bad("user info in a URL is not accepted (use auth_token_file)");
  }
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos || close == 1) return bad("malformed IPv6 address");
    const std::string_view v6 = authority.substr(1, close - 1);
    if (!std::all_of(v6.begin(), v6.end(), IsIpv6Char)) return bad("malformed IPv6 address");
    url.host = std::string(authority.substr(0, close + 1));
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad("unexpected text after the IPv6 address");
      port_text = after.substr(1);
      if (port_text.empty()) return bad("empty port");
    }
  } else {
    const size_t colon = authority.find(':');
    url.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return bad("empty port");
    }
    if (url.host.empty()) return bad("no host");
    if (!std::all_of(url.host.begin(), url.host.end(), IsHostChar)) {
      return bad("the host may hold letters, digits, '.', '-' and '_' only");
    }
  }
  if (!port_text.empty()) {
    if (port_text.size() > 5 || !std::all_of(port_text.begin(), port_text.end(), [](char c) {
          return std::isdigit(static_cast<unsigned char>(c));
        })) {
      return bad("the port must be a number in 1..65535");
    }
    const int port = std::stoi(std::string(port_text));
    if (port < 1 || port > 65535) return bad("the port must be a number in 1..65535");
    url.port = port;
  }
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  url.path = std::string(path);
  return url;
}

}  // namespace conduit
