// The HTTP servers with limits per connection and per client: real httplib clients (plain
// and TLS, with keep-alive) are served as by httplib's own servers; peers that drip their
// request or their TLS handshake are cut off and reported; slow bodies are not; a client that
// holds its share of the workers waits for its own connections, not others for it.
#include "http/connection_limits.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "testing/test_pki.h"
#include "testing/testing.h"

namespace conduit {
namespace {

using namespace std::chrono_literals;

template <typename F>
bool Eventually(F done) {
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

// A raw TCP client (from `source`, a loopback address, when given): sends what it is told,
// reads until the server closes.
class RawPeer {
 public:
  explicit RawPeer(int port, const char* source = nullptr) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (source != nullptr) {
      sockaddr_in local{};
      local.sin_family = AF_INET;
      inet_pton(AF_INET, source, &local.sin_addr);
      if (bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) return;
    }
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  }
  ~RawPeer() {
    dripper_ = {};
    ssl_.reset();
    close(fd_);
  }
  bool connected() const { return connected_; }
  // Makes this a TLS connection (the server's certificate is not checked): a handshake now,
  // and every later Send and Drip through it.
  bool StartTls() {
    context_.reset(SSL_CTX_new(TLS_client_method()));
    if (!context_) return false;
    ssl_.reset(SSL_new(context_.get()));
    return ssl_ && SSL_set_fd(ssl_.get(), fd_) == 1 && SSL_connect(ssl_.get()) == 1;
  }
  bool Send(std::string_view bytes) {
    if (ssl_) {
      return SSL_write(ssl_.get(), bytes.data(), static_cast<int>(bytes.size())) ==
             static_cast<int>(bytes.size());
    }
    return send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  }
  // Sends `byte` every `interval` on a thread of its own until the connection fails.
  void Drip(char byte, std::chrono::milliseconds interval) {
    dripper_ = std::jthread([this, byte, interval](std::stop_token stop) {
      while (!stop.stop_requested()) {
        std::this_thread::sleep_for(interval);
        if (!Send(std::string_view(&byte, 1))) return;
      }
    });
  }
  // On a thread of its own: the TLS handshake (however long the server takes to begin it),
  // then `first`, then Drip's bytes.
  void DripAfterTls(std::string first, char byte, std::chrono::milliseconds interval) {
    dripper_ = std::jthread([this, first, byte, interval](std::stop_token stop) {
      if (!StartTls() || !Send(first)) return;
      while (!stop.stop_requested()) {
        std::this_thread::sleep_for(interval);
        if (!Send(std::string_view(&byte, 1))) return;
      }
    });
  }
  // Everything the server sends until it closes, or nullopt after `timeout`.
  std::optional<std::string> ReadUntilClosed(std::chrono::seconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string received;
    char buffer[4096];
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd ready{fd_, POLLIN, 0};
      if (poll(&ready, 1, 100) <= 0) continue;
      const ssize_t n = recv(fd_, buffer, sizeof buffer, 0);
      if (n <= 0) return received;
      received.append(buffer, static_cast<size_t>(n));
    }
    return std::nullopt;
  }

