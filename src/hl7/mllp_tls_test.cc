// MLLP over TLS: MllpListener and MllpSender with contexts from a throw-away test CA, over
// 127.0.0.1: mutual TLS both ways, and each way a handshake can fail, reported by the listener.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "hl7/hl7_ack.h"
#include "hl7/mllp.h"
#include "hl7/mllp_stream.h"
#include "testing/test_pki.h"
#include "testing/testing.h"

namespace conduit {
namespace {

using namespace std::chrono_literals;

Hl7Message Oru(const std::string& control_id) {
  return *Hl7Message::Parse("MSH|^~\\&|RIS|TRUST|CONDUIT|HUB|20240102030405||ORU^R01|" +
                            control_id + "|P|2.5.1\rPID|1||PAT1\rOBR|1||ACC1\r");
}

class MllpTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    signal(SIGPIPE, SIG_IGN);  // as `conduit serve` does: a peer gone mid-write is an error
    auto pki = testing::MakeTestPki(dir_.path());
    ASSERT_TRUE(pki.ok()) << pki.status().ToString();
    pki_ = *pki;
  }

  DicomTlsListenerConfig ListenerTls() const {
    DicomTlsListenerConfig tls;
    tls.certificate_file = pki_.server_certificate;
    tls.key_file = pki_.server_key;
    tls.ca_file = pki_.ca_certificate;
    return tls;
  }

  TlsClientConfig SenderTls() const {
    return {true, pki_.ca_certificate, pki_.client_certificate, pki_.client_key, {}};
  }

  void StartListener(const DicomTlsListenerConfig& tls,
                     std::chrono::milliseconds handshake_timeout = 10s) {
    MllpListenerOptions options;
    options.port = 0;
    auto context = MakeMllpServerContext(tls, "ris.tls");
    ASSERT_TRUE(context.ok()) << context.status().ToString();
    options.tls = *context;
    options.handshake_timeout = handshake_timeout;
    options.on_refused = [this](const std::string& peer, const Status& why) {
      std::lock_guard lock(mu_);
      refused_.emplace_back(peer, why);
    };
    listener_ = std::make_unique<MllpListener>(
        options, Hl7Handler([this](const Hl7Message& message) -> Result<std::string> {
          AckSender sender{"CONDUIT", "HUB", "ACK-" + message.control_id(), clock_.Now()};
          ASSIGN_OR_RETURN(Hl7Message ack, BuildAck(message, AckDetail{}, sender));
          return ack.Serialize();
        }),
        clock_);
    ASSERT_TRUE(listener_->Start().ok());
  }

  std::unique_ptr<MllpSender> Sender(const TlsClientConfig& tls, const std::string& host) {
    MllpSenderOptions options;
    options.host = host;
    options.port = listener_->port();
    options.connect_timeout = 10s;
    options.ack_timeout = 10s;
    auto context = MakeMllpClientContext(tls, "ris.tls");
    EXPECT_TRUE(context.ok()) << context.status().ToString();
    if (context.ok()) options.tls = *context;
    return std::make_unique<MllpSender>(options);
  }

  std::vector<std::pair<std::string, Status>> Refused() {
    std::lock_guard lock(mu_);
    return refused_;
  }

  bool RefusedEventually(size_t count) {
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (Refused().size() < count) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(20ms);
    }
    return true;
  }

  testing::TempDir dir_;
  testing::TestPki pki_;
  FakeClock clock_;
  std::mutex mu_;
  std::vector<std::pair<std::string, Status>> refused_;
  std::unique_ptr<MllpListener> listener_;  // last: stopped before what its callbacks touch
};

TEST_F(MllpTlsTest, MessagesAndAcksTravelOverMutualTls) {
  StartListener(ListenerTls());
  auto sender = Sender(SenderTls(), "127.0.0.1");
  for (const char* id : {"T1", "T2"}) {
    Result<AckOutcome> ack = sender->Exchange(Oru(id));
    ASSERT_TRUE(ack.ok()) << ack.status().ToString();
    EXPECT_EQ(ack->code, AckCode::kAccept);
    EXPECT_EQ(ack->acknowledged_control_id, id);
  }
  EXPECT_EQ(listener_->active_connections(), 1) << "one connection for both";
  EXPECT_TRUE(Refused().empty());
}

TEST_F(MllpTlsTest, ASenderChecksTheListenersCertificateAndName) {
  StartListener(ListenerTls());
  TlsClientConfig other_ca = SenderTls();
  other_ca.ca_file = pki_.other_ca_certificate;
  const Status untrusted = Sender(other_ca, "127.0.0.1")->Send(Oru("U1"));
  EXPECT_EQ(untrusted.code(), StatusCode::kUnavailable);
  EXPECT_NE(untrusted.message().find("TLS handshake failed"), std::string::npos)
      << untrusted.ToString();
  EXPECT_TRUE(Sender(SenderTls(), "localhost")->Send(Oru("U2")).ok());
  // A listener whose certificate names another host.
  DicomTlsListenerConfig elsewhere = ListenerTls();
  elsewhere.certificate_file = pki_.wrong_name_certificate;
  elsewhere.key_file = pki_.wrong_name_key;
  StartListener(elsewhere);
  const Status wrong_name = Sender(SenderTls(), "127.0.0.1")->Send(Oru("U3"));
  EXPECT_EQ(wrong_name.code(), StatusCode::kUnavailable);
  EXPECT_NE(wrong_name.message().find("TLS handshake failed"), std::string::npos)
      << wrong_name.ToString();
  EXPECT_EQ(listener_->messages_handled(), 0u);
}

