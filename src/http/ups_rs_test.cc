// UPS-RS over the real stack: SqliteIndex, Worklist, the admin HTTP server and the event
// channel on 127.0.0.1, driven by httplib and a Beast WebSocket client.
#include "http/ups_rs.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/metrics.h"
#include "http/admin_server.h"
#include "http/ups_event_channel.h"
#include "store/sqlite_index.h"
#include "testing/testing.h"

namespace conduit {
namespace {

namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
namespace net = boost::asio;
using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr auto kWait = 20s;
constexpr char kStudy[] = "1.2.826.0.1.3680043.10.1.1";

json Attr(const char* vr, const std::string& value) {
  return json{{"vr", vr}, {"Value", json::array({value})}};
}

std::string StateBody(const std::string& state, const std::string& transaction) {
  json ds = {{"00741000", Attr("CS", state)}};
  if (!transaction.empty()) ds["00081195"] = Attr("UI", transaction);
  return ds.dump();
}

class UpsRsTest : public ::testing::Test {
 protected:
  UpsRsTest() {
    config_.http.bind = "127.0.0.1";
    config_.http.port = 0;
    config_.http.threads = 2;
    for (const char* name : {"alpha", "beta"}) {
      ToolConfig tool;
      tool.name = name;
      tool.kind = ToolKind::kWorklist;
      config_.tools.push_back(tool);
    }
    index_ = std::move(OpenSqliteIndex(tmp_.path() / "index.sqlite").value());
    tokens_ = WorklistTokens::FromTokens({{"alpha", "tok-alpha"}, {"beta", "tok-beta"}}).value();
    // As the gateway wires it: the worklist is built below, before any upgrade arrives.
    channel_ = std::make_unique<UpsEventChannel>(
        UpsEventChannelOptions{}, [this](const std::string& ae, const std::string& token) {
          return WorklistChannelAuthorizer(tokens_, *worklist_, "admin-secret")(ae, token);
        });
    EXPECT_TRUE(channel_->Start().ok());
    worklist_ = std::make_unique<Worklist>(*index_, clock_, config_, metrics_, channel_.get(),
                                           UpsFilterMatches,
                                           [this](JobId job) { changed_.push_back(job); });
    ups_ = std::make_unique<UpsRsContext>(
        UpsRsContext{*worklist_, tokens_, *index_, clock_, metrics_, "admin-secret"});
    AdminContext ctx{config_, *index_, metrics_, clock_, {}, {}};
    ctx.ups_rs = ups_.get();
    server_ = MakeAdminServer(std::move(ctx));
    EXPECT_TRUE(server_->Start().ok());
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    client_->set_read_timeout(kWait);
  }
  ~UpsRsTest() override {
    server_->Stop();
    channel_->Stop();
  }

  // A job of `tool` with a SCHEDULED workitem; returns the workitem UID.
  std::string Schedule(const std::string& tool, const std::string& priority = "MEDIUM",
                       const std::string& patient = "PID-1") {
    JobRecord job;
    job.study_uid = StudyUid(std::string(kStudy) + "." + std::to_string(jobs_.size() + 1));
    job.route = "r";
    job.tool = tool;
    job.created_at = job.updated_at = job.next_attempt_at = clock_.Now();
    AuditEvent audit;
    audit.at = clock_.Now();
    audit.action = "route";
    audit.outcome = "success";
    auto id = index_->CreateJob(job, audit);
    EXPECT_TRUE(id.ok());
    job.id = *id;
    json ds = {{"00100020", Attr("LO", patient)}, {"0020000D", Attr("UI", job.study_uid.str())}};
    auto w = worklist_->ScheduleForJob(job, tool, ds.dump(), priority);
    EXPECT_TRUE(w.ok()) << w.status().ToString();
    jobs_.push_back(job.id);
    return w.ok() ? w->uid : "";
  }

  httplib::Headers Auth(const std::string& token) {
    return {{"Authorization", "Bearer " + token}, {"Accept", "application/dicom+json"}};
  }

