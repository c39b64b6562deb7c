// httplib servers, plain and TLS, that serve each connection themselves and so can limit what
// one client holds:
// - every request's line and headers (and, over TLS, the handshake before the first) must
//   arrive within `header_timeout` of the request's first byte (of the accept, for the
//   handshake). httplib alone bounds each read, not the whole: a client that sends a byte now
//   and then would hold a worker thread for as long as it liked. A connection past its
//   deadline is closed without an answer and reported to `on_timeout`.
// - one client (peer IP address) is served on at most `max_per_client` connections at once.
//   Its further connections wait, in order, for one of its own to end (the worker that served
//   that one serves the next), so the other workers stay free for other clients; past
//   kMaxWaitingPerClient waiting, a new one is refused (plain HTTP: 429 with Retry-After;
//   TLS: closed) and reported to `on_refused`.
// - over TLS with client certificates, a handshake that fails on the client's certificate is
//   reported to `on_certificate_refused`.
// Parsing, routing, bodies and responses stay httplib's (Server::process_request); bodies keep
// httplib's per-read timeout only, as they are read after the request's credentials are checked.
// Thread safety: as httplib::Server; the callbacks are called from worker threads.
#pragma once

#include <httplib.h>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <string>

#include "core/status.h"

namespace conduit {

struct ConnectionLimits {
  static constexpr size_t kMaxWaitingPerClient = 64;

  std::chrono::milliseconds header_timeout{std::chrono::seconds(20)};
  size_t max_per_client = std::numeric_limits<size_t>::max();
  // Each may be empty. `peer` is the client's IP address.
  std::function<void(const std::string& peer)> on_timeout;
  std::function<void(const std::string& peer)> on_refused;
  // Connections waiting because their client is at max_per_client, after each change.
  std::function<void(size_t waiting)> on_waiting;
  // TLS with client certificates: a handshake that ended because the client sent none
  // (`missing`) or one not accepted; `reason` is a fixed text (core/tls_files.h).
  std::function<void(const std::string& peer, bool missing, const std::string& reason)>
      on_certificate_refused;
};

std::unique_ptr<httplib::Server> MakeLimitedServer(ConnectionLimits limits);

// Binds a server made here as httplib's bind_to_port does (port 0: any free port), then lets
// `backlog` connections wait to be accepted instead of httplib's 5: past the backlog the
// kernel drops a client's handshake and the client tries again only a second or more later (a
// PACS opening its parallel connections at once, say). Returns the port, or -1.
int BindWithBacklog(httplib::Server& server, const std::string& host, int port, int backlog = 128);

#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
// The clients an https server accepts: with `ca_file`, only those presenting a certificate
// that chains to one of its CAs and, with `crl_file`, is not revoked (mutual TLS); without,
// any. `setting` names the config section in errors ("http.tls").
struct ClientCertificates {
  std::filesystem::path ca_file;
  std::filesystem::path crl_file;
  std::string setting = "http.tls";
};

// Serves https (TLS 1.2 at least) with the PEM certificate (chain) and key. Errors:
// kFailedPrecondition naming the file that cannot be used.
Result<std::unique_ptr<httplib::SSLServer>> MakeLimitedTlsServer(
    const std::filesystem::path& certificate, const std::filesystem::path& key,
    ConnectionLimits limits, const ClientCertificates& clients = {});
#endif

}  // namespace conduit
