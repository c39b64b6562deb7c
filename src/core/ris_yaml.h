// Reading the gateway config's `ris:` section (RisConfig):
//   ris:
//     name: ris                     # outbox destination name; letters, digits, - and _
//     host: ris.trust.nhs.uk        # the RIS's MLLP endpoint (omit to send nothing)
//     port: 2575
//     receiving_application: RIS    # MSH-5, MSH-6
//     receiving_facility: TRUST
//     sending_application: CONDUIT  # MSH-3, MSH-4 (and of our ACKs)
//     sending_facility: AIHUB
//     processing_id: P              # P, T or D
//     listen_port: 2576             # orders and reports from the RIS; 0 or absent: off
//     listen_bind: 0.0.0.0
//     connect_timeout: 10s
//     ack_timeout: 30s
//     retry: {initial_backoff: 5s, max_backoff: 10m, max_attempts: 0}
//     send: {results: true, priority: omi}     # priority: omi, orm or none
//     urgent_when: {codes: ["SCT:52101004"], score_at_least: 0.8}
#pragma once

#include <yaml-cpp/yaml.h>

#include "core/config.h"
#include "core/yaml_fields.h"

namespace conduit {

// Reads `ris` (a mapping) into `out` and checks it. Errors: kInvalidArgument
// "<source>:<line>: ris.<key>: <problem>".
Status ParseRisSection(const yaml::Context& ctx, const YAML::Node& ris, RisConfig& out);

// "none", "omi", "orm".
const char* RisPriorityMessageName(RisPriorityMessage message);

}  // namespace conduit
