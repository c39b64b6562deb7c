#include "hl7/mllp.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>

namespace conduit {
namespace {

using SteadyClock = std::chrono::steady_clock;
constexpr int kPollMillis = 100;  // how often blocked threads look at their stop token

std::string Errno(int err) { return std::strerror(err); }

void DisableNagle(int socket) {
  const int one = 1;
  setsockopt(socket, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

void SetNonBlocking(int socket) {
  const int flags = fcntl(socket, F_GETFL, 0);
  if (flags >= 0) fcntl(socket, F_SETFL, flags | O_NONBLOCK);
}

int RemainingMillis(SteadyClock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
  return left.count() <= 0 ? 0 : static_cast<int>(std::min<int64_t>(left.count(), 1 << 30));
}

std::string PeerHost(const sockaddr_in& address) {
  char text[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &address.sin_addr, text, sizeof text);
  return text;
}

std::string PeerName(const sockaddr_in& address) {
  return PeerHost(address) + ":" + std::to_string(ntohs(address.sin_port));
}

// The address of a PeerName ("host:port" -> "host").
std::string HostOf(const std::string& peer_name) {
  return peer_name.substr(0, peer_name.rfind(':'));
}

}  // namespace

std::string MllpFrame(std::string_view payload) {
  std::string frame;
  frame.reserve(payload.size() + 3);
  frame += kMllpStart;
  frame += payload;
  frame += kMllpEnd;
  frame += kMllpCarriageReturn;
  return frame;
}

void MllpDecoder::Feed(std::string_view bytes, std::vector<std::string>& messages) {
  size_t i = 0;
  while (i < bytes.size()) {
    const char c = bytes[i];
    switch (state_) {
      case State::kIdle:
        if (c == kMllpStart) {
          state_ = State::kInFrame;
          buffer_.clear();
        } else {
          ++discarded_bytes_;
        }
        ++i;
        break;
      case State::kInFrame: {
        // Copies the run of payload bytes up to the next control byte at once.
        size_t end = i;
        while (end < bytes.size() && bytes[end] != kMllpStart && bytes[end] != kMllpEnd) ++end;
        const size_t run = end - i;
        if (buffer_.size() + run > max_message_bytes_) {
          ++oversized_frames_;
          buffer_.clear();
          buffer_.shrink_to_fit();
          state_ = State::kSkipping;
          i = end;
          break;
        }
        buffer_.append(bytes.substr(i, run));
        i = end;
        if (i == bytes.size()) break;
        if (bytes[i] == kMllpStart) {
          ++abandoned_frames_;
          buffer_.clear();
        } else {
          state_ = State::kAfterEnd;
        }
        ++i;
        break;
      }
      case State::kAfterEnd:
        if (c == kMllpCarriageReturn) {
          messages.push_back(std::move(buffer_));
          buffer_.clear();
          state_ = State::kIdle;
        } else {
          ++abandoned_frames_;
          buffer_.clear();
          if (c == kMllpStart) {
            state_ = State::kInFrame;
          } else {
            ++discarded_bytes_;
            state_ = State::kIdle;
          }
        }
        ++i;
        break;
      case State::kSkipping:
      case State::kSkippingAfterEnd:
        if (c == kMllpStart) {
          state_ = State::kInFrame;
          buffer_.clear();
        } else if (c == kMllpEnd) {
          state_ = State::kSkippingAfterEnd;
        } else if (state_ == State::kSkippingAfterEnd && c == kMllpCarriageReturn) {
          state_ = State::kIdle;
        } else {
          state_ = State::kSkipping;
        }
        ++i;
        break;
    }
  }
}

MllpListener::MllpListener(MllpListenerOptions options, Hl7Handler handler, const Clock& clock)
    : options_(std::move(options)), handler_(std::move(handler)), clock_(clock) {}

MllpListener::MllpListener(MllpListenerOptions options, MllpRawHandler handler, const Clock& clock)
    : options_(std::move(options)), raw_handler_(std::move(handler)), clock_(clock) {}

MllpListener::~MllpListener() { Stop(); }

Status MllpListener::Start() {
  if (listen_socket_ >= 0) return FailedPrecondition("mllp listener: already started");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(options_.port));
  const std::string host = options_.bind == "localhost" ? "127.0.0.1" : options_.bind;
  if (options_.port < 0 || options_.port > 65535 ||
      inet_pton(AF_INET, host.c_str(), &address.sin_addr) != 1) {
    return InvalidArgument("mllp listener: bind address " + options_.bind + ":" +
                           std::to_string(options_.port) + " is not an IPv4 address and port");
  }
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Unavailable("mllp listener: socket: " + Errno(errno));
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 || listen(fd, 64) != 0) {
    const int err = errno;
    close(fd);
    return Unavailable("mllp listener: bind " + options_.bind + ":" +
                       std::to_string(options_.port) + ": " + Errno(err));
  }
  SetNonBlocking(fd);
  socklen_t length = sizeof address;
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  port_ = ntohs(address.sin_port);
  listen_socket_ = fd;
  accept_thread_ = std::jthread([this](std::stop_token stop) { AcceptLoop(stop); });
  pthread_setname_np(accept_thread_.native_handle(), "mllp-accept");
  spdlog::info("mllp listener on {}:{}{}", options_.bind, port_.load(),
               options_.tls ? " (TLS)" : "");
  return Status::Ok();
}

void MllpListener::Stop() {
  if (listen_socket_ < 0) return;
  accept_thread_.request_stop();
  if (accept_thread_.joinable()) accept_thread_.join();
  close(listen_socket_);
  listen_socket_ = -1;
  std::list<Connection> stopping;
  {
    std::lock_guard lock(mu_);
    for (Connection& connection : connections_) {
      connection.thread.request_stop();
      if (connection.socket >= 0) shutdown(connection.socket, SHUT_RDWR);
    }
    stopping.splice(stopping.end(), connections_);
  }
  for (Connection& connection : stopping) {
    if (connection.thread.joinable()) connection.thread.join();
  }
  spdlog::info("mllp listener on {}:{} stopped", options_.bind, port_.load());
}

void MllpListener::ReapFinished() {
  std::list<Connection> finished;
  {
    std::lock_guard lock(mu_);
    for (auto it = connections_.begin(); it != connections_.end();) {
      auto next = std::next(it);
      if (it->finished) finished.splice(finished.end(), connections_, it);
      it = next;
    }
  }
  // ~jthread joins: each finished thread has only its return left to do.
}

void MllpListener::AcceptLoop(std::stop_token stop) {
  while (!stop.stop_requested()) {
    ReapFinished();
    pollfd p{listen_socket_, POLLIN, 0};
    if (poll(&p, 1, kPollMillis) <= 0) continue;
    sockaddr_in address{};
    socklen_t length = sizeof address;
    const int fd = accept4(listen_socket_, reinterpret_cast<sockaddr*>(&address), &length,
                           SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        spdlog::warn("mllp listener: accept: {}", Errno(errno));
      }
      continue;
    }
    const std::string peer = PeerName(address);
    if (!Allowed(options_.allowed_peers, address.sin_addr)) {
      close(fd);
      Refuse(PeerHost(address), PermissionDenied("connection from " + peer +
                                                 " refused: address not in the allowed list"));
      continue;
    }
    std::unique_lock lock(mu_);
    if (!MakeRoomLocked(peer)) {
      lock.unlock();
      close(fd);
      Refuse(PeerHost(address), ResourceExhausted("connection from " + peer + " refused: " +
                                                  std::to_string(options_.max_connections) +
                                                  " connections already open, none idle"));
      continue;
    }
    DisableNagle(fd);
    ++active_;
    Connection& connection = connections_.emplace_back();
    connection.socket = fd;
    connection.peer = peer;
    connection.last_activity = SteadyClock::now();
    // The thread takes mu_ before touching `connection`, so it waits for this assignment.
    connection.thread = std::jthread(
        [this, fd, peer, self = &connection](std::stop_token s) { Serve(s, fd, peer, self); });
    pthread_setname_np(connection.thread.native_handle(), "mllp-conn");
  }
}

