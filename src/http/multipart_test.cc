#include "http/multipart.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <random>
#include <string>
#include <vector>

namespace conduit {
namespace {

using Headers = std::vector<HeaderField>;

struct Part {
  Headers headers;
  std::string body;
  bool ended = false;
  bool operator==(const Part&) const = default;
};

// Everything a reader reported, for comparison between ways of feeding the same body.
struct Outcome {
  std::vector<Part> parts;
  bool ok = true;  // every Feed and Finish returned OK
  int errors_reported = 0;
  std::string error;  // the message of the first error reported
  bool operator==(const Outcome&) const = default;
};

MultipartCallbacks Collect(Outcome& out) {
  MultipartCallbacks callbacks;
  callbacks.on_part_begin = [&out](const Headers& headers) {
    out.parts.push_back({headers, "", false});
    return Status::Ok();
  };
  callbacks.on_part_data = [&out](std::string_view bytes) {
    EXPECT_FALSE(bytes.empty());
    EXPECT_FALSE(out.parts.empty());
    if (!out.parts.empty()) out.parts.back().body.append(bytes);
    return Status::Ok();
  };
  callbacks.on_part_end = [&out]() {
    EXPECT_FALSE(out.parts.empty());
    if (!out.parts.empty()) out.parts.back().ended = true;
    return Status::Ok();
  };
  callbacks.on_error = [&out](const Status& status) {
    if (out.errors_reported++ == 0) out.error = status.message();
  };
  return callbacks;
}

// Feeds `body` cut at `cuts` (ascending offsets), then finishes.
Outcome Read(const std::string& boundary, std::string_view body,
             const std::vector<size_t>& cuts = {}, MultipartLimits limits = {}) {
  Outcome out;
  MultipartReader reader(boundary, Collect(out), limits);
  size_t from = 0;
  std::vector<size_t> ends = cuts;
  ends.push_back(body.size());
  for (size_t end : ends) {
    if (!reader.Feed(body.substr(from, end - from)).ok()) out.ok = false;
    from = end;
  }
  if (!reader.Finish().ok()) out.ok = false;
  return out;
}

Status ReadStatus(const std::string& boundary, std::string_view body, MultipartLimits limits = {}) {
  Outcome out;
  MultipartReader reader(boundary, Collect(out), limits);
  Status status = reader.Feed(body);
  if (status.ok()) status = reader.Finish();
  EXPECT_EQ(out.errors_reported, status.ok() ? 0 : 1);
  return status;
}

// ---- ParseMediaType ----

TEST(ParseMediaTypeTest, StowRequestContentType) {
  Result<MediaType> media =
      ParseMediaType("multipart/related; type=\"application/dicom\"; boundary=xyz");
  ASSERT_TRUE(media.ok()) << media.status().ToString();
  EXPECT_EQ(media->type, "multipart");
  EXPECT_EQ(media->subtype, "related");
  EXPECT_EQ(media->Parameter("type"), "application/dicom");
  EXPECT_EQ(media->Parameter("boundary"), "xyz");
  EXPECT_EQ(media->Parameter("BOUNDARY"), "xyz");
  EXPECT_EQ(media->Parameter("start"), std::nullopt);
}

TEST(ParseMediaTypeTest, AcceptedForms) {
  struct Case {
    std::string text;
    std::string type, subtype;
    std::vector<std::pair<std::string, std::string>> parameters;
  };
  const std::vector<Case> cases = {
      {"Multipart/Related;Boundary=AbC", "multipart", "related", {{"boundary", "AbC"}}},
      {"  text/plain  ", "text", "plain", {}},
      {"text/plain;", "text", "plain", {}},
      {"text/plain ; ; charset=utf-8 ;", "text", "plain", {{"charset", "utf-8"}}},
      {"a/b;\tx=\"\"", "a", "b", {{"x", ""}}},
      {R"(a/b; x="q\"uo\\te\d")", "a", "b", {{"x", "q\"uo\\ted"}}},
      {R"(a/b; x="semi;colon = and, comma")", "a", "b", {{"x", "semi;colon = and, comma"}}},
      {"multipart/related; type=\"application/dicom+xml\"; start=\"<a@b>\"; boundary=\"x y\"",
       "multipart",
       "related",
       {{"type", "application/dicom+xml"}, {"start", "<a@b>"}, {"boundary", "x y"}}},
      {"a/b; x=\"caf\xc3\xa9\"", "a", "b", {{"x", "caf\xc3\xa9"}}},  // obs-text kept
  };
  for (const Case& c : cases) {
    Result<MediaType> media = ParseMediaType(c.text);
    ASSERT_TRUE(media.ok()) << c.text << ": " << media.status().ToString();
    EXPECT_EQ(media->type, c.type) << c.text;
    EXPECT_EQ(media->subtype, c.subtype) << c.text;
    EXPECT_EQ(media->parameters, c.parameters) << c.text;
  }
}

