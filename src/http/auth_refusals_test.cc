#include "http/auth_refusals.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "store/sqlite_index.h"
#include "testing/testing.h"

namespace conduit {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class AuthRefusalsTest : public ::testing::Test {
 protected:
  AuthRefusal Refusal(std::string peer, AuthRefusalKind kind) {
    return {.action = "result_refused",
            .actor = "DICOMWEB",
            .guard = "job",
            .peer = std::move(peer),
            .via = {},
            .method = "POST",
            .route = "/dicom-web/jobs/{id}/studies",
            .reason = kind == AuthRefusalKind::kMissing ? "no bearer token" : "wrong token",
            .kind = kind,
            .job = JobId{7},
            .detail = {{"protocol", "DICOMweb"}}};
  }
  std::vector<AuditEvent> Audited() {
    auto events = index_->ListAudit(100, 0);
    EXPECT_TRUE(events.ok());
    return events.ok() ? *events : std::vector<AuditEvent>{};
  }

  testing::TempDir tmp_;
  std::unique_ptr<Index> index_ = std::move(OpenSqliteIndex(tmp_.path() / "index.sqlite").value());
  Metrics metrics_;
  FakeClock clock_;
  AuthRefusals refusals_;
};

TEST_F(AuthRefusalsTest, CountsEveryRefusalAndAuditsTheFirstOfEachKindAMinute) {
  const TimePoint t0 = clock_.Now();
  for (int i = 0; i < 5; ++i)
    refusals_.Report(Refusal("10.0.0.9", AuthRefusalKind::kMissing), *index_, metrics_,
                     t0 + 1s * i);
  refusals_.Report(Refusal("10.0.0.9", AuthRefusalKind::kInvalid), *index_, metrics_, t0);
  refusals_.Report(Refusal("10.0.0.8", AuthRefusalKind::kMissing), *index_, metrics_, t0);
  EXPECT_EQ(metrics_.Value("conduit_http_auth_refused_total", R"(guard="job",reason="missing")"),
            6);
  EXPECT_EQ(metrics_.Value("conduit_http_auth_refused_total", R"(guard="job",reason="invalid")"),
            1);
  ASSERT_EQ(Audited().size(), 3u) << "per peer and reason";

  refusals_.Report(Refusal("10.0.0.9", AuthRefusalKind::kMissing), *index_, metrics_, t0 + 61s);
  const std::vector<AuditEvent> audited = Audited();
  ASSERT_EQ(audited.size(), 4u);
  const AuditEvent& latest = audited.front();
  EXPECT_EQ(latest.action, "result_refused");
  EXPECT_EQ(latest.outcome, "failure");
  EXPECT_EQ(latest.actor, "DICOMWEB");
  EXPECT_EQ(latest.job_id, JobId{7});
  const json detail = json::parse(latest.detail);
  EXPECT_EQ(detail["unreported_before"], 4) << detail;
  EXPECT_EQ(detail["protocol"], "DICOMweb");
  EXPECT_EQ(detail["peer"], "10.0.0.9");
  EXPECT_EQ(detail["route"], "/dicom-web/jobs/{id}/studies");
  EXPECT_EQ(detail["reason"], "no bearer token");
}

TEST_F(AuthRefusalsTest, AForbiddenRequestHasItsOwnReason) {
  refusals_.Report(Refusal("10.0.0.9", AuthRefusalKind::kForbidden), *index_, metrics_,
                   clock_.Now());
  EXPECT_EQ(metrics_.Value("conduit_http_auth_refused_total", R"(guard="job",reason="forbidden")"),
            1);
  EXPECT_EQ(json::parse(Audited().front().detail).count("unreported_before"), 0u);
}

}  // namespace
}  // namespace conduit
