// Reading and writing DICOM files for the de-identifier and the re-identifier (internal to
// deid): lazy loading, so large values stay in the input file until written out; writing to
// "<out>.part" and renaming, so a reader never sees half a file; multi-valued strings.
#pragma once

#include <dcmtk/config/osconfig.h>  // must come first among DCMTK headers
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcitem.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "dicom/deflated_file.h"

namespace conduit::deid_io {

// A file as loaded: values over 4 KiB stay in the file until used or written. A deflated
// file's dataset is read from an inflated temporary copy, which lives as long as this.
struct LoadedFile {
  DcmFileFormat file;
  E_TransferSyntax xfer = EXS_Unknown;  // the file's own transfer syntax (deflated included)
  std::unique_ptr<InflatedDataset> inflated;
  DcmDataset& dataset() { return *file.getDataset(); }
};

// Errors: kInvalidArgument "<path>: not readable DICOM (...)".
Result<std::unique_ptr<LoadedFile>> LoadLazily(const std::filesystem::path& path);

// Writes `file` in `xfer` to `out` (replaced atomically), with the file meta updated and no
// group lengths; `zero_preamble` blanks the 128-byte preamble. Errors: kInvalidArgument when
// the dataset cannot be written in `xfer`; kInternal or an errno status otherwise.
Status SaveAtomically(DcmFileFormat& file, E_TransferSyntax xfer, const std::filesystem::path& out,
                      bool zero_preamble);

// The value of `key` in `item` (not its sub-items), all values, without padding; "" if absent.
std::string StringOf(DcmItem& item, const DcmTagKey& key);
// Without leading spaces and trailing spaces or NULs.
std::string TrimValue(std::string value);
// A multi-valued string split at backslashes (values untrimmed), and joined back.
std::vector<std::string> SplitValues(const std::string& value);
std::string JoinValues(const std::vector<std::string>& values);

}  // namespace conduit::deid_io
