// STOW-RS and the job results endpoint, end to end: a real AdminServer on port 0 with the real
// IngestService, SQLite index and spool, driven by httplib::Client, raw sockets and curl.
#include "http/dicomweb_stow.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "app/ingest_service.h"
#include "dicom/test_support.h"
#include "http/admin_server.h"
#include "http/multipart.h"
#include "store/sqlite_index.h"
#include "testing/testing.h"

namespace conduit {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr const char* kStudy = "1.2.826.0.1.3680043.10.1137.77";
constexpr const char* kOtherStudy = "1.2.826.0.1.3680043.10.1137.78";
constexpr const char* kDicomType = "multipart/related; type=\"application/dicom\"; boundary=";

std::string ReadFile(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string RawExchange(int port, const std::string& request) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return "";
  }
  timeval tv{30, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  // The body stops here, whatever Content-Length said; the server's read times out (httplib
  // does not answer a client that has shut down its side, so the socket stays open).
  ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string reply;
  char buf[4096];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) reply.append(buf, n);
  ::close(fd);
  return reply;
}

// The DICOM JSON sequence `tag` of a Store Instances Response (empty if absent).
json Items(const json& module, const char* tag) {
  if (!module.is_object() || !module.contains(tag)) return json::array();
  return module[tag].value("Value", json::array());
}

std::vector<int> FailureReasons(const json& module) {
  std::vector<int> reasons;
  for (const json& item : Items(module, "00081198")) {
    reasons.push_back(item["00081197"]["Value"][0].get<int>());
  }
  return reasons;
}

std::string Uid(const json& item, const char* tag) {
  if (!item.contains(tag) || !item[tag].contains("Value")) return "";
  return item[tag]["Value"][0].get<std::string>();
}

class StowTest : public ::testing::Test {
 protected:
  StowTest() {
    config_.http.bind = "127.0.0.1";
    config_.http.port = 0;
    config_.http.threads = 2;
    config_.http.public_url = "https://conduit.example.nhs.uk/";
    RouteConfig route;
    route.name = "ct";
    route.when = {RouteCondition{"Modality", {"CT"}}};
    route.tool = "reference";
    config_.routes = {route};
    spool_ = std::move(Spool::Open(SpoolOptions{tmp_.path() / "spool", 0}).value());
    index_ = std::move(OpenSqliteIndex(tmp_.path() / "index.sqlite").value());
    router_ = std::make_unique<Router>(config_.routes);
    assembler_ = std::make_unique<StudyAssembler>(*index_, clock_, config_, [](JobId) {});
    intake_ = std::make_unique<ResultIntake>(*index_, *spool_, clock_, metrics_);
    ingest_ = std::make_unique<IngestService>(config_, *spool_, *index_, *router_, *assembler_,
                                              *intake_, metrics_, clock_, [this] { ++wakes_; });
    tokens_.emplace(std::move(JobTokens::FromSecret(std::string(32, 's')).value()));
    dicomweb_ = std::make_unique<DicomwebContext>(
        DicomwebContext{config_, *index_, *spool_, *ingest_, *ingest_, *tokens_, metrics_, clock_});
    StartServer();
  }

  ~StowTest() override {
    if (server_) server_->Stop();
  }

  void StartServer(bool with_dicomweb = true) {
    if (server_) server_->Stop();
    AdminContext context{config_, *index_, metrics_, clock_, nullptr, nullptr};
    if (with_dicomweb) context.dicomweb = dicomweb_.get();
    server_ = MakeAdminServer(std::move(context));
    Status st = server_->Start();
    ASSERT_TRUE(st.ok()) << st.ToString();
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    client_->set_read_timeout(120s);
    client_->set_write_timeout(120s);
  }

  // A Part 10 CT instance, as bytes.
  std::string Instance(const std::string& study, const std::string& sop) {
    const auto file = tmp_.path() / ("make-" + std::to_string(made_++) + ".dcm");
    Status st = testing::WriteTestDicom(file, study, study + ".1", sop);
    EXPECT_TRUE(st.ok()) << st.ToString();
    std::string bytes = ReadFile(file);
    std::filesystem::remove(file);
    return bytes;
  }

