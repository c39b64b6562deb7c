#include "results/ris_reporter.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

namespace conduit {
namespace {

constexpr size_t kMaxObservations = 500;  // OBX lines per ORU; a tool reporting more is cut

std::string SchemeValue(const std::string& scheme, const std::string& value) {
  return scheme + ":" + value;
}

bool Listed(const RisUrgencyRule& rule, const std::string& scheme, const std::string& value) {
  if (value.empty()) return false;
  return std::find(rule.codes.begin(), rule.codes.end(), SchemeValue(scheme, value)) !=
         rule.codes.end();
}

// Whether one finding matches the rule.
bool Matches(const RisUrgencyRule& rule, const FindingRecord& f) {
  if (f.kind == "score") {
    return rule.score_at_least && f.numeric_value && *f.numeric_value >= *rule.score_at_least;
  }
  if (f.kind == "flag") return Listed(rule, f.concept_scheme, f.concept_value);
  if (f.kind == "finding" || f.kind == "triage") {
    return Listed(rule, f.value_scheme, f.value_code);
  }
  return false;
}

// A decimal HL7 NM accepts (no exponent), without trailing zeros.
std::string Decimal(double v) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.6f", v);
  std::string text = buffer;
  while (!text.empty() && text.back() == '0') text.pop_back();
  if (!text.empty() && text.back() == '.') text.pop_back();
  return text == "-0" ? "0" : text;
}

Hl7Coded ConceptOf(const FindingRecord& f) {
  return {f.concept_value, f.concept_meaning, f.concept_scheme};
}

std::string Attribute(const InstanceRecord& instance, const char* keyword) {
  auto it = instance.attributes.find(keyword);
  return it == instance.attributes.end() ? std::string() : it->second;
}

}  // namespace

bool IsUrgent(const RisUrgencyRule& rule, const std::vector<FindingRecord>& findings) {
  return std::any_of(findings.begin(), findings.end(),
                     [&](const FindingRecord& f) { return Matches(rule, f); });
}

std::vector<AiObservation> ObservationsOf(const std::vector<FindingRecord>& findings,
                                          const RisUrgencyRule& rule) {
  std::vector<AiObservation> out;
  for (const FindingRecord& f : findings) {
    if (out.size() >= kMaxObservations) break;
    AiObservation o;
    if (f.kind == "flag") {
      o.kind = AiObservation::Kind::kCoded;
      o.observation = {"AIFLAG", "AI flag", "99CONDUIT"};
      o.coded_value = ConceptOf(f);
    } else if ((f.kind == "finding" || f.kind == "triage") &&
               !(f.value_code.empty() && f.value_meaning.empty())) {
      o.kind = AiObservation::Kind::kCoded;
      o.observation = ConceptOf(f);
      o.coded_value = {f.value_code, f.value_meaning, f.value_scheme};
    } else if (f.numeric_value && std::isfinite(*f.numeric_value)) {
      o.kind = AiObservation::Kind::kNumeric;
      o.observation = ConceptOf(f);
      o.value = Decimal(*f.numeric_value);
      o.units = f.units;
    } else {
      continue;
    }
    if (o.observation.code.empty() && o.observation.text.empty()) {
      o.observation = {f.kind, f.kind, "99CONDUIT"};
    }
    if (Matches(rule, f)) o.abnormal_flag = "A";
    out.push_back(std::move(o));
  }
  if (out.empty()) {
    AiObservation none;
    none.kind = AiObservation::Kind::kText;
    none.observation = {"AINOTE", "AI result note", "99CONDUIT"};
    none.value = "AI result delivered to PACS; it reports no coded findings or measurements";
    out.push_back(std::move(none));
  }
  return out;
}

RisReporter::RisReporter(RisConfig config, Index& index, const Clock& clock,
                         const PatientKeyer& keyer, std::function<void()> on_queued)
    : config_(std::move(config)),
      index_(index),
      clock_(clock),
      keyer_(keyer),
      on_queued_(std::move(on_queued)) {}

void RisReporter::AuditSkipped(const JobRecord& job, const std::string& why) {
  spdlog::warn("ris report for job {}: not sent: {}", job.id.value, why);
  AuditEvent audit;
  audit.at = clock_.Now();
  audit.action = "ris_report";
  audit.outcome = "failure";
  audit.actor = config_.name;
  audit.study_ref = StudyRef(job.study_uid);
  audit.job_id = job.id;
  audit.detail = nlohmann::json{{"skipped", why}}.dump();
  Status st = index_.AppendAudit(audit);
  if (!st.ok()) spdlog::error("ris report for job {}: audit: {}", job.id.value, st.ToString());
}

