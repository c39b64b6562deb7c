// Bearer-token access control of the admin API and the trust-side DICOMweb server
// (http.api_token_file), over a real SqliteIndex, spool and HTTP server on 127.0.0.1: who gets
// in where, what a refusal looks like, and that no token opens another's endpoints.
#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/config.h"
#include "core/job_token.h"
#include "core/metrics.h"
#include "dicom/test_support.h"
#include "http/admin_server.h"
#include "http/api_tokens.h"
#include "http/dicomweb_context.h"
#include "http/http_test_support.h"
#include "store/records.h"
#include "store/spool.h"
#include "store/sqlite_index.h"
#include "testing/test_pki.h"
#include "testing/testing.h"

namespace conduit {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* kStudy = "1.2.826.0.1.3680043.10.1137.500";
constexpr const char* kSeries = "1.2.826.0.1.3680043.10.1137.500.1";
constexpr const char* kSop = "1.2.826.0.1.3680043.10.1137.500.1.1";
const std::string kApiToken = "api-" + std::string(40, '7');
const std::string kOtherApiToken = "prometheus-" + std::string(32, '3');

// The tool side's results sink: this test reads, never stores results.
httplib::Headers Bearer(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }

class AdminAuthTest : public ::testing::Test {
 protected:
  AdminAuthTest()
      : spool_(std::move(Spool::Open(SpoolOptions{tmp_.path() / "spool", 0}).value())),
        index_(std::move(OpenSqliteIndex(tmp_.path() / "index.sqlite").value())),
        job_tokens_(std::move(JobTokens::FromSecret(std::string(32, 'j')).value())),
        api_tokens_(std::move(
            ApiTokens::Parse("# ops\n" + kApiToken + "\n" + kOtherApiToken + "\n", "t").value())),
        sink_(tmp_.path() / "sink"),
        dicomweb_{config_, *index_, *spool_, sink_, results_, job_tokens_, metrics_, clock_} {
    config_.node.name = "auth-test";
    config_.http.bind = "127.0.0.1";
    config_.http.port = 0;
    config_.http.threads = 2;
  }

  void SetUp() override {
    Seed();
    AdminContext ctx{config_, *index_, metrics_, clock_, {}, {}};
    ctx.dicomweb = &dicomweb_;
    ctx.api_tokens = &api_tokens_;
    server_ = MakeAdminServer(std::move(ctx));
    Status started = server_->Start();
    ASSERT_TRUE(started.ok()) << started.ToString();
  }

  void TearDown() override {
    if (server_) server_->Stop();
  }

  // One study as ingest leaves it (spool file, index row) and one job on it.
  void Seed() {
    const fs::path file = tmp_.path() / "in.dcm";
    ASSERT_TRUE(testing::WriteTestDicom(file, kStudy, kSeries, kSop).ok());
    const fs::path incoming = spool_->NewIncomingPath();
    fs::copy_file(file, incoming);
    auto key = spool_->Commit(incoming, SopInstanceUid(kSop));
    ASSERT_TRUE(key.ok()) << key.status().ToString();
    InstanceRecord r;
    r.study_uid = StudyUid(kStudy);
    r.series_uid = SeriesUid(kSeries);
    r.sop_instance_uid = SopInstanceUid(kSop);
    r.sop_class_uid = SopClassUid(testing::kCtImageStorage);
    r.transfer_syntax_uid = "1.2.840.10008.1.2.1";
    r.spool_key = *key;
    r.size_bytes = fs::file_size(file);
    r.received_at = clock_.Now();
    r.modality = "CT";
    r.patient_id = "PID-AUTH-1";
    r.study_date = "20240301";
    AuditEvent receive;
    receive.at = clock_.Now();
    receive.action = "receive";
    receive.outcome = "success";
    ASSERT_TRUE(index_->PutInstance(r, receive).ok());
    JobRecord job;
    job.study_uid = StudyUid(kStudy);
    job.route = "ct";
    job.tool = "reference";
    job.destinations = {"pacs"};
    job.created_at = job.updated_at = job.next_attempt_at = clock_.Now();
    AuditEvent route;
    route.at = clock_.Now();
    route.action = "route";
    route.outcome = "success";
    auto id = index_->CreateJob(job, route);
    ASSERT_TRUE(id.ok()) << id.status().ToString();
    job_ = *id;
  }

