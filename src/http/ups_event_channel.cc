#include "http/ups_event_channel.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <cctype>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/refusal_throttle.h"
#include "core/tls_files.h"
#include "http/client_address.h"
#include "http/percent_decoding.h"
#include "http/ups_body.h"

namespace conduit {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace websocket = boost::beast::websocket;
namespace net = boost::asio;
using tcp = boost::asio::ip::tcp;

namespace {

constexpr char kUpsEventSopClass[] = "1.2.840.10008.5.1.4.34.6.4";
constexpr char kUpsWellKnownInstance[] = "1.2.840.10008.5.1.4.34.5";
constexpr uint16_t kNEventReportRq = 0x0100;
constexpr size_t kMaxHeaderBytes = 8192;
constexpr size_t kMaxClientMessageBytes = 64 * 1024;
// How long Stop() lets connections close politely before it cancels what is left.
constexpr auto kStopGrace = std::chrono::milliseconds(700);
// The closing handshake a connection waits for, once it started closing.
constexpr auto kCloseTimeout = std::chrono::milliseconds(500);

// The AE title of /ws/subscribers/{ae} or /subscribers/{ae}; nullopt for another path, and
// `bad_ae` set when the path is right but the AE title is not one.
std::optional<std::string> AeOfPath(std::string_view target, bool& bad_ae) {
  bad_ae = false;
  target = target.substr(0, target.find('?'));
  for (std::string_view prefix : {"/ws/subscribers/", "/subscribers/"}) {
    if (!target.starts_with(prefix)) continue;
    std::string_view rest = target.substr(prefix.size());
    if (rest.find('/') != std::string_view::npos) return std::nullopt;
    std::optional<std::string> decoded = PercentDecode(rest);
    std::optional<std::string> ae = decoded ? ParseUpsAeTitle(*decoded) : std::nullopt;
    if (!ae) bad_ae = true;
    return ae;
  }
  return std::nullopt;
}

std::string BearerOf(const http::request<http::empty_body>& req) {
  const auto it = req.find(http::field::authorization);
  if (it == req.end()) return {};
  std::string_view v(it->value().data(), it->value().size());
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  constexpr std::string_view kScheme = "bearer";
  if (v.size() <= kScheme.size()) return {};
  for (size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(v[i])) != kScheme[i]) return {};
  }
  if (v[kScheme.size()] != ' ') return {};
  v.remove_prefix(kScheme.size());
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return std::string(v);
}

}  // namespace

class UpsEventChannel::Impl {
 public:
  class Session;
  template <typename Stream>
  class StreamSession;

  Impl(UpsEventChannelOptions options, Authorizer authorize, RefusalReporter report_refusal)
      : options_(std::move(options)),
        authorize_(std::move(authorize)),
        report_refusal_(std::move(report_refusal)) {}

  Status Start();
  void Stop();
  void Send(const std::string& ae, const UpsEvent& event);
  size_t ConnectionCount(const std::string& ae) const;
  int port() const { return port_.load(); }

  // Called by sessions on the io thread.
  void Register(const std::shared_ptr<Session>& s);
  void Unregister(Session* s);
  const UpsEventChannelOptions& options() const { return options_; }
  UpsChannelDecision Authorized(const std::string& ae, const std::string& token) const {
    return authorize_ ? authorize_(ae, token) : UpsChannelDecision(UpsChannelAccess::kGranted);
  }
  std::atomic<size_t>& live_sessions() { return live_sessions_; }
  RevocationStore* revocation() const { return revocation_.get(); }
  // Whether a refusal's log line is due (RefusalThrottle; the key holds peer and reason).
  std::optional<int64_t> AdmitLogLine(const std::string& key) {
    return log_lines_.Admit(key, std::chrono::system_clock::now());
  }
  // False when there is no reporter (the caller logs the refusal itself).
  bool ReportRefusal(const AuthRefusal& refusal) const {
    if (!report_refusal_) return false;
    report_refusal_(refusal);
    return true;
  }

 private:
  void Accept();

  const UpsEventChannelOptions options_;
  const Authorizer authorize_;
  const RefusalReporter report_refusal_;
  RefusalThrottle log_lines_{std::chrono::minutes(1), 4096};
  std::unique_ptr<net::io_context> ioc_;
  std::unique_ptr<net::ssl::context> tls_;       // wss: options_.certificate_file is set
  std::unique_ptr<RevocationStore> revocation_;  // wss with client certificates and CRLs
  std::unique_ptr<tcp::acceptor> acceptor_;
  std::jthread thread_;
  std::atomic<int> port_{0};
  std::atomic<uint16_t> next_message_id_{1};
  std::atomic<size_t> live_sessions_{0};