  httplib::Result Put(const std::string& path, const std::string& body,
                      const std::string& token = "tok-alpha") {
    return client_->Put(path.c_str(), Auth(token), body, "application/dicom+json");
  }
  httplib::Result Post(const std::string& path, const std::string& body,
                       const std::string& token = "tok-alpha") {
    return client_->Post(path.c_str(), Auth(token), body, "application/dicom+json");
  }
  httplib::Result Get(const std::string& path, const std::string& token = "tok-alpha") {
    return client_->Get(path.c_str(), Auth(token));
  }

  size_t AuditCount(const std::string& action) {
    auto events = index_->ListAudit(1000, 0);
    size_t n = 0;
    for (const AuditEvent& e : *events) n += e.action == action;
    return n;
  }

  testing::TempDir tmp_;
  Config config_;
  FakeClock clock_;
  Metrics metrics_;
  std::unique_ptr<Index> index_;
  WorklistTokens tokens_;
  std::unique_ptr<UpsEventChannel> channel_;
  std::unique_ptr<Worklist> worklist_;
  std::unique_ptr<UpsRsContext> ups_;
  std::unique_ptr<AdminServer> server_;
  std::unique_ptr<httplib::Client> client_;
  std::vector<JobId> changed_;
  std::vector<JobId> jobs_;
};

TEST_F(UpsRsTest, PerformerSearchesClaimsUpdatesAndCompletes) {
  const std::string uid = Schedule("alpha");
  auto found = Get("/dicom-web/workitems?ProcedureStepState=SCHEDULED");
  ASSERT_TRUE(found);
  ASSERT_EQ(found->status, 200) << found->body;
  EXPECT_EQ(found->get_header_value("Content-Type"), "application/dicom+json");
  json list = json::parse(found->body);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["00080018"]["Value"][0], uid);
  EXPECT_EQ(list[0]["00741000"]["Value"][0], "SCHEDULED");

  auto one = Get("/dicom-web/workitems/" + uid);
  ASSERT_EQ(one->status, 200);
  EXPECT_EQ(json::parse(one->body)[0]["00100020"]["Value"][0], "PID-1");

  const std::string txn = "2.25.4242";
  auto claim = Put("/dicom-web/workitems/" + uid + "/state", StateBody("IN PROGRESS", txn));
  ASSERT_EQ(claim->status, 200) << claim->body;
  auto again = Put("/dicom-web/workitems/" + uid + "/state", StateBody("IN PROGRESS", "2.25.1"));
  EXPECT_EQ(again->status, 409) << again->body;
  EXPECT_NE(again->get_header_value("Warning").find("inconsistent"), std::string::npos);
  EXPECT_EQ(Get("/dicom-web/workitems/" + uid)->body.find(txn), std::string::npos)
      << "the Transaction UID is never shown";

  const std::string progress =
      json{{"00741002",
            {{"vr", "SQ"},
             {"Value", json::array({{{"00741004", {{"vr", "DS"}, {"Value", {50}}}}}})}}}}
          .dump();
  auto update = Post("/dicom-web/workitems/" + uid + "?" + txn, progress);
  EXPECT_EQ(update->status, 200) << update->body;
  auto wrong = Post("/dicom-web/workitems/" + uid + "?transaction=2.25.9", progress);
  EXPECT_EQ(wrong->status, 400);
  EXPECT_NE(wrong->get_header_value("Warning").find("Transaction UID is incorrect"),
            std::string::npos);
  auto missing = Post("/dicom-web/workitems/" + uid, progress);
  EXPECT_EQ(missing->status, 400);
  EXPECT_NE(missing->get_header_value("Warning").find("missing"), std::string::npos);

