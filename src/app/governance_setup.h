// The policy and the pseudonymisation key a gateway runs with, resolved from its config.
#pragma once

#include "core/config.h"
#include "deid/pseudonymiser.h"
#include "governance/policy.h"

namespace conduit {

// The config's policy file, or the built-in national default, with every tool checked
// against it (hosting region, retain options). Errors: the policy file's parse errors;
// kFailedPrecondition naming the tool the policy forbids.
Result<Policy> LoadPolicyFor(const Config& config);

// The config's key file, or <data_dir>/keys/pseudonym.key, created (0600) when it does not
// exist yet so that a new gateway works out of the box. Never logs the key.
Result<PseudonymKey> LoadOrCreateKey(const Config& config);

}  // namespace conduit
