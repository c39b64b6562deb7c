#include "app/gateway.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <condition_variable>
#include <mutex>

#include "adapters/tool_adapter.h"
#include "app/governance_setup.h"
#include "app/ingest_service.h"
#include "app/recovery.h"
#include "app/retention.h"
#include "core/job_token.h"
#include "dicom/dimse_listener.h"
#include "evidence/tool_manifest.h"
#include "http/admin_server.h"
#include "http/dicomweb_context.h"
#include "pipeline/job_engine.h"
#include "pipeline/router.h"
#include "pipeline/study_assembler.h"
#include "pipeline/transfer_guard.h"
#include "results/deliverer.h"
#include "results/result_intake.h"
#include "store/index.h"
#include "store/spool.h"
#include "store/sqlite_index.h"

namespace conduit {
namespace {

// How far back a start looks for instances stored but never routed (see recovery.h).
constexpr auto kRecoveryWindow = std::chrono::hours(6);

// The base URL tools reach this gateway at: http.public_url, else the HTTP front end's own
// address (a wildcard bind is reached on loopback); empty when there is no HTTP front end.
std::string ResultsBaseUrl(const Config& c) {
  std::string url = c.http.public_url;
  if (url.empty() && c.http.port != 0) {
    const bool wildcard = c.http.bind == "0.0.0.0" || c.http.bind == "::" || c.http.bind.empty();
    url = "http://" + (wildcard ? std::string("127.0.0.1") : c.http.bind) + ":" +
          std::to_string(c.http.port);
  }
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
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
  std::unique_ptr<Deliverer> deliverer;
  std::unique_ptr<TransferGuard> guard;
  std::unique_ptr<JobEngine> engine;
  std::unique_ptr<RetentionSweeper> retention;  // "retention": hourly, per the policy
  std::unique_ptr<StudyAssembler> assembler;
  std::unique_ptr<IngestService> ingest;
  std::unique_ptr<JobTokens> tokens;          // per-job bearer tokens for tools over HTTP
  std::unique_ptr<DicomwebContext> dicomweb;  // /dicom-web on the HTTP port
  std::unique_ptr<DimseListener> listener;
  std::unique_ptr<AdminServer> admin;
  std::jthread ticker;               // "assembler-tick": completes quiet studies every 250 ms
  std::atomic<bool> started{false};  // read by HTTP threads (health)
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
  // The policy governs every transfer to a tool; a tool it forbids stops the start here.
  ASSIGN_OR_RETURN(Policy policy, LoadPolicyFor(c));
  p->index->SetPolicyHash(policy.hash);
  std::map<std::string, DeidSettings> deid_settings;
  for (const ToolConfig& tool : c.tools) {
    if (tool.Deidentified()) deid_settings[tool.name] = SettingsForTool(policy, tool);
  }
  ASSIGN_OR_RETURN(PseudonymKey key, LoadOrCreateKey(c));
  spdlog::info("policy '{} {}' ({}) in force; {} of {} tools get de-identified data; key {}",
               policy.name, policy.version, policy.hash.substr(0, 16), deid_settings.size(),
               c.tools.size(), key.id);
  p->guard =
      std::make_unique<TransferGuard>(*p->index, *p->spool, p->clock, p->metrics,
                                      Pseudonymiser(std::move(key)), std::move(deid_settings));
  p->router = std::make_unique<Router>(c.routes);
  p->intake = std::make_unique<ResultIntake>(*p->index, *p->spool, p->clock, p->metrics);
  p->deliverer = std::make_unique<Deliverer>(c, *p->index, *p->spool, p->clock);

  ASSIGN_OR_RETURN(JobTokens tokens,
                   JobTokens::LoadOrCreate(c.node.data_dir / "keys" / "job-token.key"));
  p->tokens = std::make_unique<JobTokens>(std::move(tokens));
  const std::string results_url = ResultsBaseUrl(c);
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
    }
  }
  p->engine = std::make_unique<JobEngine>(c, *p->index, *p->spool, p->clock, std::move(adapters),
                                          *p->deliverer, *p->intake, p->metrics, p->guard.get());
  p->retention = std::make_unique<RetentionSweeper>(*p->index, *p->spool, p->clock, p->metrics,
                                                    policy.retention);
  JobEngine* engine = p->engine.get();
  p->assembler =
      std::make_unique<StudyAssembler>(*p->index, p->clock, c, [engine](JobId) { engine->Wake(); });
  p->ingest = std::make_unique<IngestService>(
      c, *p->spool, *p->index, *p->router, *p->assembler, *p->intake, p->metrics, p->clock,
      [engine] { engine->Wake(); }, p->guard.get());
  p->listener = MakeDimseListener(c.dicom, *p->ingest);

  Parts* raw = p.get();
  if (c.http.port != 0) {
    p->dicomweb = std::make_unique<DicomwebContext>(DicomwebContext{
        c, *p->index, *p->spool, *p->ingest, *p->ingest, *p->tokens, p->metrics, p->clock});
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
          raw->metrics.Set("conduit_dicom_associations_active",
                           raw->listener->active_associations());
        },
        [raw] {
          return std::map<std::string, std::string>{
              {"node", raw->config.node.name},
              {"dicom_listener", raw->started ? "up" : "down"},
              {"dicom_ae_title", raw->config.dicom.ae_title.str()}};
        }};
    p->metrics.Describe("conduit_jobs", "gauge", "Jobs by state");
    p->metrics.Describe("conduit_dicom_associations_active", "gauge", "Open DICOM associations");
    ctx.dicomweb = p->dicomweb.get();
    p->admin = MakeAdminServer(std::move(ctx));
  }
  return std::unique_ptr<Gateway>(new Gateway(std::move(p)));
}

Status Gateway::Start() {
  Parts& p = *parts_;
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
      std::unique_lock lock(mu);
      cv.wait_for(lock, stop, std::chrono::milliseconds(250), [] { return false; });
    }
  });
  Status st = p.listener->Start();
  if (!st.ok()) {
    Stop();
    return st;
  }
  if (p.admin) {
    st = p.admin->Start();
    if (!st.ok()) {
      Stop();
      return st;
    }
  }
  p.started = true;
  spdlog::info("event=started node={} ae={} dicom_port={} http_port={} routes={} tools={}",
               p.config.node.name, p.config.dicom.ae_title.str(), dicom_port(), http_port(),
               p.config.routes.size(), p.config.tools.size());
  return Status::Ok();
}

void Gateway::Stop() {
  if (!parts_) return;
  Parts& p = *parts_;
  if (p.admin) p.admin->Stop();
  if (p.listener) p.listener->Stop();
  if (p.ticker.joinable()) {
    p.ticker.request_stop();
    p.ticker.join();
  }
  if (p.retention) p.retention->Stop();
  if (p.engine) p.engine->Stop();
  if (p.started) spdlog::info("event=stopped node={}", p.config.node.name);
  p.started = false;
}

int Gateway::dicom_port() const { return parts_->listener->port(); }
int Gateway::http_port() const { return parts_->admin ? parts_->admin->port() : 0; }

}  // namespace conduit
