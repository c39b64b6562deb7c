// The HTTP side of the AIW-I performer simulator (NON-CLINICAL test tool): UPS-RS requests to
// the Task Manager (PS3.18 chapter 11: search, retrieve, change state, update, subscribe) and
// WADO-RS retrieval of a workitem's inputs into a folder, each with the bearer token.
// One connection per request; every call bounded by the timeout. Thread-compatible: one
// object per thread, or calls serialised by the caller.
#pragma once

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "aiwi_performer/ups_messages.h"
#include "core/status.h"
#include "dicomweb_tool_sim/stow_sender.h"

namespace conduit::tools {

// An HTTP answer whose status the caller interprets (e.g. 409 on a claim: taken by another).
struct HttpAnswer {
  int status = 0;
  std::string body;  // at most the first 4 KiB, for messages
};

class UpsClient {
 public:
  // `base_url`: the UPS-RS service, "http://host:port[/prefix]" (workitems is under it).
  // `token`: sent as "Authorization: Bearer <token>" when not empty (never logged).
  // Errors: kInvalidArgument for a bad URL.
  // `tls`: for https, the CAs trusted and the client certificate presented.
  static Result<UpsClient> Create(const std::string& base_url, std::string token,
                                  std::chrono::seconds timeout, ClientTls tls = {});

  // RAD-81: GET {base}/workitems?ProcedureStepState=SCHEDULED. Errors: kUnavailable without
  // an answer; kFailedPrecondition (kPermissionDenied for 401/403) for another status than
  // 200/204; kInvalidArgument for an unreadable answer.
  Result<std::vector<WorkitemSummary>> SearchScheduled() const;
  // RAD-83: GET {base}/workitems/{uid}. Errors as SearchScheduled's; kNotFound for 404.
  Result<nlohmann::json> RetrieveWorkitem(const std::string& uid) const;
  // RAD-82/85: PUT {base}/workitems/{uid}/state with `body`. Errors: kUnavailable without an
  // answer (any answer, success or not, is returned).
  Result<HttpAnswer> ChangeState(const std::string& uid, const nlohmann::json& body) const;
  // RAD-84: POST {base}/workitems/{uid}?transaction={transaction_uid} with `body`. Errors as
  // ChangeState's.
  Result<HttpAnswer> UpdateWorkitem(const std::string& uid, const std::string& transaction_uid,
                                    const nlohmann::json& body) const;
  // RAD-86: POST {base}/workitems/1.2.840.10008.5.1.4.34.5/subscribers/{ae}?deletionlock=false.
  // Errors: kUnavailable without an answer; kFailedPrecondition for a status other than 2xx.
  Status SubscribeGlobal(const std::string& ae_title) const;

  // WADO-RS: GET `url` (absolute; or a path on the base's server) with Accept
  // multipart/related; type="application/dicom", writing each part to a new file in `dir`
  // (a single application/dicom body is one file). Returns the files, in order.
  // Errors: kUnavailable without an answer; kFailedPrecondition for a status other than 200;
  // kInvalidArgument for a malformed body; kInternal when a file cannot be written.
  Result<std::vector<std::filesystem::path>> RetrieveInstances(
      const std::string& url, const std::filesystem::path& dir) const;

  const std::string& token() const { return token_; }

 private:
  UpsClient(std::string origin, std::string prefix, std::string token, std::chrono::seconds timeout,
            ClientTls tls)
      : origin_(std::move(origin)),
        prefix_(std::move(prefix)),
        token_(std::move(token)),
        timeout_(timeout),
        tls_(std::move(tls)) {}

  struct Target {
    std::string origin;  // scheme://host[:port]
    std::string path;    // with its query
  };
  Result<HttpAnswer> Send(const std::string& method, const Target& target,
                          const std::string& body) const;
  Target OnBase(const std::string& path) const { return {origin_, prefix_ + path}; }

  std::string origin_;
  std::string prefix_;
  std::string token_;
  std::chrono::seconds timeout_;
  ClientTls tls_;
};

// Percent-encodes `text` for a URL path segment or query value (RFC 3986 unreserved kept).
std::string PercentEncode(std::string_view text);

}  // namespace conduit::tools
