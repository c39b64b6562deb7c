// A DICOMweb server on 127.0.0.1 for tests of Conduit's STOW-RS clients: it reads each
// request's multipart/related body back into its parts and answers with the next answer it
// was given (an HTTP status and the instances it names stored and failed), or 200 with an
// empty body when it has none left. Thread safety: Then and requests may be called while it
// serves.
#pragma once

#include <httplib.h>

#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "core/status.h"

namespace conduit::testing {

// Where ReadDicomParts puts each application/dicom part: begin at its start, data with each
// run of its bytes, end after its last byte.
struct DicomPartSink {
  std::function<void()> begin;
  std::function<void(std::string_view)> data;
  std::function<void()> end;
};

// Reads a STOW-RS request body (multipart/related, `content_type` its header) from
// `content_reader` into `sink`, all of it even after an error; returns the first error: no
// boundary, a part of another type, or a malformed body.
Status ReadDicomParts(const std::string& content_type, const httplib::ContentReader& content_reader,
                      const DicomPartSink& sink);

// One STOW-RS request as the server read it.
struct SeenStowRequest {
  std::string authorization;       // the Authorization header, if any
  std::vector<std::string> parts;  // bodies of the application/dicom parts, in order
  Status parse;                    // the multipart reader's verdict on the body
};

// How the server answers one request.
struct StowAnswer {
  StowAnswer(int http_status = 200, std::vector<std::string> stored_uids = {},
             std::vector<std::pair<std::string, int>> failed_uids = {},
             std::optional<std::string> raw_body = std::nullopt)
      : status(http_status),
        stored(std::move(stored_uids)),
        failed(std::move(failed_uids)),
        body(std::move(raw_body)) {}

  int status = 200;
  std::vector<std::string> stored;                  // SOP Instance UIDs named stored
  std::vector<std::pair<std::string, int>> failed;  // and failed, with their FailureReason
  std::optional<std::string> body;                  // instead of the above: this body as is
};

class FakeStowServer {
 public:
  FakeStowServer();  // serving POST /dicom-web/studies on return
  ~FakeStowServer();
  FakeStowServer(const FakeStowServer&) = delete;
  FakeStowServer& operator=(const FakeStowServer&) = delete;

  // http://127.0.0.1:<port>/dicom-web
  std::string url() const;
  void Then(StowAnswer answer);
  std::vector<SeenStowRequest> requests();

 private:
  void Stow(const httplib::Request& req, httplib::Response& res,
            const httplib::ContentReader& reader);

  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::deque<StowAnswer> answers_;
  std::vector<SeenStowRequest> requests_;
};

}  // namespace conduit::testing