  auto done = Put("/dicom-web/workitems/" + uid + "/state", StateBody("COMPLETED", txn));
  ASSERT_EQ(done->status, 200) << done->body;
  EXPECT_EQ(changed_.size(), 1u) << "the job engine is told";
  auto repeat = Put("/dicom-web/workitems/" + uid + "/state", StateBody("COMPLETED", txn));
  EXPECT_EQ(repeat->status, 200) << "a retried completion";
  auto late = Post("/dicom-web/workitems/" + uid + "?" + txn, progress);
  EXPECT_EQ(late->status, 400) << late->body;
  EXPECT_NE(late->get_header_value("Warning").find("claimed Workitem"), std::string::npos);
}

TEST_F(UpsRsTest, StateChangeRequiresTheTransactionUidAndAValidBody) {
  const std::string uid = Schedule("alpha");
  auto missing = Put("/dicom-web/workitems/" + uid + "/state", StateBody("IN PROGRESS", ""));
  EXPECT_EQ(missing->status, 400);
  EXPECT_EQ(missing->get_header_value("Warning"),
            "299 conduit: \"The Transaction UID is missing.\"");
  auto bad = Put("/dicom-web/workitems/" + uid + "/state", "{\"00741000\":");
  EXPECT_EQ(bad->status, 400);
  EXPECT_NE(bad->body.find("not valid JSON"), std::string::npos);
  auto unknown = Put("/dicom-web/workitems/2.25.999/state", StateBody("IN PROGRESS", "2.25.1"));
  EXPECT_EQ(unknown->status, 404);
  auto not_uid = Get("/dicom-web/workitems/not-a-uid");
  EXPECT_EQ(not_uid->status, 400);
  auto wrong_method =
      client_->Delete(("/dicom-web/workitems/" + uid + "/state").c_str(), Auth("tok-alpha"));
  EXPECT_EQ(wrong_method->status, 405);
  EXPECT_EQ(wrong_method->get_header_value("Allow"), "PUT");
}

TEST_F(UpsRsTest, TokensSeparateWorklistsAndRefusalsAreAudited) {
  const std::string uid = Schedule("alpha");
  auto none = client_->Get("/dicom-web/workitems");
  EXPECT_EQ(none->status, 401);
  EXPECT_EQ(none->get_header_value("WWW-Authenticate"), "Bearer realm=\"conduit\"");
  auto wrong = Get("/dicom-web/workitems", "not-a-token");
  EXPECT_EQ(wrong->status, 401);
  EXPECT_NE(wrong->get_header_value("WWW-Authenticate").find("invalid_token"), std::string::npos);
  EXPECT_EQ(wrong->body.find("not-a-token"), std::string::npos);
  EXPECT_EQ(AuditCount("ups_refused"), 2u);

  EXPECT_EQ(Get("/dicom-web/workitems", "tok-beta")->status, 204) << "beta's worklist is empty";
  EXPECT_EQ(Get("/dicom-web/workitems/" + uid, "tok-beta")->status, 404);
  EXPECT_EQ(
      Put("/dicom-web/workitems/" + uid + "/state", StateBody("IN PROGRESS", "2.25.1"), "tok-beta")
          ->status,
      404);

  auto admin = Get("/dicom-web/workitems", "admin-secret");
  ASSERT_EQ(admin->status, 200);
  EXPECT_EQ(json::parse(admin->body).size(), 1u);
  auto admin_claim = Put("/dicom-web/workitems/" + uid + "/state",
                         StateBody("IN PROGRESS", "2.25.1"), "admin-secret");
  EXPECT_EQ(admin_claim->status, 403);
  EXPECT_EQ(AuditCount("ups_refused"), 3u);
}

TEST_F(UpsRsTest, CreateByOutsideRequesterIsRefused) {
  auto r = Post("/dicom-web/workitems", json{{"00741000", Attr("CS", "SCHEDULED")}}.dump());
  EXPECT_EQ(r->status, 403);
  EXPECT_NE(r->body.find("RAD-80"), std::string::npos);
}

TEST_F(UpsRsTest, SearchMatchesLimitsOffsetsAndIncludefields) {
  const std::string high = Schedule("alpha", "HIGH", "PID-7");
  Schedule("alpha", "LOW", "PID-8");
  Schedule("alpha", "LOW", "PID-9");
  auto r = Get("/dicom-web/workitems?ScheduledProcedureStepPriority=HIGH");
  ASSERT_EQ(r->status, 200);
  json list = json::parse(r->body);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["00080018"]["Value"][0], high);

