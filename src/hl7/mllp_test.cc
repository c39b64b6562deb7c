#include "hl7/mllp.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <random>
#include <thread>

namespace conduit {
namespace {

using namespace std::chrono_literals;

std::string Oru(const std::string& control_id) {
  return "MSH|^~\\&|CONDUIT|HUB|RIS|TRUST|20240102030405||ORU^R01^ORU_R01|" + control_id +
         "|P|2.5.1\rPID|1||123456^^^NHS^NH||Smith^John\rOBX|1|TX|X||text\r";
}

Hl7Message OruMessage(const std::string& control_id) { return *Hl7Message::Parse(Oru(control_id)); }

// ---------------------------------------------------------------------------------------------
// Decoder

struct DecodeResult {
  std::vector<std::string> messages;
  size_t discarded = 0;
  size_t abandoned = 0;
  size_t oversized = 0;
};

DecodeResult Decode(std::string_view stream, size_t max, const std::vector<size_t>& chunks) {
  MllpDecoder decoder(max);
  DecodeResult result;
  size_t pos = 0;
  for (size_t i = 0; pos < stream.size(); ++i) {
    const size_t length = std::min(chunks[i % chunks.size()], stream.size() - pos);
    decoder.Feed(stream.substr(pos, length), result.messages);
    EXPECT_LE(decoder.buffered_bytes(), max + 1);
    pos += length;
  }
  result.discarded = decoder.discarded_bytes();
  result.abandoned = decoder.abandoned_frames();
  result.oversized = decoder.oversized_frames();
  return result;
}

TEST(MllpDecoderTest, GarbageRestartsBrokenEndsAndOversizedFramesInAnyChunking) {
  const std::string stream = std::string("noise\r\n") + MllpFrame("first") +  // 7 garbage
                             "\x0bpartial" + MllpFrame("second") +  // restart abandons "partial"
                             "\x0b"
                             "broken\x1cX" +                     // broken end: abandoned
                             MllpFrame(std::string(100, 'o')) +  // oversized: dropped
                             MllpFrame("") +
                             MllpFrame("third\rline");
  const std::vector<std::string> expected = {"first", "second", "", "third\rline"};
  std::mt19937 rng(7);
  std::vector<std::vector<size_t>> chunkings = {{1}, {2}, {3}, {stream.size()}};
  for (int i = 0; i < 50; ++i) {
    std::vector<size_t> sizes;
    for (int k = 0; k < 20; ++k) sizes.push_back(1 + rng() % 17);
    chunkings.push_back(sizes);
  }
  for (const std::vector<size_t>& chunks : chunkings) {
    const DecodeResult result = Decode(stream, 50, chunks);
    EXPECT_EQ(result.messages, expected);
    EXPECT_EQ(result.discarded, 8u) << "7 bytes of noise and the X after a broken end";
    EXPECT_EQ(result.abandoned, 2u);
    EXPECT_EQ(result.oversized, 1u);
  }
}

TEST(MllpDecoderTest, ResyncsAfterAnOversizedFrameOnTheNextStart) {
  const std::string stream = "\x0b" + std::string(30, 'x') +
                             "\x1c"
                             "y" +
                             MllpFrame("ok");  // no 0x0D after oversize
  const DecodeResult result = Decode(stream, 10, {1});
  EXPECT_EQ(result.messages, std::vector<std::string>{"ok"});
  EXPECT_EQ(result.oversized, 1u);
}

TEST(MllpDecoderTest, ReportsWhetherAFrameIsOpen) {
  MllpDecoder decoder(100);
  std::vector<std::string> out;
  EXPECT_FALSE(decoder.in_frame());
  decoder.Feed(
      "\x0b"
      "abc",
      out);
  EXPECT_TRUE(decoder.in_frame());
  decoder.Feed("\x1c\r", out);
  EXPECT_FALSE(decoder.in_frame());
  EXPECT_EQ(out, std::vector<std::string>{"abc"});
}

// ---------------------------------------------------------------------------------------------
// Listener and sender over 127.0.0.1

// A client socket speaking raw bytes to a port.
class RawClient {
 public:
  explicit RawClient(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  }
  ~RawClient() { close(fd_); }
  bool connected() const { return connected_; }
  void Write(std::string_view bytes) {
    ASSERT_EQ(send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(bytes.size()));
  }
  // The next frame's payload, or nullopt on EOF or after 20 s.
  std::optional<std::string> ReadFrame() {
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < deadline) {
      std::vector<std::string> frames;
      if (!pending_.empty()) {
        std::string head = pending_.front();
        pending_.erase(pending_.begin());
        return head;
      }
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char buffer[4096];
      const ssize_t n = recv(fd_, buffer, sizeof buffer, 0);
      if (n <= 0) return std::nullopt;
      decoder_.Feed(std::string_view(buffer, static_cast<size_t>(n)), pending_);
    }
    return std::nullopt;
  }
  // True if the peer closes the connection within 20 s.
  bool ClosedByPeer() {
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char buffer[4096];
      const ssize_t n = recv(fd_, buffer, sizeof buffer, 0);
      if (n <= 0) return true;
    }
    return false;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  MllpDecoder decoder_{1 << 20};
  std::vector<std::string> pending_;
};

// Waits up to 20 s for `condition`.
template <typename F>
bool WaitFor(F condition) {
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return condition();
}

class MllpListenerTest : public ::testing::Test {
 protected:
  // Answers AA, or the status that next_status_ holds.
  void StartListener(MllpListenerOptions options = {}) {
    options.bind = "127.0.0.1";
    options.port = 0;
    listener_ = std::make_unique<MllpListener>(
        options, Hl7Handler([this](const Hl7Message& message) -> Result<std::string> {
          {
            std::lock_guard lock(mu_);
            received_.push_back(message.control_id());
            if (!next_status_.ok()) return next_status_;
          }
          AckSender sender{"RIS", "TRUST", "ACK-" + message.control_id(), clock_.Now()};
          ASSIGN_OR_RETURN(Hl7Message ack, BuildAck(message, AckDetail{}, sender));
          return ack.Serialize();
        }),
        clock_);
    ASSERT_TRUE(listener_->Start().ok());
  }

