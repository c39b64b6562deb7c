#include "hl7/ris_outbox.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "hl7/hl7_ack.h"
#include "store/sqlite_index.h"
#include "testing/testing.h"

namespace conduit {
namespace {

using namespace std::chrono_literals;

// A RIS on 127.0.0.1 (Conduit's own MLLP listener) whose answer per control id a test sets:
// AA unless told otherwise. It records the control ids in the order they arrived.
class FakeRis {
 public:
  explicit FakeRis(const Clock& clock)
      : listener_(
            {}, [this](const Hl7Message& m) { return Answer(m); }, clock) {
    Status st = listener_.Start();
    EXPECT_TRUE(st.ok()) << st.ToString();
  }
  int port() const { return listener_.port(); }
  void Answer(const std::string& control_id, AckCode code) {
    std::lock_guard lock(mu_);
    answers_[control_id] = code;
  }
  std::vector<std::string> received() {
    std::lock_guard lock(mu_);
    return received_;
  }

 private:
  Result<std::string> Answer(const Hl7Message& m) {
    AckCode code = AckCode::kAccept;
    {
      std::lock_guard lock(mu_);
      received_.push_back(m.control_id());
      if (auto it = answers_.find(m.control_id()); it != answers_.end()) code = it->second;
    }
    AckDetail detail{code, code == AckCode::kAccept ? "" : "207", "no"};
    ASSIGN_OR_RETURN(Hl7Message ack,
                     BuildAck(m, detail, {"RIS", "", "A" + m.control_id(), TimePoint{}}));
    return ack.Serialize();
  }
  std::mutex mu_;
  std::map<std::string, AckCode> answers_;
  std::vector<std::string> received_;
  MllpListener listener_;
};

class RisOutboxTest : public ::testing::Test {
 protected:
  RisOutboxTest() {
    auto index = OpenSqliteIndex(tmp_.path() / "index.db");
    EXPECT_TRUE(index.ok()) << index.status().ToString();
    index_ = std::move(index).value();
  }

  RisOutboxOptions Options(int port) {
    RisOutboxOptions o;
    o.destination = "ris";
    o.sender.host = "127.0.0.1";
    o.sender.port = port;
    o.sender.connect_timeout = 5s;
    o.sender.ack_timeout = 10s;
    o.initial_backoff = 10s;
    o.max_backoff = 40s;
    return o;
  }

  void Enqueue(const std::string& patient, const std::string& control_id) {
    Hl7OutboxRecord r;
    r.destination = "ris";
    r.patient_key = patient;
    r.job_id = JobId{0};
    r.message_type = "ORU^R01";
    r.control_id = control_id;
    r.message = "MSH|^~\\&|CONDUIT||RIS||20240101000000||ORU^R01^ORU_R01|" + control_id +
                "|P|2.5.1\rPID|1||X\r";
    r.next_attempt_at = clock_.Now();
    r.created_at = clock_.Now();
    auto put = index_->EnqueueHl7(r);
    ASSERT_TRUE(put.ok()) << put.status().ToString();
  }

  std::map<std::string, Hl7OutboxRecord> Rows() {
    std::map<std::string, Hl7OutboxRecord> out;
    auto rows = index_->ListHl7("ris", std::nullopt, 100);
    EXPECT_TRUE(rows.ok());
    if (rows.ok()) {
      for (auto& r : *rows) out[r.control_id] = r;
    }
    return out;
  }

  int SendDue(RisOutbox& outbox) {
    auto n = outbox.SendDue();
    EXPECT_TRUE(n.ok()) << n.status().ToString();
    return n.ok() ? *n : -1;
  }

