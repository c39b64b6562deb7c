#include "http/connection_limits.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <mutex>
#include <unordered_map>
#include <utility>

#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "core/revocation_store.h"
#include "core/tls_files.h"
#endif

namespace conduit {
namespace {

using Clock = std::chrono::steady_clock;

// Per-operation timeouts and the keep-alive budget, as httplib was configured.
struct Timeouts {
  std::chrono::microseconds read;
  std::chrono::microseconds write;
  std::chrono::seconds keep_alive;
  size_t keep_alive_max_count;
};

void PeerAddress(int sock, bool remote, std::string& ip, int& port) {
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  auto* raw = reinterpret_cast<sockaddr*>(&address);
  if ((remote ? getpeername(sock, raw, &length) : getsockname(sock, raw, &length)) != 0) return;
  char text[INET6_ADDRSTRLEN] = "";
  if (address.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&address);
    inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
    port = ntohs(in->sin_port);
  } else if (address.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&address);
    inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
    port = ntohs(in6->sin6_port);
  }
  ip = text;
}

// One accepted connection (non-blocking socket, maybe TLS) as httplib's Stream: reads are
// buffered (httplib reads request lines a byte at a time) and wait at most the read timeout,
// never past the deadline; once the deadline has passed, reads and writes fail.
class ConnectionStream final : public httplib::Stream {
 public:
  ConnectionStream(int sock, void* ssl, const Timeouts& timeouts)
      : sock_(sock), ssl_(ssl), timeouts_(timeouts) {}

  void set_deadline(Clock::time_point deadline) { deadline_ = deadline; }
  bool expired() const { return expired_; }
  // Data already here: buffered by us or, over TLS, decrypted by OpenSSL.
  bool HasBuffered() const;

  bool is_readable() const override { return HasBuffered() || Wait(POLLIN, timeouts_.read); }
  bool is_writable() const override { return Wait(POLLOUT, timeouts_.write); }
  ssize_t read(char* ptr, size_t size) override;
  ssize_t write(const char* ptr, size_t size) override;
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    PeerAddress(sock_, true, ip, port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    PeerAddress(sock_, false, ip, port);
  }
  socket_t socket() const override { return sock_; }

  // Waits for `events` on the socket for at most `limit`, cut short by the deadline.
  bool Wait(short events, std::chrono::microseconds limit) const;

 private:
  ssize_t Receive(char* ptr, size_t size);

  const int sock_;
  void* const ssl_;  // SSL*, or null for plain HTTP
  const Timeouts timeouts_;
  Clock::time_point deadline_ = Clock::time_point::max();
  mutable bool expired_ = false;
  char buffer_[4096];
  size_t buffered_begin_ = 0;
  size_t buffered_end_ = 0;
};

bool ConnectionStream::Wait(short events, std::chrono::microseconds limit) const {
  if (expired_) return false;
  const Clock::time_point now = Clock::now();
  Clock::time_point until = now + limit;
  const bool bounded_by_deadline = deadline_ <= until;
  if (bounded_by_deadline) until = deadline_;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
    pollfd ready{sock_, events, 0};
    const int n = poll(&ready, 1, static_cast<int>(std::max<int64_t>(0, left)));
    if (n > 0) return true;
    if (n < 0 && errno == EINTR) continue;
    if (n == 0 && bounded_by_deadline) expired_ = true;
    return false;
  }
}

bool ConnectionStream::HasBuffered() const {
  if (buffered_begin_ < buffered_end_) return true;
#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
  if (ssl_ != nullptr) return SSL_pending(static_cast<SSL*>(ssl_)) > 0;
#endif
  return false;
}

ssize_t ConnectionStream::Receive(char* ptr, size_t size) {
  const int chunk = static_cast<int>(std::min<size_t>(size, 1 << 30));
  for (;;) {
    if (deadline_ != Clock::time_point::max() && Clock::now() >= deadline_) expired_ = true;
    if (expired_) return -1;
#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
    if (ssl_ != nullptr) {
      SSL* ssl = static_cast<SSL*>(ssl_);
      ERR_clear_error();
      const int n = SSL_read(ssl, ptr, chunk);
      if (n > 0) return n;
      const int error = SSL_get_error(ssl, n);
      if (error == SSL_ERROR_ZERO_RETURN) return 0;
      if (error == SSL_ERROR_WANT_READ && Wait(POLLIN, timeouts_.read)) continue;
      if (error == SSL_ERROR_WANT_WRITE && Wait(POLLOUT, timeouts_.write)) continue;
      return -1;
    }
#endif
    const ssize_t n = recv(sock_, ptr, static_cast<size_t>(chunk), 0);
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    if ((errno == EAGAIN || errno == EWOULDBLOCK) && Wait(POLLIN, timeouts_.read)) continue;
    return -1;
  }
}

