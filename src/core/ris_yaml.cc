#include "core/ris_yaml.h"

#include <cctype>

namespace conduit {
namespace {

using yaml::Blame;
using yaml::CheckKeys;
using yaml::Child;
using yaml::GetBool;
using yaml::GetDuration;
using yaml::GetNumber;
using yaml::GetString;
using yaml::GetWholeNumber;
using yaml::Present;

constexpr const char* kPath = "ris";

// MSH values are written into HL7 fields: no separators, escape or control characters.
Status CheckHl7Value(const yaml::Context& ctx, const YAML::Node& ris, const char* key,
                     const std::string& value, bool required) {
  if (value.empty()) {
    if (required) return ctx.Error(Blame(ris, key), Child(kPath, key), "is required");
    return Status::Ok();
  }
  if (value.size() > 180) {
    return ctx.Error(Blame(ris, key), Child(kPath, key), "longer than 180 characters");
  }
  for (char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == '|' || c == '^' || c == '~' || c == '\\' || c == '&') {
      return ctx.Error(Blame(ris, key), Child(kPath, key),
                       "may not contain | ^ ~ \\ & or control characters (HL7 separators)");
    }
  }
  return Status::Ok();
}

Status GetPort(const yaml::Context& ctx, const YAML::Node& ris, const char* key, int64_t lo,
               int& out) {
  int64_t v = out;
  RETURN_IF_ERROR(GetWholeNumber(ctx, ris, kPath, key, lo, 65535, v));
  out = static_cast<int>(v);
  return Status::Ok();
}

Status AtLeast(const yaml::Context& ctx, const YAML::Node& map, const std::string& path,
               const char* key, milliseconds value, milliseconds minimum, const char* text) {
  if (value >= minimum) return Status::Ok();
  return ctx.Error(Blame(map, key), Child(path, key), std::string("expected at least ") + text);
}

Status ParseRetry(const yaml::Context& ctx, const YAML::Node& n, RisConfig& out) {
  const std::string path = "ris.retry";
  if (!n.IsMap()) return ctx.Error(n, path, "expected initial_backoff, max_backoff, max_attempts");
  RETURN_IF_ERROR(CheckKeys(ctx, n, path, {"initial_backoff", "max_backoff", "max_attempts"}));
  RETURN_IF_ERROR(GetDuration(ctx, n, path, "initial_backoff", out.initial_backoff));
  RETURN_IF_ERROR(GetDuration(ctx, n, path, "max_backoff", out.max_backoff));
  int64_t attempts = out.max_attempts;
  RETURN_IF_ERROR(GetWholeNumber(ctx, n, path, "max_attempts", 0, 1'000'000, attempts));
  out.max_attempts = static_cast<int>(attempts);
  RETURN_IF_ERROR(
      AtLeast(ctx, n, path, "initial_backoff", out.initial_backoff, milliseconds(100), "100ms"));
  if (out.max_backoff < out.initial_backoff) {
    return ctx.Error(Blame(n, "max_backoff"), path + ".max_backoff",
                     "is shorter than initial_backoff");
  }
  return Status::Ok();
}

Status ParseSend(const yaml::Context& ctx, const YAML::Node& n, RisConfig& out) {
  const std::string path = "ris.send";
  if (!n.IsMap()) return ctx.Error(n, path, "expected results, priority");
  RETURN_IF_ERROR(CheckKeys(ctx, n, path, {"results", "priority"}));
  RETURN_IF_ERROR(GetBool(ctx, n, path, "results", out.send_results));
  std::string priority = RisPriorityMessageName(out.priority_message);
  RETURN_IF_ERROR(GetString(ctx, n, path, "priority", priority));
  if (priority == "omi") {
    out.priority_message = RisPriorityMessage::kOmi;
  } else if (priority == "orm") {
    out.priority_message = RisPriorityMessage::kOrm;
  } else if (priority == "none") {
    out.priority_message = RisPriorityMessage::kNone;
  } else {
    return ctx.Error(Blame(n, "priority"), path + ".priority",
                     "expected 'omi' (OMI^O23), 'orm' (ORM^O01) or 'none'");
  }
  return Status::Ok();
}

// ris.tls: one set of files for both directions, as the RIS is one peer.
Status ParseTls(const yaml::Context& ctx, const YAML::Node& n, RisConfig& out) {
  const std::string path = "ris.tls";
  if (!n.IsMap()) {
    return ctx.Error(n, path, "expected ca_file, certificate_file, key_file, crl_file");
  }
  RETURN_IF_ERROR(CheckKeys(
      ctx, n, path,
      {"ca_file", "certificate_file", "key_file", "crl_file", "require_client_certificate"}));
  std::string ca, certificate, key, crl;
  RETURN_IF_ERROR(GetString(ctx, n, path, "ca_file", ca, true));
  RETURN_IF_ERROR(GetString(ctx, n, path, "certificate_file", certificate));
  RETURN_IF_ERROR(GetString(ctx, n, path, "key_file", key));
  RETURN_IF_ERROR(GetString(ctx, n, path, "crl_file", crl));
  bool require_client_certificate = true;
  RETURN_IF_ERROR(GetBool(ctx, n, path, "require_client_certificate", require_client_certificate));
  if (certificate.empty() != key.empty()) {
    return ctx.Error(n, path, "certificate_file and key_file go together");
  }
  out.tls = true;
  out.listen_tls.certificate_file = certificate;
  out.listen_tls.key_file = key;
  out.listen_tls.ca_file = ca;
  out.listen_tls.crl_file = crl;
  out.listen_tls.require_client_certificate = require_client_certificate;
  out.send_tls = {true, ca, certificate, key, crl};
  return Status::Ok();
}

Status ParseUrgentWhen(const yaml::Context& ctx, const YAML::Node& n, RisUrgencyRule& out) {
  const std::string path = "ris.urgent_when";
  if (!n.IsMap()) return ctx.Error(n, path, "expected codes, score_at_least");
  RETURN_IF_ERROR(CheckKeys(ctx, n, path, {"codes", "score_at_least"}));
  std::vector<yaml::ListItem> codes;
  RETURN_IF_ERROR(yaml::GetNameList(ctx, n, path, "codes", codes));
  out.codes.clear();
  for (const yaml::ListItem& item : codes) {
    const size_t colon = item.value.find(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == item.value.size()) {
      return ctx.Error(item.node, item.path,
                       "expected SCHEME:VALUE, e.g. SCT:52101004 (a coding scheme designator "
                       "and a code value)");
    }
    out.codes.push_back(item.value);
  }
  if (Present(n["score_at_least"])) {
    double threshold = 0;
    RETURN_IF_ERROR(GetNumber(ctx, n, path, "score_at_least", -1e12, 1e12, threshold));
    out.score_at_least = threshold;
  }
  return Status::Ok();
}

}  // namespace

