#include "reference_tool/slice_reader.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcxfer.h>

#include <algorithm>
#include <cmath>

namespace conduit::tools {

Result<std::vector<int16_t>> ReadRescaledSlice(const SourceSlice& slice, int rows, int cols) {
  const std::string where = "read pixels " + slice.path.string();
  DcmFileFormat file;
  OFCondition cond = file.loadFile(slice.path.c_str());
  if (cond.bad()) return InvalidArgument(where + ": " + cond.text());
  DcmDataset& ds = *file.getDataset();
  cond = ds.chooseRepresentation(EXS_LittleEndianExplicit, nullptr);
  if (cond.bad() || !ds.canWriteXfer(EXS_LittleEndianExplicit)) {
    return InvalidArgument(where + ": cannot decode transfer syntax " +
                           DcmXfer(ds.getOriginalXfer()).getXferName());
  }
  Uint16 r = 0, c = 0, samples = 0, allocated = 0, stored = 0, high = 0, representation = 0;
  ds.findAndGetUint16(DCM_Rows, r);
  ds.findAndGetUint16(DCM_Columns, c);
  ds.findAndGetUint16(DCM_SamplesPerPixel, samples);
  ds.findAndGetUint16(DCM_BitsAllocated, allocated);
  ds.findAndGetUint16(DCM_BitsStored, stored);
  ds.findAndGetUint16(DCM_HighBit, high);
  ds.findAndGetUint16(DCM_PixelRepresentation, representation);
  if (r != rows || c != cols || samples != 1) {
    return InvalidArgument(where + ": size or samples per pixel differ from the series");
  }
  if ((allocated != 8 && allocated != 16) || stored == 0 || stored > allocated ||
      high + 1 < stored || high >= allocated) {
    return InvalidArgument(where + ": unsupported bit layout");
  }
  Float64 slope = 1;
  Float64 intercept = 0;
  if (ds.findAndGetFloat64(DCM_RescaleSlope, slope).bad()) slope = 1;
  if (ds.findAndGetFloat64(DCM_RescaleIntercept, intercept).bad()) intercept = 0;

  const size_t n = static_cast<size_t>(rows) * static_cast<size_t>(cols);
  const int shift = high + 1 - stored;
  const uint32_t mask = (stored >= 32) ? 0xffffffffu : ((1u << stored) - 1u);
  const uint32_t sign_bit = 1u << (stored - 1);
  auto rescale = [&](uint32_t word) {
    uint32_t bits = (word >> shift) & mask;
    double raw = (representation == 1 && (bits & sign_bit) != 0)
                     ? static_cast<double>(static_cast<int64_t>(bits) - (int64_t{1} << stored))
                     : static_cast<double>(bits);
    double v = std::round(raw * slope + intercept);
    return static_cast<int16_t>(std::clamp(v, -32768.0, 32767.0));
  };
  std::vector<int16_t> out(n);
  if (allocated == 16) {
    const Uint16* words = nullptr;
    unsigned long count = 0;
    cond = ds.findAndGetUint16Array(DCM_PixelData, words, &count);
    if (cond.bad() || words == nullptr || count < n) {
      return InvalidArgument(where + ": pixel data missing or short");
    }
    for (size_t i = 0; i < n; ++i) out[i] = rescale(words[i]);
  } else {
    const Uint8* bytes = nullptr;
    unsigned long count = 0;
    cond = ds.findAndGetUint8Array(DCM_PixelData, bytes, &count);
    if (cond.bad() || bytes == nullptr || count < n) {
      return InvalidArgument(where + ": pixel data missing or short");
    }
    for (size_t i = 0; i < n; ++i) out[i] = rescale(bytes[i]);
  }
  return out;
}

}  // namespace conduit::tools
