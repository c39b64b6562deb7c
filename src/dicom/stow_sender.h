// Storing instances at a DICOMweb server by STOW-RS (PS3.18 §10.5): multipart/related bodies
// streamed from the files (one buffer in memory, never a whole instance), requests split by
// size, and what the server said about each instance. Results go to a PACS this way; the
// DICOMweb push adapter sends studies to tools with the same bodies.
// Thread safety: StowFiles may be called concurrently (each call has its own connection).
#pragma once

#include <httplib.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <stop_token>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/status.h"
#include "dicom/dicomweb_http.h"
#include "http/multipart.h"

namespace conduit {

// The files [begin, end) that one STOW-RS request carries, and their bytes.
struct StowChunk {
  size_t begin = 0;
  size_t end = 0;
  uint64_t bytes = 0;
};

// Splits files of `sizes` bytes, kept in order, into chunks of at most `chunk_bytes` each; a
// file larger than that goes alone. No sizes: no chunks.
std::vector<StowChunk> PlanStowChunks(const std::vector<uint64_t>& sizes, uint64_t chunk_bytes);

// One multipart/related STOW-RS body of `chunk`'s files, produced piecewise for httplib's
// content provider; stops (Provide false) once `watchdog` is cancelled.
class StowBody {
 public:
  StowBody(const std::vector<std::filesystem::path>& files, const std::vector<uint64_t>& sizes,
           const StowChunk& chunk, const HttpWatchdog& watchdog);

  uint64_t length() const { return length_; }
  std::string content_type() const { return writer_.ContentType("application/dicom"); }
  // Why the body stopped short (a file missing, or shorter than when measured), if it did.
  const Status& error() const { return error_; }

  // httplib's ContentProvider: writes the bytes from `offset` on (at most one buffer).
  bool Provide(size_t offset, httplib::DataSink& sink);

 private:
  struct Segment {
    std::string text;            // a part header or the close delimiter, or
    std::filesystem::path file;  // an instance
    uint64_t file_bytes;
  };

  bool SendFileBytes(const Segment& s, httplib::DataSink& sink);
  void Advance(uint64_t n);

  const HttpWatchdog& watchdog_;
  MultipartWriter writer_;
  std::vector<Segment> segments_;
  uint64_t length_ = 0;
  size_t segment_ = 0;
  uint64_t in_segment_ = 0;
  uint64_t position_ = 0;
  std::ifstream file_;
  std::vector<char> buffer_;
  Status error_;
};

// A DICOMweb server to store at.
struct StowTarget {
  std::string url;                            // base URL; requests go to <url>/studies
  std::filesystem::path auth_token_file;      // bearer token, read at each call; empty: none
  TlsClientConfig tls;                        // for an https url
  std::chrono::milliseconds timeout{30'000};  // each request, from connecting to its answer
  uint64_t chunk_bytes = 64ull << 20;         // files per request, by size
  std::string setting;  // the config section, named in messages (e.g. "destinations[pacs]")
};

// Stores `files`, whose SOP Instance UIDs are `sop_instance_uids` (same order), at `target`
// in PlanStowChunks requests, one after another. One status per file:
// - Ok: the server stored it, or already held it (FailureReason 0x0111);
// - kInvalidArgument: refused for good (its FailureReason; or the request refused with a
//   4xx other than those below, or redirected);
// - kUnavailable: worth sending again later: refused for want of resources (0xA7xx), a
//   request that failed (unreachable, TLS, 408, 429, 5xx, 401/403 — a token to fix —, past
//   `timeout`), or not sent after such a failure.
// An instance the answer does not name counts as stored after a 200 (the server stored all
// but those it names failed), kUnavailable after a 202 or a 409 that names others, and
// kInvalidArgument after a 409 that names none.
// Errors (nothing sent): kInvalidArgument for mismatched lists or a malformed url;
// kFailedPrecondition for an unreadable token file or TLS settings that cannot be used;
// kDataLoss when a file cannot be sized.
Result<std::vector<Status>> StowFiles(const StowTarget& target,
                                      const std::vector<std::filesystem::path>& files,
                                      const std::vector<std::string>& sop_instance_uids,
                                      std::stop_token stop = {});

}  // namespace conduit
