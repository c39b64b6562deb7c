// The PACS query client over https: a real TLS server (cpp-httplib on 127.0.0.1, certificates
// from a throw-away test CA) answers QIDO-RS. Plain-http DICOMweb against Orthanc is covered
// in pipeline/prior_fetch_orthanc_test.cc and tests/e2e/test_priors.py (Debian 12's Orthanc
// 1.10.1 crashes on its first https request, so it cannot be the TLS peer here).
#include "adapters/dicomweb_client.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "testing/test_pki.h"
#include "testing/testing.h"

namespace conduit {
namespace {

using namespace std::chrono_literals;

constexpr char kPatient[] = "TLS-PATIENT-1";
constexpr char kStudy[] = "1.2.826.0.1.3680043.10.1137.970";

class DicomwebClientTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<testing::TestPki> pki = testing::MakeTestPki(tmp_.path());
    ASSERT_TRUE(pki.ok()) << pki.status().ToString();
    pki_ = *pki;
    server_ = std::make_unique<httplib::SSLServer>(
        pki_.server_certificate.c_str(), pki_.server_key.c_str(), pki_.ca_certificate.c_str());
    ASSERT_TRUE(server_->is_valid());
    server_->Get("/dicom-web/studies", [](const httplib::Request& req, httplib::Response& res) {
      const nlohmann::json study = {
          {"0020000D", {{"vr", "UI"}, {"Value", {kStudy}}}},
          {"00100020", {{"vr", "LO"}, {"Value", {req.get_param_value("PatientID")}}}},
          {"00080020", {{"vr", "DA"}, {"Value", {"20240101"}}}}};
      res.set_content(nlohmann::json::array({study}).dump(), "application/dicom+json");
    });
    port_ = server_->bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_->listen_after_bind(); });
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!server_->is_running() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(1ms);
    }
  }
  void TearDown() override {
    if (server_) server_->stop();
    if (thread_.joinable()) thread_.join();
  }

  // The PACS, its CA trusted and our client certificate presented.
  DicomwebPeer Peer() const {
    DicomwebPeer peer;
    peer.url = "https://127.0.0.1:" + std::to_string(port_) + "/dicom-web";
    peer.tls = {true, pki_.ca_certificate, pki_.client_certificate, pki_.client_key, {}};
    peer.timeout = 10s;
    return peer;
  }
  static Result<std::vector<StudyMatch>> Search(const DicomwebPeer& peer) {
    return SearchStudies(peer, kPatient, std::chrono::steady_clock::now() + 30s, {});
  }

  testing::TempDir tmp_;
  testing::TestPki pki_;
  std::unique_ptr<httplib::SSLServer> server_;
  int port_ = 0;
  std::thread thread_;
};

TEST_F(DicomwebClientTlsTest, SearchesAPacsOverMutualTls) {
  auto found = Search(Peer());
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ((*found)[0].study_uid.str(), kStudy);
}

TEST_F(DicomwebClientTlsTest, APacsWhoseCertificateCannotBeTrustedIsUnavailableAndSaysWhy) {
  DicomwebPeer peer = Peer();
  peer.tls.ca_file = pki_.other_ca_certificate;
  auto found = Search(peer);
  ASSERT_FALSE(found.ok());
  EXPECT_EQ(found.status().code(), StatusCode::kUnavailable);
  // OpenSSL's reason depends on whether the server sends its CA along (this one does).
  EXPECT_NE(found.status().message().find("the TLS certificate of 127.0.0.1:" +
                                          std::to_string(port_) + " was not accepted ("),
            std::string::npos)
      << found.status().message();
  EXPECT_NE(
      found.status().message().find("); priors_source.tls.ca_file must hold the CA that issued it"),
      std::string::npos)
      << found.status().message();
}

TEST_F(DicomwebClientTlsTest, APacsWhoseCertificateIsRevokedIsRefusedAndTheMessageSaysSo) {
  DicomwebPeer peer = Peer();
  peer.tls.crl_file = pki_.crl;  // revokes another certificate only
  auto found = Search(peer);
  EXPECT_TRUE(found.ok()) << found.status().ToString();
  peer.tls.crl_file = pki_.crl_revoking_server;
  found = Search(peer);
  ASSERT_FALSE(found.ok());
  EXPECT_EQ(found.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(found.status().message().find("(certificate revoked); priors_source.tls.crl_file"),
            std::string::npos)
      << found.status().message();
}

TEST_F(DicomwebClientTlsTest, WithoutTheClientCertificateThePacsWantsTheMessageSaysSo) {
  DicomwebPeer peer = Peer();
  peer.tls.client_certificate_file.clear();
  peer.tls.client_key_file.clear();
  auto found = Search(peer);
  ASSERT_FALSE(found.ok());
  EXPECT_EQ(found.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(found.status().message().find("priors_source.tls.client_certificate_file"),
            std::string::npos)
      << found.status().message();
}

TEST_F(DicomwebClientTlsTest, PlainHttpToATlsPortFails) {
  DicomwebPeer peer = Peer();
  peer.url = "http://127.0.0.1:" + std::to_string(port_) + "/dicom-web";
  peer.tls = {};
  EXPECT_FALSE(Search(peer).ok());
}

}  // namespace
}  // namespace conduit