  // A tool's result: a secondary capture in a series of its own.
  std::string Result(const std::string& study, const std::string& sop) {
    const auto file = tmp_.path() / ("make-" + std::to_string(made_++) + ".dcm");
    Status st =
        testing::WriteTestDicom(file, study, study + ".99", sop, testing::kSecondaryCaptureStorage);
    EXPECT_TRUE(st.ok()) << st.ToString();
    std::string bytes = ReadFile(file);
    std::filesystem::remove(file);
    return bytes;
  }

  // A multipart/related body of (part Content-Type, bytes) parts.
  static std::string Body(MultipartWriter& writer,
                          const std::vector<std::pair<std::string, std::string>>& parts) {
    std::string body;
    for (const auto& [type, bytes] : parts) body += writer.PartHeader(type) + bytes;
    return body + writer.Close();
  }

  // POSTs DICOM instances (one part each); returns status and parsed body.
  std::pair<int, json> Store(const std::string& path, const std::vector<std::string>& instances,
                             const httplib::Headers& headers = {}) {
    std::vector<std::pair<std::string, std::string>> parts;
    for (const std::string& i : instances) parts.emplace_back("application/dicom", i);
    return PostParts(path, parts, headers);
  }

  std::pair<int, json> PostParts(const std::string& path,
                                 const std::vector<std::pair<std::string, std::string>>& parts,
                                 const httplib::Headers& headers = {}) {
    MultipartWriter writer;
    std::string body = Body(writer, parts);
    auto res = client_->Post(path, headers, body, writer.ContentType("application/dicom").c_str());
    if (!res) {
      ADD_FAILURE() << "POST: " << httplib::to_string(res.error());
      return {0, nullptr};
    }
    last_headers_ = res->headers;
    return {res->status, json::parse(res->body, nullptr, false)};
  }

  bool Stored(const std::string& sop) {
    auto found = index_->FindInstance(SopInstanceUid(sop));
    return found.ok() && found->has_value();
  }

  size_t IncomingFiles() {
    size_t n = 0;
    std::error_code ec;
    for (const auto& e :
         std::filesystem::directory_iterator(tmp_.path() / "spool" / "incoming", ec)) {
      (void)e;
      ++n;
    }
    return n;
  }

  JobId MakeJob(JobState state) {
    JobRecord job;
    job.study_uid = StudyUid(kStudy);
    job.route = "ct";
    job.tool = "reference";
    job.created_at = job.updated_at = job.next_attempt_at = clock_.Now();
    AuditEvent audit;
    audit.at = clock_.Now();
    audit.action = "route";
    audit.outcome = "success";
    auto id = index_->CreateJob(job, audit);
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    job.id = *id;
    job.state = state;
    audit.action = "dispatch";
    EXPECT_TRUE(index_->UpdateJob(job, audit).ok());
    return *id;
  }

  httplib::Headers Bearer(JobId job) {
    return {{"Authorization", "Bearer " + tokens_->TokenFor(job)}};
  }

  std::vector<AuditEvent> AuditOf(const std::string& action) {
    std::vector<AuditEvent> out;
    auto events = index_->ListAudit(1000, 0);
    EXPECT_TRUE(events.ok());
    for (const AuditEvent& e : *events) {
      if (e.action == action) out.push_back(e);
    }
    return out;
  }

  testing::TempDir tmp_;
  FakeClock clock_;
  Config config_;
  Metrics metrics_;
  std::unique_ptr<Spool> spool_;
  std::unique_ptr<Index> index_;
  std::unique_ptr<Router> router_;
  std::unique_ptr<StudyAssembler> assembler_;
  std::unique_ptr<ResultIntake> intake_;
  std::unique_ptr<IngestService> ingest_;
  std::optional<JobTokens> tokens_;
  std::unique_ptr<DicomwebContext> dicomweb_;
  std::unique_ptr<AdminServer> server_;
  std::unique_ptr<httplib::Client> client_;
  httplib::Headers last_headers_;
  std::atomic<int> wakes_{0};
  int made_ = 0;
};

