#include "ris_sim/ris_sim.h"

#include <charconv>
#include <nlohmann/json.hpp>
#include <thread>

#include "hl7/hl7_ack.h"

namespace conduit::tools {
namespace {

using json = nlohmann::json;

std::string FirstOf(const Hl7Message& m, std::initializer_list<const char*> paths) {
  for (const char* path : paths) {
    std::string v = m.Value(path);
    if (!v.empty()) return v;
  }
  return "";
}

}  // namespace

Result<RisSimMode> RisSimMode::Parse(std::string_view text) {
  RisSimMode mode;
  if (text == "aa") return mode;
  if (text == "ar") {
    mode.kind = Kind::kReject;
    return mode;
  }
  if (text == "silent") {
    mode.kind = Kind::kSilent;
    return mode;
  }
  if (text == "slow") {
    mode.kind = Kind::kSlow;
    return mode;
  }
  constexpr std::string_view kPrefix = "ae-first-";
  if (text.substr(0, kPrefix.size()) == kPrefix) {
    const std::string_view n = text.substr(kPrefix.size());
    int count = 0;
    auto [end, ec] = std::from_chars(n.data(), n.data() + n.size(), count);
    if (ec == std::errc() && end == n.data() + n.size() && count >= 0) {
      mode.kind = Kind::kErrorFirst;
      mode.error_count = count;
      return mode;
    }
  }
  return InvalidArgument("ris sim: mode '" + std::string(text) +
                         "': expected aa, ae-first-N, ar, silent or slow");
}

std::string MessageLogLine(const Hl7Message& m, std::string_view ack) {
  json obx = json::array();
  for (size_t i = 1; i <= m.SegmentCount("OBX"); ++i) {
    const Hl7Segment& s = *m.FindSegment("OBX", i);
    obx.push_back({{"set_id", s.Value(1)},
                   {"type", s.Value(2)},
                   {"observation", s.Value(3)},
                   {"value", s.Value(5)},
                   {"units", s.Value(6)},
                   {"abnormal", s.Value(8)}});
  }
  json line = {{"type", m.message_code() + "^" + m.trigger_event()},
               {"control_id", m.control_id()},
               {"patient_id", m.Value("PID-3.1")},
               {"accession", FirstOf(m, {"IPC-1", "OBR-18"})},
               {"priority", FirstOf(m, {"TQ1-9.1", "ORC-7.6", "OBR-27.6"})},
               {"order_control", m.Value("ORC-1")},
               {"obx", obx},
               {"ack", std::string(ack)}};
  return line.dump(-1, ' ', false, json::error_handler_t::replace);
}

RisSimPeer::RisSimPeer(RisSimMode mode, std::FILE* log, const Clock& clock)
    : mode_(mode), log_(log), clock_(clock) {}

void RisSimPeer::Log(const std::string& line) {
  if (log_ == nullptr) return;
  std::fputs(line.c_str(), log_);
  std::fputc('\n', log_);
  std::fflush(log_);
}

Result<std::string> RisSimPeer::Handle(std::string_view payload) {
  Result<Hl7Message> message = Hl7Message::Parse(payload);
  Result<Hl7Message> header = message.ok() ? message : Hl7Message::ParseHeader(payload);
  if (!header.ok()) {
    std::lock_guard lock(mu_);
    Log(json{{"error", header.status().message()}}.dump());
    return InvalidArgument("unreadable message");
  }
  AckCode code = AckCode::kAccept;
  std::string error;
  std::string control;
  {
    std::lock_guard lock(mu_);
    control = "SIM" + std::to_string(++sequence_);
    const int seen = ++seen_[header->control_id()];
    if (!message.ok()) {
      code = AckCode::kReject;
      error = "102";
    } else if (mode_.kind == RisSimMode::Kind::kReject) {
      code = AckCode::kReject;
      error = "207";
    } else if (mode_.kind == RisSimMode::Kind::kErrorFirst && seen <= mode_.error_count) {
      code = AckCode::kError;
      error = "207";
    }
    const std::string ack_text =
        mode_.kind == RisSimMode::Kind::kSilent ? "none" : std::string(AckCodeText(code));
    Log(message.ok() ? MessageLogLine(*message, ack_text)
                     : json{{"control_id", header->control_id()}, {"ack", ack_text}}.dump());
  }
  if (mode_.kind == RisSimMode::Kind::kSilent || mode_.kind == RisSimMode::Kind::kSlow) {
    const auto until =
        std::chrono::steady_clock::now() +
        (mode_.kind == RisSimMode::Kind::kSlow ? mode_.delay : std::chrono::hours(24));
    while (!stopping_ && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (mode_.kind == RisSimMode::Kind::kSilent || stopping_) {
      return Unavailable("ris sim: silent, closing");
    }
  }
  AckDetail detail{code, error, code == AckCode::kAccept ? "" : "NON-CLINICAL simulator says no"};
  ASSIGN_OR_RETURN(Hl7Message ack,
                   BuildAck(*header, detail, {"RISSIM", "SIMTRUST", control, clock_.Now()}));
  return ack.Serialize();
}

Result<std::string> BuildOutgoing(const RisSimOutgoing& o, TimePoint now) {
  if (o.accession.empty()) return InvalidArgument("ris sim: --accession is required");
  const std::string when = FormatHl7Time(now);
  const std::string control = o.control_id.empty() ? "SIM" + when : o.control_id;
  const std::string pid = "PID|1||" + o.patient_id + "^^^SIMTRUST^MR||NONCLINICAL^SIMULATED\r";
  if (o.kind == "orm-complete") {
    return "MSH|^~\\&|RISSIM|SIMTRUST|CONDUIT||" + when + "||ORM^O01^ORM_O01|" + control +
           "|P|2.5.1\r" + pid + "ORC|SC|PL" + o.accession + "|" + o.accession + "||CM\r" +
           "OBR|1|PL" + o.accession + "|" + o.accession +
           "|SIMPROC^Simulated procedure||||||||||||||" + o.accession + "\r";
  }
  if (o.kind == "oru-report") {
    Hl7Message m;
    const std::pair<const char*, std::string> fields[] = {
        {"MSH-3", "RISSIM"},
        {"MSH-4", "SIMTRUST"},
        {"MSH-5", "CONDUIT"},
        {"MSH-7", when},
        {"MSH-9.1", "ORU"},
        {"MSH-9.2", "R01"},
        {"MSH-9.3", "ORU_R01"},
        {"MSH-10", control},
        {"MSH-11", "P"},
        {"MSH-12", "2.5.1"},
        {"PID-1", "1"},
        {"PID-3.1", o.patient_id},
        {"ORC-1", "RE"},
        {"OBR-1", "1"},
        {"OBR-3", o.accession},
        {"OBR-4.1", "SIMPROC"},
        {"OBR-4.2", "Simulated procedure"},
        {"OBR-7", when},
        {"OBR-18", o.accession},
        {"OBR-25", o.report_status},
        {"OBX(1)-1", "1"},
        {"OBX(1)-2", "TX"},
        {"OBX(1)-3.1", "GDT"},
        {"OBX(1)-3.2", "Report"},
        {"OBX(1)-5", o.report_text},
        {"OBX(1)-11", o.report_status},
    };
    for (const auto& [path, value] : fields) RETURN_IF_ERROR(m.Set(path, value));
    if (!o.code.empty()) {
      const size_t colon = o.code.find(':');
      if (colon == std::string::npos) return InvalidArgument("ris sim: --code is SCHEME:VALUE");
      RETURN_IF_ERROR(m.Set("OBX(2)-1", "2"));
      RETURN_IF_ERROR(m.Set("OBX(2)-2", "CWE"));
      RETURN_IF_ERROR(m.Set("OBX(2)-3.1", "FIND"));
      RETURN_IF_ERROR(m.Set("OBX(2)-3.2", "Finding"));
      RETURN_IF_ERROR(m.Set("OBX(2)-5.1", o.code.substr(colon + 1)));
      RETURN_IF_ERROR(m.Set("OBX(2)-5.3", o.code.substr(0, colon)));
      RETURN_IF_ERROR(m.Set("OBX(2)-11", o.report_status));
    }
    return m.Serialize();
  }
  return InvalidArgument("ris sim: --send '" + o.kind +
                         "': expected orm-complete, oru-report or @FILE");
}

}  // namespace conduit::tools