  MllpSenderOptions SenderOptions() {
    MllpSenderOptions options;
    options.host = "127.0.0.1";
    options.port = listener_->port();
    options.connect_timeout = 10s;
    options.ack_timeout = 20s;
    return options;
  }

  void SetNextStatus(Status status) {
    std::lock_guard lock(mu_);
    next_status_ = std::move(status);
  }

  FakeClock clock_;
  std::mutex mu_;
  Status next_status_;
  std::vector<std::string> received_;
  std::unique_ptr<MllpListener> listener_;
};

TEST_F(MllpListenerTest, AcceptedMessageIsOk) {
  StartListener();
  MllpSender sender(SenderOptions());
  Result<AckOutcome> outcome = sender.Exchange(OruMessage("C1"));
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_EQ(outcome->code, AckCode::kAccept);
  EXPECT_EQ(outcome->acknowledged_control_id, "C1");
  EXPECT_TRUE(sender.Send(OruMessage("C2")).ok());
  EXPECT_TRUE(sender.connected()) << "the connection is kept for the next message";
  EXPECT_EQ(listener_->active_connections(), 1);
  std::lock_guard lock(mu_);
  EXPECT_EQ(received_, (std::vector<std::string>{"C1", "C2"}));
}

TEST_F(MllpListenerTest, RetryableHandlerErrorIsAeAndOthersAreAr) {
  StartListener();
  MllpSender sender(SenderOptions());

  SetNextStatus(ResourceExhausted("job queue full"));
  Result<AckOutcome> ae = sender.Exchange(OruMessage("E1"));
  ASSERT_TRUE(ae.ok()) << ae.status().ToString();
  EXPECT_EQ(ae->code, AckCode::kError);
  EXPECT_EQ(ae->text, "job queue full");
  const Status retry = sender.Send(OruMessage("E2"));
  EXPECT_EQ(retry.code(), StatusCode::kUnavailable) << retry.ToString();
  EXPECT_TRUE(IsRetryable(retry.code()));

  SetNextStatus(InvalidArgument("no accession number"));
  const Status reject = sender.Send(OruMessage("R1"));
  EXPECT_EQ(reject.code(), StatusCode::kInvalidArgument) << reject.ToString();
  EXPECT_FALSE(IsRetryable(reject.code()));
  EXPECT_NE(reject.message().find("AR"), std::string::npos);
}

TEST_F(MllpListenerTest, GarbageBeforeAFrameIsSkipped) {
  StartListener();
  RawClient client(listener_->port());
  ASSERT_TRUE(client.connected());
  client.Write("GET / HTTP/1.0\r\n\r\n" + MllpFrame(Oru("G1")));
  std::optional<std::string> ack = client.ReadFrame();
  ASSERT_TRUE(ack.has_value());
  Result<Hl7Message> parsed = Hl7Message::Parse(*ack);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->Value("MSA-1"), "AA");
  EXPECT_EQ(parsed->Value("MSA-2"), "G1");
}