  // Sessions past the handshake, by AE title; Send() reads it from any thread.
  mutable std::mutex mu_;
  std::map<std::string, std::vector<std::shared_ptr<Session>>> open_;
  // Every session not yet ended (io thread only): Stop() closes them.
  std::vector<std::weak_ptr<Session>> all_;

  std::mutex done_mu_;
  std::condition_variable done_cv_;
  bool run_done_ = false;
};

// One connection: TLS handshake (wss), HTTP upgrade request, then the WebSocket. Lives on the
// io thread; Send() reaches it only through posted handlers and the atomic `pending_` count.
// What Send() and Stop() need, whatever the stream; StreamSession does the I/O.
class UpsEventChannel::Impl::Session : public std::enable_shared_from_this<Session> {
 public:
  explicit Session(Impl& owner) : owner_(owner) { ++owner_.live_sessions(); }
  virtual ~Session() { --owner_.live_sessions(); }

  const std::string& ae() const { return ae_; }
  // Set before Register(); read by Send() under the channel's lock.
  const std::string& tool() const { return tool_; }

  // From Send(): false when this connection already has max_queued_events waiting.
  bool Reserve() {
    if (pending_.fetch_add(1) >= owner_.options().max_queued_events) {
      pending_.fetch_sub(1);
      return false;
    }
    return true;
  }
  // From Send(): true the first time the connection overflows.
  bool MarkOverflow() { return !overflowed_.exchange(true); }

  virtual void Start() = 0;
  virtual void Enqueue(std::shared_ptr<const std::string> text) = 0;
  virtual void CloseForOverflow() = 0;
  virtual void Close(const websocket::close_reason& reason) = 0;

 protected:
  Impl& owner_;
  std::string ae_;
  std::string tool_;  // whose events it carries; empty: every tool's
  std::atomic<size_t> pending_{0};
  std::atomic<bool> overflowed_{false};
};

namespace {

template <typename Stream>
constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;

}  // namespace

// Stream: beast::tcp_stream (ws://) or beast::ssl_stream<beast::tcp_stream> (wss://).
template <typename Stream>
class UpsEventChannel::Impl::StreamSession final : public Session {
 public:
  StreamSession(Impl& owner, tcp::socket socket) requires(!kTls<Stream>)
      : Session(owner), ws_(std::move(socket)) {}
  StreamSession(Impl& owner, tcp::socket socket, net::ssl::context& tls) requires(kTls<Stream>)
      : Session(owner), ws_(std::move(socket), tls) {
    if (RevocationStore* revocation = owner_.revocation()) {
      revocation->Apply(ws_.next_layer().native_handle());
    }
  }

  void Start() override {
    beast::get_lowest_layer(ws_).expires_after(owner_.options().handshake_timeout);
    if constexpr (kTls<Stream>) {
      ws_.next_layer().async_handshake(
          net::ssl::stream_base::server,
          [self = Self()](beast::error_code ec) { self->OnTlsHandshake(ec); });
    } else {
      ReadRequest();
    }
  }

  void Enqueue(std::shared_ptr<const std::string> text) override {
    if (closing_) {
      pending_.fetch_sub(1);
      return;
    }
    queue_.push_back(std::move(text));
    if (!writing_) Write();
  }

  // A subscriber that does not read would hold a close frame behind its unread events:
  // the socket is closed at once.
  void CloseForOverflow() override {
    spdlog::warn("event=ups_event_channel_overflow ae=\"{}\" queued={}: closing the connection",
                 ae_, owner_.options().max_queued_events);
    End();
  }

  void Close(const websocket::close_reason& reason) override {
    if (closing_) return;
    closing_ = true;
    if (!open_) {
      beast::error_code ignored;
      beast::get_lowest_layer(ws_).socket().close(ignored);
      return;
    }
    ws_.async_close(reason, [self = Self()](beast::error_code) { self->End(); });
  }

 private:
  std::shared_ptr<StreamSession> Self() {
    return std::static_pointer_cast<StreamSession>(shared_from_this());
  }

