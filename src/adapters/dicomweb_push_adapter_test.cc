// Against a real HTTP server (cpp-httplib on 127.0.0.1) standing in for an AI tool's DICOMweb
// service: it reads the STOW-RS bodies with Conduit's multipart reader, keeps the instances and
// answers as each test scripts it.
#include "adapters/dicomweb_push_adapter.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "adapters/tool_adapter.h"
#include "dicom/instance_meta.h"
#include "http/multipart.h"
#include "testing/fake_stow_server.h"
#include "testing/test_pki.h"
#include "testing/testing.h"

namespace conduit {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;
using testing::TempDir;
using testing::WriteTestDicom;

constexpr const char* kStudy = "1.2.826.0.1.3680043.9.7.200";
constexpr const char* kSeries = "1.2.826.0.1.3680043.9.7.200.1";
constexpr const char* kToken = "tool-secret-token";

// One STOW-RS request as the tool saw it.
struct SeenRequest {
  std::map<std::string, std::string> headers;  // the Conduit-* and Authorization headers
  std::string content_type;
  std::vector<std::string> sop_instance_uids;  // of the parts, read back as DICOM
  Status parse;                                // the multipart reader's verdict
};

// How the tool answers STOW-RS.
enum class Answer { kStore, kUnavailable, kConflict, kPartial, kDuplicates, kHang };

// The tool's TLS: its certificate and key, and (for mutual TLS) the CAs its clients' certificates
// must chain to. No certificate: plain HTTP.
struct FakeToolTls {
  fs::path certificate;
  fs::path key;
  fs::path client_ca;
};

class FakeDicomwebTool {
 public:
  explicit FakeDicomwebTool(fs::path dir, const FakeToolTls& tls = {})
      : dir_(std::move(dir)), tls_(!tls.certificate.empty()) {
    if (tls_) {
      server_ = std::make_unique<httplib::SSLServer>(
          tls.certificate.c_str(), tls.key.c_str(),
          tls.client_ca.empty() ? nullptr : tls.client_ca.c_str());
    } else {
      server_ = std::make_unique<httplib::Server>();
    }
    EXPECT_TRUE(server_->is_valid());
    httplib::Server& server = *server_;
    fs::create_directories(dir_);
    server.Post("/dicom-web/studies",
                [this](const httplib::Request& req, httplib::Response& res,
                       const httplib::ContentReader& reader) { Stow(req, res, reader); });
    server.Get(R"(/dicom-web/studies/([0-9.]+)/instances)",
               [this](const httplib::Request& req, httplib::Response& res) { Qido(req, res); });
    server.Get(R"(/dicom-web/studies/([0-9.]+)/series/([0-9.]+)/instances/([0-9.]+))",
               [this](const httplib::Request& req, httplib::Response& res) { Wado(req, res); });
    server.set_tcp_nodelay(true);
    // Bound and listening on return: connections queue until the thread accepts them.
    port_ = server.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_->listen_after_bind(); });
    // Server::stop() before the accept loop runs would be lost (and the join would hang).
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!server.is_running() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(1ms);
    }
  }
  ~FakeDicomwebTool() {
    {
      std::lock_guard lock(mu_);
      released_ = true;
    }
    cv_.notify_all();
    server_->stop();
    thread_.join();
  }

  std::string url() const {
    return std::string(tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_) +
           "/dicom-web";
  }
  void set_answer(Answer answer) {
    std::lock_guard lock(mu_);
    answer_ = answer;
  }
  std::vector<SeenRequest> requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }
  // A result the tool made: QIDO-RS lists it, WADO-RS returns it.
  void AddResult(const std::string& sop) {
    const fs::path file = dir_ / ("result-" + sop + ".dcm");
    ASSERT_TRUE(WriteTestDicom(file, kStudy, std::string(kSeries) + ".99", sop,
                               testing::kSecondaryCaptureStorage)
                    .ok());
    std::lock_guard lock(mu_);
    held_[sop] = {std::string(kSeries) + ".99", file};
  }
  int wado_requests() {
    std::lock_guard lock(mu_);
    return wado_requests_;
  }

 private:
  struct Held {
    std::string series;
    fs::path file;
  };

  void Stow(const httplib::Request& req, httplib::Response& res,
            const httplib::ContentReader& content_reader) {
    SeenRequest seen;
    for (const char* name : {"Authorization", "Conduit-Job", "Conduit-Chunk", "Conduit-Results-URL",
                             "Conduit-Results-Token"}) {
      if (req.has_header(name)) seen.headers[name] = req.get_header_value(name);
    }
    seen.content_type = req.get_header_value("Content-Type");
    std::vector<fs::path> parts;
    std::ofstream out;
    seen.parse = testing::ReadDicomParts(
        seen.content_type, content_reader,
        {.begin =
             [&] {
               std::lock_guard lock(mu_);
               parts.push_back(dir_ / ("stored-" + std::to_string(++stored_files_) + ".dcm"));
               out.open(parts.back(), std::ios::binary);
             },
         .data =
             [&](std::string_view bytes) {
               out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
             },
         .end = [&] { out.close(); }});
    for (const fs::path& part : parts) {
      auto meta = ReadInstanceMeta(part);
      seen.sop_instance_uids.push_back(meta.ok() ? meta->sop_instance_uid.str() : "unreadable");
      if (meta.ok()) {
        std::lock_guard lock(mu_);
        held_[meta->sop_instance_uid.str()] = {meta->series_uid.str(), part};
      }
    }
    Answer answer;
    {
      std::unique_lock lock(mu_);
      requests_.push_back(seen);
      answer = answer_;
      if (answer == Answer::kHang) cv_.wait_for(lock, 60s, [this] { return released_; });
    }
    json referenced = json::array();
    json failed = json::array();
    for (size_t i = 0; i < seen.sop_instance_uids.size(); ++i) {
      json item = {{"00081155", {{"vr", "UI"}, {"Value", {seen.sop_instance_uids[i]}}}}};
      const bool fails = answer == Answer::kConflict || answer == Answer::kDuplicates ||
                         (answer == Answer::kPartial && i == 0);
      if (fails) {
        const int reason = answer == Answer::kDuplicates ? 0x0111 : 0xA900;
        item["00081197"] = {{"vr", "US"}, {"Value", {reason}}};
        failed.push_back(item);
      } else {
        referenced.push_back(item);
      }
    }
    json body = json::object();
    if (!referenced.empty()) body["00081199"] = {{"vr", "SQ"}, {"Value", referenced}};
    if (!failed.empty()) body["00081198"] = {{"vr", "SQ"}, {"Value", failed}};
    switch (answer) {
      case Answer::kUnavailable:
        res.status = 503;
        res.set_content("try later", "text/plain");
        return;
      case Answer::kConflict:
      case Answer::kDuplicates:
        res.status = 409;
        break;
      case Answer::kPartial:
        res.status = 202;
        break;
      case Answer::kStore:
      case Answer::kHang:
        res.status = 200;
        break;
    }
    res.set_content(body.dump(), "application/dicom+json");
  }

  void Qido(const httplib::Request& req, httplib::Response& res) {
    if (req.get_header_value("Authorization") != std::string("Bearer ") + kToken) {
      res.status = 401;
      return;
    }
    json list = json::array();
    std::lock_guard lock(mu_);
    for (const auto& [sop, held] : held_) {
      list.push_back({{"00080018", {{"vr", "UI"}, {"Value", {sop}}}},
                      {"0020000E", {{"vr", "UI"}, {"Value", {held.series}}}}});
    }
    if (list.empty()) {
      res.status = 204;
      return;
    }
    res.set_content(list.dump(), "application/dicom+json");
  }

  void Wado(const httplib::Request& req, httplib::Response& res) {
    std::lock_guard lock(mu_);
    ++wado_requests_;
    auto it = held_.find(req.matches[3]);
    if (it == held_.end() || it->second.series != req.matches[2]) {
      res.status = 404;
      return;
    }
    std::ifstream in(it->second.file, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    MultipartWriter writer;
    std::string body = writer.PartHeader("application/dicom");  // before Close(): it knows
    body += bytes;
    body += writer.Close();
    res.set_content(body, writer.ContentType("application/dicom"));
  }

  const fs::path dir_;
  const bool tls_;
  std::unique_ptr<httplib::Server> server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;
  Answer answer_ = Answer::kStore;
  std::vector<SeenRequest> requests_;
  std::map<std::string, Held> held_;
  int stored_files_ = 0;
  int wado_requests_ = 0;
};

class DicomwebPushAdapterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tokens = JobTokens::FromSecret(std::string(32, 'k'));
    ASSERT_TRUE(tokens.ok());
    tokens_.emplace(std::move(tokens).value());
    tool_ = std::make_unique<FakeDicomwebTool>(tmp_.path() / "tool");
    fs::create_directories(tmp_.path() / "inputs");
    for (int i = 1; i <= 5; ++i) {
      const fs::path file = tmp_.path() / "inputs" / (std::to_string(i) + ".dcm");
      ASSERT_TRUE(WriteTestDicom(file, kStudy, kSeries, Sop(i)).ok());
      request_.inputs.push_back(file);
    }
    request_.job.id = JobId{42};
    request_.job.study_uid = StudyUid(kStudy);
    request_.work_dir = tmp_.path() / "work";
    fs::create_directories(request_.work_dir);
    request_.log_file = tmp_.path() / "job.log";
    {
      std::ofstream token(tmp_.path() / "tool.token");
      token << kToken << "\n";
    }
    config_.name = "web-tool";
    config_.kind = ToolKind::kDicomweb;
    config_.url = tool_->url();
    config_.auth_token_file = tmp_.path() / "tool.token";
    config_.timeout = 60s;
  }

  static std::string Sop(int i) { return std::string(kSeries) + "." + std::to_string(i); }

  Result<DispatchOutcome> Dispatch() {
    return MakeDicomwebPushAdapter(config_, "https://conduit.example:8443/", *tokens_)
        ->Dispatch(request_);
  }

  std::string JobLog() {
    std::ifstream in(request_.log_file);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }

  // Replaces the tool by one speaking https with `certificate` and `key` (and, when
  // `client_ca` is given, wanting a client certificate that chains to it).
  void UseHttpsTool(const fs::path& certificate, const fs::path& key,
                    const fs::path& client_ca = {}) {
    tool_.reset();
    tool_ = std::make_unique<FakeDicomwebTool>(tmp_.path() / "tls-tool",
                                               FakeToolTls{certificate, key, client_ca});
    config_.url = tool_->url();
  }

  // Dispatches to the https tool, which must refuse: the status, checked to be kUnavailable
  // with nothing stored by the tool.
  Status RefusedOverTls() {
    Result<DispatchOutcome> outcome = Dispatch();
    EXPECT_FALSE(outcome.ok());
    if (outcome.ok()) return Status::Ok();
    EXPECT_EQ(outcome.status().code(), StatusCode::kUnavailable) << outcome.status().ToString();
    EXPECT_TRUE(tool_->requests().empty()) << "the study must not reach an unverified peer";
    return outcome.status();
  }

  TempDir tmp_;
  testing::TestPki pki_ = [this] {
    Result<testing::TestPki> pki = testing::MakeTestPki(tmp_.path());
    EXPECT_TRUE(pki.ok()) << pki.status().ToString();
    return pki.ok() ? *pki : testing::TestPki{};
  }();
  std::optional<JobTokens> tokens_;
  std::unique_ptr<FakeDicomwebTool> tool_;
  DispatchRequest request_;
  ToolConfig config_;
};

