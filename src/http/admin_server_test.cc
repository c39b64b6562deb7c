#include "http/admin_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/config.h"
#include "core/iso_time.h"
#include "core/metrics.h"
#include "store/index.h"
#include "store/records.h"
#include "store/sqlite_index.h"

namespace conduit {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// Identifiers that must never leave the admin API.
constexpr const char* kPatientName = "DOE^JANE^QUINCY";
constexpr const char* kPatientId = "PID-4417-2931";
constexpr const char* kAccession = "ACC-88213-77";

const StudyUid kStudyA("1.2.826.0.1.3680043.10.1.1");
const StudyUid kStudyB("1.2.826.0.1.3680043.10.1.2");

std::filesystem::path UniqueTempDir() {
  std::random_device rd;
  auto dir = std::filesystem::temp_directory_path() /
             ("conduit-http-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
  std::filesystem::create_directories(dir);
  return dir;
}

// Sends raw bytes to the server and returns what it answers (bounded by a receive timeout).
std::string RawExchange(int port, const std::string& bytes) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string reply;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size())) {
    char buf[4096];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) reply.append(buf, n);
  }
  ::close(fd);
  return reply;
}

constexpr const char* kPolicyHash = "5f3c9a0e7b21d4c8";

class AdminServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = UniqueTempDir();
    auto index = OpenSqliteIndex(dir_ / "index.db");
    ASSERT_TRUE(index.ok()) << index.status().ToString();
    index_ = std::move(*index);
    config_.node.name = "conduit-test-node";
    config_.http.bind = "127.0.0.1";
    config_.http.port = 0;
    config_.http.threads = 2;
    index_->SetPolicyHash(kPolicyHash);
    Seed();
    metrics_.Describe("conduit_instances_received_total", "counter", "Instances received.");
    metrics_.Add("conduit_instances_received_total", 3, R"(calling_ae="MODALITY1")");
    metrics_.Describe("conduit_jobs", "gauge", "Jobs by state.");
    metrics_.Describe("conduit_job_step_seconds", "histogram", "Job step duration.");
    metrics_.Observe("conduit_job_step_seconds", 0.3, R"(step="send")");
    server_ = MakeAdminServer(MakeContext());
    Status started = server_->Start();
    ASSERT_TRUE(started.ok()) << started.ToString();
    ASSERT_GT(server_->port(), 0);
    client_ = MakeClient(server_->port());
  }

  void TearDown() override {
    client_.reset();
    if (server_) server_->Stop();
    server_.reset();
    index_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  AdminContext MakeContext() {
    return AdminContext{
        .config = config_,
        .index = *index_,
        .metrics = metrics_,
        .clock = clock_,
        .refresh_gauges =
            [this] {
              ++refreshes_;
              auto counts = index_->CountJobsByState();
              if (!counts.ok()) return;
              for (const auto& [state, n] : *counts) {
                metrics_.Set("conduit_jobs", static_cast<double>(n),
                             std::string("state=\"") + JobStateName(state) + "\"");
              }
            },
        .health_facts =
            [this] {
              return std::map<std::string, std::string>{
                  {"dicom_listener", listener_up_ ? "up" : "down"}};
            },
    };
  }

  static std::unique_ptr<httplib::Client> MakeClient(int port) {
    auto client = std::make_unique<httplib::Client>("127.0.0.1", port);
    client->set_connection_timeout(10s);
    client->set_read_timeout(30s);
    client->set_write_timeout(30s);
    return client;
  }

  InstanceRecord Instance(const StudyUid& study, int series, int number, const char* modality) {
    InstanceRecord r;
    r.study_uid = study;
    r.series_uid = SeriesUid(study.str() + "." + std::to_string(series));
    r.sop_instance_uid = SopInstanceUid(r.series_uid.str() + "." + std::to_string(number));
    r.sop_class_uid = SopClassUid("1.2.840.10008.5.1.4.1.1.2");
    r.transfer_syntax_uid = "1.2.840.10008.1.2.1";
    r.spool_key = "spool/" + r.sop_instance_uid.str();
    r.size_bytes = 1000 + number;
    r.calling_ae = AeTitle("MODALITY1");
    r.received_at = clock_.Now();
    r.patient_id = kPatientId;
    r.patient_name = kPatientName;
    r.accession_number = kAccession;
    r.study_date = "20240102";
    r.study_description = "CT CHEST";
    r.modality = modality;
    r.series_number = series;
    r.instance_number = number;
    return r;
  }

  AuditEvent Audit(const std::string& action, const StudyUid& study, JobId job = {}) {
    return AuditEvent{.at = clock_.Now(),
                      .action = action,
                      .outcome = "success",
                      .actor = "MODALITY1",
                      .study_ref = StudyRef(study),
                      .job_id = job,
                      .detail = R"({"note":"seeded"})",
                      .policy_hash = ""};
  }

  void Seed() {
    for (int i = 1; i <= 2; ++i) {
      ASSERT_TRUE(
          index_->PutInstance(Instance(kStudyA, 1, i, "CT"), Audit("receive", kStudyA)).ok());
    }
    ASSERT_TRUE(index_->PutInstance(Instance(kStudyA, 2, 1, "SR"), Audit("receive", kStudyA)).ok());
    clock_.Advance(10s);
    ASSERT_TRUE(index_->PutInstance(Instance(kStudyB, 1, 1, "MR"), Audit("receive", kStudyB)).ok());

    JobRecord a;
    a.study_uid = kStudyA;
    a.route = "chest-ct";
    a.tool = "reference-tool";
    a.destinations = {"pacs"};
    a.state = JobState::kDelivering;
    a.next_attempt_at = clock_.Now();
    a.created_at = a.updated_at = clock_.Now();
    auto id_a = index_->CreateJob(a, Audit("route", kStudyA));
    ASSERT_TRUE(id_a.ok()) << id_a.status().ToString();
    job_a_ = *id_a;

    ResultRecord result;
    result.job_id = job_a_;
    result.sop_instance_uid = SopInstanceUid("1.2.826.0.1.3680043.10.9.1");
    result.sop_class_uid = SopClassUid("1.2.840.10008.5.1.4.1.1.88.34");
    result.series_uid = SeriesUid("1.2.826.0.1.3680043.10.9");
    result.spool_key = "results/1";
    result.size_bytes = 4242;
    result.received_at = clock_.Now();
    ASSERT_TRUE(index_->PutResult(result, Audit("result", kStudyA, job_a_)).ok());
    ASSERT_TRUE(index_
                    ->MarkDelivered(job_a_, result.sop_instance_uid, "pacs",
                                    Audit("deliver", kStudyA, job_a_))
                    .ok());

    JobRecord b;
    b.study_uid = kStudyB;
    b.route = "brain-mr";
    b.tool = "reference-tool";
    b.destinations = {"pacs"};
    b.created_at = b.updated_at = clock_.Now();
    b.next_attempt_at = clock_.Now();
    auto id_b = index_->CreateJob(b, Audit("route", kStudyB));
    ASSERT_TRUE(id_b.ok()) << id_b.status().ToString();
    job_b_ = *id_b;
    b.id = job_b_;
    b.state = JobState::kDeadLetter;
    b.attempts = 6;
    b.last_error = "send to reference-tool: connection refused";
    clock_.Advance(1s);
    b.updated_at = clock_.Now();
    ASSERT_TRUE(index_->UpdateJob(b, Audit("dead_letter", kStudyB, job_b_)).ok());
  }

  // GET returning status and parsed JSON body (null if the body is not JSON).
  std::pair<int, json> GetJson(const std::string& path) {
    auto res = client_->Get(path);
    if (!res) {
      ADD_FAILURE() << "GET " << path.substr(0, 80) << ": " << httplib::to_string(res.error());
      return {0, nullptr};
    }
    return {res->status, json::parse(res->body, nullptr, false)};
  }

  void ExpectStillServing() {
    auto res = client_->Get("/api/health");
    ASSERT_TRUE(res) << httplib::to_string(res.error());
    EXPECT_EQ(res->status, 200);
  }

  std::filesystem::path dir_;
  FakeClock clock_;
  Config config_;
  Metrics metrics_;
  std::unique_ptr<Index> index_;
  std::unique_ptr<AdminServer> server_;
  std::unique_ptr<httplib::Client> client_;
  JobId job_a_;
  JobId job_b_;
  std::atomic<int> refreshes_{0};
  std::atomic<bool> listener_up_{true};
};

