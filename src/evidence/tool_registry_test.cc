#include "evidence/tool_registry.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <random>

#include "store/sqlite_index.h"

namespace conduit {
namespace {

namespace fs = std::filesystem;

constexpr const char* kManifest = R"(name: acme-cxr
vendor: Acme
version: "1.0"
regulatory: {marking: UKCA, class: IIa, notified_body: "0000 Body"}
intended_use:
  condition: pneumothorax
  body_parts: [CHEST]
  population: adults
  setting: emergency department
  user: radiologist
inputs: {modalities: [CR, DX]}
outputs: [triage_score, sr]
protocol: dimse
endpoint: {ae_title: ACMECXR, host: 127.0.0.1, port: 11112}
hosting_region: UK
category: triage
expected_turnaround: 2m
support: {name: Acme desk, email: desk@acme.example}
)";

class ToolRegistryTest : public testing::Test {
 protected:
  ToolRegistryTest() {
    std::random_device rd;
    dir_ = fs::temp_directory_path() /
           ("conduit-registry-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
    auto index = OpenSqliteIndex(dir_ / "index.sqlite");
    EXPECT_TRUE(index.ok()) << index.status().ToString();
    if (index.ok()) index_ = std::move(index).value();
    auto policy = ParsePolicy(R"(policy: {name: test, version: "1"}
tool_categories: {triage: [retain_patient_characteristics]}
)",
                              "p.yaml");
    EXPECT_TRUE(policy.ok()) << policy.status().ToString();
    if (policy.ok()) policy_ = *policy;
  }
  ~ToolRegistryTest() override {
    index_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  ToolManifest Manifest(const std::string& text) {
    auto m = ParseToolManifest(text, "m.yaml");
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return m.ok() ? *m : ToolManifest{};
  }

  fs::path dir_;
  FakeClock clock_;
  Policy policy_;
  std::unique_ptr<Index> index_;
};

TEST_F(ToolRegistryTest, RegistersAuditsAndShowsAManifest) {
  auto added = RegisterTool(*index_, policy_, Manifest(kManifest), "cli", clock_);
  ASSERT_TRUE(added.ok()) << added.status().ToString();
  EXPECT_EQ(*added, PutOutcome::kInserted);
  auto again = RegisterTool(*index_, policy_, Manifest(kManifest), "cli", clock_);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, PutOutcome::kDuplicate);

  auto record = index_->GetTool("acme-cxr", std::nullopt);
  ASSERT_TRUE(record.ok() && record->has_value());
  auto j = nlohmann::json::parse(ToolRecordJson(**record));
  EXPECT_EQ(j["name"], "acme-cxr");
  EXPECT_EQ(j["version"], "1.0");
  EXPECT_EQ(j["hash"], Manifest(kManifest).hash);
  EXPECT_EQ(j["added_at"], "2023-11-14T22:13:20Z");
  EXPECT_TRUE(j["removed_at"].is_null());
  EXPECT_EQ(j["manifest"]["endpoint"]["ae_title"], "ACMECXR");

  auto audit = index_->ListAudit(10, 0);
  ASSERT_TRUE(audit.ok());
  ASSERT_EQ(audit->size(), 1u);
  EXPECT_EQ(audit->front().action, "tool_add");
  EXPECT_EQ(audit->front().actor, "cli");
  auto detail = nlohmann::json::parse(audit->front().detail);
  EXPECT_EQ(detail["tool"], "acme-cxr");
  EXPECT_EQ(detail["manifest_hash"], Manifest(kManifest).hash);
}

TEST_F(ToolRegistryTest, APolicyBreachIsNotRecorded) {
  std::string abroad = kManifest;
  abroad.replace(abroad.find("hosting_region: UK"), 18, "hosting_region: US");
  auto added = RegisterTool(*index_, policy_, Manifest(abroad), "http", clock_);
  EXPECT_EQ(added.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(index_->ListTools(true)->empty());
}

TEST_F(ToolRegistryTest, AChangedManifestNeedsANewVersion) {
  ASSERT_TRUE(RegisterTool(*index_, policy_, Manifest(kManifest), "cli", clock_).ok());
  std::string changed = std::string(kManifest) + "# port moved\n";
  auto same_version = RegisterTool(*index_, policy_, Manifest(changed), "cli", clock_);
  EXPECT_EQ(same_version.status().code(), StatusCode::kAlreadyExists);
  EXPECT_NE(same_version.status().message().find("needs a new version"), std::string::npos);

  changed.replace(changed.find("version: \"1.0\""), 14, "version: \"1.1\"");
  clock_.Advance(std::chrono::seconds(5));
  ASSERT_TRUE(RegisterTool(*index_, policy_, Manifest(changed), "cli", clock_).ok());
  EXPECT_EQ((*index_->GetTool("acme-cxr", std::nullopt))->version, "1.1");

  ASSERT_TRUE(UnregisterTool(*index_, "acme-cxr", "1.1", "cli", clock_).ok());
  EXPECT_EQ((*index_->GetTool("acme-cxr", std::nullopt))->version, "1.0");
  EXPECT_EQ(UnregisterTool(*index_, "acme-cxr", "7", "cli", clock_).code(), StatusCode::kNotFound);
  auto record = index_->GetTool("acme-cxr", std::string("1.1"));
  ASSERT_TRUE(record.ok() && record->has_value());
  auto j = nlohmann::json::parse(ToolRecordJson(**record));
  EXPECT_EQ(j["removed_at"], "2023-11-14T22:13:25Z");
}

}  // namespace
}  // namespace conduit
