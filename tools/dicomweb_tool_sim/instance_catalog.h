// The instances the DICOMweb tool simulator serves by QIDO-RS and WADO-RS: the inputs it
// received and, in poll mode, the results it made. NON-CLINICAL test tool.
// Thread safety: all methods may be called concurrently.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "dicomweb_tool_sim/study_inbox.h"

namespace conduit::tools {

// QIDO-RS matching keys the simulator honours (others are ignored); empty matches anything.
struct InstanceFilter {
  std::string series_uid;
  std::string sop_instance_uid;
  std::string sop_class_uid;
  std::string modality;
};

class InstanceCatalog {
 public:
  // Adds `info`, replacing an earlier entry with the same SOP Instance UID in its study.
  void Add(const InstanceInfo& info);
  // The study's instances that match, in the order they were first added.
  std::vector<InstanceInfo> Find(const std::string& study_uid, const InstanceFilter& filter) const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::vector<InstanceInfo>> studies_;
};

}  // namespace conduit::tools