void ExpectNoPatientIdentifiers(const std::string& body) {
  EXPECT_EQ(body.find(kPatientName), std::string::npos) << body;
  EXPECT_EQ(body.find("DOE"), std::string::npos) << body;
  EXPECT_EQ(body.find(kPatientId), std::string::npos) << body;
  EXPECT_EQ(body.find(kAccession), std::string::npos) << body;
  EXPECT_EQ(body.find("patient"), std::string::npos) << body;
  EXPECT_EQ(body.find("accession"), std::string::npos) << body;
}

TEST_F(AdminServerTest, HealthReportsNodeVersionIndexAndFacts) {
  auto res = client_->Get("/api/health");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
  EXPECT_EQ(res->get_header_value("X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(res->get_header_value("Cache-Control"), "no-store");
  json body = json::parse(res->body);
  EXPECT_EQ(body["status"], "ok");
  EXPECT_EQ(body["node"], "conduit-test-node");
  EXPECT_TRUE(body["version"].is_string());
  EXPECT_EQ(body["index"], "up");
  EXPECT_EQ(body["dicom_listener"], "up");
  EXPECT_EQ(body["jobs"]["dead_letter"], 1);
  EXPECT_EQ(body["time"], "2023-11-14T22:13:31.000Z");
}

TEST_F(AdminServerTest, HealthIsUnavailableWhenAListenerIsDown) {
  listener_up_ = false;
  auto [status, body] = GetJson("/api/health");
  EXPECT_EQ(status, 503);
  EXPECT_EQ(body["status"], "unavailable");
  EXPECT_EQ(body["dicom_listener"], "down");
}

TEST_F(AdminServerTest, StudiesListCarriesNoPatientIdentifiers) {
  auto res = client_->Get("/api/studies");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  ExpectNoPatientIdentifiers(res->body);
  json body = json::parse(res->body);
  ASSERT_EQ(body["studies"].size(), 2u);
  const json& newest = body["studies"][0];  // most recently received first
  EXPECT_EQ(newest["study_uid"], kStudyB.str());
  const json& a = body["studies"][1];
  EXPECT_EQ(a["study_uid"], kStudyA.str());
  EXPECT_EQ(a["study_ref"], StudyRef(kStudyA));
  EXPECT_EQ(a["study_date"], "20240102");
  EXPECT_EQ(a["description"], "CT CHEST");
  EXPECT_EQ(a["series_count"], 2);
  EXPECT_EQ(a["instance_count"], 3);
  EXPECT_EQ(a["size_bytes"], 1001 + 1002 + 1001);
  EXPECT_EQ(a["first_received_at"], "2023-11-14T22:13:20.000Z");
  std::vector<std::string> modalities = a["modalities"];
  std::sort(modalities.begin(), modalities.end());
  EXPECT_EQ(modalities, (std::vector<std::string>{"CT", "SR"}));
}

TEST_F(AdminServerTest, StudiesArePaged) {
  auto [status, first] = GetJson("/api/studies?limit=1");
  ASSERT_EQ(status, 200);
  ASSERT_EQ(first["studies"].size(), 1u);
  EXPECT_EQ(first["studies"][0]["study_uid"], kStudyB.str());
  auto [status2, second] = GetJson("/api/studies?limit=1&offset=1");
  ASSERT_EQ(status2, 200);
  ASSERT_EQ(second["studies"].size(), 1u);
  EXPECT_EQ(second["studies"][0]["study_uid"], kStudyA.str());
  auto [status3, past] = GetJson("/api/studies?offset=50");
  ASSERT_EQ(status3, 200);
  EXPECT_TRUE(past["studies"].empty());
}

TEST_F(AdminServerTest, StudyDetailListsItsJobs) {
  auto res = client_->Get("/api/studies/" + kStudyA.str());
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  ExpectNoPatientIdentifiers(res->body);
  json body = json::parse(res->body);
  EXPECT_EQ(body["study_uid"], kStudyA.str());
  ASSERT_EQ(body["jobs"].size(), 1u);
  EXPECT_EQ(body["jobs"][0]["id"], job_a_.value);
  EXPECT_EQ(body["jobs"][0]["route"], "chest-ct");
}

TEST_F(AdminServerTest, UnknownOrMalformedStudyIsAnError) {
  auto [status, body] = GetJson("/api/studies/1.2.3.4.5");
  EXPECT_EQ(status, 404);
  EXPECT_TRUE(body["error"].is_string());
  auto [status2, body2] = GetJson("/api/studies/not-a-uid");
  EXPECT_EQ(status2, 400);
  EXPECT_TRUE(body2["error"].is_string());
}

TEST_F(AdminServerTest, JobsAreListedAndFilteredByState) {
  auto [status, all] = GetJson("/api/jobs");
  ASSERT_EQ(status, 200);
  ASSERT_EQ(all["jobs"].size(), 2u);
  ExpectNoPatientIdentifiers(all.dump());

  auto [status2, dead] = GetJson("/api/jobs?state=dead_letter");
  ASSERT_EQ(status2, 200);
  ASSERT_EQ(dead["jobs"].size(), 1u);
  const json& job = dead["jobs"][0];
  EXPECT_EQ(job["id"], job_b_.value);
  EXPECT_EQ(job["study_uid"], kStudyB.str());
  EXPECT_EQ(job["study_ref"], StudyRef(kStudyB));
  EXPECT_EQ(job["route"], "brain-mr");
  EXPECT_EQ(job["tool"], "reference-tool");
  EXPECT_EQ(job["destinations"], json::array({"pacs"}));
  EXPECT_EQ(job["state"], "dead_letter");
  EXPECT_EQ(job["attempts"], 6);
  EXPECT_EQ(job["last_error"], "send to reference-tool: connection refused");
  EXPECT_TRUE(job["next_attempt_at"].is_string());
  EXPECT_EQ(job["updated_at"], "2023-11-14T22:13:31.000Z");

  auto [status3, queued] = GetJson("/api/jobs?state=queued");
  ASSERT_EQ(status3, 200);
  EXPECT_TRUE(queued["jobs"].empty());

  auto [status4, limited] = GetJson("/api/jobs?limit=1");
  ASSERT_EQ(status4, 200);
  EXPECT_EQ(limited["jobs"].size(), 1u);
}

TEST_F(AdminServerTest, UnknownJobStateIsABadRequest) {
  auto [status, body] = GetJson("/api/jobs?state=exploded");
  EXPECT_EQ(status, 400);
  ASSERT_TRUE(body["error"].is_string());
  EXPECT_NE(body["error"].get<std::string>().find("exploded"), std::string::npos);
}

TEST_F(AdminServerTest, JobDetailHasResultsAndDeliveries) {
  auto [status, job] = GetJson("/api/jobs/" + std::to_string(job_a_.value));
  ASSERT_EQ(status, 200);
  EXPECT_EQ(job["id"], job_a_.value);
  EXPECT_EQ(job["state"], "delivering");
  ASSERT_EQ(job["results"].size(), 1u);
  EXPECT_EQ(job["results"][0]["sop_instance_uid"], "1.2.826.0.1.3680043.10.9.1");
  EXPECT_EQ(job["results"][0]["sop_class_uid"], "1.2.840.10008.5.1.4.1.1.88.34");
  EXPECT_EQ(job["results"][0]["size_bytes"], 4242);
  ASSERT_EQ(job["deliveries"].size(), 1u);
  EXPECT_EQ(job["deliveries"][0]["sop_instance_uid"], "1.2.826.0.1.3680043.10.9.1");
  EXPECT_EQ(job["deliveries"][0]["destination"], "pacs");
  EXPECT_TRUE(job["commitments"].empty()) << job.dump();
}

TEST_F(AdminServerTest, JobDetailShowsStorageCommitmentAwaited) {
  CommitmentRecord row;
  row.transaction_uid = "2.25.77";
  row.job_id = job_a_;
  row.destination = "archive";
  row.sop_instance_uid = SopInstanceUid("1.2.826.0.1.3680043.10.9.1");
  row.sop_class_uid = SopClassUid("1.2.840.10008.5.1.4.1.1.88.34");
  row.requested_at = clock_.Now();
  row.deadline = clock_.Now() + std::chrono::hours(6);
  ASSERT_TRUE(index_->OpenCommitment({row}, Audit("commit_request", kStudyA, job_a_)).ok());
  auto [status, job] = GetJson("/api/jobs/" + std::to_string(job_a_.value));
  ASSERT_EQ(status, 200);
  ASSERT_EQ(job["commitments"].size(), 1u) << job.dump();
  EXPECT_EQ(job["commitments"][0]["destination"], "archive");
  EXPECT_EQ(job["commitments"][0]["state"], "awaited");
  EXPECT_EQ(job["commitments"][0]["report_due"],
            FormatIsoTime(row.deadline, IsoPrecision::kMillis));
}

TEST_F(AdminServerTest, UnknownJobAndPathAre404WithJsonError) {
  for (const std::string path : {"/api/jobs/987654", "/nope", "/api", "/api/jobs/1/bogus",
                                 "/api/studies/1.2.3/jobs", "/metrics/extra", "/"}) {
    auto [status, body] = GetJson(path);
    EXPECT_EQ(status, 404) << path;
    EXPECT_TRUE(body.is_object() && body["error"].is_string()) << path;
  }
}

// The audit entries of `action`, waiting up to 10 s for `count` of them: the server reports a
// response after writing it, so the client may read the answer first.
std::vector<AuditEvent> WaitForAudit(Index& index, const std::string& action, size_t count) {
  std::vector<AuditEvent> found;
  for (int i = 0; i < 200; ++i) {
    found.clear();
    auto events = index.ListAudit(1000, 0);
    if (events.ok()) {
      for (const AuditEvent& e : *events) {
        if (e.action == action) found.push_back(e);
      }
    }
    if (found.size() >= count) break;
    std::this_thread::sleep_for(50ms);
  }
  return found;
}

TEST_F(AdminServerTest, ClientErrorsAreAuditedOncePerMinutePerPeerRouteAndStatus) {
  for (int i = 0; i < 5; ++i) ASSERT_EQ(GetJson("/no/such/path/1.2.826.0.1.99").first, 404);
  ASSERT_EQ(GetJson("/api/studies?limit=-1").first, 400);
  std::vector<AuditEvent> events = WaitForAudit(*index_, "http_client_error", 2);
  std::this_thread::sleep_for(200ms);  // a third would have arrived by now
  events = WaitForAudit(*index_, "http_client_error", 2);
  ASSERT_EQ(events.size(), 2u);
  std::set<int> statuses;
  for (const AuditEvent& e : events) {
    json detail = json::parse(e.detail);
    statuses.insert(detail["status"].get<int>());
    EXPECT_EQ(detail["peer"], "127.0.0.1");
    EXPECT_EQ(e.outcome, "failure");
    EXPECT_EQ(e.detail.find("1.2.826.0.1.99"), std::string::npos) << "never the path";
    EXPECT_EQ(e.detail.find("limit"), std::string::npos) << "never the query";
  }
  EXPECT_EQ(statuses, (std::set<int>{400, 404}));

  // A minute later the next 404 is reported with the four that went unreported.
  clock_.Advance(61s);
  ASSERT_EQ(GetJson("/nope").first, 404);
  events = WaitForAudit(*index_, "http_client_error", 3);
  ASSERT_EQ(events.size(), 3u);
  json latest = json::parse(events.front().detail);  // newest first
  EXPECT_EQ(latest["status"], 404);
  EXPECT_EQ(latest["unreported_before"], 4);
}

TEST_F(AdminServerTest, WrongMethodIs405WithAllow) {
  auto res = client_->Post("/api/jobs", "{}", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 405);
  EXPECT_EQ(res->get_header_value("Allow"), "GET, HEAD");
  EXPECT_TRUE(json::parse(res->body, nullptr, false)["error"].is_string());

  auto del = client_->Delete("/api/jobs/" + std::to_string(job_a_.value));
  ASSERT_TRUE(del);
  EXPECT_EQ(del->status, 405);

  auto get_retry = client_->Get("/api/jobs/1/retry");
  ASSERT_TRUE(get_retry);
  EXPECT_EQ(get_retry->status, 405);
  EXPECT_EQ(get_retry->get_header_value("Allow"), "POST");

  auto put = client_->Put("/metrics", "x", "text/plain");
  ASSERT_TRUE(put);
  EXPECT_EQ(put->status, 405);
}

TEST_F(AdminServerTest, HostileInputsGet4xxAndTheServerKeepsServing) {
  struct Case {
    std::string path;
    int status;
  };
  const std::vector<Case> cases = {
      {"/api/studies?limit=-1", 400},
      {"/api/studies?limit=abc", 400},
      {"/api/studies?limit=99999999999999999999", 400},
      {"/api/studies?limit=0", 400},
      {"/api/studies?limit=", 400},
      {"/api/studies?limit=1e3", 400},
      {"/api/studies?offset=-5", 400},
      {"/api/studies?limit=%00", 400},
      {"/api/jobs?limit=-1", 400},
      {"/api/jobs?limit=99999999999999999999", 400},
      {"/api/jobs?state=", 400},
      {"/api/audit?limit=abc", 400},
      {"/api/audit?offset=99999999999999999999", 400},
      {"/api/jobs/abc", 400},
      {"/api/jobs/-1", 400},
      {"/api/jobs/0", 400},
      {"/api/jobs/99999999999999999999", 400},
      {"/api/studies/" + std::string(65, '1'), 400},
      {"/" + std::string(4000, 'a'), 404},
      {"/" + std::string(8100, 'a'), 404},  // just under httplib's 8 KiB request-line limit
      {"/api/studies/" + std::string(8000, '1'), 400},
      {"/api/jobs?state=" + std::string(6000, 'x'), 400},
  };
  for (const Case& c : cases) {
    auto [status, body] = GetJson(c.path);
    EXPECT_EQ(status, c.status) << c.path.substr(0, 80);
    EXPECT_TRUE(body.is_object() && body["error"].is_string()) << c.path.substr(0, 80);
    if (body.is_object() && body["error"].is_string()) {
      EXPECT_LT(body["error"].get<std::string>().size(), 300u) << "errors echo clipped input";
    }
  }
  ExpectStillServing();

  // Past httplib's URI limit.
  auto [status, body] = GetJson("/" + std::string(20000, 'b'));
  EXPECT_GE(status, 400);
  EXPECT_LT(status, 500);
  ExpectStillServing();

  // Body over the admin API's 1 MiB.
  auto post = client_->Post("/api/jobs/" + std::to_string(job_b_.value) + "/retry",
                            std::string(2 << 20, 'x'), "application/octet-stream");
  if (post) {  // the server may close before reading all of it: either way no job is touched
    EXPECT_EQ(post->status, 413);
    EXPECT_TRUE(json::parse(post->body, nullptr, false)["error"].is_string()) << post->body;
  }
  auto job = GetJson("/api/jobs/" + std::to_string(job_b_.value));
  EXPECT_EQ(job.second["state"], "dead_letter");
  ExpectStillServing();

  // Not HTTP at all.
  std::string reply = RawExchange(server_->port(), "GARBAGE\r\n\r\n");
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 400")) << reply.substr(0, 80);
  reply = RawExchange(server_->port(),
                      "POST /api/jobs/1/retry HTTP/1.1\r\nHost: x\r\nContent-Length: "
                      "99999999999999999999999\r\n\r\n");
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 4")) << reply.substr(0, 80);
  ExpectStillServing();
}

TEST_F(AdminServerTest, RisOutboxListsMessagesNewestFirstWithoutTheirTextOrPatient) {
  config_.ris.name = "ris";
  const TimePoint t0 = clock_.Now();
  for (const char* control_id : {"J1R", "J2R", "J3P"}) {
    Hl7OutboxRecord m;
    m.destination = "ris";
    m.patient_key = "patient-key-secret";
    m.job_id = job_a_;
    m.message_type = control_id[2] == 'R' ? "ORU^R01" : "OMI^O23";
    m.control_id = control_id;
    m.message = std::string("MSH|^~\\&|CONDUIT||RIS||20240101||ORU^R01|") + control_id +
                "|P|2.5.1\rPID|1||PATIENT123^^^HOSP||DOE^JANE\r";
    m.next_attempt_at = m.created_at = t0;
    ASSERT_EQ(*index_->EnqueueHl7(m), PutOutcome::kInserted);
  }
  auto queued = index_->ListHl7("ris", std::nullopt, 10);
  ASSERT_TRUE(queued.ok() && queued->size() == 3u);
  Hl7OutboxRecord sent = (*queued)[0];
  sent.state = Hl7OutboxState::kSent;
  sent.sent_at = t0 + 2s;
  ASSERT_TRUE(index_->UpdateHl7(sent).ok());
  Hl7OutboxRecord refused = (*queued)[1];
  refused.state = Hl7OutboxState::kFailed;
  refused.sent_at = t0 + 3s;
  refused.last_error = "hl7 message J2R: peer answered AR (error 103)";
  ASSERT_TRUE(index_->UpdateHl7(refused).ok());
  Hl7OutboxRecord waiting = (*queued)[2];
  waiting.attempts = 2;
  waiting.next_attempt_at = t0 + 60s;
  waiting.last_error = "hl7 message J3P: peer answered AE (error 207)";
  ASSERT_TRUE(index_->UpdateHl7(waiting).ok());

  auto res = client_->Get("/api/ris/outbox");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  for (const char* secret : {"PATIENT123", "DOE", "patient-key-secret", "MSH|"}) {
    EXPECT_EQ(res->body.find(secret), std::string::npos) << secret;
  }
  const json all = json::parse(res->body);
  EXPECT_EQ(all["destination"], "ris");
  EXPECT_EQ(all["pending"], 1);
  EXPECT_EQ(all["failed"], 1);
  ASSERT_EQ(all["messages"].size(), 3u);
  const json& newest = all["messages"][0];
  EXPECT_EQ(newest["control_id"], "J3P");
  EXPECT_EQ(newest["message_type"], "OMI^O23");
  EXPECT_EQ(newest["job_id"], job_a_.value);
  EXPECT_EQ(newest["state"], "pending");
  EXPECT_EQ(newest["attempts"], 2);
  EXPECT_EQ(newest["next_attempt_at"], FormatIsoTime(t0 + 60s, IsoPrecision::kMillis));
  EXPECT_EQ(newest["last_error"], "hl7 message J3P: peer answered AE (error 207)");
  EXPECT_TRUE(newest["sent_at"].is_null());
  EXPECT_EQ(all["messages"][1]["state"], "failed");
  EXPECT_EQ(all["messages"][2]["state"], "sent");
  EXPECT_EQ(all["messages"][2]["sent_at"], FormatIsoTime(t0 + 2s, IsoPrecision::kMillis));
  EXPECT_TRUE(all["messages"][2]["next_attempt_at"].is_null());
  for (const auto& m : all["messages"]) {
    for (const char* key : {"id", "destination", "message_type", "control_id", "job_id", "state",
                            "attempts", "next_attempt_at", "last_error", "created_at", "sent_at"}) {
      EXPECT_TRUE(m.contains(key)) << key;
    }
    EXPECT_EQ(m.size(), 11u) << "nothing more: " << m.dump();
  }

  auto [status, failed] = GetJson("/api/ris/outbox?state=failed");
  EXPECT_EQ(status, 200);
  ASSERT_EQ(failed["messages"].size(), 1u);
  EXPECT_EQ(failed["messages"][0]["control_id"], "J2R");
  EXPECT_EQ(failed["state"], "failed");
  auto [status2, one] = GetJson("/api/ris/outbox?limit=1");
  EXPECT_EQ(status2, 200);
  ASSERT_EQ(one["messages"].size(), 1u);
  EXPECT_EQ(one["messages"][0]["control_id"], "J3P");
  for (const char* bad :
       {"/api/ris/outbox?state=lost", "/api/ris/outbox?limit=0", "/api/ris/outbox?limit=abc"}) {
    auto [code, body] = GetJson(bad);
    EXPECT_EQ(code, 400) << bad;
    EXPECT_TRUE(body.contains("error")) << bad;
  }
}

TEST_F(AdminServerTest, MetricsIsValidPrometheusText) {
  ExpectStillServing();  // so the server has a request of its own to count
  // A request is counted just after its response is written: wait for it (bounded).
  const char* health = R"(method="GET",route="/api/health",code="200")";
  for (auto deadline = std::chrono::steady_clock::now() + 30s;
       metrics_.Value("conduit_http_requests_total", health) < 1 &&
       std::chrono::steady_clock::now() < deadline;) {
    std::this_thread::sleep_for(5ms);
  }
  ASSERT_EQ(metrics_.Value("conduit_http_requests_total", health), 1);
  auto res = client_->Get("/metrics");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_GE(refreshes_.load(), 1);
  const std::string& text = res->body;
  for (const char* name :
       {"conduit_instances_received_total", "conduit_jobs", "conduit_job_step_seconds_bucket",
        "conduit_http_requests_total", "conduit_http_request_duration_seconds_count"}) {
    EXPECT_NE(text.find(std::string("\n") + name), std::string::npos) << name << "\n" << text;
  }
  EXPECT_NE(text.find(R"(conduit_jobs{state="dead_letter"} 1)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(route="/api/health")"), std::string::npos) << text;

  // name{label="value",...} value, values escaped as format 0.0.4 requires.
  static const std::string kLabel = R"re([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*")re";
  static const std::regex kSample("^[a-zA-Z_:][a-zA-Z0-9_:]*(\\{" + kLabel + "(," + kLabel +
                                  ")*\\})? ([-+]?[0-9.eE+-]+|NaN|[+-]Inf)$");
  std::istringstream in(text);
  int samples = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("# HELP ") || line.starts_with("# TYPE ")) continue;
    EXPECT_TRUE(std::regex_match(line, kSample)) << line;
    ++samples;
  }
  EXPECT_GT(samples, 0);
}