TEST_F(StowTest, StoresOneInstanceDurablyAndSaysWhere) {
  const std::string sop = std::string(kStudy) + ".1.1";
  auto [status, body] = Store("/dicom-web/studies", {Instance(kStudy, sop)});
  ASSERT_EQ(status, 200) << body.dump();
  EXPECT_EQ(body["00081190"]["Value"][0],
            "https://conduit.example.nhs.uk/dicom-web/studies/" + std::string(kStudy));
  json stored = Items(body, "00081199");
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(Uid(stored[0], "00081155"), sop);
  EXPECT_EQ(Uid(stored[0], "00081150"), testing::kCtImageStorage);
  EXPECT_EQ(Uid(stored[0], "00081190"), "https://conduit.example.nhs.uk/dicom-web/studies/" +
                                            std::string(kStudy) + "/series/" + kStudy +
                                            ".1/instances/" + sop);
  EXPECT_FALSE(body.contains("00081198"));
  EXPECT_TRUE(Stored(sop));
  EXPECT_EQ(IncomingFiles(), 0u);

  std::vector<AuditEvent> receives = AuditOf("receive");
  ASSERT_EQ(receives.size(), 1u);
  EXPECT_EQ(receives[0].actor, kStowActor);
  EXPECT_EQ(json::parse(receives[0].detail)["protocol"], "DICOMweb");
  EXPECT_EQ(metrics_.Value("conduit_stow_instances_total", "outcome=\"stored\""), 1);
  EXPECT_GT(metrics_.Value("conduit_stow_bytes_total"), 0);
}

TEST_F(StowTest, StoresManyInstancesOfSeveralStudiesInOneRequest) {
  std::vector<std::string> instances;
  std::vector<std::string> sops;
  for (int i = 0; i < 30; ++i) {
    const std::string study = i % 2 ? kStudy : kOtherStudy;
    sops.push_back(study + ".1." + std::to_string(i + 1));
    instances.push_back(Instance(study, sops.back()));
  }
  auto [status, body] = Store("/dicom-web/studies", instances);
  ASSERT_EQ(status, 200) << body.dump();
  EXPECT_FALSE(body["00081190"].contains("Value")) << "two studies: no single study URL";
  ASSERT_EQ(Items(body, "00081199").size(), sops.size());
  for (size_t i = 0; i < sops.size(); ++i) {
    EXPECT_EQ(Uid(Items(body, "00081199")[i], "00081155"), sops[i]);
    EXPECT_TRUE(Stored(sops[i])) << i;
  }
  auto studies = index_->ListStudies(10, 0);
  ASSERT_TRUE(studies.ok());
  EXPECT_EQ(studies->size(), 2u);
}

TEST_F(StowTest, InstancesOfAnotherStudyThanThePathAreRefused) {
  const std::string path = "/dicom-web/studies/" + std::string(kStudy);
  const std::string wrong = std::string(kOtherStudy) + ".1.1";
  auto [status, body] = Store(path, {Instance(kOtherStudy, wrong)});
  EXPECT_EQ(status, 409) << body.dump();
  EXPECT_EQ(FailureReasons(body), std::vector<int>{kStowStudyMismatch});
  EXPECT_EQ(Uid(Items(body, "00081198")[0], "00081155"), wrong);
  EXPECT_FALSE(Stored(wrong));

  const std::string right = std::string(kStudy) + ".1.1";
  std::tie(status, body) = Store(path, {Instance(kStudy, right), Instance(kOtherStudy, wrong)});
  EXPECT_EQ(status, 202) << body.dump();
  EXPECT_EQ(Items(body, "00081199").size(), 1u);
  EXPECT_EQ(FailureReasons(body), std::vector<int>{kStowStudyMismatch});
  EXPECT_TRUE(Stored(right));
  EXPECT_FALSE(Stored(wrong));
  EXPECT_EQ(IncomingFiles(), 0u);
  EXPECT_EQ(AuditOf("reject").size(), 2u);

  std::tie(status, body) = Store("/dicom-web/studies/1.2.x", {Instance(kStudy, right)});
  EXPECT_EQ(status, 400);
}

