// Parts of the DICOMweb read side (dicomweb_read.h), internal to http: QIDO-RS searches
// (dicomweb_search.cc) and WADO-RS retrievals (dicomweb_retrieve.cc). Each writes the whole
// response (status, headers, body or a streaming content provider) to `res`.
#pragma once

#include <httplib.h>

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/ids.h"
#include "dicom/instance_meta.h"
#include "http/dicomweb_context.h"
#include "http/qido_query.h"

namespace conduit {

// An error answer: `status` with {"error": message}. Messages never carry UIDs or values.
void SendDicomwebError(httplib::Response& res, int status, std::string_view message);

// The query string of the request (after '?', still percent-encoded); "" if none.
std::string_view QueryStringOf(const httplib::Request& req);

// True if `accept` (an Accept field value; "" accepts anything) admits a DICOM JSON answer
// (application/dicom+json, application/json or a wildcard).
bool AcceptsDicomJson(std::string_view accept);

// What a search answered, for the audit trail: the matches returned and the attributes
// matched on (keywords, or tags as 8 hex digits when the dictionary has none; never values).
struct SearchAnswer {
  size_t returned = 0;
  std::vector<std::string> keys;
};

// QIDO-RS over the index. `study` and `series` come from the path ("" when absent);
// `base_url` is where RetrieveURLs point ("<public url>/dicom-web"). nullopt when the answer
// is an error.
std::optional<SearchAnswer> SearchIndex(DicomwebContext& ctx, const httplib::Request& req,
                                        httplib::Response& res, QidoLevel level,
                                        const std::string& base_url, const StudyUid& study,
                                        const SeriesUid& series);

// QIDO-RS at instance level over files already read (a job's de-identified view), restricted
// to `study` and, when not empty, `series`. nullopt when the answer is an error.
std::optional<SearchAnswer> SearchFiles(
    const std::vector<std::pair<std::filesystem::path, InstanceMeta>>& files,
    const httplib::Request& req, httplib::Response& res, const std::string& base_url,
    const StudyUid& study, const SeriesUid& series);

// One instance a retrieval returns.
struct StoredInstance {
  std::filesystem::path path;
  SopInstanceUid sop_instance_uid;
  std::string transfer_syntax_uid;
};

// WADO-RS: the instances as multipart/related; type="application/dicom", streamed from disk.
void RetrieveInstances(std::vector<StoredInstance> instances, const httplib::Request& req,
                       httplib::Response& res);

// WADO-RS metadata: a DICOM JSON array of the instances, without bulk data, streamed.
void RetrieveMetadata(std::vector<StoredInstance> instances, const httplib::Request& req,
                      httplib::Response& res);

// WADO-RS frames: `frame_list` ("1,3,5") of one instance, as stored.
void RetrieveFrames(const StoredInstance& instance, std::string_view frame_list,
                    const httplib::Request& req, httplib::Response& res);

// WADO-RS rendered and thumbnail resources (PS3.18 §10.4.1.1.3, §10.4.1.1.4): one frame of
// `instance` (frame_list: "" for the first frame, else a single frame number) as image/jpeg or
// image/png per Accept, shaped by the quality, window and viewport query parameters. A
// thumbnail without a viewport fits within kDefaultThumbnailSide pixels.
void RetrieveRendered(const StoredInstance& instance, std::string_view frame_list, bool thumbnail,
                      const httplib::Request& req, httplib::Response& res);

}  // namespace conduit