TEST_F(AdminServerTest, RetryPutsADeadLetteredJobBackInTheQueue) {
  auto res =
      client_->Post("/api/jobs/" + std::to_string(job_b_.value) + "/retry", "", "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  json body = json::parse(res->body);
  EXPECT_EQ(body["id"], job_b_.value);
  EXPECT_EQ(body["state"], "queued");

  auto stored = index_->GetJob(job_b_);
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ((*stored)->state, JobState::kQueued);

  // A job that is not failed or dead-lettered cannot be replayed; nor can an unknown one.
  auto again =
      client_->Post("/api/jobs/" + std::to_string(job_a_.value) + "/retry", "", "application/json");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 409) << again->body;
  EXPECT_TRUE(json::parse(again->body, nullptr, false)["error"].is_string());
  auto unknown = client_->Post("/api/jobs/424242/retry", "", "application/json");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);
}

TEST_F(AdminServerTest, CrossOriginPostIsRefused) {
  httplib::Headers headers = {{"Origin", "http://evil.example"}};
  auto res = client_->Post("/api/jobs/" + std::to_string(job_b_.value) + "/retry", headers, "",
                           "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 403);
  auto stored = index_->GetJob(job_b_);
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ((*stored)->state, JobState::kDeadLetter);
}

TEST_F(AdminServerTest, AuditIsListedNewestFirst) {
  auto res = client_->Get("/api/audit?limit=2");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  ExpectNoPatientIdentifiers(res->body);
  json body = json::parse(res->body);
  ASSERT_EQ(body["events"].size(), 2u);
  const json& newest = body["events"][0];
  EXPECT_EQ(newest["action"], "dead_letter");
  EXPECT_EQ(newest["study_ref"], StudyRef(kStudyB));
  EXPECT_EQ(newest["job_id"], job_b_.value);
  EXPECT_EQ(newest["detail"]["note"], "seeded");
  EXPECT_EQ(newest["policy_hash"], kPolicyHash) << "the index stamps the policy in force";
}

TEST_F(AdminServerTest, AuditOfOneStudy) {
  for (const auto& [study, other] : {std::pair{kStudyA, kStudyB}, std::pair{kStudyB, kStudyA}}) {
    auto res = client_->Get("/api/audit?limit=100&study=" + study.str());
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    ExpectNoPatientIdentifiers(res->body);
    json events = json::parse(res->body)["events"];
    ASSERT_FALSE(events.empty()) << study;
    for (const json& e : events) EXPECT_EQ(e["study_ref"], StudyRef(study));
    auto all = index_->ListAudit(1000, 0);
    ASSERT_TRUE(all.ok());
    size_t of_study = 0;
    for (const AuditEvent& e : *all) of_study += e.study_ref == StudyRef(study);
    EXPECT_EQ(events.size(), of_study) << "every row of the study, none of " << other.str();
  }
  auto none = client_->Get("/api/audit?study=1.2.3.999");
  ASSERT_TRUE(none);
  ASSERT_EQ(none->status, 200);
  EXPECT_TRUE(json::parse(none->body)["events"].empty());
  auto bad = client_->Get("/api/audit?study=DROP%20TABLE");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_EQ(bad->body.find("DROP"), std::string::npos) << "the value is not echoed";
}

TEST_F(AdminServerTest, ServesConcurrentClients) {
  std::atomic<int> ok{0};
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([this, &ok] {
        auto client = MakeClient(server_->port());
        for (int i = 0; i < 20; ++i) {
          auto res = client->Get(i % 2 ? "/api/jobs" : "/api/studies");
          if (res && res->status == 200) ++ok;
        }
      });
    }
  }
  EXPECT_EQ(ok.load(), 80);
}

