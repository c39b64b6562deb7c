// The tool registry over the admin API: /api/tools.
#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "http/admin_server.h"
#include "store/sqlite_index.h"

namespace conduit {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;

// Line 3 is the version; line 11 the protocol.
constexpr const char* kManifest = R"(name: acme-cxr
vendor: Acme
version: "1.0"
regulatory: {marking: CE, class: IIb, notified_body: "0123 Body"}
intended_use:
  condition: pneumothorax
  body_parts: [CHEST]
  population: adults
  setting: emergency department
  user: radiologist
protocol: dimse
inputs: {modalities: [DX]}
outputs: [triage_score]
endpoint: {ae_title: ACMECXR, host: 127.0.0.1, port: 11112}
hosting_region: UK
category: triage
retain: [retain_patient_characteristics]
expected_turnaround: 2m
support: {name: Acme desk, phone: "+44 20 7946 0000"}
)";

std::string Replace(std::string text, const std::string& from, const std::string& to) {
  text.replace(text.find(from), from.size(), to);
  return text;
}

class AdminToolsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device rd;
    dir_ = fs::temp_directory_path() /
           ("conduit-admin-tools-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
    fs::create_directories(dir_);
    auto index = OpenSqliteIndex(dir_ / "index.sqlite");
    ASSERT_TRUE(index.ok()) << index.status().ToString();
    index_ = std::move(*index);
    std::ofstream(dir_ / "policy.yaml") << "policy: {name: test, version: \"1\"}\n"
                                           "tool_categories: {triage: "
                                           "[retain_patient_characteristics]}\n";
    config_.governance.policy_file = dir_ / "policy.yaml";
    config_.http.bind = "127.0.0.1";
    config_.http.port = 0;
    config_.http.threads = 2;
    server_ = MakeAdminServer(AdminContext{.config = config_,
                                           .index = *index_,
                                           .metrics = metrics_,
                                           .clock = clock_,
                                           .refresh_gauges = {},
                                           .health_facts = {}});
    Status started = server_->Start();
    ASSERT_TRUE(started.ok()) << started.ToString();
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    client_->set_connection_timeout(10s);
    client_->set_read_timeout(30s);
  }
  void TearDown() override {
    client_.reset();
    if (server_) server_->Stop();
    server_.reset();
    index_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  httplib::Result Post(const std::string& body) {
    return client_->Post("/api/tools", body, "application/yaml");
  }

  fs::path dir_;
  Config config_;
  Metrics metrics_;
  FakeClock clock_;
  std::unique_ptr<Index> index_;
  std::unique_ptr<AdminServer> server_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(AdminToolsTest, AddListShowAndRemoveAToolVersion) {
  auto added = Post(kManifest);
  ASSERT_TRUE(added);
  EXPECT_EQ(added->status, 201) << added->body;
  json record = json::parse(added->body);
  EXPECT_EQ(record["name"], "acme-cxr");
  EXPECT_EQ(record["version"], "1.0");
  EXPECT_EQ(record["manifest"]["regulatory"]["marking"], "CE");

  auto again = Post(kManifest);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 200) << "the same manifest twice changes nothing";

  clock_.Advance(10s);
  auto newer = Post(Replace(kManifest, "version: \"1.0\"", "version: \"1.1\""));
  ASSERT_TRUE(newer);
  EXPECT_EQ(newer->status, 201) << newer->body;

  auto list = client_->Get("/api/tools");
  ASSERT_TRUE(list);
  EXPECT_EQ(list->status, 200);
  EXPECT_EQ(json::parse(list->body)["tools"].size(), 2u);

  auto latest = client_->Get("/api/tools/acme-cxr");
  ASSERT_TRUE(latest);
  EXPECT_EQ(latest->status, 200);
  EXPECT_EQ(json::parse(latest->body)["version"], "1.1");
  auto old = client_->Get("/api/tools/acme-cxr?version=1.0");
  ASSERT_TRUE(old);
  EXPECT_EQ(json::parse(old->body)["version"], "1.0");

  auto removed = client_->Delete("/api/tools/acme-cxr/1.1");
  ASSERT_TRUE(removed);
  EXPECT_EQ(removed->status, 200) << removed->body;
  EXPECT_FALSE(json::parse(removed->body)["removed_at"].is_null());
  EXPECT_EQ(json::parse(client_->Get("/api/tools/acme-cxr")->body)["version"], "1.0");
  EXPECT_EQ(json::parse(client_->Get("/api/tools")->body)["tools"].size(), 1u);
  EXPECT_EQ(json::parse(client_->Get("/api/tools?include_removed=true")->body)["tools"].size(), 2u);

  auto audit = index_->ListAudit(10, 0);
  ASSERT_TRUE(audit.ok());
  ASSERT_EQ(audit->size(), 3u);
  EXPECT_EQ(audit->front().action, "tool_remove");
  EXPECT_EQ(audit->front().actor, "http");
}

