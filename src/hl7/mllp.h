// MLLP (HL7's minimal lower layer protocol): each message travels as 0x0B <message> 0x1C 0x0D
// over TCP. MllpDecoder turns a byte stream into messages; MllpListener serves HL7 peers (a RIS
// sending orders and reports) and answers each message with an ACK; MllpSender sends one message
// at a time to a peer and waits for its ACK. TCP_NODELAY is on for every connection.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/address_range.h"
#include "core/clock.h"
#include "core/status.h"
#include "hl7/hl7_ack.h"
#include "hl7/hl7_message.h"
#include "hl7/mllp_stream.h"

namespace conduit {

inline constexpr char kMllpStart = 0x0B;
inline constexpr char kMllpEnd = 0x1C;
inline constexpr char kMllpCarriageReturn = 0x0D;

// 0x0B payload 0x1C 0x0D.
std::string MllpFrame(std::string_view payload);

// Streaming MLLP decoder: bytes in, complete payloads out. Bytes outside a frame are discarded
// (resync on the next 0x0B); a 0x0B inside a frame abandons the partial frame and starts a new
// one; a 0x1C not followed by 0x0D abandons the frame; a frame longer than max_message_bytes is
// dropped whole. buffered_bytes() never exceeds max_message_bytes + 1.
// Thread safety: none; one decoder per connection.
class MllpDecoder {
 public:
  explicit MllpDecoder(size_t max_message_bytes) : max_message_bytes_(max_message_bytes) {}

  // Appends every payload completed by `bytes` to `messages`.
  void Feed(std::string_view bytes, std::vector<std::string>& messages);

  size_t buffered_bytes() const { return buffer_.size(); }
  // Bytes seen outside any frame (garbage before or between frames).
  size_t discarded_bytes() const { return discarded_bytes_; }
  // Frames abandoned (broken end, restarted) and frames dropped for their size.
  size_t abandoned_frames() const { return abandoned_frames_; }
  size_t oversized_frames() const { return oversized_frames_; }
  // True while inside a frame (a message has begun and not ended).
  bool in_frame() const { return state_ != State::kIdle; }

 private:
  enum class State { kIdle, kInFrame, kAfterEnd, kSkipping, kSkippingAfterEnd };
  const size_t max_message_bytes_;
  State state_ = State::kIdle;
  std::string buffer_;
  size_t discarded_bytes_ = 0;
  size_t abandoned_frames_ = 0;
  size_t oversized_frames_ = 0;
};

// Handles one parsed message and returns the complete ACK (ER7) to send back, usually from
// BuildAck(). An error status is answered by the listener with an AE (retryable status) or
// AR ACK whose text is the status message, so the message must not carry patient data.
using Hl7Handler = std::function<Result<std::string>(const Hl7Message& message)>;
// Handles one raw payload and returns the raw reply; an error closes the connection.
using MllpRawHandler = std::function<Result<std::string>(std::string_view payload)>;

struct MllpListenerOptions {
  std::string bind = "127.0.0.1";  // IPv4 address; "0.0.0.0" for any
  int port = 0;                    // 0: an ephemeral port (see port())
  // When this many are open, a new connection takes the place of the one idle longest, if it
  // has been idle for evict_idle_after and is not answering a message; else it is closed at
  // once. (A RIS that reconnects after a network fault leaves dead connections behind.)
  int max_connections = 8;
  std::chrono::milliseconds evict_idle_after{std::chrono::seconds(30)};
  // Connections from other addresses are closed at once; empty: any address.
  std::vector<AddressRange> allowed_peers;
  // Told of each connection refused, with the peer's address (no port): kPermissionDenied
  // (address not allowed, TLS handshake failed), kResourceExhausted (max_connections open, none
  // idle enough to replace), kDeadlineExceeded (TLS handshake too slow). Called on the accept
  // thread or the connection's; it should not block for long. Empty: each is logged as a
  // warning.
  std::function<void(const std::string& peer, const Status& why)> on_refused;
  // Told of each message that does not parse, with the peer's address, its control id (MSH-10)
  // and why: answered AR (ERR-3 102, or 207 over a limit), or, when even its header cannot be
  // read (control id empty), the connection is closed. Never passed to the handler. Called on
  // the connection's thread. Empty: each is logged as a warning.
  std::function<void(const std::string& peer, const std::string& control_id, const Status& why)>
      on_unparsed;
  Hl7Limits limits;  // also bounds each frame (limits.max_message_bytes)
  std::chrono::milliseconds idle_timeout{std::chrono::minutes(10)};  // closes a silent peer
  std::chrono::milliseconds write_timeout{std::chrono::seconds(30)};
  // With a context (MakeMllpServerContext), every connection speaks TLS: its handshake must be
  // done within handshake_timeout of the accept; one that fails is reported like a refused
  // connection (kPermissionDenied or kDeadlineExceeded, through on_refused).
  MllpTls tls;
  std::chrono::milliseconds handshake_timeout{std::chrono::seconds(10)};
  std::string application = "CONDUIT";  // MSH-3 of the ACKs the listener builds
  std::string facility;                 // MSH-4 of the ACKs the listener builds
};

// MllpListener: an accept thread ("mllp-accept") and one thread per connection ("mllp-conn"),
// at most max_connections. Each message is handled in order of arrival on its connection and
// answered before the next is read. A message that does not parse is answered with AR (code 102
// or the limit that was exceeded) when its MSH is readable; otherwise, as for an oversized frame,
// the connection is closed after logging. Logs name the peer and positions, never content.
// Thread safety: Start/Stop from one thread; handlers are called from connection threads,
// concurrently across connections.
class MllpListener {
 public:
  MllpListener(MllpListenerOptions options, Hl7Handler handler, const Clock& clock);
  MllpListener(MllpListenerOptions options, MllpRawHandler handler, const Clock& clock);
  ~MllpListener();
  MllpListener(const MllpListener&) = delete;
  MllpListener& operator=(const MllpListener&) = delete;

