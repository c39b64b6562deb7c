// The AIW-I performer simulator's UPS event channel (RAD-109 opens it, RAD-87 events arrive
// on it; PS3.18 8.10.4/8.10.5): a WebSocket client that connects to the Task Manager's
// notification URL with the bearer token, hands every text frame to a callback, and
// reconnects after a loss. NON-CLINICAL test tool.
#pragma once

#include <chrono>
#include <functional>
#include <stop_token>
#include <string>

#include "core/status.h"
#include "dicomweb_tool_sim/stow_sender.h"

namespace conduit::tools {

// A parsed "ws://host[:port]/path" or "wss://host[:port]/path" URL.
struct WebSocketUrl {
  bool tls = false;  // wss
  std::string host;
  std::string port;    // "80" (ws) or "443" (wss) when absent
  std::string target;  // path and query, "/" when absent
};

// Errors: kInvalidArgument naming what is wrong (scheme other than ws or wss, no host).
Result<WebSocketUrl> ParseWebSocketUrl(const std::string& url);

class EventChannel {
 public:
  using OnOpen = std::function<void()>;
  using OnFrame = std::function<void(const std::string& text)>;

  // `token` is sent as "Authorization: Bearer <token>" on the upgrade request when not empty.
  // wss: the server's certificate must chain to `tls.ca_file` (the system's CAs when empty)
  // and name the URL's host; the client certificate in `tls`, if any, is presented.
  EventChannel(WebSocketUrl url, std::string token, ClientTls tls, OnOpen on_open, OnFrame on_frame)
      : url_(std::move(url)),
        token_(std::move(token)),
        tls_(std::move(tls)),
        on_open_(std::move(on_open)),
        on_frame_(std::move(on_frame)) {}

  // Connects, calls on_open once the handshake succeeded, then on_frame for each text frame,
  // until `stop` (returns within about 0.5 s of it). A failed or lost connection is retried
  // after a backoff (0.5 s doubling to 5 s), calling on_open again on each new connection.
  // Callbacks run on the calling thread.
  void Run(std::stop_token stop);

 private:
  // One connection's life. Returns when it is lost or `stop` is requested. Stream:
  // beast::tcp_stream (ws) or beast::ssl_stream<beast::tcp_stream> (wss).
  template <typename Stream>
  Status RunOnce(std::stop_token stop);

  WebSocketUrl url_;
  std::string token_;
  ClientTls tls_;
  OnOpen on_open_;
  OnFrame on_frame_;
};

}  // namespace conduit::tools
