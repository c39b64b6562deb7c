// ReadAudit: the audit trail of what was read over DICOMweb, so that an IG lead can say who saw
// which study: WADO-RS retrievals (`retrieve`: instances, metadata, frames, rendered images,
// thumbnails) and QIDO-RS searches (`query`), of the original studies (API token) and of a
// job's de-identified view (the job's or its tool's token). An entry names the credential, the
// client's address, the study (StudyRef, never the UID) or the job, what was returned and, for
// a search, the attributes matched on (never their values).
// The first read of a key (credential, client, action, resource, study or job, and for a search
// the attributes matched on) in each minute is audited at once; later ones within that minute are
// counted and the next entry of the key says how many went unaudited before it, so a viewer
// fetching a study frame by frame cannot flood the trail. Thread safety: Record may be called
// concurrently.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/ids.h"
#include "core/refusal_throttle.h"
#include "store/index.h"

namespace conduit {

struct DicomwebRead {
  std::string action;             // "retrieve" or "query"
  std::string resource;           // retrieve: instances, metadata, frames, rendered, thumbnail;
                                  // query: studies, series, instances (the level searched)
  std::string credential;         // "api" (API token), "none" (no token file: loopback only), "job"
  std::string peer;               // the client's address (http/client_address.h)
  std::string via;                // the trusted reverse proxy it came through; empty: none
  StudyUid study;                 // the original study read or searched within; empty: none
  std::optional<JobId> job;       // a job's de-identified view
  size_t returned = 0;            // instances (retrieve) or matches (query) in the answer
  std::vector<std::string> keys;  // query: the attributes matched on, by keyword or tag
};

class ReadAudit {
 public:
  ReadAudit();
  // Audits `read` (or counts it, see above). A job's reads are audited with the job's tool as
  // actor and its original study's StudyRef, looked up in `index`.
  void Record(const DicomwebRead& read, Index& index, TimePoint now);

 private:
  RefusalThrottle throttle_;
};

}  // namespace conduit
