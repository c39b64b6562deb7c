#include "aiwi_performer/ups_client.h"

#include <httplib.h>

#include <fstream>

#include "dicomweb_tool_sim/stow_sender.h"
#include "http/multipart.h"

namespace conduit::tools {
namespace {

constexpr char kDicomJson[] = "application/dicom+json";
constexpr size_t kKeptBodyBytes = 4096;

std::string Describe(const std::string& method, const std::string& path, int status) {
  return method + " " + path + ": HTTP " + std::to_string(status);
}

Status StatusError(const std::string& what, int status) {
  if (status == 401 || status == 403) return PermissionDenied(what);
  if (status == 404) return NotFound(what);
  return FailedPrecondition(what);
}

std::unique_ptr<httplib::Client> MakeClient(const std::string& origin, std::chrono::seconds timeout,
                                            const ClientTls& tls) {
  auto client = std::make_unique<httplib::Client>(origin, tls.client_certificate, tls.client_key);
  if (!tls.ca_file.empty()) client->set_ca_cert_path(tls.ca_file);
  client->set_tcp_nodelay(true);
  client->set_connection_timeout(timeout);
  client->set_read_timeout(timeout);
  client->set_write_timeout(timeout);
  return client;
}

}  // namespace

std::string PercentEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    }
  }
  return out;
}

Result<UpsClient> UpsClient::Create(const std::string& base_url, std::string token,
                                    std::chrono::seconds timeout, ClientTls tls) {
  Result<std::pair<std::string, std::string>> split = SplitUrl(base_url);
  if (!split.ok()) return split.status().WithContext("UPS-RS base URL");
  return UpsClient(split->first, split->second, std::move(token), timeout, std::move(tls));
}

Result<HttpAnswer> UpsClient::Send(const std::string& method, const Target& target,
                                   const std::string& body) const {
  std::unique_ptr<httplib::Client> client = MakeClient(target.origin, timeout_, tls_);
  httplib::Headers headers = {{"Accept", kDicomJson}};
  if (!token_.empty()) headers.emplace("Authorization", "Bearer " + token_);
  httplib::Result result = method == "GET"   ? client->Get(target.path, headers)
                           : method == "PUT" ? client->Put(target.path, headers, body, kDicomJson)
                                             : client->Post(target.path, headers, body, kDicomJson);
  if (!result) {
    return Unavailable(method + " " + target.origin + ": no answer (" +
                       httplib::to_string(result.error()) + ")");
  }
  HttpAnswer answer;
  answer.status = result->status;
  answer.body = result->body;
  return answer;
}

Result<std::vector<WorkitemSummary>> UpsClient::SearchScheduled() const {
  const Target target = OnBase("/workitems?ProcedureStepState=SCHEDULED");
  ASSIGN_OR_RETURN(HttpAnswer answer, Send("GET", target, ""));
  if (answer.status == 204) return std::vector<WorkitemSummary>{};
  if (answer.status != 200) {
    return StatusError(Describe("GET", target.path, answer.status), answer.status);
  }
  Result<std::vector<WorkitemSummary>> found = ParseSearchResults(answer.body);
  if (!found.ok()) return found.status().WithContext("RAD-81 search");
  return found;
}

Result<nlohmann::json> UpsClient::RetrieveWorkitem(const std::string& uid) const {
  const Target target = OnBase("/workitems/" + PercentEncode(uid));
  ASSIGN_OR_RETURN(HttpAnswer answer, Send("GET", target, ""));
  if (answer.status != 200) {
    return StatusError(Describe("GET", "workitem", answer.status), answer.status);
  }
  Result<nlohmann::json> workitem = ParseWorkitem(answer.body);
  if (!workitem.ok()) return workitem.status().WithContext("RAD-83 retrieve");
  return workitem;
}

Result<HttpAnswer> UpsClient::ChangeState(const std::string& uid,
                                          const nlohmann::json& body) const {
  ASSIGN_OR_RETURN(HttpAnswer answer,
                   Send("PUT", OnBase("/workitems/" + PercentEncode(uid) + "/state"), body.dump()));
  if (answer.body.size() > kKeptBodyBytes) answer.body.resize(kKeptBodyBytes);
  return answer;
}

Result<HttpAnswer> UpsClient::UpdateWorkitem(const std::string& uid,
                                             const std::string& transaction_uid,
                                             const nlohmann::json& body) const {
  const Target target =
      OnBase("/workitems/" + PercentEncode(uid) + "?transaction=" + PercentEncode(transaction_uid));
  ASSIGN_OR_RETURN(HttpAnswer answer, Send("POST", target, body.dump()));
  if (answer.body.size() > kKeptBodyBytes) answer.body.resize(kKeptBodyBytes);
  return answer;
}

