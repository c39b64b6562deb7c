#include "hl7/hl7_message.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <iostream>

namespace conduit {
namespace {

constexpr size_t kMaxPathNumber = 999'999;

bool IsHex(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return c - 'A' + 10;
}

bool IsSegmentName(std::string_view name) {
  if (name.size() != 3) return false;
  if (!(name[0] >= 'A' && name[0] <= 'Z')) return false;
  for (char c : name.substr(1)) {
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) return false;
  }
  return true;
}

bool IsDelimiter(char c, const Hl7Delimiters& d) {
  return c == d.field || c == d.component || c == d.repetition || c == d.escape ||
         c == d.subcomponent || (d.truncation != '\0' && c == d.truncation);
}

bool AllOf(std::string_view s, size_t from, bool (*pred)(char)) {
  for (size_t i = from; i < s.size(); ++i) {
    if (!pred(s[i])) return false;
  }
  return true;
}

bool IsDigitOrSign(char c) { return (c >= '0' && c <= '9') || c == '+' || c == '-'; }

// Formatting escapes that are kept as written (the text between the escape characters):
// \H\ \N\ \.br\ \.sp<n>\ \.in<n>\ \.ti<n>\ \.sk<n>\ \.ce\ \.fi\ \.nf\ \Cxxyy\ \Mxxyyzz\ \Zxxx\ and
// so on.
bool IsKeptSequence(std::string_view content, const Hl7Delimiters& d) {
  if (content.empty()) return false;
  for (char c : content) {
    if (IsDelimiter(c, d)) return false;
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '+' || c == '-')) {
      return false;
    }
  }
  if (content == "H" || content == "N") return true;
  if (content == ".br" || content == ".ce" || content == ".fi" || content == ".nf") return true;
  if (content.size() >= 3 && content[0] == '.') {
    const std::string_view cmd = content.substr(0, 3);
    if (cmd == ".sp" || cmd == ".in" || cmd == ".ti" || cmd == ".sk") {
      return AllOf(content, 3, IsDigitOrSign);
    }
    return false;
  }
  if (content[0] == 'C' && content.size() == 5) return AllOf(content, 1, IsHex);
  if (content[0] == 'M' && content.size() == 7) return AllOf(content, 1, IsHex);
  if (content[0] == 'Z' && content.size() >= 2) return true;
  return false;
}

bool IsEmpty(const Hl7Component& c) {
  return std::all_of(c.begin(), c.end(), [](const std::string& s) { return s.empty(); });
}
bool IsEmpty(const Hl7Repetition& r) {
  return std::all_of(r.begin(), r.end(), [](const Hl7Component& c) { return IsEmpty(c); });
}
bool IsEmpty(const Hl7Field& f) {
  return std::all_of(f.begin(), f.end(), [](const Hl7Repetition& r) { return IsEmpty(r); });
}

// Number of leading elements once trailing empty ones are dropped.
template <typename T>
size_t TrimmedSize(const std::vector<T>& v) {
  size_t n = v.size();
  while (n > 0 && IsEmpty(v[n - 1])) --n;
  return n;
}
size_t TrimmedSize(const std::vector<std::string>& v) {
  size_t n = v.size();
  while (n > 0 && v[n - 1].empty()) --n;
  return n;
}

void AppendField(std::string& out, const Hl7Field& field, const Hl7Delimiters& d) {
  const size_t reps = TrimmedSize(field);
  for (size_t r = 0; r < reps; ++r) {
    if (r > 0) out += d.repetition;
    const Hl7Repetition& rep = field[r];
    const size_t comps = TrimmedSize(rep);
    for (size_t c = 0; c < comps; ++c) {
      if (c > 0) out += d.component;
      const Hl7Component& comp = rep[c];
      const size_t subs = TrimmedSize(comp);
      for (size_t s = 0; s < subs; ++s) {
        if (s > 0) out += d.subcomponent;
        out += Hl7Escape(comp[s], d);
      }
    }
  }
}

