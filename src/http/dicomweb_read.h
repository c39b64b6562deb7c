// DICOMweb read side under /dicom-web: WADO-RS (retrieve) and QIDO-RS (search) over what the
// gateway holds. Called by the HTTP front end for GET and HEAD requests whose path starts with
// /dicom-web and that are not STOW-RS.
// Thread safety: reentrant; called from the HTTP worker threads.
#pragma once

#include <httplib.h>

#include "http/dicomweb_context.h"

namespace conduit {

// Serves one GET/HEAD request under /dicom-web: writes status, headers and body (or a
// content provider that streams it). Unknown resources get 404 with a JSON error body.
void ServeDicomwebRead(DicomwebContext& context, const httplib::Request& req,
                       httplib::Response& res);

}  // namespace conduit