TEST_F(MllpListenerTest, MalformedMessageWithReadableHeaderGetsAr) {
  MllpListenerOptions options;
  options.limits.max_repetitions = 5;
  StartListener(options);
  RawClient client(listener_->port());
  client.Write(MllpFrame("MSH|^~\\&|RIS|T|C|H|||ORM^O01|M1|P|2.3\rPID|1||~~~~~~~~\r"));
  std::optional<std::string> ack = client.ReadFrame();
  ASSERT_TRUE(ack.has_value());
  Result<Hl7Message> parsed = Hl7Message::Parse(*ack);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->Value("MSA-1"), "AR");
  EXPECT_EQ(parsed->Value("MSA-2"), "M1");
  EXPECT_EQ(parsed->Value("ERR-3.1"), "207");
  EXPECT_NE(parsed->Value("ERR-8").find("segment 2 (PID): field 3"), std::string::npos);

  client.Write(MllpFrame("MSH|^~\\&|RIS|T|C|H|||ORM^O01|M2|P|2.3\rpid|bad\r"));
  ack = client.ReadFrame();
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(Hl7Message::Parse(*ack)->Value("ERR-3.1"), "102");
  std::lock_guard lock(mu_);
  EXPECT_TRUE(received_.empty()) << "the handler never sees a malformed message";
}

// Every message that does not parse is reported to on_unparsed, with the peer's address and
// its control id when its header could be read (empty when not).
TEST_F(MllpListenerTest, UnparsedMessagesAreReported) {
  struct Unparsed {
    std::string peer, control_id;
    StatusCode code;
  };
  std::mutex seen_mu;
  std::vector<Unparsed> seen;
  MllpListenerOptions options;
  options.on_unparsed = [&](const std::string& peer, const std::string& control_id,
                            const Status& why) {
    std::lock_guard lock(seen_mu);
    seen.push_back({peer, control_id, why.code()});
  };
  StartListener(options);
  {
    RawClient client(listener_->port());
    client.Write(MllpFrame("MSH|^~\\&|RIS|T|C|H|||ORM^O01|M3|P|2.3\rpid|bad\r"));
    ASSERT_TRUE(client.ReadFrame().has_value());
  }
  {
    RawClient client(listener_->port());
    client.Write(MllpFrame("this is not HL7"));
    EXPECT_TRUE(client.ClosedByPeer());
  }
  std::lock_guard lock(seen_mu);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].peer, "127.0.0.1");
  EXPECT_EQ(seen[0].control_id, "M3");
  EXPECT_EQ(seen[0].code, StatusCode::kInvalidArgument);
  EXPECT_EQ(seen[1].peer, "127.0.0.1");
  EXPECT_EQ(seen[1].control_id, "");
}

TEST_F(MllpListenerTest, UnreadableMessageClosesTheConnection) {
  StartListener();
  RawClient client(listener_->port());
  client.Write(MllpFrame("this is not HL7"));
  EXPECT_TRUE(client.ClosedByPeer());
}

TEST_F(MllpListenerTest, OversizedFrameClosesTheConnection) {
  MllpListenerOptions options;
  options.limits.max_message_bytes = 1000;
  StartListener(options);
  RawClient client(listener_->port());
  client.Write(MllpFrame(Oru("BIG") + "NTE|1||" + std::string(2000, 'x') + "\r"));
  EXPECT_TRUE(client.ClosedByPeer());
}