  auto all_low = Get("/dicom-web/workitems?ScheduledProcedureStepPriority=LOW");
  ASSERT_EQ(all_low->status, 200);
  EXPECT_EQ(json::parse(all_low->body).size(), 2u) << all_low->body;
  auto page = Get("/dicom-web/workitems?ScheduledProcedureStepPriority=LOW&limit=1&offset=1");
  ASSERT_EQ(page->status, 200) << page->body;
  list = json::parse(page->body);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["00100020"]["Value"][0], "PID-9");

  auto narrow = Get("/dicom-web/workitems?PatientID=PID-8&includefield=0020000D");
  ASSERT_EQ(narrow->status, 200);
  list = json::parse(narrow->body);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_TRUE(list[0].contains("0020000D"));
  EXPECT_TRUE(list[0].contains("00100020")) << "a matching key is returned";
  EXPECT_FALSE(list[0].contains("00741202")) << "Worklist Label was not asked for";

  EXPECT_EQ(Get("/dicom-web/workitems?PatientID=nobody")->status, 204);
  EXPECT_EQ(Get("/dicom-web/workitems?ProcedureStepState=COMPLETED")->status, 204);
  auto bad = Get("/dicom-web/workitems?StudyDate=yesterday");
  EXPECT_EQ(bad->status, 400);
}

TEST_F(UpsRsTest, CancelRequestCancelsAScheduledWorkitem) {
  const std::string uid = Schedule("alpha");
  const std::string reason = json{{"00741238", Attr("LT", "not needed")}}.dump();
  auto r = Post("/dicom-web/workitems/" + uid + "/cancelrequest", reason);
  EXPECT_EQ(r->status, 202) << r->body;
  auto again = Post("/dicom-web/workitems/" + uid + "/cancelrequest", "");
  EXPECT_EQ(again->status, 202);
  EXPECT_NE(again->get_header_value("Warning").find("already in the requested state of CANCELED"),
            std::string::npos);
  auto state = Get("/dicom-web/workitems/" + uid);
  EXPECT_EQ(json::parse(state->body)[0]["00741000"]["Value"][0], "CANCELED");
}

// A Beast client on the event channel.
class EventClient {
 public:
  bool Open(int port, const std::string& ae, const std::string& token) {
    beast::error_code ec;
    ws_.next_layer().connect(
        net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port)),
        ec);
    if (ec) return false;
    ws_.set_option(websocket::stream_base::decorator([token](websocket::request_type& req) {
      req.set(beast::http::field::authorization, "Bearer " + token);
    }));
    // Asynchronous: Beast 1.74's synchronous handshake keeps a refusal's response to itself.
    bool done = false;
    ws_.async_handshake(response_, "127.0.0.1", "/ws/subscribers/" + ae, [&](beast::error_code e) {
      ec = e;
      done = true;
    });
    ioc_.restart();
    const auto deadline = std::chrono::steady_clock::now() + kWait;
    while (!done && std::chrono::steady_clock::now() < deadline) ioc_.run_for(100ms);
    return done && !ec;
  }
  // The HTTP status of the handshake's answer (101 when opened).
  unsigned status() const { return response_.result_int(); }
  std::optional<json> Read() {
    beast::flat_buffer buffer;
    bool done = false;
    beast::error_code ec;
    ws_.async_read(buffer, [&](beast::error_code e, size_t) {
      ec = e;
      done = true;
    });
    ioc_.restart();
    const auto deadline = std::chrono::steady_clock::now() + kWait;
    while (!done && std::chrono::steady_clock::now() < deadline) ioc_.run_for(100ms);
    if (!done || ec) return std::nullopt;
    return json::parse(beast::buffers_to_string(buffer.data()));
  }

 private:
  net::io_context ioc_;
  websocket::stream<net::ip::tcp::socket> ws_{ioc_};
  websocket::response_type response_;
};

