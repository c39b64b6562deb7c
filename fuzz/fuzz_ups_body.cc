// Fuzz target: UPS-RS request bodies (DICOM JSON datasets a performer sends). Byte 0 picks
// the parser (dataset, state change, update, cancel request); the rest is the body. Checks
// that errors are kInvalidArgument with a message, that parsing is deterministic, that a
// parsed dataset is normalised (8 upper-case hex keys, a "vr" each) and parses again to
// itself, and that DicomJsonValueString runs on every top-level attribute.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "http/ups_body.h"

namespace {

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "fuzz_ups_body: property violated: %s\n", what);
  std::abort();
}

template <typename T>
void CheckError(const conduit::Result<T>& a, const conduit::Result<T>& b) {
  if (a.ok() != b.ok()) Fail("parsing is not deterministic");
  if (a.ok()) return;
  if (a.status().code() != conduit::StatusCode::kInvalidArgument) {
    Fail("error other than kInvalidArgument");
  }
  if (a.status().message().empty()) Fail("error without a message");
  if (a.status().message() != b.status().message()) Fail("error message not deterministic");
}

void CheckDataset(const nlohmann::json& ds, const conduit::UpsBodyLimits& limits) {
  if (!ds.is_object()) Fail("dataset is not an object");
  for (const auto& [key, attr] : ds.items()) {
    if (key.size() != 8) Fail("key is not 8 characters");
    for (char c : key) {
      if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'))) Fail("key not upper-case hex");
    }
    if (!attr.is_object() || !attr.contains("vr")) Fail("attribute without vr");
    const uint32_t tag = static_cast<uint32_t>(std::stoul(key, nullptr, 16));
    (void)conduit::DicomJsonValueString(ds, tag);
  }
  const std::string text = ds.dump();
  auto again = conduit::ParseDicomJsonDataset(text, limits);
  if (!again.ok()) Fail("a normalised dataset does not parse again");
  if (*again != ds) Fail("a normalised dataset parses to something else");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  conduit::UpsBodyLimits limits;
  limits.max_body_bytes = 16384;
  limits.max_depth = 4;
  limits.max_attributes = 256;
  switch (data[0] % 4) {
    case 0: {
      auto a = conduit::ParseDicomJsonDataset(body, limits);
      CheckError(a, conduit::ParseDicomJsonDataset(body, limits));
      if (a.ok()) CheckDataset(*a, limits);
      break;
    }
    case 1: {
      auto a = conduit::ParseStateChangeBody(body, limits);
      CheckError(a, conduit::ParseStateChangeBody(body, limits));
      if (a.ok() && a->state == conduit::UpsState::kScheduled) Fail("SCHEDULED accepted");
      break;
    }
    case 2: {
      auto a = conduit::ParseUpdateBody(body, limits);
      CheckError(a, conduit::ParseUpdateBody(body, limits));
      if (a.ok()) {
        auto changes = conduit::ParseDicomJsonDataset(a->changes, limits);
        if (!changes.ok()) Fail("update changes do not parse again");
        if (changes->contains("00081195") || changes->contains("00741000")) {
          Fail("update changes hold the Transaction UID or the state");
        }
      }
      break;
    }
    default: {
      auto a = conduit::ParseCancelRequestBody(body, limits);
      CheckError(a, conduit::ParseCancelRequestBody(body, limits));
      break;
    }
  }
  return 0;
}