ssize_t ConnectionStream::read(char* ptr, size_t size) {
  if (expired_) return -1;
  if (buffered_begin_ == buffered_end_) {
    if (size >= sizeof buffer_) return Receive(ptr, size);
    const ssize_t n = Receive(buffer_, sizeof buffer_);
    if (n <= 0) return n;
    buffered_begin_ = 0;
    buffered_end_ = static_cast<size_t>(n);
  }
  const size_t n = std::min(size, buffered_end_ - buffered_begin_);
  std::memcpy(ptr, buffer_ + buffered_begin_, n);
  buffered_begin_ += n;
  return static_cast<ssize_t>(n);
}

ssize_t ConnectionStream::write(const char* ptr, size_t size) {
  size_t written = 0;
  while (written < size) {
    if (expired_) return -1;
    const size_t chunk = std::min<size_t>(size - written, 1 << 30);
#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
    if (ssl_ != nullptr) {
      SSL* ssl = static_cast<SSL*>(ssl_);
      ERR_clear_error();
      const int n = SSL_write(ssl, ptr + written, static_cast<int>(chunk));
      if (n > 0) {
        written += static_cast<size_t>(n);
        continue;
      }
      const int error = SSL_get_error(ssl, n);
      if (error == SSL_ERROR_WANT_WRITE && Wait(POLLOUT, timeouts_.write)) continue;
      if (error == SSL_ERROR_WANT_READ && Wait(POLLIN, timeouts_.read)) continue;
      return -1;
    }
#endif
    const ssize_t n = send(sock_, ptr + written, chunk, MSG_NOSIGNAL);
    if (n >= 0) {
      written += static_cast<size_t>(n);
      continue;
    }
    if (errno == EINTR) continue;
    if ((errno == EAGAIN || errno == EWOULDBLOCK) && Wait(POLLOUT, timeouts_.write)) continue;
    return -1;
  }
  return static_cast<ssize_t>(written);
}

std::string PeerIp(int sock) {
  std::string ip;
  int port = 0;
  PeerAddress(sock, true, ip, port);
  return ip;
}

void ReportTimeout(const ConnectionStream& stream, const ConnectionLimits& limits) {
  if (stream.expired() && limits.on_timeout) limits.on_timeout(PeerIp(stream.socket()));
}

void CloseSocket(int sock) {
  shutdown(sock, SHUT_RDWR);
  close(sock);
}

// Which connections each client is being served on, and which of its others wait their turn.
class ClientShares {
 public:
  enum class Entry { kServe, kWait, kRefuse };

  explicit ClientShares(const ConnectionLimits& limits) : limits_(limits) {}
  ~ClientShares() {  // none wait once the workers have gone; closed in case
    for (auto& [ip, client] : clients_) {
      for (int sock : client.waiting) CloseSocket(sock);
    }
  }

  // kServe: serve `sock` now, then call Next. kWait: kept, to be returned by a Next for `ip`.
  // kRefuse: the caller closes it.
  Entry Enter(const std::string& ip, int sock) {
    std::lock_guard lock(mu_);
    Client& client = clients_[ip];
    if (client.serving < std::max<size_t>(1, limits_.max_per_client)) {
      ++client.serving;
      return Entry::kServe;
    }
    if (client.waiting.size() >= ConnectionLimits::kMaxWaitingPerClient) return Entry::kRefuse;
    client.waiting.push_back(sock);
    ++waiting_;
    Publish();
    return Entry::kWait;
  }

  // After serving one of `ip`'s connections: the next of its waiting ones, to serve in its
  // place, or -1 (its share shrinks by one).
  int Next(const std::string& ip) {
    std::lock_guard lock(mu_);
    auto it = clients_.find(ip);
    if (it == clients_.end()) return -1;
    Client& client = it->second;
    if (!client.waiting.empty()) {
      const int sock = client.waiting.front();
      client.waiting.pop_front();
      --waiting_;
      Publish();
      return sock;
    }
    if (--client.serving == 0) clients_.erase(it);
    return -1;
  }

 private:
  struct Client {
    size_t serving = 0;
    std::deque<int> waiting;
  };

  void Publish() {  // under mu_
    if (limits_.on_waiting) limits_.on_waiting(waiting_);
  }

