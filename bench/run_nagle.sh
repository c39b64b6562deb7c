#!/bin/sh
# C-STORE from a sender with Nagle's algorithm on (DCMTK 3.6.7's storescu without TCP_NODELAY=1)
# and off: Conduit beside storescp and Orthanc, one association, in the clear and over DICOM
# TLS. Prints a markdown report (progress on stderr).
# Usage: bench/run_nagle.sh [--repeat N] [--quick] [--tmp DIR]
# Needs: build/conduit, build/conduit-make-study, build/conduit-reference-tool (or
# CONDUIT_BUILD_DIR), DCMTK's storescu/storescp/echoscu, Debian's Orthanc and openssl on PATH.
set -eu
exec /usr/bin/python3 "$(dirname "$0")/nagle_bench.py" "$@"
