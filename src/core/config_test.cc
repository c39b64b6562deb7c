#include "core/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

namespace conduit {
namespace {

// The shape the acceptance checks use (issue #2); it must keep parsing.
constexpr const char* kIssueExample = R"(node: {name: demo-trust, data_dir: ./var}
dicom: {ae_title: CONDUIT, port: 11112}
http: {port: 8080}
destinations:
  - {name: pacs, ae_title: ORTHANC, host: 127.0.0.1, port: 4242}
tools:
  - {name: reference, kind: executable, command: [build/conduit-reference-tool]}
routes:
  - {name: ct, when: {Modality: CT}, tool: reference, results_to: [pacs], stable_after: 5s}
)";

TEST(ConfigTest, ParsesTheIssueExample) {
  auto config = ParseConfig(kIssueExample, "example.yaml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->node.name, "demo-trust");
  EXPECT_EQ(config->node.data_dir, "./var");
  EXPECT_EQ(config->dicom.ae_title.str(), "CONDUIT");
  EXPECT_EQ(config->dicom.port, 11112);
  EXPECT_EQ(config->http.port, 8080);
  ASSERT_EQ(config->destinations.size(), 1u);
  EXPECT_EQ(config->destinations[0].ae_title.str(), "ORTHANC");
  EXPECT_EQ(config->destinations[0].port, 4242);
  ASSERT_EQ(config->tools.size(), 1u);
  EXPECT_EQ(config->tools[0].kind, ToolKind::kExecutable);
  EXPECT_EQ(config->tools[0].command, std::vector<std::string>{"build/conduit-reference-tool"});
  ASSERT_EQ(config->routes.size(), 1u);
  const RouteConfig& route = config->routes[0];
  EXPECT_EQ(route.stable_after, std::chrono::seconds(5));
  ASSERT_EQ(route.when.size(), 1u);
  EXPECT_EQ(route.when[0].attribute, "Modality");
  EXPECT_EQ(route.when[0].patterns, std::vector<std::string>{"CT"});
  EXPECT_EQ(route.results_to, std::vector<std::string>{"pacs"});
  EXPECT_EQ(route.select, RouteScope::kStudy);
  EXPECT_EQ(route.on_late, LateInstancePolicy::kIgnore);
}

TEST(ConfigTest, AnMllpListenerOpenToEveryAddressIsWarnedAbout) {
  auto open = ParseConfig("ris: {listen_port: 2576}\n", "c.yaml");
  ASSERT_TRUE(open.ok()) << open.status().ToString();
  const std::vector<std::string> warnings = ExposureWarnings(*open);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("ris.listen_allowed_hosts"), std::string::npos) << warnings[0];
  for (const char* yaml : {"ris: {listen_port: 2576, listen_allowed_hosts: [10.1.2.3]}\n",
                           "ris: {listen_port: 2576, listen_bind: 127.0.0.1}\n", "node: {}\n"}) {
    auto config = ParseConfig(yaml, "c.yaml");
    ASSERT_TRUE(config.ok()) << yaml << config.status().ToString();
    EXPECT_TRUE(ExposureWarnings(*config).empty()) << yaml;
  }
}

TEST(ConfigTest, CallingAeTitlesMayBeBoundToAddresses) {
  auto config = ParseConfig(R"(
dicom:
  allowed_calling_aes:
    - CT1
    - {ae_title: MR1, hosts: [10.1.2.3, 10.9.0.0/16]}
)",
                            "c.yaml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->dicom.allowed_calling_aes, (std::vector<std::string>{"CT1", "MR1"}));
  ASSERT_EQ(config->dicom.calling_ae_hosts.size(), 1u);
  const std::vector<AddressRange>& hosts = config->dicom.calling_ae_hosts.at("MR1");
  ASSERT_EQ(hosts.size(), 2u);
  EXPECT_EQ(hosts[0].ToString(), "10.1.2.3");
  EXPECT_EQ(hosts[1].ToString(), "10.9.0.0/16");
}

TEST(ConfigTest, ParsesListsOfPatternsAndOptions) {
  auto config = ParseConfig(R"(
tools:
  - name: node
    kind: dimse
    ae_title: AITOOL
    host: 127.0.0.1
    port: 4000
    max_concurrent: 3
    results_stable_after: 2s
routes:
  - name: chest
    when: {Modality: [CR, DX], BodyPartExamined: "CHEST*", StudyDescription: "!*PAED*"}
    tool: node
    select: series
    on_late: rerun
  - {name: evaluation, tool: node, shadow: true}
retry: {max_attempts: 3, initial_backoff: 1s, max_backoff: 1m}
)",
                            "t.yaml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->tools[0].kind, ToolKind::kDimse);
  EXPECT_EQ(config->tools[0].max_concurrent, 3);
  EXPECT_EQ(config->routes[0].when.size(), 3u);
  EXPECT_EQ(config->routes[0].select, RouteScope::kSeries);
  EXPECT_EQ(config->routes[0].on_late, LateInstancePolicy::kRerun);
  EXPECT_FALSE(config->routes[0].shadow);
  EXPECT_TRUE(config->routes[1].shadow);
  EXPECT_EQ(config->retry.max_attempts, 3);
  EXPECT_EQ(config->retry.max_backoff, std::chrono::minutes(1));
}

TEST(ConfigTest, ParsesStorageCommitmentOfADestination) {
  auto config = ParseConfig(R"(
destinations:
  - {name: pacs, ae_title: PACS, host: 10.0.0.5, storage_commitment: true, commitment_timeout: 24h}
  - {name: viewer, ae_title: VIEW, host: 10.0.0.6}
)",
                            "t.yaml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_TRUE(config->destinations[0].storage_commitment);
  EXPECT_EQ(config->destinations[0].commitment_timeout, std::chrono::hours(24));
  EXPECT_FALSE(config->destinations[1].storage_commitment);
  EXPECT_EQ(config->destinations[1].commitment_timeout, std::chrono::minutes(2));
}

TEST(ConfigTest, ParsesADestinationThatTakesStowRs) {
  auto config = ParseConfig(R"(
destinations:
  - name: cloud
    timeout: 1m
    dicomweb: {url: "https://pacs.example.nhs.uk/dicom-web/", auth_token_file: t/pacs.token,
               chunk_bytes: 1048576, tls: {ca_file: ca.pem}}
  - {name: orthanc, dicomweb: {url: "http://127.0.0.1:8042/dicom-web"}}
  - {name: dimse, ae_title: PACS, host: h}
)",
                            "t.yaml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  const DestinationConfig& cloud = config->destinations[0];
  EXPECT_TRUE(cloud.stow());
  EXPECT_EQ(cloud.dicomweb_url, "https://pacs.example.nhs.uk/dicom-web");
  EXPECT_EQ(cloud.auth_token_file, "t/pacs.token");
  EXPECT_EQ(cloud.chunk_bytes, 1048576u);
  EXPECT_EQ(cloud.timeout, std::chrono::minutes(1));
  EXPECT_TRUE(cloud.tls.enabled);
  EXPECT_EQ(cloud.tls.ca_file, "ca.pem");
  EXPECT_TRUE(config->destinations[1].stow());
  EXPECT_EQ(config->destinations[1].chunk_bytes, 64u << 20);
  EXPECT_FALSE(config->destinations[1].tls.enabled);
  EXPECT_FALSE(config->destinations[2].stow());
}

TEST(ConfigTest, ParsesGovernanceAndToolGovernanceFields) {
  auto config = ParseConfig(R"(
governance: {policy: /etc/conduit/policy.yaml, key_file: /etc/conduit/trust.key}
tools:
  - name: acme-cxr
    kind: dimse
    ae_title: ACMECXR
    host: 10.0.0.5
    hosting_region: UK
    category: triage
    retain: [retain_patient_characteristics]
  - name: local
    kind: executable
    command: [/opt/tool]
    deidentify: true
  - name: inside
    kind: executable
    command: [/opt/tool2]
)",
                            "t.yaml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->governance.policy_file, "/etc/conduit/policy.yaml");
  EXPECT_EQ(config->governance.key_file, "/etc/conduit/trust.key");
  const ToolConfig& remote = config->tools[0];
  EXPECT_EQ(remote.hosting_region, "UK");
  EXPECT_EQ(remote.category, "triage");
  EXPECT_EQ(remote.retain, std::vector<std::string>{"retain_patient_characteristics"});
  EXPECT_TRUE(remote.Deidentified()) << "a dimse tool is outside the trust";
  EXPECT_TRUE(config->tools[1].deidentify);
  EXPECT_TRUE(config->tools[1].Deidentified());
  EXPECT_FALSE(config->tools[2].Deidentified()) << "a local executable by default is not";
  EXPECT_TRUE(config->tools[2].retain.empty());
}

TEST(ConfigTest, NoGovernanceSectionMeansBuiltInPolicyAndDefaultKey) {
  auto config = ParseConfig(kIssueExample, "example.yaml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_TRUE(config->governance.policy_file.empty());
  EXPECT_TRUE(config->governance.key_file.empty());
}

TEST(ConfigTest, RelativeGovernancePathsAreResolvedAgainstTheConfigFilesFolder) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("conduit-config-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir / "etc");
  const auto file = dir / "etc" / "conduit.yaml";
  {
    std::ofstream out(file);
    out << "governance: {policy: policies/national.yaml, key_file: /srv/keys/trust.key}\n";
  }
  auto config = LoadConfigFile(file);
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->governance.policy_file, dir / "etc" / "policies" / "national.yaml");
  EXPECT_EQ(config->governance.key_file, "/srv/keys/trust.key") << "absolute paths stay";
}

TEST(ConfigTest, ParsesADicomwebToolAndTheHttpPublicUrl) {
  auto config = ParseConfig(R"(
http: {port: 8443, public_url: "https://conduit.trust.nhs.uk:8443/", max_stow_bytes: 1048576,
       request_header_timeout: 5s}
tools:
  - name: chest
    kind: dicomweb
    dicomweb:
      url: https://ai.vendor.example/dicom-web/
      auth_token_file: secrets/chest.token
      chunk_bytes: 8388608
      poll_interval: 30s
    results_stable_after: 10s
    hosting_region: UK
  - name: plain
    kind: dicomweb
    dicomweb: {url: "http://127.0.0.1:8042"}
)",
                            "dicomweb.yaml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->http.public_url, "https://conduit.trust.nhs.uk:8443");
  EXPECT_EQ(config->http.max_stow_bytes, 1048576u);
  EXPECT_EQ(config->http.request_header_timeout, std::chrono::seconds(5));
  EXPECT_EQ(EmbeddedDefaultConfig("/tmp").http.request_header_timeout, std::chrono::seconds(20));
  EXPECT_FALSE(ParseConfig("http: {request_header_timeout: 500ms}\n", "short.yaml").ok());
  ASSERT_EQ(config->tools.size(), 2u);
  const ToolConfig& chest = config->tools[0];
  EXPECT_EQ(chest.kind, ToolKind::kDicomweb);
  EXPECT_TRUE(chest.IsRemote());
  EXPECT_TRUE(chest.Deidentified());
  EXPECT_EQ(chest.url, "https://ai.vendor.example/dicom-web");
  EXPECT_EQ(chest.auth_token_file, "secrets/chest.token");
  EXPECT_EQ(chest.chunk_bytes, 8388608u);
  EXPECT_EQ(chest.poll_interval, std::chrono::seconds(30));
  EXPECT_EQ(chest.results_stable_after, std::chrono::seconds(10));
  const ToolConfig& plain = config->tools[1];
  EXPECT_EQ(plain.url, "http://127.0.0.1:8042");
  EXPECT_TRUE(plain.auth_token_file.empty());
  EXPECT_EQ(plain.chunk_bytes, ToolConfig{}.chunk_bytes);
  EXPECT_EQ(plain.poll_interval.count(), 0) << "no polling unless asked for";
}

TEST(ConfigTest, OneHttpClientsShareOfTheWorkersDefaultsToAllButOne) {
  EXPECT_EQ(EmbeddedDefaultConfig("/tmp").http.max_connections_per_client, 3);
  auto config = ParseConfig("http: {threads: 10}\n", "a.yaml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->http.max_connections_per_client, 9);
  config = ParseConfig("http: {threads: 1}\n", "a.yaml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->http.max_connections_per_client, 1);
  config = ParseConfig("http: {threads: 10, max_connections_per_client: 10}\n", "a.yaml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->http.max_connections_per_client, 10);
  config = ParseConfig("http: {threads: 4, max_connections_per_client: 5}\n", "a.yaml");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message(),
            "a.yaml:1: http.max_connections_per_client: out of range [1, 4]");
}

TEST(ConfigTest, TrustedProxiesAreAddressesOrBlocks) {
  auto config = ParseConfig("http:\n  trusted_proxies: [10.0.0.5, 192.168.10.0/24]\n", "a.yaml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  ASSERT_EQ(config->http.trusted_proxies.size(), 2u);
  EXPECT_EQ(config->http.trusted_proxies[0].ToString(), "10.0.0.5");
  EXPECT_EQ(config->http.trusted_proxies[1].ToString(), "192.168.10.0/24");
  EXPECT_TRUE(ParseConfig("http: {port: 8080}\n", "a.yaml")->http.trusted_proxies.empty());
  config = ParseConfig("http:\n  trusted_proxies:\n    - 10.0.0.5\n    - proxy.trust.nhs.uk\n",
                       "a.yaml");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message().rfind("a.yaml:4: http.trusted_proxies[1]: ", 0), 0u)
      << config.status().message();
}

TEST(ConfigTest, ParsesTlsSettingsForHttpsPeers) {
  auto config = ParseConfig(R"(
tools:
  - name: chest
    kind: dicomweb
    dicomweb:
      url: https://ai.vendor.example/dicom-web
      tls:
        ca_file: certs/vendor-ca.pem
        client_certificate_file: certs/conduit.pem
        client_key_file: secrets/conduit.key
  - name: public-ca
    kind: dicomweb
    dicomweb: {url: "https://ai.other.example"}
priors_source:
  kind: dicomweb
  url: https://pacs.trust.nhs.uk/dicom-web
  tls: {ca_file: certs/trust-ca.pem}
)",
                            "tls.yaml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  const TlsClientConfig& chest = config->tools[0].tls;
  EXPECT_EQ(chest.ca_file, "certs/vendor-ca.pem");
  EXPECT_EQ(chest.client_certificate_file, "certs/conduit.pem");
  EXPECT_EQ(chest.client_key_file, "secrets/conduit.key");
  EXPECT_TRUE(config->tools[1].tls.empty()) << "the system's CAs, no client certificate";
  EXPECT_EQ(config->priors_source.tls.ca_file, "certs/trust-ca.pem");
  EXPECT_TRUE(config->priors_source.tls.client_key_file.empty());
}

TEST(ConfigTest, ParsesDicomTlsForTheListenerAndEveryDicomPeer) {
  auto config = ParseConfig(R"(
dicom:
  port: 11112
  tls: {port: 2762, certificate_file: c.pem, key_file: c.key, ca_file: modalities-ca.pem,
        crl_file: modalities-ca.crl}
destinations:
  - {name: pacs, ae_title: PACS, host: pacs.trust.nhs.uk, port: 2762, tls: {ca_file: ca.pem}}
  - {name: plain, ae_title: PLAIN, host: h}
tools:
  - {name: node, kind: dimse, ae_title: NODE, host: ai.example, port: 2762, tls: {}}
priors_source: {kind: dimse, ae_title: PACS, host: h, tls: {ca_file: ca.pem}}
)",
                            "dicom-tls.yaml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->dicom.tls.port, 2762);
  EXPECT_EQ(config->dicom.tls.certificate_file, "c.pem");
  EXPECT_EQ(config->dicom.tls.key_file, "c.key");
  EXPECT_EQ(config->dicom.tls.ca_file, "modalities-ca.pem");
  EXPECT_TRUE(config->dicom.tls.require_client_certificate) << "mutual TLS unless said otherwise";
  EXPECT_EQ(config->dicom.tls.crl_file, "modalities-ca.crl");
  EXPECT_TRUE(config->destinations[0].tls.enabled);
  EXPECT_EQ(config->destinations[0].tls.ca_file, "ca.pem");
  EXPECT_FALSE(config->destinations[1].tls.enabled);
  EXPECT_TRUE(config->tools[0].tls.enabled) << "tls: {} is TLS with the system's CAs";
  EXPECT_TRUE(config->tools[0].tls.empty());
  EXPECT_TRUE(config->priors_source.tls.enabled);
  EXPECT_FALSE(EmbeddedDefaultConfig("/tmp").dicom.tls.port) << "no TLS listener by default";
}

TEST(ConfigTest, PriorsAreRetrievedByCGetUnlessCMoveIsAskedFor) {
  auto get = ParseConfig("priors_source: {kind: dimse, ae_title: PACS, host: h}\n", "get.yaml");
  ASSERT_TRUE(get.ok()) << get.status().ToString();
  EXPECT_EQ(get->priors_source.retrieve, PriorsRetrieve::kGet);
  auto move = ParseConfig(
      "dicom: {allowed_calling_aes: [CT1, PACS]}\n"
      "priors_source: {kind: dimse, ae_title: PACS, host: h, retrieve: move}\n",
      "move.yaml");
  ASSERT_TRUE(move.ok()) << move.status().ToString();
  EXPECT_EQ(move->priors_source.retrieve, PriorsRetrieve::kMove);
}

TEST(ConfigTest, ParsesHttpsForTheHttpFrontEnd) {
  auto config = ParseConfig("http: {port: 8443, tls: {certificate_file: c.pem, key_file: c.key}}\n",
                            "https.yaml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_TRUE(config->http.tls());
  EXPECT_EQ(config->http.tls_certificate_file, "c.pem");
  EXPECT_EQ(config->http.tls_key_file, "c.key");
  EXPECT_FALSE(EmbeddedDefaultConfig("/tmp").http.tls()) << "plain http by default";
  EXPECT_TRUE(config->http.tls_ca_file.empty()) << "no client certificates by default";

  auto mutual = ParseConfig(
      "http: {port: 8443, tls: {certificate_file: c.pem, key_file: c.key, ca_file: clients.pem, "
      "crl_file: clients.crl}}\n",
      "mtls.yaml");
  ASSERT_TRUE(mutual.ok()) << mutual.status().ToString();
  EXPECT_EQ(mutual->http.tls_ca_file, "clients.pem");
  EXPECT_EQ(mutual->http.tls_crl_file, "clients.crl");
  auto crl_alone = ParseConfig(
      "http: {port: 8443, tls: {certificate_file: c.pem, key_file: c.key, crl_file: c.crl}}\n",
      "crl.yaml");
  ASSERT_FALSE(crl_alone.ok());
  EXPECT_NE(crl_alone.status().message().find("crl.yaml:1: http.tls.crl_file: needs ca_file"),
            std::string::npos)
      << crl_alone.status().message();
}

TEST(ConfigTest, TlsFilesAreResolvedAgainstTheConfigFilesFolder) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("conduit-config-tls-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir / "etc");
  const auto file = dir / "etc" / "conduit.yaml";
  {
    std::ofstream out(file);
    out << "tools:\n"
           "  - {name: a, kind: dicomweb, dicomweb: {url: 'https://h', tls: {ca_file: ca.pem,\n"
           "     client_certificate_file: /etc/ssl/c.pem, client_key_file: k/c.key}}}\n"
           "priors_source: {kind: dicomweb, url: 'https://p', tls: {ca_file: p/ca.pem}}\n"
           "dicom: {tls: {port: 2762, certificate_file: d/c.pem, key_file: d/c.key,\n"
           "              ca_file: d/ca.pem}}\n"
           "destinations: [{name: p, ae_title: P, host: h, tls: {ca_file: ca.pem}}]\n"
           "http: {tls: {certificate_file: h/c.pem, key_file: /k/c.key}}\n";
  }
  auto config = LoadConfigFile(file);
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->tools[0].tls.ca_file, dir / "etc" / "ca.pem");
  EXPECT_EQ(config->tools[0].tls.client_certificate_file, "/etc/ssl/c.pem");
  EXPECT_EQ(config->tools[0].tls.client_key_file, dir / "etc" / "k" / "c.key");
  EXPECT_EQ(config->priors_source.tls.ca_file, dir / "etc" / "p" / "ca.pem");
  EXPECT_EQ(config->dicom.tls.certificate_file, dir / "etc" / "d" / "c.pem");
  EXPECT_EQ(config->dicom.tls.key_file, dir / "etc" / "d" / "c.key");
  EXPECT_EQ(config->dicom.tls.ca_file, dir / "etc" / "d" / "ca.pem");
  EXPECT_TRUE(config->dicom.tls.crl_file.empty()) << "unset stays unset";
  EXPECT_EQ(config->destinations[0].tls.ca_file, dir / "etc" / "ca.pem");
  EXPECT_EQ(config->http.tls_certificate_file, dir / "etc" / "h" / "c.pem");
  EXPECT_EQ(config->http.tls_key_file, "/k/c.key");
}

TEST(ConfigTest, ParsesAWorklistTool) {
  auto config = ParseConfig(R"(
tools:
  - name: lungs-pull
    kind: worklist
    worklist:
      auth_token_file: secrets/lungs.token
      priority: HIGH
    expected_turnaround: 10m
    hosting_region: UK
  - name: plain-pull
    kind: worklist
    worklist: {auth_token_file: secrets/plain.token}
)",
                            "worklist.yaml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  const ToolConfig& lungs = config->tools[0];
  EXPECT_EQ(lungs.kind, ToolKind::kWorklist);
  EXPECT_TRUE(lungs.IsRemote()) << "its performer runs outside the trust";
  EXPECT_TRUE(lungs.Deidentified());
  EXPECT_EQ(lungs.auth_token_file, "secrets/lungs.token");
  EXPECT_EQ(lungs.priority, "HIGH");
  EXPECT_EQ(lungs.expected_turnaround, std::chrono::minutes(10));
  EXPECT_EQ(config->tools[1].priority, "MEDIUM");

  for (const auto& [yaml, error] : std::vector<std::pair<std::string, std::string>>{
           {"tools: [{name: t, kind: worklist}]\n",
            "bad.yaml:1: tools[0].worklist: a worklist tool needs this section"},
           {"tools: [{name: t, kind: worklist, worklist: {}}]\n",
            "tools[0].worklist.auth_token_file: is required"},
           {"tools: [{name: t, kind: worklist, worklist: {auth_token_file: a, priority: STAT}}]\n",
            "tools[0].worklist.priority: expected HIGH, MEDIUM or LOW"},
           {"tools: [{name: t, kind: worklist, worklist: {auth_token_file: a, url: 'http://h'}}]\n",
            "tools[0].worklist.url: unknown key"},
           {"tools: [{name: t, kind: dimse, ae_title: A, host: h,\n"
            "          worklist: {auth_token_file: a}}]\n",
            "tools[0].worklist: only a worklist tool takes this section"},
           {"tools:\n  - {name: a, kind: worklist, worklist: {auth_token_file: s/t}}\n"
            "  - {name: b, kind: worklist, worklist: {auth_token_file: s/./t}}\n",
            "tools 'a' and 'b' are worklist tools with the same auth_token_file"},
       }) {
    auto bad = ParseConfig(yaml, "bad.yaml");
    ASSERT_FALSE(bad.ok()) << yaml;
    EXPECT_NE(bad.status().message().find(error), std::string::npos)
        << bad.status().message() << "\n  expected: " << error;
  }
}

TEST(ConfigTest, AuthTokenFileIsResolvedAgainstTheConfigFilesFolder) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("conduit-config-token-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir / "etc");
  const auto file = dir / "etc" / "conduit.yaml";
  {
    std::ofstream out(file);
    out << "tools:\n"
           "  - {name: a, kind: dicomweb, dicomweb: {url: 'http://h', auth_token_file: t/a.tok}}\n"
           "  - {name: b, kind: dicomweb, dicomweb: {url: 'http://h', auth_token_file: "
           "/s/b.tok}}\n";
  }
  auto config = LoadConfigFile(file);
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->tools[0].auth_token_file, dir / "etc" / "t" / "a.tok");
  EXPECT_EQ(config->tools[1].auth_token_file, "/s/b.tok") << "absolute paths stay";
}

TEST(ConfigTest, ParsesCircuitBreakerAndExpectedTurnaround) {
  auto config = ParseConfig(R"(
tools:
  - name: plain
    kind: executable
    command: [x]
  - name: tuned
    kind: executable
    command: [y]
    expected_turnaround: 2m
    circuit_breaker: {failure_threshold: 3, open_for: 30s, max_open_for: 10m}
  - name: off
    kind: executable
    command: [z]
    circuit_breaker: {failure_threshold: 0}
  - manifest: vendor.yaml
    name: vendor
    circuit_breaker: {open_for: 2m}
)",
                            "c.yaml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  const CircuitBreakerConfig& plain = config->tools[0].circuit_breaker;
  EXPECT_EQ(plain.failure_threshold, 5) << "defaults";
  EXPECT_EQ(plain.open_for, std::chrono::seconds(60));
  EXPECT_EQ(plain.max_open_for, std::chrono::minutes(15));
  EXPECT_EQ(config->tools[0].expected_turnaround, milliseconds(0)) << "no alert by default";
  const ToolConfig& tuned = config->tools[1];
  EXPECT_EQ(tuned.expected_turnaround, std::chrono::minutes(2));
  EXPECT_EQ(tuned.circuit_breaker.failure_threshold, 3);
  EXPECT_EQ(tuned.circuit_breaker.open_for, std::chrono::seconds(30));
  EXPECT_EQ(tuned.circuit_breaker.max_open_for, std::chrono::minutes(10));
  EXPECT_EQ(config->tools[2].circuit_breaker.failure_threshold, 0) << "disabled";
  EXPECT_EQ(config->tools[3].circuit_breaker.open_for, std::chrono::minutes(2))
      << "a tool named by its manifest takes the trust's breaker settings";
  EXPECT_EQ(config->tools[3].circuit_breaker.failure_threshold, 5);
}

struct BadConfig {
  const char* name;
  const char* yaml;
  const char* expected;  // substring of the error
};

class ConfigErrorTest : public ::testing::TestWithParam<BadConfig> {};

TEST_P(ConfigErrorTest, IsRefusedWithFileLineAndKey) {
  auto config = ParseConfig(GetParam().yaml, "bad.yaml");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(config.status().message().find(GetParam().expected), std::string::npos)
      << config.status().message();
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ConfigErrorTest,
    ::testing::Values(
        BadConfig{
            "tls_for_http_url",
            "tools: [{name: t, kind: dicomweb, dicomweb: {url: 'http://h',\n"
            "          tls: {ca_file: ca.pem}}}]\n",
            "bad.yaml:2: tools[0].dicomweb.tls: applies to an https url, and the url is http://h"},
        BadConfig{"tls_certificate_without_key",
                  "tools: [{name: t, kind: dicomweb, dicomweb: {url: 'https://h',\n"
                  "          tls: {client_certificate_file: c.pem}}}]\n",
                  "tools[0].dicomweb.tls: client_certificate_file and client_key_file go together"},
        BadConfig{"tls_key_without_certificate",
                  "tools: [{name: t, kind: dicomweb, dicomweb: {url: 'https://h',\n"
                  "          tls: {client_key_file: c.key}}}]\n",
                  "tools[0].dicomweb.tls: client_certificate_file and client_key_file go together"},
        BadConfig{
            "tls_unknown_key",
            "tools: [{name: t, kind: dicomweb, dicomweb: {url: 'https://h', tls: {verify: no}}}]\n",
            "tools[0].dicomweb.tls.verify: unknown key"},
        BadConfig{
            "tls_not_a_map",
            "tools: [{name: t, kind: dicomweb, dicomweb: {url: 'https://h', tls: yes}}]\n",
            "tools[0].dicomweb.tls: expected ca_file, client_certificate_file, client_key_file"},
        BadConfig{"priors_retrieve_unknown",
                  "priors_source: {kind: dimse, ae_title: PACS, host: h, retrieve: copy}\n",
                  "bad.yaml:1: priors_source.retrieve: expected 'get' or 'move'"},
        BadConfig{"priors_retrieve_for_dicomweb",
                  "priors_source: {kind: dicomweb, url: 'http://h', retrieve: move}\n",
                  "priors_source.retrieve: only for kind dimse"},
        BadConfig{"priors_move_from_an_ae_not_allowed",
                  "dicom: {allowed_calling_aes: [CT1]}\n"
                  "priors_source: {kind: dimse, ae_title: PACS, host: h, retrieve: move}\n",
                  "priors_source retrieves by C-MOVE from AE 'PACS', which "
                  "dicom.allowed_calling_aes does not list"},
        BadConfig{"tls_priors_http_url",
                  "priors_source: {kind: dicomweb, url: 'http://h', tls: {ca_file: c}}\n",
                  "priors_source.tls: applies to an https url"},
        BadConfig{"dicom_tls_without_port", "dicom: {tls: {certificate_file: c, key_file: k}}\n",
                  "dicom.tls.port: is required"},
        BadConfig{"dicom_tls_without_certificate", "dicom: {tls: {port: 2762, key_file: k}}\n",
                  "dicom.tls.certificate_file: is required"},
        BadConfig{"dicom_tls_on_dicom_port",
                  "dicom: {port: 2762, tls: {port: 2762, certificate_file: c, key_file: k, "
                  "ca_file: a}}\n",
                  "dicom.tls.port: is dicom.port"},
        BadConfig{"dicom_tls_without_client_cas",
                  "dicom: {tls: {port: 2762, certificate_file: c, key_file: k}}\n",
                  "dicom.tls.ca_file: is required: the CAs"},
        BadConfig{"dicom_tls_with_blank_client_cas",
                  "dicom: {tls: {port: 2762, certificate_file: c, key_file: k, ca_file: ''}}\n",
                  "dicom.tls.ca_file: is required"},
        BadConfig{"dicom_tls_unknown_key",
                  "dicom: {tls: {port: 2762, certificate_file: c, key_file: k, verify: no}}\n",
                  "dicom.tls.verify: unknown key"},
        BadConfig{"tls_on_executable_tool",
                  "tools: [{name: t, kind: executable, command: [x], tls: {}}]\n",
                  "tools[0].tls: only a dimse tool takes this section"},
        BadConfig{"tls_beside_dicomweb_section",
                  "tools: [{name: t, kind: dicomweb, dicomweb: {url: 'https://h'}, tls: {}}]\n",
                  "tools[0].tls: a dicomweb tool's TLS settings go under dicomweb"},
        BadConfig{"destination_tls_key_without_certificate",
                  "destinations: [{name: p, ae_title: P, host: h, tls: {client_key_file: k}}]\n",
                  "destinations[0].tls: client_certificate_file and client_key_file go together"},
        BadConfig{"stow_destination_with_an_ae",
                  "destinations: [{name: p, ae_title: P, dicomweb: {url: 'http://h'}}]\n",
                  "bad.yaml:1: destinations[0].ae_title: is for C-STORE destinations; this one "
                  "has dicomweb (STOW-RS)"},
        BadConfig{"stow_destination_with_tls_outside",
                  "destinations: [{name: p, dicomweb: {url: 'https://h'}, tls: {}}]\n",
                  "destinations[0].tls: is for C-STORE destinations; this one has dicomweb "
                  "(STOW-RS): put tls under dicomweb"},
        BadConfig{"stow_destination_with_commitment",
                  "destinations: [{name: p, dicomweb: {url: 'http://h'}, storage_commitment: "
                  "true}]\n",
                  "destinations[0].storage_commitment: is for C-STORE destinations"},
        BadConfig{"stow_destination_without_url", "destinations: [{name: p, dicomweb: {}}]\n",
                  "destinations[0].dicomweb.url: is required"},
        BadConfig{"stow_destination_tls_on_http",
                  "destinations: [{name: p, dicomweb: {url: 'http://h', tls: {}}}]\n",
                  "destinations[0].dicomweb.tls: applies to an https url"},
        BadConfig{"stow_destination_small_chunks",
                  "destinations: [{name: p, dicomweb: {url: 'http://h', chunk_bytes: 10}}]\n",
                  "destinations[0].dicomweb.chunk_bytes: out of range"},
        BadConfig{"commitment_timeout_too_long",
                  "destinations: [{name: p, ae_title: P, host: h, storage_commitment: true,\n"
                  "                commitment_timeout: 73h}]\n",
                  "bad.yaml:2: destinations[0].commitment_timeout: must be between 1s and 72h"},
        BadConfig{"commitment_from_an_ae_not_allowed",
                  "dicom: {allowed_calling_aes: [CT1]}\n"
                  "destinations: [{name: p, ae_title: PACS, host: h, storage_commitment: true}]\n",
                  "destination 'p' has storage_commitment on, but dicom.allowed_calling_aes does "
                  "not list its AE 'PACS'"},
        BadConfig{"http_tls_without_key", "http: {tls: {certificate_file: c.pem}}\n",
                  "http.tls.key_file: is required"},
        BadConfig{"http_tls_without_certificate", "http: {tls: {key_file: k}}\n",
                  "http.tls.certificate_file: is required"},
        BadConfig{"http_tls_unknown_key",
                  "http: {tls: {certificate_file: c, key_file: k, client_ca: a}}\n",
                  "http.tls.client_ca: unknown key"},
        BadConfig{"unknown_key", "dicom: {ae_title: X, prot: 1}\n", "bad.yaml:1: dicom.prot"},
        BadConfig{"port_range", "dicom:\n  port: 70000\n", "bad.yaml:2: dicom.port: out of range"},
        BadConfig{"port_text", "http: {port: eighty}\n", "http.port: expected a whole number"},
        BadConfig{"long_ae", "dicom: {ae_title: ABCDEFGHIJKLMNOPQ}\n", "1 to 16 characters"},
        BadConfig{"bad_duration",
                  "tools: [{name: t, kind: executable, command: [x]}]\n"
                  "routes: [{name: r, tool: t, stable_after: soon}]\n",
                  "bad.yaml:2: routes[0].stable_after"},
        BadConfig{"unknown_tool", "routes: [{name: r, tool: nope}]\n", "names tool 'nope'"},
        BadConfig{"shadow_route_with_destinations",
                  "destinations: [{name: pacs, ae_title: P, host: h}]\n"
                  "routes: [{name: r, tool: reference, shadow: true, results_to: [pacs]}]\n",
                  "bad.yaml:2: routes[0].results_to: a shadow route delivers nothing"},
        BadConfig{"unknown_destination",
                  "tools: [{name: t, kind: executable, command: [x]}]\n"
                  "routes: [{name: r, tool: t, results_to: [pacs]}]\n",
                  "sends results to 'pacs'"},
        BadConfig{"bad_kind", "tools: [{name: t, kind: magic}]\n", "tools[0].kind"},
        BadConfig{"exec_without_command", "tools: [{name: t, kind: executable}]\n",
                  "needs a command"},
        BadConfig{"duplicate_tool",
                  "tools: [{name: t, kind: executable, command: [x]},"
                  " {name: t, kind: executable, command: [y]}]\n",
                  "tool 't' is defined twice"},
        BadConfig{"syntax", "dicom: {ae_title: [\n", "bad.yaml:"},
        BadConfig{"dimse_tool_not_allowed",
                  "dicom: {allowed_calling_aes: [MODALITY]}\n"
                  "tools: [{name: t, kind: dimse, ae_title: AITOOL, host: 127.0.0.1}]\n",
                  "tool 't' sends its results from AE 'AITOOL'"},
        BadConfig{"calling_ae_without_hosts", "dicom: {allowed_calling_aes: [{ae_title: CT1}]}\n",
                  "bad.yaml:1: dicom.allowed_calling_aes[0].hosts: is required"},
        BadConfig{"calling_ae_host_name",
                  "dicom:\n  allowed_calling_aes:\n    - CT1\n"
                  "    - {ae_title: MR1, hosts: [mr1.trust.nhs.uk]}\n",
                  "bad.yaml:4: dicom.allowed_calling_aes[1].hosts[0]: 'mr1.trust.nhs.uk' is not "
                  "an IPv4 address"},
        BadConfig{"calling_ae_twice",
                  "dicom: {allowed_calling_aes: [CT1, {ae_title: CT1, hosts: [10.0.0.1]}]}\n",
                  "dicom.allowed_calling_aes[1]: 'CT1' is listed twice"},
        BadConfig{"calling_ae_unknown_key",
                  "dicom: {allowed_calling_aes: [{ae_title: CT1, host: 10.0.0.1}]}\n",
                  "dicom.allowed_calling_aes[0].host: unknown key"},
        BadConfig{"calling_ae_too_long", "dicom: {allowed_calling_aes: [ABCDEFGHIJKLMNOPQ]}\n",
                  "dicom.allowed_calling_aes[0]: an AE title has 1 to 16 characters"},
        BadConfig{"unknown_governance_key", "governance:\n  policy: p.yaml\n  keyfile: k\n",
                  "bad.yaml:3: governance.keyfile: unknown key"},
        BadConfig{"governance_not_a_map", "governance: policy.yaml\n",
                  "bad.yaml:1: governance: expected a mapping"},
        BadConfig{"policy_list", "governance: {policy: [a, b]}\n",
                  "bad.yaml:1: governance.policy: expected a single value"},
        BadConfig{"deidentify_not_bool",
                  "tools: [{name: t, kind: executable, command: [x], deidentify: sometimes}]\n",
                  "bad.yaml:1: tools[0].deidentify: expected true or false"},
        BadConfig{"remote_not_deidentified",
                  "tools:\n  - {name: t, kind: dimse, ae_title: AI, host: h,\n"
                  "     deidentify: false}\n",
                  "bad.yaml:3: tools[0].deidentify: a dimse tool runs outside the trust"},
        BadConfig{"retain_nested",
                  "tools: [{name: t, kind: executable, command: [x], retain: [[a]]}]\n",
                  "tools[0].retain: expected a list of values"},
        BadConfig{"region_list",
                  "tools:\n  - name: t\n    kind: dimse\n    ae_title: AI\n    host: h\n"
                  "    hosting_region: [UK, US]\n",
                  "bad.yaml:6: tools[0].hosting_region: expected a single value"},
        BadConfig{"unknown_tool_key",
                  "tools: [{name: t, kind: executable, command: [x], region: UK}]\n",
                  "tools[0].region: unknown key"},
        BadConfig{"dicomweb_without_section", "tools:\n  - {name: t, kind: dicomweb}\n",
                  "bad.yaml:2: tools[0].dicomweb: a dicomweb tool needs this section"},
        BadConfig{"dicomweb_without_url", "tools:\n  - {name: t, kind: dicomweb, dicomweb: {}}\n",
                  "tools[0].dicomweb.url: is required"},
        BadConfig{"dicomweb_bad_scheme",
                  "tools:\n  - name: t\n    kind: dicomweb\n    dicomweb:\n"
                  "      url: ftp://tool/x\n",
                  "bad.yaml:5: tools[0].dicomweb.url: URL 'ftp://tool/x': expected http://"},
        BadConfig{"dicomweb_bad_port",
                  "tools: [{name: t, kind: dicomweb, dicomweb: {url: 'http://h:99999'}}]\n",
                  "tools[0].dicomweb.url: URL 'http://h:99999': the port must be"},
        BadConfig{"dicomweb_query",
                  "tools: [{name: t, kind: dicomweb, dicomweb: {url: 'http://h/?a'}}]\n",
                  "takes no query"},
        BadConfig{"dicomweb_unknown_key",
                  "tools: [{name: t, kind: dicomweb, dicomweb: {url: 'http://h', token: x}}]\n",
                  "tools[0].dicomweb.token: unknown key"},
        BadConfig{
            "dicomweb_tiny_chunk",
            "tools: [{name: t, kind: dicomweb, dicomweb: {url: 'http://h', chunk_bytes: 10}}]\n",
            "tools[0].dicomweb.chunk_bytes: out of range"},
        BadConfig{"dicomweb_fast_poll",
                  "tools: [{name: t, kind: dicomweb, dicomweb: {url: 'http://h', "
                  "poll_interval: 10ms}}]\n",
                  "tools[0].dicomweb.poll_interval: expected 0 (no polling) or at least 1s"},
        BadConfig{
            "dicomweb_section_on_dimse",
            "tools: [{name: t, kind: dimse, ae_title: A, host: h, dicomweb: {url: 'http://h'}}]\n",
            "tools[0].dicomweb: only a dicomweb tool takes this section"},
        BadConfig{"dicomweb_not_deidentified",
                  "tools:\n  - {name: t, kind: dicomweb, dicomweb: {url: 'http://h'},\n"
                  "     deidentify: false}\n",
                  "bad.yaml:3: tools[0].deidentify: a dicomweb tool runs outside the trust"},
        BadConfig{"public_url_bad", "http: {public_url: 'conduit:8080'}\n",
                  "bad.yaml:1: http.public_url: URL 'conduit:8080'"},
        BadConfig{"max_stow_bytes_text", "http: {max_stow_bytes: lots}\n",
                  "http.max_stow_bytes: expected a whole number"},
        BadConfig{"breaker_not_a_map",
                  "tools: [{name: t, kind: executable, command: [x], circuit_breaker: 5}]\n",
                  "bad.yaml:1: tools[0].circuit_breaker: expected failure_threshold"},
        BadConfig{"breaker_unknown_key",
                  "tools:\n  - name: t\n    kind: executable\n    command: [x]\n"
                  "    circuit_breaker: {threshold: 3}\n",
                  "bad.yaml:5: tools[0].circuit_breaker.threshold: unknown key"},
        BadConfig{"breaker_negative_threshold",
                  "tools: [{name: t, kind: executable, command: [x],\n"
                  "         circuit_breaker: {failure_threshold: -1}}]\n",
                  "bad.yaml:2: tools[0].circuit_breaker.failure_threshold: out of range"},
        BadConfig{"breaker_short_open_for",
                  "tools: [{name: t, kind: executable, command: [x],\n"
                  "         circuit_breaker: {open_for: 10ms}}]\n",
                  "bad.yaml:2: tools[0].circuit_breaker.open_for: expected at least 1s"},
        BadConfig{"breaker_max_below_open_for",
                  "tools: [{name: t, kind: executable, command: [x],\n"
                  "         circuit_breaker: {open_for: 10m, max_open_for: 5m}}]\n",
                  "bad.yaml:2: tools[0].circuit_breaker.max_open_for: is shorter than open_for"},
        BadConfig{"turnaround_not_duration",
                  "tools: [{name: t, kind: executable, command: [x], expected_turnaround: soon}]\n",
                  "bad.yaml:1: tools[0].expected_turnaround"},
        BadConfig{"manifest_tool_other_key",
                  "tools: [{manifest: m.yaml, expected_turnaround: 5m}]\n",
                  "tools[0].expected_turnaround: comes from the manifest"},
        BadConfig{"http_network_bind_without_api_tokens", "http:\n  port: 8080\n  bind: 0.0.0.0\n",
                  "bad.yaml:3: http.bind: '0.0.0.0' is not a loopback address, so anyone on the "
                  "network could reach the admin API and the identified studies over DICOMweb: "
                  "set http.api_token_file"},
        BadConfig{"http_host_bind_without_api_tokens", "http: {bind: 10.1.2.3}\n",
                  "bad.yaml:1: http.bind: '10.1.2.3' is not a loopback address"},
        BadConfig{"http_api_token_file_not_text", "http: {api_token_file: [a, b]}\n",
                  "bad.yaml:1: http.api_token_file"},
        BadConfig{"bad_select",
                  "tools: [{name: t, kind: executable, command: [x]}]\n"
                  "routes: [{name: r, tool: t, select: image}]\n",
                  "routes[0].select"}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(ConfigTest, NetworkBindNeedsApiTokensUnlessTheHttpPortIsOff) {
  struct Case {
    const char* yaml;
    bool ok;
  };
  for (const Case& c : std::vector<Case>{
           {"http: {bind: 0.0.0.0, api_token_file: /etc/conduit/api.tokens}\n", true},
           {"http: {bind: '::', port: 0}\n", true},
           {"http: {bind: 0.0.0.0}\n", false},
           {"http: {bind: '::'}\n", false},
           {"http: {bind: conduit.trust.nhs.uk}\n", false},
           {"http: {bind: 127.0.0.1}\n", true},
           {"http: {bind: 127.8.9.10}\n", true},
           {"http: {bind: localhost}\n", true},
           {"http: {bind: '::1'}\n", true},
           {"http: {port: 9090}\n", true},
       }) {
    auto config = ParseConfig(c.yaml, "conduit.yaml");
    EXPECT_EQ(config.ok(), c.ok) << c.yaml << (config.ok() ? "" : config.status().ToString());
  }
}

TEST(ConfigTest, LoopbackHosts) {
  for (const char* host : {"127.0.0.1", "127.255.0.9", "localhost", "LocalHost", "::1", "[::1]",
                           "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1"}) {
    EXPECT_TRUE(IsLoopbackHost(host)) << host;
  }
  for (const char* host : {"0.0.0.0", "::", "", "10.0.0.1", "128.0.0.1", "127.0.0", "::2",
                           "::ffff:10.0.0.1", "localhost.example", "conduit", "127.0.0.1 "}) {
    EXPECT_FALSE(IsLoopbackHost(host)) << host;
  }
}

TEST(ConfigTest, ApiTokenFileIsResolvedAgainstTheConfigFilesFolder) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("conduit-config-api-token-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir / "etc");
  const auto file = dir / "etc" / "conduit.yaml";
  std::ofstream(file) << "http: {bind: 0.0.0.0, port: 8443, api_token_file: keys/api.tokens}\n";
  auto config = LoadConfigFile(file);
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->http.api_token_file, dir / "etc" / "keys" / "api.tokens");
  EXPECT_EQ(config->http.bind, "0.0.0.0");
}

TEST(ConfigTest, EmbeddedDefaultIsValidAndRoutesCtToTheReferenceTool) {
  Config c = EmbeddedDefaultConfig("/opt/conduit/bin");
  EXPECT_TRUE(ValidateConfig(c, "embedded").ok());
  ASSERT_EQ(c.tools.size(), 1u);
  EXPECT_EQ(c.tools[0].command[0], "/opt/conduit/bin/conduit-reference-tool");
  EXPECT_EQ(c.routes[0].tool, "reference");
}

TEST(ConfigTest, MissingFileIsNotFound) {
  auto config = LoadConfigFile("/nonexistent/conduit.yaml");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace conduit
