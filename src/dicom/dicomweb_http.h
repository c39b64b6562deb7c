// Pieces of Conduit's DICOMweb clients (cpp-httplib) — the DICOMweb push adapter, the PACS
// query/retrieve client and the STOW-RS sender: a watchdog that ends a request at its deadline
// or on stop, client set-up, the bearer token file, and WADO-RS answers (multipart/related of
// application/dicom) streamed into files.
#pragma once

#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/status.h"
#include "dicom/dicom_json_read.h"

namespace conduit {

// Ends the client's request in flight when `stop` is requested or the deadline passes, so a
// silent or trickling server cannot hold the caller beyond its time. Owns one thread
// ("conduit-dweb-wd"), joined on destruction.
class HttpWatchdog {
 public:
  HttpWatchdog(httplib::Client& client, std::stop_token stop,
               std::chrono::steady_clock::time_point deadline);
  ~HttpWatchdog();
  HttpWatchdog(const HttpWatchdog&) = delete;
  HttpWatchdog& operator=(const HttpWatchdog&) = delete;

  bool Stopping() const { return stop_.stop_requested(); }
  bool Expired() const { return std::chrono::steady_clock::now() >= deadline_; }
  // Shutdown or deadline: no request may start, a running one is being ended.
  bool Cancelled() const { return Stopping() || Expired(); }
  // Time left before the deadline (at least 1 ms).
  std::chrono::milliseconds Remaining() const;

 private:
  void Run(std::stop_token own);

  httplib::Client& client_;
  std::stop_token stop_;
  const std::chrono::steady_clock::time_point deadline_;
  std::mutex mu_;
  std::condition_variable_any cv_;
  std::jthread thread_;
};

// Timeouts from the watchdog's remaining time (connecting at most 30 s), TCP_NODELAY,
// keep-alive, no redirects followed, and the bearer token if any.
void ConfigureHttpClient(httplib::Client& client, const std::optional<std::string>& token,
                         const HttpWatchdog& watchdog);

// The bearer token held in `file`, read at each use so that a rotated token takes effect at
// once; nullopt for an empty path. `setting` names the config key in messages.
// Errors: kFailedPrecondition if unreadable, empty or not one printable token.
Result<std::optional<std::string>> ReadBearerTokenFile(const std::filesystem::path& file,
                                                       const std::string& what,
                                                       const std::string& setting);

// A UID as it may appear in a URL path: 1 to 64 digits and dots.
bool IsUidText(std::string_view s);

// What one WADO-RS GET brought.
struct WadoFetch {
  int http_status = 0;  // 0: no response
  httplib::Error transport = httplib::Error::Success;
  // Writing a file, or the answer's Content-Type or multipart body (then `malformed`).
  Status error;
  bool malformed = false;
  std::vector<std::filesystem::path> files;  // one per part, named by `next_file`
  uint64_t bytes = 0;

  bool ok() const {
    return http_status == 200 && transport == httplib::Error::Success && error.ok();
  }
};

// GETs `path` with Accept: multipart/related; type="application/dicom"; transfer-syntax=*
// and streams each part (or a single application/dicom body) into a new file whose path
// `next_file` gives; at most one network buffer is held in memory. Unless ok(), the files
// written are removed and `files` is empty.
WadoFetch FetchDicomParts(httplib::Client& client, const std::string& path, const std::string& what,
                          const std::function<std::filesystem::path()>& next_file);

}  // namespace conduit
