// The start-up check of TLS settings and the client they make, on certificates made by a
// throw-away test CA (testing/test_pki.h).
#include "adapters/http_tls.h"

#include <gtest/gtest.h>

#include <fstream>

#include "testing/test_pki.h"
#include "testing/testing.h"

namespace conduit {
namespace {

namespace fs = std::filesystem;

class HttpTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<testing::TestPki> pki = testing::MakeTestPki(tmp_.path());
    ASSERT_TRUE(pki.ok()) << pki.status().ToString();
    pki_ = *pki;
  }

  Status Check(const TlsClientConfig& tls) {
    return CheckTlsClientFiles(tls, "tools[0].dicomweb.tls");
  }

  testing::TempDir tmp_;
  testing::TestPki pki_;
};

TEST_F(HttpTlsTest, NoSettingsAndGoodFilesPass) {
  EXPECT_TRUE(Check({}).ok());
  EXPECT_TRUE(Check({pki_.ca_certificate, {}, {}}).ok());
  Status st = Check({pki_.ca_certificate, pki_.client_certificate, pki_.client_key});
  EXPECT_TRUE(st.ok()) << st.ToString();
}

TEST_F(HttpTlsTest, AMissingOrEmptyCaFileIsNamed) {
  Status st = Check({tmp_.path() / "nowhere.pem", {}, {}});
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(
      st.message().find("tools[0].dicomweb.tls.ca_file " + (tmp_.path() / "nowhere.pem").string() +
                        ": no usable PEM certificate"),
      std::string::npos)
      << st.message();
  std::ofstream(tmp_.path() / "empty.pem") << "not a certificate\n";
  st = Check({tmp_.path() / "empty.pem", {}, {}});
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition) << st.ToString();
}

TEST_F(HttpTlsTest, AKeyThatIsNotTheCertificatesIsRefused) {
  Status st = Check({{}, pki_.client_certificate, pki_.other_client_key});
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(
      st.message().find("tools[0].dicomweb.tls.client_key_file " + pki_.other_client_key.string() +
                        ": does not match " + pki_.client_certificate.string()),
      std::string::npos)
      << st.message();
}

TEST_F(HttpTlsTest, AKeyFileGivenAsTheCertificateIsRefused) {
  Status st = Check({{}, pki_.client_key, pki_.client_key});
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("client_certificate_file " + pki_.client_key.string() +
                              ": no usable PEM certificate"),
            std::string::npos)
      << st.message();
}

TEST_F(HttpTlsTest, AnExpiredClientCertificateStopsTheStart) {
  Status st = Check({{}, pki_.expired_server_certificate, pki_.expired_server_key});
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("has expired; renew it"), std::string::npos) << st.message();
}

TEST_F(HttpTlsTest, ErrorsNeverQuoteTheKey) {
  std::ifstream in(pki_.client_key);
  const std::string key((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string body = key.substr(key.find('\n') + 1, 40);
  for (const TlsClientConfig& tls :
       {TlsClientConfig{pki_.client_key, {}, {}},
        TlsClientConfig{{}, pki_.client_certificate, pki_.other_client_key},
        TlsClientConfig{{}, pki_.client_key, pki_.client_key}}) {
    Status st = Check(tls);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.message().find(body), std::string::npos) << st.message();
  }
}

TEST_F(HttpTlsTest, TlsSettingsForAnHttpUrlAreRefused) {
  Result<HttpUrl> url = ParseHttpUrl("http://127.0.0.1:8042/dicom-web");
  ASSERT_TRUE(url.ok());
  EXPECT_TRUE(MakeHttpClient(*url, {}, "dicomweb.tls").ok());
  auto client = MakeHttpClient(*url, {pki_.ca_certificate, {}, {}}, "dicomweb.tls");
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(client.status().message().find("applies to an https url"), std::string::npos);
}

TEST_F(HttpTlsTest, AClientWithABadKeyIsNotMade) {
  Result<HttpUrl> url = ParseHttpUrl("https://127.0.0.1:8443/dicom-web");
  ASSERT_TRUE(url.ok());
  auto client =
      MakeHttpClient(*url, {{}, pki_.client_certificate, pki_.other_client_key}, "dicomweb.tls");
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(MakeHttpClient(*url, {pki_.ca_certificate, pki_.client_certificate, pki_.client_key},
                             "dicomweb.tls")
                  .ok());
}

}  // namespace
}  // namespace conduit