TEST_F(StowTest, PartsThatAreNotDicomFailAndTheOthersAreStored) {
  const std::string sop = std::string(kStudy) + ".1.1";
  auto [status, body] =
      PostParts("/dicom-web/studies", {{"text/plain", "hello"},
                                       {"application/dicom", Instance(kStudy, sop)},
                                       {"application/dicom", std::string(1000, 'x')},
                                       {"application/dicom", ""},
                                       {"", Instance(kStudy, sop + "1")}});
  EXPECT_EQ(status, 202) << body.dump();
  EXPECT_EQ(FailureReasons(body), (std::vector<int>{kStowCannotUnderstand, kStowCannotUnderstand,
                                                    kStowCannotUnderstand}));
  for (const json& item : Items(body, "00081198")) {
    EXPECT_EQ(Uid(item, "00081155"), "") << "an unreadable part has no UIDs";
  }
  EXPECT_EQ(Items(body, "00081199").size(), 2u) << "a part without Content-Type is DICOM";
  EXPECT_TRUE(Stored(sop));
  EXPECT_EQ(IncomingFiles(), 0u);
  EXPECT_EQ(metrics_.Value("conduit_stow_instances_total", "outcome=\"failed\""), 3);

  std::tie(status, body) = PostParts("/dicom-web/studies", {{"image/jpeg", "\xff\xd8"}});
  EXPECT_EQ(status, 409);
}

TEST_F(StowTest, RequestsOfTheWrongKindAreRefusedBeforeReading) {
  const std::string instance = Instance(kStudy, std::string(kStudy) + ".1.1");
  struct Case {
    std::string content_type;
    std::string accept;
    int status;
  };
  const std::vector<Case> cases = {
      {"application/dicom", "", 415},
      {"application/json", "", 415},
      {"multipart/related; type=\"application/dicom+xml\"; boundary=b", "", 415},
      {"multipart/related; type=\"application/dicom+json\"; boundary=b", "", 415},
      {"multipart/form-data; boundary=b", "", 415},
      {"multipart/related; type=\"application/dicom\"", "", 400},
      {"multipart/related; type=\"application/dicom\"; boundary=b", "application/dicom+xml", 406},
      {"multipart/related; type=\"application/dicom\"; boundary=b",
       "application/dicom+json;q=0, application/dicom+xml", 406},
  };
  for (const Case& c : cases) {
    httplib::Headers headers;
    if (!c.accept.empty()) headers.emplace("Accept", c.accept);
    auto res = client_->Post("/dicom-web/studies", headers, instance, c.content_type.c_str());
    ASSERT_TRUE(res) << c.content_type;
    EXPECT_EQ(res->status, c.status) << c.content_type << " / " << c.accept;
    EXPECT_TRUE(json::parse(res->body, nullptr, false)["error"].is_string()) << res->body;
  }
  // Accepted Accept values.
  for (std::string accept : {"application/dicom+json", "application/json", "*/*",
                             "application/dicom+xml, application/*;q=0.5"}) {
    auto [status, body] =
        Store("/dicom-web/studies", {Instance(kStudy, std::string(kStudy) + ".1.2")},
              {{"Accept", accept}});
    EXPECT_EQ(status, 200) << accept;
  }
  EXPECT_FALSE(Stored(std::string(kStudy) + ".1.1"));
  // Methods other than POST, and POST elsewhere under /dicom-web.
  auto put = client_->Put("/dicom-web/studies", instance, "application/dicom");
  ASSERT_TRUE(put);
  EXPECT_EQ(put->status, 405);
  EXPECT_EQ(put->get_header_value("Allow"), "POST");
  auto post = client_->Post("/dicom-web/studies/1.2/series", instance, "application/dicom");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 405);
  EXPECT_EQ(post->get_header_value("Allow"), "GET, HEAD");
}

TEST_F(StowTest, AnEmptyBodyIsABadRequest) {
  auto [status, body] = PostParts("/dicom-web/studies", {});
  EXPECT_EQ(status, 400);
  auto res = client_->Post("/dicom-web/studies", "", std::string(kDicomType) + "b");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
}

