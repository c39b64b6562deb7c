// STOW-RS from the DICOMweb tool simulator to the gateway's results endpoint: one
// multipart/related request per study's results, files streamed from disk, with the job's
// bearer token; connection failures and 429/502/503/504 are retried with backoff.
// NON-CLINICAL test tool. Thread safety: functions may be called concurrently.
#pragma once

#include <chrono>
#include <filesystem>
#include <stop_token>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"

namespace conduit::tools {

// Splits "http[s]://host[:port][/prefix]" into ("http[s]://host[:port]", "/prefix" without a
// trailing '/', possibly empty). Errors: kInvalidArgument naming what is wrong.
Result<std::pair<std::string, std::string>> SplitUrl(const std::string& url);

struct ResultsTarget {
  std::string url;    // Conduit-Results-URL: STOW-RS goes to <url>/studies
  std::string token;  // sent as "Authorization: Bearer <token>" (never logged)
  std::string job;    // sent as Conduit-Job when not empty
};

// What a tool trusts and presents over https (and wss).
struct ClientTls {
  std::string ca_file;  // the CAs trusted; empty: the system's
  // The client certificate (PEM, with any intermediates) and its unencrypted key, for a
  // gateway that asks for one (Conduit's http.tls.ca_file); both empty: none.
  std::string client_certificate;
  std::string client_key;
};

struct SendOptions {
  int attempts = 4;
  std::chrono::milliseconds first_backoff{500};  // doubled after each failed attempt
  std::chrono::seconds timeout{60};              // connect, read and write, each
  ClientTls tls;
};

// Posts `files` as one STOW-RS request. Returns the HTTP status (200 or 202).
// Errors: kInvalidArgument for a bad URL; kPermissionDenied on 401/403; kFailedPrecondition
// on another 4xx; kUnavailable when every attempt failed (no connection, a timeout, or
// 429/502/503/504) or `stop` was requested between attempts; kDataLoss if a file changed.
Result<int> PostInstances(const ResultsTarget& target,
                          const std::vector<std::filesystem::path>& files,
                          const SendOptions& options, std::stop_token stop);

}  // namespace conduit::tools