// Opens a connection that sends half a request and then nothing: it holds a worker until the
// header deadline. The caller closes it.
// A connection (from `source`, a loopback address) that has sent half a request.
int HalfRequest(int port, const char* source = "127.0.0.1") {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in local{};
  local.sin_family = AF_INET;
  inet_pton(AF_INET, source, &local.sin_addr);
  if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
    ADD_FAILURE() << "cannot bind " << source;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const std::string half = "GET /api/health HTTP/1.1\r\nHost: x\r\n";
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::send(fd, half.data(), half.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(half.size())) {
    ADD_FAILURE() << "cannot open a half request";
  }
  return fd;
}

TEST_F(AdminServerTest, GaugesSayWhetherThereAreWorkersEnough) {
  client_.reset();  // its kept-alive connection would hold a worker for a second
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(metrics_.Value("conduit_http_workers"), 2);
  EXPECT_EQ(metrics_.Value("conduit_http_workers_busy"), 0);
  // Two stalled clients take both workers; a third connection waits for one.
  std::vector<int> stalled = {HalfRequest(server_->port()), HalfRequest(server_->port()),
                              HalfRequest(server_->port())};
  // All three may be queued before a worker wakes: wait for the settled state.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while ((metrics_.Value("conduit_http_workers_busy") < 2 ||
          metrics_.Value("conduit_http_connections_waiting") != 1) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(metrics_.Value("conduit_http_workers_busy"), 2);
  EXPECT_EQ(metrics_.Value("conduit_http_connections_waiting"), 1);
  for (int fd : stalled) ::close(fd);
  // Closed by their clients, the connections end and the workers are free again.
  while ((metrics_.Value("conduit_http_workers_busy") > 0 ||
          metrics_.Value("conduit_http_connections_waiting") > 0) &&
         std::chrono::steady_clock::now() < deadline + 10s) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(metrics_.Value("conduit_http_workers_busy"), 0);
  EXPECT_EQ(metrics_.Value("conduit_http_connections_waiting"), 0);
  client_ = MakeClient(server_->port());
  ExpectStillServing();
}

