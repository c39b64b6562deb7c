#!/bin/sh
# What DICOM over TLS costs: C-STORE into Conduit's plain and TLS listeners beside storescp
# plain and with TLS, one association and four. Prints a markdown report (progress on stderr).
# Usage: bench/run_tls.sh [--repeat N] [--quick] [--tmp DIR]
# Needs: build/conduit, build/conduit-make-study, build/conduit-reference-tool (or
# CONDUIT_BUILD_DIR), DCMTK's storescu/storescp/echoscu and the openssl command on PATH.
set -eu
exec /usr/bin/python3 "$(dirname "$0")/tls_bench.py" "$@"
