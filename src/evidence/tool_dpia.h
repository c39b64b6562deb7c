// The DPIA's account of a tool (governance/dpia.h), from the tool's manifest.
#pragma once

#include "evidence/tool_manifest.h"
#include "governance/dpia.h"

namespace conduit {

// Errors: those of ToToolConfig.
Result<DpiaTool> DpiaToolOf(const ToolManifest& manifest);

}  // namespace conduit