TEST(ParseMediaTypeTest, RejectedFormsAreInvalidArgumentWithAReason) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "empty"},
      {"   ", "empty"},
      {"multipart", "'/'"},
      {"multipart/", "subtype"},
      {"/related", "type token"},
      {"multipart/related boundary=x", "';'"},
      {"multipart/related; boundary", "'='"},
      {"multipart/related; boundary = x", "'='"},
      {"multipart/related; boundary=", "value"},
      {"multipart/related; =x", "parameter name"},
      {"multipart/related; boundary=\"xyz", "closing"},
      {"multipart/related; boundary=\"x\\", "closing"},
      {"multipart/related; boundary=\"a\nb\"", "control character"},
      {"multipart/related; boundary=a; BOUNDARY=b", "twice"},
      {"multipart/related; boundary=a\"b\"", "';'"},
      {"multi part/related", "'/'"},
      {"multipart/related; boundary=x" + std::string(kMaxContentTypeBytes, ' '), "longer"},
  };
  for (const auto& [text, reason] : cases) {
    Result<MediaType> media = ParseMediaType(text);
    ASSERT_FALSE(media.ok()) << text;
    EXPECT_EQ(media.status().code(), StatusCode::kInvalidArgument) << text;
    EXPECT_NE(media.status().message().find("Content-Type"), std::string::npos);
    EXPECT_NE(media.status().message().find(reason), std::string::npos)
        << text << " -> " << media.status().message();
  }
}

// ---- MultipartReader ----

// RFC 2046 section 5.1.1's example (boundary with a space, quoted in Content-Type; a part
// without headers; a body without a trailing line break; preamble and epilogue).
TEST(MultipartReaderTest, Rfc2046Example) {
  Result<MediaType> media = ParseMediaType("multipart/mixed; boundary=\"simple boundary\"");
  ASSERT_TRUE(media.ok());
  const std::string body =
      "This is the preamble.  It is to be ignored, though it\r\n"
      "is a handy place for composition agents to include an\r\n"
      "explanatory note to non-MIME conformant readers.\r\n"
      "\r\n"
      "--simple boundary\r\n"
      "\r\n"
      "This is implicitly typed plain US-ASCII text.\r\n"
      "It does NOT end with a linebreak.\r\n"
      "--simple boundary\r\n"
      "Content-type: text/plain; charset=us-ascii\r\n"
      "\r\n"
      "This is explicitly typed plain US-ASCII text.\r\n"
      "It DOES end with a linebreak.\r\n"
      "\r\n"
      "--simple boundary--\r\n"
      "\r\n"
      "This is the epilogue.  It is also to be ignored.\r\n";
  const Outcome out = Read(std::string(*media->Parameter("boundary")), body);
  ASSERT_TRUE(out.ok);
  ASSERT_EQ(out.parts.size(), 2u);
  EXPECT_TRUE(out.parts[0].headers.empty());
  EXPECT_EQ(out.parts[0].body,
            "This is implicitly typed plain US-ASCII text.\r\n"
            "It does NOT end with a linebreak.");
  EXPECT_EQ(out.parts[1].headers, (Headers{{"content-type", "text/plain; charset=us-ascii"}}));
  EXPECT_EQ(out.parts[1].body,
            "This is explicitly typed plain US-ASCII text.\r\n"
            "It DOES end with a linebreak.\r\n");
  EXPECT_TRUE(out.parts[0].ended && out.parts[1].ended);
  EXPECT_EQ(out.errors_reported, 0);
}