 private:
  struct FreeContext {
    void operator()(SSL_CTX* context) const { SSL_CTX_free(context); }
  };
  struct FreeSsl {
    void operator()(SSL* ssl) const { SSL_free(ssl); }
  };
  int fd_ = -1;
  bool connected_ = false;
  std::unique_ptr<SSL_CTX, FreeContext> context_;
  std::unique_ptr<SSL, FreeSsl> ssl_;
  std::jthread dripper_;  // last: stopped and joined before the rest goes
};

class ConnectionLimitsTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    auto pki = testing::MakeTestPki(dir_.path());
    ASSERT_TRUE(pki.ok()) << pki.status().ToString();
    pki_ = *pki;
  }
  void TearDown() override {
    if (server_) server_->stop();
    thread_ = {};
    server_.reset();
  }

  bool tls() const { return GetParam(); }

  void StartServer(std::chrono::milliseconds header_timeout,
                   size_t max_per_client = std::numeric_limits<size_t>::max(),
                   const ClientCertificates& clients = {}) {
    ConnectionLimits limits;
    limits.header_timeout = header_timeout;
    limits.max_per_client = max_per_client;
    limits.on_timeout = [this](const std::string& peer) {
      std::lock_guard lock(mu_);
      timed_out_peers_.push_back(peer);
    };
    limits.on_refused = [this](const std::string& peer) {
      std::lock_guard lock(mu_);
      refused_peers_.push_back(peer);
    };
    limits.on_waiting = [this](size_t waiting) {
      std::lock_guard lock(mu_);
      most_waiting_ = std::max(most_waiting_, waiting);
      waiting_ = waiting;
    };
    limits.on_certificate_refused = [this](const std::string& peer, bool missing,
                                           const std::string& reason) {
      std::lock_guard lock(mu_);
      certificate_refusals_.push_back(peer + (missing ? " missing: " : " refused: ") + reason);
    };
    if (tls()) {
      auto server = MakeLimitedTlsServer(pki_.server_certificate, pki_.server_key, limits, clients);
      ASSERT_TRUE(server.ok()) << server.status().ToString();
      server_ = std::move(*server);
    } else {
      server_ = MakeLimitedServer(limits);
    }
    ASSERT_TRUE(server_->is_valid());
    server_->new_task_queue = [] { return new httplib::ThreadPool(2); };
    server_->set_read_timeout(1s);
    server_->set_write_timeout(1s);
    server_->set_keep_alive_timeout(1);
    server_->Get("/hello", [](const httplib::Request& request, httplib::Response& response) {
      response.set_content("hello " + request.remote_addr, "text/plain");
    });
    server_->Get("/large", [](const httplib::Request&, httplib::Response& response) {
      response.set_content(std::string(3 << 20, 'x'), "application/octet-stream");
    });
    server_->Post("/echo-size", [](const httplib::Request&, httplib::Response& response,
                                   const httplib::ContentReader& reader) {
      size_t size = 0;
      reader([&](const char*, size_t n) {
        size += n;
        return true;
      });
      response.set_content(std::to_string(size), "text/plain");
    });
    port_ = BindWithBacklog(*server_, "127.0.0.1", 0);
    ASSERT_GT(port_, 0);
    thread_ = std::jthread([this] { server_->listen_after_bind(); });
    ASSERT_TRUE(Eventually([&] { return server_->is_running(); }));
  }

  // With `certificate` and `key`: presents them as its client certificate.
  std::unique_ptr<httplib::Client> Client(const std::filesystem::path& certificate = {},
                                          const std::filesystem::path& key = {}) {
    auto client = std::make_unique<httplib::Client>(
        (tls() ? "https://127.0.0.1:" : "http://127.0.0.1:") + std::to_string(port_),
        certificate.string(), key.string());
    if (tls()) client->set_ca_cert_path(pki_.ca_certificate.c_str());
    client->enable_server_certificate_verification(tls());
    client->set_keep_alive(true);
    client->set_read_timeout(30s);
    return client;
  }

  std::vector<std::string> TimedOutPeers() {
    std::lock_guard lock(mu_);
    return timed_out_peers_;
  }
  std::vector<std::string> RefusedPeers() {
    std::lock_guard lock(mu_);
    return refused_peers_;
  }
  size_t Waiting() {
    std::lock_guard lock(mu_);
    return waiting_;
  }
  std::vector<std::string> CertificateRefusals() {
    std::lock_guard lock(mu_);
    return certificate_refusals_;
  }

  // Opens a connection from `source` that sends part of a request's headers, then a byte every
  // 200 ms (over TLS after the handshake, which is answered once a worker serves it).
  std::unique_ptr<RawPeer> Dripper(const char* source) {
    auto peer = std::make_unique<RawPeer>(port_, source);
    EXPECT_TRUE(peer->connected());
    if (tls()) {
      // The handshake needs a worker: do it on the peer's own thread, as the drip does.
      peer->DripAfterTls("GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: ", 'a', 200ms);
    } else {
      EXPECT_TRUE(peer->Send("GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: "));
      peer->Drip('a', 200ms);
    }
    return peer;
  }

  testing::TempDir dir_;
  testing::TestPki pki_;
  std::unique_ptr<httplib::Server> server_;
  std::jthread thread_;
  int port_ = 0;
  std::mutex mu_;
  std::vector<std::string> timed_out_peers_;
  std::vector<std::string> refused_peers_;
  size_t waiting_ = 0;
  size_t most_waiting_ = 0;
  std::vector<std::string> certificate_refusals_;
};

TEST_P(ConnectionLimitsTest, ServesRequestsOverOneKeptAliveConnection) {
  StartServer(5s);
  auto client = Client();
  for (int i = 0; i < 3; ++i) {
    auto hello = client->Get("/hello");
    ASSERT_TRUE(hello) << httplib::to_string(hello.error());
    EXPECT_EQ(hello->status, 200);
    EXPECT_EQ(hello->body, "hello 127.0.0.1");
  }
  auto large = client->Get("/large");
  ASSERT_TRUE(large) << httplib::to_string(large.error());
  EXPECT_EQ(large->body.size(), 3u << 20);
  const std::string body(5 << 20, 'b');
  auto posted = client->Post("/echo-size", body, "application/octet-stream");
  ASSERT_TRUE(posted) << httplib::to_string(posted.error());
  EXPECT_EQ(posted->body, std::to_string(body.size()));
  auto missing = client->Get("/nowhere");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_TRUE(TimedOutPeers().empty());
}

