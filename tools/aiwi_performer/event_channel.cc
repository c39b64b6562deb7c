#include "aiwi_performer/event_channel.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <type_traits>

#include "dicomweb_tool_sim/stoppable_sleep.h"

namespace conduit::tools {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

constexpr auto kTick = std::chrono::milliseconds(100);
constexpr auto kConnectTimeout = std::chrono::seconds(10);

}  // namespace

Result<WebSocketUrl> ParseWebSocketUrl(const std::string& url) {
  WebSocketUrl parsed;
  std::string_view scheme = "ws://";
  if (url.starts_with("wss://")) {
    parsed.tls = true;
    scheme = "wss://";
  } else if (!url.starts_with(scheme)) {
    return InvalidArgument("events URL must start with ws:// or wss://");
  }
  const std::string rest = url.substr(scheme.size());
  const size_t slash = rest.find('/');
  const std::string authority = rest.substr(0, slash);
  parsed.target = slash == std::string::npos ? "/" : rest.substr(slash);
  const size_t colon = authority.rfind(':');
  parsed.host = authority.substr(0, colon);
  parsed.port =
      colon == std::string::npos ? (parsed.tls ? "443" : "80") : authority.substr(colon + 1);
  if (parsed.host.empty()) return InvalidArgument("events URL has no host");
  if (parsed.port.empty() || !std::all_of(parsed.port.begin(), parsed.port.end(),
                                          [](char c) { return c >= '0' && c <= '9'; })) {
    return InvalidArgument("events URL has a bad port");
  }
  return parsed;
}

void EventChannel::Run(std::stop_token stop) {
  std::chrono::milliseconds backoff(500);
  while (!stop.stop_requested()) {
    Status ended = url_.tls ? RunOnce<beast::ssl_stream<beast::tcp_stream>>(stop)
                            : RunOnce<beast::tcp_stream>(stop);
    if (stop.stop_requested()) return;
    spdlog::warn("event channel: {}; reconnecting in {} ms", ended.ToString(), backoff.count());
    if (!SleepUnlessStopped(backoff, stop)) return;
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, std::chrono::seconds(5));
  }
}

template <typename Stream>
Status EventChannel::RunOnce(std::stop_token stop) {
  constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;
  asio::io_context io;
  tcp::resolver resolver(io);
  asio::ssl::context tls(asio::ssl::context::tls_client);
  if constexpr (kTls) {
    SSL_CTX_set_min_proto_version(tls.native_handle(), TLS1_2_VERSION);
    beast::error_code ec;
    if (tls_.ca_file.empty()) {
      tls.set_default_verify_paths(ec);
    } else {
      tls.load_verify_file(tls_.ca_file, ec);
    }
    if (ec) return FailedPrecondition("CA file " + tls_.ca_file + ": " + ec.message());
    if (!tls_.client_certificate.empty()) {
      tls.use_certificate_chain_file(tls_.client_certificate, ec);
      if (!ec) tls.use_private_key_file(tls_.client_key, asio::ssl::context::pem, ec);
      if (ec) {
        return FailedPrecondition("client certificate " + tls_.client_certificate + " or key " +
                                  tls_.client_key + ": " + ec.message());
      }
    }
  }
  auto make = [&] {
    if constexpr (kTls) {
      return websocket::stream<Stream>(io, tls);
    } else {
      return websocket::stream<Stream>(io);
    }
  };
  websocket::stream<Stream> ws = make();
  if constexpr (kTls) {
    // Verify the server's certificate and that it names the host (an IP address or a name).
    SSL* ssl = ws.next_layer().native_handle();
    ws.next_layer().set_verify_mode(asio::ssl::verify_peer);
    boost::system::error_code ip_error;
    asio::ip::make_address(url_.host, ip_error);
    if (ip_error) {
      SSL_set_tlsext_host_name(ssl, url_.host.c_str());
      SSL_set1_host(ssl, url_.host.c_str());
    } else {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), url_.host.c_str());
    }
  }
  beast::flat_buffer buffer;
  Status ended;
  bool done = false;
  auto finish = [&](Status status) {
    if (!done) ended = std::move(status);
    done = true;
  };

  std::function<void()> read_next = [&] {
    ws.async_read(buffer, [&](beast::error_code ec, size_t) {
      if (ec) return finish(Unavailable("connection lost: " + ec.message()));
      if (ws.got_text()) on_frame_(beast::buffers_to_string(buffer.data()));
      buffer.consume(buffer.size());
      read_next();
    });
  };

  beast::error_code resolve_error;
  tcp::resolver::results_type endpoints = resolver.resolve(url_.host, url_.port, resolve_error);
  if (resolve_error) return Unavailable("resolve " + url_.host + ": " + resolve_error.message());
  beast::get_lowest_layer(ws).expires_after(kConnectTimeout);
  beast::get_lowest_layer(ws).async_connect(
      endpoints, [&](beast::error_code ec, const tcp::endpoint&) {
        if (ec) return finish(Unavailable("connect: " + ec.message()));
        beast::get_lowest_layer(ws).socket().set_option(tcp::no_delay(true));
        beast::get_lowest_layer(ws).expires_never();
        ws.set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
        ws.set_option(websocket::stream_base::decorator([this](websocket::request_type& req) {
          req.set(beast::http::field::user_agent, "conduit-aiwi-performer");
          if (!token_.empty()) req.set(beast::http::field::authorization, "Bearer " + token_);
        }));
        auto upgrade = [&] {
          const std::string host = url_.host + ":" + url_.port;
          ws.async_handshake(host, url_.target, [&](beast::error_code hec) {
            if (hec) return finish(Unavailable("WebSocket handshake: " + hec.message()));
            spdlog::info("event channel open{}", kTls ? " (TLS)" : "");
            on_open_();
            read_next();
          });
        };
        if constexpr (kTls) {
          beast::get_lowest_layer(ws).expires_after(kConnectTimeout);
          ws.next_layer().async_handshake(
              asio::ssl::stream_base::client, [&, upgrade](beast::error_code tec) {
                if (tec) {
                  return finish(Unavailable("TLS handshake: " + tec.message()));
                }
                beast::get_lowest_layer(ws).expires_never();
                upgrade();
              });
        } else {
          upgrade();
        }
      });

  while (!done && !stop.stop_requested()) {
    io.run_for(kTick);
    if (io.stopped()) io.restart();
  }
  if (!done) {
    // Stop requested: close the socket and let the pending handlers finish as aborted.
    beast::error_code ignored;
    beast::get_lowest_layer(ws).socket().close(ignored);
    io.run_for(std::chrono::milliseconds(300));
    finish(Status::Ok());
  }
  return ended;
}

}  // namespace conduit::tools
