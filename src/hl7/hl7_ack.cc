#include "hl7/hl7_ack.h"

#include <ctime>

namespace conduit {

std::string_view AckCodeText(AckCode code) {
  switch (code) {
    case AckCode::kAccept:
      return "AA";
    case AckCode::kError:
      return "AE";
    case AckCode::kReject:
      return "AR";
  }
  return "AR";
}

AckCode AckCodeForStatus(const Status& status) {
  if (status.ok()) return AckCode::kAccept;
  return IsRetryable(status.code()) ? AckCode::kError : AckCode::kReject;
}

AckDetail AckDetailForStatus(const Status& status) {
  AckDetail detail;
  detail.code = AckCodeForStatus(status);
  if (!status.ok()) {
    detail.error_code = "207";
    detail.text = status.message();
  }
  return detail;
}

std::string FormatHl7Time(TimePoint t) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(t);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y%m%d%H%M%S", &utc);
  return buffer;
}

Result<Hl7Message> BuildAck(const Hl7Message& received, const AckDetail& detail,
                            const AckSender& sender) {
  if (sender.control_id.empty()) return InvalidArgument("hl7 ack: no control id for the ACK");
  Hl7Message ack(received.delimiters());
  const std::string version = received.version().empty() ? "2.5.1" : received.version();
  const std::string processing =
      received.Value("MSH-11.1").empty() ? std::string("P") : received.Value("MSH-11.1");
  const std::pair<const char*, std::string> fields[] = {
      {"MSH-3", sender.application},
      {"MSH-4", sender.facility},
      {"MSH-5", received.Value("MSH-3")},
      {"MSH-6", received.Value("MSH-4")},
      {"MSH-7", FormatHl7Time(sender.now)},
      {"MSH-9.1", "ACK"},
      {"MSH-9.2", received.trigger_event()},
      {"MSH-9.3", "ACK"},
      {"MSH-10", sender.control_id},
      {"MSH-11", processing},
      {"MSH-12", version},
      {"MSA-1", std::string(AckCodeText(detail.code))},
      {"MSA-2", received.control_id()},
  };
  for (const auto& [path, value] : fields) RETURN_IF_ERROR(ack.Set(path, value));
  if (detail.code != AckCode::kAccept) {
    // MSA-3 is deprecated in v2.5.1 but many receivers still read only it.
    RETURN_IF_ERROR(ack.Set("MSA-3", detail.text));
    RETURN_IF_ERROR(ack.Set("ERR-3.1", detail.error_code.empty() ? "207" : detail.error_code));
    RETURN_IF_ERROR(ack.Set("ERR-3.3", "HL70357"));
    RETURN_IF_ERROR(ack.Set("ERR-4", "E"));
    RETURN_IF_ERROR(ack.Set("ERR-8", detail.text));
  }
  return ack;
}

Result<AckOutcome> ReadAck(const Hl7Message& ack) {
  if (ack.FindSegment("MSA") == nullptr) return InvalidArgument("hl7 ack: no MSA segment");
  const std::string code = ack.Value("MSA-1");
  AckOutcome outcome;
  if (code == "AA" || code == "CA") {
    outcome.code = AckCode::kAccept;
  } else if (code == "AE" || code == "CE") {
    outcome.code = AckCode::kError;
  } else if (code == "AR" || code == "CR") {
    outcome.code = AckCode::kReject;
  } else {
    return InvalidArgument("hl7 ack: MSA-1 is not an acknowledgment code");
  }
  outcome.acknowledged_control_id = ack.Value("MSA-2");
  outcome.error_code = ack.Value("ERR-3.1");
  outcome.text = ack.Value("ERR-8");
  if (outcome.text.empty()) outcome.text = ack.Value("MSA-3");
  if (outcome.text.empty()) outcome.text = ack.Value("ERR-3.2");
  return outcome;
}

Status AckStatus(const AckOutcome& outcome) {
  if (outcome.code == AckCode::kAccept) return Status::Ok();
  std::string message = "hl7 message " + outcome.acknowledged_control_id + ": peer answered " +
                        std::string(AckCodeText(outcome.code));
  // The peer's text may quote the message (patient data): only its error code is named here.
  if (!outcome.error_code.empty()) message += " (error " + outcome.error_code.substr(0, 16) + ")";
  return outcome.code == AckCode::kError ? Unavailable(std::move(message))
                                         : InvalidArgument(std::move(message));
}

}  // namespace conduit
