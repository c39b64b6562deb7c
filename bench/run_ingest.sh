#!/bin/sh
# C-STORE ingest benchmark: Conduit beside storescp and Orthanc, with the loopback and
# disk-with-fsync limits, all in one run. Prints a markdown report (progress on stderr).
# Usage: bench/run_ingest.sh [--senders N] [--quick] [--tmp DIR] [--json FILE]
# Needs: build/conduit, build/conduit-make-study, build/conduit-reference-tool (or
# CONDUIT_BUILD_DIR), DCMTK's storescu/storescp/echoscu and Debian's Orthanc on PATH.
set -eu
exec /usr/bin/python3 "$(dirname "$0")/ingest_bench.py" "$@"