TEST_F(UpsRsTest, WorklistSubscriberHearsOfNewWorkitemsAndTheirClaims) {
  // RAD-86 first: the AE title's channel opens to the tool subscribed under it.
  auto sub = Post("/dicom-web/workitems/1.2.840.10008.5.1.4.34.5/subscribers/PERF1", "");
  ASSERT_EQ(sub->status, 201) << sub->body;
  EventClient events;
  ASSERT_TRUE(events.Open(channel_->port(), "PERF1", "tok-alpha"));
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (channel_->ConnectionCount("PERF1") == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }

  const std::string uid = Schedule("alpha");
  std::optional<json> scheduled = events.Read();
  ASSERT_TRUE(scheduled);
  EXPECT_EQ((*scheduled)["00001000"]["Value"][0], uid);
  EXPECT_EQ((*scheduled)["00001002"]["Value"][0], 1);
  EXPECT_EQ((*scheduled)["00741000"]["Value"][0], "SCHEDULED");

  ASSERT_EQ(
      Put("/dicom-web/workitems/" + uid + "/state", StateBody("IN PROGRESS", "2.25.7"))->status,
      200);
  std::optional<json> claimed = events.Read();
  ASSERT_TRUE(claimed);
  EXPECT_EQ((*claimed)["00741000"]["Value"][0], "IN PROGRESS");

  EXPECT_EQ(
      Post("/dicom-web/workitems/1.2.840.10008.5.1.4.34.5/subscribers/PERF1/suspend", "")->status,
      200);
  auto gone = client_->Delete("/dicom-web/workitems/1.2.840.10008.5.1.4.34.5/subscribers/PERF1",
                              Auth("tok-alpha"));
  EXPECT_EQ(gone->status, 200) << gone->body;
}

TEST_F(UpsRsTest, SubscriptionRequestsAreChecked) {
  const std::string uid = Schedule("alpha");
  EXPECT_EQ(
      Post("/dicom-web/workitems/" + uid + "/subscribers/PERF1?deletionlock=true", "")->status,
      201);
  EXPECT_EQ(
      Post("/dicom-web/workitems/" + uid + "/subscribers/PERF1?deletionlock=maybe", "")->status,
      400);
  EXPECT_EQ(
      Post("/dicom-web/workitems/" + uid + "/subscribers/" + std::string(17, 'A'), "")->status,
      400);
  EXPECT_EQ(Post("/dicom-web/workitems/1.2.840.10008.5.1.4.34.5.1/subscribers/PERF2?"
                 "ScheduledProcedureStepPriority=HIGH&deletionlock=false",
                 "")
                ->status,
            201);
  auto bad_filter =
      Post("/dicom-web/workitems/1.2.840.10008.5.1.4.34.5.1/subscribers/PERF2?StudyDate=x", "");
  EXPECT_EQ(bad_filter->status, 400);
  EXPECT_NE(bad_filter->body.find("filter"), std::string::npos);
  EXPECT_EQ(Post("/dicom-web/workitems/" + uid + "/subscribers/PERF1/suspend", "")->status, 404);
}

TEST_F(UpsRsTest, EventChannelOpensOnlyToTheToolSubscribedUnderTheAeTitle) {
  ASSERT_EQ(Post("/dicom-web/workitems/1.2.840.10008.5.1.4.34.5/subscribers/PERF1", "")->status,
            201);
  {
    EventClient other_tool;
    EXPECT_FALSE(other_tool.Open(channel_->port(), "PERF1", "tok-beta"));
    EXPECT_EQ(other_tool.status(), 403u) << "beta's token cannot hear alpha's events";
  }
  {
    EventClient unknown;
    EXPECT_FALSE(unknown.Open(channel_->port(), "PERF1", "tok-nobody"));
    EXPECT_EQ(unknown.status(), 401u);
  }
  {
    EventClient unsubscribed;
    EXPECT_FALSE(unsubscribed.Open(channel_->port(), "NOSUB", "tok-alpha"));
    EXPECT_EQ(unsubscribed.status(), 403u) << "no subscription under that AE title yet";
  }
  EXPECT_EQ(channel_->ConnectionCount("PERF1"), 0u);

  EventClient owner;
  ASSERT_TRUE(owner.Open(channel_->port(), "PERF1", "tok-alpha"));
  EXPECT_EQ(owner.status(), 101u);
  EventClient admin;
  ASSERT_TRUE(admin.Open(channel_->port(), "PERF1", "admin-secret"));

  const std::string uid = Schedule("alpha");
  for (EventClient* c : {&owner, &admin}) {
    std::optional<json> scheduled = c->Read();
    ASSERT_TRUE(scheduled);
    EXPECT_EQ((*scheduled)["00001000"]["Value"][0], uid);
  }

  // Once alpha's subscriptions are gone, PERF1 is nobody's: beta may take it.
  ASSERT_EQ(client_
                ->Delete("/dicom-web/workitems/1.2.840.10008.5.1.4.34.5/subscribers/PERF1",
                         Auth("tok-alpha"))
                ->status,
            200);
  EventClient late;
  EXPECT_FALSE(late.Open(channel_->port(), "PERF1", "tok-alpha"));
  EXPECT_EQ(late.status(), 403u);
  ASSERT_EQ(Post("/dicom-web/workitems/1.2.840.10008.5.1.4.34.5/subscribers/PERF1", "", "tok-beta")
                ->status,
            201);
  EventClient beta;
  EXPECT_TRUE(beta.Open(channel_->port(), "PERF1", "tok-beta"));
}

