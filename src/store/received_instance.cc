#include "store/received_instance.h"

#include <shared_mutex>
#include <system_error>

namespace conduit {

InstanceRecord ReceivedInstanceRecord(const InstanceMeta& meta, const std::string& spool_key,
                                      uint64_t size_bytes, const AeTitle& calling_ae,
                                      TimePoint received_at) {
  InstanceRecord record;
  record.study_uid = meta.study_uid;
  record.series_uid = meta.series_uid;
  record.sop_instance_uid = meta.sop_instance_uid;
  record.sop_class_uid = meta.sop_class_uid;
  record.transfer_syntax_uid = meta.transfer_syntax_uid;
  record.spool_key = spool_key;
  record.size_bytes = size_bytes;
  record.calling_ae = calling_ae;
  record.received_at = received_at;
  record.patient_id = meta.patient_id;
  record.patient_name = meta.patient_name;
  record.accession_number = meta.accession_number;
  record.study_date = meta.study_date;
  record.study_description = meta.study_description;
  record.modality = meta.modality;
  record.series_description = meta.series_description;
  record.body_part = meta.body_part;
  record.series_number = meta.series_number;
  record.instance_number = meta.instance_number;
  record.attributes = meta.attributes;
  return record;
}

Result<DurableInstance> StoreReceivedInstance(Spool& spool, Index& index,
                                              const std::filesystem::path& incoming,
                                              const InstanceMeta& meta, const Receipt& receipt) {
  DurableInstance durable;
  std::error_code ec;
  durable.size_bytes = std::filesystem::file_size(incoming, ec);
  std::shared_lock expiry(spool.expiry_lock());
  ASSIGN_OR_RETURN(durable.spool_key, spool.Commit(incoming, meta.sop_instance_uid));

  AuditEvent audit;
  audit.at = receipt.received_at;
  audit.action = receipt.action;
  audit.outcome = "success";
  audit.actor = receipt.actor;
  audit.study_ref = StudyRef(meta.study_uid);
  audit.job_id = receipt.job_id;
  nlohmann::json detail = receipt.detail;
  detail["sop_class"] = meta.sop_class_uid.str();
  detail["transfer_syntax"] = meta.transfer_syntax_uid;
  detail["bytes"] = durable.size_bytes;
  audit.detail = detail.dump();
  Result<PutOutcome> put =
      index.PutInstance(ReceivedInstanceRecord(meta, durable.spool_key, durable.size_bytes,
                                               receipt.calling_ae, receipt.received_at),
                        audit);
  if (!put.ok()) return put.status().WithContext("index");
  spool.Settled(durable.spool_key);
  durable.outcome = *put;
  return durable;
}

}  // namespace conduit
