#!/bin/sh
# Added-latency benchmark: study complete -> AI tool holding it, and result ready -> PACS
# answered, for each tool kind (executable, dimse, dicomweb when its simulator is built), with
# Orthanc as PACS. Prints a markdown report (progress on stderr).
# Usage: bench/run_latency.sh [--studies N] [--tools executable,dimse,dicomweb] [--tmp DIR]
#                             [--slices N] [--size N] [--json FILE] [--dead-neighbour]
#                             [--stow-delivery]
# Needs: build/conduit, build/conduit-make-study, build/conduit-reference-tool (or
# CONDUIT_BUILD_DIR), DCMTK's storescu/storescp/echoscu/dcmdump and Debian's Orthanc.
set -eu
exec /usr/bin/python3 "$(dirname "$0")/latency_bench.py" "$@"
