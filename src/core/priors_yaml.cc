#include "core/priors_yaml.h"

namespace conduit {

using yaml::CheckKeys;
using yaml::Child;
using yaml::Present;

const char* PriorsOnMissingName(PriorsOnMissing on_missing) {
  return on_missing == PriorsOnMissing::kWait ? "wait" : "proceed";
}

Status ParsePriorsSection(const yaml::Context& ctx, const YAML::Node& parent,
                          const std::string& parent_path, PriorsConfig& out) {
  const std::string path = Child(parent_path, "priors");
  const YAML::Node n = parent["priors"];
  if (!Present(n)) return Status::Ok();
  if (!n.IsMap()) return ctx.Error(n, path, "expected count, max_age, comparable, ...");
  RETURN_IF_ERROR(
      CheckKeys(ctx, n, path, {"count", "max_age", "comparable", "time_limit", "on_missing"}));
  PriorsConfig priors;
  int64_t count = 0;
  RETURN_IF_ERROR(yaml::GetWholeNumber(ctx, n, path, "count", 1, 20, count, /*required=*/true));
  priors.count = static_cast<int>(count);
  RETURN_IF_ERROR(yaml::GetDuration(ctx, n, path, "max_age", priors.max_age));
  if (Present(n["max_age"]) && priors.max_age.count() <= 0) {
    return ctx.Error(n["max_age"], Child(path, "max_age"),
                     "must be positive (leave it out for any age)");
  }
  const YAML::Node comparable = n["comparable"];
  if (Present(comparable)) {
    const std::string cpath = Child(path, "comparable");
    RETURN_IF_ERROR(CheckKeys(ctx, comparable, cpath,
                              {"same_modality", "same_body_part", "study_description"}));
    RETURN_IF_ERROR(yaml::GetBool(ctx, comparable, cpath, "same_modality", priors.same_modality));
    RETURN_IF_ERROR(yaml::GetBool(ctx, comparable, cpath, "same_body_part", priors.same_body_part));
    RETURN_IF_ERROR(
        yaml::GetString(ctx, comparable, cpath, "study_description", priors.study_description));
    if (Present(comparable["study_description"]) && priors.study_description.empty()) {
      return ctx.Error(comparable["study_description"], Child(cpath, "study_description"),
                       "empty pattern (leave it out for any description)");
    }
  }
  RETURN_IF_ERROR(yaml::GetDuration(ctx, n, path, "time_limit", priors.time_limit));
  if (priors.time_limit < std::chrono::seconds(1)) {
    return ctx.Error(n["time_limit"], Child(path, "time_limit"), "expected at least 1s");
  }
  std::string on_missing;
  RETURN_IF_ERROR(yaml::GetString(ctx, n, path, "on_missing", on_missing));
  if (on_missing.empty() || on_missing == "proceed") {
    priors.on_missing = PriorsOnMissing::kProceed;
  } else if (on_missing == "wait") {
    priors.on_missing = PriorsOnMissing::kWait;
  } else {
    return ctx.Error(n["on_missing"], Child(path, "on_missing"),
                     "unknown value '" + on_missing + "' (expected proceed or wait)");
  }
  out = std::move(priors);
  return Status::Ok();
}

}  // namespace conduit
