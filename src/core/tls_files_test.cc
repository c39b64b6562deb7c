// The start-up check of the trust's TLS files, on certificates made by a throw-away test CA
// (testing/test_pki.h).
#include "core/tls_files.h"

#include <gtest/gtest.h>

#include <ctime>
#include <fstream>
#include <map>

#include "testing/test_pki.h"
#include "testing/testing.h"

namespace conduit {
namespace {

class TlsFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<testing::TestPki> pki = testing::MakeTestPki(tmp_.path());
    ASSERT_TRUE(pki.ok()) << pki.status().ToString();
    pki_ = *pki;
  }

  Status Check(const TlsClientConfig& tls) {
    return CheckTlsClientFiles(tls, "tools[0].dicomweb.tls");
  }

  // A DICOM TLS listener whose files are all good (no CRL).
  DicomTlsListenerConfig GoodListener() const {
    DicomTlsListenerConfig tls;
    tls.port = 2762;
    tls.certificate_file = pki_.server_certificate;
    tls.key_file = pki_.server_key;
    tls.ca_file = pki_.ca_certificate;
    return tls;
  }

  testing::TempDir tmp_;
  testing::TestPki pki_;
};

TEST_F(TlsFilesTest, NoSettingsAndGoodFilesPass) {
  EXPECT_TRUE(Check({}).ok());
  EXPECT_TRUE(Check({true, pki_.ca_certificate, {}, {}, {}}).ok());
  Status st = Check({true, pki_.ca_certificate, pki_.client_certificate, pki_.client_key, {}});
  EXPECT_TRUE(st.ok()) << st.ToString();
}

TEST_F(TlsFilesTest, AMissingOrEmptyCaFileIsNamed) {
  Status st = Check({true, tmp_.path() / "nowhere.pem", {}, {}, {}});
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(
      st.message().find("tools[0].dicomweb.tls.ca_file " + (tmp_.path() / "nowhere.pem").string() +
                        ": no usable PEM certificate"),
      std::string::npos)
      << st.message();
  std::ofstream(tmp_.path() / "empty.pem") << "not a certificate\n";
  st = Check({true, tmp_.path() / "empty.pem", {}, {}, {}});
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition) << st.ToString();
}

TEST_F(TlsFilesTest, AKeyThatIsNotTheCertificatesIsRefused) {
  Status st = Check({true, {}, pki_.client_certificate, pki_.other_client_key, {}});
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(
      st.message().find("tools[0].dicomweb.tls.client_key_file " + pki_.other_client_key.string() +
                        ": does not match " + pki_.client_certificate.string()),
      std::string::npos)
      << st.message();
}

TEST_F(TlsFilesTest, AKeyFileGivenAsTheCertificateIsRefused) {
  Status st = Check({true, {}, pki_.client_key, pki_.client_key, {}});
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("client_certificate_file " + pki_.client_key.string() +
                              ": no usable PEM certificate"),
            std::string::npos)
      << st.message();
}

TEST_F(TlsFilesTest, AnExpiredClientCertificateStopsTheStart) {
  Status st = Check({true, {}, pki_.expired_server_certificate, pki_.expired_server_key, {}});
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("has expired; renew it"), std::string::npos) << st.message();
}

