// Hl7Message: an HL7 v2.x message (written for v2.5.1) in its ER7 ("pipe and hat") encoding.
// A message is a list of segments; a segment holds fields, each a list of repetitions of
// components of subcomponents. Values are held decoded (escape sequences resolved) and are
// encoded again by Serialize(). Positions are 1-based as in the standard: "PID-3" is PID's third
// field; MSH-1 is the field separator and MSH-2 the encoding characters.
// Parse errors name the segment (position and name) and the field only, never the content,
// since content is patient data.
// Thread safety: const methods may be called concurrently; mutation needs exclusive access.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace conduit {

// The separators in force for one message (MSH-1 and MSH-2). truncation is v2.7's '#', or '\0'.
struct Hl7Delimiters {
  char field = '|';
  char component = '^';
  char repetition = '~';
  char escape = '\\';
  char subcomponent = '&';
  char truncation = '\0';

  // MSH-2 as written: "^~\&", plus the truncation character when set.
  std::string EncodingCharacters() const;
  // kInvalidArgument unless all are distinct, printable, non-alphanumeric and not a space.
  Status Validate() const;
};

// Bounds on what Parse accepts and what the setters build; each bound is inclusive.
struct Hl7Limits {
  size_t max_message_bytes = 4 * 1024 * 1024;
  size_t max_segments = 10'000;
  size_t max_fields = 500;         // per segment
  size_t max_repetitions = 1'000;  // per field
  size_t max_components = 100;     // per repetition
  size_t max_subcomponents = 100;  // per component
};

// A position in a message: segment name, its repetition among segments of that name, field,
// field repetition, component, subcomponent. Text form: "SEG[(n)]-F[(r)][.C[.S]]", e.g.
// "PID-3.1", "OBX(2)-5", "PID-3(2).4.2". Omitted levels are 1.
struct Hl7Path {
  std::string segment;
  size_t segment_repetition = 1;
  size_t field = 0;
  size_t repetition = 1;
  size_t component = 1;
  size_t subcomponent = 1;

  // Errors: kInvalidArgument naming the path when it does not have the form above (numbers
  // start at 1 and have at most 6 digits; segment names are three of [A-Z0-9]).
  static Result<Hl7Path> Parse(std::string_view text);
  std::string ToString() const;
};

using Hl7Component = std::vector<std::string>;    // subcomponents, decoded
using Hl7Repetition = std::vector<Hl7Component>;  // components
using Hl7Field = std::vector<Hl7Repetition>;      // repetitions

// One segment. Read accessors never fail: an absent position reads as "".
class Hl7Segment {
 public:
  explicit Hl7Segment(std::string name) : name_(std::move(name)) {}

  const std::string& name() const { return name_; }
  // Highest field number present (MSH counts MSH-1 and MSH-2).
  size_t field_count() const { return fields_.size(); }
  // Number of repetitions of `field` (0 when absent or empty).
  size_t Repetitions(size_t field) const;
  // The decoded value at a position; "" when absent.
  std::string Value(size_t field, size_t repetition = 1, size_t component = 1,
                    size_t subcomponent = 1) const;
  // The whole field, or nullptr when absent.
  const Hl7Field* Field(size_t field) const;

  bool operator==(const Hl7Segment& other) const;

 private:
  friend class Hl7Message;
  friend struct Hl7Parser;
  std::string name_;
  std::vector<Hl7Field> fields_;  // fields_[i] is field i + 1
};

class Hl7Message {
 public:
  // An empty message with the given separators; the first segment set or added must be MSH.
  explicit Hl7Message(Hl7Delimiters delimiters = {}, Hl7Limits limits = {});

  // Parses ER7 text. Segments end with CR, LF or CRLF; empty lines are skipped. The first
  // segment must be MSH; its MSH-1 and MSH-2 give the separators. Escape sequences
  // \F\ \S\ \T\ \R\ \E\ \Xhh..\ (and \P\ when a truncation character is declared) are decoded;
  // others
  // (\H\ \N\ \.br\ \Cxxyy\ ...) and escapes without a closing escape character are kept as
  // written. Errors: kInvalidArgument naming the segment and field for malformed text,
  // kResourceExhausted naming the limit that was exceeded.
  static Result<Hl7Message> Parse(std::string_view er7, const Hl7Limits& limits = {});
  // Parses only the MSH segment, for answering a message that Parse() refused.
  // Errors as Parse(), for the MSH segment alone.
  static Result<Hl7Message> ParseHeader(std::string_view er7, const Hl7Limits& limits = {});

  // Canonical ER7: segments each followed by CR, trailing empty subcomponents, components,
  // repetitions and fields left out, values escaped (delimiters, and bytes below 0x20 as \Xhh\).
  // Formatting sequences kept on read (\H\, \.br\, ...) are written back unchanged.
  std::string Serialize() const;

  // The decoded value at `path`; "" when the position is absent.
  // Errors: kInvalidArgument for a malformed path.
  Result<std::string> Get(std::string_view path) const;
  // As Get() for a path written in code; a malformed path is a programming error and aborts.
  std::string Value(std::string_view path) const;

  // Sets the value at a position, creating what is missing. A segment repetition one past
  // the last of that name appends a new segment at the end of the message.
  // Errors: kInvalidArgument for a malformed path, MSH-1/MSH-2 (fixed by the delimiters), a
  // first segment other than MSH, or a segment repetition that would leave a gap;
  // kResourceExhausted past the limits.
  Status Set(std::string_view path, std::string_view value);
  Status Set(const Hl7Path& path, std::string_view value);
  // Appends an empty segment (or an MSH with its separators); returns its repetition number.
  // Errors as Set().
  Result<size_t> AddSegment(std::string_view name);

  const std::vector<Hl7Segment>& segments() const { return segments_; }
  // Number of segments named `name`.
  size_t SegmentCount(std::string_view name) const;
  // The `repetition`-th segment named `name`, or nullptr.
  const Hl7Segment* FindSegment(std::string_view name, size_t repetition = 1) const;

  const Hl7Delimiters& delimiters() const { return delimiters_; }
  const Hl7Limits& limits() const { return limits_; }

  // MSH-9.1, MSH-9.2, MSH-10 and MSH-12.1 (message code, trigger event, control id, version).
  std::string message_code() const { return Value("MSH-9.1"); }
  std::string trigger_event() const { return Value("MSH-9.2"); }
  std::string control_id() const { return Value("MSH-10"); }
  std::string version() const { return Value("MSH-12.1"); }

  // Same segments and values (separators may differ).
  bool operator==(const Hl7Message& other) const { return segments_ == other.segments_; }

 private:
  friend struct Hl7Parser;
  Hl7Delimiters delimiters_;
  Hl7Limits limits_;
  std::vector<Hl7Segment> segments_;
};

// Escaping of one value with the given separators, as Serialize() and Parse() do it.
std::string Hl7Escape(std::string_view value, const Hl7Delimiters& delimiters);
std::string Hl7Unescape(std::string_view text, const Hl7Delimiters& delimiters);

}  // namespace conduit
