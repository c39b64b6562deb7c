// DCMTK's decoders for the compressed transfer syntaxes Conduit decodes (JPEG baseline and
// lossless, JPEG-LS, RLE), registered once per process, whoever needs them first.
// Thread safety: may be called concurrently.
#pragma once

namespace conduit {

void RegisterPixelDecoders();

}  // namespace conduit
