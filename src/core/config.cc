#include "core/config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "core/http_url.h"
#include "core/priors_yaml.h"
#include "core/ris_yaml.h"
#include "core/text_file.h"
#include "core/yaml_fields.h"

namespace conduit {
namespace {

using Ctx = yaml::Context;
using yaml::CheckKeys;
using yaml::Child;
using yaml::GetBool;
using yaml::GetDuration;
using yaml::GetString;

Status GetInt(const Ctx& ctx, const YAML::Node& map, const std::string& path, const char* key,
              int64_t lo, int64_t hi, auto& out) {
  const YAML::Node n = map[key];
  if (!n.IsDefined() || n.IsNull()) return Status::Ok();
  int64_t v = 0;
  try {
    v = n.as<int64_t>();
  } catch (const YAML::Exception&) {
    return ctx.Error(n, Child(path, key), "expected a whole number");
  }
  if (v < lo || v > hi) {
    return ctx.Error(n, Child(path, key),
                     "out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
  out = static_cast<std::remove_reference_t<decltype(out)>>(v);
  return Status::Ok();
}

Status GetStringList(const Ctx& ctx, const YAML::Node& map, const std::string& path,
                     const char* key, std::vector<std::string>& out) {
  const YAML::Node n = map[key];
  if (!n.IsDefined() || n.IsNull()) return Status::Ok();
  out.clear();
  if (n.IsScalar()) {
    out.push_back(n.as<std::string>());
    return Status::Ok();
  }
  if (!n.IsSequence()) return ctx.Error(n, Child(path, key), "expected a list of values");
  for (const auto& item : n) {
    if (!item.IsScalar()) return ctx.Error(item, Child(path, key), "expected a list of values");
    out.push_back(item.as<std::string>());
  }
  return Status::Ok();
}

Status CheckAeTitle(const Ctx& ctx, const YAML::Node& node, const std::string& key,
                    const std::string& ae) {
  if (ae.empty() || ae.size() > 16) {
    return ctx.Error(node, key, "an AE title has 1 to 16 characters");
  }
  for (char c : ae) {
    if (c == '\\' || static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) {
      return ctx.Error(node, key, "an AE title may not contain backslashes or control characters");
    }
  }
  return Status::Ok();
}

// dicom.allowed_calling_aes: AE titles, each alone (from any address) or as
// {ae_title: X, hosts: [addresses or blocks]}.
Status ParseAllowedCallingAes(const Ctx& ctx, const YAML::Node& list, DicomConfig& out) {
  const std::string path = "dicom.allowed_calling_aes";
  if (!yaml::Present(list)) return Status::Ok();
  if (!list.IsSequence()) {
    return ctx.Error(list, path, "expected a list of AE titles or {ae_title, hosts} mappings");
  }
  out.allowed_calling_aes.clear();
  out.calling_ae_hosts.clear();
  for (size_t i = 0; i < list.size(); ++i) {
    const YAML::Node item = list[i];
    const std::string at = path + "[" + std::to_string(i) + "]";
    std::string ae;
    if (item.IsScalar()) {
      ae = item.as<std::string>();
      RETURN_IF_ERROR(CheckAeTitle(ctx, item, at, ae));
    } else if (item.IsMap()) {
      RETURN_IF_ERROR(CheckKeys(ctx, item, at, {"ae_title", "hosts"}));
      RETURN_IF_ERROR(GetString(ctx, item, at, "ae_title", ae, true));
      RETURN_IF_ERROR(CheckAeTitle(ctx, item["ae_title"], at + ".ae_title", ae));
      std::vector<yaml::ListItem> hosts;
      RETURN_IF_ERROR(yaml::GetNameList(ctx, item, at, "hosts", hosts, true));
      std::vector<AddressRange>& ranges = out.calling_ae_hosts[ae];
      for (const yaml::ListItem& host : hosts) {
        Result<AddressRange> range = AddressRange::Parse(host.value);
        if (!range.ok()) return ctx.Error(host.node, host.path, range.status().message());
        ranges.push_back(*range);
      }
    } else {
      return ctx.Error(item, at, "expected an AE title or {ae_title, hosts}");
    }
    if (std::find(out.allowed_calling_aes.begin(), out.allowed_calling_aes.end(), ae) !=
        out.allowed_calling_aes.end()) {
      return ctx.Error(item, at, "'" + ae + "' is listed twice");
    }
    out.allowed_calling_aes.push_back(ae);
  }
  return Status::Ok();
}

Status ParseNode(const Ctx& ctx, const YAML::Node& n, NodeConfig& out) {
  RETURN_IF_ERROR(CheckKeys(ctx, n, "node", {"name", "data_dir", "log_level"}));
  RETURN_IF_ERROR(GetString(ctx, n, "node", "name", out.name));
  std::string dir;
  RETURN_IF_ERROR(GetString(ctx, n, "node", "data_dir", dir));
  if (!dir.empty()) out.data_dir = dir;
  RETURN_IF_ERROR(GetString(ctx, n, "node", "log_level", out.log_level));
  static const std::set<std::string> kLevels = {"trace", "debug", "info", "warn", "error"};
  if (!kLevels.count(out.log_level)) {
    return ctx.Error(n["log_level"], "node.log_level",
                     "expected trace, debug, info, warn or error");
  }
  return Status::Ok();
}

// `tls:` under `path` of `parent` (absent: the defaults): the CAs trusted for an https peer and
// the client certificate presented to it. Whether the URL is https is checked by the caller.
Status ParseTlsClient(const Ctx& ctx, const YAML::Node& parent, const std::string& parent_path,
                      TlsClientConfig& out) {
  const YAML::Node n = parent["tls"];
  if (!yaml::Present(n)) return Status::Ok();
  const std::string path = parent_path + ".tls";
  if (!n.IsMap()) {
    return ctx.Error(n, path,
                     "expected ca_file, client_certificate_file, client_key_file, crl_file");
  }
  RETURN_IF_ERROR(CheckKeys(ctx, n, path,
                            {"ca_file", "client_certificate_file", "client_key_file", "crl_file"}));
  std::string ca, certificate, key, crl;
  RETURN_IF_ERROR(GetString(ctx, n, path, "ca_file", ca));
  RETURN_IF_ERROR(GetString(ctx, n, path, "crl_file", crl));
  RETURN_IF_ERROR(GetString(ctx, n, path, "client_certificate_file", certificate));
  RETURN_IF_ERROR(GetString(ctx, n, path, "client_key_file", key));
  if (certificate.empty() != key.empty()) {
    return ctx.Error(n, path,
                     "client_certificate_file and client_key_file go together (mutual TLS)");
  }
  out.enabled = true;
  out.ca_file = ca;
  out.client_certificate_file = certificate;
  out.client_key_file = key;
  out.crl_file = crl;
  return Status::Ok();
}

// `tls:` is only for an https `url`.
Status CheckTlsUrl(const Ctx& ctx, const YAML::Node& parent, const std::string& parent_path,
                   const std::string& url, const TlsClientConfig& tls) {
  if (!tls.enabled || url.empty() || url.rfind("https://", 0) == 0) return Status::Ok();
  return ctx.Error(parent["tls"], parent_path + ".tls",
                   "applies to an https url, and the url is " + url);
}

// `dicom.tls`: the DICOM TLS listener's port, certificate, key and client CAs.
Status ParseDicomTlsListener(const Ctx& ctx, const YAML::Node& dicom, DicomTlsListenerConfig& out) {
  const YAML::Node n = dicom["tls"];
  if (!yaml::Present(n)) return Status::Ok();
  const std::string path = "dicom.tls";
  if (!n.IsMap()) return ctx.Error(n, path, "expected port, certificate_file, key_file, ...");
  RETURN_IF_ERROR(CheckKeys(ctx, n, path,
                            {"port", "certificate_file", "key_file", "ca_file",
                             "require_client_certificate", "crl_file"}));
  if (!yaml::Present(n["port"])) return ctx.Error(n, path + ".port", "is required");
  RETURN_IF_ERROR(GetInt(ctx, n, path, "port", 1, 65535, out.port));
  std::string certificate, key, ca, crl;
  RETURN_IF_ERROR(GetString(ctx, n, path, "certificate_file", certificate, /*required=*/true));
  RETURN_IF_ERROR(GetString(ctx, n, path, "key_file", key, /*required=*/true));
  // Client certificates are checked against the trust's own CAs only: with the system's,
  // a certificate any public CA issued to anyone would open the listener.
  if (!yaml::Present(n["ca_file"])) {
    return ctx.Error(n, path + ".ca_file",
                     "is required: the CAs (the trust's or the imaging network's) whose client "
                     "certificates this listener accepts");
  }
  RETURN_IF_ERROR(GetString(ctx, n, path, "ca_file", ca, /*required=*/true));
  RETURN_IF_ERROR(GetString(ctx, n, path, "crl_file", crl));
  RETURN_IF_ERROR(
      GetBool(ctx, n, path, "require_client_certificate", out.require_client_certificate));
  out.certificate_file = certificate;
  out.key_file = key;
  out.ca_file = ca;
  out.crl_file = crl;
  return Status::Ok();
}

Status ParseDicom(const Ctx& ctx, const YAML::Node& n, DicomConfig& out) {
  RETURN_IF_ERROR(
      CheckKeys(ctx, n, "dicom",
                {"ae_title", "bind", "port", "allowed_calling_aes", "max_associations",
                 "acse_timeout", "dimse_timeout", "max_pdu_bytes", "min_free_bytes", "tls"}));
  std::string ae = out.ae_title.str();
  RETURN_IF_ERROR(GetString(ctx, n, "dicom", "ae_title", ae));
  RETURN_IF_ERROR(CheckAeTitle(ctx, n["ae_title"], "dicom.ae_title", ae));
  out.ae_title = AeTitle(ae);
  RETURN_IF_ERROR(GetString(ctx, n, "dicom", "bind", out.bind));
  RETURN_IF_ERROR(GetInt(ctx, n, "dicom", "port", 0, 65535, out.port));
  RETURN_IF_ERROR(ParseAllowedCallingAes(ctx, n["allowed_calling_aes"], out));
  RETURN_IF_ERROR(GetInt(ctx, n, "dicom", "max_associations", 1, 1000, out.max_associations));
  RETURN_IF_ERROR(GetDuration(ctx, n, "dicom", "acse_timeout", out.acse_timeout));
  RETURN_IF_ERROR(GetDuration(ctx, n, "dicom", "dimse_timeout", out.dimse_timeout));
  RETURN_IF_ERROR(GetInt(ctx, n, "dicom", "max_pdu_bytes", 4096, 1 << 24, out.max_pdu_bytes));
  RETURN_IF_ERROR(
      GetInt(ctx, n, "dicom", "min_free_bytes", 0, int64_t{1} << 50, out.min_free_bytes));
  RETURN_IF_ERROR(ParseDicomTlsListener(ctx, n, out.tls));
  if (out.tls.port != 0 && out.tls.port == out.port) {
    return ctx.Error(n["tls"]["port"], "dicom.tls.port",
                     "is dicom.port; the TLS listener needs a port of its own (2762 is DICOM's)");
  }
  return Status::Ok();
}

// An http(s)://host[:port][/path] URL at `key` of `map`, kept without its trailing slashes.
Status GetHttpUrl(const Ctx& ctx, const YAML::Node& map, const std::string& path, const char* key,
                  std::string& out, bool required = false) {
  RETURN_IF_ERROR(GetString(ctx, map, path, key, out, required));
  if (out.empty()) return Status::Ok();
  Result<HttpUrl> url = ParseHttpUrl(out);
  if (!url.ok()) return ctx.Error(map[key], Child(path, key), url.status().message());
  while (!out.empty() && out.back() == '/') out.pop_back();
  return Status::Ok();
}

Status ParseHttp(const Ctx& ctx, const YAML::Node& n, HttpConfig& out) {
  RETURN_IF_ERROR(CheckKeys(ctx, n, "http",
                            {"bind", "port", "threads", "max_connections_per_client",
                             "request_header_timeout", "public_url", "max_stow_bytes",
                             "event_channel_port", "api_token_file", "tls", "trusted_proxies"}));
  RETURN_IF_ERROR(GetString(ctx, n, "http", "bind", out.bind));
  RETURN_IF_ERROR(GetInt(ctx, n, "http", "port", 0, 65535, out.port));
  std::string token_file;
  RETURN_IF_ERROR(GetString(ctx, n, "http", "api_token_file", token_file));
  out.api_token_file = token_file;
  // Reachable from the network, the admin API and the identified studies need a token.
  if (out.port != 0 && !IsLoopbackHost(out.bind) && out.api_token_file.empty()) {
    return ctx.Error(n["bind"], "http.bind",
                     "'" + out.bind +
                         "' is not a loopback address, so anyone on the network could reach "
                         "the admin API and the identified studies over DICOMweb: set "
                         "http.api_token_file (bearer tokens), or bind 127.0.0.1 behind a "
                         "reverse proxy");
  }
  RETURN_IF_ERROR(GetInt(ctx, n, "http", "threads", 1, 256, out.threads));
  out.max_connections_per_client = std::max(1, out.threads - 1);
  RETURN_IF_ERROR(GetInt(ctx, n, "http", "max_connections_per_client", 1, out.threads,
                         out.max_connections_per_client));
  RETURN_IF_ERROR(
      GetDuration(ctx, n, "http", "request_header_timeout", out.request_header_timeout));
  if (out.request_header_timeout < std::chrono::seconds(1)) {
    return ctx.Error(n["request_header_timeout"], "http.request_header_timeout",
                     "must be at least 1s");
  }
  RETURN_IF_ERROR(GetHttpUrl(ctx, n, "http", "public_url", out.public_url));
  RETURN_IF_ERROR(
      GetInt(ctx, n, "http", "max_stow_bytes", 1024, int64_t{1} << 50, out.max_stow_bytes));
  RETURN_IF_ERROR(GetInt(ctx, n, "http", "event_channel_port", 0, 65535, out.event_channel_port));
  std::vector<yaml::ListItem> proxies;
  RETURN_IF_ERROR(yaml::GetNameList(ctx, n, "http", "trusted_proxies", proxies));
  for (const yaml::ListItem& proxy : proxies) {
    Result<AddressRange> range = AddressRange::Parse(proxy.value);
    if (!range.ok()) return ctx.Error(proxy.node, proxy.path, range.status().message());
    out.trusted_proxies.push_back(*range);
  }
  if (const YAML::Node tls = n["tls"]; yaml::Present(tls)) {
    if (!tls.IsMap()) {
      return ctx.Error(tls, "http.tls", "expected certificate_file, key_file, ca_file, crl_file");
    }
    RETURN_IF_ERROR(
        CheckKeys(ctx, tls, "http.tls", {"certificate_file", "key_file", "ca_file", "crl_file"}));
    std::string certificate, key, ca, crl;
    RETURN_IF_ERROR(GetString(ctx, tls, "http.tls", "certificate_file", certificate, true));
    RETURN_IF_ERROR(GetString(ctx, tls, "http.tls", "key_file", key, true));
    RETURN_IF_ERROR(GetString(ctx, tls, "http.tls", "ca_file", ca));
    RETURN_IF_ERROR(GetString(ctx, tls, "http.tls", "crl_file", crl));
    if (!crl.empty() && ca.empty()) {
      return ctx.Error(tls["crl_file"], "http.tls.crl_file",
                       "needs ca_file: CRLs are checked only for client certificates");
    }
    out.tls_certificate_file = certificate;
    out.tls_key_file = key;
    out.tls_ca_file = ca;
    out.tls_crl_file = crl;
  }
  return Status::Ok();
}

// A destination's `dicomweb:` section: results go by STOW-RS, not C-STORE.
Status ParseStowDestination(const Ctx& ctx, const YAML::Node& dest, const std::string& dest_path,
                            DestinationConfig& out) {
  for (const char* dimse_only :
       {"ae_title", "host", "port", "tls", "storage_commitment", "commitment_timeout"}) {
    if (dest[dimse_only].IsDefined()) {
      return ctx.Error(
          dest[dimse_only], Child(dest_path, dimse_only),
          "is for C-STORE destinations; this one has dicomweb (STOW-RS)" +
              std::string(std::string_view(dimse_only) == "tls" ? ": put tls under dicomweb" : ""));
    }
  }
  const std::string path = dest_path + ".dicomweb";
  const YAML::Node n = dest["dicomweb"];
  if (!n.IsMap()) return ctx.Error(n, path, "expected url, auth_token_file, chunk_bytes, tls");
  RETURN_IF_ERROR(CheckKeys(ctx, n, path, {"url", "auth_token_file", "chunk_bytes", "tls"}));
  RETURN_IF_ERROR(GetHttpUrl(ctx, n, path, "url", out.dicomweb_url, /*required=*/true));
  std::string token_file;
  RETURN_IF_ERROR(GetString(ctx, n, path, "auth_token_file", token_file));
  out.auth_token_file = token_file;
  RETURN_IF_ERROR(
      GetInt(ctx, n, path, "chunk_bytes", int64_t{1} << 16, int64_t{1} << 40, out.chunk_bytes));
  RETURN_IF_ERROR(ParseTlsClient(ctx, n, path, out.tls));
  return CheckTlsUrl(ctx, n, path, out.dicomweb_url, out.tls);
}

Status ParseDestination(const Ctx& ctx, const YAML::Node& n, const std::string& path,
                        DestinationConfig& out) {
  RETURN_IF_ERROR(CheckKeys(ctx, n, path,
                            {"name", "ae_title", "host", "port", "timeout", "tls",
                             "storage_commitment", "commitment_timeout", "dicomweb"}));
  RETURN_IF_ERROR(GetString(ctx, n, path, "name", out.name));
  if (out.name.empty()) return ctx.Error(n, path + ".name", "is required");
  if (n["dicomweb"].IsDefined()) {
    RETURN_IF_ERROR(GetDuration(ctx, n, path, "timeout", out.timeout));
    return ParseStowDestination(ctx, n, path, out);
  }
  std::string ae;
  RETURN_IF_ERROR(GetString(ctx, n, path, "ae_title", ae));
  RETURN_IF_ERROR(
      CheckAeTitle(ctx, n["ae_title"].IsDefined() ? n["ae_title"] : n, path + ".ae_title", ae));
  out.ae_title = AeTitle(ae);
  RETURN_IF_ERROR(GetString(ctx, n, path, "host", out.host));
  if (out.host.empty()) return ctx.Error(n, path + ".host", "is required");
  RETURN_IF_ERROR(GetInt(ctx, n, path, "port", 1, 65535, out.port));
  RETURN_IF_ERROR(GetDuration(ctx, n, path, "timeout", out.timeout));
  RETURN_IF_ERROR(GetBool(ctx, n, path, "storage_commitment", out.storage_commitment));
  RETURN_IF_ERROR(GetDuration(ctx, n, path, "commitment_timeout", out.commitment_timeout));
  // Nothing is held while a report is awaited (the request is in the index), so a PACS that
  // commits only once its archive has the images, hours later, can be waited for.
  if (out.commitment_timeout < std::chrono::seconds(1) ||
      out.commitment_timeout > std::chrono::hours(72)) {
    return ctx.Error(n["commitment_timeout"], path + ".commitment_timeout",
                     "must be between 1s and 72h");
  }
  return ParseTlsClient(ctx, n, path, out.tls);
}

Status ParseDicomwebSettings(const Ctx& ctx, const YAML::Node& n, const std::string& path,
                             ToolConfig& out) {
  RETURN_IF_ERROR(ParseTlsClient(ctx, n, path, out.tls));
  std::string token_file;
  RETURN_IF_ERROR(GetString(ctx, n, path, "auth_token_file", token_file));
  out.auth_token_file = token_file;
  RETURN_IF_ERROR(
      GetInt(ctx, n, path, "chunk_bytes", int64_t{1} << 16, int64_t{1} << 40, out.chunk_bytes));
  RETURN_IF_ERROR(GetDuration(ctx, n, path, "poll_interval", out.poll_interval));
  if (out.poll_interval.count() < 0 ||
      (out.poll_interval.count() > 0 && out.poll_interval < std::chrono::seconds(1))) {
    return ctx.Error(n["poll_interval"], path + ".poll_interval",
                     "expected 0 (no polling) or at least 1s");
  }
  return Status::Ok();
}

// The `worklist:` section of a worklist tool (also beside a manifest): the token its performer
// presents, and the priority of its workitems.
Status ParseWorklistSettings(const Ctx& ctx, const YAML::Node& tool, const std::string& tool_path,
                             ToolConfig& out) {
  const std::string path = tool_path + ".worklist";
  const YAML::Node n = tool["worklist"];
  if (!yaml::Present(n)) return ctx.Error(tool, path, "a worklist tool needs this section");
  if (!n.IsMap()) return ctx.Error(n, path, "expected auth_token_file, priority");
  RETURN_IF_ERROR(CheckKeys(ctx, n, path, {"auth_token_file", "priority"}));
  std::string token_file;
  RETURN_IF_ERROR(GetString(ctx, n, path, "auth_token_file", token_file, /*required=*/true));
  out.auth_token_file = token_file;
  RETURN_IF_ERROR(GetString(ctx, n, path, "priority", out.priority));
  if (out.priority != "HIGH" && out.priority != "MEDIUM" && out.priority != "LOW") {
    return ctx.Error(n["priority"], path + ".priority", "expected HIGH, MEDIUM or LOW");
  }
  return Status::Ok();
}

// `circuit_breaker:` of a tool: the trust's choice, for a tool given by its manifest too.
Status ParseCircuitBreaker(const Ctx& ctx, const YAML::Node& tool, const std::string& tool_path,
                           CircuitBreakerConfig& out) {
  const std::string path = tool_path + ".circuit_breaker";
  const YAML::Node n = tool["circuit_breaker"];
  if (!yaml::Present(n)) return Status::Ok();
  if (!n.IsMap()) return ctx.Error(n, path, "expected failure_threshold, open_for, max_open_for");
  RETURN_IF_ERROR(CheckKeys(ctx, n, path, {"failure_threshold", "open_for", "max_open_for"}));
  RETURN_IF_ERROR(GetInt(ctx, n, path, "failure_threshold", 0, 1000, out.failure_threshold));
  RETURN_IF_ERROR(GetDuration(ctx, n, path, "open_for", out.open_for));
  RETURN_IF_ERROR(GetDuration(ctx, n, path, "max_open_for", out.max_open_for));
  if (out.open_for < std::chrono::seconds(1)) {
    return ctx.Error(yaml::Blame(n, "open_for"), path + ".open_for", "expected at least 1s");
  }
  if (out.max_open_for < out.open_for) {
    return ctx.Error(yaml::Blame(n, "max_open_for"), path + ".max_open_for",
                     "is shorter than open_for");
  }
  return Status::Ok();
}

// A tool given by its manifest: `{manifest: FILE}`, optionally with the name routes use and,
// for a dicomweb tool, the trust's settings for reaching it (`dicomweb:` without `url`).
Status ParseManifestTool(const Ctx& ctx, const YAML::Node& n, const std::string& path,
                         ToolConfig& out) {
  for (const auto& kv : n) {
    const std::string key = kv.first.as<std::string>();
    if (key != "manifest" && key != "name" && key != "dicomweb" && key != "worklist" &&
        key != "circuit_breaker" && key != "tls") {
      return ctx.Error(kv.first, path + "." + key,
                       "comes from the manifest; a tool named by its manifest takes only "
                       "'manifest', 'name', 'circuit_breaker' and, for a dicomweb tool, "
                       "'dicomweb', for a worklist tool, 'worklist', for a dimse tool, 'tls'");
    }
  }
  RETURN_IF_ERROR(ParseCircuitBreaker(ctx, n, path, out.circuit_breaker));
  std::string file;
  RETURN_IF_ERROR(GetString(ctx, n, path, "manifest", file, /*required=*/true));
  RETURN_IF_ERROR(GetString(ctx, n, path, "name", out.name));
  out.manifest_file = file;
  if (n["tls"].IsDefined() && n["dicomweb"].IsDefined()) {
    return ctx.Error(n["tls"], path + ".tls",
                     "a dicomweb tool's TLS settings go under dicomweb (dicomweb.tls)");
  }
  // For a dimse manifest (checked when it is read): DICOM over TLS.
  RETURN_IF_ERROR(ParseTlsClient(ctx, n, path, out.tls));
  if (n["dicomweb"].IsDefined()) {
    const std::string section = path + ".dicomweb";
    const YAML::Node d = n["dicomweb"];
    if (!d.IsMap()) return ctx.Error(d, section, "expected auth_token_file, chunk_bytes, ...");
    if (d["url"].IsDefined()) {
      return ctx.Error(d["url"], section + ".url", "comes from the manifest's endpoint");
    }
    RETURN_IF_ERROR(
        CheckKeys(ctx, d, section, {"auth_token_file", "chunk_bytes", "poll_interval", "tls"}));
    // Marks the entry as dicomweb until the manifest, which must agree, fills it.
    out.kind = ToolKind::kDicomweb;
    RETURN_IF_ERROR(ParseDicomwebSettings(ctx, d, section, out));
  }
  if (n["worklist"].IsDefined()) {
    if (n["dicomweb"].IsDefined()) {
      return ctx.Error(n["worklist"], path + ".worklist",
                       "a tool has dicomweb or worklist, not both");
    }
    // Marks the entry as a worklist tool until the manifest, which must agree, fills it.
    out.kind = ToolKind::kWorklist;
    RETURN_IF_ERROR(ParseWorklistSettings(ctx, n, path, out));
  }
  return Status::Ok();
}

// The `dicomweb:` section of a dicomweb tool: where and how Conduit reaches it.
Status ParseDicomwebTool(const Ctx& ctx, const YAML::Node& tool, const std::string& tool_path,
                         ToolConfig& out) {
  const std::string path = tool_path + ".dicomweb";
  const YAML::Node n = tool["dicomweb"];
  if (!yaml::Present(n)) return ctx.Error(tool, path, "a dicomweb tool needs this section");
  if (!n.IsMap()) return ctx.Error(n, path, "expected url, auth_token_file, chunk_bytes, ...");
  RETURN_IF_ERROR(
      CheckKeys(ctx, n, path, {"url", "auth_token_file", "chunk_bytes", "poll_interval", "tls"}));
  RETURN_IF_ERROR(GetHttpUrl(ctx, n, path, "url", out.url, /*required=*/true));
  RETURN_IF_ERROR(ParseDicomwebSettings(ctx, n, path, out));
  return CheckTlsUrl(ctx, n, path, out.url, out.tls);
}

const char* ToolKindName(ToolKind kind) {
  switch (kind) {
    case ToolKind::kExecutable:
      return "executable";
    case ToolKind::kDimse:
      return "dimse";
    case ToolKind::kDicomweb:
      return "dicomweb";
    case ToolKind::kWorklist:
      return "worklist";
  }
  return "?";
}

Status ParseTool(const Ctx& ctx, const YAML::Node& n, const std::string& path, ToolConfig& out) {
  // One key list for both forms: a key of the other form gets ParseManifestTool's message.
  RETURN_IF_ERROR(CheckKeys(ctx, n, path,
                            {"name",
                             "manifest",
                             "kind",
                             "command",
                             "ae_title",
                             "host",
                             "port",
                             "tls",
                             "dicomweb",
                             "worklist",
                             "max_concurrent",
                             "timeout",
                             "results_stable_after",
                             "expected_turnaround",
                             "circuit_breaker",
                             "hosting_region",
                             "category",
                             "retain",
                             "deidentify",
                             "priors"}));
  if (n.IsMap() && n["manifest"].IsDefined()) return ParseManifestTool(ctx, n, path, out);
  RETURN_IF_ERROR(GetString(ctx, n, path, "name", out.name));
  if (out.name.empty()) return ctx.Error(n, path + ".name", "is required");
  std::string kind;
  RETURN_IF_ERROR(GetString(ctx, n, path, "kind", kind));
  if (kind == "executable") {
    out.kind = ToolKind::kExecutable;
  } else if (kind == "dimse") {
    out.kind = ToolKind::kDimse;
  } else if (kind == "dicomweb") {
    out.kind = ToolKind::kDicomweb;
  } else if (kind == "worklist") {
    out.kind = ToolKind::kWorklist;
  } else {
    return ctx.Error(n["kind"].IsDefined() ? n["kind"] : n, path + ".kind",
                     "expected 'executable', 'dimse', 'dicomweb' or 'worklist'");
  }
  if (out.kind == ToolKind::kDicomweb) {
    RETURN_IF_ERROR(ParseDicomwebTool(ctx, n, path, out));
  } else if (n["dicomweb"].IsDefined()) {
    return ctx.Error(n["dicomweb"], path + ".dicomweb", "only a dicomweb tool takes this section");
  }
  if (out.kind == ToolKind::kWorklist) {
    RETURN_IF_ERROR(ParseWorklistSettings(ctx, n, path, out));
  } else if (n["worklist"].IsDefined()) {
    return ctx.Error(n["worklist"], path + ".worklist", "only a worklist tool takes this section");
  }
  RETURN_IF_ERROR(GetStringList(ctx, n, path, "command", out.command));
  std::string ae;
  RETURN_IF_ERROR(GetString(ctx, n, path, "ae_title", ae));
  RETURN_IF_ERROR(GetString(ctx, n, path, "host", out.host));
  RETURN_IF_ERROR(GetInt(ctx, n, path, "port", 1, 65535, out.port));
  if (out.kind == ToolKind::kExecutable && out.command.empty()) {
    return ctx.Error(n, path + ".command", "an executable tool needs a command");
  }
  if (out.kind == ToolKind::kDimse) {
    RETURN_IF_ERROR(
        CheckAeTitle(ctx, n["ae_title"].IsDefined() ? n["ae_title"] : n, path + ".ae_title", ae));
    if (out.host.empty()) return ctx.Error(n, path + ".host", "a dimse tool needs a host");
    RETURN_IF_ERROR(ParseTlsClient(ctx, n, path, out.tls));
  } else if (n["tls"].IsDefined()) {
    return ctx.Error(n["tls"], path + ".tls",
                     out.kind == ToolKind::kDicomweb
                         ? "a dicomweb tool's TLS settings go under dicomweb (dicomweb.tls)"
                         : "only a dimse tool takes this section");
  }
  out.ae_title = AeTitle(ae);
  RETURN_IF_ERROR(GetInt(ctx, n, path, "max_concurrent", 1, 256, out.max_concurrent));
  RETURN_IF_ERROR(GetDuration(ctx, n, path, "timeout", out.timeout));
  RETURN_IF_ERROR(GetDuration(ctx, n, path, "results_stable_after", out.results_stable_after));
  RETURN_IF_ERROR(GetDuration(ctx, n, path, "expected_turnaround", out.expected_turnaround));
  if (out.expected_turnaround.count() < 0) {
    return ctx.Error(n["expected_turnaround"], path + ".expected_turnaround",
                     "expected 0 (no alert) or a positive duration");
  }
  RETURN_IF_ERROR(ParseCircuitBreaker(ctx, n, path, out.circuit_breaker));
  RETURN_IF_ERROR(ParsePriorsSection(ctx, n, path, out.priors));
  RETURN_IF_ERROR(GetString(ctx, n, path, "hosting_region", out.hosting_region));
  RETURN_IF_ERROR(GetString(ctx, n, path, "category", out.category));
  RETURN_IF_ERROR(GetStringList(ctx, n, path, "retain", out.retain));
  for (const auto& option : out.retain) {
    if (option.empty()) return ctx.Error(n["retain"], path + ".retain", "empty option name");
  }
  RETURN_IF_ERROR(GetBool(ctx, n, path, "deidentify", out.deidentify));
  if (out.IsRemote() && n["deidentify"].IsDefined() && !out.deidentify) {
    return ctx.Error(n["deidentify"], path + ".deidentify",
                     std::string("a ") + ToolKindName(out.kind) +
                         " tool runs outside the trust and is always de-identified; remove "
                         "this key or set it to true");
  }
  return Status::Ok();
}

Status ParseGovernance(const Ctx& ctx, const YAML::Node& n, GovernanceConfig& out) {
  RETURN_IF_ERROR(CheckKeys(ctx, n, "governance", {"policy", "key_file"}));
  std::string policy, key_file;
  RETURN_IF_ERROR(GetString(ctx, n, "governance", "policy", policy));
  RETURN_IF_ERROR(GetString(ctx, n, "governance", "key_file", key_file));
  out.policy_file = policy;
  out.key_file = key_file;
  return Status::Ok();
}

Status ParseRoute(const Ctx& ctx, const YAML::Node& n, const std::string& path, RouteConfig& out) {
  RETURN_IF_ERROR(CheckKeys(
      ctx, n, path,
      {"name", "when", "tool", "results_to", "shadow", "stable_after", "select", "on_late"}));
  RETURN_IF_ERROR(GetString(ctx, n, path, "name", out.name));
  if (out.name.empty()) return ctx.Error(n, path + ".name", "is required");
  const YAML::Node when = n["when"];
  if (when.IsDefined() && !when.IsNull()) {
    if (!when.IsMap()) return ctx.Error(when, path + ".when", "expected attribute: pattern(s)");
    for (const auto& kv : when) {
      RouteCondition cond;
      cond.attribute = kv.first.as<std::string>();
      const std::string key = path + ".when." + cond.attribute;
      if (kv.second.IsScalar()) {
        cond.patterns.push_back(kv.second.as<std::string>());
      } else if (kv.second.IsSequence() && kv.second.size() > 0) {
        for (const auto& p : kv.second) {
          if (!p.IsScalar()) return ctx.Error(p, key, "expected a pattern or a list of patterns");
          cond.patterns.push_back(p.as<std::string>());
        }
      } else {
        return ctx.Error(kv.second, key, "expected a pattern or a list of patterns");
      }
      out.when.push_back(std::move(cond));
    }
  }
  RETURN_IF_ERROR(GetString(ctx, n, path, "tool", out.tool));
  if (out.tool.empty()) return ctx.Error(n, path + ".tool", "is required");
  RETURN_IF_ERROR(GetStringList(ctx, n, path, "results_to", out.results_to));
  RETURN_IF_ERROR(GetBool(ctx, n, path, "shadow", out.shadow));
  if (out.shadow && !out.results_to.empty()) {
    return ctx.Error(n["results_to"], path + ".results_to",
                     "a shadow route delivers nothing: remove results_to, or shadow");
  }
  RETURN_IF_ERROR(GetDuration(ctx, n, path, "stable_after", out.stable_after));
  std::string select;
  RETURN_IF_ERROR(GetString(ctx, n, path, "select", select));
  if (select.empty() || select == "study") {
    out.select = RouteScope::kStudy;
  } else if (select == "series") {
    out.select = RouteScope::kSeries;
  } else {
    return ctx.Error(n["select"], path + ".select", "expected 'study' or 'series'");
  }
  std::string late;
  RETURN_IF_ERROR(GetString(ctx, n, path, "on_late", late));
  if (late.empty() || late == "ignore") {
    out.on_late = LateInstancePolicy::kIgnore;
  } else if (late == "rerun") {
    out.on_late = LateInstancePolicy::kRerun;
  } else {
    return ctx.Error(n["on_late"], path + ".on_late", "expected 'ignore' or 'rerun'");
  }
  return Status::Ok();
}

template <typename T, typename F>
Status ParseList(const Ctx& ctx, const YAML::Node& root, const char* key, std::vector<T>& out,
                 F parse_one) {
  const YAML::Node list = root[key];
  if (!list.IsDefined() || list.IsNull()) return Status::Ok();
  if (!list.IsSequence()) return ctx.Error(list, key, "expected a list");
  out.clear();
  for (size_t i = 0; i < list.size(); ++i) {
    T item;
    RETURN_IF_ERROR(
        parse_one(ctx, list[i], std::string(key) + "[" + std::to_string(i) + "]", item));
    out.push_back(std::move(item));
  }
  return Status::Ok();
}

// `priors_source:` the PACS priors are found on: `kind: dimse` with ae_title, host, port and
// retrieve (get or move), or
// `kind: dicomweb` with url and auth_token_file; timeout for either.
Status ParsePriorsSource(const Ctx& ctx, const YAML::Node& n, PriorsSourceConfig& out) {
  const std::string path = "priors_source";
  RETURN_IF_ERROR(CheckKeys(ctx, n, path,
                            {"kind", "ae_title", "host", "port", "retrieve", "url",
                             "auth_token_file", "tls", "timeout"}));
  std::string kind;
  RETURN_IF_ERROR(GetString(ctx, n, path, "kind", kind, /*required=*/true));
  const auto only_for = [&](const char* key, const char* which) -> Status {
    if (!yaml::Present(n[key])) return Status::Ok();
    return ctx.Error(n[key], Child(path, key), std::string("only for kind ") + which);
  };
  if (kind == "dimse") {
    out.kind = PriorsSourceKind::kDimse;
    std::string ae;
    RETURN_IF_ERROR(GetString(ctx, n, path, "ae_title", ae));
    RETURN_IF_ERROR(CheckAeTitle(ctx, yaml::Blame(n, "ae_title"), path + ".ae_title", ae));
    out.ae_title = AeTitle(ae);
    RETURN_IF_ERROR(GetString(ctx, n, path, "host", out.host, /*required=*/true));
    RETURN_IF_ERROR(GetInt(ctx, n, path, "port", 1, 65535, out.port));
    std::string retrieve = "get";
    RETURN_IF_ERROR(GetString(ctx, n, path, "retrieve", retrieve));
    if (retrieve == "move") {
      out.retrieve = PriorsRetrieve::kMove;
    } else if (retrieve != "get") {
      return ctx.Error(n["retrieve"], path + ".retrieve", "expected 'get' or 'move'");
    }
    RETURN_IF_ERROR(only_for("url", "dicomweb"));
    RETURN_IF_ERROR(only_for("auth_token_file", "dicomweb"));
    RETURN_IF_ERROR(ParseTlsClient(ctx, n, path, out.tls));
  } else if (kind == "dicomweb") {
    out.kind = PriorsSourceKind::kDicomweb;
    RETURN_IF_ERROR(GetHttpUrl(ctx, n, path, "url", out.url, /*required=*/true));
    std::string token_file;
    RETURN_IF_ERROR(GetString(ctx, n, path, "auth_token_file", token_file));
    out.auth_token_file = token_file;
    RETURN_IF_ERROR(ParseTlsClient(ctx, n, path, out.tls));
    RETURN_IF_ERROR(CheckTlsUrl(ctx, n, path, out.url, out.tls));
    for (const char* key : {"ae_title", "host", "port", "retrieve"}) {
      RETURN_IF_ERROR(only_for(key, "dimse"));
    }
  } else {
    return ctx.Error(n["kind"], path + ".kind", "expected 'dimse' or 'dicomweb'");
  }
  RETURN_IF_ERROR(GetDuration(ctx, n, path, "timeout", out.timeout));
  if (out.timeout < std::chrono::seconds(1)) {
    return ctx.Error(n["timeout"], path + ".timeout", "expected at least 1s");
  }
  return Status::Ok();
}

Status ParseRetry(const Ctx& ctx, const YAML::Node& n, RetryConfig& out) {
  RETURN_IF_ERROR(CheckKeys(ctx, n, "retry", {"max_attempts", "initial_backoff", "max_backoff"}));
  RETURN_IF_ERROR(GetInt(ctx, n, "retry", "max_attempts", 1, 1000, out.max_attempts));
  RETURN_IF_ERROR(GetDuration(ctx, n, "retry", "initial_backoff", out.initial_backoff));
  RETURN_IF_ERROR(GetDuration(ctx, n, "retry", "max_backoff", out.max_backoff));
  return Status::Ok();
}

}  // namespace

const ToolConfig* Config::FindTool(std::string_view name) const {
  for (const auto& t : tools) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

const DestinationConfig* Config::FindDestination(std::string_view name) const {
  for (const auto& d : destinations) {
    if (d.name == name) return &d;
  }
  return nullptr;
}

const RouteConfig* Config::FindRoute(std::string_view name) const {
  for (const auto& r : routes) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

std::vector<std::string> ExposureWarnings(const Config& config) {
  std::vector<std::string> warnings;
  const RisConfig& ris = config.ris;
  if (ris.listen_port != 0 && ris.listen_allowed_hosts.empty() &&
      !IsLoopbackHost(ris.listen_bind)) {
    warnings.push_back("ris: the MLLP listener on " + ris.listen_bind + ":" +
                       std::to_string(ris.listen_port) +
                       " takes orders and reports from any address; set "
                       "ris.listen_allowed_hosts to the RIS's");
  }
  return warnings;
}

bool IsLoopbackHost(std::string_view host) {
  std::string h(host);
  std::transform(h.begin(), h.end(), h.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (h == "localhost") return true;
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  in_addr v4{};
  if (inet_pton(AF_INET, h.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, h.c_str(), &v6) == 1) {
    return IN6_IS_ADDR_LOOPBACK(&v6) || (IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127);
  }
  return false;
}

Result<Config> ParseConfig(const std::string& yaml, const std::string& source) {
  Ctx ctx{source};
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::ParserException& e) {
    return InvalidArgument(source + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  Config config;
  if (root.IsNull()) return config;
  try {
    RETURN_IF_ERROR(CheckKeys(ctx, root, "",
                              {"node", "governance", "dicom", "http", "destinations", "tools",
                               "routes", "retry", "priors_source", "ris"}));
    if (root["node"]) RETURN_IF_ERROR(ParseNode(ctx, root["node"], config.node));
    if (root["governance"]) {
      RETURN_IF_ERROR(ParseGovernance(ctx, root["governance"], config.governance));
    }
    if (root["dicom"]) RETURN_IF_ERROR(ParseDicom(ctx, root["dicom"], config.dicom));
    if (root["http"]) RETURN_IF_ERROR(ParseHttp(ctx, root["http"], config.http));
    if (root["retry"]) RETURN_IF_ERROR(ParseRetry(ctx, root["retry"], config.retry));
    if (yaml::Present(root["priors_source"])) {
      RETURN_IF_ERROR(ParsePriorsSource(ctx, root["priors_source"], config.priors_source));
    }
    if (yaml::Present(root["ris"])) {
      RETURN_IF_ERROR(ParseRisSection(ctx, root["ris"], config.ris));
    }
    RETURN_IF_ERROR(ParseList(ctx, root, "destinations", config.destinations, ParseDestination));
    RETURN_IF_ERROR(ParseList(ctx, root, "tools", config.tools, ParseTool));
    RETURN_IF_ERROR(ParseList(ctx, root, "routes", config.routes, ParseRoute));
  } catch (const YAML::Exception& e) {
    return InvalidArgument(source + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  RETURN_IF_ERROR(ValidateConfig(config, source));
  return config;
}

Result<Config> LoadConfigFile(const std::filesystem::path& path) {
  ASSIGN_OR_RETURN(std::string text, ReadTextFile(path, "config"));
  ASSIGN_OR_RETURN(Config config, ParseConfig(text, path.string()));
  // The policy and key files are named relative to the config file's folder.
  const std::filesystem::path folder = path.parent_path();
  std::vector<std::filesystem::path*> paths = {
      &config.governance.policy_file, &config.governance.key_file,
      &config.priors_source.auth_token_file, &config.http.api_token_file};
  const auto add_tls = [&paths](TlsClientConfig& tls) {
    paths.push_back(&tls.ca_file);
    paths.push_back(&tls.client_certificate_file);
    paths.push_back(&tls.client_key_file);
    paths.push_back(&tls.crl_file);
  };
  add_tls(config.priors_source.tls);
  for (DestinationConfig& destination : config.destinations) {
    add_tls(destination.tls);
    paths.push_back(&destination.auth_token_file);
  }
  paths.push_back(&config.http.tls_certificate_file);
  paths.push_back(&config.http.tls_key_file);
  paths.push_back(&config.http.tls_ca_file);
  paths.push_back(&config.http.tls_crl_file);
  paths.push_back(&config.dicom.tls.certificate_file);
  paths.push_back(&config.dicom.tls.key_file);
  paths.push_back(&config.dicom.tls.ca_file);
  paths.push_back(&config.dicom.tls.crl_file);
  add_tls(config.ris.send_tls);
  paths.push_back(&config.ris.listen_tls.certificate_file);
  paths.push_back(&config.ris.listen_tls.key_file);
  paths.push_back(&config.ris.listen_tls.ca_file);
  paths.push_back(&config.ris.listen_tls.crl_file);
  for (ToolConfig& tool : config.tools) {
    paths.push_back(&tool.manifest_file);
    paths.push_back(&tool.auth_token_file);
    add_tls(tool.tls);
  }
  for (std::filesystem::path* p : paths) {
    if (!p->empty() && p->is_relative()) *p = folder / *p;
  }
  return config;
}

Status ValidateConfig(const Config& config, const std::string& source) {
  auto unique = [&](const std::string& kind, const std::vector<std::string>& names) -> Status {
    std::set<std::string> seen;
    for (const auto& n : names) {
      if (!seen.insert(n).second) {
        return InvalidArgument(source + ": " + kind + " '" + n + "' is defined twice");
      }
    }
    return Status::Ok();
  };
  std::vector<std::string> names;
  for (const auto& d : config.destinations) names.push_back(d.name);
  RETURN_IF_ERROR(unique("destination", names));
  names.clear();
  // A tool named by its manifest alone has its name once the manifest is read.
  bool unnamed_tools = false;
  for (const auto& t : config.tools) {
    if (t.name.empty()) {
      unnamed_tools = true;
    } else {
      names.push_back(t.name);
    }
  }
  RETURN_IF_ERROR(unique("tool", names));
  names.clear();
  for (const auto& r : config.routes) names.push_back(r.name);
  RETURN_IF_ERROR(unique("route", names));
  for (const auto& r : config.routes) {
    if (!config.FindTool(r.tool) && !unnamed_tools) {
      return InvalidArgument(source + ": route '" + r.name + "' names tool '" + r.tool +
                             "', which is not among tools");
    }
    for (const auto& d : r.results_to) {
      if (!config.FindDestination(d)) {
        return InvalidArgument(source + ": route '" + r.name + "' sends results to '" + d +
                               "', which is not among destinations");
      }
    }
  }
  if (!config.dicom.allowed_calling_aes.empty()) {
    for (const auto& t : config.tools) {
      if (t.kind != ToolKind::kDimse) continue;
      const auto& allowed = config.dicom.allowed_calling_aes;
      if (std::find(allowed.begin(), allowed.end(), t.ae_title.str()) == allowed.end()) {
        return InvalidArgument(source + ": tool '" + t.name + "' sends its results from AE '" +
                               t.ae_title.str() +
                               "', which dicom.allowed_calling_aes does not list: its results "
                               "would be refused");
      }
    }
  }
  if (!config.dicom.allowed_calling_aes.empty()) {
    const auto& allowed = config.dicom.allowed_calling_aes;
    for (const auto& d : config.destinations) {
      if (!d.storage_commitment) continue;
      if (std::find(allowed.begin(), allowed.end(), d.ae_title.str()) == allowed.end()) {
        return InvalidArgument(source + ": destination '" + d.name +
                               "' has storage_commitment on, but dicom.allowed_calling_aes does "
                               "not list its AE '" +
                               d.ae_title.str() + "': its commitment reports would be refused");
      }
    }
  }
  if (config.priors_source.kind == PriorsSourceKind::kDimse &&
      config.priors_source.retrieve == PriorsRetrieve::kMove &&
      !config.dicom.allowed_calling_aes.empty()) {
    const auto& allowed = config.dicom.allowed_calling_aes;
    const std::string& pacs = config.priors_source.ae_title.str();
    if (std::find(allowed.begin(), allowed.end(), pacs) == allowed.end()) {
      return InvalidArgument(source + ": priors_source retrieves by C-MOVE from AE '" + pacs +
                             "', which dicom.allowed_calling_aes does not list: the instances "
                             "it sends would be refused");
    }
  }
  if (config.priors_source.kind == PriorsSourceKind::kNone) {
    for (const auto& t : config.tools) {
      if (t.priors.count > 0) {
        return InvalidArgument(source + ": tool '" + t.name + "' asks for " +
                               std::to_string(t.priors.count) +
                               " prior(s), but no priors_source says where to find them");
      }
    }
  }
  // A performer's bearer token names its tool: one token file per worklist tool.
  std::map<std::string, std::string> worklist_tokens;
  for (const auto& t : config.tools) {
    if (t.kind != ToolKind::kWorklist || t.auth_token_file.empty()) continue;
    auto [it, fresh] =
        worklist_tokens.emplace(t.auth_token_file.lexically_normal().string(), t.name);
    if (!fresh) {
      return InvalidArgument(source + ": tools '" + it->second + "' and '" + t.name +
                             "' are worklist tools with the same auth_token_file: a performer's "
                             "token must name one tool");
    }
  }
  if (config.node.name.empty()) return InvalidArgument(source + ": node.name is empty");
  return Status::Ok();
}

Config EmbeddedDefaultConfig(const std::filesystem::path& binary_dir) {
  Config c;
  c.node.name = "conduit-demo";
  c.node.data_dir = "./var";
  c.dicom.ae_title = AeTitle("CONDUIT");
  c.dicom.port = 11112;
  c.http.port = 8080;
  DestinationConfig pacs;
  pacs.name = "pacs";
  pacs.ae_title = AeTitle("ORTHANC");
  pacs.host = "127.0.0.1";
  pacs.port = 4242;
  c.destinations.push_back(pacs);
  ToolConfig tool;
  tool.name = "reference";
  tool.kind = ToolKind::kExecutable;
  tool.command = {(binary_dir / "conduit-reference-tool").string()};
  tool.timeout = milliseconds(300'000);
  // The demo shows the policy at work: the tool sees a pseudonymised study, and its results
  // are re-identified onto the original one before they reach PACS.
  tool.deidentify = true;
  c.tools.push_back(tool);
  RouteConfig route;
  route.name = "ct";
  route.when.push_back(RouteCondition{"Modality", {"CT"}});
  route.tool = "reference";
  route.results_to = {"pacs"};
  route.stable_after = milliseconds(5'000);
  c.routes.push_back(route);
  return c;
}

}  // namespace conduit
