#include "http/multipart.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>

namespace conduit {
namespace {

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string ToLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = Lower(c);
  return out;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return Lower(x) == Lower(y); });
}

// RFC 9110 tchar.
bool IsTokenChar(char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}

bool IsToken(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), IsTokenChar);
}

bool IsWhitespace(char c) { return c == ' ' || c == '\t'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsWhitespace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsWhitespace(s.back())) s.remove_suffix(1);
  return s;
}

// Reads RFC 9110 grammar from a Content-Type value, left to right.
class MediaTypeParser {
 public:
  explicit MediaTypeParser(std::string_view text) : text_(text) {}

  bool AtEnd() const { return pos_ == text_.size(); }
  char Peek() const { return text_[pos_]; }
  size_t pos() const { return pos_; }
  void SkipWhitespace() {
    while (!AtEnd() && IsWhitespace(Peek())) ++pos_;
  }
  bool Consume(char c) {
    if (AtEnd() || Peek() != c) return false;
    ++pos_;
    return true;
  }
  std::string_view Token() {
    const size_t start = pos_;
    while (!AtEnd() && IsTokenChar(Peek())) ++pos_;
    return text_.substr(start, pos_ - start);
  }
  // After the opening quote: qdtext and quoted-pairs up to the closing quote, unescaped.
  Result<std::string> QuotedStringRest() {
    std::string value;
    while (!AtEnd()) {
      const unsigned char c = static_cast<unsigned char>(text_[pos_++]);
      if (c == '"') return value;
      if (c == '\\') {
        if (AtEnd()) break;
        const unsigned char escaped = static_cast<unsigned char>(text_[pos_++]);
        if (escaped != '\t' && (escaped < 0x20 || escaped == 0x7f)) {
          return Error("control character after '\\' in a quoted string");
        }
        value.push_back(static_cast<char>(escaped));
      } else if (c != '\t' && (c < 0x20 || c == 0x7f)) {
        return Error("control character in a quoted string");
      } else {
        value.push_back(static_cast<char>(c));
      }
    }
    return Error("quoted string without its closing '\"'");
  }
  Status Error(std::string_view what) const {
    return InvalidArgument("Content-Type: " + std::string(what) + " at offset " +
                           std::to_string(pos_));
  }

 private:
  std::string_view text_;
  size_t pos_ = 0;
};

}  // namespace

std::optional<std::string_view> MediaType::Parameter(std::string_view name) const {
  for (const auto& [key, value] : parameters) {
    if (EqualsIgnoreCase(key, name)) return value;
  }
  return std::nullopt;
}

Result<MediaType> ParseMediaType(std::string_view content_type) {
  if (content_type.size() > kMaxContentTypeBytes) {
    return InvalidArgument("Content-Type: longer than " + std::to_string(kMaxContentTypeBytes) +
                           " bytes");
  }
  MediaTypeParser p(content_type);
  p.SkipWhitespace();
  if (p.AtEnd()) return InvalidArgument("Content-Type: empty");
  MediaType media;
  media.type = ToLower(p.Token());
  if (media.type.empty()) return p.Error("expected a type token");
  if (!p.Consume('/')) return p.Error("expected '/' after the type");
  media.subtype = ToLower(p.Token());
  if (media.subtype.empty()) return p.Error("expected a subtype token");
  // parameters = *( OWS ";" OWS [ parameter ] )
  while (true) {
    p.SkipWhitespace();
    if (p.AtEnd()) break;
    if (!p.Consume(';')) return p.Error("expected ';' before a parameter");
    p.SkipWhitespace();
    if (p.AtEnd() || p.Peek() == ';') continue;
    std::string name = ToLower(p.Token());
    if (name.empty()) return p.Error("expected a parameter name");
    if (!p.Consume('=')) return p.Error("expected '=' after parameter '" + name + "'");
    std::string value;
    if (p.Consume('"')) {
      ASSIGN_OR_RETURN(value, p.QuotedStringRest());
    } else {
      value = std::string(p.Token());
      if (value.empty()) return p.Error("expected a value for parameter '" + name + "'");
    }
    if (media.Parameter(name)) return p.Error("parameter '" + name + "' given twice");
    media.parameters.emplace_back(std::move(name), std::move(value));
  }
  return media;
}

