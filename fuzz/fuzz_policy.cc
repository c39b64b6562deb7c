// Fuzz target: any bytes as the information-governance policy file, through ParsePolicy (what
// `conduit serve` and `conduit deid --policy` read). Bad policies must come back as
// kInvalidArgument naming the source; a policy that parses must hold what the de-identifier
// and the hosting and retention checks rely on.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "governance/policy.h"

namespace {

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "fuzz_policy: property violated: %s\n", what);
  std::abort();
}

bool Hex64(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string yaml(reinterpret_cast<const char*>(data), size);
  const auto policy = conduit::ParsePolicy(yaml, "fuzz");
  if (!policy.ok()) {
    if (policy.status().code() != conduit::StatusCode::kInvalidArgument) {
      Fail("a bad policy must be kInvalidArgument");
    }
    if (policy.status().message().rfind("fuzz", 0) != 0) Fail("error does not name the source");
    return 0;
  }
  if (policy->name.empty() || policy->version.empty())
    Fail("a parsed policy lacks name or version");
  if (!Hex64(policy->hash)) Fail("the content hash is not SHA-256 hex");
  if (policy->deid.policy_hash != policy->hash) Fail("the de-identifier is given another hash");
  const conduit::DeidSettings& deid = policy->deid;
  if (deid.date_shift_min_days < 1 || deid.date_shift_max_days < deid.date_shift_min_days) {
    Fail("the date shift range is empty or includes zero");
  }
  for (const auto& safe : deid.safe_private) {
    if (safe.group % 2 == 0) Fail("a safe private attribute in an even group");
    if (safe.creator.empty()) Fail("a safe private attribute without its creator");
  }
  for (const auto& rule : deid.burned_in.cleaning) {
    if (rule.regions.empty()) Fail("a cleaning rule without regions");
    for (const auto& r : rule.regions) {
      if (r.x < 0 || r.y < 0 || r.width <= 0 || r.height <= 0) Fail("a region of no area");
    }
  }
  if (policy->retention.spool.count() <= 0 || policy->retention.crosswalk.count() <= 0 ||
      policy->retention.audit.count() <= 0) {
    Fail("a retention period that is not positive");
  }
  // Parsing is deterministic.
  const auto again = conduit::ParsePolicy(yaml, "fuzz");
  if (!again.ok() || again->hash != policy->hash || again->name != policy->name) {
    Fail("parsing the same text twice differs");
  }
  return 0;
}