TEST_P(ConnectionLimitsTest, APeerThatDripsItsHeadersIsCutOffAndReported) {
  StartServer(2s);
  // Each byte comes well within the per-read timeout (1 s): only the deadline ends it.
  RawPeer dripping(port_);
  ASSERT_TRUE(dripping.connected());
  if (tls()) {
    ASSERT_TRUE(dripping.StartTls());
  }
  ASSERT_TRUE(dripping.Send("GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: "));
  dripping.Drip('a', 200ms);
  const auto start = std::chrono::steady_clock::now();
  const std::optional<std::string> answer = dripping.ReadUntilClosed(30s);
  ASSERT_TRUE(answer.has_value()) << "not closed within 30 s";
  if (!tls()) {
    EXPECT_EQ(*answer, "") << "closed without an answer";
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 15s);
  ASSERT_TRUE(Eventually([&] { return TimedOutPeers().size() == 1; }));
  EXPECT_EQ(TimedOutPeers()[0], "127.0.0.1");
  // Others are served meanwhile and afterwards.
  auto hello = Client()->Get("/hello");
  ASSERT_TRUE(hello) << httplib::to_string(hello.error());
  EXPECT_EQ(hello->status, 200);
}

TEST_P(ConnectionLimitsTest, APeerThatDripsItsHandshakeIsCutOffAndReported) {
  if (!tls()) GTEST_SKIP() << "plain HTTP has no handshake";
  StartServer(2s);
  // A TLS record header announcing a 512-byte ClientHello, then a byte every 200 ms.
  RawPeer dripping(port_);
  ASSERT_TRUE(dripping.connected());
  ASSERT_TRUE(dripping.Send(std::string("\x16\x03\x01\x02\x00", 5)));
  dripping.Drip('\0', 200ms);
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(dripping.ReadUntilClosed(30s).has_value()) << "not closed within 30 s";
  EXPECT_LT(std::chrono::steady_clock::now() - start, 15s);
  ASSERT_TRUE(Eventually([&] { return TimedOutPeers().size() == 1; }));
  auto hello = Client()->Get("/hello");
  ASSERT_TRUE(hello) << httplib::to_string(hello.error());
  EXPECT_EQ(hello->status, 200);
}

TEST_P(ConnectionLimitsTest, ABodyThatComesSlowlyIsNotCutOff) {
  StartServer(1s);
  // The headers at once, then 12 chunks of the body 250 ms apart: 3 s in all, three times
  // the header deadline, each chunk within the per-read timeout.
  auto client = Client();
  size_t sent = 0;
  auto posted = client->Post(
      "/echo-size", 12 * 1000,
      [&](size_t offset, size_t, httplib::DataSink& sink) {
        if (offset > 0) std::this_thread::sleep_for(250ms);
        const std::string chunk(1000, 'c');
        sent += chunk.size();
        return sink.write(chunk.data(), chunk.size());
      },
      "application/octet-stream");
  ASSERT_TRUE(posted) << httplib::to_string(posted.error());
  EXPECT_EQ(posted->status, 200);
  EXPECT_EQ(posted->body, "12000");
  EXPECT_TRUE(TimedOutPeers().empty());
}