TEST_F(StowTest, ATruncatedBodyKeepsTheCompletePartsAndRemovesTheRest) {
  const std::string first = std::string(kStudy) + ".1.1";
  const std::string second = std::string(kStudy) + ".1.2";
  MultipartWriter writer;
  std::string body = writer.PartHeader("application/dicom");
  body += Instance(kStudy, first);
  body += writer.PartHeader("application/dicom");
  const std::string cut = Instance(kStudy, second);
  body += cut.substr(0, cut.size() / 2);
  std::string request = "POST /dicom-web/studies HTTP/1.1\r\nHost: x\r\nContent-Type: " +
                        writer.ContentType("application/dicom") +
                        "\r\nContent-Length: " + std::to_string(body.size() + 5000) + "\r\n\r\n" +
                        body;
  std::string reply = RawExchange(server_->port(), request);
  ASSERT_TRUE(reply.starts_with("HTTP/1.1 202")) << reply.substr(0, 400);
  json module = json::parse(reply.substr(reply.find("\r\n\r\n") + 4), nullptr, false);
  EXPECT_EQ(Items(module, "00081199").size(), 1u);
  EXPECT_EQ(FailureReasons(module), std::vector<int>{kStowCannotUnderstand});
  EXPECT_TRUE(Stored(first));
  EXPECT_FALSE(Stored(second));
  EXPECT_EQ(IncomingFiles(), 0u) << "the incomplete part's file is removed";

  // Malformed: a complete body without its close delimiter, nothing stored before.
  const std::string lone = std::string(kStudy) + ".1.3";
  MultipartWriter other;
  std::string unclosed = other.PartHeader("application/dicom") + Instance(kStudy, lone);
  auto res =
      client_->Post("/dicom-web/studies", unclosed, other.ContentType("application/dicom").c_str());
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400) << res->body;
  EXPECT_FALSE(Stored(lone));
  EXPECT_EQ(IncomingFiles(), 0u);
}

TEST_F(StowTest, BodiesOverTheLimitAre413) {
  config_.http.max_stow_bytes = 64 * 1024;
  StartServer();
  const std::string small = std::string(kStudy) + ".1.1";
  MultipartWriter writer;
  std::string body = Body(writer, {{"application/dicom", Instance(kStudy, small)},
                                   {"application/dicom", std::string(100 * 1024, 'x')}});
  auto res =
      client_->Post("/dicom-web/studies", body, writer.ContentType("application/dicom").c_str());
  if (res) {  // the server may close before reading all of it
    EXPECT_EQ(res->status, 413);
    EXPECT_EQ(res->get_header_value("Connection"), "close");
  }
  EXPECT_FALSE(Stored(small)) << "refused by Content-Length before reading";

  // Chunked: the limit is found while reading; what was stored by then stays stored.
  size_t sent = 0;
  res = client_->Post(
      "/dicom-web/studies",
      [&](size_t, httplib::DataSink& sink) {
        if (sent < body.size()) {
          size_t n = std::min<size_t>(8192, body.size() - sent);
          sink.write(body.data() + sent, n);
          sent += n;
        } else {
          sink.done();
        }
        return true;
      },
      writer.ContentType("application/dicom").c_str());
  if (res) {
    EXPECT_EQ(res->status, 413);
    json module = json::parse(res->body, nullptr, false);
    EXPECT_EQ(Items(module, "00081199").size(), 1u) << res->body;
  }
  EXPECT_TRUE(Stored(small));
  EXPECT_EQ(IncomingFiles(), 0u);
  // The server still serves.
  auto [status, module] = Store("/dicom-web/studies", {Instance(kStudy, small + "9")});
  EXPECT_EQ(status, 200);
}

TEST_F(StowTest, ARepeatedInstanceIsStoredAgainAndCountedAsDuplicate) {
  const std::string sop = std::string(kStudy) + ".1.1";
  const std::string instance = Instance(kStudy, sop);
  EXPECT_EQ(Store("/dicom-web/studies", {instance}).first, 200);
  EXPECT_EQ(Store("/dicom-web/studies/" + std::string(kStudy), {instance}).first, 200);
  auto study = index_->GetStudy(StudyUid(kStudy));
  ASSERT_TRUE(study.ok() && study->has_value());
  EXPECT_EQ((*study)->instance_count, 1);
  EXPECT_EQ(metrics_.Value("conduit_instances_duplicate_total"), 1);
}