  httplib::Client Client() {
    httplib::Client client("127.0.0.1", server_->port());
    client.set_connection_timeout(10s);
    client.set_read_timeout(30s);
    return client;
  }

  httplib::Result Get(const std::string& path, const httplib::Headers& headers = {}) {
    return Client().Get(path, headers);
  }

  // The audit events of refused requests, newest first.
  std::vector<AuditEvent> Refusals() {
    std::vector<AuditEvent> out;
    auto events = index_->ListAudit(1000, 0);
    EXPECT_TRUE(events.ok());
    if (!events.ok()) return out;
    for (const AuditEvent& e : *events) {
      if (e.action == "http_auth") out.push_back(e);
    }
    return out;
  }

  testing::TempDir tmp_;
  Config config_;
  FakeClock clock_;
  Metrics metrics_;
  std::unique_ptr<Spool> spool_;
  std::unique_ptr<Index> index_;
  JobTokens job_tokens_;
  ApiTokens api_tokens_;
  testing::CommittingSink sink_;
  testing::RefusingJobResultSink results_;
  DicomwebContext dicomweb_;
  std::unique_ptr<AdminServer> server_;
  JobId job_;
};

TEST_F(AdminAuthTest, NoTokenIs401WithChallengeAndAnAuditEventWithoutUids) {
  const std::vector<std::string> paths = {
      "/api/jobs",
      "/api/studies/" + std::string(kStudy),
      "/metrics",
      "/dicom-web/studies?StudyInstanceUID=" + std::string(kStudy),
      "/dicom-web/studies/" + std::string(kStudy) + "/series/" + kSeries + "/instances/" + kSop,
      "/api/no-such-route",
  };
  for (const std::string& path : paths) {
    auto res = Get(path);
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->status, 401) << path;
    EXPECT_EQ(res->get_header_value("WWW-Authenticate"), "Bearer realm=\"conduit\"") << path;
    EXPECT_EQ(res->get_header_value("Content-Type"), "application/json") << path;
    json body = json::parse(res->body, nullptr, false);
    ASSERT_TRUE(body.is_object()) << res->body;
    EXPECT_EQ(body["error"], "authentication required: Authorization: Bearer <API token>");
    EXPECT_EQ(res->body.find(kStudy), std::string::npos);
  }
  const std::vector<AuditEvent> refusals = Refusals();
  ASSERT_EQ(refusals.size(), paths.size());
  std::vector<std::string> routes;
  for (const AuditEvent& e : refusals) {
    EXPECT_EQ(e.outcome, "failure");
    EXPECT_EQ(e.actor, "127.0.0.1");
    EXPECT_EQ(e.detail.find(kStudy), std::string::npos) << e.detail;
    EXPECT_EQ(e.detail.find(kSop), std::string::npos) << e.detail;
    json detail = json::parse(e.detail);
    EXPECT_EQ(detail["method"], "GET");
    EXPECT_EQ(detail["reason"], "no bearer token");
    routes.insert(routes.begin(), detail["route"].get<std::string>());
  }
  EXPECT_EQ(routes, (std::vector<std::string>{
                        "/api/jobs", "/api/studies/{uid}", "/metrics", "/dicom-web/studies",
                        "/dicom-web/studies/{uid}/series/{uid}/instances/{uid}", "unmatched"}));
}

