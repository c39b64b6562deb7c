#include "dicomweb_tool_sim/instance_catalog.h"

namespace conduit::tools {

void InstanceCatalog::Add(const InstanceInfo& info) {
  std::lock_guard lock(mu_);
  std::vector<InstanceInfo>& study = studies_[info.study_uid];
  for (InstanceInfo& existing : study) {
    if (existing.sop_instance_uid == info.sop_instance_uid) {
      existing = info;
      return;
    }
  }
  study.push_back(info);
}

std::vector<InstanceInfo> InstanceCatalog::Find(const std::string& study_uid,
                                                const InstanceFilter& filter) const {
  auto matches = [](const std::string& want, const std::string& have) {
    return want.empty() || want == have;
  };
  std::lock_guard lock(mu_);
  std::vector<InstanceInfo> found;
  auto it = studies_.find(study_uid);
  if (it == studies_.end()) return found;
  for (const InstanceInfo& info : it->second) {
    if (matches(filter.series_uid, info.series_uid) &&
        matches(filter.sop_instance_uid, info.sop_instance_uid) &&
        matches(filter.sop_class_uid, info.sop_class_uid) &&
        matches(filter.modality, info.modality)) {
      found.push_back(info);
    }
  }
  return found;
}

}  // namespace conduit::tools