TEST_F(AdminServerTest, OneClientHoldsAtMostItsShareOfTheWorkers) {
  server_->Stop();
  config_.http.max_connections_per_client = 1;  // of 2 workers
  server_ = MakeAdminServer(MakeContext());
  ASSERT_TRUE(server_->Start().ok());
  // 127.0.0.2 stalls connections, dripping a byte now and then so that the one served is not
  // closed for silence: it holds a worker, the others wait for it.
  std::mutex mu;
  std::vector<int> stalled;
  auto stall = [&](int n) {
    for (int i = 0; i < n; ++i) {
      const int fd = HalfRequest(server_->port(), "127.0.0.2");
      std::lock_guard lock(mu);
      stalled.push_back(fd);
    }
  };
  std::jthread dripper([&](std::stop_token stop) {
    while (!stop.stop_requested()) {
      std::this_thread::sleep_for(200ms);
      std::lock_guard lock(mu);
      for (int fd : stalled) ::send(fd, "a", 1, MSG_NOSIGNAL);
    }
  });
  auto wait_deferred = [&](double n) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (metrics_.Value("conduit_http_connections_deferred") != n &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(20ms);
    }
    return metrics_.Value("conduit_http_connections_deferred");
  };
  stall(3);
  EXPECT_EQ(wait_deferred(2), 2);
  EXPECT_EQ(metrics_.Value("conduit_http_workers_busy"), 1);
  client_ = MakeClient(server_->port());
  ExpectStillServing();  // on the other worker

  // Past 64 waiting, its next connection is refused, counted and audited.
  stall(62);
  EXPECT_EQ(wait_deferred(64), 64);
  const int refused = HalfRequest(server_->port(), "127.0.0.2");
  std::vector<AuditEvent> events = WaitForAudit(*index_, "http_client_error", 1);
  ASSERT_EQ(events.size(), 1u);
  json detail = json::parse(events[0].detail);
  EXPECT_EQ(detail["status"], 429);
  EXPECT_EQ(detail["peer"], "127.0.0.2");
  EXPECT_EQ(metrics_.Value("conduit_http_requests_total",
                           R"(method="other",route="unparsed",code="429")"),
            1);
  ::close(refused);
  dripper = {};
  for (int fd : stalled) ::close(fd);
  EXPECT_EQ(wait_deferred(0), 0);
  ExpectStillServing();
}