TEST_P(ConnectionLimitsTest, AnIdleKeptAliveConnectionIsClosedWithoutAReport) {
  StartServer(5s);
  if (tls()) {
    // httplib's client takes the server's close_notify for a live connection and fails its
    // next request on it (so it does against httplib's own SSLServer); only the report counts.
    auto client = Client();
    ASSERT_TRUE(client->Get("/hello"));
    std::this_thread::sleep_for(2500ms);  // past the 1 s keep-alive timeout
  } else {
    RawPeer peer(port_);
    ASSERT_TRUE(peer.Send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
    const auto start = std::chrono::steady_clock::now();
    const std::optional<std::string> answer = peer.ReadUntilClosed(30s);
    ASSERT_TRUE(answer.has_value()) << "not closed within 30 s";
    EXPECT_NE(answer->find("hello 127.0.0.1"), std::string::npos) << *answer;
    EXPECT_LT(std::chrono::steady_clock::now() - start, 15s);
  }
  auto again = Client()->Get("/hello");
  ASSERT_TRUE(again) << httplib::to_string(again.error());
  EXPECT_TRUE(TimedOutPeers().empty());
}

TEST_P(ConnectionLimitsTest, AClientPastItsShareWaitsForItsOwnConnectionsNotOthers) {
  // Two workers, one connection per client at once; the headers' deadline is 3 s.
  StartServer(3s, 1);
  // 127.0.0.2 opens three connections that drip their headers: one is served (and held for
  // 3 s), the other two wait for it rather than take the second worker.
  std::vector<std::unique_ptr<RawPeer>> drippers;
  for (int i = 0; i < 3; ++i) drippers.push_back(Dripper("127.0.0.2"));
  ASSERT_TRUE(Eventually([&] { return Waiting() == 2; }));
  // Another client is served at once, before the first dripper is cut off.
  auto hello = Client()->Get("/hello");
  ASSERT_TRUE(hello) << httplib::to_string(hello.error());
  EXPECT_EQ(hello->status, 200);
  EXPECT_TRUE(TimedOutPeers().empty()) << "served only once a dripper was cut off";
  // The dripper's connections are served in turn, each cut off at its deadline.
  ASSERT_TRUE(Eventually([&] { return TimedOutPeers().size() == 3; }));
  for (const std::string& peer : TimedOutPeers()) EXPECT_EQ(peer, "127.0.0.2");
  EXPECT_EQ(Waiting(), 0u);
  EXPECT_TRUE(RefusedPeers().empty());
}

TEST_P(ConnectionLimitsTest, AClientsParallelRequestsAreAllServedInTurn) {
  StartServer(5s, 1);
  std::atomic<int> served = 0;
  std::vector<std::jthread> clients;
  for (int i = 0; i < 4; ++i) {
    clients.emplace_back([&] {
      auto client = Client();
      for (int j = 0; j < 3; ++j) {
        auto large = client->Get("/large");
        if (large && large->status == 200 && large->body.size() == (3u << 20)) ++served;
      }
    });
  }
  clients.clear();  // joined
  EXPECT_EQ(served, 12);
  EXPECT_TRUE(RefusedPeers().empty());
  EXPECT_EQ(Waiting(), 0u);
}

TEST_P(ConnectionLimitsTest, ABurstOfConnectsWaitsInABacklogOf128NotHttplibs5) {
  StartServer(5s);
  // ss(8) shows a listening socket's backlog as its Send-Q.
  const std::string command =
      "ss -Hltn 'sport = :" + std::to_string(port_) + "' | awk '{print $3}'";
  FILE* ss = popen(command.c_str(), "r");
  ASSERT_NE(ss, nullptr);
  char line[64] = "";
  const bool read = fgets(line, sizeof line, ss) != nullptr;
  pclose(ss);
  ASSERT_TRUE(read) << command;
  EXPECT_EQ(std::string(line), "128\n");
}

TEST_P(ConnectionLimitsTest, PastTheWaitingLimitAClientsNewConnectionIsRefused) {
  StartServer(5s, 1);
  // One connection served (held by its dripping headers, or TLS handshake) and
  // kMaxWaitingPerClient waiting: the next is refused.
  const std::string opening =
      tls() ? std::string("\x16\x03\x01\x02\x00", 5) : "GET /hello HTTP/1.1\r\nX-Slow: ";
  // The drip starts at once: the one served is closed if it has nothing new for a second.
  std::mutex held_mu;
  std::vector<std::unique_ptr<RawPeer>> held;
  std::jthread dripper([&](std::stop_token stop) {
    while (!stop.stop_requested()) {
      std::this_thread::sleep_for(200ms);
      std::lock_guard lock(held_mu);
      for (auto& peer : held) peer->Send(std::string_view("a", 1));
    }
  });
  for (size_t i = 0; i < 1 + ConnectionLimits::kMaxWaitingPerClient; ++i) {
    auto peer = std::make_unique<RawPeer>(port_, "127.0.0.2");
    ASSERT_TRUE(peer->connected());
    ASSERT_TRUE(peer->Send(opening));
    std::lock_guard lock(held_mu);
    held.push_back(std::move(peer));
  }
  ASSERT_TRUE(Eventually([&] { return Waiting() == ConnectionLimits::kMaxWaitingPerClient; }));
  RawPeer refused(port_, "127.0.0.2");
  ASSERT_TRUE(refused.connected());
  const std::optional<std::string> answer = refused.ReadUntilClosed(5s);
  ASSERT_TRUE(answer.has_value()) << "not closed at once";
  if (!tls()) {
    EXPECT_EQ(answer->rfind("HTTP/1.1 429 Too Many Requests\r\nRetry-After: 5\r\n", 0), 0u)
        << *answer;
  }
  ASSERT_TRUE(Eventually([&] { return RefusedPeers().size() == 1; }));
  EXPECT_EQ(RefusedPeers()[0], "127.0.0.2");
  // Another client is not affected.
  auto hello = Client()->Get("/hello");
  ASSERT_TRUE(hello) << httplib::to_string(hello.error());
  EXPECT_EQ(hello->status, 200);
  dripper = {};
  held.clear();  // closed: the waiting connections are served (and end) in turn
  ASSERT_TRUE(Eventually([&] { return Waiting() == 0; }));
}

TEST_P(ConnectionLimitsTest, WithClientCertificatesOnlyTrustedUnrevokedClientsAreServed) {
  if (!tls()) GTEST_SKIP() << "client certificates are TLS's";
  const std::filesystem::path crl = dir_.path() / "clients.crl";
  std::filesystem::copy_file(pki_.crl, crl);
  StartServer(5s, std::numeric_limits<size_t>::max(),
              {.ca_file = pki_.ca_certificate, .crl_file = crl, .setting = "http.tls"});

  auto trusted = Client(pki_.client_certificate, pki_.client_key)->Get("/hello");
  ASSERT_TRUE(trusted) << httplib::to_string(trusted.error());
  EXPECT_EQ(trusted->status, 200);
  EXPECT_TRUE(CertificateRefusals().empty());

  EXPECT_FALSE(Client()->Get("/hello")) << "served without a client certificate";
  EXPECT_FALSE(Client(pki_.revoked_client_certificate, pki_.revoked_client_key)->Get("/hello"));
  ASSERT_TRUE(Eventually([&] { return CertificateRefusals().size() == 2; }));
  EXPECT_EQ(CertificateRefusals()[0], "127.0.0.1 missing: no client certificate");
  EXPECT_EQ(CertificateRefusals()[1],
            "127.0.0.1 refused: client certificate refused: certificate revoked");

  // A CRL published later takes effect from the next connection, without a restart.
  std::filesystem::copy_file(pki_.crl_revoking_client, crl,
                             std::filesystem::copy_options::overwrite_existing);
  EXPECT_FALSE(Client(pki_.client_certificate, pki_.client_key)->Get("/hello"));
  ASSERT_TRUE(Eventually([&] { return CertificateRefusals().size() == 3; }));
  EXPECT_EQ(CertificateRefusals()[2],
            "127.0.0.1 refused: client certificate refused: certificate revoked");
  EXPECT_TRUE(TimedOutPeers().empty());
}

TEST_P(ConnectionLimitsTest, ClientCertificatesFromAnotherCaAreRefusedAndBadFilesStopTheStart) {
  if (!tls()) GTEST_SKIP() << "client certificates are TLS's";
  // Clients of a CA the server does not trust: the test PKI's client, against another CA.
  StartServer(5s, std::numeric_limits<size_t>::max(),
              {.ca_file = pki_.other_ca_certificate, .crl_file = {}, .setting = "http.tls"});
  EXPECT_FALSE(Client(pki_.client_certificate, pki_.client_key)->Get("/hello"));
  ASSERT_TRUE(Eventually([&] { return CertificateRefusals().size() == 1; }));
  EXPECT_NE(CertificateRefusals()[0].find("127.0.0.1 refused: client certificate refused: "),
            std::string::npos)
      << CertificateRefusals()[0];

  ConnectionLimits limits;
  auto no_ca = MakeLimitedTlsServer(pki_.server_certificate, pki_.server_key, limits,
                                    {.ca_file = pki_.client_key, .crl_file = {}, .setting = "x"});
  ASSERT_FALSE(no_ca.ok());
  EXPECT_NE(no_ca.status().message().find("x.ca_file"), std::string::npos)
      << no_ca.status().ToString();
  auto stale_crl = MakeLimitedTlsServer(
      pki_.server_certificate, pki_.server_key, limits,
      {.ca_file = pki_.ca_certificate, .crl_file = pki_.expired_crl, .setting = "x"});
  ASSERT_FALSE(stale_crl.ok());
  EXPECT_NE(stale_crl.status().message().find("x.crl_file"), std::string::npos)
      << stale_crl.status().ToString();
  auto bad_key = MakeLimitedTlsServer(pki_.server_certificate, pki_.other_client_key, limits);
  ASSERT_FALSE(bad_key.ok());
  EXPECT_EQ(bad_key.status().code(), StatusCode::kFailedPrecondition);
}

INSTANTIATE_TEST_SUITE_P(PlainAndTls, ConnectionLimitsTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& param) {
                           return param.param ? "Tls" : "Plain";
                         });

}  // namespace
}  // namespace conduit