void MllpListener::Refuse(const std::string& peer, const Status& why) {
  if (options_.on_refused) {
    options_.on_refused(peer, why);
  } else {
    spdlog::warn("mllp listener: {}", why.message());
  }
}

bool MllpListener::MakeRoomLocked(const std::string& peer) {
  const auto now = SteadyClock::now();
  int open = 0;
  Connection* idlest = nullptr;
  for (Connection& connection : connections_) {
    if (connection.finished || connection.evicted) continue;
    ++open;
    if (connection.socket < 0 || connection.answering) continue;
    if (now - connection.last_activity < options_.evict_idle_after) continue;
    if (idlest == nullptr || connection.last_activity < idlest->last_activity) {
      idlest = &connection;
    }
  }
  if (open < std::max(1, options_.max_connections)) return true;
  if (idlest == nullptr) return false;
  idlest->evicted = true;
  // Wakes its thread, which closes the connection and logs why.
  shutdown(idlest->socket, SHUT_RDWR);
  spdlog::warn(
      "mllp listener: {} connections open: closing the one from {}, idle for {:.1f} s, to serve "
      "a new one from {}",
      options_.max_connections, idlest->peer,
      std::chrono::duration<double>(now - idlest->last_activity).count(), peer);
  return true;
}

void MllpListener::MarkActivity(Connection* self, bool answering) {
  std::lock_guard lock(mu_);
  self->last_activity = SteadyClock::now();
  self->answering = answering;
}

