#include "cli/commands.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "app/api_token_setup.h"
#include "app/gateway.h"
#include "app/governance_setup.h"
#include "app/ingest_service.h"
#include "core/dicom_uid.h"
#include "core/iso_time.h"
#include "core/tls_files.h"
#include "dicom/dimse_sender.h"
#include "dicom/instance_meta.h"
#include "evidence/tool_manifest.h"
#include "pipeline/job_engine.h"
#include "pipeline/router.h"
#include "store/audit_json.h"
#include "store/file_system.h"
#include "store/sqlite_index.h"

namespace conduit::cli {
namespace {

std::string IsoTime(TimePoint t) { return ToUnixMillis(t) == 0 ? "" : FormatIsoTime(t); }

Result<std::unique_ptr<Index>> OpenIndexOf(const Config& config) {
  const auto path = config.node.data_dir / "index.sqlite";
  if (!std::filesystem::exists(path)) {
    return NotFound("no index at " + path.string() + " (has conduit serve run with this config?)");
  }
  return OpenSqliteIndex(path);
}

}  // namespace

Result<Config> LoadConfigOrDefault(const std::optional<std::string>& path,
                                   const std::filesystem::path& self) {
  Result<Config> config =
      path ? LoadConfigFile(*path) : Result<Config>(EmbeddedDefaultConfig(self));
  if (!config.ok()) return config;
  // Tools named by their manifest get their settings from it.
  RETURN_IF_ERROR(ResolveToolManifests(*config, path.value_or("(embedded default)")));
  // A tool the policy forbids (hosting region, retain options) is refused here, before
  // anything runs.
  auto policy = LoadPolicyFor(*config);
  if (!policy.ok()) return policy.status();
  return config;
}

int Serve(const Config& config) {
  // Block the stop signals in every thread; this one waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto gateway = Gateway::Create(config);
  if (!gateway.ok()) {
    spdlog::critical("event=start_failed error=\"{}\"", gateway.status().ToString());
    return 1;
  }
  Status st = (*gateway)->Start();
  if (!st.ok()) {
    spdlog::critical("event=start_failed error=\"{}\"", st.ToString());
    return 1;
  }
  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("event=stopping signal={}", sig);
  (*gateway)->Stop();
  return 0;
}

int RouteTest(const Config& config, const std::vector<std::string>& paths, bool json) {
  Router router(config.routes);
  nlohmann::json out = nlohmann::json::array();
  int errors = 0;
  for (const auto& path : paths) {
    MetaScan scan = ScanInstanceMetas(path);
    for (const auto& error : scan.errors) {
      ++errors;
      if (json) {
        out.push_back({{"error", error}});
      } else {
        std::cout << "! " << error << "\n";
      }
    }
    for (const auto& [file, meta] : scan.instances) {
      // No calling AE on a dry run: conditions on CallingAE see an empty value.
      auto decisions = router.Explain(RoutingAttributes(meta, AeTitle("")));
      nlohmann::json item = {{"file", file.string()}, {"routes", nlohmann::json::array()}};
      if (!json) std::cout << file.string() << "\n";
      for (const auto& d : decisions) {
        const RouteConfig& r = *d.route;
        item["routes"].push_back({{"route", r.name},
                                  {"matched", d.matched},
                                  {"tool", r.tool},
                                  {"results_to", r.results_to},
                                  {"reasons", d.reasons}});
        if (json) continue;
        std::cout << "  " << (d.matched ? "FIRES " : "skips ") << r.name << " -> tool " << r.tool;
        if (!r.results_to.empty()) {
          std::cout << ", results to";
          for (const auto& dest : r.results_to) std::cout << " " << dest;
        }
        std::cout << (r.select == RouteScope::kSeries ? " (per series)" : " (whole study)") << "\n";
        for (const auto& reason : d.reasons) std::cout << "      " << reason << "\n";
      }
      if (json) out.push_back(item);
    }
  }
  if (json) std::cout << out.dump(2) << "\n";
  return errors == 0 ? 0 : 1;
}

int JobsList(const Config& config, const std::string& state, int limit, bool json) {
  std::optional<JobState> filter;
  if (!state.empty()) {
    filter = ParseJobState(state);
    if (!filter) {
      std::cerr << "conduit: unknown job state '" << state << "'\n";
      return 2;
    }
  }
  auto index = OpenIndexOf(config);
  if (!index.ok()) {
    std::cerr << "conduit: " << index.status().message() << "\n";
    return 1;
  }
  auto jobs = (*index)->ListJobs(filter, limit);
  if (!jobs.ok()) {
    std::cerr << "conduit: " << jobs.status().ToString() << "\n";
    return 1;
  }
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& j : *jobs) {
      out.push_back({{"id", j.id.value},
                     {"study_ref", StudyRef(j.study_uid)},
                     {"route", j.route},
                     {"tool", j.tool},
                     {"state", JobStateName(j.state)},
                     {"attempts", j.attempts},
                     {"last_error", j.last_error},
                     {"created_at", IsoTime(j.created_at)},
                     {"updated_at", IsoTime(j.updated_at)}});
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::printf("%-8s %-17s %-12s %-12s %-17s %-8s %-21s %s\n", "ID", "STUDY", "ROUTE", "TOOL",
              "STATE", "ATTEMPTS", "UPDATED", "LAST ERROR");
  for (const auto& j : *jobs) {
    std::printf("%-8lld %-17s %-12s %-12s %-17s %-8d %-21s %s\n",
                static_cast<long long>(j.id.value), StudyRef(j.study_uid).c_str(), j.route.c_str(),
                j.tool.c_str(), JobStateName(j.state), j.attempts, IsoTime(j.updated_at).c_str(),
                j.last_error.c_str());
  }
  return 0;
}

int AuditOfStudy(const Config& config, const std::string& study_uid, int limit, bool json) {
  if (!IsDicomUidAsFound(study_uid)) {
    std::cerr << "conduit: --study: expected a Study Instance UID\n";
    return 2;
  }
  auto index = OpenIndexOf(config);
  if (!index.ok()) {
    std::cerr << "conduit: " << index.status().message() << "\n";
    return 1;
  }
  auto events = (*index)->ListAuditOfStudy(StudyRef(StudyUid(study_uid)), limit, 0);
  if (!events.ok()) {
    std::cerr << "conduit: " << events.status().ToString() << "\n";
    return 1;
  }
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const AuditEvent& e : *events) out.push_back(AuditEventJson(e));
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::printf("%-21s %-18s %-8s %-24s %-8s %s\n", "AT", "ACTION", "OUTCOME", "ACTOR", "JOB",
              "DETAIL");
  for (const AuditEvent& e : *events) {
    std::printf("%-21s %-18s %-8s %-24s %-8s %s\n", IsoTime(e.at).c_str(), e.action.c_str(),
                e.outcome.c_str(), e.actor.c_str(),
                e.job_id.value > 0 ? std::to_string(e.job_id.value).c_str() : "-",
                e.detail.c_str());
  }
  return 0;
}