  // Binds and starts accepting. Errors: kUnavailable if the address cannot be bound,
  // kInvalidArgument for a bind address that is not IPv4, kFailedPrecondition if started.
  Status Start();
  // Stops accepting, closes every connection and joins every thread within about a second
  // (longer only while a handler call is running). Idempotent.
  void Stop();
  int port() const { return port_.load(); }
  int active_connections() const { return active_.load(); }
  // Messages answered (with any ACK) since Start.
  size_t messages_handled() const { return handled_.load(); }

 private:
  struct Connection {
    std::jthread thread;
    int socket = -1;
    std::string peer;
    // Guarded by mu_:
    std::chrono::steady_clock::time_point last_activity;  // accepted, or last bytes read
    bool answering = false;  // a message is being handled or its ACK written
    bool evicted = false;    // shut down to make room for a new connection
    bool finished = false;
  };
  void AcceptLoop(std::stop_token stop);
  // Whether a connection from `peer` may be served now, evicting the longest-idle connection
  // when the limit is reached (see MllpListenerOptions::max_connections). Holds mu_.
  bool MakeRoomLocked(const std::string& peer);
  void MarkActivity(Connection* self, bool answering);
  // Reports a connection closed at once (options_.on_refused, or a warning).
  void Refuse(const std::string& peer, const Status& why);
  void Serve(std::stop_token stop, int socket, std::string peer, Connection* self);
  // Reads and answers messages until the connection ends; returns why it ended.
  std::string Converse(std::stop_token stop, MllpStream& stream, const std::string& peer,
                       Connection* self);
  // The reply for one payload, or an error that closes the connection.
  Result<std::string> Answer(std::string_view payload, const std::string& peer);
  std::string NextControlId();
  void ReapFinished();

  const MllpListenerOptions options_;
  Hl7Handler handler_;
  MllpRawHandler raw_handler_;
  const Clock& clock_;
  int listen_socket_ = -1;
  std::jthread accept_thread_;
  std::atomic<int> port_{0};
  std::atomic<int> active_{0};
  std::atomic<size_t> handled_{0};
  std::atomic<uint64_t> ack_sequence_{0};
  std::mutex mu_;
  std::list<Connection> connections_;  // guarded by mu_
};

struct MllpSenderOptions {
  std::string host = "127.0.0.1";
  int port = 0;
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(10)};
  std::chrono::milliseconds ack_timeout{std::chrono::seconds(30)};  // from the last byte sent
  size_t max_ack_bytes = 1024 * 1024;
  // With a context (MakeMllpClientContext): TLS, the peer's certificate verified against it
  // and against `host`; the handshake is bounded by connect_timeout.
  MllpTls tls;
};

// MllpSender: sends one message and waits for the ACK whose MSA-2 names its control id (ACKs
// for other ids are skipped). The connection is kept for the next message and reopened when
// the peer has closed it; after any error it is closed. Blocks for at most connect_timeout +
// ack_timeout (plus name resolution).
// Thread safety: none; one sender per destination, used from one thread (the per-RIS queue).
class MllpSender {
 public:
  explicit MllpSender(MllpSenderOptions options) : options_(std::move(options)) {}
  ~MllpSender() { Close(); }
  MllpSender(const MllpSender&) = delete;
  MllpSender& operator=(const MllpSender&) = delete;

  // Sends `message` and returns what its ACK said (AA, AE or AR).
  // Errors: kUnavailable when the peer cannot be reached, closes the connection, or answers
  // with something that is not an ACK; kDeadlineExceeded when no ACK comes in ack_timeout;
  // kInvalidArgument if the message has no control id (MSH-10).
  Result<AckOutcome> Exchange(const Hl7Message& message);
  // Exchange() folded into a status: AA -> OK, AE -> kUnavailable (retry), AR ->
  // kInvalidArgument (do not retry), transport errors as Exchange().
  Status Send(const Hl7Message& message);
  void Close();
  bool connected() const { return stream_ != nullptr; }

 private:
  Status EnsureConnected();
  const MllpSenderOptions options_;
  std::unique_ptr<MllpStream> stream_;
};

}  // namespace conduit
