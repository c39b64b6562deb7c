#include "hl7/ris_messages.h"

#include <utility>

#include "hl7/hl7_ack.h"

namespace conduit {
namespace {

// Collects Set() calls on one message; the first error wins.
class Writer {
 public:
  explicit Writer(Hl7Message& message) : message_(message) {}
  void Set(const std::string& path, std::string_view value) {
    if (status_.ok() && !value.empty()) status_ = message_.Set(path, value);
  }
  void SetCoded(const std::string& path, const Hl7Coded& coded) {
    Set(path + ".1", coded.code);
    Set(path + ".2", coded.text);
    Set(path + ".3", coded.system);
  }
  void Segment(std::string_view name) {
    if (status_.ok()) {
      Result<size_t> added = message_.AddSegment(name);
      if (!added.ok()) status_ = added.status();
    }
  }
  const Status& status() const { return status_; }

 private:
  Hl7Message& message_;
  Status status_;
};

Status CheckHeader(const Hl7Header& header, std::string_view what) {
  if (header.control_id.empty()) {
    return InvalidArgument(std::string(what) + ": MSH-10 control id is required");
  }
  return Status::Ok();
}

void WriteHeader(Writer& w, const Hl7Header& header, std::string_view code,
                 std::string_view trigger, std::string_view structure) {
  w.Segment("MSH");
  w.Set("MSH-3", header.sending_application);
  w.Set("MSH-4", header.sending_facility);
  w.Set("MSH-5", header.receiving_application);
  w.Set("MSH-6", header.receiving_facility);
  w.Set("MSH-7", FormatHl7Time(header.time));
  w.Set("MSH-9.1", code);
  w.Set("MSH-9.2", trigger);
  w.Set("MSH-9.3", structure);
  w.Set("MSH-10", header.control_id);
  w.Set("MSH-11", header.processing_id);
  w.Set("MSH-12", header.version);
}

void WritePatient(Writer& w, const RisPatient& patient) {
  w.Segment("PID");
  w.Set("PID-1", "1");
  w.Set("PID-3.1", patient.id);
  w.Set("PID-3.4", patient.id_authority);
  w.Set("PID-3.5", patient.id_type);
  w.Set("PID-5.1", patient.family_name);
  w.Set("PID-5.2", patient.given_name);
}

bool IsDecimal(std::string_view text) {
  size_t i = 0;
  if (i < text.size() && (text[i] == '+' || text[i] == '-')) ++i;
  size_t digits = 0;
  bool point = false;
  for (; i < text.size(); ++i) {
    if (text[i] >= '0' && text[i] <= '9') {
      ++digits;
    } else if (text[i] == '.' && !point) {
      point = true;
    } else {
      return false;
    }
  }
  return digits > 0;
}

bool HasOrderNumber(const RisOrderIds& ids) {
  return !ids.placer_order_number.empty() || !ids.filler_order_number.empty();
}

RisPatient ReadPatient(const Hl7Segment& pid) {
  RisPatient patient;
  patient.id = pid.Value(3, 1, 1);
  patient.id_authority = pid.Value(3, 1, 4);
  patient.id_type = pid.Value(3, 1, 5);
  patient.family_name = pid.Value(5, 1, 1);
  patient.given_name = pid.Value(5, 1, 2);
  return patient;
}

Hl7Coded ReadCoded(const Hl7Segment& segment, size_t field) {
  return {segment.Value(field, 1, 1), segment.Value(field, 1, 2), segment.Value(field, 1, 3)};
}

// Fills what an OBR says about the order, leaving values already found elsewhere.
void ReadObr(const Hl7Segment& obr, RisOrderIds& ids, Hl7Coded& procedure) {
  if (ids.placer_order_number.empty()) ids.placer_order_number = obr.Value(2);
  if (ids.filler_order_number.empty()) ids.filler_order_number = obr.Value(3);
  if (ids.accession_number.empty()) ids.accession_number = obr.Value(18);
  if (ids.requested_procedure_id.empty()) ids.requested_procedure_id = obr.Value(19);
  procedure = ReadCoded(obr, 4);
}

std::string FormattedText(const std::string& value, const Hl7Delimiters& d) {
  const std::string br = std::string(1, d.escape) + ".br" + std::string(1, d.escape);
  std::string out;
  size_t start = 0;
  while (true) {
    const size_t at = value.find(br, start);
    if (at == std::string::npos) {
      out += value.substr(start);
      return out;
    }
    out += value.substr(start, at - start);
    out += '\n';
    start = at + br.size();
  }
}

// MSH-10 of an incoming message, cut short: it names the message in errors.
std::string ControlIdForLog(const Hl7Message& message) {
  return message.control_id().substr(0, 20);
}

}  // namespace

std::string_view PriorityCode(OrderPriority priority) {
  switch (priority) {
    case OrderPriority::kStat:
      return "S";
    case OrderPriority::kAsap:
      return "A";
    case OrderPriority::kRoutine:
      return "R";
    case OrderPriority::kPreop:
      return "P";
    case OrderPriority::kCallback:
      return "C";
    case OrderPriority::kTimingCritical:
      return "T";
  }
  return "R";
}

std::optional<OrderPriority> PriorityFromCode(std::string_view code) {
  for (OrderPriority p :
       {OrderPriority::kStat, OrderPriority::kAsap, OrderPriority::kRoutine, OrderPriority::kPreop,
        OrderPriority::kCallback, OrderPriority::kTimingCritical}) {
    if (PriorityCode(p) == code) return p;
  }
  return std::nullopt;
}

Result<Hl7Message> BuildAiResultOru(const AiFindingResult& result) {
  const std::string what = "ORU^R01 " + result.header.control_id;
  RETURN_IF_ERROR(CheckHeader(result.header, "ORU^R01"));
  if (result.patient.id.empty()) return InvalidArgument(what + ": PID-3 patient id is required");
  if (result.order.accession_number.empty() && !HasOrderNumber(result.order)) {
    return InvalidArgument(what + ": an accession number or order number is required");
  }
  if (result.observations.empty()) return InvalidArgument(what + ": no observation");
  if (result.result_status.empty()) return InvalidArgument(what + ": OBR-25 is required");

  Hl7Message message;
  Writer w(message);
  WriteHeader(w, result.header, "ORU", "R01", "ORU_R01");
  WritePatient(w, result.patient);
  w.Segment("ORC");
  w.Set("ORC-1", "RE");
  w.Set("ORC-2", result.order.placer_order_number);
  w.Set("ORC-3", result.order.filler_order_number);
  w.Segment("OBR");
  w.Set("OBR-1", "1");
  w.Set("OBR-2", result.order.placer_order_number);
  w.Set("OBR-3", result.order.filler_order_number);
  w.SetCoded("OBR-4", result.procedure);
  const std::string observed = FormatHl7Time(result.observed_at);
  w.Set("OBR-7", observed);
  w.Set("OBR-18", result.order.accession_number);
  w.Set("OBR-22", FormatHl7Time(result.header.time));
  w.Set("OBR-25", result.result_status);

  size_t set_id = 0;
  const auto obx_prefix = [](size_t n) { return "OBX(" + std::to_string(n) + ")-"; };
  for (const AiObservation& o : result.observations) {
    ++set_id;
    const std::string obx = obx_prefix(set_id);
    const std::string where = what + ": observation " + std::to_string(set_id);
    if (o.observation.code.empty() && o.observation.text.empty()) {
      return InvalidArgument(where + ": OBX-3 observation identifier is required");
    }
    w.Segment("OBX");
    w.Set(obx + "1", std::to_string(set_id));
    switch (o.kind) {
      case AiObservation::Kind::kCoded:
        if (o.coded_value.code.empty() && o.coded_value.text.empty()) {
          return InvalidArgument(where + ": coded OBX-5 is empty");
        }
        w.Set(obx + "2", "CWE");
        w.SetCoded(obx + "5", o.coded_value);
        break;
      case AiObservation::Kind::kNumeric:
        if (!IsDecimal(o.value)) return InvalidArgument(where + ": NM OBX-5 is not a number");
        w.Set(obx + "2", "NM");
        w.Set(obx + "5", o.value);
        w.Set(obx + "6", o.units);
        break;
      case AiObservation::Kind::kText:
        w.Set(obx + "2", "TX");
        w.Set(obx + "5", o.value);
        break;
    }
    w.SetCoded(obx + "3", o.observation);
    w.Set(obx + "8", o.abnormal_flag);
    w.Set(obx + "11", result.result_status);
    w.Set(obx + "14", observed);
    w.Set(obx + "18", result.tool);
  }
  if (!result.order.study_instance_uid.empty()) {
    const std::string obx = obx_prefix(++set_id);
    w.Segment("OBX");
    w.Set(obx + "1", std::to_string(set_id));
    w.Set(obx + "2", "ST");
    w.SetCoded(obx + "3", {"110180", "Study Instance UID", "DCM"});
    w.Set(obx + "5", result.order.study_instance_uid);
    w.Set(obx + "11", result.result_status);
  }
  RETURN_IF_ERROR(w.status());
  return message;
}

namespace {

Status CheckPriorityUpdate(const PriorityUpdate& update, std::string_view type, bool need_pid) {
  RETURN_IF_ERROR(CheckHeader(update.header, type));
  const std::string what = std::string(type) + " " + update.header.control_id;
  if (!HasOrderNumber(update.order)) {
    return InvalidArgument(what + ": a placer or filler order number is required");
  }
  if (need_pid && update.patient.id.empty()) {
    return InvalidArgument(what + ": PID-3 patient id is required");
  }
  return Status::Ok();
}

void WriteOrcXo(Writer& w, const PriorityUpdate& update) {
  w.Segment("ORC");
  w.Set("ORC-1", "XO");
  w.Set("ORC-2", update.order.placer_order_number);
  w.Set("ORC-3", update.order.filler_order_number);
  w.Set("ORC-9", FormatHl7Time(update.header.time));
  w.Set("ORC-16.2", update.reason);
}

void WriteObr(Writer& w, const PriorityUpdate& update) {
  w.Segment("OBR");
  w.Set("OBR-1", "1");
  w.Set("OBR-2", update.order.placer_order_number);
  w.Set("OBR-3", update.order.filler_order_number);
  w.SetCoded("OBR-4", update.procedure);
}

}  // namespace

Result<Hl7Message> BuildPriorityUpdateOmi(const PriorityUpdate& update) {
  RETURN_IF_ERROR(CheckPriorityUpdate(update, "OMI^O23", /*need_pid=*/false));
  Hl7Message message;
  Writer w(message);
  WriteHeader(w, update.header, "OMI", "O23", "OMI_O23");
  if (!update.patient.id.empty()) WritePatient(w, update.patient);
  WriteOrcXo(w, update);
  w.Segment("TQ1");
  w.Set("TQ1-1", "1");
  w.Set("TQ1-9.1", PriorityCode(update.priority));
  w.Set("TQ1-9.3", "HL70485");
  WriteObr(w, update);
  w.Segment("IPC");
  w.Set("IPC-1", update.order.accession_number);
  w.Set("IPC-2", update.order.requested_procedure_id);
  w.Set("IPC-3", update.order.study_instance_uid);
  w.Set("IPC-5", update.modality);
  RETURN_IF_ERROR(w.status());
  return message;
}

Result<Hl7Message> BuildPriorityUpdateOrm(const PriorityUpdate& update) {
  RETURN_IF_ERROR(CheckPriorityUpdate(update, "ORM^O01", /*need_pid=*/true));
  Hl7Message message;
  Writer w(message);
  WriteHeader(w, update.header, "ORM", "O01", "ORM_O01");
  WritePatient(w, update.patient);
  WriteOrcXo(w, update);
  w.Set("ORC-7.6", PriorityCode(update.priority));
  WriteObr(w, update);
  w.Set("OBR-18", update.order.accession_number);
  w.Set("OBR-19", update.order.requested_procedure_id);
  w.Set("OBR-27.6", PriorityCode(update.priority));
  if (!update.order.study_instance_uid.empty()) {
    w.Segment("ZDS");
    w.Set("ZDS-1.1", update.order.study_instance_uid);
    w.Set("ZDS-1.2", "100");
    w.Set("ZDS-1.3", "Application");
    w.Set("ZDS-1.4", "DICOM");
  }
  RETURN_IF_ERROR(w.status());
  return message;
}

Result<std::vector<RisOrder>> ReadOrders(const Hl7Message& message) {
  const std::string code = message.message_code();
  const std::string trigger = message.trigger_event();
  if (!((code == "ORM" && trigger == "O01") || (code == "OMI" && trigger == "O23"))) {
    return InvalidArgument("hl7 read orders: message " + ControlIdForLog(message) + " is " +
                           code.substr(0, 3) + "^" + trigger.substr(0, 3) +
                           ", not ORM^O01 or OMI^O23");
  }
  std::vector<RisOrder> orders;
  RisPatient patient;
  bool has_obr = false;  // whether the current order has its OBR already
  for (const Hl7Segment& s : message.segments()) {
    const std::string& name = s.name();
    if (name == "PID") {
      patient = ReadPatient(s);
      continue;
    }
    if (name == "ORC" || (name == "OBR" && (orders.empty() || has_obr))) {
      RisOrder& order = orders.emplace_back();
      order.patient = patient;
      has_obr = false;
      if (name == "ORC") {
        order.order_control = s.Value(1);
        order.order_status = s.Value(5);
        order.order.placer_order_number = s.Value(2);
        order.order.filler_order_number = s.Value(3);
        order.priority_code = s.Value(7, 1, 6);
        continue;
      }
    }
    if (orders.empty()) continue;
    RisOrder& order = orders.back();
    if (name == "OBR") {
      has_obr = true;
      ReadObr(s, order.order, order.procedure);
      if (order.priority_code.empty()) order.priority_code = s.Value(27, 1, 6);
      if (order.modality.empty()) order.modality = s.Value(24);
      if (order.result_status.empty()) order.result_status = s.Value(25);
    } else if (name == "TQ1") {
      if (!s.Value(9).empty()) order.priority_code = s.Value(9);
    } else if (name == "IPC") {
      if (!s.Value(1).empty()) order.order.accession_number = s.Value(1);
      if (!s.Value(2).empty()) order.order.requested_procedure_id = s.Value(2);
      if (order.order.study_instance_uid.empty()) order.order.study_instance_uid = s.Value(3);
      if (!s.Value(5).empty()) order.modality = s.Value(5);
    } else if (name == "ZDS") {
      if (!s.Value(1).empty()) order.order.study_instance_uid = s.Value(1);
    }
  }
  if (orders.empty()) {
    return InvalidArgument("hl7 read orders: message " + ControlIdForLog(message) +
                           " has no order");
  }
  for (RisOrder& order : orders) order.priority = PriorityFromCode(order.priority_code);
  return orders;
}

Result<std::vector<RisReport>> ReadReports(const Hl7Message& message) {
  if (message.message_code() != "ORU" || message.trigger_event() != "R01") {
    return InvalidArgument("hl7 read reports: message " + ControlIdForLog(message) +
                           " is not ORU^R01");
  }
  std::vector<RisReport> reports;
  RisPatient patient;
  RisOrderIds pending;  // from an ORC that precedes its OBR
  for (const Hl7Segment& s : message.segments()) {
    const std::string& name = s.name();
    if (name == "PID") {
      patient = ReadPatient(s);
    } else if (name == "ORC") {
      pending = {};
      pending.placer_order_number = s.Value(2);
      pending.filler_order_number = s.Value(3);
    } else if (name == "OBR") {
      RisReport& report = reports.emplace_back();
      report.patient = patient;
      report.order = std::exchange(pending, {});
      ReadObr(s, report.order, report.procedure);
      report.result_status = s.Value(25);
      report.observed_at = s.Value(7);
    } else if (name == "OBX" && !reports.empty()) {
      if (s.Value(3, 1, 1) == "110180" && s.Value(3, 1, 3) == "DCM") {
        reports.back().order.study_instance_uid = s.Value(5);
        continue;
      }
      const std::string type = s.Value(2);
      if (type == "CE" || type == "CWE" || type == "CNE") {
        reports.back().coded.push_back({ReadCoded(s, 3), ReadCoded(s, 5)});
        continue;
      }
      if (type != "TX" && type != "FT" && type != "ST" && !type.empty()) continue;
      RisReport& report = reports.back();
      for (size_t r = 1; r <= s.Repetitions(5); ++r) {
        std::string line = s.Value(5, r);
        if (type == "FT") line = FormattedText(line, message.delimiters());
        if (!report.text.empty()) report.text += '\n';
        report.text += line;
      }
    }
  }
  if (reports.empty()) {
    return InvalidArgument("hl7 read reports: message " + ControlIdForLog(message) + " has no OBR");
  }
  return reports;
}

}  // namespace conduit
