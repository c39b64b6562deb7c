#include "http/ups_event_channel.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "testing/test_pki.h"

namespace conduit {
namespace {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace websocket = boost::beast::websocket;
namespace net = boost::asio;
using tcp = boost::asio::ip::tcp;
using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr auto kWait = 20s;  // generous: the machine is shared

// Polls `done` until true or kWait passes.
template <typename F>
bool Eventually(F done) {
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

UpsEvent StateReport(const std::string& uid, const std::string& state) {
  UpsEvent e;
  e.event_type = 1;
  e.workitem_uid = uid;
  e.attributes = json{{"00741000", {{"vr", "CS"}, {"Value", {state}}}},
                      {"00404041", {{"vr", "CS"}, {"Value", {"READY"}}}}}
                     .dump();
  return e;
}

// A WebSocket client on its own io_context; every operation bounded by kWait. Stream:
// beast::tcp_stream (ws://) or beast::ssl_stream<beast::tcp_stream> (wss://, trusting only
// the CA file given to the constructor and checking that the certificate names 127.0.0.1).
template <typename Stream>
class BasicClient {
 public:
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;

  BasicClient() requires(!kTls) : ws_(ioc_) {}
  // With `certificate` and `key`: presents them as its client certificate.
  explicit BasicClient(const std::filesystem::path& ca_file,
                       const std::filesystem::path& certificate = {},
                       const std::filesystem::path& key = {}) requires(kTls)
      : ws_(ioc_, tls_) {
    // The stream's SSL object exists already: what it verifies and presents is set on it.
    tls_.load_verify_file(ca_file.string());
    ws_.next_layer().set_verify_mode(net::ssl::verify_peer);
    if (!certificate.empty()) {
      SSL* ssl = ws_.next_layer().native_handle();
      EXPECT_EQ(SSL_use_certificate_chain_file(ssl, certificate.c_str()), 1);
      EXPECT_EQ(SSL_use_PrivateKey_file(ssl, key.c_str(), SSL_FILETYPE_PEM), 1);
    }
  }

  // Connects to 127.0.0.1:port and upgrades `target`; the handshake's HTTP response is kept.
  beast::error_code Open(int port, const std::string& target, const std::string& token,
                         const std::string& forwarded_for = "") {
    beast::error_code ec;
    beast::get_lowest_layer(ws_).expires_after(kWait);
    beast::get_lowest_layer(ws_).socket().connect(
        tcp::endpoint(net::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port)), ec);
    if (ec) return ec;
    if constexpr (kTls) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ws_.next_layer().native_handle()), "127.0.0.1");
      bool shaken = false;
      ws_.next_layer().async_handshake(net::ssl::stream_base::client, [&](beast::error_code e) {
        ec = e;
        shaken = true;
      });
      Run(shaken);
      if (!shaken) return net::error::timed_out;
      if (ec) return ec;
    }
    if (!token.empty() || !forwarded_for.empty()) {
      ws_.set_option(
          websocket::stream_base::decorator([token, forwarded_for](websocket::request_type& req) {
            if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
            if (!forwarded_for.empty()) req.set("X-Forwarded-For", forwarded_for);
          }));
    }
    bool done = false;
    ws_.async_handshake(response_, "127.0.0.1:" + std::to_string(port), target,
                        [&](beast::error_code e) {
                          ec = e;
                          done = true;
                        });
    Run(done);
    if (!done) return net::error::timed_out;
    if (!ec) beast::get_lowest_layer(ws_).expires_never();
    return ec;
  }

  // The next text message, or nullopt on close, error or timeout (`error` says which).
  std::optional<std::string> Read(beast::error_code* error = nullptr) {
    beast::flat_buffer buffer;
    beast::error_code ec;
    bool done = false;
    ws_.async_read(buffer, [&](beast::error_code e, size_t) {
      ec = e;
      done = true;
    });
    Run(done);
    if (!done) {
      beast::get_lowest_layer(ws_).close();
      Run(done);
      ec = net::error::timed_out;
    }
    if (error) *error = ec;
    if (ec) return std::nullopt;
    return beast::buffers_to_string(buffer.data());
  }

  const websocket::response_type& response() const { return response_; }

 private:
  void Run(bool& done) {
    ioc_.restart();
    const auto deadline = std::chrono::steady_clock::now() + kWait;
    while (!done && std::chrono::steady_clock::now() < deadline) ioc_.run_for(100ms);
  }

  net::io_context ioc_;
  net::ssl::context tls_{net::ssl::context::tls_client};
  websocket::stream<Stream> ws_;
  websocket::response_type response_;
};

