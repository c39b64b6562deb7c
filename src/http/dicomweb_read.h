// DICOMweb read side under /dicom-web: WADO-RS (retrieve) and QIDO-RS (search) over what the
// gateway holds. Called by the HTTP front end for GET and HEAD requests whose path starts with
// /dicom-web and that are not STOW-RS.
// Thread safety: reentrant; called from the HTTP worker threads.
#pragma once

#include <httplib.h>

#include "http/dicomweb_context.h"

namespace conduit {

// How the HTTP front end let a request for the original studies in, as the audit trail says.
enum class OriginalsOpenedBy { kApiToken, kNoTokenConfigured };

// Serves one GET/HEAD request under /dicom-web: writes status, headers and body (or a
// content provider that streams it). Unknown resources get 404 with a JSON error body. Reads
// answered with success are audited (http/read_audit.h); the job view checks its own token.
void ServeDicomwebRead(DicomwebContext& context, const httplib::Request& req,
                       httplib::Response& res, OriginalsOpenedBy opened_by);

}  // namespace conduit