// A segment's fields as canonical text with the default separators (MSH-1/2 left out).
std::string CanonicalFields(const Hl7Segment& segment) {
  static const Hl7Delimiters kDefault;
  std::string out;
  const size_t first = segment.name() == "MSH" ? 3 : 1;
  size_t last = segment.field_count();
  while (last >= first) {
    const Hl7Field* f = segment.Field(last);
    if (f != nullptr && !IsEmpty(*f)) break;
    --last;
  }
  for (size_t i = first; i <= last; ++i) {
    out += kDefault.field;
    if (const Hl7Field* f = segment.Field(i)) AppendField(out, *f, kDefault);
  }
  return out;
}

std::vector<std::string_view> Split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    const size_t end = text.find(separator, start);
    if (end == std::string_view::npos) {
      parts.push_back(text.substr(start));
      return parts;
    }
    parts.push_back(text.substr(start, end - start));
    start = end + 1;
  }
}

// Counts the parts Split() would give without building them.
size_t CountParts(std::string_view text, char separator) {
  return 1 + static_cast<size_t>(std::count(text.begin(), text.end(), separator));
}

std::string Where(size_t index, std::string_view name) {
  return "hl7 parse: segment " + std::to_string(index) + " (" + std::string(name) + ")";
}

Status TooMany(size_t index, std::string_view name, size_t field, std::string_view what,
               size_t limit) {
  return ResourceExhausted(Where(index, name) + ": field " + std::to_string(field) + ": too many " +
                           std::string(what) + " (limit " + std::to_string(limit) + ")");
}

Result<Hl7Field> ParseField(std::string_view text, const Hl7Delimiters& d, const Hl7Limits& limits,
                            size_t index, std::string_view name, size_t field_number) {
  Hl7Field field;
  if (text.empty()) return field;
  if (CountParts(text, d.repetition) > limits.max_repetitions) {
    return TooMany(index, name, field_number, "repetitions", limits.max_repetitions);
  }
  for (std::string_view rep_text : Split(text, d.repetition)) {
    Hl7Repetition& rep = field.emplace_back();
    if (CountParts(rep_text, d.component) > limits.max_components) {
      return TooMany(index, name, field_number, "components", limits.max_components);
    }
    for (std::string_view comp_text : Split(rep_text, d.component)) {
      Hl7Component& comp = rep.emplace_back();
      if (CountParts(comp_text, d.subcomponent) > limits.max_subcomponents) {
        return TooMany(index, name, field_number, "subcomponents", limits.max_subcomponents);
      }
      for (std::string_view sub : Split(comp_text, d.subcomponent)) {
        comp.push_back(Hl7Unescape(sub, d));
      }
    }
  }
  return field;
}

// Reads MSH-1 and MSH-2 from the start of `line` (which begins "MSH").
Result<Hl7Delimiters> ReadDelimiters(std::string_view line) {
  if (line.size() < 8) return InvalidArgument("hl7 parse: segment 1 (MSH): header too short");
  Hl7Delimiters d;
  d.field = line[3];
  const size_t end = line.find(d.field, 4);
  const std::string_view encoding =
      line.substr(4, end == std::string_view::npos ? line.npos : end - 4);
  if (encoding.size() != 4 && encoding.size() != 5) {
    return InvalidArgument(
        "hl7 parse: segment 1 (MSH): field 2: expected 4 or 5 encoding "
        "characters, got " +
        std::to_string(encoding.size()));
  }
  d.component = encoding[0];
  d.repetition = encoding[1];
  d.escape = encoding[2];
  d.subcomponent = encoding[3];
  if (encoding.size() == 5) d.truncation = encoding[4];
  Status valid = d.Validate();
  if (!valid.ok()) return valid.WithContext("hl7 parse: segment 1 (MSH): fields 1-2");
  return d;
}