std::optional<std::string_view> FindHeader(const std::vector<HeaderField>& fields,
                                           std::string_view name) {
  for (const HeaderField& field : fields) {
    if (EqualsIgnoreCase(field.name, name)) return field.value;
  }
  return std::nullopt;
}

Status CheckBoundary(std::string_view boundary) {
  if (boundary.empty()) return InvalidArgument("multipart boundary: empty");
  if (boundary.size() > kMaxBoundaryBytes) {
    return InvalidArgument("multipart boundary: longer than " + std::to_string(kMaxBoundaryBytes) +
                           " characters");
  }
  for (char c : boundary) {
    if (c < 0x20 || c > 0x7e) {
      return InvalidArgument("multipart boundary: a character that is not printable ASCII");
    }
  }
  if (boundary.back() == ' ') return InvalidArgument("multipart boundary: ends with a space");
  return Status::Ok();
}

// ---- MultipartReader ----

namespace {

// Splits a header block (CRLF-separated lines, the blank line removed) into fields.
Result<std::vector<HeaderField>> ParseHeaderBlock(std::string_view block) {
  std::vector<HeaderField> fields;
  while (!block.empty()) {
    const size_t end = block.find("\r\n");
    std::string_view line = block.substr(0, end);
    block.remove_prefix(end == std::string_view::npos ? block.size() : end + 2);
    for (char c : line) {
      if (c == '\r' || c == '\n' || c == '\0') {
        return InvalidArgument("a bare CR, LF or NUL in a header line");
      }
    }
    if (!line.empty() && IsWhitespace(line.front())) {  // obs-fold: continues the last field
      if (fields.empty()) return InvalidArgument("the first header line starts with whitespace");
      std::string& value = fields.back().value;
      const std::string_view more = Trim(line);
      if (!more.empty()) value += value.empty() ? std::string(more) : " " + std::string(more);
      continue;
    }
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) return InvalidArgument("a header line without ':'");
    const std::string_view name = line.substr(0, colon);
    if (!IsToken(name)) return InvalidArgument("a header name that is not a token");
    fields.push_back({ToLower(name), std::string(Trim(line.substr(colon + 1)))});
  }
  return fields;
}

}  // namespace

MultipartReader::MultipartReader(std::string boundary, MultipartCallbacks callbacks,
                                 MultipartLimits limits)
    : delimiter_("\r\n--" + boundary), callbacks_(std::move(callbacks)), limits_(limits) {
  if (Status valid = CheckBoundary(boundary); !valid.ok()) {
    state_ = State::kFailed;
    status_ = std::move(valid);
  }
}

size_t MultipartReader::buffered_bytes() const {
  switch (state_) {
    case State::kPreamble:
    case State::kBody:
      return matched_;
    case State::kHeaders:
      return header_block_.size();
    default:
      return 0;
  }
}

Status MultipartReader::Fail(Status status) {
  state_ = State::kFailed;
  status_ = std::move(status);
  error_reported_ = true;
  if (callbacks_.on_error) callbacks_.on_error(status_);
  return status_;
}

Status MultipartReader::Error(const std::string& what) {
  const std::string where = parts_ == 0 ? "" : " part " + std::to_string(parts_);
  return Fail(InvalidArgument("multipart body" + where + ": " + what));
}

Status MultipartReader::Feed(std::string_view bytes) {
  if (state_ == State::kFailed) {
    if (!error_reported_) {  // a boundary rejected by the constructor
      error_reported_ = true;
      if (callbacks_.on_error) callbacks_.on_error(status_);
    }
    return status_;
  }
  while (!bytes.empty()) {
    RETURN_IF_ERROR(Step(bytes));
  }
  return Status::Ok();
}

