// What a DICOMweb rendered or thumbnail request asks for (PS3.18 §8.3.5.1, §8.3.3.1): the
// query parameters quality, window and viewport, the media type chosen from Accept (or the
// accept query parameter), and the single frame of a frame list. Pure functions; reentrant.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"
#include "dicom/rendered_frame.h"

namespace conduit {

// Longest query string ParseRenderedQuery reads.
inline constexpr size_t kMaxRenderedQueryBytes = 4096;

// The viewport a thumbnail gets when the request names none.
inline constexpr int kDefaultThumbnailSide = 128;

struct RenderedQuery {
  RenderOptions options;              // format left at JPEG: ChooseRenderedFormat decides
  std::optional<std::string> accept;  // the accept query parameter, decoded, if present
};

// Parses `query` (after '?', still percent-encoded):
//   quality=1..100; window=center,width[,linear|linear-exact|sigmoid] (width > 0, >= 1 for
//   linear); viewport=vw,vh[,sx,sy,sw,sh] (vw, vh in 1..kMaxRenderedSide; sw, sh non-zero,
//   negative to flip); accept=<media types>.
// Other parameters (annotation, charset, iccprofile) are ignored.
// Errors: kInvalidArgument naming the parameter (malformed, out of range, given twice, query
// over kMaxRenderedQueryBytes).
Result<RenderedQuery> ParseRenderedQuery(std::string_view query);

// The output format an Accept field value admits: image/jpeg, image/png or a wildcard, by
// q-value and then specificity; JPEG when both are equally acceptable or `accept` is blank.
// nullopt when neither is acceptable.
std::optional<RenderedFormat> ChooseRenderedFormat(std::string_view accept);

// The one frame number of a rendered frame list ("3"). Errors: kInvalidArgument when the list
// is not a single positive integer (several frames cannot go in one single-frame image).
Result<int> ParseRenderedFrame(std::string_view frame_list);

}  // namespace conduit