// Splits ER7 text into non-empty segment lines (CR, LF and CRLF all end a segment).
std::vector<std::string_view> SegmentLines(std::string_view er7) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start < er7.size()) {
    size_t end = er7.find_first_of("\r\n", start);
    if (end == std::string_view::npos) end = er7.size();
    if (end > start) lines.push_back(er7.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

Result<size_t> ParseNumber(std::string_view text, size_t& pos) {
  const size_t start = pos;
  while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') ++pos;
  const size_t digits = pos - start;
  if (digits == 0 || digits > 6) return InvalidArgument("bad number");
  const size_t value = std::stoul(std::string(text.substr(start, digits)));
  if (value == 0 || value > kMaxPathNumber) return InvalidArgument("bad number");
  return value;
}

// "(n)" at pos, if present.
Result<size_t> ParseRepetition(std::string_view text, size_t& pos) {
  if (pos >= text.size() || text[pos] != '(') return size_t{1};
  ++pos;
  ASSIGN_OR_RETURN(size_t n, ParseNumber(text, pos));
  if (pos >= text.size() || text[pos] != ')') return InvalidArgument("missing )");
  ++pos;
  return n;
}

}  // namespace

// Builds segments and messages from text; a friend of both.
struct Hl7Parser {
  static Result<Hl7Segment> ParseSegment(std::string_view line, size_t index,
                                         const Hl7Delimiters& d, const Hl7Limits& limits) {
    const std::string_view name = line.substr(0, 3);
    if (!IsSegmentName(name) || (line.size() > 3 && line[3] != d.field)) {
      return InvalidArgument("hl7 parse: segment " + std::to_string(index) +
                             ": not a segment name followed by the field separator");
    }
    const bool msh = name == "MSH";
    if (msh != (index == 1)) {
      return InvalidArgument(Where(index, name) +
                             (msh ? ": MSH only as the first segment (batches are not supported)"
                                  : ": the first segment must be MSH"));
    }
    Hl7Segment segment{std::string(name)};
    if (line.size() <= 4) return segment;
    std::string_view rest = line.substr(4);
    size_t number = 1;
    if (msh) {
      segment.fields_.push_back({{{std::string(1, d.field)}}});
      const size_t end = rest.find(d.field);
      segment.fields_.push_back({{{std::string(rest.substr(0, end))}}});
      if (end == std::string_view::npos) return segment;
      rest = rest.substr(end + 1);
      number = 3;
    }
    if (CountParts(rest, d.field) + number - 1 > limits.max_fields) {
      return ResourceExhausted(Where(index, name) + ": too many fields (limit " +
                               std::to_string(limits.max_fields) + ")");
    }
    for (std::string_view field_text : Split(rest, d.field)) {
      ASSIGN_OR_RETURN(Hl7Field field, ParseField(field_text, d, limits, index, name, number));
      segment.fields_.push_back(std::move(field));
      ++number;
    }
    return segment;
  }

  static Result<Hl7Message> ParseImpl(std::string_view er7, const Hl7Limits& limits,
                                      bool header_only) {
    if (er7.size() > limits.max_message_bytes) {
      return ResourceExhausted("hl7 parse: message of " + std::to_string(er7.size()) +
                               " bytes is over the limit of " +
                               std::to_string(limits.max_message_bytes));
    }
    const std::vector<std::string_view> lines = SegmentLines(er7);
    if (lines.empty()) return InvalidArgument("hl7 parse: empty message");
    if (lines[0].substr(0, 3) != "MSH") {
      return InvalidArgument("hl7 parse: segment 1: the first segment must be MSH");
    }
    if (!header_only && lines.size() > limits.max_segments) {
      return ResourceExhausted("hl7 parse: " + std::to_string(lines.size()) +
                               " segments is over the limit of " +
                               std::to_string(limits.max_segments));
    }
    ASSIGN_OR_RETURN(Hl7Delimiters delimiters, ReadDelimiters(lines[0]));
    Hl7Message message(delimiters, limits);
    const size_t count = header_only ? 1 : lines.size();
    std::vector<Hl7Segment> segments;
    segments.reserve(count);
    for (size_t i = 0; i < count; ++i) {
      ASSIGN_OR_RETURN(Hl7Segment segment,
                       Hl7Parser::ParseSegment(lines[i], i + 1, delimiters, limits));
      segments.push_back(std::move(segment));
    }
    message.segments_ = std::move(segments);
    return message;
  }
};

std::string Hl7Delimiters::EncodingCharacters() const {
  std::string s{component, repetition, escape, subcomponent};
  if (truncation != '\0') s += truncation;
  return s;
}

Status Hl7Delimiters::Validate() const {
  std::string all{field, component, repetition, escape, subcomponent};
  if (truncation != '\0') all += truncation;
  for (size_t i = 0; i < all.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(all[i]);
    if (c <= 0x20 || c >= 0x7f || std::isalnum(c)) {
      return InvalidArgument("hl7 delimiters: separator " + std::to_string(i + 1) +
                             " must be printable ASCII punctuation");
    }
    if (all.find(all[i], i + 1) != std::string::npos) {
      return InvalidArgument("hl7 delimiters: separators must be distinct");
    }
  }
  return Status::Ok();
}

Result<Hl7Path> Hl7Path::Parse(std::string_view text) {
  const auto bad = [&text]() {
    return InvalidArgument("hl7 path '" + std::string(text.substr(0, 40)) +
                           "': expected SEG[(n)]-F[(r)][.C[.S]]");
  };
  Hl7Path path;
  if (text.size() < 5 || !IsSegmentName(text.substr(0, 3))) return bad();
  path.segment = std::string(text.substr(0, 3));
  size_t pos = 3;
  Result<size_t> n = ParseRepetition(text, pos);
  if (!n.ok()) return bad();
  path.segment_repetition = *n;
  if (pos >= text.size() || text[pos] != '-') return bad();
  ++pos;
  n = ParseNumber(text, pos);
  if (!n.ok()) return bad();
  path.field = *n;
  n = ParseRepetition(text, pos);
  if (!n.ok()) return bad();
  path.repetition = *n;
  for (size_t* level : {&path.component, &path.subcomponent}) {
    if (pos == text.size()) break;
    if (text[pos] != '.') return bad();
    ++pos;
    n = ParseNumber(text, pos);
    if (!n.ok()) return bad();
    *level = *n;
  }
  if (pos != text.size()) return bad();
  return path;
}

std::string Hl7Path::ToString() const {
  std::string s = segment;
  if (segment_repetition != 1) s += "(" + std::to_string(segment_repetition) + ")";
  s += "-" + std::to_string(field);
  if (repetition != 1) s += "(" + std::to_string(repetition) + ")";
  if (component != 1 || subcomponent != 1) s += "." + std::to_string(component);
  if (subcomponent != 1) s += "." + std::to_string(subcomponent);
  return s;
}

std::string Hl7Escape(std::string_view value, const Hl7Delimiters& d) {
  std::string out;
  out.reserve(value.size());
  static constexpr char kHex[] = "0123456789ABCDEF";
  const auto escape = [&out, &d](std::string_view code) {
    out += d.escape;
    out += code;
    out += d.escape;
  };
  for (size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    const unsigned char u = static_cast<unsigned char>(c);
    if (c == d.escape) {
      const size_t close = value.find(d.escape, i + 1);
      if (close != std::string_view::npos &&
          IsKeptSequence(value.substr(i + 1, close - i - 1), d)) {
        out += value.substr(i, close - i + 1);
        i = close;
      } else {
        escape("E");
      }
    } else if (c == d.field) {
      escape("F");
    } else if (c == d.component) {
      escape("S");
    } else if (c == d.subcomponent) {
      escape("T");
    } else if (c == d.repetition) {
      escape("R");
    } else if (d.truncation != '\0' && c == d.truncation) {
      escape("P");
    } else if (u < 0x20) {
      escape(std::string{'X', kHex[u >> 4], kHex[u & 0xf]});
    } else {
      out += c;
    }
  }
  return out;
}

std::string Hl7Unescape(std::string_view text, const Hl7Delimiters& d) {
  if (text.find(d.escape) == std::string_view::npos) return std::string(text);
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != d.escape) {
      out += text[i];
      continue;
    }
    const size_t close = text.find(d.escape, i + 1);
    if (close == std::string_view::npos) {
      out += text[i];  // a lone escape character is kept as text
      continue;
    }
    const std::string_view content = text.substr(i + 1, close - i - 1);
    if (content == "F") {
      out += d.field;
    } else if (content == "S") {
      out += d.component;
    } else if (content == "T") {
      out += d.subcomponent;
    } else if (content == "R") {
      out += d.repetition;
    } else if (content == "E") {
      out += d.escape;
    } else if (content == "P" && d.truncation != '\0') {
      out += d.truncation;
    } else if (content.size() >= 3 && content.size() % 2 == 1 && content[0] == 'X' &&
               AllOf(content, 1, IsHex)) {
      for (size_t k = 1; k < content.size(); k += 2) {
        out += static_cast<char>(HexValue(content[k]) * 16 + HexValue(content[k + 1]));
      }
    } else if (IsKeptSequence(content, d)) {
      out += text.substr(i, close - i + 1);
    } else {
      out += text[i];  // not an escape sequence: the escape character is text
      continue;
    }
    i = close;
  }
  return out;
}