Status MultipartReader::Finish() {
  RETURN_IF_ERROR(Feed({}));
  switch (state_) {
    case State::kEpilogue:
      return Status::Ok();
    case State::kPreamble:
      return Error("ended before the first boundary delimiter");
    case State::kHeaders:
      return Error("ended in the header block");
    case State::kBody:
      return Error("ended in the body, before the close delimiter");
    default:
      return Error("ended in a boundary delimiter line");
  }
}

// Consumes a prefix of `bytes` in the current state, moving to the next state as needed.
Status MultipartReader::Step(std::string_view& bytes) {
  switch (state_) {
    case State::kPreamble:
    case State::kBody:
      return ScanForDelimiter(bytes);
    case State::kHeaders:
      return ConsumeHeaders(bytes);
    case State::kEpilogue:
      bytes = {};
      return Status::Ok();
    case State::kFailed:
      return status_;
    default:
      break;
  }
  const char c = bytes.front();
  bytes.remove_prefix(1);
  switch (state_) {
    case State::kAfterBoundary:
      if (c == '-') {
        state_ = State::kCloseDash;
        return Status::Ok();
      }
      [[fallthrough]];
    case State::kPadding:
      if (IsWhitespace(c)) {
        state_ = State::kPadding;
        return Status::Ok();
      }
      if (c == '\r') {
        state_ = State::kPaddingLf;
        return Status::Ok();
      }
      return Error("unexpected byte after a boundary delimiter (expected CRLF or \"--\")");
    case State::kPaddingLf:
      if (c != '\n') return Error("CR without LF after a boundary delimiter");
      return DelimiterLineEnd(/*close=*/false);
    case State::kCloseDash:
      if (c != '-') return Error("unexpected byte after a boundary delimiter (expected \"--\")");
      return DelimiterLineEnd(/*close=*/true);
    default:
      return Fail(Internal("multipart reader: unexpected state"));
  }
}

// Looks for delimiter_ in the stream, delivering (in kBody) or discarding (in kPreamble) the
// bytes before it. The delimiter starts with CR and has no other CR, so after a mismatch the
// only possible partial match is a single CR: no KMP table is needed, and the bytes held
// back are always delimiter_[0, matched_).
Status MultipartReader::ScanForDelimiter(std::string_view& bytes) {
  const size_t held = matched_;
  size_t matched = matched_;
  size_t i = 0;
  const size_t n = bytes.size();
  while (i < n) {
    if (matched == 0) {
      const void* cr = std::memchr(bytes.data() + i, '\r', n - i);
      if (cr == nullptr) {
        i = n;
        break;
      }
      i = static_cast<size_t>(static_cast<const char*>(cr) - bytes.data());
    }
    const char c = bytes[i++];
    if (c == delimiter_[matched]) {
      if (++matched == delimiter_.size()) break;
    } else {
      matched = c == '\r' ? 1 : 0;
    }
  }
  // Content: the held bytes and bytes[0, i), less the last `matched` (a possible delimiter).
  const size_t content = held + i - matched;
  if (state_ == State::kBody && content > 0 && callbacks_.on_part_data) {
    const size_t from_held = std::min(content, held);
    if (from_held > 0) {
      if (Status s = callbacks_.on_part_data(std::string_view(delimiter_).substr(0, from_held));
          !s.ok()) {
        return Fail(std::move(s));
      }
    }
    if (content > held) {
      if (Status s = callbacks_.on_part_data(bytes.substr(0, content - held)); !s.ok()) {
        return Fail(std::move(s));
      }
    }
  }
  bytes.remove_prefix(i);
  if (matched == delimiter_.size()) {
    matched_ = 0;
    state_ = State::kAfterBoundary;
  } else {
    matched_ = matched;
  }
  return Status::Ok();
}

// A delimiter line is complete: end the current part; begin the next or read the epilogue.
Status MultipartReader::DelimiterLineEnd(bool close) {
  if (in_part_) {
    in_part_ = false;
    if (callbacks_.on_part_end) {
      if (Status s = callbacks_.on_part_end(); !s.ok()) return Fail(std::move(s));
    }
  }
  if (close) {
    state_ = State::kEpilogue;
    return Status::Ok();
  }
  if (parts_ >= limits_.max_parts) {
    return Error("more than " + std::to_string(limits_.max_parts) + " parts");
  }
  ++parts_;
  header_block_.clear();
  state_ = State::kHeaders;
  return Status::Ok();
}

