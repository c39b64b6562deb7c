// Reading one slice's pixels as rescaled values: Modality LUT applied (Hounsfield units for
// CT), clamped to the int16 range. Compressed transfer syntaxes are decoded with the codecs
// the program registered (JPEG, JPEG-LS, RLE).
#pragma once

#include <cstdint>
#include <vector>

#include "core/status.h"
#include "reference_tool/source_series.h"

namespace conduit::tools {

// Errors: kInvalidArgument when the file cannot be read or decoded, or its size, sample
// layout or bit depth differ from the series'.
Result<std::vector<int16_t>> ReadRescaledSlice(const SourceSlice& slice, int rows, int cols);

}  // namespace conduit::tools
