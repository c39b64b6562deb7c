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
  std::filesystem::path path;  // the file read
  // Top-level Pixel Data was the last element read from `path` (not inflated): its value, if
  // unchanged, is the file's last bytes.
  bool pixel_data_last = false;
  DcmDataset& dataset() { return *file.getDataset(); }
};

// Errors: kInvalidArgument "<path>: not readable DICOM (...)".
Result<std::unique_ptr<LoadedFile>> LoadLazily(const std::filesystem::path& path);

// Writes `file` in `xfer` to `out` (replaced atomically), with no group lengths and a file meta
// rebuilt from the dataset and `xfer`: nothing of the sender's meta survives (its AE titles,
// private information, or a required element with a wrong VR that would make the output
// unreadable); `zero_preamble` blanks the 128-byte preamble. Errors: kInvalidArgument when
// the dataset cannot be written in `xfer`; kInternal or an errno status otherwise.
Status SaveAtomically(DcmFileFormat& file, E_TransferSyntax xfer, const std::filesystem::path& out,
                      bool zero_preamble);

// How the Pixel Data value reached the output file.
enum class PixelDataWrite {
  kThroughDcmtk,     // DCMTK read it into memory and wrote it (or there was none)
  kCopiedFromInput,  // copied file to file in the kernel: copy_file_range (a reflink where the
                     // file system shares extents), sendfile between file systems; a
                     // buffered loop only where the kernel offers neither
};

// SaveAtomically for a loaded file, with the same bytes out, but an unchanged Pixel Data value
// is copied straight from the input file instead of being read into memory and written out.
// That happens when `xfer` is the input's own, explicit or implicit little endian; Pixel Data
// is native, of even defined length, neither loaded nor changed, and last in both the input
// file and the dataset; and the input still holds that element where DCMTK read it. Otherwise
// DCMTK writes everything. `allow_copy` false always takes the DCMTK path (for comparison).
// Errors as SaveAtomically; reading the input: an errno status, kDataLoss if it shrank.
// Pixel Data leaves `loaded`'s dataset while DCMTK writes: one call per LoadedFile at a time.
Result<PixelDataWrite> SaveAtomicallyCopyingPixelData(LoadedFile& loaded, E_TransferSyntax xfer,
                                                      const std::filesystem::path& out,
                                                      bool zero_preamble, bool allow_copy = true);

// The value of `key` in `item` (not its sub-items), all values, without padding; "" if absent.
std::string StringOf(DcmItem& item, const DcmTagKey& key);
// Without leading spaces and trailing spaces or NULs.
std::string TrimValue(std::string value);
// A multi-valued string split at backslashes (values untrimmed), and joined back.
std::vector<std::string> SplitValues(const std::string& value);
std::string JoinValues(const std::vector<std::string>& values);

}  // namespace conduit::deid_io