  void OnTlsHandshake(beast::error_code ec) {
    if constexpr (kTls<Stream>) {
      if (ec && ReportedCertificateRefusal(ec)) return End();
    }
    if (ec) {
      // A plain ws:// client, an untrusted or expired certificate on the client's side, a
      // scanner: one line a minute per peer.
      const std::string peer = PeerAddress();
      if (const std::optional<int64_t> unreported = owner_.AdmitLogLine(peer + " tls")) {
        spdlog::warn(
            "event=ups_event_channel_refused peer={} reason=\"TLS handshake failed: {}\" "
            "unreported_before={}",
            peer, ec.message(), *unreported);
      }
      return End();
    }
    if (closing_) return End();
    ReadRequest();
  }

  void ReadRequest() {
    parser_.emplace();
    parser_->header_limit(kMaxHeaderBytes);
    http::async_read(ws_.next_layer(), buffer_, *parser_,
                     [self = Self()](beast::error_code ec, size_t) { self->OnRequest(ec); });
  }

  void OnRequest(beast::error_code ec) {
    if (ec) {
      if (ec != http::error::end_of_stream && ec != net::error::operation_aborted) {
        spdlog::info("event=ups_event_channel_refused reason=\"unreadable request: {}\"",
                     ec.message());
      }
      return End();
    }
    if (closing_) return End();
    const http::request<http::empty_body>& req = parser_->get();
    bool bad_ae = false;
    const std::optional<std::string> ae =
        AeOfPath(std::string_view(req.target().data(), req.target().size()), bad_ae);
    if (!ae) {
      return Refuse(bad_ae ? http::status::bad_request : http::status::not_found,
                    bad_ae ? "the AE title in the path is not 1-16 printable characters"
                           : "no such resource: open /ws/subscribers/{AETitle}",
                    bad_ae ? "invalid AE title" : "unknown path");
    }
    ae_ = *ae;
    if (!websocket::is_upgrade(req)) {
      return Refuse(http::status::upgrade_required,
                    "the event channel is a WebSocket: send Upgrade: websocket", "not an upgrade");
    }
    const std::string token = BearerOf(req);
    UpsChannelDecision decision = owner_.Authorized(ae_, token);
    switch (decision.access) {
      case UpsChannelAccess::kGranted:
        tool_ = std::move(decision.tool);
        break;
      case UpsChannelAccess::kUnauthenticated:
        return Refuse(
            http::status::unauthorized,
            token.empty() ? "a bearer token is required" : "the bearer token is not valid",
            token.empty() ? "no bearer token" : "wrong token");
      case UpsChannelAccess::kForbidden:
        return Refuse(http::status::forbidden,
                      "this token's tool holds no subscription under this AE title: subscribe "
                      "it first (RAD-86); an AE title's events belong to the tool that "
                      "subscribed under it",
                      "AE title not the token's");
      case UpsChannelAccess::kUnavailable:
        return Refuse(http::status::service_unavailable,
                      "the subscriptions cannot be read now; try again later", "index unavailable");
    }
    beast::get_lowest_layer(ws_).expires_never();
    websocket::stream_base::timeout timeouts =
        websocket::stream_base::timeout::suggested(beast::role_type::server);
    timeouts.handshake_timeout = kCloseTimeout;
    ws_.set_option(timeouts);
    ws_.read_message_max(kMaxClientMessageBytes);
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(http::field::server, "conduit"); }));
    ws_.async_accept(req,
                     [self = Self()](beast::error_code accept_ec) { self->OnAccepted(accept_ec); });
  }

  // The client's address, for logs and audit ("unknown" once the socket is gone).
  std::string PeerAddress() {
    beast::error_code ec;
    const tcp::endpoint peer = beast::get_lowest_layer(ws_).socket().remote_endpoint(ec);
    return ec ? std::string("unknown") : peer.address().to_string();
  }

  // With client certificates asked for (http.tls.ca_file): a handshake that ended on the
  // client's certificate is reported as the HTTP port reports it. False for another failure.
  bool ReportedCertificateRefusal(const beast::error_code& ec) {
    if (owner_.options().ca_file.empty() || ec.category() != net::error::get_ssl_category()) {
      return false;
    }
    const std::optional<ClientCertificateRefusal> refusal = ClientCertificateRefusalOf(
        ws_.next_layer().native_handle(), static_cast<unsigned long>(ec.value()));
    if (!refusal) return false;
    return owner_.ReportRefusal(
        {.action = "ups_refused",
         .actor = "UPS-RS",
         .guard = "client_certificate",
         .peer = PeerAddress(),
         .via = {},
         .method = "other",
         .route = "tls_handshake",
         .reason = refusal->reason,
         .kind = refusal->missing ? AuthRefusalKind::kMissing : AuthRefusalKind::kInvalid,
         .job = std::nullopt,
         .detail = {{"protocol", "UPS-RS"}, {"transaction", "open_event_channel"}}});
  }

  // A 401/403 as every guard of the HTTP port reports it (http/auth_refusals.h), naming the
  // client a trusted proxy forwarded.
  AuthRefusal TokenRefusal(http::status status, const char* reason) {
    std::string forwarded_for;
    const auto [first, last] = parser_->get().equal_range("X-Forwarded-For");
    for (auto field = first; field != last; ++field) {
      if (field != first) forwarded_for += ',';
      forwarded_for.append(field->value().data(), field->value().size());
    }
    ClientAddress client =
        ClientAddressOf(PeerAddress(), forwarded_for, owner_.options().trusted_proxies);
    return {.action = "ups_refused",
            .actor = "UPS-RS",
            .guard = "worklist",
            .peer = std::move(client.address),
            .via = std::move(client.via),
            .method = "GET",
            .route = "/ws/subscribers/{ae}",
            .reason = reason,
            .kind = status == http::status::forbidden               ? AuthRefusalKind::kForbidden
                    : std::string_view(reason) == "no bearer token" ? AuthRefusalKind::kMissing
                                                                    : AuthRefusalKind::kInvalid,
            .job = std::nullopt,
            .detail = {{"protocol", "UPS-RS"}, {"transaction", "open_event_channel"}}};
  }

  void Refuse(http::status status, std::string message, const char* reason) {
    const bool for_token =
        status == http::status::unauthorized || status == http::status::forbidden;
    if (!for_token || !owner_.ReportRefusal(TokenRefusal(status, reason))) {
      // One line a minute per peer and reason: anyone can open connections to this port.
      const std::string peer = PeerAddress();
      if (const std::optional<int64_t> unreported = owner_.AdmitLogLine(peer + ' ' + reason)) {
        spdlog::warn(
            "event=ups_event_channel_refused status={} peer={} reason=\"{}\" "
            "unreported_before={}",
            static_cast<int>(status), peer, reason, *unreported);
      }
    }
    auto res = std::make_shared<http::response<http::string_body>>(status, 11);
    res->set(http::field::content_type, "application/json");
    if (status == http::status::unauthorized) {
      res->set(http::field::www_authenticate, "Bearer realm=\"conduit\"");
    }
    res->body() = nlohmann::json{{"error", std::move(message)}}.dump();
    res->keep_alive(false);
    res->prepare_payload();
    http::async_write(ws_.next_layer(), *res, [self = Self(), res](beast::error_code, size_t) {
      beast::error_code ignored;
      beast::get_lowest_layer(self->ws_).socket().shutdown(tcp::socket::shutdown_send, ignored);
      self->End();
    });
  }

  void OnAccepted(beast::error_code ec) {
    parser_.reset();
    if (ec) {
      spdlog::info("event=ups_event_channel_refused reason=\"handshake failed: {}\"", ec.message());
      return End();
    }
    if (closing_) return End();
    open_ = true;
    owner_.Register(shared_from_this());
    spdlog::info("event=ups_event_channel_opened ae=\"{}\"", ae_);
    Read();
  }

  void Read() {
    ws_.async_read(read_buffer_, [self = Self()](beast::error_code ec, size_t) {
      if (ec) {
        if (ec != websocket::error::closed && ec != net::error::operation_aborted) {
          spdlog::info("event=ups_event_channel_closed ae=\"{}\" reason=\"{}\"", self->ae_,
                       ec.message());
        } else {
          spdlog::info("event=ups_event_channel_closed ae=\"{}\"", self->ae_);
        }
        return self->End();
      }
      self->read_buffer_.consume(self->read_buffer_.size());  // subscribers have nothing to say
      self->Read();
    });
  }

  void Write() {
    writing_ = true;
    ws_.text(true);
    ws_.async_write(net::buffer(*queue_.front()), [self = Self()](beast::error_code ec, size_t) {
      self->queue_.pop_front();
      self->pending_.fetch_sub(1);
      if (ec || self->closing_) {
        self->writing_ = false;
        if (ec && !self->closing_) self->End();
        return;
      }
      if (self->queue_.empty()) {
        self->writing_ = false;
      } else {
        self->Write();
      }
    });
  }

  // The connection is over: forget it (idempotent).
  void End() {
    if (ended_) return;
    ended_ = true;
    closing_ = true;
    owner_.Unregister(this);
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);
  }

  websocket::stream<Stream> ws_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::empty_body>> parser_;
  beast::flat_buffer read_buffer_;
  std::deque<std::shared_ptr<const std::string>> queue_;
  bool writing_ = false;
  bool open_ = false;
  bool closing_ = false;
  bool ended_ = false;
};