  const ConnectionLimits& limits_;
  std::mutex mu_;
  std::unordered_map<std::string, Client> clients_;
  size_t waiting_ = 0;
};

// The listening socket of a server made here, for BindWithBacklog.
class ListeningSocket {
 public:
  virtual ~ListeningSocket() = default;
  virtual int listening_socket() const = 0;
};

// What the plain and the TLS server share: httplib's configuration, its keep-alive loop with
// a header deadline per request, and each client's share of the workers.
template <typename HttplibServer>
class LimitedServer : public HttplibServer, public ListeningSocket {
 public:
  int listening_socket() const override { return this->svr_sock_; }

 protected:
  template <typename... Args>
  explicit LimitedServer(ConnectionLimits limits, Args&&... args)
      : HttplibServer(std::forward<Args>(args)...), limits_(std::move(limits)), shares_(limits_) {}

  // httplib's per-connection task: serves `sock`, then the client's connections that waited
  // for it, unless the client already has its share (then `sock` waits, or is refused).
  bool ServeClient(int sock, bool tls) {
    const std::string ip = PeerIp(sock);
    switch (shares_.Enter(ip, sock)) {
      case ClientShares::Entry::kWait:
        return true;
      case ClientShares::Entry::kRefuse:
        Refuse(sock, tls);
        if (limits_.on_refused) limits_.on_refused(ip);
        return false;
      case ClientShares::Entry::kServe:
        break;
    }
    bool result = false;
    for (; sock >= 0; sock = shares_.Next(ip)) result = ServeConnection(sock);
    return result;
  }

  // Serves one connection and closes it.
  virtual bool ServeConnection(int sock) = 0;

  Timeouts ConnectionTimeouts() const {
    return {std::chrono::seconds(this->read_timeout_sec_) +
                std::chrono::microseconds(this->read_timeout_usec_),
            std::chrono::seconds(this->write_timeout_sec_) +
                std::chrono::microseconds(this->write_timeout_usec_),
            std::chrono::seconds(this->keep_alive_timeout_sec_), this->keep_alive_max_count_};
  }

  // Serves requests on `stream` (over `ssl`, an SSL* or null) until the client closes, the
  // keep-alive count or timeout runs out, or the server stops. What the last request returned.
  bool ServeRequests(ConnectionStream& stream, void* ssl) {
    const Timeouts timeouts = ConnectionTimeouts();
    bool result = false;
    for (size_t left = std::max<size_t>(1, timeouts.keep_alive_max_count); left > 0; --left) {
      if (this->svr_sock_ == INVALID_SOCKET) break;  // stopping
      // The client's next request must begin within the keep-alive timeout...
      if (!stream.HasBuffered() && !stream.Wait(POLLIN, timeouts.keep_alive)) break;
      // ...and its line and headers be complete within the header deadline.
      stream.set_deadline(Clock::now() + limits_.header_timeout);
      bool connection_closed = false;
      result = this->process_request(stream, /*close_connection=*/left == 1, connection_closed,
                                     [&](httplib::Request& request) {
#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
                                       request.ssl = static_cast<SSL*>(ssl);
#endif
                                       // Line and headers are in.
                                       stream.set_deadline(Clock::time_point::max());
                                     });
      if (!result || connection_closed) break;
    }
    return result;
  }

  const ConnectionLimits limits_;

