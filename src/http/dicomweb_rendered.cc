// WADO-RS rendered and thumbnail resources: one frame rendered by dicom/rendered_frame.h to
// JPEG or PNG. The rendered image is small (at most kMaxRenderedSide squared pixels), so it is
// sent whole rather than streamed.
#include <spdlog/spdlog.h>

#include "dicom/rendered_frame.h"
#include "http/dicomweb_read_internal.h"
#include "http/rendered_params.h"

namespace conduit {

void RetrieveRendered(const StoredInstance& instance, std::string_view frame_list, bool thumbnail,
                      const httplib::Request& req, httplib::Response& res) {
  int frame = 1;
  if (!frame_list.empty()) {
    Result<int> parsed = ParseRenderedFrame(frame_list);
    if (!parsed.ok()) {
      SendDicomwebError(res, 400, parsed.status().message());
      return;
    }
    frame = *parsed;
  }
  Result<RenderedQuery> query = ParseRenderedQuery(QueryStringOf(req));
  if (!query.ok()) {
    SendDicomwebError(res, 400, query.status().message());
    return;
  }
  RenderOptions options = query->options;
  const std::string accept = query->accept ? *query->accept : req.get_header_value("Accept");
  const std::optional<RenderedFormat> format = ChooseRenderedFormat(accept);
  if (!format) {
    SendDicomwebError(res, 406, "rendered images are image/jpeg or image/png");
    return;
  }
  options.format = *format;
  if (thumbnail && !options.viewport) {
    options.viewport = RenderViewport{kDefaultThumbnailSide, kDefaultThumbnailSide};
  }
  Result<RenderedImage> image = RenderFrame(instance.path, frame, options);
  if (!image.ok()) {
    const Status& st = image.status();
    switch (st.code()) {
      case StatusCode::kNotFound:
        SendDicomwebError(res, 404, st.message());
        return;
      case StatusCode::kInvalidArgument:
        SendDicomwebError(res, 400, st.message());
        return;
      case StatusCode::kFailedPrecondition:
        SendDicomwebError(res, 406, "this instance cannot be rendered: " + st.message());
        return;
      default:
        spdlog::warn("dicomweb: rendering an instance failed ({})", StatusCodeName(st.code()));
        SendDicomwebError(res, 500, "rendering failed");
        return;
    }
  }
  res.status = 200;
  res.set_content(image->bytes, *format == RenderedFormat::kPng ? "image/png" : "image/jpeg");
}

}  // namespace conduit