Status UpsEventChannel::Impl::Start() {
  if (thread_.joinable()) return FailedPrecondition("ups event channel: already started");
  if (!options_.certificate_file.empty()) {
    auto tls = std::make_unique<net::ssl::context>(net::ssl::context::tls_server);
    SSL_CTX_set_min_proto_version(tls->native_handle(), TLS1_2_VERSION);
    RETURN_IF_ERROR(UseCertificateAndKey(tls->native_handle(), options_.certificate_file,
                                         options_.key_file, "http.tls.certificate_file",
                                         "http.tls.key_file")
                        .WithContext("ups event channel"));
    if (!options_.ca_file.empty()) {
      auto revocation = RequireClientCertificates(tls->native_handle(), options_.ca_file,
                                                  options_.crl_file, "http.tls");
      if (!revocation.ok()) return revocation.status().WithContext("ups event channel");
      revocation_ = std::move(*revocation);
    }
    tls_ = std::move(tls);
  }
  ioc_ = std::make_unique<net::io_context>(1);
  const std::string where = options_.bind + ":" + std::to_string(options_.port);
  beast::error_code ec;
  tcp::resolver resolver(*ioc_);
  auto endpoints = resolver.resolve(options_.bind, std::to_string(options_.port),
                                    tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || endpoints.empty()) {
    ioc_.reset();
    return Unavailable("ups event channel: bind " + where + ": cannot resolve the address");
  }
  const tcp::endpoint endpoint = endpoints.begin()->endpoint();
  acceptor_ = std::make_unique<tcp::acceptor>(*ioc_);
  acceptor_->open(endpoint.protocol(), ec);
  if (!ec) acceptor_->set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_->bind(endpoint, ec);
  if (!ec) acceptor_->listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    acceptor_.reset();
    ioc_.reset();
    return Unavailable("ups event channel: bind " + where + ": " + ec.message());
  }
  port_ = acceptor_->local_endpoint(ec).port();
  {
    std::lock_guard lock(done_mu_);
    run_done_ = false;
  }
  Accept();
  thread_ = std::jthread([this] {
    pthread_setname_np(pthread_self(), "ups-events");
    try {
      ioc_->run();
    } catch (const std::exception& e) {
      spdlog::error("ups event channel: io thread failed: {}", e.what());
    }
    {
      std::lock_guard lock(done_mu_);
      run_done_ = true;
    }
    done_cv_.notify_all();
  });
  spdlog::info("ups event channel listening on {}:{} ({})", options_.bind, port_.load(),
               tls_ ? "wss" : "ws");
  return Status::Ok();
}

