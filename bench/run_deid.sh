#!/bin/sh
# De-identification benchmark: `conduit deid` beside a pydicom de-identifier
# (bench/pydicom_deid.py), DCMTK dcmodify and Orthanc's /anonymize, plus `cp -r` of the same
# tree, on the same generated CT/MR/DX studies in one run, two cores each; and conduit deid's
# peak memory as the CT study grows. Prints a markdown report (progress on stderr).
# Usage: bench/run_deid.sh [--quick] [--repeat N] [--tmp DIR] [--json FILE] [--no-perf]
# Needs: build/conduit and build/conduit-make-study (or CONDUIT_BUILD_DIR), DCMTK's dcmodify,
# Debian's Orthanc and /usr/bin/python3 with pydicom; perf (optional) for the profile.
set -eu
exec /usr/bin/python3 "$(dirname "$0")/deid_bench.py" "$@"
