#include "dicom/dicomweb_http.h"

#include <pthread.h>

#include <algorithm>
#include <fstream>

#include "core/text_file.h"
#include "http/multipart.h"

namespace conduit {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using std::chrono::steady_clock;

// Connecting never waits longer than this, whatever the caller's time limit.
constexpr auto kMaxConnectTimeout = std::chrono::seconds(30);
constexpr auto kTimeoutBackstop = std::chrono::milliseconds(200);

}  // namespace

HttpWatchdog::HttpWatchdog(httplib::Client& client, std::stop_token stop,
                           steady_clock::time_point deadline)
    : client_(client), stop_(std::move(stop)), deadline_(deadline) {
  thread_ = std::jthread([this](std::stop_token own) { Run(own); });
}

HttpWatchdog::~HttpWatchdog() {
  thread_.request_stop();
  { std::lock_guard lock(mu_); }
  cv_.notify_all();
}

std::chrono::milliseconds HttpWatchdog::Remaining() const {
  return std::max(
      std::chrono::milliseconds(1),
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - steady_clock::now()));
}

void HttpWatchdog::Run(std::stop_token own) {
  pthread_setname_np(pthread_self(), "conduit-dweb-wd");
  std::stop_callback wake(stop_, [this] {
    { std::lock_guard lock(mu_); }
    cv_.notify_all();
  });
  std::unique_lock lock(mu_);
  cv_.wait_until(lock, own, deadline_, [this] { return stop_.stop_requested(); });
  if (own.stop_requested()) return;
  lock.unlock();
  // Shuts the socket of the request in flight; httplib then returns an error from it.
  client_.stop();
}

void ConfigureHttpClient(httplib::Client& client, const std::optional<std::string>& token,
                         const HttpWatchdog& watchdog) {
  const auto remaining = watchdog.Remaining();
  client.set_connection_timeout(std::min<std::chrono::milliseconds>(remaining, kMaxConnectTimeout));
  // httplib's own read and write timeouts are a backstop just past the deadline: the watchdog
  // ends the request at the deadline itself, so that a silent peer always reads as a timeout
  // (rounded down to whole milliseconds, they could fire first and read as a broken link).
  client.set_read_timeout(remaining + kTimeoutBackstop);
  client.set_write_timeout(remaining + kTimeoutBackstop);
  client.set_tcp_nodelay(true);
  client.set_keep_alive(true);
  client.set_follow_location(false);
  if (token) client.set_bearer_token_auth(*token);
}

Result<std::optional<std::string>> ReadBearerTokenFile(const fs::path& file,
                                                       const std::string& what,
                                                       const std::string& setting) {
  if (file.empty()) return std::optional<std::string>();
  Result<std::string> text = ReadTextFile(file, "auth token file");
  if (!text.ok()) return FailedPrecondition(what + ": " + setting + ": " + text.status().message());
  std::string token = *text;
  const auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!token.empty() && is_space(token.back())) token.pop_back();
  size_t lead = 0;
  while (lead < token.size() && is_space(token[lead])) ++lead;
  token.erase(0, lead);
  const bool printable = std::all_of(token.begin(), token.end(), [](char c) {
    return static_cast<unsigned char>(c) > 0x20 && static_cast<unsigned char>(c) < 0x7f;
  });
  if (token.empty() || !printable) {
    return FailedPrecondition(what + ": " + setting + " " + file.string() +
                              " must hold one token of printable characters");
  }
  return std::optional<std::string>(std::move(token));
}

bool IsUidText(std::string_view s) {
  return !s.empty() && s.size() <= 64 &&
         std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
}

WadoFetch FetchDicomParts(httplib::Client& client, const std::string& path, const std::string& what,
                          const std::function<fs::path()>& next_file) {
  WadoFetch fetch;
  std::optional<MultipartReader> reader;
  std::ofstream out;
  bool single_part = false;
  auto open_next = [&]() -> Status {
    const fs::path file = next_file();
    out.close();
    out.clear();
    out.open(file, std::ios::binary | std::ios::trunc);
    if (!out) return ErrnoStatus(errno, what + ": create " + file.string());
    fetch.files.push_back(file);
    return Status::Ok();
  };
  auto write = [&](std::string_view bytes) -> Status {
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) return ErrnoStatus(errno, what + ": write " + fetch.files.back().string());
    fetch.bytes += bytes.size();
    return Status::Ok();
  };
  auto on_response = [&](const httplib::Response& res) {
    fetch.http_status = res.status;
    if (res.status != 200) return false;
    Result<MediaType> media = ParseMediaType(res.get_header_value("Content-Type"));
    if (!media.ok()) {
      fetch.error = InvalidArgument(what + ": WADO-RS answer without a valid Content-Type");
      fetch.malformed = true;
      return false;
    }
    if (media->type == "application" && media->subtype == "dicom") {
      single_part = true;  // not PS3.18, but some servers answer so
      fetch.error = open_next();
      return fetch.error.ok();
    }
    std::optional<std::string_view> boundary = media->Parameter("boundary");
    if (media->type != "multipart" || media->subtype != "related" || !boundary) {
      fetch.error = InvalidArgument(what + ": WADO-RS answer is " + media->type + "/" +
                                    media->subtype + ", not multipart/related with a boundary");
      fetch.malformed = true;
      return false;
    }
    MultipartCallbacks callbacks;
    callbacks.on_part_begin = [&](const std::vector<HeaderField>&) { return open_next(); };
    callbacks.on_part_data = write;
    callbacks.on_part_end = [&]() -> Status {
      out.close();
      if (!out) return ErrnoStatus(errno, what + ": close " + fetch.files.back().string());
      return Status::Ok();
    };
    reader.emplace(std::string(*boundary), std::move(callbacks));
    return true;
  };
  auto on_data = [&](const char* data, size_t length) {
    if (single_part) {
      fetch.error = write(std::string_view(data, length));
      return fetch.error.ok();
    }
    if (!reader) return false;
    Status st = reader->Feed(std::string_view(data, length));
    if (!st.ok()) {
      fetch.malformed = st.code() == StatusCode::kInvalidArgument;
      fetch.error = st.WithContext(what + ": WADO-RS");
    }
    return st.ok();
  };
  httplib::Result res = client.Get(
      path,
      httplib::Headers{
          {"Accept", "multipart/related; type=\"application/dicom\"; transfer-syntax=*"}},
      on_response, on_data);
  if (!res) fetch.transport = res.error();
  if (fetch.http_status == 200 && fetch.error.ok() && res) {
    if (single_part) {
      out.close();
      if (!out) fetch.error = ErrnoStatus(errno, what + ": close " + fetch.files.back().string());
    } else {
      Status st = reader ? reader->Finish() : InvalidArgument(what + ": WADO-RS: no body");
      if (!st.ok()) {
        fetch.malformed = true;
        fetch.error = st.WithContext(what + ": WADO-RS");
      }
    }
  }
  if (!fetch.ok()) {
    out.close();
    for (const fs::path& f : fetch.files) {
      std::error_code ec;
      fs::remove(f, ec);
    }
    fetch.files.clear();
  }
  return fetch;
}

}  // namespace conduit
