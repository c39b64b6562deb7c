// conduit-ris-sim: a NON-CLINICAL radiology information system simulator for tests. It listens
// on MLLP and acknowledges what Conduit sends (well or badly, as its mode says), logging each
// message as one JSON line; and it sends orders and reports to Conduit as a RIS would.
// Thread safety: RisSimPeer's handler runs on the listener's connection threads (serialised).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/status.h"
#include "hl7/hl7_message.h"
#include "hl7/mllp.h"

namespace conduit::tools {

// How the simulator answers: aa (accept all), ae-first-N (AE to the first N receptions of each
// control id, AA after), ar (reject all), silent (read, never answer), slow (AA after a delay).
struct RisSimMode {
  enum class Kind { kAccept, kErrorFirst, kReject, kSilent, kSlow } kind = Kind::kAccept;
  int error_count = 0;                     // kErrorFirst: N
  std::chrono::milliseconds delay{2'000};  // kSlow

  // Errors: kInvalidArgument naming the mode.
  static Result<RisSimMode> Parse(std::string_view text);
};

// The JSON line logged for a received message: type, control_id, patient_id, accession,
// priority, obx (one object per OBX: set id, value type, observation code, value, units).
std::string MessageLogLine(const Hl7Message& message, std::string_view ack);

// The listening side: answers each message as the mode says and appends its log line.
class RisSimPeer {
 public:
  RisSimPeer(RisSimMode mode, std::FILE* log, const Clock& clock);
  // Returns the reply (an ACK), or an error (the connection is closed) for silent mode once
  // stopping.
  Result<std::string> Handle(std::string_view payload);
  // Makes a silent or slow answer give up, so the listener can stop.
  void Stopping() { stopping_ = true; }

 private:
  void Log(const std::string& line);
  const RisSimMode mode_;
  std::FILE* log_;
  const Clock& clock_;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::map<std::string, int> seen_;  // receptions per control id, guarded by mu_
  uint64_t sequence_ = 0;            // guarded by mu_
};

// What --send generates.
struct RisSimOutgoing {
  std::string kind;  // "orm-complete", "oru-report"
  std::string control_id;
  std::string patient_id = "SIM0001";
  std::string accession;
  std::string report_text = "NON-CLINICAL simulated report: no acute abnormality.";
  std::string report_status = "F";
  std::string code;  // "SCHEME:VALUE" coded finding added to a report, optional
};

// ER7 of the generated message. Errors: kInvalidArgument for an unknown kind or a missing
// accession number.
Result<std::string> BuildOutgoing(const RisSimOutgoing& outgoing, TimePoint now);

}  // namespace conduit::tools