TEST_F(MllpListenerTest, ConnectionsOverTheLimitAreClosed) {
  MllpListenerOptions options;
  options.max_connections = 1;
  StartListener(options);
  RawClient first(listener_->port());
  ASSERT_TRUE(WaitFor([&] { return listener_->active_connections() == 1; }));
  RawClient second(listener_->port());
  EXPECT_TRUE(second.ClosedByPeer());
  first.Write(MllpFrame(Oru("F1")));
  EXPECT_TRUE(first.ReadFrame().has_value());
}

TEST_F(MllpListenerTest, AtTheLimitANewConnectionReplacesTheLongestIdleOne) {
  MllpListenerOptions options;
  options.max_connections = 2;
  options.evict_idle_after = 300ms;
  StartListener(options);
  // Two connections left behind by a RIS (say, after a network fault), the older one first.
  RawClient oldest(listener_->port());
  oldest.Write(MllpFrame(Oru("O1")));
  ASSERT_TRUE(oldest.ReadFrame().has_value());
  std::this_thread::sleep_for(50ms);
  RawClient older(listener_->port());
  older.Write(MllpFrame(Oru("O2")));
  ASSERT_TRUE(older.ReadFrame().has_value());
  std::this_thread::sleep_for(400ms);

  RawClient fresh(listener_->port());
  EXPECT_TRUE(oldest.ClosedByPeer());
  fresh.Write(MllpFrame(Oru("F1")));
  EXPECT_TRUE(fresh.ReadFrame().has_value());
  // The other one was not touched.
  older.Write(MllpFrame(Oru("O3")));
  EXPECT_TRUE(older.ReadFrame().has_value());
  EXPECT_TRUE(WaitFor([&] { return listener_->messages_handled() == 4; }));
}

TEST_F(MllpListenerTest, AtTheLimitConnectionsInUseAreNotReplaced) {
  MllpListenerOptions options;
  options.max_connections = 1;
  options.evict_idle_after = 10s;
  StartListener(options);
  RawClient first(listener_->port());
  first.Write(MllpFrame(Oru("U1")));
  ASSERT_TRUE(first.ReadFrame().has_value());
  RawClient second(listener_->port());  // the first was active less than 10 s ago
  EXPECT_TRUE(second.ClosedByPeer());
  first.Write(MllpFrame(Oru("U2")));
  EXPECT_TRUE(first.ReadFrame().has_value());
}

TEST_F(MllpListenerTest, ConnectionsFromAddressesNotAllowedAreClosedAndReported) {
  std::mutex mu;
  std::vector<std::pair<std::string, Status>> refused;
  MllpListenerOptions options;
  options.allowed_peers = {*AddressRange::Parse("10.0.0.0/8")};
  options.on_refused = [&](const std::string& peer, const Status& why) {
    std::lock_guard lock(mu);
    refused.emplace_back(peer, why);
  };
  StartListener(options);
  RawClient outsider(listener_->port());
  outsider.Write(MllpFrame(Oru("X1")));
  EXPECT_TRUE(outsider.ClosedByPeer());
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard lock(mu);
    return refused.size() == 1;
  }));
  EXPECT_EQ(refused[0].first, "127.0.0.1");
  EXPECT_EQ(refused[0].second.code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(listener_->messages_handled(), 0u);

  options.allowed_peers.push_back(*AddressRange::Parse("127.0.0.1"));
  StartListener(options);
  RawClient insider(listener_->port());
  insider.Write(MllpFrame(Oru("A1")));
  EXPECT_TRUE(insider.ReadFrame().has_value());
  listener_.reset();  // before `refused`, which its callback writes, goes
  EXPECT_EQ(refused.size(), 1u);
}

TEST_F(MllpListenerTest, RawHandlerSeesPayloadBytes) {
  listener_ = std::make_unique<MllpListener>(
      MllpListenerOptions{}, MllpRawHandler([](std::string_view payload) -> Result<std::string> {
        if (payload == "close") return InvalidArgument("asked to close");
        return "echo:" + std::string(payload);
      }),
      clock_);
  ASSERT_TRUE(listener_->Start().ok());
  RawClient client(listener_->port());
  client.Write(MllpFrame("anything \x01 at all"));
  EXPECT_EQ(client.ReadFrame(), std::optional<std::string>("echo:anything \x01 at all"));
  client.Write(MllpFrame("close"));
  EXPECT_TRUE(client.ClosedByPeer());
}