void MllpListener::Serve(std::stop_token stop, int socket, std::string peer, Connection* self) {
  spdlog::info("mllp listener: connection from {}{}", peer, options_.tls ? " (TLS)" : "");
  auto stream = std::make_unique<MllpStream>(socket, options_.tls);
  std::string why = "peer closed the connection";
  const Status shaken =
      stream->Handshake(/*server=*/true, SteadyClock::now() + options_.handshake_timeout, &stop);
  if (shaken.ok()) {
    why = Converse(stop, *stream, peer, self);
  } else {
    why = shaken.message();
    if (shaken.code() != StatusCode::kUnavailable) {
      const std::string host = peer.substr(0, peer.rfind(':'));
      Refuse(host, Status(shaken.code(), "connection from " + peer + " refused: " + why));
    }
  }
  {
    std::lock_guard lock(mu_);
    if (self->evicted) why = "idle, closed to serve a newer connection";
    self->socket = -1;  // from here on nobody else may shut the descriptor down
  }
  spdlog::info("mllp listener: closing connection from {}: {}", peer, why);
  stream.reset();  // closes the socket
  std::lock_guard lock(mu_);
  self->finished = true;
  --active_;
}

std::string MllpListener::Converse(std::stop_token stop, MllpStream& stream,
                                   const std::string& peer, Connection* self) {
  MllpDecoder decoder(options_.limits.max_message_bytes);
  std::vector<std::string> messages;
  std::string buffer(64 * 1024, '\0');
  auto last_activity = SteadyClock::now();
  size_t discarded_logged = 0;
  while (true) {
    if (stop.stop_requested()) return "listener stopping";
    Result<size_t> n =
        stream.Read(buffer.data(), buffer.size(), std::chrono::milliseconds(kPollMillis));
    if (!n.ok()) return n.status().message();
    if (*n == 0) {
      if (SteadyClock::now() - last_activity > options_.idle_timeout) return "idle timeout";
      continue;
    }
    last_activity = SteadyClock::now();
    messages.clear();
    decoder.Feed(std::string_view(buffer.data(), *n), messages);
    MarkActivity(self, !messages.empty());
    if (decoder.discarded_bytes() > discarded_logged) {
      spdlog::warn("mllp listener: {}: {} bytes outside MLLP frames discarded", peer,
                   decoder.discarded_bytes() - discarded_logged);
      discarded_logged = decoder.discarded_bytes();
    }
    if (decoder.oversized_frames() > 0) {
      return "a frame over " + std::to_string(options_.limits.max_message_bytes) + " bytes";
    }
    for (const std::string& payload : messages) {
      Result<std::string> reply = Answer(payload, peer);
      if (!reply.ok()) return reply.status().message();
      const Status written =
          stream.WriteAll(MllpFrame(*reply), SteadyClock::now() + options_.write_timeout, &stop);
      if (!written.ok()) return "ack " + written.message();
      ++handled_;
    }
    if (!messages.empty()) MarkActivity(self, false);
  }
}