int RisOutboxList(const Config& config, const std::string& state, int limit, bool json) {
  std::optional<Hl7OutboxState> filter;
  if (!state.empty()) {
    filter = ParseHl7OutboxState(state);
    if (!filter) {
      std::cerr << "conduit: unknown outbox state '" << state << "' (pending, sent, failed)\n";
      return 2;
    }
  }
  auto index = OpenIndexOf(config);
  if (!index.ok()) {
    std::cerr << "conduit: " << index.status().message() << "\n";
    return 1;
  }
  auto messages = (*index)->RecentHl7(config.ris.name, filter, limit);
  if (!messages.ok()) {
    std::cerr << "conduit: " << messages.status().ToString() << "\n";
    return 1;
  }
  // Never the message text or the patient key: they carry patient data.
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& m : *messages) {
      const bool pending = m.state == Hl7OutboxState::kPending;
      out.push_back({{"id", m.id},
                     {"destination", m.destination},
                     {"message_type", m.message_type},
                     {"control_id", m.control_id},
                     {"job_id", m.job_id.value},
                     {"state", Hl7OutboxStateName(m.state)},
                     {"attempts", m.attempts},
                     {"next_attempt_at", pending ? IsoTime(m.next_attempt_at) : ""},
                     {"last_error", m.last_error},
                     {"created_at", IsoTime(m.created_at)},
                     {"sent_at", m.sent_at ? IsoTime(*m.sent_at) : ""}});
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::printf("%-8s %-9s %-20s %-8s %-8s %-8s %-21s %s\n", "ID", "TYPE", "CONTROL ID", "JOB",
              "STATE", "ATTEMPTS", "NEXT / DONE", "LAST ERROR");
  for (const auto& m : *messages) {
    const std::string when = m.state == Hl7OutboxState::kPending
                                 ? IsoTime(m.next_attempt_at)
                                 : (m.sent_at ? IsoTime(*m.sent_at) : std::string());
    std::printf("%-8lld %-9s %-20s %-8lld %-8s %-8d %-21s %s\n", static_cast<long long>(m.id),
                m.message_type.c_str(), m.control_id.c_str(),
                static_cast<long long>(m.job_id.value),
                std::string(Hl7OutboxStateName(m.state)).c_str(), m.attempts, when.c_str(),
                m.last_error.c_str());
  }
  return 0;
}

int JobsRetry(const Config& config, const std::vector<int64_t>& ids) {
  auto index = OpenIndexOf(config);
  if (!index.ok()) {
    std::cerr << "conduit: " << index.status().message() << "\n";
    return 1;
  }
  SystemClock clock;
  int failures = 0;
  for (int64_t id : ids) {
    Status st = ReplayJob(**index, clock, JobId{id}, "cli");
    if (st.ok()) {
      std::cout << "job " << id << ": queued again\n";
    } else {
      ++failures;
      std::cerr << "job " << id << ": " << st.message() << "\n";
    }
  }
  return failures == 0 ? 0 : 1;
}