TEST_F(AdminAuthTest, WrongTokenIs401AndTheTokenIsNeverRecorded) {
  const std::string wrong = std::string(44, 'w');
  for (const httplib::Headers& headers : std::vector<httplib::Headers>{
           Bearer(wrong), Bearer(kApiToken + "x"), {{"Authorization", "Basic " + kApiToken}}}) {
    auto res = Get("/api/jobs", headers);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 401);
    EXPECT_TRUE(res->get_header_value("WWW-Authenticate").starts_with("Bearer realm=\"conduit\""));
  }
  auto res = Get("/api/jobs", Bearer(wrong));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->get_header_value("WWW-Authenticate"),
            "Bearer realm=\"conduit\", error=\"invalid_token\"");
  EXPECT_EQ(json::parse(res->body)["error"],
            "the bearer token is not an API token of this gateway");
  for (const AuditEvent& e : Refusals()) {
    EXPECT_EQ(e.detail.find(wrong), std::string::npos);
    EXPECT_EQ(e.detail.find(kApiToken), std::string::npos);
  }
}

TEST_F(AdminAuthTest, ApiTokenOpensTheAdminApiMetricsQidoAndWado) {
  for (const std::string& token : {kApiToken, kOtherApiToken}) {
    auto jobs = Get("/api/jobs", Bearer(token));
    ASSERT_TRUE(jobs);
    ASSERT_EQ(jobs->status, 200) << jobs->body;
    EXPECT_EQ(json::parse(jobs->body)["jobs"].size(), 1u);
  }
  auto metrics = Get("/metrics", Bearer(kApiToken));
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);

  auto qido = Get("/dicom-web/studies", Bearer(kApiToken));
  ASSERT_TRUE(qido);
  ASSERT_EQ(qido->status, 200) << qido->body;
  json studies = json::parse(qido->body);
  ASSERT_EQ(studies.size(), 1u);
  EXPECT_EQ(studies[0]["0020000D"]["Value"][0], kStudy);

  // Scheme case-insensitive, as RFC 7235 has it.
  auto wado = Get("/dicom-web/studies/" + std::string(kStudy),
                  {{"Authorization", "bearer " + kApiToken}, {"Accept", "multipart/related"}});
  ASSERT_TRUE(wado);
  ASSERT_EQ(wado->status, 200) << wado->body.substr(0, 300);
  EXPECT_TRUE(wado->get_header_value("Content-Type").starts_with("multipart/related"));
  EXPECT_NE(wado->body.find("DICM"), std::string::npos);
  // Both reads are in the audit trail, under the API token (never the token itself).
  auto audit = index_->ListAudit(100, 0);
  ASSERT_TRUE(audit.ok());
  std::set<std::string> reads;
  for (const AuditEvent& e : *audit) {
    if (e.action != "query" && e.action != "retrieve") continue;
    reads.insert(e.action);
    EXPECT_EQ(e.actor, "DICOMWEB (API token)");
    EXPECT_EQ(json::parse(e.detail)["credential"], "api");
    EXPECT_EQ(e.detail.find(kApiToken), std::string::npos);
  }
  EXPECT_EQ(reads, (std::set<std::string>{"query", "retrieve"}));

  auto retry = Client().Post("/api/jobs/" + std::to_string(job_.value) + "/retry",
                             Bearer(kApiToken), "", "application/json");
  ASSERT_TRUE(retry);
  EXPECT_NE(retry->status, 401) << "the token opens POST routes too: " << retry->body;
  EXPECT_TRUE(Refusals().empty());
}

TEST_F(AdminAuthTest, HealthStaysOpenForProbes) {
  auto health = Get("/api/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200) << health->body;
  auto head = Client().Head("/api/health");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  // Only GET and HEAD of that one path.
  auto post = Client().Post("/api/health", "", "application/json");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 401);
  auto below = Get("/api/health/../jobs");
  ASSERT_TRUE(below);
  EXPECT_EQ(below->status, 401);
  EXPECT_TRUE(Refusals().size() == 2u);
}

TEST_F(AdminAuthTest, JobTokenDoesNotOpenTheAdminApiOrTheOriginals) {
  const httplib::Headers job_token = Bearer(job_tokens_.TokenFor(job_));
  for (const std::string& path :
       {std::string("/api/jobs"), std::string("/dicom-web/studies"),
        "/dicom-web/studies/" + std::string(kStudy), std::string("/dicom-web//studies")}) {
    auto res = Get(path, job_token);
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->status, 401) << path;
  }
  auto retry = Client().Post("/api/jobs/" + std::to_string(job_.value) + "/retry", job_token, "",
                             "application/json");
  ASSERT_TRUE(retry);
  EXPECT_EQ(retry->status, 401);
}

