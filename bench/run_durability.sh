#!/bin/sh
# Durability floor benchmark: what making one instance durable costs on this disk with
# Conduit's file layout, with a write-ahead journal, and with a bare journal append (the floor
# of any design), for one and several writers. No network, no DICOM, no index. Prints a
# markdown report (progress on stderr).
# Usage: bench/run_durability.sh [--repeat N] [--count N] [--threads N] [--tmp DIR] [--json FILE]
# Needs: build/conduit-bench-durability (or CONDUIT_BUILD_DIR), /usr/bin/python3.
set -eu
exec /usr/bin/python3 "$(dirname "$0")/durability_bench.py" "$@"
