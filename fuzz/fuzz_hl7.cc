// Fuzz target: bytes from a RIS connection. The input is fed to MllpDecoder in chunks whose
// sizes come from the input (each chunk's first byte sets its length) and whole; each payload,
// and the input itself, goes to Hl7Message::Parse, the ACK builder and the RIS readers.
// Checks: chunked and whole decoding give the same payloads and counters, and the decoder's
// buffer stays within its bound; parse errors are kInvalidArgument or kResourceExhausted; a parsed
// message serializes to text that parses back equal and serializes identically; ParseHeader
// accepts whatever Parse accepts, with the same control id; an ACK built for a parsed message
// reads back with its code and the received control id; readers fail only with
// kInvalidArgument; escaping then unescaping gives the value back.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "hl7/hl7_ack.h"
#include "hl7/hl7_message.h"
#include "hl7/mllp.h"
#include "hl7/ris_messages.h"

namespace {

using conduit::Hl7Message;
using conduit::StatusCode;

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "fuzz_hl7: property violated: %s\n", what);
  std::abort();
}

constexpr size_t kMaxFrame = 8192;

struct Decoded {
  std::vector<std::string> messages;
  size_t discarded = 0;
  size_t abandoned = 0;
  size_t oversized = 0;
  bool operator==(const Decoded&) const = default;
};

Decoded Decode(std::string_view input, bool chunked) {
  conduit::MllpDecoder decoder(kMaxFrame);
  Decoded out;
  size_t pos = 0;
  while (pos < input.size()) {
    const size_t length =
        chunked ? 1 + static_cast<unsigned char>(input[pos]) % 32 : input.size() - pos;
    decoder.Feed(input.substr(pos, length), out.messages);
    if (decoder.buffered_bytes() > kMaxFrame + 1) Fail("decoder buffer over its bound");
    pos += std::min(length, input.size() - pos);
  }
  out.discarded = decoder.discarded_bytes();
  out.abandoned = decoder.abandoned_frames();
  out.oversized = decoder.oversized_frames();
  for (const std::string& m : out.messages) {
    if (m.size() > kMaxFrame) Fail("a payload over the frame limit");
  }
  return out;
}

void CheckReaders(const Hl7Message& message) {
  auto orders = conduit::ReadOrders(message);
  if (!orders.ok() && orders.status().code() != StatusCode::kInvalidArgument) {
    Fail("ReadOrders error other than kInvalidArgument");
  }
  auto reports = conduit::ReadReports(message);
  if (!reports.ok() && reports.status().code() != StatusCode::kInvalidArgument) {
    Fail("ReadReports error other than kInvalidArgument");
  }
  auto ack = conduit::ReadAck(message);
  if (!ack.ok() && ack.status().code() != StatusCode::kInvalidArgument) {
    Fail("ReadAck error other than kInvalidArgument");
  }
}

void CheckAck(const Hl7Message& received, conduit::AckCode code) {
  conduit::AckSender sender{"CONDUIT", "HUB", "A1", conduit::TimePoint()};
  conduit::AckDetail detail{code, code == conduit::AckCode::kAccept ? "" : "102", "fuzz"};
  auto ack = conduit::BuildAck(received, detail, sender);
  if (!ack.ok()) Fail("BuildAck failed on a parsed message");
  auto again = Hl7Message::Parse(ack->Serialize());
  if (!again.ok()) Fail("a built ACK does not parse");
  auto outcome = conduit::ReadAck(*again);
  if (!outcome.ok()) Fail("a built ACK does not read");
  if (outcome->code != code) Fail("ACK code changed");
  if (outcome->acknowledged_control_id != received.control_id()) Fail("ACK control id changed");
}

void CheckMessage(std::string_view text) {
  conduit::Hl7Limits limits;
  limits.max_message_bytes = kMaxFrame;
  limits.max_segments = 200;
  limits.max_fields = 100;
  limits.max_repetitions = 50;
  limits.max_components = 30;
  limits.max_subcomponents = 20;
  auto parsed = Hl7Message::Parse(text, limits);
  auto header = Hl7Message::ParseHeader(text, limits);
  if (!parsed.ok()) {
    const StatusCode code = parsed.status().code();
    if (code != StatusCode::kInvalidArgument && code != StatusCode::kResourceExhausted) {
      Fail("parse error with an unexpected code");
    }
    if (parsed.status().message().empty()) Fail("parse error without a message");
    if (header.ok()) CheckAck(*header, conduit::AckCode::kReject);
    return;
  }
  if (!header.ok()) Fail("ParseHeader refused what Parse accepted");
  if (header->control_id() != parsed->control_id()) Fail("ParseHeader read another control id");

  const std::string serialized = parsed->Serialize();
  auto back = Hl7Message::Parse(serialized, limits);
  if (!back.ok()) Fail("a serialized message does not parse");
  if (!(*back == *parsed)) Fail("a serialized message parses to different values");
  if (back->Serialize() != serialized) Fail("serialization is not canonical");

  for (const conduit::Hl7Segment& segment : parsed->segments()) {
    for (size_t f = 1; f <= segment.field_count() && f <= 8; ++f) {
      const std::string value = segment.Value(f);
      const conduit::Hl7Delimiters& d = parsed->delimiters();
      if (conduit::Hl7Unescape(conduit::Hl7Escape(value, d), d) != value) {
        Fail("escape then unescape changed a value");
      }
    }
  }
  CheckReaders(*parsed);
  CheckAck(*parsed, conduit::AckCode::kAccept);
  CheckAck(*parsed, conduit::AckCode::kError);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const Decoded chunked = Decode(input, /*chunked=*/true);
  const Decoded whole = Decode(input, /*chunked=*/false);
  if (!(chunked == whole)) Fail("chunked and whole decoding disagree");
  for (const std::string& message : whole.messages) CheckMessage(message);
  CheckMessage(input);
  return 0;
}
