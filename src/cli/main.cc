// conduit: the AI deployment gateway's single binary.
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "cli/commands.h"
#include "cli/deid_command.h"
#include "cli/spool_command.h"
#include "cli/tool_command.h"
#include "dicom/dcmtk_logging.h"

namespace {

std::filesystem::path SelfDir(const char* argv0) {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) self = std::filesystem::absolute(argv0);
  return self.parent_path();
}

void SetUpLogging(const std::string& level) {
  auto logger = spdlog::stderr_logger_mt("conduit");
  // One event per line, key=value fields after the level: easy to grep and to ship.
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ level=%l thread=%t %v",
                      spdlog::pattern_time_type::utc);
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
  conduit::QuietDcmtkLogging();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Conduit: AI deployment gateway for imaging networks"};
  app.require_subcommand(1);
  std::optional<std::string> config_path;
  app.add_option("-c,--config", config_path, "YAML configuration (default: embedded demo config)")
      ->check(CLI::ExistingFile);

  auto* serve = app.add_subcommand("serve", "Run the gateway until SIGINT/SIGTERM");

  auto* route = app.add_subcommand("route", "Routing rules");
  route->require_subcommand(1);
  auto* route_test = route->add_subcommand(
      "test", "Dry-run the routes on DICOM files or folders: which deployments fire and why");
  std::vector<std::string> route_paths;
  bool route_json = false;
  route_test->add_option("paths", route_paths, "Files or folders")->required();
  route_test->add_flag("--json", route_json, "Print JSON");

  auto* jobs = app.add_subcommand("jobs", "Inspect and replay jobs");
  jobs->require_subcommand(1);
  auto* jobs_list = jobs->add_subcommand("list", "List jobs, newest first");
  std::string jobs_state;
  int jobs_limit = 50;
  bool jobs_json = false;
  jobs_list->add_option("--state", jobs_state,
                        "queued, sending, awaiting_results, delivering, done, failed, dead_letter");
  jobs_list->add_option("--limit", jobs_limit, "At most this many")->check(CLI::Range(1, 100000));
  jobs_list->add_flag("--json", jobs_json, "Print JSON");
  auto* jobs_retry = jobs->add_subcommand("retry", "Replay failed or dead-lettered jobs");
  std::vector<int64_t> retry_ids;
  jobs_retry->add_option("ids", retry_ids, "Job ids")->required();

  auto* audit = app.add_subcommand("audit", "One study's audit trail, newest first");
  std::string audit_study;
  int audit_limit = 500;
  bool audit_json = false;
  audit->add_option("--study", audit_study, "Study Instance UID")->required();
  audit->add_option("--limit", audit_limit, "At most this many")->check(CLI::Range(1, 1000000));
  audit->add_flag("--json", audit_json, "Print JSON");

  auto* ris = app.add_subcommand("ris", "The RIS link (HL7 v2)");
  ris->require_subcommand(1);
  auto* ris_outbox = ris->add_subcommand("outbox", "List HL7 messages to the RIS, newest first");
  std::string ris_state;
  int ris_limit = 50;
  bool ris_json = false;
  ris_outbox->add_option("--state", ris_state, "pending, sent or failed");
  ris_outbox->add_option("--limit", ris_limit, "At most this many")->check(CLI::Range(1, 100000));
  ris_outbox->add_flag("--json", ris_json, "Print JSON");

  auto* config_cmd = app.add_subcommand("config", "Configuration");
  config_cmd->require_subcommand(1);
  auto* config_check = config_cmd->add_subcommand("check", "Validate the configuration");

  auto* echo = app.add_subcommand("echo", "C-ECHO a destination or DIMSE tool from the config");
  std::string echo_name;
  echo->add_option("name", echo_name, "Destination or tool name")->required();

  auto* deid = app.add_subcommand(
      "deid", "De-identify a folder tree with the policy (research or evaluation data)");
  conduit::cli::DeidCommand deid_command;
  std::string deid_policy, deid_report;
  deid->add_option("--policy", deid_policy, "Policy YAML (default: built-in national default)")
      ->check(CLI::ExistingFile);
  deid->add_option("--key-file", deid_command.key_file, "Pseudonymisation key (>= 32 bytes)")
      ->required();
  deid->add_option("--in", deid_command.in, "Input folder")
      ->required()
      ->check(CLI::ExistingDirectory);
  deid->add_option("--out", deid_command.out, "Output folder (mirrors the input's paths)")
      ->required();
  deid->add_option("--report", deid_report, "Write a JSON report here");
  deid->add_option("--jobs", deid_command.jobs, "Parallel workers (default: one per core)")
      ->check(CLI::Range(1, 256));

  auto* keygen = app.add_subcommand("keygen", "Write a new random pseudonymisation key (0600)");
  std::string keygen_file;
  keygen->add_option("file", keygen_file, "Key file to create")->required();

  auto* policy_cmd = app.add_subcommand("policy", "The information-governance policy");
  policy_cmd->require_subcommand(1);
  auto* policy_show = policy_cmd->add_subcommand(
      "show",
      "Print the policy (the file; else the one --config puts in force; else the built-in "
      "national default) and its hash");
  std::string policy_file;
  policy_show->add_option("--policy", policy_file, "Policy YAML")->check(CLI::ExistingFile);

  auto* tool = app.add_subcommand("tool", "The registry of AI tools, from their manifests");
  tool->require_subcommand(1);
  auto* tool_add = tool->add_subcommand(
      "add", "Validate a tool manifest, check it against the policy and register it");
  std::string tool_manifest;
  tool_add->add_option("manifest", tool_manifest, "Tool manifest (YAML)")
      ->required()
      ->check(CLI::ExistingFile);
  auto* tool_list = tool->add_subcommand("list", "List registered tools and versions");
  bool tool_all = false, tool_json = false;
  tool_list->add_flag("--all", tool_all, "Include removed versions");
  tool_list->add_flag("--json", tool_json, "Print JSON");
  auto* tool_show = tool->add_subcommand("show", "Show a tool's manifest (latest version)");
  std::string tool_name;
  std::optional<std::string> tool_version;
  tool_show->add_option("name", tool_name, "Tool name")->required();
  tool_show->add_option("--version", tool_version, "That version instead of the latest");
  tool_show->add_flag("--json", tool_json, "Print JSON");
  auto* tool_remove = tool->add_subcommand(
      "remove", "Remove a tool version from the registry (it stays in its history)");
  std::string tool_remove_version;
  tool_remove->add_option("name", tool_name, "Tool name")->required();
  tool_remove->add_option("--version", tool_remove_version, "The version to remove")->required();

  auto* dpia = app.add_subcommand(
      "dpia", "Write a pre-filled DPIA (Markdown) for a tool, from its manifest and the policy");
  std::optional<std::string> dpia_manifest, dpia_tool, dpia_version, dpia_out;
  std::string dpia_organisation;
  auto* dpia_manifest_opt =
      dpia->add_option("manifest", dpia_manifest, "Tool manifest (YAML)")->check(CLI::ExistingFile);
  auto* dpia_tool_opt =
      dpia->add_option("--tool", dpia_tool, "A registered tool instead of a manifest file");
  dpia->add_option("--version", dpia_version, "With --tool: that version instead of the latest")
      ->needs(dpia_tool_opt);
  dpia_manifest_opt->excludes(dpia_tool_opt);
  dpia->add_option("--organisation", dpia_organisation, "The trust or network, for the title");
  dpia->add_option("--out", dpia_out, "Write it here instead of to stdout");

  auto* spool_cmd = app.add_subcommand("spool", "The spool of received instances and results");
  spool_cmd->require_subcommand(1);
  auto* spool_check = spool_cmd->add_subcommand(
      "check", "Compare the spool's files with the index (stop the gateway first)");
  bool spool_remove = false;
  bool spool_json = false;
  spool_check->add_flag("--remove-unrecorded", spool_remove,
                        "Delete files that no index row names (left by a power failure)");
  spool_check->add_flag("--json", spool_json, "Print JSON");

  for (auto* sub :
       {serve, route_test, jobs_list, jobs_retry, ris_outbox, config_check, echo, tool_add,
        tool_list, tool_show, tool_remove, dpia, spool_check, audit, policy_show}) {
    sub->add_option("-c,--config", config_path, "YAML configuration")->check(CLI::ExistingFile);
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);  // prints the problem and the usage
    return 2;     // usage error, as every conduit command documents
  }

  // These work on files alone: no gateway configuration needed.
  if (keygen->parsed()) return conduit::cli::KeyGen(keygen_file);
  if (policy_show->parsed()) {
    std::optional<std::filesystem::path> shown;
    if (!policy_file.empty()) {
      shown = policy_file;
    } else if (config_path) {
      // The policy this configuration puts in force, as `serve` would load it.
      auto config = conduit::cli::LoadConfigOrDefault(config_path, SelfDir(argv[0]));
      if (!config.ok()) {
        std::cerr << "conduit: " << config.status().message() << "\n";
        return 2;
      }
      if (!config->governance.policy_file.empty()) shown = config->governance.policy_file;
    }
    return conduit::cli::PolicyShow(shown);
  }
  if (deid->parsed()) {
    if (!deid_policy.empty()) deid_command.policy = deid_policy;
    if (!deid_report.empty()) deid_command.report = deid_report;
    return conduit::cli::Deidentify(deid_command);
  }

  auto config = conduit::cli::LoadConfigOrDefault(config_path, SelfDir(argv[0]));
  if (!config.ok()) {
    std::cerr << "conduit: " << config.status().message() << "\n";
    return 2;
  }
  SetUpLogging(serve->parsed() ? config->node.log_level : "warn");

  if (serve->parsed()) return conduit::cli::Serve(*config);
  if (route_test->parsed()) return conduit::cli::RouteTest(*config, route_paths, route_json);
  if (jobs_list->parsed()) {
    return conduit::cli::JobsList(*config, jobs_state, jobs_limit, jobs_json);
  }
  if (jobs_retry->parsed()) return conduit::cli::JobsRetry(*config, retry_ids);
  if (audit->parsed()) {
    return conduit::cli::AuditOfStudy(*config, audit_study, audit_limit, audit_json);
  }
  if (ris_outbox->parsed()) {
    return conduit::cli::RisOutboxList(*config, ris_state, ris_limit, ris_json);
  }
  if (config_check->parsed()) {
    return conduit::cli::ConfigCheck(*config, config_path.value_or("(embedded default)"));
  }
  if (echo->parsed()) return conduit::cli::EchoPeer(*config, echo_name);
  if (tool_add->parsed()) return conduit::cli::ToolAdd(*config, tool_manifest);
  if (dpia->parsed()) {
    if (!dpia_manifest && !dpia_tool) {
      std::cerr << "conduit dpia: name a manifest file or --tool NAME\n";
      return 2;
    }
    conduit::cli::DpiaSubject subject{
        .manifest_file = std::nullopt, .tool = dpia_tool.value_or(""), .version = dpia_version};
    if (dpia_manifest) subject.manifest_file = *dpia_manifest;
    return conduit::cli::ToolDpia(
        *config, subject, dpia_organisation,
        dpia_out ? std::optional<std::filesystem::path>(*dpia_out) : std::nullopt);
  }
  if (tool_list->parsed()) return conduit::cli::ToolList(*config, tool_all, tool_json);
  if (tool_show->parsed()) {
    return conduit::cli::ToolShow(*config, tool_name, tool_version, tool_json);
  }
  if (spool_check->parsed()) return conduit::cli::SpoolCheck(*config, spool_remove, spool_json);
  if (tool_remove->parsed()) {
    return conduit::cli::ToolRemove(*config, tool_name, tool_remove_version);
  }
  return 2;
}
