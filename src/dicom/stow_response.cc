#include "dicom/stow_response.h"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "dicom/dicom_json_read.h"

namespace conduit {
namespace {

using json = nlohmann::json;

std::string Hex4(uint16_t v) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "0x%04X", static_cast<unsigned>(v));
  return buf;
}

}  // namespace

Result<StowResponse> ParseStowResponse(std::string_view body) {
  StowResponse out;
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return out;
  json doc = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_array() && doc.size() == 1) doc = doc[0];
  if (!doc.is_object()) {
    return InvalidArgument("STOW-RS response: not a DICOM JSON object");
  }
  for (const json& item : DicomJsonSequence(doc, "00081199")) {
    ++out.stored;
    if (std::string uid = DicomJsonString(item, "00081155"); !uid.empty()) {
      out.stored_instances.insert(std::move(uid));
    }
  }
  for (const json& item : DicomJsonSequence(doc, "00081198")) {
    ++out.failed;
    uint16_t reason = 0;
    if (item.is_object()) {
      auto attr = item.find("00081197");
      if (attr != item.end() && attr->is_object()) {
        auto value = attr->find("Value");
        if (value != attr->end() && value->is_array() && !value->empty() &&
            (*value)[0].is_number_unsigned() && (*value)[0].get<uint64_t>() <= 0xFFFF) {
          reason = static_cast<uint16_t>((*value)[0].get<uint64_t>());
        }
      }
    }
    ++out.failure_reasons[reason];
    if (std::string uid = DicomJsonString(item, "00081155"); !uid.empty()) {
      out.failed_instances[std::move(uid)] = reason;
    }
  }
  return out;
}

std::string DescribeFailureReason(uint16_t reason) {
  const char* meaning = "unknown";
  if (reason == 0) {
    meaning = "not given";
  } else if (reason == 0x0110) {
    meaning = "processing failure";
  } else if (reason == kDuplicateSopInstance) {
    meaning = "duplicate SOP instance";
  } else if (reason == 0x0122) {
    meaning = "SOP class not supported";
  } else if (reason == 0x0124) {
    meaning = "not authorized";
  } else if (reason == 0xC122) {
    meaning = "transfer syntax not supported";
  } else if ((reason & 0xFF00) == 0xA700) {
    meaning = "out of resources";
  } else if ((reason & 0xFF00) == 0xA900) {
    meaning = "data set does not match SOP class";
  } else if ((reason & 0xF000) == 0xC000) {
    meaning = "cannot understand";
  }
  return Hex4(reason) + " (" + meaning + ")";
}

}  // namespace conduit
