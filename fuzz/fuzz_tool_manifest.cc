// Fuzz target: any bytes as a vendor's tool manifest, through ParseToolManifest (what
// `conduit tool add` and POST /api/tools parse). Bad manifests must come back as
// kInvalidArgument naming the source; a manifest that parses must have its required fields,
// a JSON form that reads back as the same manifest, and either a runnable ToolConfig or a
// kFailedPrecondition saying why not.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "evidence/tool_manifest.h"

namespace {

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "fuzz_tool_manifest: property violated: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string yaml(reinterpret_cast<const char*>(data), size);
  const auto manifest = conduit::ParseToolManifest(yaml, "fuzz");
  if (!manifest.ok()) {
    if (manifest.status().code() != conduit::StatusCode::kInvalidArgument) {
      Fail("a bad manifest must be kInvalidArgument");
    }
    if (manifest.status().message().rfind("fuzz", 0) != 0) Fail("error does not name the source");
    return 0;
  }
  if (manifest->name.empty() || manifest->version.empty() || manifest->vendor.empty()) {
    Fail("a parsed manifest lacks its name, version or vendor");
  }
  if (manifest->outputs.empty()) Fail("a parsed manifest declares no output");
  if (manifest->hash.size() != 64) Fail("the content hash is not SHA-256 hex");
  const std::string canonical = conduit::ToolManifestJson(*manifest);
  if (canonical.empty()) Fail("no JSON form");
  // The registry's form reads back as the same manifest (GET /api/tools/{name}/dpia).
  const auto back = conduit::ToolManifestFromJson(canonical);
  if (!back.ok()) Fail("the canonical JSON form does not read back");
  if (conduit::ToolManifestJson(*back) != canonical) Fail("the JSON form changed on reading back");
  const auto tool = conduit::ToToolConfig(*manifest);
  if (tool.ok()) {
    if (tool->name != manifest->name) Fail("the tool config lost the manifest's name");
    if (tool->timeout.count() < 0) Fail("negative tool timeout");
  } else if (tool.status().code() != conduit::StatusCode::kFailedPrecondition) {
    Fail("an unrunnable manifest must be kFailedPrecondition");
  }
  // Parsing is deterministic.
  const auto again = conduit::ParseToolManifest(yaml, "fuzz");
  if (!again.ok() || conduit::ToolManifestJson(*again) != conduit::ToolManifestJson(*manifest)) {
    Fail("parsing the same text twice differs");
  }
  return 0;
}