TEST_F(StowTest, AToolStoresResultsForItsJobWithItsToken) {
  const JobId job = MakeJob(JobState::kAwaitingResults);
  const std::string path = "/dicom-web/jobs/" + std::to_string(job.value) + "/studies";
  const std::string result = std::string(kStudy) + ".9.1";
  const int wakes_before = wakes_;
  auto [status, body] = Store(path, {Result(kStudy, result)}, Bearer(job));
  ASSERT_EQ(status, 200) << body.dump();
  EXPECT_FALSE(body["00081190"].contains("Value"));
  auto results = index_->ListResults(job);
  ASSERT_TRUE(results.ok());
  ASSERT_EQ(results->size(), 1u);
  EXPECT_EQ((*results)[0].sop_instance_uid.str(), result);
  EXPECT_FALSE(Stored(result)) << "a result is not an input instance";
  EXPECT_GT(wakes_, wakes_before);

  // With the study in the path too; a result for another study is quarantined.
  std::tie(status, body) = Store(path + "/" + kStudy, {Result(kStudy, result + "2")}, Bearer(job));
  EXPECT_EQ(status, 200) << body.dump();
  std::tie(status, body) = Store(path, {Result(kOtherStudy, result + "3")}, Bearer(job));
  EXPECT_EQ(status, 409) << body.dump();
  EXPECT_EQ(FailureReasons(body), std::vector<int>{kStowResultQuarantined});
  EXPECT_EQ(index_->ListResults(job)->size(), 2u);
  EXPECT_EQ(IncomingFiles(), 0u);
}

// A pull performer (IHE AIW-I) stores its results with its worklist token; another tool's
// worklist token is refused like a wrong job token.
TEST_F(StowTest, AWorklistToolStoresResultsOfItsOwnJobsWithItsWorklistToken) {
  auto worklist_tokens =
      WorklistTokens::FromTokens({{"reference", "wl-reference"}, {"other", "wl-other"}});
  ASSERT_TRUE(worklist_tokens.ok());
  dicomweb_->worklist_tokens = &*worklist_tokens;
  const JobId job = MakeJob(JobState::kAwaitingResults);
  const std::string path = "/dicom-web/jobs/" + std::to_string(job.value) + "/studies";
  auto [status, body] = Store(path, {Result(kStudy, std::string(kStudy) + ".9.1")},
                              {{"Authorization", "Bearer wl-reference"}});
  EXPECT_EQ(status, 200) << body.dump();
  std::tie(status, body) = Store(path, {Result(kStudy, std::string(kStudy) + ".9.2")},
                                 {{"Authorization", "Bearer wl-other"}});
  EXPECT_EQ(status, 401) << body.dump();
  EXPECT_EQ(index_->ListResults(job)->size(), 1u);
  EXPECT_EQ(AuditOf("result_refused").size(), 1u);
  dicomweb_->worklist_tokens = nullptr;
}

TEST_F(StowTest, AnUnreadableResultIsQuarantinedAgainstTheToolAndTheRestStored) {
  const JobId job = MakeJob(JobState::kAwaitingResults);
  const std::string path = "/dicom-web/jobs/" + std::to_string(job.value) + "/studies";
  const std::string good = std::string(kStudy) + ".9.1";
  std::string truncated = Result(kStudy, std::string(kStudy) + ".9.2");
  truncated.resize(200);
  auto [status, body] = Store(path, {Result(kStudy, good), truncated}, Bearer(job));
  EXPECT_EQ(status, 202) << body.dump();
  EXPECT_EQ(FailureReasons(body), std::vector<int>{kStowResultQuarantined});
  ASSERT_EQ(index_->ListResults(job)->size(), 1u);
  std::vector<AuditEvent> quarantined = AuditOf("quarantine");
  ASSERT_EQ(quarantined.size(), 1u);
  EXPECT_EQ(quarantined[0].job_id, job);
  EXPECT_NE(quarantined[0].detail.find("not readable DICOM"), std::string::npos);
  EXPECT_EQ(metrics_.Value("conduit_tool_results_invalid_total", "tool=\"reference\""), 1);
  EXPECT_EQ(IncomingFiles(), 0u);
}

