#include "dicom/dcmtk_logging.h"

#include <dcmtk/oflog/oflog.h>

namespace conduit {

void QuietDcmtkLogging() { OFLog::configure(OFLogger::ERROR_LOG_LEVEL); }

}  // namespace conduit
