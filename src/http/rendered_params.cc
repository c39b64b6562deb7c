#include "http/rendered_params.h"

#include <charconv>
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "http/multipart.h"
#include "http/percent_decoding.h"

namespace conduit {
namespace {

// Largest magnitude accepted for window center/width and viewport region coordinates.
constexpr double kMaxWindowValue = 1e9;
constexpr int64_t kMaxRegionCoordinate = 1 << 20;

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  for (;;) {
    const size_t at = s.find(sep);
    out.push_back(s.substr(0, at));
    if (at == std::string_view::npos) return out;
    s.remove_prefix(at + 1);
  }
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

template <typename T>
std::optional<T> ParseNumber(std::string_view s) {
  s = Trim(s);
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  T value{};
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  if constexpr (std::is_floating_point_v<T>) {
    if (!std::isfinite(value)) return std::nullopt;
  }
  return value;
}

Result<int> ParseQuality(std::string_view v) {
  std::optional<int> q = ParseNumber<int>(v);
  if (!q || *q < 1 || *q > 100) return InvalidArgument("quality: an integer from 1 to 100");
  return *q;
}

Result<RenderWindow> ParseWindow(std::string_view v) {
  const std::vector<std::string_view> parts = Split(v, ',');
  if (parts.size() < 2 || parts.size() > 3) {
    return InvalidArgument("window: center,width[,function]");
  }
  std::optional<double> center = ParseNumber<double>(parts[0]);
  std::optional<double> width = ParseNumber<double>(parts[1]);
  if (!center || !width || std::abs(*center) > kMaxWindowValue || *width > kMaxWindowValue) {
    return InvalidArgument("window: center and width must be decimal numbers");
  }
  RenderWindow w;
  w.center = *center;
  w.width = *width;
  if (parts.size() == 3) {
    const std::string_view f = Trim(parts[2]);
    if (f == "linear") {
      w.function = VoiFunction::kLinear;
    } else if (f == "linear-exact") {
      w.function = VoiFunction::kLinearExact;
    } else if (f == "sigmoid") {
      w.function = VoiFunction::kSigmoid;
    } else {
      return InvalidArgument("window: function must be linear, linear-exact or sigmoid");
    }
  }
  if (w.function == VoiFunction::kLinear ? w.width < 1 : w.width <= 0) {
    return InvalidArgument("window: width must be >= 1 for linear, > 0 otherwise");
  }
  return w;
}

Result<RenderViewport> ParseViewport(std::string_view v) {
  const std::vector<std::string_view> parts = Split(v, ',');
  if (parts.size() != 2 && parts.size() != 6) {
    return InvalidArgument("viewport: vw,vh or vw,vh,sx,sy,sw,sh");
  }
  RenderViewport vp;
  std::optional<int> vw = ParseNumber<int>(parts[0]), vh = ParseNumber<int>(parts[1]);
  if (!vw || !vh || *vw < 1 || *vh < 1 || *vw > kMaxRenderedSide || *vh > kMaxRenderedSide) {
    return InvalidArgument("viewport: vw and vh must be integers from 1 to " +
                           std::to_string(kMaxRenderedSide));
  }
  vp.width = *vw;
  vp.height = *vh;
  if (parts.size() == 6) {
    int64_t region[4];
    for (int i = 0; i < 4; ++i) {
      std::optional<int64_t> n = ParseNumber<int64_t>(parts[2 + i]);
      if (!n || *n < -kMaxRegionCoordinate || *n > kMaxRegionCoordinate) {
        return InvalidArgument("viewport: sx, sy, sw and sh must be integers");
      }
      region[i] = *n;
    }
    if (region[0] < 0 || region[1] < 0) return InvalidArgument("viewport: sx, sy must be >= 0");
    if (region[2] == 0 || region[3] == 0) return InvalidArgument("viewport: sw, sh must not be 0");
    vp.has_region = true;
    vp.sx = region[0];
    vp.sy = region[1];
    vp.sw = region[2];
    vp.sh = region[3];
  }
  return vp;
}

// The q-value of a media range (1 when absent); -1 if malformed.
double QValue(const MediaType& type) {
  std::optional<std::string_view> q = type.Parameter("q");
  if (!q) return 1;
  std::optional<double> value = ParseNumber<double>(*q);
  if (!value || *value < 0 || *value > 1) return -1;
  return *value;
}

}  // namespace

Result<RenderedQuery> ParseRenderedQuery(std::string_view query) {
  if (query.size() > kMaxRenderedQueryBytes) {
    return InvalidArgument("query: longer than " + std::to_string(kMaxRenderedQueryBytes) +
                           " bytes");
  }
  RenderedQuery out;
  bool seen_quality = false, seen_window = false, seen_viewport = false;
  for (std::string_view pair : Split(query, '&')) {
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    std::optional<std::string> name = PercentDecode(pair.substr(0, eq), /*plus_is_space=*/true);
    std::optional<std::string> value =
        PercentDecode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1),
                      /*plus_is_space=*/true);
    if (!name || !value) return InvalidArgument("query: a malformed percent-encoding");
    auto once = [&](bool& seen) -> Status {
      if (seen) return InvalidArgument(*name + ": given more than once");
      seen = true;
      return Status::Ok();
    };
    if (*name == "quality") {
      RETURN_IF_ERROR(once(seen_quality));
      ASSIGN_OR_RETURN(out.options.quality, ParseQuality(*value));
    } else if (*name == "window") {
      RETURN_IF_ERROR(once(seen_window));
      ASSIGN_OR_RETURN(out.options.window, ParseWindow(*value));
    } else if (*name == "viewport") {
      RETURN_IF_ERROR(once(seen_viewport));
      ASSIGN_OR_RETURN(out.options.viewport, ParseViewport(*value));
    } else if (*name == "accept") {
      if (out.accept) return InvalidArgument("accept: given more than once");
      out.accept = std::move(*value);
    }
  }
  return out;
}