// RFC 2387 section 5.1's example (with the ';' the RFC's text omits between parameters).
TEST(MultipartReaderTest, Rfc2387Example) {
  Result<MediaType> media = ParseMediaType(
      "Multipart/Related; boundary=example-1;\r\n"
      "        start=\"<950120.aaCC@XIson.com>\";\r\n"
      "        type=\"Application/X-FixedRecord\";\r\n"
      "        start-info=\"-o ps\"");
  // Line breaks in a field value are unfolded by the HTTP layer before we see it.
  EXPECT_FALSE(media.ok());
  media = ParseMediaType(
      "Multipart/Related; boundary=example-1; start=\"<950120.aaCC@XIson.com>\"; "
      "type=\"Application/X-FixedRecord\"; start-info=\"-o ps\"");
  ASSERT_TRUE(media.ok()) << media.status().ToString();
  EXPECT_EQ(media->Parameter("start-info"), "-o ps");
  EXPECT_EQ(media->Parameter("type"), "Application/X-FixedRecord");
  const std::string body =
      "--example-1\r\n"
      "Content-Type: Application/X-FixedRecord\r\n"
      "Content-ID: <950120.aaCC@XIson.com>\r\n"
      "\r\n"
      "25\r\n10\r\n34\r\n10\r\n25\r\n21\r\n26\r\n10\r\n"
      "--example-1\r\n"
      "Content-Type: Application/octet-stream\r\n"
      "Content-Description: The fixed length records\r\n"
      "Content-Transfer-Encoding: base64\r\n"
      "Content-ID: <950120.aaCB@XIson.com>\r\n"
      "\r\n"
      "T2xkIE1hY0RvbmFsZCBoYWQgYSBmYXJtCkUgSS\r\n"
      "NrIHF1YWNrCkUgSSBFIEkgTwo=\r\n"
      "\r\n"
      "--example-1--\r\n";
  const Outcome out = Read(std::string(*media->Parameter("boundary")), body);
  ASSERT_TRUE(out.ok);
  ASSERT_EQ(out.parts.size(), 2u);
  EXPECT_EQ(FindHeader(out.parts[0].headers, "Content-ID"), "<950120.aaCC@XIson.com>");
  EXPECT_EQ(out.parts[0].body, "25\r\n10\r\n34\r\n10\r\n25\r\n21\r\n26\r\n10");
  EXPECT_EQ(out.parts[1].headers.size(), 4u);
  EXPECT_EQ(FindHeader(out.parts[1].headers, "content-transfer-encoding"), "base64");
  EXPECT_EQ(out.parts[1].body,
            "T2xkIE1hY0RvbmFsZCBoYWQgYSBmYXJtCkUgSS\r\nNrIHF1YWNrCkUgSSBFIEkgTwo=\r\n");
}

TEST(MultipartReaderTest, PreambleAndEpilogueAreIgnored) {
  const std::string body =
      "preamble --xyz not a delimiter\r\n--xy\r\n"
      "--xyz\r\n\r\none\r\n--xyz--  epilogue\r\n--xyz\r\nContent-Type: a/b\r\n\r\nnot a part";
  const Outcome out = Read("xyz", body);
  ASSERT_TRUE(out.ok);
  ASSERT_EQ(out.parts.size(), 1u);
  EXPECT_EQ(out.parts[0].body, "one");
}

TEST(MultipartReaderTest, TransportPaddingAndFoldedHeaders) {
  const std::string body =
      "--xyz \t \r\n"
      "CONTENT-Type:   application/dicom  \r\n"
      "X-Long: first\r\n"
      "  second\r\n"
      "\tthird\r\n"
      "Empty:\r\n"
      "\r\n"
      "data\r\n"
      "--xyz--\r\n";
  const Outcome out = Read("xyz", body);
  ASSERT_TRUE(out.ok);
  ASSERT_EQ(out.parts.size(), 1u);
  EXPECT_EQ(out.parts[0].headers, (Headers{{"content-type", "application/dicom"},
                                           {"x-long", "first second third"},
                                           {"empty", ""}}));
  EXPECT_EQ(out.parts[0].body, "data");
}

TEST(MultipartReaderTest, EmptyPartsAndNoParts) {
  Outcome out = Read("b", "--b\r\n\r\n\r\n--b\r\n\r\n\r\n--b--");
  ASSERT_TRUE(out.ok);
  ASSERT_EQ(out.parts.size(), 2u);
  EXPECT_EQ(out.parts[0], (Part{{}, "", true}));
  EXPECT_EQ(out.parts[1], (Part{{}, "", true}));
  out = Read("b", "--b--");
  EXPECT_TRUE(out.ok);
  EXPECT_TRUE(out.parts.empty());
}