TEST_F(TlsFilesTest, ErrorsNeverQuoteTheKey) {
  std::ifstream in(pki_.client_key);
  const std::string key((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string body = key.substr(key.find('\n') + 1, 40);
  for (const TlsClientConfig& tls :
       {TlsClientConfig{true, pki_.client_key, {}, {}, {}},
        TlsClientConfig{true, {}, pki_.client_certificate, pki_.other_client_key, {}},
        TlsClientConfig{true, {}, pki_.client_key, pki_.client_key, {}}}) {
    Status st = Check(tls);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.message().find(body), std::string::npos) << st.message();
  }
}

TEST_F(TlsFilesTest, TheDicomTlsListenersFilesAreCheckedWhenItHasAPort) {
  EXPECT_TRUE(CheckTlsListenerFiles({}, "dicom.tls").ok()) << "no port: no listener";
  DicomTlsListenerConfig tls = GoodListener();
  Status st = CheckTlsListenerFiles(tls, "dicom.tls");
  EXPECT_TRUE(st.ok()) << st.ToString();
  tls.key_file = pki_.client_key;
  st = CheckTlsListenerFiles(tls, "dicom.tls");
  EXPECT_NE(
      st.message().find("dicom.tls.key_file " + pki_.client_key.string() + ": does not match"),
      std::string::npos)
      << st.message();
  tls.key_file = pki_.server_key;
  tls.certificate_file = pki_.expired_server_certificate;
  tls.key_file = pki_.expired_server_key;
  st = CheckTlsListenerFiles(tls, "dicom.tls");
  EXPECT_NE(st.message().find("has expired"), std::string::npos) << st.message();
}

TEST_F(TlsFilesTest, TheListenersCrlFileMustHoldCurrentCrls) {
  DicomTlsListenerConfig tls = GoodListener();
  tls.crl_file = pki_.crl;
  Status st = CheckTlsListenerFiles(tls, "dicom.tls");
  EXPECT_TRUE(st.ok()) << st.ToString();
  tls.crl_file = pki_.expired_crl;
  st = CheckTlsListenerFiles(tls, "dicom.tls");
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("dicom.tls.crl_file " + pki_.expired_crl.string() +
                              ": past its next update"),
            std::string::npos)
      << st.message();
  tls.ca_file = pki_.other_ca_certificate;  // the CRL's CA is not among the client CAs
  tls.crl_file = pki_.crl;
  st = CheckTlsListenerFiles(tls, "dicom.tls");
  EXPECT_NE(st.message().find("a CRL is not issued by a CA in"), std::string::npos) << st.message();
  tls.ca_file = pki_.ca_certificate;
  for (const std::filesystem::path& wrong : {pki_.ca_certificate, tmp_.path() / "no-crl.pem"}) {
    tls.crl_file = wrong;
    st = CheckTlsListenerFiles(tls, "dicom.tls");
    EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition) << wrong;
    EXPECT_NE(st.message().find("dicom.tls.crl_file " + wrong.string()), std::string::npos)
        << st.message();
  }

  // The peers Conduit connects to may have CRLs too: checked alike, and each is a metric.
  Config config;
  config.dicom.tls = tls;
  config.dicom.tls.crl_file = pki_.crl;
  DestinationConfig pacs;
  pacs.name = "pacs";
  pacs.tls = {true, pki_.ca_certificate, {}, {}, pki_.expired_crl};
  config.destinations.push_back(pacs);
  st = CheckConfiguredTls(config);
  EXPECT_NE(st.message().find("destination 'pacs': tls.crl_file " + pki_.expired_crl.string() +
                              ": past its next update"),
            std::string::npos)
      << st.message();
  config.destinations[0].tls.crl_file = pki_.crl_revoking_server;
  EXPECT_TRUE(CheckConfiguredTls(config).ok());
  std::map<std::string, int64_t> updates;
  for (const CertificateEnd& update : ConfiguredCrlNextUpdates(config)) {
    updates[update.setting] = update.not_after_unix;
  }
  config.http.port = 8443;
  config.http.tls_certificate_file = pki_.server_certificate;
  config.http.tls_key_file = pki_.server_key;
  config.http.tls_ca_file = pki_.ca_certificate;
  config.http.tls_crl_file = pki_.crl;
  for (const CertificateEnd& update : ConfiguredCrlNextUpdates(config)) {
    updates[update.setting] = update.not_after_unix;
  }
  ASSERT_EQ(updates.size(), 3u);
  for (const char* setting :
       {"dicom.tls.crl_file", "destinations[pacs].tls.crl_file", "http.tls.crl_file"}) {
    EXPECT_NEAR(static_cast<double>(updates[setting] - std::time(nullptr)), 7.0 * 86400, 120.0)
        << setting;
  }
}

