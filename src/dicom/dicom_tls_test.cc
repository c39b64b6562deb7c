// DICOM over TLS with real peers: DCMTK's storescp and storescu speaking TLS (their default
// BCP 195 non-downgrading profile, peer certificates required), and Conduit's TLS listener
// with Conduit's own sender. Certificates come from a throw-away test CA (testing/test_pki.h).
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "dicom/dimse_listener.h"
#include "dicom/dimse_sender.h"
#include "dicom/test_support.h"
#include "testing/test_pki.h"

namespace conduit {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::CommittingSink;
using testing::Process;
using testing::TempDir;

constexpr const char* kStudy = "1.2.826.0.1.3680043.10.40";

class DicomTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(dir_.path() / "pki");
    Result<testing::TestPki> pki = testing::MakeTestPki(dir_.path() / "pki");
    ASSERT_TRUE(pki.ok()) << pki.status().ToString();
    pki_ = *pki;
    files_ = testing::WriteCtSeries(dir_.path() / "send", 2, kStudy);
  }

  // storescp speaking only TLS with `certificate`, wanting a client certificate from our CA.
  int StartTlsStorescp(const fs::path& certificate, const fs::path& key) {
    const fs::path out = dir_.path() / "storescp";
    fs::create_directories(out);
    const int port = testing::FreePort();
    storescp_ = std::make_unique<Process>(std::vector<std::string>{
        "storescp", "-aet", "PEER", "-od", out.string(), "+tls", key.string(), certificate.string(),
        "+cf", pki_.ca_certificate.string(), std::to_string(port)});
    EXPECT_TRUE(testing::WaitForPort(port)) << "storescp did not start on " << port;
    return port;
  }

  size_t StoredByStorescp() const {
    size_t n = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir_.path() / "storescp")) ++n;
    return n;
  }

  DicomPeer TlsPeer(int port, const std::string& called = "PEER") const {
    DicomPeer peer{AeTitle("CONDUIT"), AeTitle(called), "127.0.0.1", port, 20s, {}};
    peer.tls = {true, pki_.ca_certificate, pki_.client_certificate, pki_.client_key, {}};
    return peer;
  }

  // Conduit's TLS listener on a free port, its certificate from our CA.
  std::unique_ptr<DimseListener> StartTlsListener(CommittingSink& sink,
                                                  std::chrono::milliseconds acse_timeout = 30s,
                                                  const fs::path& crl_file = {}) {
    DicomConfig config;
    config.acse_timeout = acse_timeout;
    config.tls.crl_file = crl_file;
    config.bind = "127.0.0.1";
    config.port = testing::FreePort();
    config.tls.port = testing::FreePort();
    config.tls.certificate_file = pki_.server_certificate;
    config.tls.key_file = pki_.server_key;
    config.tls.ca_file = pki_.ca_certificate;
    auto listener = MakeDimseTlsListener(config, sink);
    Status st = listener->Start();
    EXPECT_TRUE(st.ok()) << st.ToString();
    return listener;
  }

  testing::CommandResult Storescu(int port, std::vector<std::string> tls_options) {
    std::vector<std::string> argv = {"storescu", "-aet", "MODALITY", "-aec", "CONDUIT"};
    argv.insert(argv.end(), tls_options.begin(), tls_options.end());
    argv.push_back("127.0.0.1");
    argv.push_back(std::to_string(port));
    for (const fs::path& f : files_) argv.push_back(f.string());
    return testing::RunCommand(argv, 60s);
  }

  TempDir dir_;
  testing::TestPki pki_;
  std::vector<fs::path> files_;
  std::unique_ptr<Process> storescp_;
};

TEST_F(DicomTlsTest, SendsToStorescpOverMutualTls) {
  const int port = StartTlsStorescp(pki_.server_certificate, pki_.server_key);
  Result<std::vector<Status>> sent = StoreFiles(TlsPeer(port), files_);
  ASSERT_TRUE(sent.ok()) << sent.status().ToString();
  for (const Status& s : *sent) EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(StoredByStorescp(), 2u);
  EXPECT_TRUE(Echo(TlsPeer(port)).ok());
}

