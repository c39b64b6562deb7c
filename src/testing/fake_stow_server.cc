#include "testing/fake_stow_server.h"

#include <chrono>
#include <nlohmann/json.hpp>

#include "http/multipart.h"

namespace conduit::testing {
namespace {

using json = nlohmann::json;

json Item(const std::string& uid) {
  return json{{"00081150", {{"vr", "UI"}, {"Value", {"1.2.840.10008.5.1.4.1.1.7"}}}},
              {"00081155", {{"vr", "UI"}, {"Value", {uid}}}}};
}

std::string AnswerBody(const StowAnswer& answer) {
  if (answer.body) return *answer.body;
  if (answer.stored.empty() && answer.failed.empty()) return "";
  json doc = json::object();
  for (const std::string& uid : answer.stored) {
    doc["00081199"]["vr"] = "SQ";
    doc["00081199"]["Value"].push_back(Item(uid));
  }
  for (const auto& [uid, reason] : answer.failed) {
    json item = Item(uid);
    item["00081197"] = {{"vr", "US"}, {"Value", {reason}}};
    doc["00081198"]["vr"] = "SQ";
    doc["00081198"]["Value"].push_back(item);
  }
  return doc.dump();
}

}  // namespace

Status ReadDicomParts(const std::string& content_type, const httplib::ContentReader& content_reader,
                      const DicomPartSink& sink) {
  Result<MediaType> media = ParseMediaType(content_type);
  std::optional<MultipartReader> reader;
  if (media.ok() && media->Parameter("boundary")) {
    MultipartCallbacks callbacks;
    callbacks.on_part_begin = [&](const std::vector<HeaderField>& headers) {
      auto type = FindHeader(headers, "content-type");
      if (!type || *type != "application/dicom") return InvalidArgument("part type");
      sink.begin();
      return Status::Ok();
    };
    callbacks.on_part_data = [&](std::string_view bytes) {
      sink.data(bytes);
      return Status::Ok();
    };
    callbacks.on_part_end = [&] {
      sink.end();
      return Status::Ok();
    };
    reader.emplace(std::string(*media->Parameter("boundary")), std::move(callbacks));
  }
  Status parse;
  content_reader([&](const char* data, size_t length) {
    if (reader && parse.ok()) parse = reader->Feed(std::string_view(data, length));
    return true;
  });
  if (!reader) return InvalidArgument("no multipart boundary");
  return parse.ok() ? reader->Finish() : parse;
}

FakeStowServer::FakeStowServer() {
  server_.Post("/dicom-web/studies",
               [this](const httplib::Request& req, httplib::Response& res,
                      const httplib::ContentReader& reader) { Stow(req, res, reader); });
  port_ = server_.bind_to_any_port("127.0.0.1");
  thread_ = std::thread([this] { server_.listen_after_bind(); });
  // Server::stop() before the accept loop runs would be lost (and the join would hang).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!server_.is_running() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

FakeStowServer::~FakeStowServer() {
  server_.stop();
  thread_.join();
}

std::string FakeStowServer::url() const {
  return "http://127.0.0.1:" + std::to_string(port_) + "/dicom-web";
}

void FakeStowServer::Then(StowAnswer answer) {
  std::lock_guard lock(mu_);
  answers_.push_back(std::move(answer));
}

std::vector<SeenStowRequest> FakeStowServer::requests() {
  std::lock_guard lock(mu_);
  return requests_;
}

void FakeStowServer::Stow(const httplib::Request& req, httplib::Response& res,
                          const httplib::ContentReader& content_reader) {
  SeenStowRequest seen;
  seen.authorization = req.get_header_value("Authorization");
  seen.parse =
      ReadDicomParts(req.get_header_value("Content-Type"), content_reader,
                     {.begin = [&] { seen.parts.emplace_back(); },
                      .data = [&](std::string_view bytes) { seen.parts.back().append(bytes); },
                      .end = [] {}});
  StowAnswer answer;
  {
    std::lock_guard lock(mu_);
    requests_.push_back(seen);
    if (!answers_.empty()) {
      answer = std::move(answers_.front());
      answers_.pop_front();
    }
  }
  res.status = answer.status;
  res.set_content(AnswerBody(answer), "application/dicom+json");
}

}  // namespace conduit::testing
