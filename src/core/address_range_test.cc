#include "core/address_range.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <random>

namespace conduit {
namespace {

in_addr Address(const char* text) {
  in_addr address{};
  EXPECT_EQ(inet_pton(AF_INET, text, &address), 1) << text;
  return address;
}

TEST(AddressRangeTest, AnAddressMatchesItselfOnly) {
  auto range = AddressRange::Parse("10.1.2.3");
  ASSERT_TRUE(range.ok()) << range.status().ToString();
  EXPECT_TRUE(range->Contains(Address("10.1.2.3")));
  EXPECT_FALSE(range->Contains(Address("10.1.2.4")));
  EXPECT_FALSE(range->Contains(Address("11.1.2.3")));
  EXPECT_EQ(range->ToString(), "10.1.2.3");
}

TEST(AddressRangeTest, ABlockMatchesItsAddresses) {
  auto range = AddressRange::Parse("10.1.2.0/24");
  ASSERT_TRUE(range.ok()) << range.status().ToString();
  EXPECT_TRUE(range->Contains(Address("10.1.2.0")));
  EXPECT_TRUE(range->Contains(Address("10.1.2.255")));
  EXPECT_FALSE(range->Contains(Address("10.1.3.0")));
  EXPECT_FALSE(range->Contains(Address("10.1.1.255")));
  EXPECT_EQ(range->ToString(), "10.1.2.0/24");
  auto everything = AddressRange::Parse("0.0.0.0/0");
  ASSERT_TRUE(everything.ok());
  EXPECT_TRUE(everything->Contains(Address("203.0.113.9")));
  auto odd = AddressRange::Parse("172.16.0.0/12");
  ASSERT_TRUE(odd.ok());
  EXPECT_TRUE(odd->Contains(Address("172.31.255.255")));
  EXPECT_FALSE(odd->Contains(Address("172.32.0.0")));
}

TEST(AddressRangeTest, RefusesWhatIsNotAnAddressOrBlock) {
  for (const char* text : {"", "ris.trust.nhs.uk", "localhost", "10.1.2", "10.1.2.3.4", "256.1.2.3",
                           "10.1.2.0/", "10.1.2.0/33", "10.1.2.0/-1", "10.1.2.0/24x",
                           "10.1.2.0/024", "::1", "10.1.2.3/24", " 10.1.2.3"}) {
    EXPECT_EQ(AddressRange::Parse(text).status().code(), StatusCode::kInvalidArgument) << text;
  }
  EXPECT_NE(AddressRange::Parse("10.1.2.3/24").status().message().find("beyond the /24"),
            std::string::npos);
}

TEST(AddressRangeTest, AnEmptyListAllowsEverything) {
  EXPECT_TRUE(Allowed({}, Address("192.0.2.1")));
  std::vector<AddressRange> ranges{*AddressRange::Parse("127.0.0.1"),
                                   *AddressRange::Parse("10.0.0.0/8")};
  EXPECT_TRUE(Allowed(ranges, Address("127.0.0.1")));
  EXPECT_TRUE(Allowed(ranges, Address("10.200.3.4")));
  EXPECT_FALSE(Allowed(ranges, Address("127.0.0.2")));
}

// Property: a block contains exactly the addresses that agree with it on its prefix bits, and
// what ToString prints parses back to the same block.
TEST(AddressRangeTest, BlocksAgreeWithTheirPrefixAndRoundTrip) {
  std::mt19937 random(20261130);
  for (int i = 0; i < 2000; ++i) {
    const uint32_t base = random();
    const int prefix_length = static_cast<int>(random() % 33);
    const uint32_t mask = prefix_length == 0 ? 0 : ~uint32_t{0} << (32 - prefix_length);
    in_addr network{htonl(base & mask)};
    char text[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &network, text, sizeof text);
    auto range = AddressRange::Parse(std::string(text) + "/" + std::to_string(prefix_length));
    ASSERT_TRUE(range.ok()) << range.status().ToString();
    auto again = AddressRange::Parse(range->ToString());
    ASSERT_TRUE(again.ok()) << range->ToString();
    for (int j = 0; j < 20; ++j) {
      const uint32_t probe = random();
      in_addr address{htonl(probe)};
      EXPECT_EQ(range->Contains(address), (probe & mask) == (base & mask));
      EXPECT_EQ(again->Contains(address), range->Contains(address));
    }
  }
}

}  // namespace
}  // namespace conduit