TEST(MultipartReaderTest, BoundaryLikeBytesInsidePartsAreKept) {
  const std::vector<std::string> bodies = {
      "--xyz at the start of the body (after the blank line, not a delimiter)",
      "a--xyz in the middle of a line",
      "LF only\n--xyz\nis not a delimiter",
      "CR only\r--xyz is not a delimiter",
      "a partial delimiter\r\n--xy then more\r\n--xyQ\r\n-\r\n--\r\n--x",
      "ends with a partial delimiter\r\n--xy",
      "ends with CR\r",
      "ends with CRCRLF\r\r\n",
      "\r\n\r\n--\r\n--x\r\r\n-",
  };
  for (const std::string& content : bodies) {
    const std::string message = "--xyz\r\n\r\n" + content + "\r\n--xyz--\r\n";
    const Outcome out = Read("xyz", message);
    ASSERT_TRUE(out.ok) << content;
    ASSERT_EQ(out.parts.size(), 1u) << content;
    EXPECT_EQ(out.parts[0].body, content);
  }
}

TEST(MultipartReaderTest, MalformedBodiesAreInvalidArgument) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "before the first boundary"},
      {"no delimiter at all", "before the first boundary"},
      {"--xyz\r\nContent-Type: a/b\r\n", "header block"},
      {"--xyz\r\n\r\nbody without close", "before the close delimiter"},
      {"--xyz\r\n\r\nbody\r\n--xyz", "boundary delimiter line"},
      {"--xyz\r\n\r\nbody\r\n--xyz-", "boundary delimiter line"},
      {"--xyz\r\n\r\nbody\r\n--xyz \r", "boundary delimiter line"},
      {"--xyzabc\r\n\r\n--xyz--", "unexpected byte after a boundary"},
      {"--xyz\r\n\r\nbody\r\n--xyz-x", "expected \"--\""},
      {"--xyz \tx\r\n", "unexpected byte"},
      {"--xyz\rx", "CR without LF"},
      {"--xyz\r\nno colon\r\n\r\n\r\n--xyz--", "without ':'"},
      {"--xyz\r\n folded first\r\n\r\n\r\n--xyz--", "starts with whitespace"},
      {"--xyz\r\nbad name: x\r\n\r\n\r\n--xyz--", "not a token"},
      {"--xyz\r\n: x\r\n\r\n\r\n--xyz--", "not a token"},
      {"--xyz\r\na: b\rc\r\n\r\n\r\n--xyz--", "bare CR"},
      {"--xyz\r\na: b\nc: d\r\n\r\n\r\n--xyz--", "bare CR"},
  };
  for (const auto& [body, reason] : cases) {
    const Status status = ReadStatus("xyz", body);
    ASSERT_FALSE(status.ok()) << body;
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << body;
    EXPECT_NE(status.message().find(reason), std::string::npos)
        << body << " -> " << status.message();
  }
}

TEST(MultipartReaderTest, MissingCloseDelimiterFailsFinishOnly) {
  Outcome out;
  MultipartReader reader("xyz", Collect(out));
  ASSERT_TRUE(reader.Feed("--xyz\r\n\r\npart one\r\n--xyz\r\n\r\npart two").ok());
  const Status status = reader.Finish();
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("part 2"), std::string::npos) << status.message();
  ASSERT_EQ(out.parts.size(), 2u);
  EXPECT_TRUE(out.parts[0].ended);
  EXPECT_FALSE(out.parts[1].ended) << "an unterminated part must not be reported complete";
  EXPECT_EQ(out.errors_reported, 1);
  EXPECT_EQ(reader.Finish().message(), status.message());
  EXPECT_EQ(out.errors_reported, 1);
}

