// DCMTK's own log (OFLog) writes to standard error in its own format, and some of its
// warnings quote element values. The gateway keeps it to errors, whatever Conduit's log
// level, so that log lines stay in one format and carry no identifiers.
#pragma once

namespace conduit {

// Call once at start, before any DCMTK use. Not thread-safe.
void QuietDcmtkLogging();

}  // namespace conduit