void UpsEventChannel::Impl::Accept() {
  acceptor_->async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec != net::error::operation_aborted) {
        spdlog::warn("ups event channel: accept failed: {}", ec.message());
        Accept();
      }
      return;
    }
    if (live_sessions_.load() >= options_.max_connections) {
      spdlog::warn("event=ups_event_channel_refused reason=\"{} connections open\"",
                   options_.max_connections);
      beast::error_code ignored;
      socket.close(ignored);
    } else {
      socket.set_option(tcp::no_delay(true), ec);
      std::shared_ptr<Session> session;
      if (tls_) {
        session = std::make_shared<StreamSession<beast::ssl_stream<beast::tcp_stream>>>(
            *this, std::move(socket), *tls_);
      } else {
        session = std::make_shared<StreamSession<beast::tcp_stream>>(*this, std::move(socket));
      }
      std::erase_if(all_, [](const std::weak_ptr<Session>& w) { return w.expired(); });
      all_.push_back(session);
      session->Start();
    }
    Accept();
  });
}

void UpsEventChannel::Impl::Stop() {
  if (!thread_.joinable()) return;
  net::post(*ioc_, [this] {
    beast::error_code ignored;
    acceptor_->close(ignored);
    for (const std::weak_ptr<Session>& w : all_) {
      if (auto s = w.lock()) {
        s->Close(websocket::close_reason(websocket::close_code::going_away, "gateway stopping"));
      }
    }
    all_.clear();
  });
  {
    std::unique_lock lock(done_mu_);
    if (!done_cv_.wait_for(lock, kStopGrace, [this] { return run_done_; })) ioc_->stop();
  }
  thread_.join();
  {
    std::lock_guard lock(mu_);
    open_.clear();
  }
  acceptor_.reset();
  ioc_.reset();  // destroys handlers still queued, and with them their sessions
  port_ = 0;
}

