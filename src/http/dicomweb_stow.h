// DICOMweb STOW-RS (PS3.18 section 10.5) on the HTTP front end, and the per-job results
// endpoint AI tools store their results to.
//
//   POST /dicom-web/studies                          store instances of any study
//   POST /dicom-web/studies/{study}                  store instances of that study only
//   POST /dicom-web/jobs/{job}/studies[/{study}]     a tool stores its results for one job;
//                                                    "Authorization: Bearer <job token>"
//
// Request: Content-Type multipart/related; type="application/dicom"; boundary=... (the type
// parameter may be omitted; each part is then read as application/dicom). Each part is one
// PS3.10 file. Metadata+bulkdata (application/dicom+json, +xml) requests are not supported.
// The body is streamed: each part is written to a file as it arrives (bounded buffers, never
// the whole request in memory), then handed to the ingest sink (STOW) or the job result sink
// (job endpoint), which makes it durable before it is reported stored. Parts are processed in
// order; a later error never undoes an earlier stored part.
//
// Response body: application/dicom+json, the Store Instances Response Module (PS3.18 Annex I):
// Retrieve URL (0008,1190) of the study (empty when the instances span studies, and on the job
// endpoint), Referenced SOP Sequence (0008,1199) of stored instances with their Retrieve URL
// (empty on the job endpoint), Failed SOP Sequence (0008,1198) with Failure Reason (0008,1197).
// A part that cannot be read has a failed item without SOP Class/Instance UIDs.
// Accept: application/dicom+json, application/json, application/*, */* or none; a request
// accepting only XML gets 406 (XML responses are not supported).
//
// Status codes:
//   200 every part stored; 202 some stored, some failed; 409 none stored (each part failed);
//   400 malformed request or body with nothing stored (syntax error, no parts, truncated);
//       a malformed or truncated body after some parts were stored gives 202 instead, with a
//       failed item for the part that was cut;
//   401 job endpoint: token missing or wrong (WWW-Authenticate: Bearer); refused attempts are
//       reported through AuthRefusals as "result_refused", the token is never logged;
//   404 job endpoint: no such job; 409 job endpoint: the job no longer takes results (its
//       module body lists what was stored before, if anything);
//   405 another method on a STOW resource (Allow: POST), or POST elsewhere under /dicom-web;
//   406 Accept excludes JSON; 411 neither Content-Length nor chunked Transfer-Encoding;
//   413 body over http.max_stow_bytes (by Content-Length, before reading; or once a chunked
//       body passes it: parts stored by then stay stored and are listed);
//   415 Content-Type not multipart/related of application/dicom;
//   503 the spool is short of space before anything was read (Retry-After: 60).
// Request-level errors with nothing stored have a JSON body {"error": "..."}. The body of a
// request refused before reading is read and dropped up to 1 MiB; past that, or when reading
// stopped midway, the connection is closed after the response.
//
// Failure reasons (0008,1197):
//   0xA700 out of resources (spool full, write failed for lack of space);
//   0xC000 cannot understand: the part is not a readable PS3.10 file with Study/Series/SOP
//          Instance UIDs and SOP Class UID, or not application/dicom, or was cut short;
//   0xC409 the instance's Study Instance UID is not the one in the path (implementation
//          specific, in the Cxxx range; the code dcm4chee-arc uses);
//   0xC410 job endpoint: the result was quarantined (failed validation or re-identification;
//          kept as evidence, never delivered; implementation specific, Cxxx range);
//   0x0124 not authorized (the sink refused it by policy);
//   0x0110 processing failure (anything else, e.g. the index could not record it).
// A re-sent instance (same SOP Instance UID) is stored again and reported stored, as over DIMSE.
//
// CORS: none. A browser client on another origin (e.g. the npm dicomweb-client) would need
// preflight answers and Access-Control-* headers; multipart/related is not a CORS-safelisted
// type, so browsers preflight and, unanswered, do not send: cross-site forgery cannot store.
// Thread safety: reentrant; called from the HTTP worker threads.
#pragma once

#include <httplib.h>

#include <cstdint>
#include <string_view>

#include "core/metrics.h"
#include "http/dicomweb_context.h"

namespace conduit {

inline constexpr uint16_t kStowOutOfResources = 0xA700;
inline constexpr uint16_t kStowCannotUnderstand = 0xC000;
inline constexpr uint16_t kStowStudyMismatch = 0xC409;
inline constexpr uint16_t kStowResultQuarantined = 0xC410;
inline constexpr uint16_t kStowNotAuthorized = 0x0124;
inline constexpr uint16_t kStowProcessingFailure = 0x0110;

// The actor STOW-RS instances are recorded as coming from (calling AE title of their
// AssociationInfo; protocol "DICOMweb").
inline constexpr std::string_view kStowActor = "DICOMWEB";

// True if `path` names a STOW-RS resource (one of the four POST routes above).
bool IsStowResource(std::string_view path);

// Describes conduit_stow_instances_total{outcome="stored"|"failed"} and
// conduit_stow_bytes_total (request body bytes read).
void DescribeStowMetrics(Metrics& metrics);

// Serves one POST to a STOW-RS resource (IsStowResource): reads the body through
// `content_reader` and writes status, headers and body to `res`. Never throws on bad input.
void ServeDicomwebStore(DicomwebContext& context, const httplib::Request& req,
                        httplib::Response& res, const httplib::ContentReader& content_reader);

}  // namespace conduit
