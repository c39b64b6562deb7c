#!/bin/sh
# STOW-RS ingest benchmark: Conduit's POST /dicom-web/studies beside Orthanc's DICOMweb plugin,
# with the client's own ceiling (a null HTTP sink), all in one run. Prints a markdown report
# (progress on stderr).
# Usage: bench/run_stow.sh [--clients N] [--studies N] [--repeat N] [--quick] [--tmp DIR]
#                          [--servers sink,orthanc,conduit] [--json FILE]
# Needs: build/conduit and build/conduit-make-study (or CONDUIT_BUILD_DIR), Debian's Orthanc
# and orthanc-dicomweb, /usr/bin/python3.
set -eu
exec /usr/bin/python3 "$(dirname "$0")/stow_bench.py" "$@"
