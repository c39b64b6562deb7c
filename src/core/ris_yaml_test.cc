#include "core/ris_yaml.h"

#include <gtest/gtest.h>

namespace conduit {
namespace {

using namespace std::chrono_literals;

TEST(RisConfigTest, ReadsEverySetting) {
  auto config = ParseConfig(R"(
ris:
  name: trust-ris
  host: ris.example
  port: 2575
  receiving_application: RIS
  receiving_facility: TRUST
  sending_application: CONDUIT
  sending_facility: HUB
  processing_id: T
  listen_port: 2576
  listen_allowed_hosts: [10.20.30.40, 10.21.0.0/16]
  ack_timeout: 5s
  retry: {initial_backoff: 2s, max_backoff: 1m, max_attempts: 10}
  send: {results: false, priority: orm}
  urgent_when: {codes: ["SCT:52101004"], score_at_least: 0.75}
)",
                            "c.yaml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  const RisConfig& r = config->ris;
  EXPECT_EQ(r.name, "trust-ris");
  EXPECT_EQ(r.host, "ris.example");
  EXPECT_EQ(r.port, 2575);
  EXPECT_EQ(r.receiving_facility, "TRUST");
  EXPECT_EQ(r.processing_id, "T");
  EXPECT_EQ(r.listen_port, 2576);
  ASSERT_EQ(r.listen_allowed_hosts.size(), 2u);
  EXPECT_EQ(r.listen_allowed_hosts[0].ToString(), "10.20.30.40");
  EXPECT_EQ(r.listen_allowed_hosts[1].ToString(), "10.21.0.0/16");
  EXPECT_EQ(r.ack_timeout, 5s);
  EXPECT_EQ(r.initial_backoff, 2s);
  EXPECT_EQ(r.max_backoff, 60s);
  EXPECT_EQ(r.max_attempts, 10);
  EXPECT_FALSE(r.send_results);
  EXPECT_EQ(r.priority_message, RisPriorityMessage::kOrm);
  EXPECT_EQ(r.urgent_when.codes, (std::vector<std::string>{"SCT:52101004"}));
  EXPECT_EQ(r.urgent_when.score_at_least, 0.75);
  EXPECT_TRUE(r.sends());
}

TEST(RisConfigTest, ReadsTlsForBothDirections) {
  auto config = ParseConfig(R"(
ris:
  host: ris.example
  port: 2575
  listen_port: 2576
  send: {priority: none}
  tls: {ca_file: ris-ca.pem, certificate_file: c.pem, key_file: c.key, crl_file: ris.crl}
)",
                            "c.yaml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  const RisConfig& r = config->ris;
  EXPECT_TRUE(r.tls);
  EXPECT_EQ(r.listen_tls.certificate_file, "c.pem");
  EXPECT_EQ(r.listen_tls.ca_file, "ris-ca.pem");
  EXPECT_EQ(r.listen_tls.crl_file, "ris.crl");
  EXPECT_TRUE(r.listen_tls.require_client_certificate);
  EXPECT_TRUE(r.send_tls.enabled);
  EXPECT_EQ(r.send_tls.ca_file, "ris-ca.pem");
  EXPECT_EQ(r.send_tls.client_certificate_file, "c.pem");
  EXPECT_EQ(r.send_tls.client_key_file, "c.key");
  EXPECT_FALSE(ParseConfig("ris: {listen_port: 2576}\n", "c.yaml")->ris.tls);
}

TEST(RisConfigTest, NoSectionMeansNoRis) {
  auto config = ParseConfig("node: {name: n}\n", "c.yaml");
  ASSERT_TRUE(config.ok());
  EXPECT_FALSE(config->ris.sends());
  EXPECT_EQ(config->ris.listen_port, 0);
}

TEST(RisConfigTest, MistakesAreNamedWithTheirKey) {
  struct Case {
    std::string yaml;
    std::string message_part;
  };
  const std::vector<Case> cases = {
      {"ris: {host: r}", "ris.port: is required with ris.host"},
      {"ris: {port: 2575}", "ris.port: needs ris.host"},
      {"ris: {name: ris}", "neither host"},
      {"ris: {listen_port: 70000}", "ris.listen_port: out of range"},
      {"ris: {listen_port: 2576, listen_allowed_hosts: [10.0.0.1, ris.trust.nhs.uk]}",
       "ris.listen_allowed_hosts[1]: 'ris.trust.nhs.uk' is not an IPv4 address"},
      {"ris: {listen_port: 2576, listen_allowed_hosts: [10.0.0.1/8]}", "beyond the /8 prefix"},
      {"ris: {listen_port: 2576, tls: {certificate_file: c.pem, key_file: c.key}}",
       "ris.tls.ca_file: is required"},
      {"ris: {listen_port: 2576, tls: {ca_file: ca.pem}}",
       "ris.tls.certificate_file: is required with ris.listen_port"},
      {"ris: {listen_port: 2576, tls: {ca_file: ca.pem, certificate_file: c.pem}}",
       "ris.tls: certificate_file and key_file go together"},
      {"ris: {listen_port: 2576, tls: {ca_file: ca.pem, client_key_file: k}}",
       "ris.tls.client_key_file: unknown key"},
      {"ris: {host: r, port: 1, send: {priority: none}, listen_allowed_hosts: [10.0.0.1]}",
       "ris.listen_allowed_hosts: needs ris.listen_port"},
      {"ris: {host: r, port: 1, sending_application: 'A|B'}", "ris.sending_application: may not"},
      {"ris: {host: r, port: 1, sending_application: ''}", "ris.sending_application: is required"},
      {"ris: {host: r, port: 1, processing_id: X}", "ris.processing_id"},
      {"ris: {host: r, port: 1, send: {priority: adt}}", "ris.send.priority: expected 'omi'"},
      {"ris: {host: r, port: 1}", "ris.send.priority: priority updates are on (omi)"},
      {"ris: {host: r, port: 1, urgent_when: {codes: [52101004]}}",
       "ris.urgent_when.codes[0]: expected SCHEME:VALUE"},
      {"ris: {host: r, port: 1, send: {priority: none}, retry: {initial_backoff: 10s, "
       "max_backoff: 1s}}",
       "ris.retry.max_backoff: is shorter"},
      {"ris: {host: r, port: 1, send: {priority: none}, ack_timeout: 1ms}", "ris.ack_timeout"},
      {"ris: {host: r, port: 1, send: {priority: none}, name: 'a b'}", "ris.name"},
      {"ris: {host: r, port: 1, send: {priority: none}, colour: red}", "ris.colour"},
  };
  for (const Case& c : cases) {
    auto config = ParseConfig(c.yaml, "c.yaml");
    ASSERT_FALSE(config.ok()) << c.yaml;
    EXPECT_NE(config.status().message().find(c.message_part), std::string::npos)
        << c.yaml << " -> " << config.status().message();
  }
}

}  // namespace
}  // namespace conduit