using Client = BasicClient<beast::tcp_stream>;
using TlsClient = BasicClient<beast::ssl_stream<beast::tcp_stream>>;

class UpsEventChannelTest : public ::testing::Test {
 protected:
  void StartChannel(UpsEventChannelOptions options = {}) {
    options.bind = "127.0.0.1";
    options.port = 0;
    channel_ = std::make_unique<UpsEventChannel>(
        options,
        [](const std::string& ae, const std::string& token) -> UpsChannelDecision {
          // token-one's tool subscribed as PERF1, token-two's as PERF2; "broken" cannot be
          // checked now.
          if (token == "broken") return UpsChannelAccess::kUnavailable;
          if (token == "token-one") {
            if (ae != "PERF1") return UpsChannelAccess::kForbidden;
            return UpsChannelDecision(UpsChannelAccess::kGranted, "tool-one");
          }
          if (token == "token-two") {
            if (ae != "PERF2") return UpsChannelAccess::kForbidden;
            return UpsChannelDecision(UpsChannelAccess::kGranted, "tool-two");
          }
          if (token == "admin") return UpsChannelAccess::kGranted;  // every tool's events
          return UpsChannelAccess::kUnauthenticated;
        },
        [this](const AuthRefusal& refusal) {
          std::lock_guard lock(refusals_mu_);
          refusals_.push_back(refusal);
        });
    ASSERT_TRUE(channel_->Start().ok());
    ASSERT_GT(channel_->port(), 0);
  }
  void TearDown() override {
    if (channel_) channel_->Stop();
  }

  std::vector<AuthRefusal> Refusals() {
    std::lock_guard lock(refusals_mu_);
    return refusals_;
  }

  std::unique_ptr<UpsEventChannel> channel_;
  std::mutex refusals_mu_;
  std::vector<AuthRefusal> refusals_;  // reported token refusals
};

TEST_F(UpsEventChannelTest, SubscriberReceivesTheEventReportAsDicomJson) {
  StartChannel();
  Client client;
  ASSERT_FALSE(client.Open(channel_->port(), "/ws/subscribers/PERF1", "token-one"));
  ASSERT_TRUE(Eventually([&] { return channel_->ConnectionCount("PERF1") == 1; }));

  channel_->Send("PERF2", StateReport("2.25.2", "SCHEDULED"));  // another AE: not for us
  channel_->Send("PERF1", StateReport("2.25.1", "IN PROGRESS"));
  std::optional<std::string> text = client.Read();
  ASSERT_TRUE(text);
  json report = json::parse(*text);
  EXPECT_EQ(report["00000002"]["Value"][0], "1.2.840.10008.5.1.4.34.6.4");
  EXPECT_EQ(report["00000002"]["vr"], "UI");
  EXPECT_EQ(report["00000100"]["Value"][0], 0x0100);
  EXPECT_EQ(report["00000110"]["vr"], "US");
  EXPECT_EQ(report["00001000"]["Value"][0], "2.25.1");
  EXPECT_EQ(report["00001002"]["Value"][0], 1);
  EXPECT_EQ(report["00001002"]["vr"], "US");
  EXPECT_EQ(report["00741000"]["Value"][0], "IN PROGRESS");
  EXPECT_EQ(report["00404041"]["Value"][0], "READY");
}

TEST_F(UpsEventChannelTest, EventsKeepTheirOrderAndReachEveryConnectionOfTheAe) {
  StartChannel();
  Client a, b;
  ASSERT_FALSE(a.Open(channel_->port(), "/ws/subscribers/PERF1", "token-one"));
  ASSERT_FALSE(b.Open(channel_->port(), "/subscribers/PERF1", "token-one"));
  ASSERT_TRUE(Eventually([&] { return channel_->ConnectionCount("PERF1") == 2; }));
  for (int i = 0; i < 20; ++i)
    channel_->Send("PERF1", StateReport("2.25." + std::to_string(i), "SCHEDULED"));
  for (Client* c : {&a, &b}) {
    for (int i = 0; i < 20; ++i) {
      std::optional<std::string> text = c->Read();
      ASSERT_TRUE(text) << i;
      EXPECT_EQ(json::parse(*text)["00001000"]["Value"][0], "2.25." + std::to_string(i));
    }
  }
}