TEST_F(DicomwebPushAdapterTest, SendsASmallStudyInOneRequestWithTheConduitHeaders) {
  Result<DispatchOutcome> outcome = Dispatch();
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_TRUE(outcome->results_pending);
  EXPECT_TRUE(outcome->result_files.empty());

  const std::vector<SeenRequest> requests = tool_->requests();
  ASSERT_EQ(requests.size(), 1u);
  const SeenRequest& seen = requests[0];
  EXPECT_TRUE(seen.parse.ok()) << seen.parse.ToString();
  EXPECT_NE(seen.content_type.find("multipart/related; type=\"application/dicom\"; boundary="),
            std::string::npos)
      << seen.content_type;
  EXPECT_EQ(seen.sop_instance_uids,
            (std::vector<std::string>{Sop(1), Sop(2), Sop(3), Sop(4), Sop(5)}));
  EXPECT_EQ(seen.headers.at("Authorization"), std::string("Bearer ") + kToken);
  EXPECT_EQ(seen.headers.at("Conduit-Job"), "42");
  EXPECT_EQ(seen.headers.at("Conduit-Chunk"), "1/1");
  EXPECT_EQ(seen.headers.at("Conduit-Results-URL"),
            "https://conduit.example:8443/dicom-web/jobs/42");
  EXPECT_TRUE(tokens_->Verify(JobId{42}, seen.headers.at("Conduit-Results-Token")));
  EXPECT_FALSE(tokens_->Verify(JobId{43}, seen.headers.at("Conduit-Results-Token")));

  const std::string log = JobLog();
  EXPECT_NE(log.find("STOW-RS 1/1: 5 instance(s)"), std::string::npos) << log;
  EXPECT_NE(log.find("HTTP 200, 5 stored, 0 failed"), std::string::npos) << log;
  EXPECT_EQ(log.find(kSeries), std::string::npos) << "no UIDs in the job log";
  EXPECT_EQ(log.find(kToken), std::string::npos) << "no token in the job log";
}

