// Fuzz target: any bytes, as a file a sender stored with us, through ReadInstanceMeta, which
// parses every received instance. It must return an error value for bad input, never crash,
// and an OK result must carry the four UIDs its contract promises.

#include <dcmtk/config/osconfig.h>  // must come first among DCMTK headers
#include <dcmtk/oflog/oflog.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "dicom/instance_meta.h"

namespace {

// One scratch file per fuzzing process, rewritten for every input and removed at exit.
const std::filesystem::path& InputFile() {
  static const std::filesystem::path dir = [] {
    std::filesystem::path d = std::filesystem::temp_directory_path() /
                              ("conduit-fuzz-instance-meta-" + std::to_string(getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  static const std::filesystem::path file = dir / "input.dcm";
  return file;
}

void RemoveScratch() {
  std::error_code ec;
  std::filesystem::remove_all(InputFile().parent_path(), ec);
}

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "fuzz_instance_meta: property violated: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  // DCMTK logs a warning for most malformed inputs; at millions of inputs that is all noise.
  OFLog::configure(OFLogger::FATAL_LOG_LEVEL);
  InputFile();
  std::atexit(RemoveScratch);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  {
    std::ofstream out(InputFile(), std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    if (!out) Fail("cannot write the scratch file");
  }
  const conduit::Result<conduit::InstanceMeta> meta = conduit::ReadInstanceMeta(InputFile());
  if (meta.ok()) {
    if (meta->study_uid.empty() || meta->series_uid.empty() || meta->sop_instance_uid.empty() ||
        meta->sop_class_uid.empty()) {
      Fail("OK result without all four UIDs");
    }
  } else {
    if (meta.status().code() != conduit::StatusCode::kInvalidArgument) {
      Fail("a bad file must be kInvalidArgument");
    }
    if (meta.status().message().find("read instance ") != 0) {
      Fail("error message does not name the operation and file");
    }
  }
  return 0;
}