TEST_F(UpsRsTest, SubscriptionUnderAnotherToolsAeTitleIsRefused) {
  const std::string uid = Schedule("beta");
  ASSERT_EQ(Post("/dicom-web/workitems/1.2.840.10008.5.1.4.34.5/subscribers/PERF1", "")->status,
            201);
  auto global =
      Post("/dicom-web/workitems/1.2.840.10008.5.1.4.34.5/subscribers/PERF1", "", "tok-beta");
  EXPECT_EQ(global->status, 403);
  EXPECT_NE(global->body.find("already subscribed by another"), std::string::npos) << global->body;
  auto one = Post("/dicom-web/workitems/" + uid + "/subscribers/PERF1", "", "tok-beta");
  EXPECT_EQ(one->status, 403) << "a workitem subscription as well";
  EXPECT_EQ(Post("/dicom-web/workitems/" + uid + "/subscribers/PERF2", "", "tok-beta")->status,
            201);
  EXPECT_EQ(Post("/dicom-web/workitems/1.2.840.10008.5.1.4.34.5/subscribers/PERF1", "")->status,
            201)
      << "its owner may subscribe again";
}

TEST_F(UpsRsTest, WorkitemsOfEndedJobsAreNeitherOfferedNorClaimable) {
  const std::string ended = Schedule("alpha");
  const std::string live = Schedule("alpha");
  const std::string claimed_ended = Schedule("alpha");
  auto job = index_->GetJob(jobs_[0]);
  ASSERT_TRUE(job.ok() && job->has_value());
  JobRecord dead = **job;
  dead.state = JobState::kDeadLetter;
  AuditEvent audit;
  audit.at = clock_.Now();
  audit.action = "dead_letter";
  audit.outcome = "failure";
  ASSERT_TRUE(index_->UpdateJob(dead, audit).ok());
  JobRecord done = **index_->GetJob(jobs_[2]);
  done.state = JobState::kDone;
  ASSERT_TRUE(index_->UpdateJob(done, audit).ok());

  auto claim =
      Put("/dicom-web/workitems/" + claimed_ended + "/state", StateBody("IN PROGRESS", "2.25.31"));
  EXPECT_EQ(claim->status, 409) << claim->body;
  EXPECT_NE(claim->body.find("the job ended"), std::string::npos) << claim->body;

  auto search = Get("/dicom-web/workitems?ProcedureStepState=SCHEDULED");
  ASSERT_EQ(search->status, 200) << search->body;
  json found = json::parse(search->body);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0]["00080018"]["Value"][0], live);

  auto retrieved = Get("/dicom-web/workitems/" + ended);
  ASSERT_EQ(retrieved->status, 200);
  json w = json::parse(retrieved->body)[0];
  EXPECT_EQ(w["00741000"]["Value"][0], "CANCELED");
  EXPECT_EQ(w["00741002"]["Value"][0]["00741238"]["Value"][0], "the job ended");
}

TEST(UpsFilterTest, FilterMatchesOnTopLevelAttributes) {
  const std::string ds =
      json{{"00741200", Attr("CS", "HIGH")}, {"00100020", Attr("LO", "PID-1")}}.dump();
  EXPECT_TRUE(UpsFilterMatches("ScheduledProcedureStepPriority=HIGH", ds));
  EXPECT_FALSE(UpsFilterMatches("ScheduledProcedureStepPriority=LOW", ds));
  EXPECT_TRUE(UpsFilterMatches("PatientID=PID-*", ds));
  EXPECT_FALSE(UpsFilterMatches("StudyDate=bad", ds));
  EXPECT_FALSE(UpsFilterMatches("PatientID=PID-1", "not json"));
}

}  // namespace
}  // namespace conduit