TEST_F(AdminToolsTest, ABadManifestIsRefusedWithItsLine) {
  auto bad = Post(Replace(kManifest, "protocol: dimse", "protocol: smoke-signal"));
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_EQ(json::parse(bad->body)["error"].get<std::string>().rfind(
                "request body:11: protocol: unknown value 'smoke-signal'", 0),
            0u)
      << bad->body;
  auto empty = Post("");
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->status, 400);
  EXPECT_TRUE(index_->ListTools(true)->empty());
}

TEST_F(AdminToolsTest, PolicyBreachesAndChangedManifestsAreConflicts) {
  auto abroad = Post(Replace(kManifest, "hosting_region: UK", "hosting_region: US"));
  ASSERT_TRUE(abroad);
  EXPECT_EQ(abroad->status, 409);
  EXPECT_NE(abroad->body.find("hosted in 'US'"), std::string::npos) << abroad->body;

  ASSERT_EQ(Post(kManifest)->status, 201);
  auto changed = Post(Replace(kManifest, "port: 11112", "port: 11113"));
  ASSERT_TRUE(changed);
  EXPECT_EQ(changed->status, 409);
  EXPECT_NE(changed->body.find("needs a new version"), std::string::npos) << changed->body;
}

TEST_F(AdminToolsTest, TheDpiaOfAManifestIsMarkdownAndRegistersNothing) {
  auto dpia =
      client_->Post("/api/dpia?organisation=Example%20Trust", kManifest, "application/yaml");
  ASSERT_TRUE(dpia);
  EXPECT_EQ(dpia->status, 200) << dpia->body;
  EXPECT_EQ(dpia->get_header_value("Content-Type"), "text/markdown; charset=utf-8");
  EXPECT_NE(dpia->body.find("# Data protection impact assessment: acme-cxr 1.0 (draft)"),
            std::string::npos)
      << dpia->body;
  EXPECT_NE(dpia->body.find("| Organisation | Example Trust |"), std::string::npos);
  EXPECT_NE(dpia->body.find("Retain Patient Characteristics"), std::string::npos);
  EXPECT_TRUE(index_->ListTools(true)->empty()) << "a DPIA registers nothing";

  auto abroad =
      client_->Post("/api/dpia", Replace(kManifest, "hosting_region: UK", "hosting_region: US"),
                    "application/yaml");
  ASSERT_TRUE(abroad);
  EXPECT_EQ(abroad->status, 409);
  auto bad = client_->Post("/api/dpia", "name: [", "application/yaml");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
}

TEST_F(AdminToolsTest, TheDpiaOfARegisteredToolIsThatOfItsManifest) {
  const std::string second = Replace(Replace(kManifest, "version: \"1.0\"", "version: \"2.0\""),
                                     "+44 20 7946 0000", "+44 20 7946 0999");
  ASSERT_EQ(Post(kManifest)->status, 201);
  ASSERT_EQ(Post(second)->status, 201);

  // The version added last, unless ?version= names another; the same text as POST /api/dpia
  // of the manifest it was registered from.
  auto latest = client_->Get("/api/tools/acme-cxr/dpia?organisation=Example%20Trust");
  ASSERT_TRUE(latest);
  EXPECT_EQ(latest->status, 200) << latest->body;
  EXPECT_EQ(latest->get_header_value("Content-Type"), "text/markdown; charset=utf-8");
  EXPECT_EQ(
      latest->body,
      client_->Post("/api/dpia?organisation=Example%20Trust", second, "application/yaml")->body);
  EXPECT_NE(latest->body.find("+44 20 7946 0999"), std::string::npos) << latest->body;
  auto first = client_->Get("/api/tools/acme-cxr/dpia?version=1.0");
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, 200) << first->body;
  EXPECT_EQ(first->body, client_->Post("/api/dpia", kManifest, "application/yaml")->body);

  EXPECT_EQ(client_->Get("/api/tools/nobody/dpia")->status, 404);
  EXPECT_EQ(client_->Get("/api/tools/acme-cxr/dpia?version=9.9")->status, 404);
  EXPECT_EQ(client_->Post("/api/tools/acme-cxr/dpia", "", "text/plain")->status, 405);

  // Under the policy in force now: a tool the policy no longer allows gets no DPIA.
  std::ofstream(dir_ / "policy.yaml") << "policy: {name: test, version: \"2\"}\n";
  auto refused = client_->Get("/api/tools/acme-cxr/dpia");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 409) << refused->body;
  EXPECT_NE(refused->body.find("retain_patient_characteristics"), std::string::npos)
      << refused->body;
}

TEST_F(AdminToolsTest, UnknownToolsAndBadNamesAreRefused) {
  EXPECT_EQ(client_->Get("/api/tools/nobody")->status, 404);
  EXPECT_EQ(client_->Delete("/api/tools/nobody/1.0")->status, 404);
  EXPECT_EQ(client_->Get("/api/tools/a%20b")->status, 400);
  EXPECT_EQ(client_->Get("/api/tools?include_removed=maybe")->status, 400);
  EXPECT_EQ(client_->Put("/api/tools", "", "text/plain")->status, 405);
  httplib::Headers foreign = {{"Origin", "http://evil.example"}};
  EXPECT_EQ(client_->Delete("/api/tools/nobody/1.0", foreign)->status, 403);
}

}  // namespace
}  // namespace conduit
