#include "hl7/ris_inbound.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "hl7/hl7_ack.h"

namespace conduit {
namespace {

using json = nlohmann::json;

// Control ids are the peer's: not patient data, but cut short for logs and audit.
std::string Short(const std::string& text) { return text.substr(0, 32); }

json CodedJson(const Hl7Coded& coded) {
  return {{"code", coded.code}, {"text", coded.text}, {"system", coded.system}};
}

std::string DumpJson(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

bool OrderSaysExamCompleted(const RisOrder& order) {
  static const std::vector<std::string> kCancels = {"CA", "OC", "CR", "DC", "OD", "DR"};
  if (std::find(kCancels.begin(), kCancels.end(), order.order_control) != kCancels.end()) {
    return false;
  }
  if (order.order_status == "CM") return true;
  static const std::vector<std::string> kResults = {"R", "P", "F", "C"};
  return std::find(kResults.begin(), kResults.end(), order.result_status) != kResults.end();
}

RisInbound::RisInbound(RisInboundOptions options, Index& index, const Clock& clock,
                       Metrics& metrics, const PatientKeyer& keyer, CompleteStudyFn complete_study)
    : options_(std::move(options)),
      index_(index),
      clock_(clock),
      metrics_(metrics),
      keyer_(keyer),
      complete_study_(std::move(complete_study)) {
  metrics_.Describe("conduit_hl7_received_total", "counter",
                    "HL7 messages received from a RIS, by type and the ACK code answered");
  metrics_.Describe("conduit_hl7_connections_refused_total", "counter",
                    "Connections to the MLLP listener closed at once, by reason");
}

void RisInbound::OnConnectionRefused(const std::string& peer, const Status& why) {
  const std::string reason(StatusCodeName(why.code()));
  metrics_.Add("conduit_hl7_connections_refused_total", 1,
               "source=\"" + options_.source + "\",reason=\"" + reason + "\"");
  const TimePoint now = clock_.Now();
  const std::optional<int64_t> unreported = refusals_.Admit(peer + ' ' + reason, now);
  if (!unreported) return;
  spdlog::warn("ris {}: mllp {} (unreported_before={})", options_.source, why.message(),
               *unreported);
  AuditEvent audit;
  audit.at = now;
  audit.action = "hl7_refused";
  audit.outcome = "failure";
  audit.actor = peer;
  json detail = {{"source", options_.source}, {"reason", reason}, {"error", why.message()}};
  if (*unreported > 0) detail["unreported_before"] = *unreported;
  audit.detail = DumpJson(detail);
  if (Status st = index_.AppendAudit(audit); !st.ok()) {
    spdlog::error("ris {}: audit: {}", options_.source, st.ToString());
  }
}

void RisInbound::OnUnparsed(const std::string& peer, const std::string& control_id,
                            const Status& why) {
  const char* ack = control_id.empty() ? "none" : "AR";
  metrics_.Add("conduit_hl7_received_total", 1,
               "source=\"" + options_.source + "\",type=\"unparsed\",ack=\"" + ack + "\"");
  const TimePoint now = clock_.Now();
  const std::optional<int64_t> unreported = unparsed_.Admit(peer + ' ' + ack, now);
  if (!unreported) return;
  spdlog::warn("ris {}: a message from {} did not parse (answered {}): {} (unreported_before={})",
               options_.source, peer, ack, why.message(), *unreported);
  AuditEvent audit;
  audit.at = now;
  audit.action = "hl7_receive";
  audit.outcome = "failure";
  audit.actor = options_.source;
  json detail = {{"type", "unparsed"},
                 {"peer", peer},
                 {"control_id", Short(control_id)},
                 {"ack", ack},
                 {"error", why.message()}};
  if (*unreported > 0) detail["unreported_before"] = *unreported;
  audit.detail = DumpJson(detail);
  if (Status st = index_.AppendAudit(audit); !st.ok()) {
    spdlog::error("ris {}: audit: {}", options_.source, st.ToString());
  }
}

Result<std::string> RisInbound::Handle(const Hl7Message& message) {
  const std::string type =
      message.message_code().substr(0, 3) + "^" + message.trigger_event().substr(0, 3);
  Handled handled;
  if (type == "ORM^O01" || type == "OMI^O23") {
    handled = HandleOrders(message);
  } else if (type == "ORU^R01") {
    handled = HandleReports(message);
  } else {
    handled.code = AckCode::kReject;
    handled.error_code = "200";
    handled.text = "unsupported message type " + type + ": only ORM^O01, OMI^O23, ORU^R01";
  }
  const char* ack_text = AckCodeText(handled.code).data();
  metrics_.Add("conduit_hl7_received_total", 1,
               "source=\"" + options_.source + "\",type=\"" + type + "\",ack=\"" + ack_text + "\"");
  if (handled.code == AckCode::kAccept) {
    spdlog::info("ris {}: {} {} accepted: {} item(s), {} study(ies) completed", options_.source,
                 type, Short(message.control_id()), handled.items, handled.completed.size());
  } else {
    spdlog::warn("ris {}: {} {} answered {}: {}", options_.source, type,
                 Short(message.control_id()), ack_text, handled.text);
  }
  Audit(message, type, handled);
  AckSender sender;
  sender.application = options_.application;
  sender.facility = options_.facility;
  sender.now = clock_.Now();
  // At most 20 characters (MSH-10 in v2.5.1): "R" + 13 digits of ms + "." + 5 digits.
  sender.control_id = "R" + std::to_string(ToUnixMillis(sender.now)) + "." +
                      std::to_string(ack_sequence_.fetch_add(1) % 100'000);
  ASSIGN_OR_RETURN(Hl7Message ack,
                   BuildAck(message, {handled.code, handled.error_code, handled.text}, sender));
  return ack.Serialize();
}

RisInbound::Handled RisInbound::HandleOrders(const Hl7Message& message) {
  Handled handled;
  Result<std::vector<RisOrder>> orders = ReadOrders(message);
  if (!orders.ok()) {
    handled.code = AckCode::kReject;
    handled.error_code = "100";  // segment sequence error: no order in it
    handled.text = orders.status().message();
    return handled;
  }
  for (size_t i = 0; i < orders->size(); ++i) {
    if ((*orders)[i].order.accession_number.empty()) {
      handled.code = AckCode::kReject;
      handled.error_code = "101";
      handled.text = "order " + std::to_string(i + 1) +
                     ": no accession number (IPC-1 or OBR-18): the order cannot be matched to "
                     "a study";
      return handled;
    }
  }
  const TimePoint now = clock_.Now();
  for (const RisOrder& order : *orders) {
    RisOrderRecord record;
    record.accession = order.order.accession_number;
    record.placer_order = order.order.placer_order_number;
    record.filler_order = order.order.filler_order_number;
    record.patient_key = keyer_.KeyOf(order.patient.id);
    record.study_uid = order.order.study_instance_uid;
    record.order_control = order.order_control;
    record.order_status = order.order_status;
    record.priority = order.priority_code;
    record.updated_at = now;
    Status stored = index_.PutRisOrder(record);
    if (!stored.ok()) {
      handled.code = AckCode::kError;
      handled.error_code = "207";
      handled.text = "storing the order: " + std::string(StatusCodeName(stored.code()));
      spdlog::error("ris {}: storing order: {}", options_.source, stored.ToString());
      return handled;
    }
    ++handled.items;
    if (!OrderSaysExamCompleted(order)) continue;
    Result<std::vector<StudyUid>> studies =
        index_.StudiesWithAccession(order.order.accession_number);
    if (!studies.ok()) {
      handled.code = AckCode::kError;
      handled.error_code = "207";
      handled.text = "finding the study: " + std::string(StatusCodeName(studies.status().code()));
      return handled;
    }
    if (studies->empty()) {
      spdlog::info(
          "ris {}: exam completed for an order whose images have not arrived; its study's quiet "
          "period will decide",
          options_.source);
      continue;
    }
    for (const StudyUid& study : *studies) {
      Result<std::vector<JobId>> jobs = complete_study_
                                            ? complete_study_(study, "ris order completed")
                                            : Result<std::vector<JobId>>(std::vector<JobId>{});
      if (!jobs.ok()) {
        handled.code = AckCode::kError;
        handled.error_code = "207";
        handled.text = "completing the study: " + std::string(StatusCodeName(jobs.status().code()));
        spdlog::error("ris {}: completing study {}: {}", options_.source, StudyRef(study),
                      jobs.status().ToString());
        return handled;
      }
      handled.completed.push_back(study);
      spdlog::info("ris {}: exam completed: study {} completed now, {} job(s)", options_.source,
                   StudyRef(study), jobs->size());
    }
  }
  return handled;
}

RisInbound::Handled RisInbound::HandleReports(const Hl7Message& message) {
  Handled handled;
  Result<std::vector<RisReport>> reports = ReadReports(message);
  if (!reports.ok()) {
    handled.code = AckCode::kReject;
    handled.error_code = "100";
    handled.text = reports.status().message();
    return handled;
  }
  for (size_t i = 0; i < reports->size(); ++i) {
    if ((*reports)[i].order.accession_number.empty()) {
      handled.code = AckCode::kReject;
      handled.error_code = "101";
      handled.text = "report " + std::to_string(i + 1) +
                     ": no accession number (OBR-18): the report cannot be matched to a study";
      return handled;
    }
  }
  const TimePoint now = clock_.Now();
  for (size_t i = 0; i < reports->size(); ++i) {
    const RisReport& report = (*reports)[i];
    RisReportRecord record;
    record.sending_application = message.Value("MSH-3");
    record.control_id = message.control_id();
    record.obr_index = static_cast<int>(i + 1);
    record.accession = report.order.accession_number;
    record.study_uid = report.order.study_instance_uid;
    if (record.study_uid.empty()) {
      Result<std::vector<StudyUid>> studies = index_.StudiesWithAccession(record.accession);
      if (studies.ok() && !studies->empty()) record.study_uid = studies->front().str();
    }
    record.result_status = report.result_status;
    record.observed_at = report.observed_at;
    record.text = report.text;
    json codes = json::array();
    for (const RisReport::CodedObservation& coded : report.coded) {
      codes.push_back(
          {{"observation", CodedJson(coded.observation)}, {"value", CodedJson(coded.value)}});
    }
    record.codes_json = DumpJson(codes);
    record.received_at = now;
    Result<PutOutcome> stored = index_.PutRisReport(record);
    if (!stored.ok()) {
      handled.code = AckCode::kError;
      handled.error_code = "207";
      handled.text = "storing the report: " + std::string(StatusCodeName(stored.status().code()));
      spdlog::error("ris {}: storing report: {}", options_.source, stored.status().ToString());
      return handled;
    }
    if (*stored == PutOutcome::kInserted) ++handled.items;
  }
  return handled;
}

void RisInbound::Audit(const Hl7Message& message, const std::string& type, const Handled& handled) {
  AuditEvent audit;
  audit.at = clock_.Now();
  audit.action = "hl7_receive";
  audit.outcome = handled.code == AckCode::kAccept ? "success" : "failure";
  audit.actor = options_.source;
  if (!handled.completed.empty()) audit.study_ref = StudyRef(handled.completed.front());
  json detail = {{"type", type},
                 {"control_id", Short(message.control_id())},
                 {"ack", std::string(AckCodeText(handled.code))},
                 {"items", handled.items}};
  if (!handled.completed.empty()) {
    json refs = json::array();
    for (const StudyUid& study : handled.completed) refs.push_back(StudyRef(study));
    detail["studies_completed"] = refs;
  }
  if (!handled.error_code.empty()) detail["error_code"] = handled.error_code;
  if (!handled.text.empty()) detail["error"] = handled.text;
  audit.detail = DumpJson(detail);
  Status st = index_.AppendAudit(audit);
  if (!st.ok()) spdlog::error("ris {}: audit: {}", options_.source, st.ToString());
}

}  // namespace conduit
