// Reading a `priors:` section (PriorsConfig), the same in a tool manifest and in a gateway
// config's inline tool entry:
//   priors:
//     count: 2                 # the most recent comparable studies, 1 to 20
//     max_age: 5y              # at most this much older than the current study; absent: any
//     comparable:
//       same_modality: true    # default true
//       same_body_part: true   # default false
//       study_description: "*CHEST*"   # case-insensitive glob; absent: any
//     time_limit: 60s          # to find and fetch them all
//     on_missing: proceed      # or wait
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>

#include "core/config.h"
#include "core/yaml_fields.h"

namespace conduit {

// Reads `priors` of `parent` (whose key path is `parent_path`) into `out`; absent or null
// leaves `out` unchanged. Errors: kInvalidArgument "<source>:<line>: <key>: <problem>".
Status ParsePriorsSection(const yaml::Context& ctx, const YAML::Node& parent,
                          const std::string& parent_path, PriorsConfig& out);

// "proceed" or "wait".
const char* PriorsOnMissingName(PriorsOnMissing on_missing);

}  // namespace conduit
