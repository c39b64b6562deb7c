// Fuzz target: the request of a WADO-RS rendered resource. Byte 0 picks what the rest is: a
// query string (quality, window, viewport, accept), an Accept field value, or a frame list.
// Checks: errors are kInvalidArgument with a message; parsed values keep the bounds the
// renderer relies on (quality 1..100, finite window with a positive width, viewport sides
// 1..kMaxRenderedSide, a region with non-zero extent and a non-negative origin); a frame is
// positive; parsing is deterministic.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "http/rendered_params.h"

namespace {

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "fuzz_rendered_params: property violated: %s\n", what);
  std::abort();
}

void CheckError(const conduit::Status& st) {
  if (st.code() != conduit::StatusCode::kInvalidArgument) Fail("error is not kInvalidArgument");
  if (st.message().empty()) Fail("error without a message");
}

void CheckQuery(std::string_view text) {
  conduit::Result<conduit::RenderedQuery> q = conduit::ParseRenderedQuery(text);
  conduit::Result<conduit::RenderedQuery> again = conduit::ParseRenderedQuery(text);
  if (q.ok() != again.ok()) Fail("nondeterministic");
  if (!q.ok()) {
    CheckError(q.status());
    return;
  }
  const conduit::RenderOptions& o = q->options;
  if (o.quality < 1 || o.quality > 100) Fail("quality out of range");
  if (o.window) {
    if (!std::isfinite(o.window->center) || !std::isfinite(o.window->width)) Fail("window nan");
    if (o.window->width <= 0) Fail("window width not positive");
  }
  if (o.viewport) {
    const conduit::RenderViewport& v = *o.viewport;
    if (v.width < 1 || v.height < 1 || v.width > conduit::kMaxRenderedSide ||
        v.height > conduit::kMaxRenderedSide) {
      Fail("viewport size out of range");
    }
    if (v.has_region && (v.sw == 0 || v.sh == 0 || v.sx < 0 || v.sy < 0)) Fail("bad region");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 3) {
    case 0:
      CheckQuery(text);
      break;
    case 1: {
      auto format = conduit::ChooseRenderedFormat(text);
      if (format != conduit::ChooseRenderedFormat(text)) Fail("nondeterministic accept");
      break;
    }
    default: {
      conduit::Result<int> frame = conduit::ParseRenderedFrame(text);
      if (frame.ok() && *frame < 1) Fail("frame not positive");
      if (!frame.ok()) CheckError(frame.status());
      break;
    }
  }
  return 0;
}
