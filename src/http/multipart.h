// multipart/related (RFC 2046, RFC 2387) for DICOMweb: a Content-Type parser, a streaming
// reader for STOW-RS request bodies of any size in bounded memory, and a writer for WADO-RS
// responses. No I/O and no threads: callers feed bytes and receive callbacks.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace conduit {

// A parsed media type: `multipart/related; type="application/dicom"; boundary=xyz`.
struct MediaType {
  std::string type;     // lower-cased, e.g. "multipart"
  std::string subtype;  // lower-cased, e.g. "related"
  // In order of appearance; names lower-cased, values unquoted and unescaped, case kept.
  std::vector<std::pair<std::string, std::string>> parameters;

  // The value of parameter `name` (matched case-insensitively), or nullopt if absent.
  std::optional<std::string_view> Parameter(std::string_view name) const;
};

// Longest Content-Type value ParseMediaType accepts.
inline constexpr size_t kMaxContentTypeBytes = 8 * 1024;

// Parses a Content-Type field value per RFC 9110 section 8.3 (token "/" token, then
// `; name=token` or `; name="quoted string"` parameters, optional whitespace around ';').
// Errors: kInvalidArgument naming what is wrong and where (empty, over 8 KiB, a bad token or
// quoted string, a parameter given twice).
Result<MediaType> ParseMediaType(std::string_view content_type);

// One header field of a body part; `name` is lower-cased, `value` has no surrounding
// whitespace and folded lines joined by a space.
struct HeaderField {
  std::string name;
  std::string value;
  bool operator==(const HeaderField&) const = default;
};

// The value of the first field named `name` (matched case-insensitively), or nullopt.
std::optional<std::string_view> FindHeader(const std::vector<HeaderField>& fields,
                                           std::string_view name);

// What a MultipartReader reports. Each of the first three may return a non-OK Status to stop
// reading (e.g. the spool is full); Feed returns that Status. Empty functions are skipped.
struct MultipartCallbacks {
  // A part begins, with its header fields (possibly none).
  std::function<Status(const std::vector<HeaderField>& headers)> on_part_begin;
  // The next bytes of the current part's body (never empty; any number of calls per part).
  std::function<Status(std::string_view bytes)> on_part_data;
  // The current part's body is complete.
  std::function<Status()> on_part_end;
  // Reading failed and stopped (malformed input, a limit, a callback's error, or Finish
  // before the close delimiter); called once, with the Status Feed or Finish returns.
  std::function<void(const Status& error)> on_error;
};

struct MultipartLimits {
  size_t max_header_bytes = 16 * 1024;  // one part's header block, blank line included
  size_t max_parts = 100'000;           // parts in one body
};

// Longest boundary MultipartReader accepts (RFC 2046 allows 70; some senders use more).
inline constexpr size_t kMaxBoundaryBytes = 200;

// Status of `boundary` as a multipart boundary: 1 to kMaxBoundaryBytes printable ASCII
// characters (space allowed, not last). Errors: kInvalidArgument saying why.
Status CheckBoundary(std::string_view boundary);

// Streaming reader of a multipart body (RFC 2046 section 5.1.1): the preamble and epilogue are
// ignored; a delimiter is CRLF "--" boundary (the first may come without the CRLF), then
// optional spaces/tabs and CRLF, or "--" for the close delimiter; part headers end at a blank
// line. Part bodies are delivered as they arrive: at most boundary.size() + 4 bytes of a body
// are held back (a possible delimiter), so memory does not grow with part size.
// Not thread-safe; one reader per body.
class MultipartReader {
 public:
  // An invalid boundary (see CheckBoundary) makes the first Feed or Finish fail with it.
  MultipartReader(std::string boundary, MultipartCallbacks callbacks, MultipartLimits limits = {});

  // Consumes the next bytes of the body; any split of the body gives the same callbacks.
  // Errors: kInvalidArgument for malformed input or a limit exceeded (the message names the
  // part); a callback's error as returned. After an error every call returns the same error.
  Status Feed(std::string_view bytes);

  // Declares the end of the body. Errors: kInvalidArgument if the close delimiter was not
  // seen; any earlier error.
  Status Finish();

  // Bytes received but not yet delivered or discarded: a partial header block (at most
  // max_header_bytes) or a possible delimiter (at most boundary.size() + 4).
  size_t buffered_bytes() const;

  // Parts begun so far.
  size_t part_count() const { return parts_; }

 private:
  enum class State {
    kPreamble,       // looking for the first delimiter, discarding bytes
    kAfterBoundary,  // just after "--boundary": "--", padding or CRLF
    kPadding,        // spaces/tabs after the boundary
    kPaddingLf,      // CR seen after the boundary, LF expected
    kCloseDash,      // first '-' of the close delimiter seen
    kHeaders,        // collecting a part's header block
    kBody,           // delivering a part's body, looking for the next delimiter
    kEpilogue,       // after the close delimiter, discarding bytes
    kFailed,
  };

  Status Step(std::string_view& bytes);
  Status ScanForDelimiter(std::string_view& bytes);
  Status ConsumeHeaders(std::string_view& bytes);
  Status DelimiterLineEnd(bool close);
  Status Fail(Status status);
  Status Error(const std::string& what);

  std::string delimiter_;  // CRLF "--" boundary
  MultipartCallbacks callbacks_;
  MultipartLimits limits_;
  State state_ = State::kPreamble;
  // In kPreamble/kBody: the last `matched_` bytes seen equal delimiter_[0, matched_) and are
  // held back. Starts at 2: a virtual CRLF lets the first delimiter come without one.
  size_t matched_ = 2;
  std::string header_block_;
  size_t parts_ = 0;
  bool in_part_ = false;
  Status status_;
  bool error_reported_ = false;  // on_error has been called
};

// Writes a multipart/related body part by part. The boundary is 40 random alphanumerics, so a
// part containing it by chance is not a practical concern (it cannot be checked when
// streaming). Not thread-safe.
class MultipartWriter {
 public:
  MultipartWriter();
  // Uses `boundary`, which must pass CheckBoundary (aborts otherwise: a programming error).
  explicit MultipartWriter(std::string boundary);

  const std::string& boundary() const { return boundary_; }

  // The Content-Type of the whole body: multipart/related; type="<related_type>"; boundary=...
  std::string ContentType(std::string_view related_type) const;

  // The delimiter that starts the next part, its header fields and the blank line; the part's
  // body follows. An empty `content_type` writes no Content-Type field. Header names must be
  // tokens and values free of CR, LF and NUL (aborts otherwise: a programming error).
  std::string PartHeader(std::string_view content_type,
                         const std::vector<HeaderField>& extra_headers = {});

  // The close delimiter, after the last part's body.
  std::string Close();

 private:
  std::string boundary_;
  bool first_part_ = true;
};

}  // namespace conduit