TEST_F(DicomwebPushAdapterTest, AStudyOverChunkBytesGoesInSeveralRequestsOfWholeInstances) {
  const uint64_t size = fs::file_size(request_.inputs[0]);
  config_.chunk_bytes = 2 * size + size / 2;  // two instances per request
  config_.auth_token_file.clear();
  Result<DispatchOutcome> outcome = Dispatch();
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();

  const std::vector<SeenRequest> requests = tool_->requests();
  ASSERT_EQ(requests.size(), 3u);
  std::vector<std::string> all;
  for (size_t i = 0; i < requests.size(); ++i) {
    EXPECT_TRUE(requests[i].parse.ok()) << requests[i].parse.ToString();
    EXPECT_EQ(requests[i].headers.at("Conduit-Chunk"), std::to_string(i + 1) + "/3");
    EXPECT_EQ(requests[i].headers.count("Authorization"), 0u) << "no token file: no header";
    all.insert(all.end(), requests[i].sop_instance_uids.begin(),
               requests[i].sop_instance_uids.end());
  }
  EXPECT_EQ(requests[0].sop_instance_uids.size(), 2u);
  EXPECT_EQ(requests[2].sop_instance_uids.size(), 1u);
  EXPECT_EQ(all, (std::vector<std::string>{Sop(1), Sop(2), Sop(3), Sop(4), Sop(5)}));
}

TEST_F(DicomwebPushAdapterTest, ServerErrorIsUnavailable) {
  tool_->set_answer(Answer::kUnavailable);
  Result<DispatchOutcome> outcome = Dispatch();
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.status().code(), StatusCode::kUnavailable) << outcome.status().ToString();
  EXPECT_NE(JobLog().find("HTTP 503"), std::string::npos);
}

TEST_F(DicomwebPushAdapterTest, ConnectionRefusedIsUnavailable) {
  config_.url = "http://127.0.0.1:" + std::to_string(testing::FreePort()) + "/dicom-web";
  Result<DispatchOutcome> outcome = Dispatch();
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.status().code(), StatusCode::kUnavailable) << outcome.status().ToString();
}

TEST_F(DicomwebPushAdapterTest, ConflictWithFailedSopSequenceIsNotRetried) {
  tool_->set_answer(Answer::kConflict);
  Result<DispatchOutcome> outcome = Dispatch();
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.status().code(), StatusCode::kInvalidArgument) << outcome.status().ToString();
  EXPECT_NE(outcome.status().message().find("refused 5 of 5 instance(s) (HTTP 409"),
            std::string::npos)
      << outcome.status().message();
  EXPECT_NE(outcome.status().message().find("0xA900 (data set does not match SOP class) x5"),
            std::string::npos)
      << outcome.status().message();
  EXPECT_EQ(outcome.status().message().find(kSeries), std::string::npos) << "no UIDs";
}

TEST_F(DicomwebPushAdapterTest, PartialStoreIsNotRetriedAndSaysHowManyFailed) {
  tool_->set_answer(Answer::kPartial);
  Result<DispatchOutcome> outcome = Dispatch();
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.status().code(), StatusCode::kInvalidArgument) << outcome.status().ToString();
  EXPECT_NE(outcome.status().message().find("refused 1 of 5 instance(s) (HTTP 202"),
            std::string::npos)
      << outcome.status().message();
}

TEST_F(DicomwebPushAdapterTest, DuplicatesOfAnEarlierSendCountAsStored) {
  tool_->set_answer(Answer::kDuplicates);
  Result<DispatchOutcome> outcome = Dispatch();
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_NE(JobLog().find("(5 already held)"), std::string::npos) << JobLog();
}