std::string MllpListener::NextControlId() {
  // MSH-10 is at most 20 characters in v2.5.1: "A" + 13 digits of ms + "." + 5 digits.
  return "A" + std::to_string(ToUnixMillis(clock_.Now())) + "." +
         std::to_string(ack_sequence_.fetch_add(1) % 100'000);
}

Result<std::string> MllpListener::Answer(std::string_view payload, const std::string& peer) {
  if (raw_handler_) {
    try {
      return raw_handler_(payload);
    } catch (const std::exception& e) {
      return Internal(std::string("mllp listener: raw handler threw: ") + e.what());
    }
  }
  AckSender sender{options_.application, options_.facility, NextControlId(), clock_.Now()};
  Result<Hl7Message> message = Hl7Message::Parse(payload, options_.limits);
  if (!message.ok()) {
    Result<Hl7Message> header = Hl7Message::ParseHeader(payload, options_.limits);
    if (!header.ok()) {
      if (options_.on_unparsed) options_.on_unparsed(HostOf(peer), "", message.status());
      return InvalidArgument("mllp listener: " + peer +
                             ": unreadable message: " + message.status().message());
    }
    if (options_.on_unparsed) {
      options_.on_unparsed(HostOf(peer), header->control_id(), message.status());
    } else {
      spdlog::warn("mllp listener: {}: message {} refused: {}", peer,
                   header->control_id().substr(0, 20), message.status().message());
    }
    const std::string code =
        message.status().code() == StatusCode::kResourceExhausted ? "207" : "102";
    ASSIGN_OR_RETURN(
        Hl7Message ack,
        BuildAck(*header, {AckCode::kReject, code, message.status().message()}, sender));
    return ack.Serialize();
  }
  Result<std::string> reply = Internal("handler did not run");
  try {
    reply = handler_(*message);
  } catch (const std::exception& e) {
    reply = Internal(std::string("handler threw: ") + e.what());
  }
  if (reply.ok()) return reply;
  spdlog::warn("mllp listener: {}: message {} not accepted: {}", peer,
               message->control_id().substr(0, 20), reply.status().ToString());
  ASSIGN_OR_RETURN(Hl7Message ack, BuildAck(*message, AckDetailForStatus(reply.status()), sender));
  return ack.Serialize();
}

void MllpSender::Close() { stream_.reset(); }

Status MllpSender::EnsureConnected() {
  const std::string where =
      "mllp send to " + options_.host + ":" + std::to_string(options_.port) + ": ";
  if (stream_ != nullptr) {
    // A peer that closed an idle connection, or sent bytes nobody asked for (over TLS, its
    // close_notify): start afresh.
    char byte;
    const ssize_t n = recv(stream_->fd(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) || n > 0) Close();
  }
  if (stream_ != nullptr) return Status::Ok();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int rc =
      getaddrinfo(options_.host.c_str(), std::to_string(options_.port).c_str(), &hints, &found);
  if (rc != 0) return Unavailable(where + "resolve: " + gai_strerror(rc));
  const auto deadline = SteadyClock::now() + options_.connect_timeout;
  std::string last_error = "no address";
  int connected = -1;
  for (addrinfo* a = found; a != nullptr && connected < 0; a = a->ai_next) {
    const int fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
      last_error = Errno(errno);
      continue;
    }
    int err = 0;
    if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      err = errno;
      if (err == EINPROGRESS) {
        pollfd p{fd, POLLOUT, 0};
        const int ready = poll(&p, 1, RemainingMillis(deadline));
        if (ready <= 0) {
          err = ETIMEDOUT;
        } else {
          socklen_t length = sizeof err;
          getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &length);
        }
      }
    }
    if (err != 0) {
      last_error = err == ETIMEDOUT ? "connect timed out" : "connect: " + Errno(err);
      close(fd);
      continue;
    }
    DisableNagle(fd);
    connected = fd;
  }
  freeaddrinfo(found);
  if (connected < 0) return Unavailable(where + last_error);
  stream_ = std::make_unique<MllpStream>(connected, options_.tls, options_.host);
  if (Status shaken = stream_->Handshake(/*server=*/false, deadline, nullptr); !shaken.ok()) {
    Close();
    return Unavailable(where + shaken.message());
  }
  return Status::Ok();
}

Result<AckOutcome> MllpSender::Exchange(const Hl7Message& message) {
  const std::string control_id = message.control_id();
  const std::string where = "mllp send " + control_id + " to " + options_.host + ":" +
                            std::to_string(options_.port) + ": ";
  if (control_id.empty()) return InvalidArgument("mllp send: message has no control id (MSH-10)");
  RETURN_IF_ERROR(EnsureConnected());
  const auto deadline = SteadyClock::now() + options_.ack_timeout;
  const Status written = stream_->WriteAll(MllpFrame(message.Serialize()), deadline, nullptr);
  if (!written.ok()) {
    Close();
    return Status(written.code(), where + written.message());
  }
  MllpDecoder decoder(options_.max_ack_bytes);
  std::vector<std::string> frames;
  std::string buffer(16 * 1024, '\0');
  while (true) {
    const int left = RemainingMillis(deadline);
    if (left == 0) {
      Close();
      return DeadlineExceeded(where + "no ACK within " +
                              std::to_string(options_.ack_timeout.count()) + " ms");
    }
    Result<size_t> n = stream_->Read(buffer.data(), buffer.size(), std::chrono::milliseconds(left));
    if (!n.ok()) {
      Close();
      return Unavailable(where + n.status().message() + " before its ACK");
    }
    if (*n == 0) continue;
    frames.clear();
    decoder.Feed(std::string_view(buffer.data(), *n), frames);
    if (decoder.oversized_frames() > 0) {
      Close();
      return Unavailable(where + "answer over " + std::to_string(options_.max_ack_bytes) +
                         " bytes");
    }
    for (const std::string& frame : frames) {
      Result<Hl7Message> ack = Hl7Message::Parse(frame);
      Result<AckOutcome> outcome = ack.ok() ? ReadAck(*ack) : Result<AckOutcome>(ack.status());
      if (!outcome.ok()) {
        Close();
        return Unavailable(where + "answer is not an ACK: " + outcome.status().message());
      }
      if (outcome->acknowledged_control_id != control_id) {
        spdlog::warn("mllp send {}: skipping an ACK for another message", control_id);
        continue;
      }
      return outcome;
    }
  }
}

Status MllpSender::Send(const Hl7Message& message) {
  ASSIGN_OR_RETURN(AckOutcome outcome, Exchange(message));
  return AckStatus(outcome);
}

}  // namespace conduit