Status RisReporter::OnDelivered(const JobRecord& job) {
  if (!config_.sends()) return Status::Ok();
  const std::string what = "ris report for job " + std::to_string(job.id.value);
  ASSIGN_OR_RETURN(std::vector<FindingRecord> findings, index_.ListFindings(job.id));
  const bool urgent = config_.priority_message != RisPriorityMessage::kNone &&
                      IsUrgent(config_.urgent_when, findings);
  if (!config_.send_results && !urgent) return Status::Ok();

  ASSIGN_OR_RETURN(std::vector<InstanceRecord> instances,
                   index_.ListInstances(job.study_uid, job.series));
  if (instances.empty()) {
    ASSIGN_OR_RETURN(instances, index_.ListInstances(job.study_uid, {}));
  }
  if (instances.empty()) {
    AuditSkipped(job, "the study's instances are no longer in the index");
    return Status::Ok();
  }
  const InstanceRecord& first = instances.front();
  if (first.patient_id.empty()) {
    AuditSkipped(job, "the study has no Patient ID");
    return Status::Ok();
  }

  RisPatient patient;
  patient.id = first.patient_id;
  patient.id_authority = Attribute(first, "IssuerOfPatientID");
  const size_t caret = first.patient_name.find('^');
  patient.family_name = first.patient_name.substr(0, caret);
  if (caret != std::string::npos) {
    patient.given_name = first.patient_name.substr(caret + 1);
    patient.given_name = patient.given_name.substr(0, patient.given_name.find('^'));
  }

  RisOrderIds order;
  order.accession_number = first.accession_number;
  order.study_instance_uid = job.study_uid.str();
  order.requested_procedure_id = Attribute(first, "RequestedProcedureID");
  order.placer_order_number = Attribute(first, "PlacerOrderNumberImagingServiceRequest");
  order.filler_order_number = Attribute(first, "FillerOrderNumberImagingServiceRequest");
  if (!order.accession_number.empty()) {
    ASSIGN_OR_RETURN(std::optional<RisOrderRecord> known,
                     index_.GetRisOrder(order.accession_number));
    if (known) {
      if (!known->placer_order.empty()) order.placer_order_number = known->placer_order;
      if (!known->filler_order.empty()) order.filler_order_number = known->filler_order;
    }
  }
  if (order.accession_number.empty() && order.placer_order_number.empty() &&
      order.filler_order_number.empty()) {
    AuditSkipped(job, "the study has no accession number and no order number");
    return Status::Ok();
  }

  const TimePoint now = clock_.Now();
  Hl7Header header;
  header.sending_application = config_.sending_application;
  header.sending_facility = config_.sending_facility;
  header.receiving_application = config_.receiving_application;
  header.receiving_facility = config_.receiving_facility;
  header.processing_id = config_.processing_id;
  header.time = now;

  struct Queued {
    std::string type;
    std::string control_id;
    Hl7Message message;
  };
  std::vector<Queued> queue;
  if (urgent) {
    PriorityUpdate update;
    update.header = header;
    update.header.control_id = PriorityControlId(job.id);
    update.patient = patient;
    update.order = order;
    // Most RIS use the accession number as the filler order number: the update names the
    // order by it when the RIS never told us the order's numbers.
    if (update.order.placer_order_number.empty() && update.order.filler_order_number.empty()) {
      update.order.filler_order_number = order.accession_number;
    }
    update.procedure = {"", first.study_description, ""};
    update.priority = OrderPriority::kStat;
    update.reason = "AI triage: " + job.tool;
    update.modality = first.modality;
    const bool omi = config_.priority_message == RisPriorityMessage::kOmi;
    Result<Hl7Message> built =
        omi ? BuildPriorityUpdateOmi(update) : BuildPriorityUpdateOrm(update);
    if (!built.ok()) {
      AuditSkipped(job, "priority update: " + built.status().message());
    } else {
      queue.push_back({omi ? "OMI^O23" : "ORM^O01", update.header.control_id, *built});
    }
  }
  if (config_.send_results) {
    AiFindingResult result;
    result.header = header;
    result.header.control_id = ResultControlId(job.id);
    result.patient = patient;
    result.order = order;
    result.procedure = {job.tool, "AI result (" + job.tool + ")", "99CONDUIT"};
    result.observed_at =
        job.last_result_at.time_since_epoch().count() > 0 ? job.last_result_at : now;
    ASSIGN_OR_RETURN(std::optional<ToolRecord> tool, index_.GetTool(job.tool, std::nullopt));
    result.tool = tool ? job.tool + " " + tool->version : job.tool;
    result.result_status = "P";
    result.observations = ObservationsOf(findings, config_.urgent_when);
    Result<Hl7Message> built = BuildAiResultOru(result);
    if (!built.ok()) {
      AuditSkipped(job, "result: " + built.status().message());
    } else {
      queue.push_back({"ORU^R01", result.header.control_id, *built});
    }
  }

  const std::string patient_key = keyer_.KeyOf(patient.id);
  std::vector<std::string> queued;
  for (const Queued& q : queue) {
    Hl7OutboxRecord record;
    record.destination = config_.name;
    record.patient_key = patient_key;
    record.job_id = job.id;
    record.message_type = q.type;
    record.control_id = q.control_id;
    record.message = q.message.Serialize();
    record.state = Hl7OutboxState::kPending;
    record.next_attempt_at = now;
    record.created_at = now;
    Result<PutOutcome> put = index_.EnqueueHl7(record);
    if (!put.ok()) return put.status().WithContext(what);
    if (*put == PutOutcome::kInserted) queued.push_back(q.type);
  }
  if (queued.empty()) return Status::Ok();
  spdlog::info("{}: queued {} message(s) for RIS '{}'{}", what, queued.size(), config_.name,
               urgent ? " (urgent: priority update to stat)" : "");
  AuditEvent audit;
  audit.at = now;
  audit.action = "ris_report";
  audit.outcome = "success";
  audit.actor = config_.name;
  audit.study_ref = StudyRef(job.study_uid);
  audit.job_id = job.id;
  audit.detail = nlohmann::json{{"queued", queued}, {"urgent", urgent}}.dump();
  RETURN_IF_ERROR(index_.AppendAudit(audit).WithContext(what));
  if (on_queued_) on_queued_();
  return Status::Ok();
}

}  // namespace conduit
