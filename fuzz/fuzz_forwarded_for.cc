// Fuzz target: X-Forwarded-For values as a reverse proxy (or a client through it) sends them.
// Byte 0 chooses the TCP peer (a trusted proxy, another, or a host name); the rest is the
// header. Checks ClientAddressOf against what the audit trail relies on.

#include <arpa/inet.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "http/client_address.h"

namespace {

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "fuzz_forwarded_for: property violated: %s\n", what);
  std::abort();
}

bool IsDottedIpv4(const std::string& text) {
  in_addr parsed{};
  if (inet_pton(AF_INET, text.c_str(), &parsed) != 1) return false;
  char back[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &parsed, back, sizeof(back));
  return text == back;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<conduit::AddressRange> proxies = {
      conduit::AddressRange::Parse("10.0.0.1").value(),
      conduit::AddressRange::Parse("172.16.0.0/12").value()};
  if (size == 0) return 0;
  const char* peers[] = {"10.0.0.1", "172.20.3.4", "198.51.100.9", "not-an-address"};
  const std::string peer = peers[data[0] % 4];
  const std::string_view header(reinterpret_cast<const char*>(data) + 1, size - 1);

  const conduit::ClientAddress got = conduit::ClientAddressOf(peer, header, proxies);
  const conduit::ClientAddress again = conduit::ClientAddressOf(peer, header, proxies);
  if (got.address != again.address || got.via != again.via) Fail("not deterministic");
  const bool trusted_peer = data[0] % 4 < 2;
  if (!trusted_peer && (got.address != peer || !got.via.empty())) {
    Fail("the header of an untrusted peer was believed");
  }
  if (got.via.empty()) {
    if (got.address != peer) Fail("an address other than the peer's without a via");
  } else {
    if (got.via != peer) Fail("via is not the peer");
    if (!IsDottedIpv4(got.address)) Fail("the client is not a dotted IPv4 address");
    if (header.find(got.address) == std::string_view::npos) Fail("the client is not in the header");
  }
  if (conduit::ClientAddressOf(peer, header, {}).address != peer) {
    Fail("the header was believed with no proxy configured");
  }
  return 0;
}
