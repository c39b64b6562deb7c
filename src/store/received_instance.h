// How a received instance becomes durable, whoever received it (DIMSE, STOW-RS, a prior
// fetched from PACS): its InstanceRecord built from its metadata, the file committed to the
// spool, then the row recorded in the index with its audit event. Only then may it be
// acknowledged or used.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "core/clock.h"
#include "core/ids.h"
#include "core/status.h"
#include "dicom/instance_meta.h"
#include "store/index.h"
#include "store/records.h"
#include "store/spool.h"

namespace conduit {

// Who an instance came from, when, and what its audit event says beyond the instance itself.
struct Receipt {
  AeTitle calling_ae;  // InstanceRecord::calling_ae
  TimePoint received_at;
  std::string action = "receive";  // the audit event's action and actor
  std::string actor;
  JobId job_id;  // the job the instance was received for, if any
  // Audit detail (no patient identifiers); "sop_class", "transfer_syntax" and "bytes" are added.
  nlohmann::json detail = nlohmann::json::object();
};

// The index row of an instance described by `meta`, stored under `spool_key`, `size_bytes`
// long, received from `calling_ae` at `received_at`.
InstanceRecord ReceivedInstanceRecord(const InstanceMeta& meta, const std::string& spool_key,
                                      uint64_t size_bytes, const AeTitle& calling_ae,
                                      TimePoint received_at);

struct DurableInstance {
  std::string spool_key;
  uint64_t size_bytes = 0;
  PutOutcome outcome = PutOutcome::kInserted;  // kDuplicate: the SOP Instance UID was known
};

// Commits `incoming` (a file under the spool's incoming/; the spool takes it) under its SOP
// Instance UID and records it in `index` with a "success" audit event of the study, all under
// the spool's expiry lock held shared, so retention cannot expire the study in between.
// Errors: Spool::Commit's (nothing stored); Index::PutInstance's, with context "index" (the
// file is then in the spool but unknown to the index; the instance re-sent replaces it).
Result<DurableInstance> StoreReceivedInstance(Spool& spool, Index& index,
                                              const std::filesystem::path& incoming,
                                              const InstanceMeta& meta, const Receipt& receipt);

}  // namespace conduit