size_t Hl7Segment::Repetitions(size_t field) const {
  const Hl7Field* f = Field(field);
  return f == nullptr ? 0 : TrimmedSize(*f);
}

const Hl7Field* Hl7Segment::Field(size_t field) const {
  if (field == 0 || field > fields_.size()) return nullptr;
  return &fields_[field - 1];
}

std::string Hl7Segment::Value(size_t field, size_t repetition, size_t component,
                              size_t subcomponent) const {
  const Hl7Field* f = Field(field);
  if (f == nullptr || repetition == 0 || repetition > f->size()) return "";
  const Hl7Repetition& r = (*f)[repetition - 1];
  if (component == 0 || component > r.size()) return "";
  const Hl7Component& c = r[component - 1];
  if (subcomponent == 0 || subcomponent > c.size()) return "";
  return c[subcomponent - 1];
}

bool Hl7Segment::operator==(const Hl7Segment& other) const {
  return name_ == other.name_ && CanonicalFields(*this) == CanonicalFields(other);
}

Hl7Message::Hl7Message(Hl7Delimiters delimiters, Hl7Limits limits)
    : delimiters_(delimiters), limits_(limits) {}

Result<Hl7Message> Hl7Message::Parse(std::string_view er7, const Hl7Limits& limits) {
  return Hl7Parser::ParseImpl(er7, limits, /*header_only=*/false);
}

