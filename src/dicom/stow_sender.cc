#include "dicom/stow_sender.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "core/http_url.h"
#include "dicom/http_tls.h"
#include "dicom/stow_response.h"

namespace conduit {
namespace {

namespace fs = std::filesystem;
using std::chrono::steady_clock;

constexpr size_t kSendBufferBytes = 256 * 1024;

// What a request that got no usable answer means for each of its files.
Status RequestFailure(int http_status, const std::string& what, const std::string& setting) {
  const std::string http = "HTTP " + std::to_string(http_status);
  if (http_status == 401 || http_status == 403) {
    return Unavailable(what + ": the server refused our credentials (" + http + "): check " +
                       setting + ".auth_token_file");
  }
  if (http_status == 408 || http_status == 429 || http_status >= 500) {
    return Unavailable(what + ": the server could not take it now (" + http + ")");
  }
  if (http_status >= 300 && http_status < 400) {
    return InvalidArgument(what + ": the server redirects (" + http +
                           "); redirects are not followed: configure the final URL");
  }
  if (http_status == 413) {
    return InvalidArgument(what + ": the request is too large for the server (" + http +
                           "): lower " + setting + ".chunk_bytes");
  }
  return InvalidArgument(what + ": the server refused the request (" + http + ")");
}

// Each file's status from a parsed answer to a request with HTTP status 200, 202 or 409.
void StatusesFromAnswer(const StowResponse& answer, int http_status,
                        const std::vector<std::string>& uids, size_t begin, size_t end,
                        const std::string& what, std::vector<Status>& out) {
  const bool names_none = answer.stored == 0 && answer.failed == 0;
  for (size_t i = begin; i < end; ++i) {
    const std::string& uid = uids[i];
    if (answer.stored_instances.count(uid) > 0) {
      out[i] = Status::Ok();
      continue;
    }
    auto failed = answer.failed_instances.find(uid);
    if (failed != answer.failed_instances.end()) {
      const uint16_t reason = failed->second;
      if (reason == kDuplicateSopInstance) {
        out[i] = Status::Ok();  // held already
      } else if ((reason & 0xFF00) == 0xA700) {
        out[i] = Unavailable(what + ": refused for now, " + DescribeFailureReason(reason));
      } else {
        out[i] = InvalidArgument(what + ": refused, " + DescribeFailureReason(reason));
      }
      continue;
    }
    if (http_status == 200) {
      out[i] = Status::Ok();  // 200: every instance not named failed was stored (PS3.18)
    } else if (names_none && http_status == 409) {
      out[i] = InvalidArgument(what + ": the server refused the request (HTTP 409)");
    } else {
      out[i] = Unavailable(what + ": the server's answer (HTTP " + std::to_string(http_status) +
                           ") does not say whether it stored this instance");
    }
  }
}

}  // namespace

std::vector<StowChunk> PlanStowChunks(const std::vector<uint64_t>& sizes, uint64_t chunk_bytes) {
  std::vector<StowChunk> chunks;
  for (size_t i = 0; i < sizes.size(); ++i) {
    // Every chunk holds at least one file, so an oversized one goes alone.
    if (chunks.empty() || chunks.back().bytes + sizes[i] > chunk_bytes) {
      chunks.push_back(StowChunk{i, i, 0});
    }
    chunks.back().end = i + 1;
    chunks.back().bytes += sizes[i];
  }
  return chunks;
}

StowBody::StowBody(const std::vector<fs::path>& files, const std::vector<uint64_t>& sizes,
                   const StowChunk& chunk, const HttpWatchdog& watchdog)
    : watchdog_(watchdog) {
  for (size_t i = chunk.begin; i < chunk.end; ++i) {
    segments_.push_back(Segment{writer_.PartHeader("application/dicom"), {}, 0});
    segments_.push_back(Segment{{}, files[i], sizes[i]});
  }
  segments_.push_back(Segment{writer_.Close(), {}, 0});
  for (const Segment& s : segments_) length_ += s.file.empty() ? s.text.size() : s.file_bytes;
}

bool StowBody::Provide(size_t offset, httplib::DataSink& sink) {
  if (watchdog_.Cancelled()) return false;
  if (offset != position_) {
    error_ = Internal("STOW-RS body: asked for offset " + std::to_string(offset) + " at position " +
                      std::to_string(position_));
    return false;
  }
  while (segment_ < segments_.size()) {
    Segment& s = segments_[segment_];
    if (s.file.empty()) {
      if (in_segment_ < s.text.size()) {
        const size_t n = s.text.size() - in_segment_;
        if (!sink.write(s.text.data() + in_segment_, n)) return false;
        Advance(n);
        return true;
      }
    } else if (in_segment_ < s.file_bytes) {
      return SendFileBytes(s, sink);
    }
    ++segment_;
    in_segment_ = 0;
    file_.close();
  }
  return true;
}

bool StowBody::SendFileBytes(const Segment& s, httplib::DataSink& sink) {
  if (!file_.is_open()) {
    file_.open(s.file, std::ios::binary);
    if (!file_) {
      error_ = DataLoss("STOW-RS body: cannot open " + s.file.string());
      return false;
    }
  }
  buffer_.resize(kSendBufferBytes);
  const uint64_t want = std::min<uint64_t>(buffer_.size(), s.file_bytes - in_segment_);
  file_.read(buffer_.data(), static_cast<std::streamsize>(want));
  if (static_cast<uint64_t>(file_.gcount()) != want) {
    error_ = DataLoss("STOW-RS body: " + s.file.string() + " is shorter than " +
                      std::to_string(s.file_bytes) + " bytes");
    return false;
  }
  if (!sink.write(buffer_.data(), want)) return false;
  Advance(want);
  return true;
}

void StowBody::Advance(uint64_t n) {
  in_segment_ += n;
  position_ += n;
}

Result<std::vector<Status>> StowFiles(const StowTarget& target, const std::vector<fs::path>& files,
                                      const std::vector<std::string>& sop_instance_uids,
                                      std::stop_token stop) {
  const std::string what = "STOW-RS to " + target.setting;
  if (files.size() != sop_instance_uids.size()) {
    return InvalidArgument(what + ": " + std::to_string(files.size()) + " files but " +
                           std::to_string(sop_instance_uids.size()) + " UIDs");
  }
  ASSIGN_OR_RETURN(HttpUrl url, ParseHttpUrl(target.url));
  ASSIGN_OR_RETURN(
      std::optional<std::string> token,
      ReadBearerTokenFile(target.auth_token_file, what, target.setting + ".auth_token_file"));
  std::vector<uint64_t> sizes;
  sizes.reserve(files.size());
  for (const fs::path& file : files) {
    std::error_code ec;
    const uint64_t size = fs::file_size(file, ec);
    if (ec) return DataLoss(what + ": cannot size " + file.string() + ": " + ec.message());
    sizes.push_back(size);
  }
  const std::string tls_setting = target.setting + ".tls";
  ASSIGN_OR_RETURN(std::unique_ptr<httplib::Client> client,
                   MakeHttpClient(url, target.tls, tls_setting));

  std::vector<Status> statuses(files.size(), Status::Ok());
  const std::vector<StowChunk> chunks = PlanStowChunks(sizes, target.chunk_bytes);
  std::optional<Status> failed;  // a request that failed: the rest are not sent
  for (size_t c = 0; c < chunks.size(); ++c) {
    const StowChunk& chunk = chunks[c];
    const std::string request =
        what + " (request " + std::to_string(c + 1) + " of " + std::to_string(chunks.size()) + ")";
    if (failed) {
      for (size_t i = chunk.begin; i < chunk.end; ++i) {
        statuses[i] = Unavailable(request + ": not sent after an earlier request failed");
      }
      continue;
    }
    HttpWatchdog watchdog(*client, stop, steady_clock::now() + target.timeout);
    ConfigureHttpClient(*client, token, watchdog);
    StowBody body(files, sizes, chunk, watchdog);
    httplib::Result res = client->Post(
        url.path + "/studies", httplib::Headers{{"Accept", "application/dicom+json"}},
        static_cast<size_t>(body.length()),
        [&body](size_t offset, size_t, httplib::DataSink& sink) {
          return body.Provide(offset, sink);
        },
        body.content_type());
    Status request_failed;
    if (!res) {
      if (!body.error().ok() && !watchdog.Cancelled()) {
        request_failed = body.error().WithContext(request);
      } else if (watchdog.Stopping()) {
        request_failed = Unavailable(request + ": stopped because the gateway is shutting down");
      } else if (watchdog.Expired()) {
        request_failed = Unavailable(request + ": no answer within " +
                                     std::to_string(target.timeout.count()) + " ms");
      } else if (const std::string tls = DescribeTlsError(res.error(), *client, url, tls_setting);
                 !tls.empty()) {
        request_failed = Unavailable(request + ": " + tls);
      } else {
        request_failed =
            Unavailable(request + ": " + url.Origin() + ": " + httplib::to_string(res.error()));
      }
    } else if (res->status == 200 || res->status == 202 || res->status == 409) {
      Result<StowResponse> answer = ParseStowResponse(res->body);
      if (answer.ok()) {
        StatusesFromAnswer(*answer, res->status, sop_instance_uids, chunk.begin, chunk.end, request,
                           statuses);
        continue;
      }
      if (res->status == 200) continue;  // success said plainly; the body is not needed
      request_failed =
          res->status == 202
              ? Unavailable(request + ": HTTP 202 (some stored) without a readable answer")
              : InvalidArgument(request + ": HTTP 409 without a readable answer");
    } else if (res->status >= 200 && res->status < 300) {
      continue;  // stored, in the server's own words
    } else {
      request_failed = RequestFailure(res->status, request, target.setting);
    }
    for (size_t i = chunk.begin; i < chunk.end; ++i) statuses[i] = request_failed;
    if (IsRetryable(request_failed.code())) failed = request_failed;
  }
  return statuses;
}

}  // namespace conduit
