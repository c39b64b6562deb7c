// conduit-reference-tool: THE reference AI tool for Conduit's tests and demos. NON-CLINICAL.
// Exit codes: 0 results written; 2 no suitable input (message on stderr); 1 any other failure.
#include <dcmtk/dcmdata/dcrledrg.h>
#include <dcmtk/dcmjpeg/djdecode.h>
#include <dcmtk/dcmjpls/djdecode.h>
#include <dcmtk/oflog/oflog.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "reference_tool/reference_tool.h"

int main(int argc, char** argv) {
  CLI::App app{
      "conduit-reference-tool: NON-CLINICAL reference AI tool. NOT FOR DIAGNOSTIC USE.\n"
      "Reads every DICOM file under --input, takes the largest CT or MR series with consistent\n"
      "geometry, segments body and lungs by classical thresholds, and writes a DICOM SEG, a\n"
      "TID 1500 measurement report (SR) and a secondary capture overlay into --output, in the\n"
      "input's study, with UIDs derived from the input (a re-run gives the same UIDs).\n"
      "Exit codes: 0 success, 2 no suitable input, 1 other failure."};
  std::string input;
  std::string output;
  app.add_option("--input", input, "Directory holding the input study (read recursively)")
      ->required();
  app.add_option("--output", output, "Directory to write the results into")->required();
  CLI11_PARSE(app, argc, argv);

  spdlog::set_default_logger(spdlog::stdout_logger_mt("reference-tool"));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %l %v");
  OFLog::configure(OFLogger::ERROR_LOG_LEVEL);  // DCMTK's own chatter stays off stdout
  DJDecoderRegistration::registerCodecs();
  DJLSDecoderRegistration::registerCodecs();
  DcmRLEDecoderRegistration::registerCodecs();

  spdlog::info("conduit-reference-tool (NON-CLINICAL) starting");
  conduit::Result<conduit::tools::ReferenceRunSummary> result =
      conduit::tools::RunReferenceTool(input, output);
  DJDecoderRegistration::cleanup();
  DJLSDecoderRegistration::cleanup();
  DcmRLEDecoderRegistration::cleanup();
  if (!result.ok()) {
    std::fprintf(stderr, "conduit-reference-tool: %s\n", result.status().ToString().c_str());
    return result.status().code() == conduit::StatusCode::kNotFound ? 2 : 1;
  }
  spdlog::info("done: {} {} slices, 3 result objects", result->modality, result->slices);
  return 0;
}
