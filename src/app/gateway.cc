#include "app/gateway.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>

#include "adapters/tool_adapter.h"
#include "adapters/ups_worklist.h"
#include "app/api_token_setup.h"
#include "app/governance_setup.h"
#include "app/ingest_service.h"
#include "app/recovery.h"
#include "app/retention.h"
#include "core/job_token.h"
#include "core/tls_files.h"
#include "dicom/dimse_listener.h"
#include "evidence/tool_manifest.h"
#include "hl7/mllp.h"
#include "hl7/patient_key.h"
#include "hl7/ris_inbound.h"
#include "hl7/ris_outbox.h"
#include "http/admin_server.h"
#include "http/api_tokens.h"
#include "http/dicomweb_context.h"
#include "http/ups_event_channel.h"
#include "http/ups_rs.h"
#include "http/worklist_tokens.h"
#include "pipeline/job_engine.h"
#include "pipeline/prior_fetcher_impl.h"
#include "pipeline/router.h"
#include "pipeline/study_assembler.h"
#include "pipeline/transfer_guard.h"
#include "results/deliverer.h"
#include "results/result_intake.h"
#include "results/ris_reporter.h"
#include "store/file_system.h"
#include "store/index.h"
#include "store/spool.h"
#include "store/sqlite_index.h"