TEST_F(AdminAuthTest, ApiTokenDoesNotOpenPerJobEndpoints) {
  const std::string job_path = "/dicom-web/jobs/" + std::to_string(job_.value) + "/studies";
  // The job view checks its own token: the API token is not one, whatever the path's shape.
  for (const std::string& path :
       {job_path + "/" + kStudy,
        "/dicom-web//jobs/" + std::to_string(job_.value) + "/studies/" + kStudy}) {
    auto read = Get(path, Bearer(kApiToken));
    ASSERT_TRUE(read) << path;
    EXPECT_EQ(read->status, 401) << path;
    EXPECT_EQ(json::parse(read->body)["error"], "a valid bearer token for this job is required")
        << "refused by the job view, not by the API guard";
  }
  auto store = Client().Post(job_path, Bearer(kApiToken), "--b--\r\n",
                             "multipart/related; type=\"application/dicom\"; boundary=b");
  ASSERT_TRUE(store);
  EXPECT_EQ(store->status, 401) << store->body;
  EXPECT_NE(store->body.find("wrong token for this job"), std::string::npos) << store->body;
  EXPECT_TRUE(Refusals().empty()) << "per-job refusals are the job endpoints' own";
  // With the job's own token (and no API token) the job view answers: no de-identified copy.
  auto own = Get(job_path + "/" + kStudy, Bearer(job_tokens_.TokenFor(job_)));
  ASSERT_TRUE(own);
  EXPECT_EQ(own->status, 404) << own->body;
}

TEST_F(AdminAuthTest, UpsRsIsLeftToItsOwnTokens) {
  // No worklist here (UPS-RS is not served): the API guard does not answer for it either.
  auto res = Get("/dicom-web/workitems");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  EXPECT_TRUE(Refusals().empty());
}

TEST_F(AdminAuthTest, RefusedPostBodiesAreNotActedOnAndTheConnectionServesOn) {
  httplib::Client client = Client();
  client.set_keep_alive(true);
  const std::string manifest = "name: sneaky\nversion: '1'\n";
  auto add = client.Post("/api/tools", manifest, "application/yaml");
  ASSERT_TRUE(add);
  EXPECT_EQ(add->status, 401);
  auto stow = client.Post("/dicom-web/studies", std::string(4096, 'x'),
                          "multipart/related; type=\"application/dicom\"; boundary=b");
  ASSERT_TRUE(stow);
  EXPECT_EQ(stow->status, 401);
  EXPECT_TRUE(sink_.instances().empty());
  auto tools = client.Get("/api/tools", Bearer(kApiToken));
  ASSERT_TRUE(tools);
  ASSERT_EQ(tools->status, 200);
  EXPECT_TRUE(json::parse(tools->body)["tools"].empty());
}