Result<Hl7Message> Hl7Message::ParseHeader(std::string_view er7, const Hl7Limits& limits) {
  return Hl7Parser::ParseImpl(er7, limits, /*header_only=*/true);
}

std::string Hl7Message::Serialize() const {
  std::string out;
  for (const Hl7Segment& segment : segments_) {
    out += segment.name_;
    size_t first = 1;
    if (segment.name_ == "MSH") {
      out += delimiters_.field;
      out += delimiters_.EncodingCharacters();
      first = 3;
    }
    size_t last = segment.fields_.size();
    while (last >= first && IsEmpty(segment.fields_[last - 1])) --last;
    for (size_t i = first; i <= last; ++i) {
      out += delimiters_.field;
      AppendField(out, segment.fields_[i - 1], delimiters_);
    }
    out += '\r';
  }
  return out;
}

Result<std::string> Hl7Message::Get(std::string_view path_text) const {
  ASSIGN_OR_RETURN(Hl7Path path, Hl7Path::Parse(path_text));
  const Hl7Segment* segment = FindSegment(path.segment, path.segment_repetition);
  if (segment == nullptr) return std::string();
  return segment->Value(path.field, path.repetition, path.component, path.subcomponent);
}

std::string Hl7Message::Value(std::string_view path) const {
  Result<std::string> value = Get(path);
  if (!value.ok()) {
    std::cerr << "Hl7Message::Value: " << value.status().ToString() << "\n";
    std::abort();
  }
  return std::move(value).value();
}

