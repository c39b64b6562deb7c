#include "core/address_range.h"

#include <arpa/inet.h>

#include <charconv>

namespace conduit {
namespace {

uint32_t MaskOf(int prefix_length) {
  return prefix_length == 0 ? 0 : ~uint32_t{0} << (32 - prefix_length);
}

}  // namespace

AddressRange::AddressRange(uint32_t network, int prefix_length)
    : network_(network), prefix_length_(prefix_length) {}

Result<AddressRange> AddressRange::Parse(std::string_view text) {
  const std::string what = "'" + std::string(text) + "'";
  const size_t slash = text.find('/');
  const std::string address(text.substr(0, slash));
  in_addr parsed{};
  if (address.empty() || inet_pton(AF_INET, address.c_str(), &parsed) != 1) {
    return InvalidArgument(what + " is not an IPv4 address (a.b.c.d) or block (a.b.c.d/n)");
  }
  int prefix_length = 32;
  if (slash != std::string_view::npos) {
    const std::string_view digits = text.substr(slash + 1);
    const auto [end, error] =
        std::from_chars(digits.data(), digits.data() + digits.size(), prefix_length);
    if (digits.empty() || digits.size() > 2 || error != std::errc() ||
        end != digits.data() + digits.size() || prefix_length < 0 || prefix_length > 32) {
      return InvalidArgument(what + ": the prefix length after '/' must be 0 to 32");
    }
  }
  const uint32_t host_order = ntohl(parsed.s_addr);
  if ((host_order & ~MaskOf(prefix_length)) != 0) {
    return InvalidArgument(what + ": address bits set beyond the /" +
                           std::to_string(prefix_length) + " prefix (did you mean the block's " +
                           "first address?)");
  }
  return AddressRange(host_order, prefix_length);
}

bool AddressRange::Contains(const in_addr& address) const {
  return (ntohl(address.s_addr) & MaskOf(prefix_length_)) == network_;
}

std::string AddressRange::ToString() const {
  in_addr address{htonl(network_)};
  char text[INET_ADDRSTRLEN] = "";
  inet_ntop(AF_INET, &address, text, sizeof text);
  return prefix_length_ == 32 ? std::string(text)
                              : std::string(text) + "/" + std::to_string(prefix_length_);
}

bool Allowed(const std::vector<AddressRange>& ranges, const in_addr& address) {
  if (ranges.empty()) return true;
  for (const AddressRange& range : ranges) {
    if (range.Contains(address)) return true;
  }
  return false;
}

}  // namespace conduit
