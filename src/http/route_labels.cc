#include "http/route_labels.h"

namespace conduit {
namespace {

constexpr std::string_view kDicomwebRoot = "/dicom-web";

}  // namespace

std::vector<std::string> SplitPath(std::string_view path) {
  std::vector<std::string> parts;
  if (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  size_t start = 0;
  if (!path.empty() && path.front() == '/') start = 1;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    parts.emplace_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return parts;
}

std::string DicomwebRouteLabel(std::string_view path) {
  static constexpr std::string_view kKeywords[] = {
      "studies",   "series",   "instances",     "frames",      "metadata",
      "rendered",  "bulkdata", "thumbnail",     "jobs",        "pixeldata",
      "workitems", "state",    "cancelrequest", "subscribers", "suspend"};
  constexpr size_t kMaxSegments = 10;
  const std::vector<std::string> parts = SplitPath(path);
  if (parts.size() > kMaxSegments) return std::string(kDicomwebRoot) + "/{other}";
  std::string label(kDicomwebRoot);
  for (size_t i = 1; i < parts.size(); ++i) {
    bool keyword = false;
    for (std::string_view k : kKeywords) keyword = keyword || parts[i] == k;
    label += "/";
    if (keyword) {
      label += parts[i];
    } else {
      label += parts[i - 1] == "jobs" ? "{id}" : parts[i - 1] == "subscribers" ? "{ae}" : "{uid}";
    }
  }
  return label;
}

std::string MethodLabel(const std::string& method) {
  static constexpr std::string_view kKnown[] = {"GET",    "HEAD",    "POST", "PUT",
                                                "DELETE", "OPTIONS", "PATCH"};
  for (std::string_view m : kKnown) {
    if (method == m) return method;
  }
  return "other";
}

}  // namespace conduit