TEST_F(StowTest, TheResultsEndpointRefusesWithoutTheJobsToken) {
  const JobId job = MakeJob(JobState::kAwaitingResults);
  const JobId other{job.value + 1};
  const std::string path = "/dicom-web/jobs/" + std::to_string(job.value) + "/studies";
  const std::string instance = Result(kStudy, std::string(kStudy) + ".9.1");
  const std::string wrong_token = tokens_->TokenFor(other);
  struct Case {
    httplib::Headers headers;
    bool invalid;
  };
  const std::vector<Case> cases = {
      {{}, false},
      {{{"Authorization", "Bearer " + wrong_token}}, true},
      {{{"Authorization", "Basic " + tokens_->TokenFor(job)}}, false},
      {{{"Authorization", "Bearer "}}, false},
  };
  for (const Case& c : cases) {
    auto [status, body] = Store(path, {instance}, c.headers);
    EXPECT_EQ(status, 401);
    std::string challenge;
    for (const auto& [k, v] : last_headers_) {
      if (k == "WWW-Authenticate") challenge = v;
    }
    EXPECT_TRUE(challenge.starts_with("Bearer")) << challenge;
    EXPECT_EQ(challenge.find("invalid_token") != std::string::npos, c.invalid) << challenge;
  }
  EXPECT_TRUE(index_->ListResults(job)->empty());
  // Every refusal is counted; one a minute of each reason from this peer is audited.
  EXPECT_EQ(metrics_.Value("conduit_http_auth_refused_total", "guard=\"job\",reason=\"missing\""),
            3);
  EXPECT_EQ(metrics_.Value("conduit_http_auth_refused_total", "guard=\"job\",reason=\"invalid\""),
            1);
  std::vector<AuditEvent> refused = AuditOf("result_refused");
  ASSERT_EQ(refused.size(), 2u);
  for (const AuditEvent& e : refused) {
    EXPECT_EQ(e.job_id, job);
    EXPECT_EQ(e.detail.find(wrong_token), std::string::npos) << "tokens are never recorded";
    EXPECT_EQ(json::parse(e.detail)["route"], "/dicom-web/jobs/{id}/studies") << "not the path";
  }
}

TEST_F(StowTest, TheResultsEndpointNeedsAJobThatTakesResults) {
  const JobId queued = MakeJob(JobState::kQueued);
  const std::string instance = Result(kStudy, std::string(kStudy) + ".9.1");
  auto [status, body] = Store("/dicom-web/jobs/" + std::to_string(queued.value) + "/studies",
                              {instance}, Bearer(queued));
  EXPECT_EQ(status, 409) << body.dump();
  EXPECT_TRUE(index_->ListResults(queued)->empty());

  const JobId missing{queued.value + 100};
  std::tie(status, body) = Store("/dicom-web/jobs/" + std::to_string(missing.value) + "/studies",
                                 {instance}, Bearer(missing));
  EXPECT_EQ(status, 404);
  std::tie(status, body) = Store("/dicom-web/jobs/abc/studies", {instance});
  EXPECT_EQ(status, 404);
  EXPECT_EQ(IncomingFiles(), 0u);
}

// A STOW-RS request of several hundred MB, sent chunked, never sits in memory: the peak
// resident size of this process (server and client) grows by far less than the body.
TEST_F(StowTest, AHugeChunkedBodyIsStreamedInBoundedMemory) {
  constexpr int kParts = 3;
  constexpr size_t kPayloadBytes = 80u << 20;  // per part
  // Each part: a small CT followed by a large private OB element (group 7FE1, after the
  // pixel data), so it stays a valid Part 10 file of ~80 MB.
  std::vector<std::string> heads;
  for (int i = 0; i < kParts; ++i) {
    std::string head = Instance(kStudy, std::string(kStudy) + ".5." + std::to_string(i + 1));
    const char creator[] =
        "\xE1\x7F\x10\x00LO\x0C\x00"
        "CONDUIT TEST";
    head.append(creator, sizeof creator - 1);
    const uint32_t n = kPayloadBytes;
    const char ob[] = "\xE1\x7F\x10\x10OB\x00\x00";
    head.append(ob, sizeof ob - 1);
    head.append(reinterpret_cast<const char*>(&n), 4);
    heads.push_back(head);
  }
  MultipartWriter writer;
  const std::string block(256 * 1024, '\x5A');
  int part = 0;
  size_t payload_sent = 0;
  bool header_sent = false;
  bool closed = false;
  const int64_t peak_before_kb = testing::PeakResidentKb();
  auto res = client_->Post(
      "/dicom-web/studies",
      [&](size_t, httplib::DataSink& sink) {
        if (closed) {
          sink.done();
        } else if (part == kParts) {
          std::string close = writer.Close();
          sink.write(close.data(), close.size());
          closed = true;
        } else if (!header_sent) {
          std::string start = writer.PartHeader("application/dicom") + heads[part];
          sink.write(start.data(), start.size());
          header_sent = true;
        } else {
          size_t n = std::min(block.size(), kPayloadBytes - payload_sent);
          sink.write(block.data(), n);
          payload_sent += n;
          if (payload_sent == kPayloadBytes) {
            ++part;
            payload_sent = 0;
            header_sent = false;
          }
        }
        return true;
      },
      writer.ContentType("application/dicom").c_str());
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  ASSERT_EQ(res->status, 200) << res->body;
  for (int i = 0; i < kParts; ++i) {
    EXPECT_TRUE(Stored(std::string(kStudy) + ".5." + std::to_string(i + 1))) << i;
  }
  const int64_t growth_kb = testing::PeakResidentKb() - peak_before_kb;
  EXPECT_LT(growth_kb, 64 << 10) << "peak RSS grew by " << growth_kb << " KiB for a "
                                 << kParts * kPayloadBytes << "-byte body";
  EXPECT_GT(metrics_.Value("conduit_stow_bytes_total"), double(kParts * kPayloadBytes));
}