TEST_F(AdminServerTest, StopsPromptlyAndRestarts) {
  auto start = std::chrono::steady_clock::now();
  server_->Stop();
  // Generous bound: a keep-alive connection from the fixture's client is open.
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  EXPECT_EQ(server_->port(), 0);
  server_->Stop();  // idempotent
  ASSERT_TRUE(server_->Start().ok());
  client_ = MakeClient(server_->port());
  ExpectStillServing();
}

TEST_F(AdminServerTest, StopDoesNotWaitForASilentClient) {
  // A client that sends half a request and then nothing holds a worker until the read
  // timeout; Stop() must still end.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(server_->port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  std::string half = "GET /api/health HTTP/1.1\r\nHost: x\r\n";
  ASSERT_EQ(::send(fd, half.data(), half.size(), MSG_NOSIGNAL), static_cast<ssize_t>(half.size()));
  auto start = std::chrono::steady_clock::now();
  server_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 20s) << "generous: a loaded machine";
  ::close(fd);
}

TEST_F(AdminServerTest, StartFailsWhenThePortIsTaken) {
  Config taken = config_;
  taken.http.port = server_->port();
  AdminContext context = MakeContext();
  auto second = MakeAdminServer(
      AdminContext{taken, *index_, metrics_, clock_, context.refresh_gauges, context.health_facts});
  Status st = second->Start();
  EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.ToString();
  ExpectStillServing();
}

}  // namespace
}  // namespace conduit
