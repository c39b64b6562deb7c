// conduit-make-study: writes a synthetic chest phantom study (CT, MR or DX) for demos, tests
// and benchmarks. Not patient data; every identifier is generated unless given.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <random>
#include <string>

#include "common/uid.h"
#include "make_study/study_writer.h"

int main(int argc, char** argv) {
  using conduit::tools::StudyModality;
  using conduit::tools::StudyTransferSyntax;

  CLI::App app{"conduit-make-study: writes a synthetic DICOM chest phantom study (CT, MR or DX)"};
  conduit::tools::StudySpec spec;
  std::string out_dir;
  std::string modality = "CT";
  std::string transfer_syntax = "explicit";
  int rows = 0;
  int cols = 0;
  uint64_t seed = 0;
  app.add_option("--out", out_dir, "Directory to write the study into")->required();
  app.add_option("--modality", modality, "CT, MR or DX")->check(CLI::IsMember({"CT", "MR", "DX"}));
  app.add_option("--slices", spec.slices, "Number of slices (CT/MR)")->check(CLI::Range(1, 100000));
  app.add_option("--rows", rows, "Rows (default CT 512, MR 256, DX 3000)")
      ->check(CLI::Range(8, 65535));
  app.add_option("--cols", cols, "Columns (default CT 512, MR 256, DX 2500)")
      ->check(CLI::Range(8, 65535));
  app.add_option("--transfer-syntax", transfer_syntax, "explicit or implicit (little endian)")
      ->check(CLI::IsMember({"explicit", "implicit"}));
  app.add_option("--patient-id", spec.patient_id, "Patient ID (default generated)");
  app.add_option("--patient-name", spec.patient_name, "Patient name (default generated)");
  app.add_option("--accession", spec.accession, "Accession number (default generated)");
  app.add_option("--study-uid", spec.study_uid, "Study Instance UID (default: a new 2.25 UID)");
  CLI::Option* seed_option =
      app.add_option("--seed", seed, "Seed for generated demographics and pixel noise");
  CLI11_PARSE(app, argc, argv);

  spec.out_dir = out_dir;
  spec.modality = modality == "MR"   ? StudyModality::kMr
                  : modality == "DX" ? StudyModality::kDx
                                     : StudyModality::kCt;
  spec.transfer_syntax = transfer_syntax == "implicit" ? StudyTransferSyntax::kImplicitLittleEndian
                                                       : StudyTransferSyntax::kExplicitLittleEndian;
  int default_rows = spec.modality == StudyModality::kCt   ? 512
                     : spec.modality == StudyModality::kMr ? 256
                                                           : 3000;
  int default_cols = spec.modality == StudyModality::kCt   ? 512
                     : spec.modality == StudyModality::kMr ? 256
                                                           : 2500;
  spec.rows = rows > 0 ? rows : default_rows;
  spec.cols = cols > 0 ? cols : default_cols;
  if (seed_option->count() == 0) seed = std::random_device{}();
  spec.seed = seed;

  // Demographics follow the seed; the study UID is new on every run unless given.
  std::mt19937_64 demo_rng(seed);
  unsigned long number = static_cast<unsigned long>(demo_rng() % 100000000ULL);
  if (spec.patient_id.empty()) spec.patient_id = "SYN" + std::to_string(number);
  if (spec.patient_name.empty()) {
    spec.patient_name = "SYNTHETIC^PATIENT" + std::to_string(number % 10000);
  }
  if (spec.accession.empty()) spec.accession = "ACC" + std::to_string(demo_rng() % 100000000ULL);
  if (spec.study_uid.empty()) {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd()};
    std::mt19937_64 uid_rng(seq);
    spec.study_uid = conduit::tools::RandomUid(uid_rng);
  }

  conduit::Result<int> written = conduit::tools::WriteStudy(spec);
  if (!written.ok()) {
    std::fprintf(stderr, "conduit-make-study: %s\n", written.status().ToString().c_str());
    return written.status().code() == conduit::StatusCode::kInvalidArgument ? 2 : 1;
  }
  std::printf("wrote %d %s instance(s) to %s\n", *written, modality.c_str(), out_dir.c_str());
  return 0;
}