TEST_F(StowTest, RoutesAreLoggedAndCountedWithoutUids) {
  const std::string sop = std::string(kStudy) + ".1.1";
  EXPECT_EQ(Store("/dicom-web/studies/" + std::string(kStudy), {Instance(kStudy, sop)}).first, 200);
  // Counted just after the response is written: wait for it (bounded).
  const char* labels = R"(method="POST",route="/dicom-web/studies/{uid}",code="200")";
  EXPECT_TRUE(testing::Eventually(
      [&] { return metrics_.Value("conduit_http_requests_total", labels) >= 1; }, 30s));
  EXPECT_EQ(metrics_.RenderPrometheus().find(kStudy), std::string::npos);
}

TEST_F(StowTest, AdminRoutesKeepTheirLimitAndDicomwebIsAbsentWithoutItsContext) {
  auto res = client_->Post("/api/tools", std::string(2 << 20, 'x'), "application/yaml");
  if (res) {
    EXPECT_EQ(res->status, 413);
  }
  auto health = client_->Get("/api/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);

  StartServer(/*with_dicomweb=*/false);
  auto [status, body] =
      Store("/dicom-web/studies", {Instance(kStudy, std::string(kStudy) + ".1.1")});
  EXPECT_EQ(status, 404);
  auto get = client_->Get("/dicom-web/studies");
  ASSERT_TRUE(get);
  EXPECT_EQ(get->status, 404);
}

// An independent client: curl posting a multipart/related body from a file, chunked.
TEST_F(StowTest, CurlCanStoreInstances) {
  if (std::system("curl --version >/dev/null 2>&1") != 0) GTEST_SKIP() << "curl not installed";
  MultipartWriter writer;
  const std::string sop = std::string(kStudy) + ".1.1";
  const auto file = tmp_.path() / "body.mpr";
  {
    std::ofstream out(file, std::ios::binary);
    out << Body(writer, {{"application/dicom", Instance(kStudy, sop)},
                         {"application/dicom", Instance(kStudy, sop + "1")}});
  }
  auto result = testing::RunCommand(
      {"curl", "-sS", "-o", (tmp_.path() / "reply.json").string(), "-w", "%{http_code}", "-X",
       "POST", "-H", "Content-Type: " + writer.ContentType("application/dicom"), "-H",
       "Accept: application/dicom+json", "-H", "Transfer-Encoding: chunked", "--data-binary",
       "@" + file.string(),
       "http://127.0.0.1:" + std::to_string(server_->port()) + "/dicom-web/studies"},
      60s);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(result.output, "200");
  json module = json::parse(ReadFile(tmp_.path() / "reply.json"), nullptr, false);
  EXPECT_EQ(Items(module, "00081199").size(), 2u) << module.dump();
  EXPECT_TRUE(Stored(sop));
}

}  // namespace
}  // namespace conduit
