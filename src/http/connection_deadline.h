// httplib servers, plain and TLS, that serve each connection themselves so that every request's
// line and headers (and, over TLS, the handshake before the first) must arrive within
// `header_timeout` of the request's first byte (of the accept, for the handshake). httplib
// alone bounds each read, not the whole: a client that sends a byte now and then would hold one
// of the few worker threads for as long as it liked. A connection past its deadline is closed
// without an answer and reported to `on_timeout` with the peer's address. Parsing, routing,
// bodies and responses stay httplib's (Server::process_request); bodies keep httplib's per-read
// timeout only, as they are read after the request's credentials have been checked.
// Thread safety: as httplib::Server; on_timeout is called from worker threads.
#pragma once

#include <httplib.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

namespace conduit {

struct HeaderDeadline {
  std::chrono::milliseconds timeout{std::chrono::seconds(20)};
  std::function<void(const std::string& peer)> on_timeout;  // may be empty
};

std::unique_ptr<httplib::Server> MakeDeadlineServer(HeaderDeadline deadline);

#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
// Serves https with the PEM certificate (chain) and key; check is_valid() as for
// httplib::SSLServer.
std::unique_ptr<httplib::SSLServer> MakeDeadlineTlsServer(const std::filesystem::path& certificate,
                                                          const std::filesystem::path& key,
                                                          HeaderDeadline deadline);
#endif

}  // namespace conduit