  testing::TempDir tmp_;
  FakeClock clock_;
  Metrics metrics_;
  std::unique_ptr<Index> index_;
};

TEST_F(RisOutboxTest, AcknowledgedMessagesAreSentOnceInOrder) {
  FakeRis ris(clock_);
  Enqueue("p1", "C1");
  Enqueue("p1", "C2");
  Enqueue("p2", "C3");
  RisOutbox outbox(Options(ris.port()), *index_, clock_, metrics_);
  EXPECT_EQ(SendDue(outbox), 3);
  EXPECT_EQ(ris.received(), (std::vector<std::string>{"C1", "C3", "C2"}))
      << "C2 waits for C1 (same patient); C3 is another patient's";
  for (const auto& [id, row] : Rows()) {
    EXPECT_EQ(row.state, Hl7OutboxState::kSent) << id;
    EXPECT_TRUE(row.sent_at.has_value()) << id;
  }
  EXPECT_EQ(SendDue(outbox), 0) << "nothing is sent twice";
  EXPECT_EQ(metrics_.Value("conduit_hl7_messages_total",
                           R"(destination="ris",type="ORU^R01",outcome="aa")"),
            3);
  EXPECT_EQ(metrics_.Value("conduit_hl7_outbox_pending", R"(destination="ris")"), 0);
}

TEST_F(RisOutboxTest, AnErrorAckHoldsBackOnlyThatPatientUntilItsBackoffPasses) {
  FakeRis ris(clock_);
  ris.Answer("A1", AckCode::kError);
  Enqueue("pa", "A1");
  Enqueue("pa", "A2");
  Enqueue("pb", "B1");
  Enqueue("pb", "B2");
  RisOutbox outbox(Options(ris.port()), *index_, clock_, metrics_);
  SendDue(outbox);
  EXPECT_EQ(ris.received(), (std::vector<std::string>{"A1", "B1", "B2"}))
      << "A2 must not overtake A1; patient b is not held up";
  auto rows = Rows();
  EXPECT_EQ(rows["A1"].state, Hl7OutboxState::kPending);
  EXPECT_EQ(rows["A1"].attempts, 1);
  EXPECT_EQ(rows["A1"].next_attempt_at, clock_.Now() + 10s);
  EXPECT_EQ(rows["A2"].state, Hl7OutboxState::kPending);
  EXPECT_EQ(rows["A2"].attempts, 0);

  clock_.Advance(9s);
  EXPECT_EQ(SendDue(outbox), 0) << "backoff not over";
  clock_.Advance(1s);
  SendDue(outbox);
  EXPECT_EQ(Rows()["A1"].attempts, 2) << "AE again";
  EXPECT_EQ(Rows()["A1"].next_attempt_at, clock_.Now() + 20s) << "the backoff doubles";

  ris.Answer("A1", AckCode::kAccept);
  clock_.Advance(20s);
  SendDue(outbox);
  EXPECT_EQ(ris.received(), (std::vector<std::string>{"A1", "B1", "B2", "A1", "A1", "A2"}));
  EXPECT_EQ(Rows()["A2"].state, Hl7OutboxState::kSent);
  EXPECT_EQ(metrics_.Value("conduit_hl7_messages_total",
                           R"(destination="ris",type="ORU^R01",outcome="ae")"),
            2);
}

TEST_F(RisOutboxTest, ARejectFailsTheMessageForGoodAndReleasesItsPatient) {
  FakeRis ris(clock_);
  ris.Answer("R1", AckCode::kReject);
  Enqueue("p", "R1");
  Enqueue("p", "R2");
  RisOutbox outbox(Options(ris.port()), *index_, clock_, metrics_);
  SendDue(outbox);
  EXPECT_EQ(ris.received(), (std::vector<std::string>{"R1", "R2"}));
  auto rows = Rows();
  EXPECT_EQ(rows["R1"].state, Hl7OutboxState::kFailed);
  EXPECT_NE(rows["R1"].last_error.find("AR"), std::string::npos) << rows["R1"].last_error;
  EXPECT_EQ(rows["R2"].state, Hl7OutboxState::kSent);
  clock_.Advance(1h);
  EXPECT_EQ(SendDue(outbox), 0) << "a refused message is never sent again";
  EXPECT_EQ(metrics_.Value("conduit_hl7_messages_total",
                           R"(destination="ris",type="ORU^R01",outcome="ar")"),
            1);
  auto audit = index_->ListAudit(10, 0);
  ASSERT_TRUE(audit.ok());
  int failures = 0;
  for (const AuditEvent& e : *audit) {
    if (e.action == "hl7_send" && e.outcome == "failure") {
      ++failures;
      EXPECT_NE(e.detail.find("R1"), std::string::npos);
    }
  }
  EXPECT_EQ(failures, 1);
}

TEST_F(RisOutboxTest, AnUnreachableRisPausesTheDestinationAndPendingMessagesSurviveARestart) {
  const int port = testing::FreePort();  // nobody listens there yet
  Enqueue("p1", "U1");
  Enqueue("p2", "U2");
  {
    RisOutbox outbox(Options(port), *index_, clock_, metrics_);
    EXPECT_EQ(SendDue(outbox), 1) << "after one refused connection the rest waits too";
    EXPECT_EQ(SendDue(outbox), 0) << "paused for the backoff";
    EXPECT_EQ(metrics_.Value("conduit_hl7_outbox_pending", R"(destination="ris")"), 2);
    Enqueue("p3", "U3");  // queued while the RIS is down
    EXPECT_EQ(SendDue(outbox), 0) << "still paused";
    EXPECT_EQ(metrics_.Value("conduit_hl7_outbox_pending", R"(destination="ris")"), 3)
        << "the gauge counts what waits even while the destination is paused";
  }
  auto rows = Rows();
  EXPECT_EQ(rows["U1"].attempts, 1);
  EXPECT_EQ(rows["U2"].attempts, 0);
  EXPECT_EQ(metrics_.Value("conduit_hl7_messages_total",
                           R"(destination="ris",type="ORU^R01",outcome="unreachable")"),
            1);

  // A new process (outbox) finds both still pending and sends them once the RIS is up.
  MllpListenerOptions listen;
  listen.port = port;
  std::vector<std::string> got;
  std::mutex mu;
  MllpListener ris(
      listen,
      [&](const Hl7Message& m) -> Result<std::string> {
        std::lock_guard lock(mu);
        got.push_back(m.control_id());
        ASSIGN_OR_RETURN(Hl7Message ack, BuildAck(m, {}, {"RIS", "", "X", TimePoint{}}));
        return ack.Serialize();
      },
      clock_);
  ASSERT_TRUE(ris.Start().ok());
  clock_.Advance(10s);
  RisOutbox restarted(Options(port), *index_, clock_, metrics_);
  EXPECT_EQ(SendDue(restarted), 3);
  EXPECT_EQ(metrics_.Value("conduit_hl7_outbox_pending", R"(destination="ris")"), 0);
  std::lock_guard lock(mu);
  EXPECT_EQ(got, (std::vector<std::string>{"U1", "U2", "U3"}));
}

TEST_F(RisOutboxTest, ASilentRisTimesOutAndTheMessageIsRetried) {
  // A peer that accepts connections (the kernel does, from the backlog) and never answers.
  const int silent = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(silent, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(listen(silent, 8), 0);
  socklen_t length = sizeof address;
  getsockname(silent, reinterpret_cast<sockaddr*>(&address), &length);
  Enqueue("p", "S1");
  RisOutboxOptions options = Options(ntohs(address.sin_port));
  options.sender.ack_timeout = 300ms;
  RisOutbox outbox(options, *index_, clock_, metrics_);
  EXPECT_EQ(SendDue(outbox), 1);
  auto row = Rows()["S1"];
  EXPECT_EQ(row.state, Hl7OutboxState::kPending);
  EXPECT_EQ(row.attempts, 1);
  EXPECT_EQ(metrics_.Value("conduit_hl7_messages_total",
                           R"(destination="ris",type="ORU^R01",outcome="timeout")"),
            1);
  close(silent);
}

TEST_F(RisOutboxTest, MaxAttemptsTurnsRepeatedErrorsIntoAFailure) {
  FakeRis ris(clock_);
  ris.Answer("M1", AckCode::kError);
  Enqueue("p", "M1");
  RisOutboxOptions options = Options(ris.port());
  options.max_attempts = 2;
  RisOutbox outbox(options, *index_, clock_, metrics_);
  SendDue(outbox);
  clock_.Advance(10s);
  SendDue(outbox);
  auto row = Rows()["M1"];
  EXPECT_EQ(row.state, Hl7OutboxState::kFailed);
  EXPECT_NE(row.last_error.find("gave up after 2 attempts"), std::string::npos) << row.last_error;
}

TEST_F(RisOutboxTest, TheSenderThreadSendsWhatIsQueuedWhenWoken) {
  FakeRis ris(clock_);
  RisOutboxOptions options = Options(ris.port());
  options.poll_interval = 60s;  // only Wake() can make it look again in time
  RisOutbox outbox(options, *index_, clock_, metrics_);
  ASSERT_TRUE(outbox.Start().ok());
  Enqueue("p", "W1");
  outbox.Wake();
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (Rows()["W1"].state != Hl7OutboxState::kSent &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(Rows()["W1"].state, Hl7OutboxState::kSent);
  outbox.Stop();
}

}  // namespace
}  // namespace conduit