TEST_F(UpsEventChannelTest, RefusalsAnswerHttpWithAReason) {
  StartChannel();
  struct Case {
    std::string target, token;
    unsigned status;
  };
  const Case cases[] = {
      {"/ws/subscribers/PERF1", "", 401},
      {"/ws/subscribers/PERF1", "not-a-token", 401},
      {"/ws/subscribers/PERF1", "token-two", 403},
      {"/ws/subscribers/PERF1", "broken", 503},
      {"/ws/workitems/PERF1", "token-one", 404},
      {"/ws/subscribers/" + std::string(17, 'A'), "token-one", 400},
      {"/ws/subscribers/BAD%5CAE", "token-one", 400},
  };
  for (const Case& c : cases) {
    Client client;
    beast::error_code ec = client.Open(channel_->port(), c.target, c.token);
    EXPECT_EQ(ec, websocket::error::upgrade_declined) << c.target;
    EXPECT_EQ(client.response().result_int(), c.status) << c.target;
    EXPECT_NE(client.response().body().find("error"), std::string::npos) << c.target;
  }
  EXPECT_EQ(channel_->ConnectionCount("PERF1"), 0u);
  // The three token refusals went to the reporter (counted, throttled, audited in the
  // gateway); the others are only logged.
  const std::vector<AuthRefusal> refused = Refusals();
  ASSERT_EQ(refused.size(), 3u);
  const AuthRefusalKind kinds[] = {AuthRefusalKind::kMissing, AuthRefusalKind::kInvalid,
                                   AuthRefusalKind::kForbidden};
  for (size_t i = 0; i < refused.size(); ++i) {
    EXPECT_EQ(refused[i].kind, kinds[i]) << i;
    EXPECT_EQ(refused[i].guard, "worklist");
    EXPECT_EQ(refused[i].peer, "127.0.0.1");
    EXPECT_EQ(refused[i].route, "/ws/subscribers/{ae}");
    EXPECT_EQ(refused[i].reason.find("token-two"), std::string::npos);
  }
}

TEST_F(UpsEventChannelTest, BehindATrustedProxyARefusalNamesTheForwardedClient) {
  UpsEventChannelOptions options;
  options.trusted_proxies = {AddressRange::Parse("127.0.0.1").value()};
  StartChannel(options);
  Client client;
  EXPECT_EQ(client.Open(channel_->port(), "/ws/subscribers/PERF1", "not-a-token",
                        "198.51.100.7, 127.0.0.1"),
            websocket::error::upgrade_declined);
  const std::vector<AuthRefusal> refused = Refusals();
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(refused[0].peer, "198.51.100.7");
  EXPECT_EQ(refused[0].via, "127.0.0.1");
}

TEST_F(UpsEventChannelTest, AConnectionCarriesOnlyTheEventsOfTheToolItWasOpenedFor) {
  StartChannel();
  Client tool_one;
  ASSERT_FALSE(tool_one.Open(channel_->port(), "/ws/subscribers/PERF1", "token-one"));
  Client admin;
  ASSERT_FALSE(admin.Open(channel_->port(), "/ws/subscribers/PERF1", "admin"));
  ASSERT_TRUE(Eventually([&] { return channel_->ConnectionCount("PERF1") == 2; }));
  // PERF1 changed hands (tool-two subscribed under it) while tool-one's connection stayed open.
  UpsEvent other = StateReport("2.25.2", "SCHEDULED");
  other.tool = "tool-two";
  channel_->Send("PERF1", other);
  UpsEvent own = StateReport("2.25.1", "SCHEDULED");
  own.tool = "tool-one";
  channel_->Send("PERF1", own);

  std::optional<std::string> first = tool_one.Read();
  ASSERT_TRUE(first);
  EXPECT_EQ(json::parse(*first)["00001000"]["Value"][0], "2.25.1") << "tool-two's event skipped";
  for (const char* uid : {"2.25.2", "2.25.1"}) {
    std::optional<std::string> seen = admin.Read();
    ASSERT_TRUE(seen);
    EXPECT_EQ(json::parse(*seen)["00001000"]["Value"][0], uid) << "the administrator sees all";
  }
}

