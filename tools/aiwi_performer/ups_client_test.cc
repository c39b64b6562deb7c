#include "aiwi_performer/ups_client.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "aiwi_performer/event_channel.h"
#include "http/multipart.h"

namespace conduit::tools {
namespace {

using nlohmann::json;

std::string ReadAll(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A UPS-RS/WADO-RS origin server on 127.0.0.1, port 0, recording what it was asked.
class UpsClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("ups_client_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    auto record = [this](const httplib::Request& req) {
      std::lock_guard lock(mu_);
      requests_.push_back(req);
    };
    server_.Get("/dw/workitems",
                [this, record](const httplib::Request& req, httplib::Response& res) {
                  record(req);
                  if (search_answer_.empty()) {
                    res.status = 204;
                    return;
                  }
                  res.set_content(search_answer_, "application/dicom+json");
                });
    server_.Put("/dw/workitems/([^/]+)/state",
                [this, record](const httplib::Request& req, httplib::Response& res) {
                  record(req);
                  res.status = state_status_;
                });
    server_.Post("/dw/workitems/([^/]+)/subscribers/([^/]+)",
                 [record](const httplib::Request& req, httplib::Response& res) {
                   record(req);
                   res.status = 201;
                 });
    server_.Post("/dw/workitems/([^/]+)",
                 [record](const httplib::Request& req, httplib::Response& res) { record(req); });
    server_.Get("/dw/studies/(.+)",
                [this, record](const httplib::Request& req, httplib::Response& res) {
                  record(req);
                  if (req.matches[1] == "single") {
                    res.set_content("DICM-single", "application/dicom");
                    return;
                  }
                  if (req.matches[1] == "broken") {
                    res.set_content("--b\r\nContent-Type: application/dicom\r\n\r\nabc",
                                    "multipart/related; type=\"application/dicom\"; boundary=b");
                    return;
                  }
                  if (req.matches[1] != "1.2") {
                    res.status = 404;
                    return;
                  }
                  MultipartWriter writer;
                  // One statement per call: the writer's state depends on the order of the calls.
                  std::string body = writer.PartHeader("application/dicom");
                  body += "first instance";
                  body += writer.PartHeader("application/dicom");
                  body += std::string(100'000, 'x');
                  body += writer.Close();
                  res.set_content(body, writer.ContentType("application/dicom"));
                });
    port_ = server_.bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    for (int i = 0; i < 500 && !server_.is_running(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_TRUE(server_.is_running());
    Result<UpsClient> client = UpsClient::Create(Base(), "secret", std::chrono::seconds(30));
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    client_.emplace(std::move(*client));
  }
  void TearDown() override {
    server_.stop();
    if (thread_.joinable()) thread_.join();
    std::filesystem::remove_all(dir_);
  }

  std::string Base() const { return "http://127.0.0.1:" + std::to_string(port_) + "/dw"; }
  httplib::Request Last() {
    std::lock_guard lock(mu_);
    return requests_.back();
  }

  std::filesystem::path dir_;
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::optional<UpsClient> client_;
  std::string search_answer_;
  int state_status_ = 200;
  std::mutex mu_;
  std::vector<httplib::Request> requests_;
};

TEST_F(UpsClientTest, SearchAsksForScheduledWorkitemsWithTheToken) {
  search_answer_ = R"([{"00080018": {"vr": "UI", "Value": ["1.9"]}}])";
  Result<std::vector<WorkitemSummary>> found = client_->SearchScheduled();
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ((*found)[0].uid, "1.9");
  httplib::Request req = Last();
  EXPECT_EQ(req.get_param_value("ProcedureStepState"), "SCHEDULED");
  EXPECT_EQ(req.get_header_value("Authorization"), "Bearer secret");
  EXPECT_EQ(req.get_header_value("Accept"), "application/dicom+json");
}

TEST_F(UpsClientTest, SearchWithNoContentFindsNothing) {
  Result<std::vector<WorkitemSummary>> found = client_->SearchScheduled();
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_TRUE(found->empty());
}

TEST_F(UpsClientTest, ChangeStatePutsTheBodyAndReturnsAConflictAsAnAnswer) {
  state_status_ = 409;
  Result<HttpAnswer> answer = client_->ChangeState("1.9", StateChangeBody("IN PROGRESS", "2.25.5"));
  ASSERT_TRUE(answer.ok()) << answer.status().ToString();
  EXPECT_EQ(answer->status, 409);
  httplib::Request req = Last();
  EXPECT_EQ(req.method, "PUT");
  EXPECT_EQ(req.path, "/dw/workitems/1.9/state");
  EXPECT_EQ(req.get_header_value("Content-Type"), "application/dicom+json");
  EXPECT_EQ(json::parse(req.body), StateChangeBody("IN PROGRESS", "2.25.5"));
}

TEST_F(UpsClientTest, UpdateCarriesTheTransactionUidAsQueryParameter) {
  Result<HttpAnswer> answer =
      client_->UpdateWorkitem("1.9", "2.25.5", ProgressBody("2.25.5", 50, "half"));
  ASSERT_TRUE(answer.ok()) << answer.status().ToString();
  EXPECT_EQ(answer->status, 200);
  httplib::Request req = Last();
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.path, "/dw/workitems/1.9");
  EXPECT_EQ(req.get_param_value("transaction"), "2.25.5");
  EXPECT_EQ(json::parse(req.body)["00741002"]["Value"][0]["00741004"]["Value"][0], 50);
}

TEST_F(UpsClientTest, GlobalSubscriptionNamesTheWellKnownUidAndTheAeTitle) {
  ASSERT_TRUE(client_->SubscribeGlobal("AI TOOL").ok());
  httplib::Request req = Last();
  EXPECT_EQ(req.path, "/dw/workitems/1.2.840.10008.5.1.4.34.5/subscribers/AI TOOL");
  EXPECT_EQ(req.get_param_value("deletionlock"), "false");
}

TEST_F(UpsClientTest, RetrieveWritesEachPartToAFile) {
  Result<std::vector<std::filesystem::path>> files =
      client_->RetrieveInstances(Base() + "/studies/1.2", dir_);
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  ASSERT_EQ(files->size(), 2u);
  EXPECT_EQ(ReadAll((*files)[0]), "first instance");
  EXPECT_EQ(ReadAll((*files)[1]), std::string(100'000, 'x'));
  httplib::Request req = Last();
  EXPECT_EQ(req.get_header_value("Authorization"), "Bearer secret");
  EXPECT_NE(req.get_header_value("Accept").find("multipart/related"), std::string::npos);
}

TEST_F(UpsClientTest, RetrieveAcceptsASinglePartAndAPathOnTheBase) {
  Result<std::vector<std::filesystem::path>> files =
      client_->RetrieveInstances("/dw/studies/single", dir_);
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  ASSERT_EQ(files->size(), 1u);
  EXPECT_EQ(ReadAll((*files)[0]), "DICM-single");
}

TEST_F(UpsClientTest, RetrieveErrorsAreValues) {
  Result<std::vector<std::filesystem::path>> missing =
      client_->RetrieveInstances(Base() + "/studies/9.9", dir_);
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  Result<std::vector<std::filesystem::path>> broken =
      client_->RetrieveInstances(Base() + "/studies/broken", dir_);
  EXPECT_EQ(broken.status().code(), StatusCode::kInvalidArgument) << broken.status().ToString();
  Result<std::vector<std::filesystem::path>> nobody =
      client_->RetrieveInstances("http://127.0.0.1:1/dw/studies/1.2", dir_);
  EXPECT_EQ(nobody.status().code(), StatusCode::kUnavailable);
  EXPECT_FALSE(client_->RetrieveInstances("ftp://x/y", dir_).ok());
}

TEST(WebSocketUrlTest, ParsesHostPortAndTarget) {
  Result<WebSocketUrl> url = ParseWebSocketUrl("ws://127.0.0.1:8081/ws/subscribers/AI");
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  EXPECT_EQ(url->host, "127.0.0.1");
  EXPECT_EQ(url->port, "8081");
  EXPECT_EQ(url->target, "/ws/subscribers/AI");
  Result<WebSocketUrl> bare = ParseWebSocketUrl("ws://example");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->port, "80");
  EXPECT_EQ(bare->target, "/");
  EXPECT_FALSE(bare->tls);
  Result<WebSocketUrl> secure = ParseWebSocketUrl("wss://gateway.example/ws/subscribers/AI");
  ASSERT_TRUE(secure.ok());
  EXPECT_TRUE(secure->tls);
  EXPECT_EQ(secure->host, "gateway.example");
  EXPECT_EQ(secure->port, "443");
  for (const char* bad :
       {"http://h/x", "https://h/x", "ws://:80/x", "wss://:443/x", "ws://h:/x", "ws://h:8a/x"}) {
    EXPECT_FALSE(ParseWebSocketUrl(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace conduit::tools