// Collects the header block up to its blank line (an immediate CRLF when there are no
// fields), then parses it and begins the part.
Status MultipartReader::ConsumeHeaders(std::string_view& bytes) {
  size_t i = 0;
  bool complete = false;
  while (i < bytes.size() && !complete) {
    if (header_block_.size() >= limits_.max_header_bytes) {
      return Error("header block longer than " + std::to_string(limits_.max_header_bytes) +
                   " bytes");
    }
    header_block_.push_back(bytes[i++]);
    if (header_block_.back() == '\n') {
      complete = header_block_ == "\r\n" ||
                 (header_block_.size() >= 4 &&
                  header_block_.compare(header_block_.size() - 4, 4, "\r\n\r\n") == 0);
    }
  }
  bytes.remove_prefix(i);
  if (!complete) return Status::Ok();
  const std::string_view block =
      std::string_view(header_block_).substr(0, header_block_.size() - 2);
  Result<std::vector<HeaderField>> fields = ParseHeaderBlock(block);
  if (!fields.ok()) return Error("headers: " + fields.status().message());
  header_block_.clear();
  in_part_ = true;
  matched_ = 0;
  state_ = State::kBody;
  if (callbacks_.on_part_begin) {
    if (Status s = callbacks_.on_part_begin(*fields); !s.ok()) return Fail(std::move(s));
  }
  return Status::Ok();
}

// ---- MultipartWriter ----

namespace {

[[noreturn]] void Abort(const char* what) {
  std::fprintf(stderr, "MultipartWriter: %s\n", what);
  std::abort();
}

std::string RandomBoundary() {
  static constexpr std::string_view kAlphabet =
      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  std::random_device device;
  std::uniform_int_distribution<size_t> pick(0, kAlphabet.size() - 1);
  std::string boundary(40, '0');
  for (char& c : boundary) c = kAlphabet[pick(device)];
  return boundary;
}

// An RFC 9110 quoted-string holding `value`.
std::string Quote(std::string_view value) {
  std::string quoted = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') quoted.push_back('\\');
    quoted.push_back(c);
  }
  quoted.push_back('"');
  return quoted;
}

}  // namespace

MultipartWriter::MultipartWriter() : boundary_(RandomBoundary()) {}

MultipartWriter::MultipartWriter(std::string boundary) : boundary_(std::move(boundary)) {
  if (!CheckBoundary(boundary_).ok()) Abort("invalid boundary");
}

std::string MultipartWriter::ContentType(std::string_view related_type) const {
  // A boundary that is not a token (e.g. with spaces) must be quoted; the type always is.
  const std::string boundary = IsToken(boundary_) ? boundary_ : Quote(boundary_);
  return "multipart/related; type=" + Quote(related_type) + "; boundary=" + boundary;
}

std::string MultipartWriter::PartHeader(std::string_view content_type,
                                        const std::vector<HeaderField>& extra_headers) {
  auto check_value = [](std::string_view value) {
    if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos) {
      Abort("a header value with CR, LF or NUL");
    }
  };
  std::string out = first_part_ ? "--" : "\r\n--";
  first_part_ = false;
  out += boundary_;
  out += "\r\n";
  if (!content_type.empty()) {
    check_value(content_type);
    out += "Content-Type: ";
    out += content_type;
    out += "\r\n";
  }
  for (const HeaderField& field : extra_headers) {
    if (!IsToken(field.name)) Abort("a header name that is not a token");
    check_value(field.value);
    out += field.name;
    out += ": ";
    out += field.value;
    out += "\r\n";
  }
  out += "\r\n";
  return out;
}

std::string MultipartWriter::Close() {
  std::string out = first_part_ ? "--" : "\r\n--";
  out += boundary_;
  out += "--\r\n";
  return out;
}

}  // namespace conduit
