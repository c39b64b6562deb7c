#include "adapters/dicomweb_client.h"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

#include "core/http_url.h"
#include "dicom/dicomweb_http.h"
#include "dicom/http_tls.h"

namespace conduit {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using std::chrono::steady_clock;

const char* kTokenSetting = "priors_source.auth_token_file";

std::string PercentEncode(std::string_view text) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

const char* kTlsSetting = "priors_source.tls";

// A client for the PACS (with the trust's TLS settings for https), its URL, and a watchdog
// bounding every request.
struct Session {
  Session(std::unique_ptr<httplib::Client> made, HttpUrl pacs, steady_clock::time_point deadline,
          std::stop_token stop)
      : owned(std::move(made)),
        client(*owned),
        url(std::move(pacs)),
        watchdog(client, std::move(stop), deadline) {}
  std::unique_ptr<httplib::Client> owned;
  httplib::Client& client;
  const HttpUrl url;
  HttpWatchdog watchdog;
};

// A session with the PACS of `peer`, its client set up with `token` and the peer's timeout.
Result<std::unique_ptr<Session>> OpenSession(const DicomwebPeer& peer,
                                             const std::optional<std::string>& token,
                                             steady_clock::time_point deadline,
                                             std::stop_token stop, const std::string& what) {
  Result<HttpUrl> url = ParseHttpUrl(peer.url);
  if (!url.ok()) return FailedPrecondition(what + ": priors_source.url: " + url.status().message());
  Result<std::unique_ptr<httplib::Client>> client = MakeHttpClient(*url, peer.tls, kTlsSetting);
  if (!client.ok()) return client.status().WithContext(what);
  auto session = std::make_unique<Session>(std::move(client).value(), std::move(url).value(),
                                           deadline, std::move(stop));
  ConfigureHttpClient(session->client, token, session->watchdog);
  session->client.set_read_timeout(std::min(session->watchdog.Remaining(), peer.timeout));
  return session;
}

Status Transport(httplib::Error error, const Session& session, const std::string& what) {
  const HttpWatchdog& watchdog = session.watchdog;
  if (watchdog.Stopping()) return Unavailable(what + ": stopped (shutting down)");
  if (watchdog.Expired()) return DeadlineExceeded(what + ": not done within the time limit");
  if (const std::string tls = DescribeTlsError(error, session.client, session.url, kTlsSetting);
      !tls.empty()) {
    return Unavailable(what + ": " + tls);
  }
  if (error == httplib::Error::ConnectionTimeout || error == httplib::Error::Read) {
    return DeadlineExceeded(what + ": " + httplib::to_string(error));
  }
  return Unavailable(what + ": " + httplib::to_string(error));
}

Status HttpError(int status, const std::string& what) {
  const std::string http = "HTTP " + std::to_string(status);
  if (status == 404) return NotFound(what + ": the PACS has no such study (" + http + ")");
  if (status == 408) return DeadlineExceeded(what + ": the PACS timed out (" + http + ")");
  if (status == 429 || status >= 500) return Unavailable(what + ": the PACS failed (" + http + ")");
  if (status == 401 || status == 403) {
    return FailedPrecondition(what + ": the PACS refused our credentials (" + http + "): check " +
                              kTokenSetting);
  }
  return InvalidArgument(what + ": the PACS refused the request (" + http + ")");
}

}  // namespace

Result<std::vector<StudyMatch>> SearchStudies(const DicomwebPeer& peer,
                                              const std::string& patient_id,
                                              steady_clock::time_point deadline,
                                              std::stop_token stop) {
  const std::string what = "QIDO-RS " + peer.url;
  if (patient_id.empty()) return InvalidArgument(what + ": the study has no Patient ID");
  if (patient_id.find_first_of("*?\\") != std::string::npos) {
    return InvalidArgument(
        what + ": the Patient ID holds a wildcard or backslash; it would match other patients");
  }
  ASSIGN_OR_RETURN(std::optional<std::string> token,
                   ReadBearerTokenFile(peer.auth_token_file, what, kTokenSetting));
  ASSIGN_OR_RETURN(std::unique_ptr<Session> opened,
                   OpenSession(peer, token, deadline, std::move(stop), what));
  Session& session = *opened;
  const HttpUrl& url = session.url;
  // ModalitiesInStudy, StudyDescription, BodyPartExamined, SOPClassesInStudy,
  // NumberOfStudyRelatedInstances (StudyDate, StudyInstanceUID and PatientID come anyway).
  const std::string path = url.path + "/studies?PatientID=" + PercentEncode(patient_id) +
                           "&includefield=00080061&includefield=00081030"
                           "&includefield=00180015&includefield=00080062"
                           "&includefield=00201208";
  httplib::Result res =
      session.client.Get(path, httplib::Headers{{"Accept", "application/dicom+json"}});
  if (!res) return Transport(res.error(), session, what);
  std::vector<StudyMatch> matches;
  if (res->status == 204) return matches;
  if (res->status != 200) return HttpError(res->status, what);
  if (res->body.empty()) return matches;
  json listing = json::parse(res->body, nullptr, /*allow_exceptions=*/false);
  if (!listing.is_array()) return InvalidArgument(what + ": the answer is not a DICOM JSON array");
  for (const json& item : listing) {
    if (!item.is_object()) continue;
    StudyMatch match;
    match.study_uid = StudyUid(DicomJsonString(item, "0020000D"));
    match.patient_id = DicomJsonString(item, "00100020");
    if (!IsUidText(match.study_uid.str()) || match.patient_id != patient_id) continue;
    match.study_date = DicomJsonString(item, "00080020");
    match.modalities = DicomJsonStrings(item, "00080061");
    match.study_description = DicomJsonString(item, "00081030");
    match.body_part = DicomJsonString(item, "00180015");
    match.sop_classes = DicomJsonStrings(item, "00080062");
    if (auto n = DicomJsonInteger(item, "00201208"); n && *n >= 0 && *n < (int64_t{1} << 31)) {
      match.instance_count = static_cast<int>(*n);
    }
    matches.push_back(std::move(match));
  }
  return matches;
}

Result<std::vector<fs::path>> RetrieveStudy(const DicomwebPeer& peer, const StudyUid& study,
                                            const fs::path& dir, steady_clock::time_point deadline,
                                            std::stop_token stop) {
  const std::string what = "WADO-RS " + peer.url;
  if (!IsUidText(study.str())) return InvalidArgument(what + ": not a study UID");
  ASSIGN_OR_RETURN(std::optional<std::string> token,
                   ReadBearerTokenFile(peer.auth_token_file, what, kTokenSetting));
  ASSIGN_OR_RETURN(std::unique_ptr<Session> opened,
                   OpenSession(peer, token, deadline, std::move(stop), what));
  Session& session = *opened;
  const HttpUrl& url = session.url;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return ErrnoStatus(ec.value(), what + ": create " + dir.string());
  int counter = 0;
  WadoFetch fetch = FetchDicomParts(session.client, url.path + "/studies/" + study.str(), what,
                                    [&] { return dir / (std::to_string(++counter) + ".dcm"); });
  if (fetch.http_status != 0 && fetch.http_status != 200) {
    return HttpError(fetch.http_status, what);
  }
  if (!fetch.error.ok()) return fetch.error;
  if (fetch.transport != httplib::Error::Success) {
    return Transport(fetch.transport, session, what);
  }
  return fetch.files;
}

}  // namespace conduit