TEST(MultipartReaderTest, HeaderBlockLimit) {
  MultipartLimits limits;
  limits.max_header_bytes = 64;
  // "a: " + value + CRLF + CRLF: exactly 64 bytes is accepted, 65 is not.
  const std::string at_limit = "a: " + std::string(64 - 7, 'v') + "\r\n\r\n";
  ASSERT_EQ(at_limit.size(), 64u);
  EXPECT_TRUE(ReadStatus("b", "--b\r\n" + at_limit + "\r\n--b--", limits).ok());
  const std::string over = "a: " + std::string(64 - 6, 'v') + "\r\n\r\n";
  const Status status = ReadStatus("b", "--b\r\n" + over + "\r\n--b--", limits);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("header block longer than 64 bytes"), std::string::npos)
      << status.message();

  // A header block that never ends is refused once over the limit, with bounded memory.
  Outcome out;
  MultipartReader reader("b", Collect(out), limits);
  ASSERT_TRUE(reader.Feed("--b\r\n").ok());
  Status fed;
  for (int i = 0; i < 1000 && fed.ok(); ++i) {
    fed = reader.Feed("x");
    EXPECT_LE(reader.buffered_bytes(), 64u);
  }
  EXPECT_EQ(fed.code(), StatusCode::kInvalidArgument);
}

TEST(MultipartReaderTest, PartCountLimit) {
  MultipartLimits limits;
  limits.max_parts = 2;
  EXPECT_TRUE(ReadStatus("b", "--b\r\n\r\n1\r\n--b\r\n\r\n2\r\n--b--", limits).ok());
  const Status status =
      ReadStatus("b", "--b\r\n\r\n1\r\n--b\r\n\r\n2\r\n--b\r\n\r\n3\r\n--b--", limits);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("more than 2 parts"), std::string::npos) << status.message();
}

