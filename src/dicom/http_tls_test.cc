// The HTTPS client made from TLS settings, on certificates made by a throw-away test CA
// (testing/test_pki.h).
#include "dicom/http_tls.h"

#include <gtest/gtest.h>

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

  testing::TempDir tmp_;
  testing::TestPki pki_;
};

TEST_F(HttpTlsTest, TlsSettingsForAnHttpUrlAreRefused) {
  Result<HttpUrl> url = ParseHttpUrl("http://127.0.0.1:8042/dicom-web");
  ASSERT_TRUE(url.ok());
  EXPECT_TRUE(MakeHttpClient(*url, {}, "dicomweb.tls").ok());
  auto client = MakeHttpClient(*url, {true, pki_.ca_certificate, {}, {}, {}}, "dicomweb.tls");
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(client.status().message().find("applies to an https url"), std::string::npos);
}

TEST_F(HttpTlsTest, AClientWithABadKeyIsNotMade) {
  Result<HttpUrl> url = ParseHttpUrl("https://127.0.0.1:8443/dicom-web");
  ASSERT_TRUE(url.ok());
  auto client = MakeHttpClient(*url, {true, {}, pki_.client_certificate, pki_.other_client_key, {}},
                               "dicomweb.tls");
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(MakeHttpClient(
                  *url, {true, pki_.ca_certificate, pki_.client_certificate, pki_.client_key, {}},
                  "dicomweb.tls")
                  .ok());
}

}  // namespace
}  // namespace conduit