const char* RisPriorityMessageName(RisPriorityMessage message) {
  switch (message) {
    case RisPriorityMessage::kNone:
      return "none";
    case RisPriorityMessage::kOmi:
      return "omi";
    case RisPriorityMessage::kOrm:
      return "orm";
  }
  return "none";
}

Status ParseRisSection(const yaml::Context& ctx, const YAML::Node& n, RisConfig& out) {
  if (!n.IsMap()) return ctx.Error(n, kPath, "expected a mapping (host, port, listen_port, ...)");
  RETURN_IF_ERROR(CheckKeys(
      ctx, n, kPath,
      {"name", "host", "port", "receiving_application", "receiving_facility", "sending_application",
       "sending_facility", "processing_id", "listen_bind", "listen_port", "listen_allowed_hosts",
       "connect_timeout", "ack_timeout", "retry", "send", "urgent_when", "tls"}));
  RETURN_IF_ERROR(GetString(ctx, n, kPath, "name", out.name));
  if (out.name.empty() || out.name.size() > 64) {
    return ctx.Error(Blame(n, "name"), "ris.name", "expected 1 to 64 characters");
  }
  for (char c : out.name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') {
      return ctx.Error(Blame(n, "name"), "ris.name", "expected letters, digits, - and _ only");
    }
  }
  RETURN_IF_ERROR(GetString(ctx, n, kPath, "host", out.host));
  RETURN_IF_ERROR(GetPort(ctx, n, "port", 1, out.port));
  if (!out.host.empty() && out.port == 0) {
    return ctx.Error(Blame(n, "port"), "ris.port", "is required with ris.host");
  }
  if (out.host.empty() && Present(n["port"])) {
    return ctx.Error(n["port"], "ris.port", "needs ris.host (the RIS's MLLP endpoint)");
  }
  for (auto [key, value, required] :
       {std::tuple<const char*, std::string*, bool>{"receiving_application",
                                                    &out.receiving_application, false},
        {"receiving_facility", &out.receiving_facility, false},
        {"sending_application", &out.sending_application, true},
        {"sending_facility", &out.sending_facility, false}}) {
    RETURN_IF_ERROR(GetString(ctx, n, kPath, key, *value));
    RETURN_IF_ERROR(CheckHl7Value(ctx, n, key, *value, required));
  }
  RETURN_IF_ERROR(GetString(ctx, n, kPath, "processing_id", out.processing_id));
  if (out.processing_id != "P" && out.processing_id != "T" && out.processing_id != "D") {
    return ctx.Error(Blame(n, "processing_id"), "ris.processing_id",
                     "expected P (production), T (training) or D (debugging)");
  }
  RETURN_IF_ERROR(GetString(ctx, n, kPath, "listen_bind", out.listen_bind));
  RETURN_IF_ERROR(GetPort(ctx, n, "listen_port", 0, out.listen_port));
  std::vector<yaml::ListItem> hosts;
  RETURN_IF_ERROR(yaml::GetNameList(ctx, n, kPath, "listen_allowed_hosts", hosts));
  out.listen_allowed_hosts.clear();
  for (const yaml::ListItem& item : hosts) {
    Result<AddressRange> range = AddressRange::Parse(item.value);
    if (!range.ok()) return ctx.Error(item.node, item.path, range.status().message());
    out.listen_allowed_hosts.push_back(*range);
  }
  if (!hosts.empty() && out.listen_port == 0) {
    return ctx.Error(n["listen_allowed_hosts"], "ris.listen_allowed_hosts",
                     "needs ris.listen_port (the listener it restricts)");
  }
  RETURN_IF_ERROR(GetDuration(ctx, n, kPath, "connect_timeout", out.connect_timeout));
  RETURN_IF_ERROR(GetDuration(ctx, n, kPath, "ack_timeout", out.ack_timeout));
  RETURN_IF_ERROR(
      AtLeast(ctx, n, kPath, "connect_timeout", out.connect_timeout, milliseconds(100), "100ms"));
  RETURN_IF_ERROR(
      AtLeast(ctx, n, kPath, "ack_timeout", out.ack_timeout, milliseconds(100), "100ms"));
  if (Present(n["tls"])) RETURN_IF_ERROR(ParseTls(ctx, n["tls"], out));
  if (Present(n["retry"])) RETURN_IF_ERROR(ParseRetry(ctx, n["retry"], out));
  if (Present(n["send"])) RETURN_IF_ERROR(ParseSend(ctx, n["send"], out));
  if (Present(n["urgent_when"]))
    RETURN_IF_ERROR(ParseUrgentWhen(ctx, n["urgent_when"], out.urgent_when));
  if (out.tls && out.listen_port != 0 && out.listen_tls.certificate_file.empty()) {
    return ctx.Error(n["tls"], "ris.tls.certificate_file",
                     "is required with ris.listen_port: the listener presents it to the RIS");
  }
  if (out.host.empty() && out.listen_port == 0) {
    return ctx.Error(n, kPath,
                     "neither host (to send results) nor listen_port (to receive orders and "
                     "reports): remove the section or set one");
  }
  if (out.sends() && out.priority_message != RisPriorityMessage::kNone &&
      out.urgent_when.codes.empty() && !out.urgent_when.score_at_least) {
    return ctx.Error(Present(n["send"]) ? n["send"] : n, "ris.send.priority",
                     std::string("priority updates are on (") +
                         RisPriorityMessageName(out.priority_message) +
                         ") but ris.urgent_when gives no codes and no score_at_least: set a "
                         "rule, or send.priority: none");
  }
  return Status::Ok();
}

}  // namespace conduit