TEST(MultipartReaderTest, QuotedBoundaryWithSpecialCharacters) {
  // Every RFC 2046 bchar, a space among them, and a quoted-pair in the Content-Type.
  Result<MediaType> media = ParseMediaType(
      R"(multipart/related; type="application/dicom"; boundary="0aZ'()+_,-./:=? \"x")");
  ASSERT_TRUE(media.ok()) << media.status().ToString();
  const std::string boundary(*media->Parameter("boundary"));
  EXPECT_EQ(boundary, "0aZ'()+_,-./:=? \"x");
  const std::string body = "--" + boundary + "\r\nContent-Type: application/dicom\r\n\r\nDICM" +
                           "\r\n--" + boundary + "--";
  const Outcome out = Read(boundary, body);
  ASSERT_TRUE(out.ok);
  ASSERT_EQ(out.parts.size(), 1u);
  EXPECT_EQ(out.parts[0].body, "DICM");
}

TEST(MultipartReaderTest, InvalidBoundaryFailsFirstFeed) {
  for (const std::string& boundary :
       {std::string(), std::string("ends with space "), std::string("cr\r"),
        std::string(kMaxBoundaryBytes + 1, 'b')}) {
    EXPECT_EQ(CheckBoundary(boundary).code(), StatusCode::kInvalidArgument) << boundary;
    Outcome out;
    MultipartReader reader(boundary, Collect(out));
    EXPECT_EQ(reader.Feed("--x\r\n\r\n\r\n--x--").code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(reader.Finish().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(out.errors_reported, 1);
  }
  EXPECT_TRUE(CheckBoundary(std::string(kMaxBoundaryBytes, 'b')).ok());
}

TEST(MultipartReaderTest, CallbackErrorAbortsAndIsReturned) {
  int data_calls = 0;
  int errors = 0;
  MultipartCallbacks callbacks;
  callbacks.on_part_data = [&](std::string_view) {
    ++data_calls;
    return ResourceExhausted("spool: disk full");
  };
  callbacks.on_error = [&](const Status& error) {
    ++errors;
    EXPECT_EQ(error.code(), StatusCode::kResourceExhausted);
  };
  MultipartReader reader("b", callbacks);
  Status status = reader.Feed("--b\r\n\r\nsome bytes");
  EXPECT_EQ(status.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(status.message(), "spool: disk full");
  EXPECT_EQ(reader.Feed("more\r\n--b--").code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(reader.Finish().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(data_calls, 1);
  EXPECT_EQ(errors, 1);

  MultipartCallbacks refuse_part;
  refuse_part.on_part_begin = [](const Headers&) { return InvalidArgument("not DICOM"); };
  MultipartReader reader2("b", refuse_part);
  EXPECT_EQ(reader2.Feed("--b\r\nContent-Type: text/plain\r\n\r\n").message(), "not DICOM");
}

// A message exercising every state: preamble, padding, folded headers, a part without
// headers, an empty part, boundary-like content, epilogue.
const std::string kSmallMessage =
    "pre\r\n-\r\n--xy"
    "\r\n--xyz \t\r\nContent-Type: a/b\r\nX: 1\r\n 2\r\n\r\n\r\n--xy\r--xyz\r\n"
    "\r\n--xyz\r\n\r\n\r\n--xyz\r\n\r\nlast\r\r\n--xyz--ep\r\n--xyz\r\n";

TEST(MultipartReaderTest, EverySplitGivesTheSameParts) {
  const Outcome whole = Read("xyz", kSmallMessage);
  ASSERT_TRUE(whole.ok);
  ASSERT_EQ(whole.parts.size(), 3u);
  EXPECT_EQ(whole.parts[0].headers, (Headers{{"content-type", "a/b"}, {"x", "1 2"}}));
  EXPECT_EQ(whole.parts[0].body, "\r\n--xy\r--xyz\r\n");
  EXPECT_EQ(whole.parts[1].body, "");
  EXPECT_EQ(whole.parts[2].body, "last\r");

  const size_t n = kSmallMessage.size();
  for (size_t i = 0; i <= n; ++i) {
    ASSERT_EQ(Read("xyz", kSmallMessage, {i}), whole) << "split at " << i;
    for (size_t j = i; j <= n; ++j) {
      ASSERT_EQ(Read("xyz", kSmallMessage, {i, j}), whole) << "split at " << i << ", " << j;
    }
  }
  std::vector<size_t> every_byte(n);
  for (size_t i = 0; i < n; ++i) every_byte[i] = i;
  EXPECT_EQ(Read("xyz", kSmallMessage, every_byte), whole);
}

TEST(MultipartReaderTest, EverySplitOfAMalformedBodyFailsTheSameWay) {
  const std::string bad = "--xyz\r\n\r\nbody\r\n--xyzQ\r\n\r\n\r\n--xyz--";
  const Outcome whole = Read("xyz", bad);
  ASSERT_FALSE(whole.ok);
  for (size_t i = 0; i <= bad.size(); ++i) {
    ASSERT_EQ(Read("xyz", bad, {i}), whole) << "split at " << i;
  }
}

// A body part of 200 MB, fed in 64 KiB chunks full of near-delimiters: the reader holds back
// at most a delimiter's length, and delivers every byte.
TEST(MultipartReaderTest, MemoryIsBoundedWhateverThePartSize) {
  const std::string boundary = "conduit-boundary-0123456789";
  std::string chunk;
  while (chunk.size() < 64 * 1024) {
    chunk += "\r\n--conduit-boundary-01234";  // a partial delimiter, then ordinary bytes
    chunk += std::string(100, 'p');
    chunk += "\r";
  }
  chunk.resize(64 * 1024);
  constexpr size_t kPartBytes = 200u * 1000 * 1000;
  size_t delivered = 0;
  size_t largest_call = 0;
  MultipartCallbacks callbacks;
  callbacks.on_part_data = [&](std::string_view bytes) {
    delivered += bytes.size();
    largest_call = std::max(largest_call, bytes.size());
    return Status::Ok();
  };
  MultipartReader reader(boundary, callbacks);
  ASSERT_TRUE(reader.Feed("--" + boundary + "\r\nContent-Type: application/dicom\r\n\r\n").ok());
  size_t fed = 0;
  size_t most_buffered = 0;
  while (fed < kPartBytes) {
    const std::string_view piece = std::string_view(chunk).substr(0, kPartBytes - fed);
    ASSERT_TRUE(reader.Feed(piece).ok());
    fed += piece.size();
    most_buffered = std::max(most_buffered, reader.buffered_bytes());
  }
  ASSERT_TRUE(reader.Feed("\r\n--" + boundary + "--\r\n").ok());
  ASSERT_TRUE(reader.Finish().ok());
  EXPECT_EQ(delivered, kPartBytes);
  EXPECT_LE(most_buffered, boundary.size() + 4);
  EXPECT_LT(most_buffered, 4096u);
  EXPECT_LE(largest_call, chunk.size()) << "the reader must not accumulate body bytes";
}

// ---- MultipartWriter ----

TEST(MultipartWriterTest, RandomBoundaryOfAlphanumerics) {
  MultipartWriter a, b;
  EXPECT_GE(a.boundary().size(), 32u);
  EXPECT_TRUE(std::all_of(a.boundary().begin(), a.boundary().end(),
                          [](char c) { return std::isalnum(static_cast<unsigned char>(c)); }));
  EXPECT_NE(a.boundary(), b.boundary());
  Result<MediaType> media = ParseMediaType(a.ContentType("application/dicom"));
  ASSERT_TRUE(media.ok()) << media.status().ToString();
  EXPECT_EQ(media->Parameter("boundary"), a.boundary());
  EXPECT_EQ(media->Parameter("type"), "application/dicom");
}

TEST(MultipartWriterTest, WritesDelimitersHeadersAndClose) {
  MultipartWriter writer("b");
  EXPECT_EQ(writer.ContentType("application/dicom"),
            "multipart/related; type=\"application/dicom\"; boundary=b");
  EXPECT_EQ(writer.PartHeader("application/dicom", {{"Content-Location", "/x"}}),
            "--b\r\nContent-Type: application/dicom\r\nContent-Location: /x\r\n\r\n");
  EXPECT_EQ(writer.PartHeader(""), "\r\n--b\r\n\r\n");
  EXPECT_EQ(writer.Close(), "\r\n--b--\r\n");
  EXPECT_EQ(MultipartWriter("b").Close(), "--b--\r\n");
  EXPECT_EQ(MultipartWriter("a b").ContentType("x/y"),
            "multipart/related; type=\"x/y\"; boundary=\"a b\"");
}

// Random binary parts (rich in CR, LF, '-' and pieces of the boundary) with random headers,
// written then read back in random chunks: the same parts come out.
TEST(MultipartWriterTest, RoundTripOfRandomPartsThroughTheReader) {
  std::mt19937 random(20240611);
  auto uniform = [&](size_t lo, size_t hi) {
    return std::uniform_int_distribution<size_t>(lo, hi)(random);
  };
  for (int iteration = 0; iteration < 200; ++iteration) {
    MultipartWriter writer;
    const std::string& boundary = writer.boundary();
    const std::vector<std::string> pieces = {
        "\r", "\n", "-", "--", "\r\n--", boundary.substr(0, uniform(0, boundary.size() - 1))};
    std::vector<Part> parts(uniform(0, 6));
    std::string message = uniform(0, 1) ? "a preamble\r\n" : "";
    for (Part& part : parts) {
      const size_t header_count = uniform(0, 3);
      for (size_t h = 0; h < header_count; ++h) {
        part.headers.push_back({"x-h" + std::to_string(h), std::to_string(uniform(0, 1u << 30))});
      }
      const size_t length = uniform(0, 3) == 0 ? 0 : uniform(1, 3000);
      while (part.body.size() < length) {
        if (uniform(0, 3) == 0) {
          part.body += pieces[uniform(0, pieces.size() - 1)];
        } else {
          part.body.push_back(static_cast<char>(uniform(0, 255)));
        }
      }
      // A body may not hold its message's delimiter (RFC 2046 §5.1.1); random bytes after a
      // boundary prefix can complete one now and then, so such bodies are broken up.
      for (size_t at = part.body.find(boundary); at != std::string::npos;
           at = part.body.find(boundary)) {
        part.body.erase(at, 1);
      }
      part.ended = true;
      const bool typed = uniform(0, 1) == 1;
      Headers written = part.headers;
      if (typed) written.insert(written.begin(), {"content-type", "application/dicom"});
      message += writer.PartHeader(typed ? "application/dicom" : "", part.headers);
      message += part.body;
      part.headers = written;
    }
    message += writer.Close();
    if (uniform(0, 1)) message += "an epilogue";

    std::vector<size_t> cuts;
    for (size_t at = uniform(0, 700); at < message.size(); at += uniform(1, 700)) {
      cuts.push_back(at);
    }
    const Outcome out = Read(boundary, message, cuts);
    ASSERT_TRUE(out.ok) << "iteration " << iteration << ": " << out.error;
    ASSERT_EQ(out.parts, parts) << "iteration " << iteration;
  }
}

}  // namespace
}  // namespace conduit
