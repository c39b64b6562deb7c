// Labels that name an HTTP request in logs, metrics and audit entries without carrying what a
// client put in its path (UIDs, job ids) or an unbounded set of values.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace conduit {

// The segments of a URL path: leading and one trailing slash dropped, empty segments kept.
std::vector<std::string> SplitPath(std::string_view path);

// The route of a /dicom-web path: DICOMweb keywords kept, every other segment replaced ({uid},
// {id} after "jobs", {ae} after "subscribers"); more than ten segments: /dicom-web/{other}.
std::string DicomwebRouteLabel(std::string_view path);

// The method if it is a common one, else "other".
std::string MethodLabel(const std::string& method);

}  // namespace conduit
