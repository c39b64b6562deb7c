// AddressRange: an IPv4 address or CIDR block ("10.1.2.3", "10.1.2.0/24") that a listener
// accepts connections from. Parse() refuses anything else (host names included: a peer is
// known by its address when it connects, and a name could be made to resolve elsewhere).
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace conduit {

class AddressRange {
 public:
  // Errors: kInvalidArgument naming what is wrong (never a host name lookup).
  static Result<AddressRange> Parse(std::string_view text);

  bool Contains(const in_addr& address) const;
  // "10.1.2.0/24", or the address alone for a /32.
  std::string ToString() const;

 private:
  AddressRange(uint32_t network, int prefix_length);
  uint32_t network_;  // host byte order, host bits zero
  int prefix_length_;
};

// Whether `address` is in any of `ranges`; an empty list allows every address.
bool Allowed(const std::vector<AddressRange>& ranges, const in_addr& address);

}  // namespace conduit