TEST_F(DicomTlsTest, APeerWhoseCertificateCannotBeTrustedGetsNothing) {
  const int port = StartTlsStorescp(pki_.server_certificate, pki_.server_key);
  DicomPeer peer = TlsPeer(port);
  peer.tls.ca_file = pki_.other_ca_certificate;
  Result<std::vector<Status>> sent = StoreFiles(peer, files_);
  ASSERT_FALSE(sent.ok());
  EXPECT_EQ(sent.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(sent.status().message().find("certificate verify failed (TLS: "), std::string::npos)
      << sent.status().message();
  EXPECT_NE(sent.status().message().find("PEER@127.0.0.1:" + std::to_string(port) + " (TLS)"),
            std::string::npos)
      << sent.status().message();
  EXPECT_EQ(StoredByStorescp(), 0u);
}

TEST_F(DicomTlsTest, APeerWhoseCertificateNamesAnotherHostGetsNothing) {
  const int port = StartTlsStorescp(pki_.wrong_name_certificate, pki_.wrong_name_key);
  Result<std::vector<Status>> sent = StoreFiles(TlsPeer(port), files_);
  ASSERT_FALSE(sent.ok());
  EXPECT_NE(sent.status().message().find("IP address mismatch"), std::string::npos)
      << sent.status().message();
  EXPECT_EQ(StoredByStorescp(), 0u);
}

TEST_F(DicomTlsTest, APeerWhoseCertificateIsRevokedGetsNothing) {
  const int port = StartTlsStorescp(pki_.server_certificate, pki_.server_key);
  DicomPeer peer = TlsPeer(port);
  peer.tls.crl_file = pki_.crl;  // revokes another certificate only
  Result<std::vector<Status>> sent = StoreFiles(peer, files_);
  ASSERT_TRUE(sent.ok()) << sent.status().ToString();
  EXPECT_EQ(StoredByStorescp(), 2u);
  peer.tls.crl_file = pki_.crl_revoking_server;
  sent = StoreFiles(peer, files_);
  ASSERT_FALSE(sent.ok());
  EXPECT_EQ(sent.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(sent.status().message().find("certificate revoked"), std::string::npos)
      << sent.status().message();
}

TEST_F(DicomTlsTest, WithoutAClientCertificateStorescpRefuses) {
  const int port = StartTlsStorescp(pki_.server_certificate, pki_.server_key);
  DicomPeer peer = TlsPeer(port);
  peer.tls.client_certificate_file.clear();
  peer.tls.client_key_file.clear();
  Result<std::vector<Status>> sent = StoreFiles(peer, files_);
  ASSERT_FALSE(sent.ok());
  EXPECT_EQ(sent.status().code(), StatusCode::kUnavailable) << sent.status().ToString();
  EXPECT_EQ(StoredByStorescp(), 0u);
}

TEST_F(DicomTlsTest, StorescuStoresOnConduitsTlsListener) {
  CommittingSink sink(dir_.path() / "sink");
  auto listener = StartTlsListener(sink);
  testing::CommandResult result = Storescu(
      listener->port(), {"+tls", pki_.client_key.string(), pki_.client_certificate.string(), "+cf",
                         pki_.ca_certificate.string()});
  EXPECT_EQ(result.exit_code, 0) << result.output;
  const auto instances = sink.instances();
  ASSERT_EQ(instances.size(), 2u);
  EXPECT_TRUE(instances[0].association.tls);
  EXPECT_EQ(instances[0].association.calling_ae.str(), "MODALITY");
}

TEST_F(DicomTlsTest, TheTlsListenerRefusesAPeerWithoutACertificateOrWithoutTls) {
  CommittingSink sink(dir_.path() / "sink");
  auto listener = StartTlsListener(sink);
  // Anonymous TLS: storescu presents no certificate.
  testing::CommandResult anonymous =
      Storescu(listener->port(), {"+tla", "+cf", pki_.ca_certificate.string()});
  EXPECT_NE(anonymous.exit_code, 0) << anonymous.output;
  testing::CommandResult plain = Storescu(listener->port(), {});
  EXPECT_NE(plain.exit_code, 0) << plain.output;
  EXPECT_TRUE(sink.instances().empty());
  const auto rejected = sink.rejected();
  ASSERT_GE(rejected.size(), 2u);
  EXPECT_EQ(rejected[0].code(), StatusCode::kPermissionDenied);
  EXPECT_NE(rejected[0].message().find("TLS association refused"), std::string::npos)
      << rejected[0].message();
  // The listener still serves a proper peer afterwards.
  testing::CommandResult good = Storescu(
      listener->port(), {"+tls", pki_.client_key.string(), pki_.client_certificate.string(), "+cf",
                         pki_.ca_certificate.string()});
  EXPECT_EQ(good.exit_code, 0) << good.output;
}

TEST_F(DicomTlsTest, PeersThatStallTheirHandshakeDoNotHoldUpOthers) {
  CommittingSink sink(dir_.path() / "sink");
  auto listener = StartTlsListener(sink, /*acse_timeout=*/120s);
  // Connected and silent; the first bytes of a TLS record (a ClientHello that never comes).
  testing::SilentPeer silent(listener->port());
  testing::SilentPeer partial_hello(listener->port(), std::string("\x16\x03\x01\x02\x00", 5));
  ASSERT_TRUE(silent.connected() && partial_hello.connected());
  testing::CommandResult result = Storescu(
      listener->port(), {"+tls", pki_.client_key.string(), pki_.client_certificate.string(), "+cf",
                         pki_.ca_certificate.string()});
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(sink.instances().size(), 2u);
}

TEST_F(DicomTlsTest, AHandshakeThatStallsIsCutOffAfterTheAcseTimeoutAndReported) {
  CommittingSink sink(dir_.path() / "sink");
  auto listener = StartTlsListener(sink, /*acse_timeout=*/1s);
  testing::SilentPeer partial_hello(listener->port(), std::string("\x16\x03\x01\x02\x00", 5));
  ASSERT_TRUE(partial_hello.connected());
  EXPECT_TRUE(partial_hello.ClosedByPeer(30s));
  ASSERT_TRUE(testing::Eventually([&] { return !sink.rejected().empty(); }));
  EXPECT_EQ(sink.rejected()[0].code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(sink.rejected()[0].message().find(
                "TLS association refused: handshake not finished within 1 s (dicom.acse_timeout)"),
            std::string::npos)
      << sink.rejected()[0].message();
}

TEST_F(DicomTlsTest, AHandshakeThatDripsIsCutOffAfterTheAcseTimeoutToo) {
  CommittingSink sink(dir_.path() / "sink");
  auto listener = StartTlsListener(sink, /*acse_timeout=*/2s);
  // A record header announcing a 512-byte ClientHello, then a byte every 200 ms: no read
  // waits long, so only a deadline on the whole handshake ends it (else after about 100 s).
  testing::SilentPeer dripping(listener->port(), std::string("\x16\x03\x01\x02\x00", 5));
  ASSERT_TRUE(dripping.connected());
  dripping.Drip(std::chrono::milliseconds(200));
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(dripping.ClosedByPeer(60s));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 30s);
  ASSERT_TRUE(testing::Eventually([&] { return !sink.rejected().empty(); }));
  EXPECT_EQ(sink.rejected()[0].code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(sink.rejected()[0].message().find("handshake not finished within 2 s"),
            std::string::npos)
      << sink.rejected()[0].message();
}

TEST_F(DicomTlsTest, ARevokedClientCertificateIsRefusedAndANewCrlNeedsNoRestart) {
  const fs::path crl = dir_.path() / "listener-crl.pem";
  fs::copy_file(pki_.crl, crl);
  CommittingSink sink(dir_.path() / "sink");
  auto listener = StartTlsListener(sink, 30s, crl);
  auto with = [&](const fs::path& key, const fs::path& certificate) {
    return Storescu(listener->port(), {"+tls", key.string(), certificate.string(), "+cf",
                                       pki_.ca_certificate.string()});
  };
  testing::CommandResult revoked = with(pki_.revoked_client_key, pki_.revoked_client_certificate);
  EXPECT_NE(revoked.exit_code, 0) << revoked.output;
  ASSERT_FALSE(sink.rejected().empty());
  EXPECT_NE(sink.rejected()[0].message().find("certificate revoked"), std::string::npos)
      << sink.rejected()[0].message();
  testing::CommandResult good = with(pki_.client_key, pki_.client_certificate);
  EXPECT_EQ(good.exit_code, 0) << good.output;
  EXPECT_EQ(sink.instances().size(), 2u);

  // The CA revokes the other certificate too: the next association sees the new CRL.
  fs::copy_file(pki_.crl_revoking_client, crl, fs::copy_options::overwrite_existing);
  testing::CommandResult now_revoked = with(pki_.client_key, pki_.client_certificate);
  EXPECT_NE(now_revoked.exit_code, 0) << now_revoked.output;
  EXPECT_EQ(sink.instances().size(), 2u);

  // A CRL file spoiled in place keeps the last good CRLs in force.
  std::ofstream(crl) << "not a CRL\n";
  testing::CommandResult still_revoked = with(pki_.client_key, pki_.client_certificate);
  EXPECT_NE(still_revoked.exit_code, 0) << still_revoked.output;
  testing::CommandResult never = with(pki_.revoked_client_key, pki_.revoked_client_certificate);
  EXPECT_NE(never.exit_code, 0) << never.output;
}

TEST_F(DicomTlsTest, ConduitsSenderAndTlsListenerTalkToEachOther) {
  CommittingSink sink(dir_.path() / "sink");
  auto listener = StartTlsListener(sink);
  Result<std::vector<Status>> sent = StoreFiles(TlsPeer(listener->port(), "CONDUIT"), files_);
  ASSERT_TRUE(sent.ok()) << sent.status().ToString();
  EXPECT_EQ(sink.instances().size(), 2u);
}

}  // namespace
}  // namespace conduit