TEST_F(DicomwebPushAdapterTest, ASilentToolIsADeadlineWithinTheTimeout) {
  tool_->set_answer(Answer::kHang);
  config_.timeout = 1s;
  const auto started = std::chrono::steady_clock::now();
  Result<DispatchOutcome> outcome = Dispatch();
  const auto took = std::chrono::steady_clock::now() - started;
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.status().code(), StatusCode::kDeadlineExceeded) << outcome.status().ToString();
  EXPECT_LT(took, 30s) << "the tool hangs for 60 s; the timeout is 1 s";
}

TEST_F(DicomwebPushAdapterTest, ShutdownStopsARequestInFlight) {
  tool_->set_answer(Answer::kHang);
  std::stop_source stop;
  request_.stop = stop.get_token();
  std::jthread stopper([&stop](std::stop_token) {
    std::this_thread::sleep_for(300ms);  // lets the request reach the tool; any value works
    stop.request_stop();
  });
  const auto started = std::chrono::steady_clock::now();
  Result<DispatchOutcome> outcome = Dispatch();
  const auto took = std::chrono::steady_clock::now() - started;
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.status().code(), StatusCode::kUnavailable) << outcome.status().ToString();
  EXPECT_NE(outcome.status().message().find("shutting down"), std::string::npos);
  EXPECT_LT(took, 30s) << "the tool hangs for 60 s; the timeout is 60 s";
}

TEST_F(DicomwebPushAdapterTest, AnUnreadableTokenFileIsAConfigurationError) {
  config_.auth_token_file = tmp_.path() / "missing.token";
  Result<DispatchOutcome> outcome = Dispatch();
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(tool_->requests().empty());
}

TEST_F(DicomwebPushAdapterTest, WithoutAResultsUrlOnlyAPolledToolIsSentTo) {
  Result<DispatchOutcome> outcome =
      MakeDicomwebPushAdapter(config_, "", *tokens_)->Dispatch(request_);
  EXPECT_EQ(outcome.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(tool_->requests().empty());

  config_.poll_interval = 30s;
  outcome = MakeDicomwebPushAdapter(config_, "", *tokens_)->Dispatch(request_);
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  ASSERT_EQ(tool_->requests().size(), 1u);
  EXPECT_EQ(tool_->requests()[0].headers.count("Conduit-Results-URL"), 0u);
}

TEST_F(DicomwebPushAdapterTest, PollingFetchesOnlyNewInstances) {
  config_.poll_interval = 30s;
  auto adapter = MakeDicomwebPushAdapter(config_, "http://127.0.0.1:8080", *tokens_);
  Result<std::vector<fs::path>> none = adapter->PollResults(request_);
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_TRUE(none->empty()) << "the tool holds nothing yet";

  ASSERT_TRUE(adapter->Dispatch(request_).ok());
  none = adapter->PollResults(request_);
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_TRUE(none->empty()) << "the tool holds only our inputs";
  EXPECT_EQ(tool_->wado_requests(), 0) << "inputs are never fetched back";

  tool_->AddResult("2.25.1234567");
  tool_->AddResult("2.25.7654321");
  Result<std::vector<fs::path>> fetched = adapter->PollResults(request_);
  ASSERT_TRUE(fetched.ok()) << fetched.status().ToString();
  ASSERT_EQ(fetched->size(), 2u);
  std::set<std::string> sops;
  for (const fs::path& file : *fetched) {
    EXPECT_EQ(file.parent_path(), request_.work_dir / "polled");
    auto meta = ReadInstanceMeta(file);
    ASSERT_TRUE(meta.ok()) << meta.status().ToString();
    EXPECT_EQ(meta->study_uid.str(), kStudy);
    sops.insert(meta->sop_instance_uid.str());
  }
  EXPECT_EQ(sops, (std::set<std::string>{"2.25.1234567", "2.25.7654321"}));

  // Once the engine holds them, they are not fetched again.
  request_.received_results = {SopInstanceUid("2.25.1234567"), SopInstanceUid("2.25.7654321")};
  const int wado_before = tool_->wado_requests();
  Result<std::vector<fs::path>> again = adapter->PollResults(request_);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(again->empty());
  EXPECT_EQ(tool_->wado_requests(), wado_before);
}

TEST_F(DicomwebPushAdapterTest, PollingAToolThatIsDownIsUnavailable) {
  config_.url = "http://127.0.0.1:" + std::to_string(testing::FreePort()) + "/dicom-web";
  Result<std::vector<fs::path>> polled =
      MakeDicomwebPushAdapter(config_, "", *tokens_)->PollResults(request_);
  ASSERT_FALSE(polled.ok());
  EXPECT_EQ(polled.status().code(), StatusCode::kUnavailable) << polled.status().ToString();
}

TEST_F(DicomwebPushAdapterTest, AnHttpsToolSignedByTheTrustsCaReceivesTheStudy) {
  UseHttpsTool(pki_.server_certificate, pki_.server_key);
  config_.tls.ca_file = pki_.ca_certificate;
  Result<DispatchOutcome> outcome = Dispatch();
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  const std::vector<SeenRequest> requests = tool_->requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].sop_instance_uids.size(), 5u);
  EXPECT_EQ(requests[0].headers.at("Authorization"), std::string("Bearer ") + kToken);
}