 private:
  // Plain HTTP gets a 429 if the socket takes it at once; TLS would need a handshake first.
  static void Refuse(int sock, bool tls) {
    if (!tls) {
      static constexpr std::string_view kBusy =
          "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 5\r\nContent-Length: 0\r\n"
          "Connection: close\r\n\r\n";
      [[maybe_unused]] const ssize_t sent =
          send(sock, kBusy.data(), kBusy.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    CloseSocket(sock);
  }

  ClientShares shares_;
};

class PlainServer final : public LimitedServer<httplib::Server> {
 public:
  explicit PlainServer(ConnectionLimits limits) : LimitedServer(std::move(limits)) {}

 private:
  bool process_and_close_socket(socket_t sock) override { return ServeClient(sock, false); }

  bool ServeConnection(int sock) override {
    fcntl(sock, F_SETFL, fcntl(sock, F_GETFL) | O_NONBLOCK);
    ConnectionStream stream(sock, nullptr, ConnectionTimeouts());
    const bool result = ServeRequests(stream, nullptr);
    ReportTimeout(stream, limits_);
    CloseSocket(sock);
    return result;
  }
};

#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
class TlsServer final : public LimitedServer<httplib::SSLServer> {
 public:
  TlsServer(const std::filesystem::path& certificate, const std::filesystem::path& key,
            ConnectionLimits limits)
      : LimitedServer(std::move(limits), certificate.c_str(), key.c_str()) {}

  // Mutual TLS (RequireClientCertificates has set up the context); `revocation` may be null.
  void CheckClients(std::unique_ptr<RevocationStore> revocation) {
    check_clients_ = true;
    revocation_ = std::move(revocation);
  }

 private:
  bool process_and_close_socket(socket_t sock) override { return ServeClient(sock, true); }

  bool ServeConnection(int sock) override {
    fcntl(sock, F_SETFL, fcntl(sock, F_GETFL) | O_NONBLOCK);
    const Timeouts timeouts = ConnectionTimeouts();
    bool result = false;
    SSL* ssl = SSL_new(ssl_context());
    if (ssl != nullptr && SSL_set_fd(ssl, sock) == 1) {
      if (revocation_) revocation_->Apply(ssl);
      ConnectionStream stream(sock, ssl, timeouts);
      stream.set_deadline(Clock::now() + limits_.header_timeout);  // the handshake's
      unsigned long failure = 0;
      if (Handshake(ssl, stream, timeouts, failure)) {
        result = ServeRequests(stream, ssl);
        if (result) SSL_shutdown(ssl);  // close_notify, best effort: no waiting for the reply
      } else if (check_clients_ && limits_.on_certificate_refused && !stream.expired()) {
        if (auto refusal = ClientCertificateRefusalOf(ssl, failure)) {
          limits_.on_certificate_refused(PeerIp(sock), refusal->missing, refusal->reason);
        }
      }
      ReportTimeout(stream, limits_);
    }
    if (ssl != nullptr) SSL_free(ssl);
    CloseSocket(sock);
    return result;
  }

  // `failure`: the OpenSSL error a failed handshake ended with (0 if none was queued).
  static bool Handshake(SSL* ssl, ConnectionStream& stream, const Timeouts& timeouts,
                        unsigned long& failure) {
    for (;;) {
      ERR_clear_error();
      const int n = SSL_accept(ssl);
      if (n == 1) return true;
      const int error = SSL_get_error(ssl, n);
      if (error == SSL_ERROR_WANT_READ && stream.Wait(POLLIN, timeouts.read)) continue;
      if (error == SSL_ERROR_WANT_WRITE && stream.Wait(POLLOUT, timeouts.write)) continue;
      failure = ERR_peek_last_error();
      ERR_clear_error();
      return false;
    }
  }

  bool check_clients_ = false;
  std::unique_ptr<RevocationStore> revocation_;
};
#endif

}  // namespace

std::unique_ptr<httplib::Server> MakeLimitedServer(ConnectionLimits limits) {
  return std::make_unique<PlainServer>(std::move(limits));
}

int BindWithBacklog(httplib::Server& server, const std::string& host, int port, int backlog) {
  int bound = -1;
  if (port == 0) {
    bound = server.bind_to_any_port(host);
  } else if (server.bind_to_port(host, port)) {
    bound = port;
  }
  if (bound <= 0) return -1;
  if (const auto* limited = dynamic_cast<const ListeningSocket*>(&server)) {
    // listen() again on a listening socket only changes its backlog.
    if (::listen(limited->listening_socket(), backlog) != 0) return -1;
  }
  return bound;
}

#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
Result<std::unique_ptr<httplib::SSLServer>> MakeLimitedTlsServer(
    const std::filesystem::path& certificate, const std::filesystem::path& key,
    ConnectionLimits limits, const ClientCertificates& clients) {
  auto server = std::make_unique<TlsServer>(certificate, key, std::move(limits));
  if (!server->is_valid()) {
    return FailedPrecondition(clients.setting + ": the certificate " + certificate.string() +
                              " or key " + key.string() + " cannot be loaded");
  }
  SSL_CTX_set_min_proto_version(server->ssl_context(), TLS1_2_VERSION);
  if (!clients.ca_file.empty()) {
    ASSIGN_OR_RETURN(std::unique_ptr<RevocationStore> revocation,
                     RequireClientCertificates(server->ssl_context(), clients.ca_file,
                                               clients.crl_file, clients.setting));
    server->CheckClients(std::move(revocation));
  }
  return std::unique_ptr<httplib::SSLServer>(std::move(server));
}
#endif

}  // namespace conduit
