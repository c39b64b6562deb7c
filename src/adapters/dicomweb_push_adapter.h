// The DICOMweb push adapter (MakeDicomwebPushAdapter in tool_adapter.h): the tool is a DICOMweb
// service. Conduit's convention, beyond PS3.18:
//
// Dispatch: STOW-RS  POST <tool url>/studies
//   Content-Type: multipart/related; type="application/dicom"; boundary=<40 alphanumerics>
//   one part per instance (Content-Type: application/dicom), streamed from the files (the
//   study is never held in memory) with a Content-Length. A study over dicomweb.chunk_bytes
//   goes in several requests of whole instances, in input order. Each request carries:
//     Authorization: Bearer <the token in dicomweb.auth_token_file>   (if configured)
//     Accept: application/dicom+json
//     Conduit-Job: <job id>
//     Conduit-Chunk: <i>/<n>                        (1-based)
//     Conduit-Results-URL: <gateway public URL>/dicom-web/jobs/<job id>
//     Conduit-Results-Token: <JobTokens::TokenFor(job)>
//   The tool stores its results with  POST <Conduit-Results-URL>/studies  and
//   "Authorization: Bearer <Conduit-Results-Token>"; the job is done when none arrived for
//   results_stable_after.
// The STOW-RS response (PS3.18 10.5.3): 200, or 202 without FailedSOPSequence items: stored.
//   Failures with FailureReason 0x0111 (duplicate SOP instance: a chunk sent again after a
//   retry) count as stored. Otherwise 202/409/other 4xx: kInvalidArgument (not retried),
//   naming how many instances failed and the FailureReason codes; except when every failure
//   is 0xA7xx (out of resources): kResourceExhausted, retried. 408: kDeadlineExceeded; 429
//   and 5xx: kUnavailable (retried). Connection refused or reset: kUnavailable; no answer
//   within the tool's timeout: kDeadlineExceeded. 3xx redirects are not followed.
// Polling (dicomweb.poll_interval > 0), for tools that cannot STOW back:
//   QIDO-RS  GET <tool url>/studies/<study as sent>/instances?includefield=0020000E
//            Accept: application/dicom+json
//   then for each instance that is neither an input nor a result already received:
//   WADO-RS  GET <tool url>/studies/<study>/series/<series>/instances/<instance>
//            Accept: multipart/related; type="application/dicom"; transfer-syntax=*
//   into <work_dir>/polled/.
// The job log gets one line per request (status, counts, bytes, time); never a UID or token.
// The STOW-RS bodies and their split into requests (dicom.chunk_bytes) are dicom/stow_sender.h's.
// MakeDicomwebPushAdapter is declared in tool_adapter.h.
#pragma once