TEST_F(MllpListenerTest, PeerThatNeverAnswersTimesOut) {
  // A listening socket that accepts connections (kernel backlog) and never reads or answers.
  const int silent = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  ASSERT_EQ(bind(silent, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(listen(silent, 4), 0);
  socklen_t length = sizeof address;
  getsockname(silent, reinterpret_cast<sockaddr*>(&address), &length);
  MllpSenderOptions options;
  options.port = ntohs(address.sin_port);
  options.ack_timeout = 300ms;
  MllpSender sender(options);
  const Status status = sender.Send(OruMessage("T1"));
  EXPECT_EQ(status.code(), StatusCode::kDeadlineExceeded) << status.ToString();
  EXPECT_FALSE(sender.connected());
  close(silent);
}

TEST_F(MllpListenerTest, StoppedListenerIsUnavailable) {
  StartListener();
  MllpSender sender(SenderOptions());
  ASSERT_TRUE(sender.Send(OruMessage("S1")).ok());
  listener_->Stop();
  EXPECT_EQ(listener_->active_connections(), 0);
  const Status status = sender.Send(OruMessage("S2"));
  EXPECT_EQ(status.code(), StatusCode::kUnavailable) << status.ToString();
  MllpSender fresh(SenderOptions());
  EXPECT_EQ(fresh.Send(OruMessage("S3")).code(), StatusCode::kUnavailable);
  listener_->Stop();  // idempotent
}

TEST_F(MllpListenerTest, SenderReconnectsAfterThePeerClosesAnIdleConnection) {
  MllpListenerOptions options;
  options.idle_timeout = 200ms;
  StartListener(options);
  MllpSender sender(SenderOptions());
  ASSERT_TRUE(sender.Send(OruMessage("I1")).ok());
  ASSERT_TRUE(WaitFor([&] { return listener_->active_connections() == 0; }));
  EXPECT_TRUE(sender.Send(OruMessage("I2")).ok());
  EXPECT_TRUE(WaitFor([&] { return listener_->messages_handled() == 2; }));
}

TEST_F(MllpListenerTest, AckForAnotherMessageIsSkipped) {
  listener_ = std::make_unique<MllpListener>(
      MllpListenerOptions{}, MllpRawHandler([](std::string_view payload) -> Result<std::string> {
        Result<Hl7Message> message = Hl7Message::Parse(payload);
        if (!message.ok()) return message.status();
        AckSender sender{"RIS", "", "X", TimePoint()};
        ASSIGN_OR_RETURN(Hl7Message stale,
                         Hl7Message::Parse("MSH|^~\\&|RIS||||||ACK|9|P|2.5.1\rMSA|AA|OLD\r"));
        ASSIGN_OR_RETURN(Hl7Message ack, BuildAck(*message, AckDetail{}, sender));
        // Two frames in one reply: a stale ACK, then the one for this message.
        return stale.Serialize() + std::string(1, kMllpEnd) + "\r" + std::string(1, kMllpStart) +
               ack.Serialize();
      }),
      clock_);
  ASSERT_TRUE(listener_->Start().ok());
  MllpSender sender(SenderOptions());
  Result<AckOutcome> outcome = sender.Exchange(OruMessage("N1"));
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_EQ(outcome->acknowledged_control_id, "N1");
}

TEST_F(MllpListenerTest, SenderErrors) {
  MllpSenderOptions options;
  options.port = 1;  // nothing listens on 127.0.0.1:1
  MllpSender sender(options);
  EXPECT_EQ(sender.Send(OruMessage("U1")).code(), StatusCode::kUnavailable);
  Hl7Message no_id;
  ASSERT_TRUE(no_id.Set("MSH-3", "A").ok());
  EXPECT_EQ(sender.Send(no_id).code(), StatusCode::kInvalidArgument);

  MllpListenerOptions bad_options;
  bad_options.bind = "not-an-address";
  MllpListener bad(bad_options, Hl7Handler(), clock_);
  EXPECT_EQ(bad.Start().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace conduit
