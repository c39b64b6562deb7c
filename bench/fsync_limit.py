#!/usr/bin/python3
"""The disk-with-fsync limit: how fast this disk can make the given files durable the way a
careful receiver must (write to incoming/, rename it into a bucket directory under its new name,
fsync the file, fsync that directory: the order Conduit uses for a new key, which on a journaling
file system lets one commit cover the bytes and the name), with THREADS writers in parallel. No
network, no DICOM parsing, no index: the ceiling any durable C-STORE receiver on this disk can
reach for these files.

Usage: fsync_limit.py --out DIR [--threads N] FILE...
Prints one JSON line: {"files": n, "bytes": b, "seconds": s, "cpu_seconds": c}.
flush_floor() (imported by ingest_bench.py) measures the cost of one flush alone.
"""

import argparse
import hashlib
import json
import os
import threading
import time


def make_durable(src, out_dir, index):
    """Copies src into out_dir durably; returns the bytes written."""
    with open(src, "rb") as f:
        data = f.read()
    name = hashlib.sha256(f"{index}:{src}".encode()).hexdigest()
    tmp = os.path.join(out_dir, "incoming", name)
    bucket = os.path.join(out_dir, "instances", name[:2])
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        # Every name here is new: a plain rename never replaces anything.
        os.rename(tmp, os.path.join(bucket, name + ".dcm"))
        os.fsync(fd)
    finally:
        os.close(fd)
    dfd = os.open(bucket, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    return len(data)


def run(files, out_dir, threads):
    """Writes every file durably with `threads` workers; returns (bytes, seconds, cpu_seconds),
    the CPU this process used over the same interval."""
    os.makedirs(os.path.join(out_dir, "incoming"), exist_ok=True)
    for i in range(256):
        os.makedirs(os.path.join(out_dir, "instances", f"{i:02x}"), exist_ok=True)
    for d in (out_dir, os.path.join(out_dir, "instances")):
        dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
        os.fsync(dfd)
        os.close(dfd)
    lock = threading.Lock()
    queue = list(enumerate(files))
    total = [0]
    errors = []

    def worker():
        while True:
            with lock:
                if not queue:
                    return
                index, src = queue.pop()
            try:
                n = make_durable(src, out_dir, index)
            except OSError as e:
                errors.append(e)
                return
            with lock:
                total[0] += n

    started = time.monotonic()
    cpu_started = time.process_time()
    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    seconds = time.monotonic() - started
    cpu = time.process_time() - cpu_started
    if errors:
        raise errors[0]
    return total[0], seconds, cpu


def flush_floor(out_dir, syncs=200, record=4096):
    """The least a receiver that answers only once an instance is durable must still wait for
    after the instance's last byte has arrived, however it stores it: one small write into an
    already written file (no file created, no metadata changed) and its fdatasync. Returns the
    mean seconds per sync over `syncs` sequential ones."""
    os.makedirs(out_dir, exist_ok=True)
    fd = os.open(os.path.join(out_dir, "flush-floor"), os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        # Written, not fallocated: overwriting written blocks leaves fdatasync no metadata.
        os.write(fd, bytes(syncs * record))
        os.fsync(fd)
        block = b"\x5a" * record
        started = time.monotonic()
        for i in range(syncs):
            os.pwrite(fd, block, i * record)
            os.fdatasync(fd)
        return (time.monotonic() - started) / syncs
    finally:
        os.close(fd)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    nbytes, seconds, cpu = run(args.files, args.out, args.threads)
    print(json.dumps({"files": len(args.files), "bytes": nbytes, "seconds": seconds,
                      "cpu_seconds": cpu}))


if __name__ == "__main__":
    main()