void UpsEventChannel::Impl::Register(const std::shared_ptr<Session>& s) {
  std::lock_guard lock(mu_);
  open_[s->ae()].push_back(s);
}

void UpsEventChannel::Impl::Unregister(Session* s) {
  std::lock_guard lock(mu_);
  auto it = open_.find(s->ae());
  if (it == open_.end()) return;
  std::erase_if(it->second, [s](const std::shared_ptr<Session>& p) { return p.get() == s; });
  if (it->second.empty()) open_.erase(it);
}

void UpsEventChannel::Impl::Send(const std::string& ae, const UpsEvent& event) {
  // Under mu_ throughout: Stop() empties open_ under it before the io_context goes away.
  std::lock_guard lock(mu_);
  auto it = open_.find(ae);
  if (it == open_.end() || !ioc_) return;
  auto text =
      std::make_shared<const std::string>(EventReportJson(event, next_message_id_.fetch_add(1)));
  for (const std::shared_ptr<Session>& s : it->second) {
    if (!event.tool.empty() && !s->tool().empty() && s->tool() != event.tool) continue;
    if (s->Reserve()) {
      net::post(*ioc_, [s, text] { s->Enqueue(text); });
    } else if (s->MarkOverflow()) {
      net::post(*ioc_, [s] { s->CloseForOverflow(); });
    }
  }
}

size_t UpsEventChannel::Impl::ConnectionCount(const std::string& ae) const {
  std::lock_guard lock(mu_);
  auto it = open_.find(ae);
  return it == open_.end() ? 0 : it->second.size();
}

UpsEventChannel::UpsEventChannel(UpsEventChannelOptions options, Authorizer authorize,
                                 RefusalReporter report_refusal)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(authorize),
                                   std::move(report_refusal))) {}

UpsEventChannel::~UpsEventChannel() { Stop(); }

Status UpsEventChannel::Start() { return impl_->Start(); }
void UpsEventChannel::Stop() { impl_->Stop(); }
int UpsEventChannel::port() const { return impl_->port(); }

void UpsEventChannel::Send(const std::string& subscriber_ae, const UpsEvent& event) {
  impl_->Send(subscriber_ae, event);
}

size_t UpsEventChannel::ConnectionCount(const std::string& ae_title) const {
  return impl_->ConnectionCount(ae_title);
}

std::string UpsEventChannel::EventReportJson(const UpsEvent& event, uint16_t message_id) {
  using json = nlohmann::json;
  json out = json::object();
  json attributes = json::parse(event.attributes, nullptr, /*allow_exceptions=*/false);
  if (attributes.is_object()) out = std::move(attributes);
  auto attr = [](const char* vr, json value) {
    return json{{"vr", vr}, {"Value", json::array({std::move(value)})}};
  };
  out["00000002"] = attr("UI", kUpsEventSopClass);
  out["00000100"] = attr("US", kNEventReportRq);
  out["00000110"] = attr("US", message_id);
  out["00001000"] = attr(
      "UI", event.workitem_uid.empty() ? std::string(kUpsWellKnownInstance) : event.workitem_uid);
  out["00001002"] = attr("US", event.event_type);
  return out.dump(-1, ' ', false, json::error_handler_t::replace);
}

UpsEventChannel::Authorizer WorklistChannelAuthorizer(const WorklistTokens& tokens,
                                                      Worklist& worklist, std::string admin_token) {
  return [&tokens, &worklist, admin = std::move(admin_token)](
             const std::string& ae, const std::string& token) -> UpsChannelDecision {
    if (token.empty()) return UpsChannelAccess::kUnauthenticated;
    if (!admin.empty() && TokensEqual(token, admin)) return UpsChannelAccess::kGranted;
    const std::optional<std::string> tool = tokens.ToolOf(token);
    if (!tool) return UpsChannelAccess::kUnauthenticated;
    Result<bool> holds = worklist.HoldsSubscriber(*tool, ae);
    if (!holds.ok()) {
      spdlog::warn("event=ups_event_channel_check_failed tool={} error=\"{}\"", *tool,
                   holds.status().ToString());
      return UpsChannelAccess::kUnavailable;
    }
    if (!*holds) return UpsChannelAccess::kForbidden;
    return UpsChannelDecision(UpsChannelAccess::kGranted, *tool);
  };
}

}  // namespace conduit