namespace conduit {
namespace {

// How far back a start looks for instances stored but never routed (see recovery.h).
constexpr auto kRecoveryWindow = std::chrono::hours(6);
// The longest the assembler ticker sleeps: units opened meanwhile are looked at after this.
constexpr auto kAssemblerTick = std::chrono::milliseconds(250);

// The base URL tools reach this gateway at: http.public_url, else the HTTP front end's own
// address (a wildcard bind is reached on loopback); empty when there is no HTTP front end.
std::string ResultsBaseUrl(const Config& c) {
  std::string url = c.http.public_url;
  if (url.empty() && c.http.port != 0) {
    const bool wildcard = c.http.bind == "0.0.0.0" || c.http.bind == "::" || c.http.bind.empty();
    url = std::string(c.http.tls() ? "https://" : "http://") +
          (wildcard ? std::string("127.0.0.1") : c.http.bind) + ":" + std::to_string(c.http.port);
  }
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

// Every acknowledgement rests on fsync: says at start, in the log and in /metrics, whether the
// data directory's file system can keep what an fsync promises.
FileSystemFacts InspectDataDir(const std::filesystem::path& data_dir, Metrics& metrics) {
  FileSystemFacts facts;
  if (Result<FileSystemFacts> inspected = InspectFileSystem(data_dir); inspected.ok()) {
    facts = std::move(inspected).value();
  } else {
    facts.type = "unknown (" + std::string(StatusCodeName(inspected.status().code())) + ")";
  }
  const std::string_view durability = DurabilityName(facts.durability);
  if (const std::string advice = DurabilityAdvice(facts); advice.empty()) {
    spdlog::info("event=storage data_dir={} file_system={} device={} durability={}",
                 data_dir.string(), facts.type, facts.device, durability);
  } else {
    spdlog::warn("event=storage data_dir={} file_system={} device={} durability={}: {}",
                 data_dir.string(), facts.type, facts.device, durability, advice);
  }
  metrics.Describe("conduit_storage_info", "gauge",
                   "The data directory's file system and what its fsync can be trusted with "
                   "(durability: journaling, no-journal, volatile, network, unknown)");
  metrics.Set("conduit_storage_info", 1,
              "file_system=\"" + facts.type + "\",durability=\"" + std::string(durability) + "\"");
  return facts;
}

// Says how the previous process on this data dir ended, and what to do if the host went down
// under it.
void ReportPreviousStop(PreviousStop stop, Metrics& metrics) {
  const std::string_view name = PreviousStopName(stop);
  switch (stop) {
    case PreviousStop::kHostRestarted:
      spdlog::warn(
          "event=previous_stop kind={}: the host went down while the previous run was going "
          "(a power failure or a machine crash). Instances it acknowledged are safe; files "
          "synced just before their index commit may be left that nothing will delete: stop "
          "the gateway and run `conduit spool check --remove-unrecorded` (docs/operations.md, "
          "\"After a power failure\")",
          name);
      break;
    case PreviousStop::kCrashed:
      spdlog::warn(
          "event=previous_stop kind={}: the previous run ended without stopping; what it left "
          "half-done is cleaned up now",
          name);
      break;
    case PreviousStop::kClean:
    case PreviousStop::kUnknown:
      spdlog::info("event=previous_stop kind={}", name);
      break;
  }
  metrics.Describe("conduit_previous_stop_info", "gauge",
                   "How the previous process on this data dir ended (clean, crashed, "
                   "host-restarted: run `conduit spool check`, unknown)");
  metrics.Set("conduit_previous_stop_info", 1, "kind=\"" + std::string(name) + "\"");
}

}  // namespace

struct Gateway::Parts {
  Config config;
  SystemClock clock;
  Metrics metrics;
  std::unique_ptr<Spool> spool;
  std::unique_ptr<Index> index;
  std::unique_ptr<Router> router;
  std::unique_ptr<ResultIntake> intake;
  // Storage commitment requests awaiting the PACS's reports (kept in the index).
  std::unique_ptr<CommitmentLedger> commitments;
  std::unique_ptr<Deliverer> deliverer;
  std::unique_ptr<TransferGuard> guard;
  // IHE AIW-I, when a `kind: worklist` tool is configured: its performers' tokens, the UPS
  // event channel ("ups-events" thread), the Task Manager and the UPS-RS front end's context.
  // Before the engine and the HTTP server, which use them, so that they outlive both.
  std::unique_ptr<WorklistTokens> worklist_tokens;
  std::unique_ptr<ApiTokens> api_tokens;  // null: no http.api_token_file
  // Token refusals on every guard of the HTTP port and the event channel, under one throttle.
  std::shared_ptr<AuthRefusals> auth_refusals = std::make_shared<AuthRefusals>();
  std::unique_ptr<UpsEventChannel> ups_events;
  std::unique_ptr<Worklist> worklist;
  std::unique_ptr<UpsRsContext> ups_rs;
  // priors_source.retrieve: move: what the PACS sends on our C-MOVEs, taken aside by the
  // ingest path for the prior fetcher. Before both, which use it.
  std::unique_ptr<MoveInbox> move_inbox;
  std::unique_ptr<PriorFetcher> priors;  // when a priors_source is configured; used by engine
  std::unique_ptr<JobEngine> engine;
  std::unique_ptr<RetentionSweeper> retention;  // "retention": hourly, per the policy
  std::unique_ptr<StudyAssembler> assembler;
  std::unique_ptr<IngestService> ingest;
  std::unique_ptr<JobTokens> tokens;          // per-job bearer tokens for tools over HTTP
  std::unique_ptr<DicomwebContext> dicomweb;  // /dicom-web on the HTTP port
  std::unique_ptr<DimseListener> listener;
  std::unique_ptr<DimseListener> tls_listener;  // when dicom.tls.port is set
  std::unique_ptr<AdminServer> admin;
  // The RIS over HL7 v2 (config `ris:`): the outbox's sender ("hl7-out"), the reporter the job
  // engine calls after delivery, the MLLP listener for orders and reports.
  std::unique_ptr<PatientKeyer> patient_keyer;
  std::unique_ptr<RisOutbox> ris_outbox;
  std::unique_ptr<RisReporter> ris_reporter;
  std::unique_ptr<RisInbound> ris_inbound;
  std::unique_ptr<MllpListener> ris_listener;
  std::jthread ticker;               // "assembler-tick": completes quiet studies every 250 ms
  std::atomic<bool> started{false};  // read by HTTP threads (health)
  FileSystemFacts storage;           // data_dir's file system, inspected once at start
};

Gateway::Gateway(std::unique_ptr<Parts> parts) : parts_(std::move(parts)) {}

Gateway::~Gateway() { Stop(); }

Result<std::unique_ptr<Gateway>> Gateway::Create(Config config) {
  auto p = std::make_unique<Parts>();
  p->config = std::move(config);
  // Tools named by their manifest get their settings from it (a no-op if already done).
  RETURN_IF_ERROR(ResolveToolManifests(p->config, "config"));
  // Paths in the config are relative to where conduit was started; tools run in their job's
  // work folder, so everything is made absolute once, here.
  p->config.node.data_dir = std::filesystem::absolute(p->config.node.data_dir);
  for (ToolConfig& tool : p->config.tools) {
    if (!tool.command.empty() && tool.command[0].find('/') != std::string::npos) {
      tool.command[0] = std::filesystem::absolute(tool.command[0]).string();
    }
  }
  const Config& c = p->config;
  std::error_code ec;
  std::filesystem::create_directories(c.node.data_dir, ec);
  if (ec) {
    return InvalidArgument("data dir " + c.node.data_dir.string() + ": " + ec.message());
  }
  ASSIGN_OR_RETURN(p->spool,
                   Spool::Open(SpoolOptions{c.node.data_dir / "spool", c.dicom.min_free_bytes}));
  ASSIGN_OR_RETURN(p->index, OpenSqliteIndex(c.node.data_dir / "index.sqlite"));
  p->storage = InspectDataDir(c.node.data_dir, p->metrics);
  ReportPreviousStop(p->spool->previous_stop(), p->metrics);
  // A crash between naming a file in the spool and recording it in the index leaves the file
  // unknown to every reader: it is removed before anything new arrives.
  {
    Index& index = *p->index;
    auto removed =
        p->spool->RemoveUnrecorded([&index](const std::string& key, const SopInstanceUid& sop) {
          return index.RecordsSpoolFile(key, sop);
        });
    if (!removed.ok()) return removed.status().WithContext("start: spool files never recorded");
  }
  // The policy governs every transfer to a tool; a tool it forbids stops the start here.
  ASSIGN_OR_RETURN(Policy policy, LoadPolicyFor(c));
  p->index->SetPolicyHash(policy.hash);
  std::map<std::string, DeidSettings> deid_settings;
  for (const ToolConfig& tool : c.tools) {
    if (tool.Deidentified()) deid_settings[tool.name] = SettingsForTool(policy, tool);
  }
  ASSIGN_OR_RETURN(PseudonymKey key, LoadOrCreateKey(c));
  // The RIS outbox orders messages per patient by a keyed hash of the patient ID; the
  // pseudonymisation key serves (PatientKeyer labels its use apart).
  ASSIGN_OR_RETURN(PatientKeyer keyer,
                   PatientKeyer::FromSecret(std::string(key.bytes.begin(), key.bytes.end())));
  p->patient_keyer = std::make_unique<PatientKeyer>(std::move(keyer));
  spdlog::info("policy '{} {}' ({}) in force; {} of {} tools get de-identified data; key {}",
               policy.name, policy.version, policy.hash.substr(0, 16), deid_settings.size(),
               c.tools.size(), key.id);
  p->guard =
      std::make_unique<TransferGuard>(*p->index, *p->spool, p->clock, p->metrics,
                                      Pseudonymiser(std::move(key)), std::move(deid_settings));
  p->router = std::make_unique<Router>(c.routes);
  p->intake = std::make_unique<ResultIntake>(*p->index, *p->spool, p->clock, p->metrics);
  // A settled report makes its job due; the engine, created below, then steps it.
  p->commitments = std::make_unique<CommitmentLedger>(
      *p->index, p->clock,
      [parts = p.get()] {
        if (parts->engine) parts->engine->Wake();
      },
      &p->metrics);
  p->deliverer = std::make_unique<Deliverer>(c, *p->index, *p->spool, p->clock,
                                             p->commitments.get(), &p->metrics);

  ASSIGN_OR_RETURN(JobTokens tokens,
                   JobTokens::LoadOrCreate(c.node.data_dir / "keys" / "job-token.key"));
  p->tokens = std::make_unique<JobTokens>(std::move(tokens));
  const std::string results_url = ResultsBaseUrl(c);
  // Pull-model tools: tokens read once here (never logged), events over the WebSocket channel
  // on http.event_channel_port (default: the HTTP port + 1), the engine woken on each end.
  ASSIGN_OR_RETURN(WorklistTokens worklist_tokens, WorklistTokens::Load(c));
  p->worklist_tokens = std::make_unique<WorklistTokens>(std::move(worklist_tokens));
  // The admin API's and DICOMweb's tokens: read once here (never logged); none may also be a
  // worklist tool's token, which would let that tool's performer in, nor one Conduit sends out.
  ASSIGN_OR_RETURN(p->api_tokens, LoadApiTokensFor(c, *p->worklist_tokens));
  if (!p->worklist_tokens->empty()) {
    const int channel_port = c.http.event_channel_port >= 0           ? c.http.event_channel_port
                             : c.http.port > 0 && c.http.port < 65535 ? c.http.port + 1
                                                                      : 0;
    if (c.http.port != 0 && channel_port != 0) {
      // An AE title's channel opens to the tool subscribed under it (the worklist is built
      // just below, before the channel starts).
      const Parts* parts = p.get();
      UpsEventChannelOptions options;
      options.bind = c.http.bind;
      options.port = channel_port;
      // With HTTPS on the HTTP port, the channel is wss:// with the same certificate: the
      // performer's bearer token never travels in the clear.
      options.certificate_file = c.http.tls_certificate_file;
      options.key_file = c.http.tls_key_file;
      options.ca_file = c.http.tls_ca_file;
      options.crl_file = c.http.tls_crl_file;
      options.trusted_proxies = c.http.trusted_proxies;
      Parts* reporting = p.get();
      p->ups_events = std::make_unique<UpsEventChannel>(
          options,
          [parts](const std::string& ae, const std::string& token) {
            return WorklistChannelAuthorizer(*parts->worklist_tokens, *parts->worklist,
                                             std::string())(ae, token);
          },
          [reporting](const AuthRefusal& refusal) {
            reporting->auth_refusals->Report(refusal, *reporting->index, reporting->metrics,
                                             reporting->clock.Now());
          });
    }
    Parts* wake = p.get();
    p->worklist = std::make_unique<Worklist>(*p->index, p->clock, c, p->metrics,
                                             p->ups_events.get(), UpsFilterMatches, [wake](JobId) {
                                               if (wake->engine) wake->engine->Wake();
                                             });
    p->ups_rs = std::make_unique<UpsRsContext>(UpsRsContext{
        *p->worklist, *p->worklist_tokens, *p->index, p->clock, p->metrics, std::string()});
    p->ups_rs->trusted_proxies = c.http.trusted_proxies;
  }
  // A wrong certificate or key file stops the start, rather than failing every job.
  RETURN_IF_ERROR(CheckConfiguredTls(c));
  std::map<std::string, std::unique_ptr<ToolAdapter>> adapters;
  for (const ToolConfig& tool : c.tools) {
    switch (tool.kind) {
      case ToolKind::kExecutable:
        adapters[tool.name] = MakeExecutableAdapter(tool);
        break;
      case ToolKind::kDimse:
        adapters[tool.name] = MakeDimsePushAdapter(tool, c.dicom.ae_title);
        break;
      case ToolKind::kDicomweb:
        if (results_url.empty() && tool.poll_interval.count() == 0) {
          return InvalidArgument("tool '" + tool.name +
                                 "' (dicomweb) stores its results to this gateway over HTTP: "
                                 "set http.port (or http.public_url), or poll_interval");
        }
        adapters[tool.name] = MakeDicomwebPushAdapter(tool, results_url, *p->tokens);
        break;
      case ToolKind::kWorklist:
        if (results_url.empty()) {
          return InvalidArgument("tool '" + tool.name +
                                 "' (worklist) is served over UPS-RS on this gateway's HTTP "
                                 "port: set http.port (or http.public_url)");
        }
        adapters[tool.name] = MakeWorklistAdapter(tool, results_url, *p->worklist, p->clock);
        break;
    }
  }
  p->engine = std::make_unique<JobEngine>(c, *p->index, *p->spool, p->clock, std::move(adapters),
                                          *p->deliverer, *p->intake, p->metrics, p->guard.get());
  if (c.priors_source.kind == PriorsSourceKind::kDimse &&
      c.priors_source.retrieve == PriorsRetrieve::kMove) {
    p->move_inbox = std::make_unique<MoveInbox>(c.dicom.ae_title);
  }
  if (std::unique_ptr<PriorSource> source = MakePriorSource(c, p->move_inbox.get())) {
    spdlog::info("priors are found on and fetched from {}", source->Name());
    p->priors = std::make_unique<PriorFetcherImpl>(std::move(source), *p->index, *p->spool,
                                                   p->clock, p->metrics);
    p->engine->SetPriorFetcher(p->priors.get());
  }
  p->retention = std::make_unique<RetentionSweeper>(*p->index, *p->spool, p->clock, p->metrics,
                                                    policy.retention);
  JobEngine* engine = p->engine.get();
  p->assembler =
      std::make_unique<StudyAssembler>(*p->index, p->clock, c, [engine](JobId) { engine->Wake(); });
  if (c.ris.sends()) {
    RisOutboxOptions outbox;
    outbox.destination = c.ris.name;
    outbox.sender.host = c.ris.host;
    outbox.sender.port = c.ris.port;
    outbox.sender.connect_timeout = c.ris.connect_timeout;
    outbox.sender.ack_timeout = c.ris.ack_timeout;
    if (c.ris.tls) {
      ASSIGN_OR_RETURN(outbox.sender.tls, MakeMllpClientContext(c.ris.send_tls, "ris.tls"));
    }
    outbox.initial_backoff = c.ris.initial_backoff;
    outbox.max_backoff = c.ris.max_backoff;
    outbox.max_attempts = c.ris.max_attempts;
    p->ris_outbox = std::make_unique<RisOutbox>(outbox, *p->index, p->clock, p->metrics);
    RisOutbox* outbox_ptr = p->ris_outbox.get();
    p->ris_reporter = std::make_unique<RisReporter>(c.ris, *p->index, p->clock, *p->patient_keyer,
                                                    [outbox_ptr] { outbox_ptr->Wake(); });
    p->engine->SetReporter(p->ris_reporter.get());
  }
  if (c.ris.listen_port != 0) {
    StudyAssembler* assembler = p->assembler.get();
    p->ris_inbound = std::make_unique<RisInbound>(
        RisInboundOptions{c.ris.name, c.ris.sending_application, c.ris.sending_facility}, *p->index,
        p->clock, p->metrics, *p->patient_keyer,
        [assembler](const StudyUid& study, const std::string& why) {
          return assembler->CompleteStudy(study, why);
        });
    MllpListenerOptions listen;
    listen.bind = c.ris.listen_bind;
    listen.port = c.ris.listen_port;
    listen.application = c.ris.sending_application;
    listen.facility = c.ris.sending_facility;
    listen.allowed_peers = c.ris.listen_allowed_hosts;
    if (c.ris.tls) {
      ASSIGN_OR_RETURN(listen.tls, MakeMllpServerContext(c.ris.listen_tls, "ris.tls"));
    }
    RisInbound* inbound = p->ris_inbound.get();
    listen.on_refused = [inbound](const std::string& peer, const Status& why) {
      inbound->OnConnectionRefused(peer, why);
    };
    listen.on_unparsed = [inbound](const std::string& peer, const std::string& control_id,
                                   const Status& why) {
      inbound->OnUnparsed(peer, control_id, why);
    };
    p->ris_listener = std::make_unique<MllpListener>(
        listen, [inbound](const Hl7Message& m) { return inbound->Handle(m); }, p->clock);
  }
  p->ingest = std::make_unique<IngestService>(
      c, *p->spool, *p->index, *p->router, *p->assembler, *p->intake, p->metrics, p->clock,
      [engine] { engine->Wake(); }, p->guard.get(), p->move_inbox.get(), p->commitments.get());
  p->listener = MakeDimseListener(c.dicom, *p->ingest);
  if (c.dicom.tls.port != 0) p->tls_listener = MakeDimseTlsListener(c.dicom, *p->ingest);

  Parts* raw = p.get();
  if (c.http.port != 0) {
    p->dicomweb = std::make_unique<DicomwebContext>(
        DicomwebContext{c, *p->index, *p->spool, *p->ingest, *p->ingest, *p->tokens, p->metrics,
                        p->clock, p->worklist_tokens.get()});
    AdminContext ctx{
        c,
        *p->index,
        p->metrics,
        p->clock,
        [raw] {
          auto counts = raw->index->CountJobsByState();
          if (!counts.ok()) return;
          for (JobState s :
               {JobState::kQueued, JobState::kSending, JobState::kAwaitingResults,
                JobState::kDelivering, JobState::kDone, JobState::kFailed, JobState::kDeadLetter}) {
            auto it = counts->find(s);
            raw->metrics.Set("conduit_jobs",
                             it == counts->end() ? 0 : static_cast<double>(it->second),
                             std::string("state=\"") + JobStateName(s) + "\"");
          }
          // Every destination that commits has a value, 0 when nothing is awaited.
          std::map<std::string, CommitmentBacklog> backlogs;
          for (const DestinationConfig& d : raw->config.destinations) {
            if (d.storage_commitment) backlogs[d.name] = {d.name, 0, {}};
          }
          if (auto awaited = raw->index->CommitmentBacklogs(); awaited.ok()) {
            for (const CommitmentBacklog& b : *awaited) backlogs[b.destination] = b;
          }
          for (const auto& [name, b] : backlogs) {
            const std::string label = "destination=\"" + name + "\"";
            raw->metrics.Set("conduit_storage_commitment_awaited_results",
                             static_cast<double>(b.results), label);
            raw->metrics.Set("conduit_storage_commitment_oldest_request_timestamp_seconds",
                             b.results == 0 ? 0.0
                                            : std::chrono::duration<double>(
                                                  b.oldest_requested_at.time_since_epoch())
                                                  .count(),
                             label);
          }
          raw->metrics.Set("conduit_dicom_associations_active",
                           raw->listener->active_associations() +
                               (raw->tls_listener ? raw->tls_listener->active_associations() : 0));
          // Read at each scrape: a certificate renewed by replacing its file shows at once.
          for (const CertificateEnd& end : ConfiguredCertificateEnds(raw->config)) {
            raw->metrics.Set("conduit_tls_certificate_expiry_timestamp_seconds",
                             static_cast<double>(end.not_after_unix),
                             "setting=\"" + end.setting + "\"");
          }
          for (const CertificateEnd& update : ConfiguredCrlNextUpdates(raw->config)) {
            raw->metrics.Set("conduit_tls_crl_next_update_timestamp_seconds",
                             static_cast<double>(update.not_after_unix),
                             "setting=\"" + update.setting + "\"");
          }
        },
        [raw] {
          return std::map<std::string, std::string>{
              {"node", raw->config.node.name},
              {"dicom_listener", raw->started ? "up" : "down"},
              {"dicom_tls_listener", !raw->tls_listener ? "off"
                                     : raw->started     ? "up"
                                                        : "down"},
              {"dicom_ae_title", raw->config.dicom.ae_title.str()},
              {"storage", std::string(DurabilityName(raw->storage.durability))},
              {"previous_stop", std::string(PreviousStopName(raw->spool->previous_stop()))}};
        }};
    p->metrics.Describe("conduit_jobs", "gauge", "Jobs by state");
    p->metrics.Describe("conduit_storage_commitment_awaited_results", "gauge",
                        "Results stored in a PACS whose storage commitment report is awaited");
    p->metrics.Describe("conduit_storage_commitment_oldest_request_timestamp_seconds", "gauge",
                        "When the oldest storage commitment request still awaited was sent, "
                        "Unix seconds (0: none)");
    p->metrics.Describe("conduit_dicom_associations_active", "gauge", "Open DICOM associations");
    p->metrics.Describe("conduit_tls_certificate_expiry_timestamp_seconds", "gauge",
                        "When each configured TLS certificate (or CA file's first) ends, "
                        "Unix seconds");
    p->metrics.Describe("conduit_tls_crl_next_update_timestamp_seconds", "gauge",
                        "When each configured CRL file is due to be replaced (its earliest "
                        "next update), Unix seconds; past it every peer is refused");
    ctx.dicomweb = p->dicomweb.get();
    ctx.ups_rs = p->ups_rs.get();
    ctx.api_tokens = p->api_tokens.get();
    // One throttle for the port: a client probing every guard is reported once a minute per
    // route and reason, whichever guard refuses it.
    ctx.auth_refusals = p->auth_refusals;
    p->dicomweb->auth_refusals = p->auth_refusals;
    if (p->ups_rs) p->ups_rs->auth_refusals = p->auth_refusals;
    p->admin = MakeAdminServer(std::move(ctx));
  }
  return std::unique_ptr<Gateway>(new Gateway(std::move(p)));
}

Status Gateway::Start() {
  Parts& p = *parts_;
  for (const std::string& warning : ExposureWarnings(p.config)) spdlog::warn("{}", warning);
  // A crash between storing an instance and routing it loses only the routing decision:
  // studies received in the last hours are routed again where no unit exists.
  auto reopened = OpenUnitsLostInACrash(*p.index, *p.spool, *p.router, *p.assembler,
                                        p.clock.Now() - kRecoveryWindow);
  if (!reopened.ok()) return reopened.status().WithContext("start: recovery of routing");
  // Jobs first: a restart resumes what a previous process left, before new work arrives.
  RETURN_IF_ERROR(p.engine->Start());
  RETURN_IF_ERROR(p.retention->Start());
  p.ticker = std::jthread([&p](std::stop_token stop) {
    std::mutex mu;
    std::condition_variable_any cv;
    while (!stop.stop_requested()) {
      auto jobs = p.assembler->Tick();
      if (!jobs.ok()) {
        spdlog::error("event=assembler_tick_failed error=\"{}\"", jobs.status().ToString());
      }
      // Sleep until the next quiet period ends, checking at least every kAssemblerTick for
      // units opened meanwhile: a study completes within a millisecond or so of its quiet
      // period's end rather than up to a tick later.
      std::chrono::milliseconds wait = kAssemblerTick;
      if (auto next = p.assembler->NextQuietPeriodEnd()) {
        const auto until_next = std::chrono::ceil<std::chrono::milliseconds>(*next - p.clock.Now());
        wait = std::clamp(until_next, std::chrono::milliseconds(1), wait);
      }
      std::unique_lock lock(mu);
      cv.wait_for(lock, stop, wait, [] { return false; });
    }
  });
  if (p.ris_outbox) RETURN_IF_ERROR(p.ris_outbox->Start());
  Status st = p.listener->Start();
  if (!st.ok()) {
    Stop();
    return st;
  }
  if (p.tls_listener) {
    st = p.tls_listener->Start();
    if (!st.ok()) {
      Stop();
      return st.WithContext("dicom.tls.port");
    }
  }
  if (p.ris_listener) {
    st = p.ris_listener->Start();
    if (!st.ok()) {
      Stop();
      return st.WithContext("ris.listen_port");
    }
  }
  if (p.ups_events) {
    st = p.ups_events->Start();
    if (!st.ok()) {
      Stop();
      return st.WithContext("http.event_channel_port");
    }
  }
  if (p.admin) {
    st = p.admin->Start();
    if (!st.ok()) {
      Stop();
      return st;
    }
  }
  p.started = true;
  spdlog::info(
      "event=started node={} ae={} dicom_port={} dicom_tls_port={} http_port={} routes={} "
      "tools={}",
      p.config.node.name, p.config.dicom.ae_title.str(), dicom_port(),
      p.tls_listener ? p.tls_listener->port() : 0, http_port(), p.config.routes.size(),
      p.config.tools.size());
  return Status::Ok();
}

void Gateway::Stop() {
  if (!parts_) return;
  Parts& p = *parts_;
  if (p.admin) p.admin->Stop();
  if (p.ups_events) p.ups_events->Stop();
  if (p.listener) p.listener->Stop();
  if (p.tls_listener) p.tls_listener->Stop();
  if (p.ris_listener) p.ris_listener->Stop();
  if (p.ticker.joinable()) {
    p.ticker.request_stop();
    p.ticker.join();
  }
  if (p.retention) p.retention->Stop();
  if (p.engine) p.engine->Stop();
  if (p.ris_outbox) p.ris_outbox->Stop();  // after the engine: nothing queues any more
  if (p.started) spdlog::info("event=stopped node={}", p.config.node.name);
  p.started = false;
}

int Gateway::dicom_port() const { return parts_->listener->port(); }
int Gateway::http_port() const { return parts_->admin ? parts_->admin->port() : 0; }

}  // namespace conduit
