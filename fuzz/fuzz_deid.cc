// Fuzz target: any bytes, as a file Conduit is about to send to a tool, through the
// de-identifier (DeidentifyFile) under options chosen by the first two bytes, and its output
// back through the re-identifier. Bad input must give an error value, never a crash; an
// instance that is written must read back and say it was de-identified; a re-identified one
// must read back too.

#include <dcmtk/config/osconfig.h>  // must come first among DCMTK headers
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/oflog/oflog.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "deid/deidentifier.h"
#include "deid/reidentifier.h"

namespace {

namespace fs = std::filesystem;

const fs::path& ScratchDir() {
  static const fs::path dir = [] {
    fs::path d = fs::temp_directory_path() / ("conduit-fuzz-deid-" + std::to_string(getpid()));
    fs::create_directories(d);
    return d;
  }();
  return dir;
}

void RemoveScratch() {
  std::error_code ec;
  fs::remove_all(ScratchDir(), ec);
}

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "fuzz_deid: property violated: %s\n", what);
  std::abort();
}

conduit::PseudonymKey FixedKey() {
  conduit::PseudonymKey key;
  key.bytes.assign(32, 0x5A);
  key.id = "fuzz";
  return key;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  OFLog::configure(OFLogger::FATAL_LOG_LEVEL);
  ScratchDir();
  std::atexit(RemoveScratch);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  // Byte 0: profile options (bits 0-7 = the first eight); byte 1: bit 0 the last two options,
  // bit 1 a pixel cleaning rule for every instance (decode, blank, re-encode), bit 2 allow
  // every risky kind.
  conduit::DeidSettings settings;
  for (int i = 0; i < 8; ++i)
    if (data[0] & (1 << i)) settings.options.Add(static_cast<conduit::ProfileOption>(i));
  if (data[1] & 1) {
    settings.options.Add(conduit::ProfileOption::kCleanStructuredContent);
    settings.options.Add(conduit::ProfileOption::kCleanGraphics);
  }
  if (data[1] & 2) settings.burned_in.cleaning.push_back({"*", "", "", {{0, 0, 8, 8}}});
  if (data[1] & 4) {
    settings.burned_in.allow_ultrasound = true;
    settings.burned_in.allow_secondary_capture = true;
    settings.burned_in.allow_scanned_documents = true;
    settings.burned_in.refuse_burned_in_annotation = false;
  }
  settings.safe_private.push_back({0x0019, "FUZZ", 0x10});

  const fs::path in = ScratchDir() / "in.dcm", out = ScratchDir() / "out.dcm",
                 back = ScratchDir() / "back.dcm";
  {
    std::ofstream file(in, std::ios::binary | std::ios::trunc);
    file.write(reinterpret_cast<const char*>(data + 2), static_cast<std::streamsize>(size - 2));
    if (!file) Fail("cannot write the scratch file");
  }
  std::error_code ec;
  fs::remove(out, ec);

  const conduit::Deidentifier deidentifier(settings, conduit::Pseudonymiser(FixedKey()));
  auto outcome = deidentifier.DeidentifyFile(in, out);
  if (!outcome.ok()) {
    if (fs::exists(out)) Fail("a failed de-identification left an output file");
    return 0;
  }
  if (outcome->refused) {
    if (outcome->refusal.empty()) Fail("a refusal without a reason");
    if (fs::exists(out)) Fail("a refused instance was written");
    return 0;
  }
  DcmFileFormat written;
  if (written.loadFile(out.c_str()).bad()) Fail("the de-identified output does not read back");
  OFString removed;
  written.getDataset()->findAndGetOFString(DCM_PatientIdentityRemoved, removed);
  if (removed != "YES") Fail("the output does not say Patient Identity Removed = YES");

  // The output as a tool's result: re-identification must return a value, never crash.
  std::map<std::string, std::string> crosswalk;
  for (const auto& pair : outcome->pseudonyms) crosswalk[pair.pseudonym] = pair.original;
  const conduit::Reidentifier reidentifier([&](const std::vector<std::string>& wanted) {
    std::map<std::string, std::string> found;
    for (const auto& w : wanted)
      if (auto it = crosswalk.find(w); it != crosswalk.end()) found.insert(*it);
    return conduit::Result<std::map<std::string, std::string>>(found);
  });
  fs::remove(back, ec);
  auto reidentified = reidentifier.ReidentifyFile(out, back, in);
  if (reidentified.ok()) {
    DcmFileFormat restored;
    if (restored.loadFile(back.c_str()).bad()) Fail("the re-identified output does not read back");
  } else if (fs::exists(back)) {
    Fail("a failed re-identification left an output file");
  }
  return 0;
}
