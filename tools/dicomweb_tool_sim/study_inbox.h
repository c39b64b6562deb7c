// Where the DICOMweb tool simulator collects what the gateway sends: instances grouped by
// job (Conduit-Job) or, without that header, by study, each group in its own folder, and
// when each group is complete: all chunks i/n acknowledged (Conduit-Chunk), or no new
// instance for the quiet period. NON-CLINICAL test tool.
// Thread safety: all methods may be called concurrently.
#pragma once

#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/status.h"

namespace conduit::tools {

// What the gateway's headers say about the delivery a STOW-RS request belongs to.
struct DeliveryHeaders {
  std::string job;      // Conduit-Job; empty: instances are grouped by study
  int chunk_index = 0;  // Conduit-Chunk i/n; both 0 when absent
  int chunk_count = 0;
  std::string results_url;    // Conduit-Results-URL
  std::string results_token;  // Conduit-Results-Token
};

// Parses a Conduit-Chunk value "i/n" (1 <= i <= n). Errors: kInvalidArgument saying why.
Result<std::pair<int, int>> ParseChunk(std::string_view value);

// One DICOM instance as the simulator lists it (QIDO-RS) and serves it (WADO-RS).
struct InstanceInfo {
  std::string study_uid;
  std::string series_uid;
  std::string sop_instance_uid;
  std::string sop_class_uid;
  std::string modality;
  std::string instance_number;
  std::filesystem::path path;
};

// A group whose inputs are complete, handed to the algorithm.
struct CompletedStudy {
  std::string log_name;   // safe to log: "job <id>" or "study <LogRef>"
  std::string job;        // empty when grouped by study
  std::string study_uid;  // of the first instance received
  std::string results_url;
  std::string results_token;
  std::filesystem::path dir;  // holds exactly the group's instances
  std::vector<InstanceInfo> instances;
};

class StudyInbox {
 public:
  // Groups get folders under `root` (created if missing). `quiet`: how long a group without
  // chunk headers must go without a new instance (and without a request in flight) to be
  // complete.
  StudyInbox(std::filesystem::path root, const Clock& clock, Millis quiet);

  // The keys a request has touched; pass the same object to every Add of one request and
  // then to EndRequest.
  using RequestKeys = std::set<std::string>;

  // Moves the file `received` (instance `info`, on the same file system as `root`) into its
  // group's folder, replacing an earlier copy of the same SOP instance, and records it.
  // Returns the stored record. Errors: kInternal if the file cannot be moved.
  Result<InstanceInfo> Add(const DeliveryHeaders& headers, InstanceInfo info,
                           const std::filesystem::path& received, RequestKeys& keys);

  // Ends a request whose body was read: records its chunk (if any) for its job, and returns
  // the groups this completes (all chunks 1..n seen and no request in flight).
  std::vector<CompletedStudy> EndRequest(const DeliveryHeaders& headers, const RequestKeys& keys);

  // Returns the groups without chunk headers that have been quiet long enough.
  std::vector<CompletedStudy> TakeQuiet();

  // Groups not yet complete.
  size_t pending() const;

 private:
  struct Group {
    std::string log_name;
    std::string job;
    std::string study_uid;
    std::string results_url;
    std::string results_token;
    std::filesystem::path dir;
    std::map<std::string, InstanceInfo> instances;  // by SOP Instance UID
    TimePoint last_seen;
    int in_flight = 0;  // requests that touched the group and have not ended
    int chunk_count = 0;
    std::set<int> chunks_seen;
  };

  Group& GroupForLocked(const std::string& key, const DeliveryHeaders& headers,
                        std::string_view study_uid);
  CompletedStudy Complete(Group& group);

  const std::filesystem::path root_;
  const Clock& clock_;
  const Millis quiet_;
  mutable std::mutex mu_;
  std::map<std::string, Group> groups_;
  uint64_t next_folder_ = 1;
};

}  // namespace conduit::tools