Status UpsClient::SubscribeGlobal(const std::string& ae_title) const {
  const Target target = OnBase(std::string("/workitems/") + kUpsGlobalSubscriptionUid +
                               "/subscribers/" + PercentEncode(ae_title) + "?deletionlock=false");
  ASSIGN_OR_RETURN(HttpAnswer answer, Send("POST", target, ""));
  if (answer.status < 200 || answer.status > 299) {
    return StatusError(Describe("POST", target.path, answer.status), answer.status);
  }
  return Status::Ok();
}

Result<std::vector<std::filesystem::path>> UpsClient::RetrieveInstances(
    const std::string& url, const std::filesystem::path& dir) const {
  Target target;
  if (!url.empty() && url.front() == '/') {
    target = {origin_, url};
  } else {
    Result<std::pair<std::string, std::string>> split = SplitUrl(url);
    if (!split.ok()) return split.status().WithContext("WADO-RS Retrieve URL");
    target = {split->first, split->second.empty() ? "/" : split->second};
  }
  std::unique_ptr<httplib::Client> client = MakeClient(target.origin, timeout_, tls_);
  httplib::Headers headers = {
      {"Accept", "multipart/related; type=\"application/dicom\"; transfer-syntax=*"}};
  if (!token_.empty()) headers.emplace("Authorization", "Bearer " + token_);

  std::vector<std::filesystem::path> files;
  std::ofstream part;
  Status failure;
  auto open_part = [&]() -> Status {
    files.push_back(dir / ("input-" + std::to_string(files.size() + 1) + ".dcm"));
    part = std::ofstream(files.back(), std::ios::binary | std::ios::trunc);
    if (!part) return Internal("WADO-RS: cannot create " + files.back().string());
    return Status::Ok();
  };
  auto write = [&](std::string_view bytes) -> Status {
    part.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!part) return Internal("WADO-RS: write to " + files.back().string() + " failed");
    return Status::Ok();
  };
  auto close_part = [&]() -> Status {
    part.close();
    if (!part) return Internal("WADO-RS: write to " + files.back().string() + " failed");
    return Status::Ok();
  };
  MultipartCallbacks callbacks;
  callbacks.on_part_begin = [&](const std::vector<HeaderField>&) { return open_part(); };
  callbacks.on_part_data = write;
  callbacks.on_part_end = close_part;
  std::unique_ptr<MultipartReader> reader;
  bool single_part = false;
  int status = 0;

  httplib::Result result = client->Get(
      target.path, headers,
      [&](const httplib::Response& response) {
        status = response.status;
        if (status != 200) return true;  // the body is read and dropped
        const std::string content_type = response.get_header_value("Content-Type");
        Result<MediaType> media = ParseMediaType(content_type);
        if (!media.ok()) {
          failure = media.status().WithContext("WADO-RS answer Content-Type");
          return false;
        }
        if (media->type == "application" && media->subtype == "dicom") {
          single_part = true;
          failure = open_part();
          return failure.ok();
        }
        std::optional<std::string_view> boundary = media->Parameter("boundary");
        if (media->type != "multipart" || media->subtype != "related" || !boundary) {
          failure = InvalidArgument("WADO-RS answer is " + content_type +
                                    ", not multipart/related with a boundary");
          return false;
        }
        reader = std::make_unique<MultipartReader>(std::string(*boundary), callbacks);
        return true;
      },
      [&](const char* data, size_t size) {
        if (status != 200) return true;
        failure = single_part ? write(std::string_view(data, size))
                              : reader->Feed(std::string_view(data, size));
        return failure.ok();
      });
  if (!failure.ok()) return failure.WithContext("WADO-RS retrieve");
  if (!result) {
    // The path names a study: it is left out of the message.
    return Unavailable("WADO-RS GET on " + target.origin + ": no answer (" +
                       httplib::to_string(result.error()) + ")");
  }
  if (status != 200) return StatusError("WADO-RS GET: HTTP " + std::to_string(status), status);
  if (single_part) {
    RETURN_IF_ERROR(close_part());
  } else if (reader) {
    if (Status s = reader->Finish(); !s.ok()) return s.WithContext("WADO-RS retrieve");
  }
  if (files.empty()) return InvalidArgument("WADO-RS retrieve: the answer held no instance");
  return files;
}

}  // namespace conduit::tools