TEST_F(UpsEventChannelTest, PlainHttpRequestGets426) {
  StartChannel();
  net::io_context ioc;
  tcp::socket socket(ioc);
  socket.connect(
      tcp::endpoint(net::ip::make_address("127.0.0.1"), static_cast<uint16_t>(channel_->port())));
  const std::string request =
      "GET /ws/subscribers/PERF1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer token-one\r\n\r\n";
  net::write(socket, net::buffer(request));
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(socket, buffer, res);
  EXPECT_EQ(res.result_int(), 426u);
}

TEST_F(UpsEventChannelTest, SubscriberThatFallsBehindIsClosed) {
  UpsEventChannelOptions options;
  options.max_queued_events = 4;
  StartChannel(options);
  Client client;  // never reads
  ASSERT_FALSE(client.Open(channel_->port(), "/ws/subscribers/PERF1", "token-one"));
  ASSERT_TRUE(Eventually([&] { return channel_->ConnectionCount("PERF1") == 1; }));
  UpsEvent big = StateReport("2.25.1", "IN PROGRESS");
  big.attributes = json{{"00741238", {{"vr", "LT"}, {"Value", {std::string(60'000, 'x')}}}}}.dump();
  // Far more than the socket buffers hold: the channel must not block nor grow without end.
  for (int i = 0; i < 2000 && channel_->ConnectionCount("PERF1") > 0; ++i) {
    channel_->Send("PERF1", big);
  }
  EXPECT_TRUE(Eventually([&] { return channel_->ConnectionCount("PERF1") == 0; }));
}

TEST_F(UpsEventChannelTest, StopClosesOpenConnectionsPromptly) {
  StartChannel();
  Client a, b;
  ASSERT_FALSE(a.Open(channel_->port(), "/ws/subscribers/PERF1", "token-one"));
  ASSERT_FALSE(b.Open(channel_->port(), "/ws/subscribers/PERF2", "token-two"));
  ASSERT_TRUE(Eventually([&] {
    return channel_->ConnectionCount("PERF1") == 1 && channel_->ConnectionCount("PERF2") == 1;
  }));
  // A third connection that never finishes its HTTP request.
  net::io_context ioc;
  tcp::socket idle(ioc);
  idle.connect(
      tcp::endpoint(net::ip::make_address("127.0.0.1"), static_cast<uint16_t>(channel_->port())));
  const auto start = std::chrono::steady_clock::now();
  channel_->Stop();
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_LT(took, 5s) << "Stop() should take about a second at most";
  beast::error_code ec;
  EXPECT_FALSE(a.Read(&ec));
  EXPECT_NE(ec, net::error::timed_out);
  EXPECT_EQ(channel_->ConnectionCount("PERF1"), 0u);
  channel_->Send("PERF1", StateReport("2.25.1", "SCHEDULED"));  // after Stop: dropped
}

TEST_F(UpsEventChannelTest, SendWithoutSubscribersOrBeforeStartIsDropped) {
  UpsEventChannel idle({}, nullptr);
  idle.Send("PERF1", StateReport("2.25.1", "SCHEDULED"));
  StartChannel();
  channel_->Send("NOBODY", StateReport("2.25.1", "SCHEDULED"));
  EXPECT_EQ(channel_->ConnectionCount("NOBODY"), 0u);
}

TEST(UpsEventReportTest, ScpStatusChangeUsesTheWellKnownInstanceAndBadAttributesAreLeftOut) {
  UpsEvent e;
  e.event_type = 4;
  e.attributes = "not json";
  json report = json::parse(UpsEventChannel::EventReportJson(e, 7));
  EXPECT_EQ(report["00001000"]["Value"][0], "1.2.840.10008.5.1.4.34.5");
  EXPECT_EQ(report["00001002"]["Value"][0], 4);
  EXPECT_EQ(report["00000110"]["Value"][0], 7);
  EXPECT_EQ(report.size(), 5u);
}

class UpsEventChannelTlsTest : public UpsEventChannelTest {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("ups_event_tls_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    Result<testing::TestPki> pki = testing::MakeTestPki(dir_);
    ASSERT_TRUE(pki.ok()) << pki.status().ToString();
    pki_ = *pki;
  }
  void TearDown() override {
    UpsEventChannelTest::TearDown();
    std::filesystem::remove_all(dir_);
  }
  UpsEventChannelOptions TlsOptions() const {
    UpsEventChannelOptions options;
    options.certificate_file = pki_.server_certificate;
    options.key_file = pki_.server_key;
    return options;
  }

  std::filesystem::path dir_;
  testing::TestPki pki_;
};

TEST_F(UpsEventChannelTlsTest, OverTlsTheSubscriberReceivesTheEventReport) {
  StartChannel(TlsOptions());
  TlsClient client(pki_.ca_certificate);
  ASSERT_FALSE(client.Open(channel_->port(), "/ws/subscribers/PERF1", "token-one"));
  ASSERT_TRUE(Eventually([&] { return channel_->ConnectionCount("PERF1") == 1; }));
  channel_->Send("PERF1", StateReport("2.25.1", "IN PROGRESS"));
  std::optional<std::string> text = client.Read();
  ASSERT_TRUE(text);
  EXPECT_EQ(json::parse(*text)["00001000"]["Value"][0], "2.25.1");
  // The token is checked over TLS as in the clear.
  TlsClient wrong(pki_.ca_certificate);
  EXPECT_TRUE(wrong.Open(channel_->port(), "/ws/subscribers/PERF1", "nobody"));
  EXPECT_EQ(wrong.response().result(), http::status::unauthorized);
}

TEST_F(UpsEventChannelTlsTest, APlainClientOrOneThatDistrustsTheCertificateGetsNothing) {
  StartChannel(TlsOptions());
  Client plain;
  EXPECT_TRUE(plain.Open(channel_->port(), "/ws/subscribers/PERF1", "token-one"));
  TlsClient distrusting(pki_.other_ca_certificate);
  EXPECT_TRUE(distrusting.Open(channel_->port(), "/ws/subscribers/PERF1", "token-one"));
  EXPECT_EQ(channel_->ConnectionCount("PERF1"), 0u);
  // The channel carries on.
  TlsClient good(pki_.ca_certificate);
  ASSERT_FALSE(good.Open(channel_->port(), "/ws/subscribers/PERF1", "token-one"));
  EXPECT_TRUE(Eventually([&] { return channel_->ConnectionCount("PERF1") == 1; }));
}

TEST_F(UpsEventChannelTlsTest, WithClientCertificatesOnlyATrustedClientOpensTheChannel) {
  UpsEventChannelOptions options = TlsOptions();
  options.ca_file = pki_.ca_certificate;
  options.crl_file = pki_.crl;
  StartChannel(options);
  TlsClient anonymous(pki_.ca_certificate);
  EXPECT_TRUE(anonymous.Open(channel_->port(), "/ws/subscribers/PERF1", "token-one"));
  TlsClient revoked(pki_.ca_certificate, pki_.revoked_client_certificate, pki_.revoked_client_key);
  EXPECT_TRUE(revoked.Open(channel_->port(), "/ws/subscribers/PERF1", "token-one"));
  EXPECT_EQ(channel_->ConnectionCount("PERF1"), 0u);
  ASSERT_TRUE(Eventually([&] { return Refusals().size() == 2; }));
  std::vector<std::string> reasons;
  for (const AuthRefusal& refusal : Refusals()) {
    EXPECT_EQ(refusal.guard, "client_certificate");
    EXPECT_EQ(refusal.action, "ups_refused");
    EXPECT_EQ(refusal.route, "tls_handshake");
    EXPECT_EQ(refusal.peer, "127.0.0.1");
    reasons.push_back(refusal.reason);
  }
  std::sort(reasons.begin(), reasons.end());
  EXPECT_EQ(reasons, (std::vector<std::string>{"client certificate refused: certificate revoked",
                                               "no client certificate"}));

  TlsClient trusted(pki_.ca_certificate, pki_.client_certificate, pki_.client_key);
  ASSERT_FALSE(trusted.Open(channel_->port(), "/ws/subscribers/PERF1", "token-one"));
  EXPECT_TRUE(Eventually([&] { return channel_->ConnectionCount("PERF1") == 1; }));
  // The token is still checked.
  TlsClient no_token(pki_.ca_certificate, pki_.client_certificate, pki_.client_key);
  EXPECT_TRUE(no_token.Open(channel_->port(), "/ws/subscribers/PERF1", "nobody"));
  EXPECT_EQ(no_token.response().result(), http::status::unauthorized);
}

TEST_F(UpsEventChannelTlsTest, AKeyThatDoesNotMatchOrACaFileWithoutCertificatesStopsTheStart) {
  UpsEventChannelOptions wrong_key = TlsOptions();
  wrong_key.key_file = pki_.other_client_key;
  UpsEventChannelOptions no_ca = TlsOptions();
  no_ca.ca_file = pki_.client_key;
  for (const auto& [options, setting] :
       {std::pair(wrong_key, "http.tls.key_file"), std::pair(no_ca, "http.tls.ca_file")}) {
    UpsEventChannel channel(options, nullptr);
    const Status started = channel.Start();
    EXPECT_EQ(started.code(), StatusCode::kFailedPrecondition) << started.ToString();
    EXPECT_NE(started.message().find(setting), std::string::npos) << started.ToString();
    EXPECT_EQ(channel.port(), 0);
  }
}

// An independent client: python3's websocket-client (python3-websocket), subscribed as PERF2
// at `url` with the options `connect_options` (Python keyword arguments, may be empty). Sends
// one event once it is connected; returns what the client received (opcode, text) or fails.
void PythonClientReceivesTheEvent(UpsEventChannel& channel, const std::string& url,
                                  const std::string& connect_options) {
  if (!std::filesystem::exists("/usr/bin/python3")) GTEST_SKIP() << "no /usr/bin/python3";
  const std::filesystem::path out = std::filesystem::temp_directory_path() /
                                    ("ups_event_py_" + std::to_string(::getpid()) + ".txt");
  const std::string script =
      "import sys, ssl, websocket\n"
      "ws = websocket.create_connection('" +
      url + "', header=['Authorization: Bearer token-two'], timeout=20" + connect_options +
      ")\n"
      "op, data = ws.recv_data()\n"
      "print(op)\n"
      "print(data.decode())\n"
      "ws.close()\n";
  const std::filesystem::path py = out.string() + ".py";
  std::ofstream(py) << script;
  int rc = -1;
  std::thread runner([&] {
    rc = std::system(
        ("timeout 60 /usr/bin/python3 " + py.string() + " > " + out.string() + " 2>&1").c_str());
  });
  const bool connected = Eventually([&] { return channel.ConnectionCount("PERF2") == 1; });
  if (connected) channel.Send("PERF2", StateReport("2.25.42", "COMPLETED"));
  runner.join();
  std::ifstream in(out);
  std::stringstream got;
  got << in.rdbuf();
  std::filesystem::remove(out);
  std::filesystem::remove(py);
  ASSERT_TRUE(connected) << got.str();
  ASSERT_EQ(rc, 0) << got.str();
  std::string opcode, text;
  std::getline(got, opcode);
  std::getline(got, text);
  EXPECT_EQ(opcode, "1") << "a text frame (opcode 1)";
  json report = json::parse(text);
  EXPECT_EQ(report["00001000"]["Value"][0], "2.25.42");
  EXPECT_EQ(report["00741000"]["Value"][0], "COMPLETED");
}

TEST_F(UpsEventChannelTest, PythonWebsocketClientReceivesTheEvent) {
  StartChannel();
  PythonClientReceivesTheEvent(
      *channel_, "ws://127.0.0.1:" + std::to_string(channel_->port()) + "/ws/subscribers/PERF2",
      "");
}

TEST_F(UpsEventChannelTlsTest, PythonWebsocketClientReceivesTheEventOverTls) {
  StartChannel(TlsOptions());
  // Python checks the certificate against the CA and that it names the host it connected to.
  PythonClientReceivesTheEvent(
      *channel_, "wss://127.0.0.1:" + std::to_string(channel_->port()) + "/ws/subscribers/PERF2",
      ", sslopt={'cert_reqs': ssl.CERT_REQUIRED, 'ca_certs': '" + pki_.ca_certificate.string() +
          "'}");
}

}  // namespace
}  // namespace conduit
