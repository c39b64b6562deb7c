// Fuzz target: any bytes as the YAML of `conduit serve --config`, through ParseConfig.
// Bad configs must come back as kInvalidArgument naming the source; a config that parses
// must pass ValidateConfig (ParseConfig promises it already did) and its routes must only
// name tools and destinations that exist.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/config.h"

namespace {

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "fuzz_config: property violated: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string yaml(reinterpret_cast<const char*>(data), size);
  const conduit::Result<conduit::Config> config = conduit::ParseConfig(yaml, "fuzz");
  if (!config.ok()) {
    if (config.status().code() != conduit::StatusCode::kInvalidArgument) {
      Fail("a bad config must be kInvalidArgument");
    }
    if (config.status().message().rfind("fuzz", 0) != 0) Fail("error does not name the source");
    return 0;
  }
  if (!conduit::ValidateConfig(*config, "fuzz").ok()) Fail("parsed config fails validation");
  for (const auto& route : config->routes) {
    if (config->FindTool(route.tool) == nullptr) Fail("route names an unknown tool");
    for (const auto& d : route.results_to) {
      if (config->FindDestination(d) == nullptr) Fail("route names an unknown destination");
    }
  }
  for (const auto& tool : config->tools) {
    if (tool.kind == conduit::ToolKind::kExecutable && tool.command.empty()) {
      Fail("executable tool without a command");
    }
    if (tool.kind == conduit::ToolKind::kDimse && (tool.ae_title.empty() || tool.host.empty())) {
      Fail("dimse tool without an AE title or host");
    }
  }
  if (config->dicom.port < 0 || config->dicom.port > 65535) Fail("dicom.port out of range");
  if (config->dicom.ae_title.empty() || config->dicom.ae_title.str().size() > 16) {
    Fail("dicom.ae_title not 1 to 16 characters");
  }
  if (config->retry.max_attempts < 1) Fail("retry.max_attempts below 1");
  auto non_negative = [](conduit::milliseconds d) { return d.count() >= 0; };
  if (!non_negative(config->dicom.acse_timeout) || !non_negative(config->dicom.dimse_timeout) ||
      !non_negative(config->retry.initial_backoff) || !non_negative(config->retry.max_backoff)) {
    Fail("negative duration");
  }
  for (const auto& route : config->routes) {
    if (!non_negative(route.stable_after)) Fail("negative route.stable_after");
  }
  for (const auto& tool : config->tools) {
    if (!non_negative(tool.timeout) || !non_negative(tool.results_stable_after)) {
      Fail("negative tool duration");
    }
  }
  return 0;
}
