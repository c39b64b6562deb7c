#include "http/client_address.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace conduit {
namespace {

std::vector<AddressRange> Ranges(const std::vector<std::string>& texts) {
  std::vector<AddressRange> out;
  for (const std::string& t : texts) out.push_back(AddressRange::Parse(t).value());
  return out;
}

const std::vector<AddressRange> kProxies = Ranges({"10.0.0.1", "10.1.0.0/16"});

struct Case {
  std::string peer, forwarded_for, address, via;
};

TEST(ClientAddressTest, BelievesTheHeaderOnlyFromTrustedProxies) {
  for (const Case& c : std::vector<Case>{
           // Direct clients, whatever they claim.
           {"203.0.113.9", "", "203.0.113.9", ""},
           {"203.0.113.9", "198.51.100.1", "203.0.113.9", ""},
           {"127.0.0.1", "10.0.0.1", "127.0.0.1", ""},
           // Through the proxy: the nearest untrusted hop from the right.
           {"10.0.0.1", "198.51.100.7", "198.51.100.7", "10.0.0.1"},
           {"10.0.0.1", " 198.51.100.7 ,\t10.1.2.3 ", "198.51.100.7", "10.0.0.1"},
           {"10.0.0.1", "6.6.6.6, 198.51.100.7", "198.51.100.7", "10.0.0.1"},
           {"10.0.0.1", "198.51.100.7:51234", "198.51.100.7", "10.0.0.1"},
           // Every hop trusted: the leftmost.
           {"10.0.0.1", "10.1.0.9, 10.1.0.8", "10.1.0.9", "10.0.0.1"},
           // Nothing usable: the proxy is all that is known.
           {"10.0.0.1", "", "10.0.0.1", ""},
           {"10.0.0.1", "unknown", "10.0.0.1", ""},
           {"10.0.0.1", "[2001:db8::1]", "10.0.0.1", ""},
           {"10.0.0.1", "198.51.100.7,", "10.0.0.1", ""},
           {"10.0.0.1", "198.51.100.007", "10.0.0.1", ""},
           {"10.0.0.1", "198.51.100.7:99999x", "10.0.0.1", ""},
           // A bad entry ends the walk at the last trusted hop reached.
           {"10.0.0.1", "198.51.100.7, garbage, 10.1.0.9", "10.1.0.9", "10.0.0.1"},
       }) {
    const ClientAddress got = ClientAddressOf(c.peer, c.forwarded_for, kProxies);
    EXPECT_EQ(got.address, c.address) << c.peer << " / " << c.forwarded_for;
    EXPECT_EQ(got.via, c.via) << c.peer << " / " << c.forwarded_for;
  }
  EXPECT_EQ(ClientAddressOf("10.0.0.1", "198.51.100.7", {}).address, "10.0.0.1")
      << "no proxies configured: the header is ignored";
}

TEST(ClientAddressTest, WalksAtMost64Hops) {
  std::string chain = "198.51.100.7";
  for (int i = 0; i < 64; ++i) chain += ", 10.1.0." + std::to_string(i % 250 + 1);
  EXPECT_EQ(ClientAddressOf("10.0.0.1", chain, kProxies).address, "10.1.0.1")
      << "the 64th hop from the right ends the walk, still a trusted one";
}

// Property: whatever the header holds, the answer is the peer, or an IPv4 address in dotted
// form reached through trusted hops only, and via is the peer exactly when it is not.
TEST(ClientAddressTest, AnyHeaderGivesThePeerOrAnAddressItNames) {
  std::mt19937 rng(20261201);
  const std::string alphabet = "0123456789.,: \t10.1.0.198.51.100.7abc[]";
  for (int round = 0; round < 20000; ++round) {
    std::string header;
    const size_t length = rng() % 48;
    for (size_t i = 0; i < length; ++i) header += alphabet[rng() % alphabet.size()];
    const ClientAddress got = ClientAddressOf("10.0.0.1", header, kProxies);
    if (got.via.empty()) {
      EXPECT_EQ(got.address, "10.0.0.1") << header;
      continue;
    }
    EXPECT_EQ(got.via, "10.0.0.1") << header;
    in_addr parsed{};
    ASSERT_EQ(inet_pton(AF_INET, got.address.c_str(), &parsed), 1) << header;
    EXPECT_NE(header.find(got.address), std::string::npos) << header;
  }
}

}  // namespace
}  // namespace conduit