TEST_F(MllpTlsTest, TheListenerRefusesPeersWithoutAGoodCertificateAndReportsThem) {
  DicomTlsListenerConfig tls = ListenerTls();
  tls.crl_file = pki_.crl;  // revokes revoked_client_certificate
  StartListener(tls);
  TlsClientConfig none = SenderTls();
  none.client_certificate_file.clear();
  none.client_key_file.clear();
  EXPECT_FALSE(Sender(none, "127.0.0.1")->Send(Oru("N1")).ok());
  TlsClientConfig revoked = SenderTls();
  revoked.client_certificate_file = pki_.revoked_client_certificate;
  revoked.client_key_file = pki_.revoked_client_key;
  EXPECT_FALSE(Sender(revoked, "127.0.0.1")->Send(Oru("N2")).ok());
  // MLLP in the clear to the TLS port.
  MllpSenderOptions plain;
  plain.host = "127.0.0.1";
  plain.port = listener_->port();
  plain.ack_timeout = 5s;
  EXPECT_FALSE(MllpSender(plain).Send(Oru("N3")).ok());

  ASSERT_TRUE(RefusedEventually(3));
  const auto refused = Refused();
  for (const auto& [peer, why] : refused) {
    EXPECT_EQ(peer, "127.0.0.1");
    EXPECT_EQ(why.code(), StatusCode::kPermissionDenied) << why.ToString();
    EXPECT_NE(why.message().find("TLS handshake failed"), std::string::npos) << why.ToString();
  }
  // Each connection reports from its own thread, so in any order.
  EXPECT_EQ(std::count_if(refused.begin(), refused.end(),
                          [](const auto& r) {
                            return r.second.message().find("revoked") != std::string::npos;
                          }),
            1);
  EXPECT_EQ(listener_->messages_handled(), 0u);
  EXPECT_TRUE(Sender(SenderTls(), "127.0.0.1")->Send(Oru("N4")).ok());
}

TEST_F(MllpTlsTest, ANewCrlTakesEffectAtTheNextConnectionOnBothEnds) {
  namespace fs = std::filesystem;
  // The listener: the CA revokes the RIS's certificate after the start.
  const fs::path listener_crl = dir_.path() / "listener-crl.pem";
  fs::copy_file(pki_.crl, listener_crl);
  DicomTlsListenerConfig tls = ListenerTls();
  tls.crl_file = listener_crl;
  StartListener(tls);
  EXPECT_TRUE(Sender(SenderTls(), "127.0.0.1")->Send(Oru("C1")).ok());
  fs::copy_file(pki_.crl_revoking_client, listener_crl, fs::copy_options::overwrite_existing);
  EXPECT_FALSE(Sender(SenderTls(), "127.0.0.1")->Send(Oru("C2")).ok());
  ASSERT_TRUE(RefusedEventually(1));
  EXPECT_NE(Refused()[0].second.message().find("revoked"), std::string::npos)
      << Refused()[0].second.ToString();
  // A CRL file spoiled in place keeps the last good CRLs in force.
  std::ofstream(listener_crl) << "not a CRL\n";
  EXPECT_FALSE(Sender(SenderTls(), "127.0.0.1")->Send(Oru("C3")).ok());
  EXPECT_EQ(listener_->messages_handled(), 1u);

  // The sender: one context for every connection it opens; the CA revokes the listener's.
  StartListener(ListenerTls());
  const fs::path sender_crl = dir_.path() / "sender-crl.pem";
  fs::copy_file(pki_.crl, sender_crl);
  TlsClientConfig client = SenderTls();
  client.crl_file = sender_crl;
  Result<MllpTls> context = MakeMllpClientContext(client, "ris.tls");
  ASSERT_TRUE(context.ok()) << context.status().ToString();
  MllpSenderOptions options;
  options.port = listener_->port();
  options.tls = *context;
  EXPECT_TRUE(MllpSender(options).Send(Oru("C4")).ok());
  fs::copy_file(pki_.crl_revoking_server, sender_crl, fs::copy_options::overwrite_existing);
  const Status revoked = MllpSender(options).Send(Oru("C5"));
  EXPECT_EQ(revoked.code(), StatusCode::kUnavailable);
  EXPECT_NE(revoked.message().find("revoked"), std::string::npos) << revoked.ToString();
  EXPECT_EQ(listener_->messages_handled(), 1u);
}

TEST_F(MllpTlsTest, AHandshakeThatStallsIsCutOffAndReported) {
  StartListener(ListenerTls(), /*handshake_timeout=*/1s);
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(listener_->port()));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_TRUE(RefusedEventually(1));
  EXPECT_EQ(Refused()[0].second.code(), StatusCode::kDeadlineExceeded)
      << Refused()[0].second.ToString();
  char byte;
  EXPECT_EQ(recv(fd, &byte, 1, 0), 0) << "closed by the listener";
  close(fd);
}

TEST_F(MllpTlsTest, ContextsNameTheSettingOfAFileThatCannotBeUsed) {
  DicomTlsListenerConfig tls = ListenerTls();
  tls.key_file = pki_.other_client_key;
  Result<MllpTls> mismatched = MakeMllpServerContext(tls, "ris.tls");
  EXPECT_EQ(mismatched.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(mismatched.status().message().find("ris.tls.key_file"), std::string::npos)
      << mismatched.status().ToString();
  TlsClientConfig client = SenderTls();
  client.ca_file = dir_.path() / "missing.pem";
  Result<MllpTls> no_ca = MakeMllpClientContext(client, "ris.tls");
  EXPECT_EQ(no_ca.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(no_ca.status().message().find("ris.tls.ca_file"), std::string::npos)
      << no_ca.status().ToString();
}

}  // namespace
}  // namespace conduit
