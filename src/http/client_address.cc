#include "http/client_address.h"

#include <arpa/inet.h>

#include <optional>

namespace conduit {
namespace {

constexpr size_t kMaxHops = 64;

std::optional<in_addr> ParseIpv4(std::string_view text) {
  if (const size_t colon = text.find(':'); colon != std::string_view::npos) {
    const std::string_view port = text.substr(colon + 1);
    if (port.empty() || port.size() > 5 ||
        port.find_first_not_of("0123456789") != std::string_view::npos) {
      return std::nullopt;
    }
    text = text.substr(0, colon);
  }
  if (text.empty() || text.size() > 15) return std::nullopt;
  in_addr address{};
  if (inet_pton(AF_INET, std::string(text).c_str(), &address) != 1) return std::nullopt;
  return address;
}

std::string_view Trim(std::string_view s) {
  const size_t begin = s.find_first_not_of(" \t");
  if (begin == std::string_view::npos) return {};
  return s.substr(begin, s.find_last_not_of(" \t") - begin + 1);
}

std::string Dotted(const in_addr& address) {
  char text[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &address, text, sizeof(text));
  return text;
}

}  // namespace

ClientAddress ClientAddressOf(std::string_view peer, std::string_view forwarded_for,
                              const std::vector<AddressRange>& trusted_proxies) {
  ClientAddress out{std::string(peer), ""};
  const std::optional<in_addr> hop = ParseIpv4(peer);
  // Allowed() is true for every address when the list is empty: no proxy is trusted then.
  if (trusted_proxies.empty() || !hop || !Allowed(trusted_proxies, *hop)) return out;
  const std::string proxy = out.address;
  std::string_view rest = forwarded_for;
  for (size_t hops = 0; hops < kMaxHops && !Trim(rest).empty(); ++hops) {
    const size_t comma = rest.rfind(',');
    const std::string_view entry =
        Trim(comma == std::string_view::npos ? rest : rest.substr(comma + 1));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(0, comma);
    const std::optional<in_addr> address = ParseIpv4(entry);
    if (!address) break;
    out.address = Dotted(*address);
    out.via = proxy;
    if (!Allowed(trusted_proxies, *address)) break;
  }
  return out;
}

}  // namespace conduit