std::optional<RenderedFormat> ChooseRenderedFormat(std::string_view accept) {
  if (Trim(accept).empty()) return RenderedFormat::kJpeg;
  // Per format: the q of the most specific range that matches it (3 exact, 2 image/*, 1 */*).
  struct Best {
    int specificity = 0;
    double q = 0;
  };
  Best jpeg, png;
  for (std::string_view piece : Split(accept, ',')) {
    if (Trim(piece).empty()) continue;
    Result<MediaType> type = ParseMediaType(Trim(piece));
    if (!type.ok()) continue;
    const double q = QValue(*type);
    if (q < 0) continue;
    auto consider = [&](Best& best, std::string_view subtype) {
      int specificity = 0;
      if (type->type == "image" && type->subtype == subtype) {
        specificity = 3;
      } else if (type->type == "image" && type->subtype == "*") {
        specificity = 2;
      } else if (type->type == "*" && type->subtype == "*") {
        specificity = 1;
      }
      if (specificity > best.specificity) best = {specificity, q};
    };
    consider(jpeg, "jpeg");
    consider(png, "png");
  }
  if (jpeg.q <= 0 && png.q <= 0) return std::nullopt;
  if (png.q > jpeg.q) return RenderedFormat::kPng;
  if (png.q == jpeg.q && png.specificity > jpeg.specificity) return RenderedFormat::kPng;
  return RenderedFormat::kJpeg;
}

Result<int> ParseRenderedFrame(std::string_view frame_list) {
  std::optional<int> n = ParseNumber<int>(frame_list);
  if (n && *n >= 1 && frame_list.find_first_of(" \t+") == std::string_view::npos) return *n;
  if (frame_list.find(',') != std::string_view::npos) {
    return InvalidArgument(
        "frame list: rendered frames are single-frame images; request one frame at a time");
  }
  return InvalidArgument("frame list: the frame number must be a positive integer");
}

}  // namespace conduit