TEST_F(TlsFilesTest, TheConfigsPeersAreCheckedByName) {
  Config config;
  DestinationConfig pacs;
  pacs.name = "pacs";
  pacs.tls = {true, pki_.ca_certificate, pki_.client_certificate, pki_.other_client_key, {}};
  config.destinations.push_back(pacs);
  Status st = CheckConfiguredTls(config);
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("destination 'pacs': tls.client_key_file"), std::string::npos)
      << st.message();
  config.destinations[0].tls.client_key_file = pki_.client_key;
  ToolConfig tool;
  tool.name = "node";
  tool.kind = ToolKind::kDimse;
  tool.tls = {true, tmp_.path() / "missing-ca.pem", {}, {}, {}};
  config.tools.push_back(tool);
  st = CheckConfiguredTls(config);
  EXPECT_NE(st.message().find("tool 'node': tls.ca_file"), std::string::npos) << st.message();
  config.tools[0].tls.ca_file = pki_.ca_certificate;
  EXPECT_TRUE(CheckConfiguredTls(config).ok());
  config.http.tls_certificate_file = pki_.server_certificate;
  config.http.tls_key_file = pki_.client_key;
  st = CheckConfiguredTls(config);
  EXPECT_NE(st.message().find("http.tls.key_file " + pki_.client_key.string() + ": does not match"),
            std::string::npos)
      << st.message();
  config.http.tls_key_file = pki_.server_key;
  EXPECT_TRUE(CheckConfiguredTls(config).ok());
  config.http.tls_ca_file = pki_.client_key;  // no certificate in it
  st = CheckConfiguredTls(config);
  EXPECT_NE(st.message().find("http.tls.ca_file " + pki_.client_key.string()), std::string::npos)
      << st.message();
  config.http.tls_ca_file = pki_.ca_certificate;
  config.http.tls_crl_file = pki_.expired_crl;
  st = CheckConfiguredTls(config);
  EXPECT_NE(st.message().find("http.tls.crl_file"), std::string::npos) << st.message();
  config.http.tls_crl_file = pki_.crl;
  EXPECT_TRUE(CheckConfiguredTls(config).ok());
}

TEST_F(TlsFilesTest, CertificateEndsAreReadForEveryConfiguredCertificate) {
  Config config;
  config.dicom.tls.port = 2762;
  config.dicom.tls.certificate_file = pki_.expired_server_certificate;
  config.dicom.tls.key_file = pki_.expired_server_key;
  DestinationConfig pacs;
  pacs.name = "pacs";
  pacs.tls = {true, pki_.ca_certificate, pki_.client_certificate, pki_.client_key, {}};
  config.destinations.push_back(pacs);
  DestinationConfig missing;
  missing.name = "gone";
  missing.tls = {true, tmp_.path() / "no-such-ca.pem", {}, {}, {}};
  config.destinations.push_back(missing);
  DestinationConfig plain;
  plain.name = "plain";
  config.destinations.push_back(plain);

  std::map<std::string, int64_t> ends;
  for (const CertificateEnd& end : ConfiguredCertificateEnds(config)) {
    ends[end.setting] = end.not_after_unix;
  }
  const int64_t now = std::time(nullptr);
  ASSERT_EQ(ends.size(), 3u) << "the listener's, the client certificate and the CA file; "
                                "an unreadable file and a plain destination give none";
  EXPECT_LT(ends["dicom.tls.certificate_file"], now) << "ended yesterday";
  EXPECT_NEAR(static_cast<double>(ends["destinations[pacs].tls.client_certificate_file"] - now),
              30.0 * 86400, 120.0);
  EXPECT_NEAR(static_cast<double>(ends["destinations[pacs].tls.ca_file"] - now), 30.0 * 86400,
              120.0);

  // The HTTPS front end's certificate and the CAs of its clients' certificates.
  config.http.port = 8443;
  config.http.tls_certificate_file = pki_.server_certificate;
  config.http.tls_key_file = pki_.server_key;
  config.http.tls_ca_file = pki_.ca_certificate;
  ends.clear();
  for (const CertificateEnd& end : ConfiguredCertificateEnds(config)) {
    ends[end.setting] = end.not_after_unix;
  }
  EXPECT_EQ(ends.size(), 5u);
  EXPECT_EQ(ends.count("http.tls.certificate_file"), 1u);
  EXPECT_NEAR(static_cast<double>(ends["http.tls.ca_file"] - now), 30.0 * 86400, 120.0);
}

}  // namespace
}  // namespace conduit
