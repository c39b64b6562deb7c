// The DIMSE push adapter: the tool is a DICOM node; the study is C-STOREd to it over one
// association and its results come back later to our listener (the job then awaits them).
#include <spdlog/spdlog.h>

#include <string>
#include <vector>

#include "adapters/tool_adapter.h"
#include "dicom/dimse_sender.h"
#include "store/index.h"

namespace conduit {
namespace {

// A refusal that retrying cannot cure outranks one that it might.
int Severity(StatusCode code) {
  if (code == StatusCode::kOk) return 0;
  return IsRetryable(code) ? 1 : 2;
}

class DimsePushAdapter final : public ToolAdapter {
 public:
  DimsePushAdapter(ToolConfig tool, AeTitle our_ae)
      : tool_(std::move(tool)), our_ae_(std::move(our_ae)) {}

  Result<DispatchOutcome> Dispatch(const DispatchRequest& request) override {
    const std::string what = "tool " + tool_.name + " job " + std::to_string(request.job.id.value);
    if (request.inputs.empty()) return InvalidArgument(what + ": no input instances to send");

    DicomPeer peer;
    peer.calling_ae = our_ae_;
    peer.called_ae = tool_.ae_title;
    peer.host = tool_.host;
    peer.port = tool_.port;
    peer.timeout = tool_.timeout;
    peer.tls = tool_.tls;

    Result<std::vector<Status>> sent = StoreFiles(peer, request.inputs);
    if (!sent.ok()) {
      const Status& st = sent.status();
      const StatusCode code = IsRetryable(st.code()) ? st.code() : StatusCode::kUnavailable;
      return Status(code, what + ": send to " + tool_.ae_title.str() + "@" + tool_.host + ":" +
                              std::to_string(tool_.port) + ": " + st.message());
    }

    const Status* worst = nullptr;
    size_t refused = 0;
    for (const Status& st : *sent) {
      if (st.ok()) continue;
      ++refused;
      if (worst == nullptr || Severity(st.code()) > Severity(worst->code())) worst = &st;
    }
    if (worst != nullptr) {
      spdlog::warn("{}: {} of {} instance(s) refused by the tool", what, refused, sent->size());
      return Status(worst->code(), what + ": " + std::to_string(refused) + " of " +
                                       std::to_string(sent->size()) +
                                       " instance(s) refused: " + worst->message());
    }

    spdlog::info("{}: sent {} instance(s) of study {}", what, sent->size(),
                 StudyRef(request.job.study_uid));
    DispatchOutcome outcome;
    outcome.results_pending = true;
    return outcome;
  }

 private:
  const ToolConfig tool_;
  const AeTitle our_ae_;
};

}  // namespace

std::unique_ptr<ToolAdapter> MakeDimsePushAdapter(const ToolConfig& tool, const AeTitle& our_ae) {
  return std::make_unique<DimsePushAdapter>(tool, our_ae);
}

}  // namespace conduit
