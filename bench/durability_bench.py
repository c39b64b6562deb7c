#!/usr/bin/python3
"""Runs build/conduit-bench-durability for each layout, instance size and writer count,
rounds interleaved with a fresh folder each, and prints medians with their ranges as markdown.
See bench/run_durability.sh and the header of bench/durability_floor.cc."""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import log, sync_disk  # noqa: E402

LAYOUTS = [
    ("fsync-rename", "file fsync, rename, bucket fsync, index-sized log append + fdatasync "
     "(Conduit's order before 2026-11-29)"),
    ("rename-fsync", "as fsync-rename, but the new file renamed into its bucket before its fsync "
     "(Conduit's order for a new key)"),
    ("journal", "write-ahead journal: file unsynced, bytes + record appended to a journal, one fdatasync"),
    ("journal+index", "journal, plus the index-sized log append + fdatasync (two syncs)"),
    ("append", "journal append + fdatasync only (the floor of any design)"),
]
# Sizes of the ingest benchmark's instances (bench/run_ingest.sh): MR 256x256 and CT 512x512,
# 16-bit, plus their headers.
SIZES = [("MR 256x256", 133 * 1024), ("CT 512x512", 526 * 1024)]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--count", type=int, default=600, help="instances per run")
    parser.add_argument("--threads", type=int, default=4, help="the parallel writer count")
    parser.add_argument("--tmp", default=None, help="folder on the disk under test")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    build = os.environ.get("CONDUIT_BUILD_DIR",
                           os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build"))
    binary = os.path.join(build, "conduit-bench-durability")
    if not os.access(binary, os.X_OK):
        sys.exit(f"{binary} missing: cmake --build build --target conduit-bench-durability")
    root = tempfile.mkdtemp(prefix="conduit-durability-", dir=args.tmp)
    started = time.monotonic()
    results = {}
    try:
        for r in range(args.repeat):
            for size_name, size in SIZES:
                for threads in (1, args.threads):
                    for layout, _ in LAYOUTS:
                        folder = os.path.join(root, f"{r}-{layout}-{size}-{threads}")
                        sync_disk()
                        out = subprocess.run(
                            [binary, "--layout", layout, "--threads", str(threads), "--count",
                             str(args.count), "--size", str(size), "--dir", folder],
                            check=True, capture_output=True, text=True, timeout=600).stdout
                        run = json.loads(out)
                        results.setdefault((size_name, threads, layout), []).append(run)
                        log(f"round {r + 1}: {size_name} {threads} writer(s) {layout}: "
                            f"{run['instances_per_s']:.0f}/s")
                        shutil.rmtree(folder, ignore_errors=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    print(f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, "
          f"{args.count} instances per run, median of {args.repeat} interleaved rounds "
          f"(range: slowest–fastest), whole run {time.monotonic() - started:.0f} s.\n")
    print("| instance | writers | layout | instances/s | range | ms per instance (per writer) "
          "| CPU ms per instance | log syncs per instance |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    rows = []
    for (size_name, threads, layout), runs in results.items():
        rate = [x["instances_per_s"] for x in runs]
        row = {
            "instance": size_name, "writers": threads, "layout": layout,
            "instances_per_s": statistics.median(rate), "min": min(rate), "max": max(rate),
            "ms_per_instance": statistics.median(x["ms_per_instance"] for x in runs),
            "cpu_ms_per_instance": statistics.median(x["cpu_ms_per_instance"] for x in runs),
            "syncs_per_instance": statistics.median(x["syncs_per_instance"] for x in runs),
        }
        rows.append(row)
        print(f"| {size_name} | {threads} | {layout} | {row['instances_per_s']:.0f} | "
              f"{row['min']:.0f}–{row['max']:.0f} | {row['ms_per_instance']:.3f} | "
              f"{row['cpu_ms_per_instance']:.3f} | {row['syncs_per_instance']:.2f} |")
    print()
    for layout, what in LAYOUTS:
        print(f"- `{layout}`: {what}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
