#include "dicomweb_tool_sim/stow_sender.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include "dicomweb_tool_sim/multipart_files.h"
#include "dicomweb_tool_sim/stoppable_sleep.h"

namespace conduit::tools {
namespace {

bool Retryable(int status) {
  return status == 429 || status == 502 || status == 503 || status == 504;
}

}  // namespace

Result<std::pair<std::string, std::string>> SplitUrl(const std::string& url) {
  size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return InvalidArgument("results URL has no scheme");
  std::string scheme = url.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https") {
    return InvalidArgument("results URL scheme must be http or https");
  }
  size_t path_start = url.find('/', scheme_end + 3);
  std::string host = url.substr(0, path_start);
  if (host.size() == scheme_end + 3) return InvalidArgument("results URL has no host");
  std::string path = path_start == std::string::npos ? "" : url.substr(path_start);
  while (!path.empty() && path.back() == '/') path.pop_back();
  return std::make_pair(host, path);
}

Result<int> PostInstances(const ResultsTarget& target,
                          const std::vector<std::filesystem::path>& files,
                          const SendOptions& options, std::stop_token stop) {
  ASSIGN_OR_RETURN(auto url, SplitUrl(target.url));
  const std::string path = url.second + "/studies";
  httplib::Headers headers;
  if (!target.token.empty()) headers.emplace("Authorization", "Bearer " + target.token);
  if (!target.job.empty()) headers.emplace("Conduit-Job", target.job);
  headers.emplace("Accept", "application/dicom+json");

  std::chrono::milliseconds backoff = options.first_backoff;
  std::string last_failure;
  for (int attempt = 1; attempt <= options.attempts; ++attempt) {
    if (attempt > 1) {
      if (!SleepUnlessStopped(backoff, stop)) return Unavailable("results STOW: stopping");
      backoff *= 2;
    }
    ASSIGN_OR_RETURN(MultipartFileBody body, MultipartFileBody::FromFiles(files));
    httplib::Client client(url.first, options.tls.client_certificate, options.tls.client_key);
    client.set_tcp_nodelay(true);
    client.set_connection_timeout(options.timeout);
    client.set_read_timeout(options.timeout);
    client.set_write_timeout(options.timeout);
    if (!options.tls.ca_file.empty()) client.set_ca_cert_path(options.tls.ca_file);
    Status read_status;
    httplib::Result result = client.Post(
        path, headers, body.size(),
        [&body, &read_status](size_t offset, size_t length, httplib::DataSink& sink) {
          read_status = body.Read(offset, length, [&sink](std::string_view bytes) {
            sink.write(bytes.data(), bytes.size());
          });
          return read_status.ok();
        },
        body.content_type());
    if (!read_status.ok()) return read_status;
    if (!result) {
      last_failure =
          "POST " + url.first + path + ": no response (" + httplib::to_string(result.error()) + ")";
      spdlog::warn("results STOW-RS attempt {}: {}", attempt, last_failure);
      continue;
    }
    const int status = result->status;
    if (status == 200 || status == 202) return status;
    last_failure = "POST " + url.first + path + ": HTTP " + std::to_string(status);
    if (status == 401 || status == 403) return PermissionDenied(last_failure);
    if (!Retryable(status)) return FailedPrecondition(last_failure);
    spdlog::warn("results STOW-RS attempt {}: {}", attempt, last_failure);
  }
  return Unavailable(last_failure + " (" + std::to_string(options.attempts) + " attempts)");
}

}  // namespace conduit::tools
