// Writes a synthetic DICOM study (CT, MR or DX) of a chest phantom for demos, tests and
// benchmarks. Instances are written one at a time, so memory stays flat in the study's size.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "core/status.h"

namespace conduit::tools {

enum class StudyModality { kCt, kMr, kDx };
enum class StudyTransferSyntax { kExplicitLittleEndian, kImplicitLittleEndian };

struct StudySpec {
  std::filesystem::path out_dir;
  StudyModality modality = StudyModality::kCt;
  int slices = 1;  // CT/MR: images in the one series; DX: ignored (always one image)
  int rows = 512;
  int cols = 512;
  StudyTransferSyntax transfer_syntax = StudyTransferSyntax::kExplicitLittleEndian;
  std::string patient_id;
  std::string patient_name;
  std::string accession;
  std::string study_uid;  // 2.25 form; series, frame of reference and SOP UIDs derive from it
  uint64_t seed = 0;      // pixel noise
};

// Writes the study into spec.out_dir (created if missing) as files named by instance number
// ("0001.dcm", ...). Returns the number of instances written.
// Errors: kInvalidArgument for an impossible spec (sizes, empty identifiers); the DCMTK or
// file system error naming the file otherwise.
Result<int> WriteStudy(const StudySpec& spec);

}  // namespace conduit::tools