TEST_F(DicomwebPushAdapterTest, ACertificateFromAnotherCaIsRefusedAndSaysWhy) {
  UseHttpsTool(pki_.server_certificate, pki_.server_key);
  config_.tls.ca_file = pki_.other_ca_certificate;
  const std::string message = RefusedOverTls().message();
  EXPECT_NE(message.find("was not accepted (unable to get local issuer certificate)"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("dicomweb.tls.ca_file"), std::string::npos) << message;
  EXPECT_NE(JobLog().find("SSLServerVerification"), std::string::npos) << JobLog();
}

TEST_F(DicomwebPushAdapterTest, WithoutACaFileOnlyTheSystemsCasAreTrusted) {
  UseHttpsTool(pki_.server_certificate, pki_.server_key);
  const std::string message = RefusedOverTls().message();
  EXPECT_NE(message.find("was not accepted"), std::string::npos) << message;
}

TEST_F(DicomwebPushAdapterTest, AnExpiredCertificateIsRefused) {
  UseHttpsTool(pki_.expired_server_certificate, pki_.expired_server_key);
  config_.tls.ca_file = pki_.ca_certificate;
  const std::string message = RefusedOverTls().message();
  EXPECT_NE(message.find("(certificate has expired)"), std::string::npos) << message;
}

TEST_F(DicomwebPushAdapterTest, ACertificateForAnotherHostIsRefused) {
  UseHttpsTool(pki_.wrong_name_certificate, pki_.wrong_name_key);
  config_.tls.ca_file = pki_.ca_certificate;
  const std::string message = RefusedOverTls().message();
  EXPECT_NE(message.find("does not name 127.0.0.1"), std::string::npos) << message;
}

TEST_F(DicomwebPushAdapterTest, AToolWantingAClientCertificateGetsTheConfiguredOne) {
  UseHttpsTool(pki_.server_certificate, pki_.server_key, pki_.ca_certificate);
  config_.tls.ca_file = pki_.ca_certificate;
  {
    const std::string message = RefusedOverTls().message();
    EXPECT_NE(message.find("client_certificate_file"), std::string::npos) << message;
  }
  config_.tls.client_certificate_file = pki_.client_certificate;
  config_.tls.client_key_file = pki_.client_key;
  Result<DispatchOutcome> outcome = Dispatch();
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_EQ(tool_->requests().size(), 1u);
}

TEST_F(DicomwebPushAdapterTest, PollingOverHttpsUsesTheSameTls) {
  UseHttpsTool(pki_.server_certificate, pki_.server_key);
  config_.tls.ca_file = pki_.ca_certificate;
  config_.poll_interval = 1s;
  tool_->AddResult("1.2.826.0.1.3680043.9.7.200.1.99.1");
  auto adapter = MakeDicomwebPushAdapter(config_, "", *tokens_);
  Result<std::vector<fs::path>> fetched = adapter->PollResults(request_);
  ASSERT_TRUE(fetched.ok()) << fetched.status().ToString();
  EXPECT_EQ(fetched->size(), 1u);

  config_.tls.ca_file = pki_.other_ca_certificate;
  fetched = MakeDicomwebPushAdapter(config_, "", *tokens_)->PollResults(request_);
  ASSERT_FALSE(fetched.ok());
  EXPECT_EQ(fetched.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(fetched.status().message().find("was not accepted"), std::string::npos)
      << fetched.status().message();
}

}  // namespace
}  // namespace conduit