Status Hl7Message::Set(std::string_view path_text, std::string_view value) {
  ASSIGN_OR_RETURN(Hl7Path path, Hl7Path::Parse(path_text));
  return Set(path, value);
}

Result<size_t> Hl7Message::AddSegment(std::string_view name) {
  if (!IsSegmentName(name)) return InvalidArgument("hl7 add segment: not a segment name");
  if ((name == "MSH") != segments_.empty()) {
    return InvalidArgument("hl7 add segment " + std::string(name) +
                           ": MSH must be the first segment and only the first");
  }
  if (segments_.size() >= limits_.max_segments) {
    return ResourceExhausted("hl7 add segment " + std::string(name) + ": over the limit of " +
                             std::to_string(limits_.max_segments) + " segments");
  }
  Hl7Segment& segment = segments_.emplace_back(std::string(name));
  if (name == "MSH") {
    segment.fields_.push_back({{{std::string(1, delimiters_.field)}}});
    segment.fields_.push_back({{{delimiters_.EncodingCharacters()}}});
  }
  return SegmentCount(name);
}

Status Hl7Message::Set(const Hl7Path& path, std::string_view value) {
  const std::string where = "hl7 set " + path.ToString();
  if (path.segment == "MSH" && path.field <= 2) {
    return InvalidArgument(where + ": MSH-1 and MSH-2 are fixed by the delimiters");
  }
  if (path.field > limits_.max_fields || path.repetition > limits_.max_repetitions ||
      path.component > limits_.max_components || path.subcomponent > limits_.max_subcomponents) {
    return ResourceExhausted(where + ": position beyond the message limits");
  }
  const size_t count = SegmentCount(path.segment);
  if (path.segment_repetition > count + 1) {
    return InvalidArgument(where + ": only " + std::to_string(count) + " " + path.segment +
                           " segment(s)");
  }
  if (path.segment_repetition == count + 1) {
    Result<size_t> added = AddSegment(path.segment);
    if (!added.ok()) return added.status().WithContext(where);
  }
  Hl7Segment* segment = nullptr;
  size_t seen = 0;
  for (Hl7Segment& s : segments_) {
    if (s.name_ == path.segment && ++seen == path.segment_repetition) {
      segment = &s;
      break;
    }
  }
  if (segment->fields_.size() < path.field) segment->fields_.resize(path.field);
  Hl7Field& field = segment->fields_[path.field - 1];
  if (field.size() < path.repetition) field.resize(path.repetition);
  Hl7Repetition& rep = field[path.repetition - 1];
  if (rep.size() < path.component) rep.resize(path.component);
  Hl7Component& comp = rep[path.component - 1];
  if (comp.size() < path.subcomponent) comp.resize(path.subcomponent);
  comp[path.subcomponent - 1] = std::string(value);
  return Status::Ok();
}

size_t Hl7Message::SegmentCount(std::string_view name) const {
  return static_cast<size_t>(
      std::count_if(segments_.begin(), segments_.end(),
                    [name](const Hl7Segment& s) { return s.name() == name; }));
}

const Hl7Segment* Hl7Message::FindSegment(std::string_view name, size_t repetition) const {
  size_t seen = 0;
  for (const Hl7Segment& s : segments_) {
    if (s.name() == name && ++seen == repetition) return &s;
  }
  return nullptr;
}

}  // namespace conduit