int ConfigCheck(const Config& config, const std::string& source) {
  auto policy = LoadPolicyFor(config);  // already checked on loading; here for its name
  // The secrets `serve` reads at start-up, with the same checks, so that a restart at night
  // does not fail on them. Nothing is created here.
  std::filesystem::path key_file = config.governance.key_file;
  std::error_code ec;
  if (key_file.empty() &&
      !std::filesystem::exists(config.node.data_dir / "keys" / "pseudonym.key", ec)) {
    std::cout << source << ": no pseudonymisation key yet: `serve` will create "
              << (config.node.data_dir / "keys" / "pseudonym.key").string() << "\n";
  } else {
    if (key_file.empty()) key_file = config.node.data_dir / "keys" / "pseudonym.key";
    if (auto key = LoadKeyFile(key_file); !key.ok()) {
      std::cerr << "conduit: " << source << ": " << key.status().message() << "\n";
      return 1;
    }
  }
  auto worklist_tokens = WorklistTokens::Load(config);
  if (!worklist_tokens.ok()) {
    std::cerr << "conduit: " << source << ": " << worklist_tokens.status().message() << "\n";
    return 1;
  }
  if (auto api_tokens = LoadApiTokensFor(config, *worklist_tokens); !api_tokens.ok()) {
    std::cerr << "conduit: " << source << ": " << api_tokens.status().message() << "\n";
    return 1;
  }
  if (Status tls = CheckConfiguredTls(config); !tls.ok()) {
    std::cerr << "conduit: " << source << ": " << tls.message() << "\n";
    return 1;
  }
  // Where the data directory will live, as `serve` says at start: the nearest folder that
  // exists already is on the same file system unless something is mounted in between.
  std::filesystem::path probe = std::filesystem::absolute(config.node.data_dir, ec);
  while (!probe.empty() && !std::filesystem::exists(probe, ec) && probe != probe.parent_path()) {
    probe = probe.parent_path();
  }
  if (Result<FileSystemFacts> storage = InspectFileSystem(probe); storage.ok()) {
    std::cout << source << ": data_dir " << config.node.data_dir.string() << ": " << storage->type
              << ", " << DurabilityName(storage->durability) << "\n";
    if (const std::string advice = DurabilityAdvice(*storage); !advice.empty()) {
      std::cout << source << ": warning: " << advice << "\n";
    }
  }
  for (const std::string& warning : ExposureWarnings(config)) {
    std::cout << source << ": warning: " << warning << "\n";
  }
  std::cout << source << ": OK (" << config.destinations.size() << " destinations, "
            << config.tools.size() << " tools, " << config.routes.size() << " routes; policy '"
            << (policy.ok() ? policy->name + " " + policy->version : "?") << "')\n";
  return 0;
}

int EchoPeer(const Config& config, const std::string& name) {
  DicomPeer peer;
  peer.calling_ae = config.dicom.ae_title;
  if (const DestinationConfig* d = config.FindDestination(name); d && d->stow()) {
    std::cerr << "conduit: destination '" << name << "' is a DICOMweb service (" << d->dicomweb_url
              << "), not a DICOM AE: C-ECHO does not apply\n";
    return 2;
  } else if (d) {
    peer.called_ae = d->ae_title;
    peer.host = d->host;
    peer.port = d->port;
    peer.timeout = d->timeout;
    peer.tls = d->tls;
  } else if (const ToolConfig* t = config.FindTool(name); t && t->kind == ToolKind::kDimse) {
    peer.called_ae = t->ae_title;
    peer.host = t->host;
    peer.port = t->port;
    peer.tls = t->tls;
  } else if (t && t->kind != ToolKind::kDimse) {
    std::cerr << "conduit: tool '" << name << "' is "
              << (t->kind == ToolKind::kDicomweb   ? "a DICOMweb service (" + t->url + ")"
                  : t->kind == ToolKind::kWorklist ? std::string("a UPS worklist (pull) tool")
                                                   : std::string("a local executable"))
              << ", not a DICOM node: C-ECHO does not apply\n";
    return 2;
  } else {
    std::cerr << "conduit: no destination or DIMSE tool named '" << name << "'\n";
    return 2;
  }
  const auto started = std::chrono::steady_clock::now();
  Status st = Echo(peer);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - started)
                      .count();
  if (!st.ok()) {
    std::cerr << name << " (" << peer.called_ae.str() << "@" << peer.host << ":" << peer.port
              << "): " << st.message() << "\n";
    return 1;
  }
  std::cout << name << " (" << peer.called_ae.str() << "@" << peer.host << ":" << peer.port
            << "): C-ECHO OK in " << ms << " ms\n";
  return 0;
}

}  // namespace conduit::cli