// http.tls.ca_file: a client without an accepted certificate is refused at the handshake,
// counted, logged and audited as an authentication refusal; one with it still needs its token.
TEST(AdminServerStartTest, WithClientCertificatesAClientWithoutOneIsRefusedAndAudited) {
  testing::TempDir tmp;
  auto pki = testing::MakeTestPki(tmp.path());
  ASSERT_TRUE(pki.ok()) << pki.status().ToString();
  auto index = OpenSqliteIndex(tmp.path() / "index.sqlite");
  ASSERT_TRUE(index.ok());
  FakeClock clock;
  Metrics metrics;
  Config config;
  config.http.bind = "127.0.0.1";
  config.http.port = 0;
  config.http.threads = 2;
  config.http.tls_certificate_file = pki->server_certificate;
  config.http.tls_key_file = pki->server_key;
  config.http.tls_ca_file = pki->ca_certificate;
  config.http.tls_crl_file = pki->crl;
  auto api_tokens = ApiTokens::Parse(kApiToken + "\n", "t");
  ASSERT_TRUE(api_tokens.ok());
  AdminContext ctx{config, **index, metrics, clock, {}, {}};
  ctx.api_tokens = &*api_tokens;
  auto server = MakeAdminServer(std::move(ctx));
  Status started = server->Start();
  ASSERT_TRUE(started.ok()) << started.ToString();
  const std::string url = "https://127.0.0.1:" + std::to_string(server->port());
  auto client = [&](const fs::path& certificate, const fs::path& key) {
    httplib::Client c(url, certificate.string(), key.string());
    c.set_ca_cert_path(pki->ca_certificate.c_str());
    c.enable_server_certificate_verification(true);
    c.set_read_timeout(30s);
    return c;
  };

  auto with = client(pki->client_certificate, pki->client_key).Get("/api/jobs", Bearer(kApiToken));
  ASSERT_TRUE(with) << httplib::to_string(with.error());
  EXPECT_EQ(with->status, 200);
  auto no_token = client(pki->client_certificate, pki->client_key).Get("/api/jobs");
  ASSERT_TRUE(no_token);
  EXPECT_EQ(no_token->status, 401) << "a certificate does not stand in for the token";

  EXPECT_FALSE(client({}, {}).Get("/api/jobs", Bearer(kApiToken)));
  EXPECT_FALSE(client(pki->revoked_client_certificate, pki->revoked_client_key)
                   .Get("/api/jobs", Bearer(kApiToken)));
  std::vector<json> refusals;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (refusals.size() < 2 && std::chrono::steady_clock::now() < deadline) {
    refusals.clear();
    auto events = (*index)->ListAudit(100, 0);
    ASSERT_TRUE(events.ok());
    for (const AuditEvent& e : *events) {
      if (e.action != "http_auth") continue;
      json detail = json::parse(e.detail);
      if (detail["route"] == "tls_handshake") refusals.push_back(detail);
    }
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_EQ(refusals.size(), 2u);
  std::vector<std::string> reasons = {refusals[0]["reason"], refusals[1]["reason"]};
  std::sort(reasons.begin(), reasons.end());
  EXPECT_EQ(reasons[0], "client certificate refused: certificate revoked");
  EXPECT_EQ(reasons[1], "no client certificate");
  EXPECT_EQ(refusals[0]["peer"], "127.0.0.1");
  const std::string text = metrics.RenderPrometheus();
  EXPECT_NE(
      text.find(
          "conduit_http_auth_refused_total{guard=\"client_certificate\",reason=\"missing\"} 1"),
      std::string::npos)
      << text;
  EXPECT_NE(
      text.find(
          "conduit_http_auth_refused_total{guard=\"client_certificate\",reason=\"invalid\"} 1"),
      std::string::npos);
  server->Stop();
}

TEST(AdminServerStartTest, NetworkBindWithoutApiTokensIsRefused) {
  testing::TempDir tmp;
  auto index = OpenSqliteIndex(tmp.path() / "index.sqlite");
  ASSERT_TRUE(index.ok());
  FakeClock clock;
  Metrics metrics;
  struct Case {
    std::string bind;
    std::string token_file;
    bool starts;
  };
  for (const Case& c : std::vector<Case>{{"0.0.0.0", "", false},
                                         {"::", "", false},
                                         {"127.0.0.1", "/etc/conduit/api.tokens", false},
                                         {"127.0.0.1", "", true},
                                         {"localhost", "", true}}) {
    Config config;
    config.http.bind = c.bind;
    config.http.port = 0;
    config.http.api_token_file = c.token_file;
    auto server = MakeAdminServer(AdminContext{config, **index, metrics, clock, {}, {}});
    Status started = server->Start();
    EXPECT_EQ(started.ok(), c.starts) << c.bind << " " << started.ToString();
    if (!c.starts) {
      EXPECT_EQ(started.code(), StatusCode::kFailedPrecondition) << c.bind;
    }
    server->Stop();
  }
}

}  // namespace
}  // namespace conduit
