#!/usr/bin/python3
"""One association, 600 MR instances: what Conduit's answer waits for, measured by switching
parts of the receive path off in a prototype build (receive-paths.patch), beside storescp.

Run by hand with a build of the patched tree (README.md in this folder):
  /usr/bin/python3 bench/experiments/receive_paths.py --build /tmp/proto-build [--tmp DIR]
Prints a markdown table on stdout; progress on stderr.
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(HERE))
from benchlib import cpu_seconds, free_ports, http_get, log, stop, sync_disk, wait_until  # noqa: E402

PDU = 131072
STUDIES = 4  # of MR 256x256x150: 600 instances, about 80 MB

# mode -> (what it is, the prototype's environment switches)
MODES = {
    "conduit": ("Conduit as built: file, fsyncs and index commit before the answer", {}),
    "pool": ("the same, with incoming files created ahead by a background thread",
             {"CONDUIT_EXP_POOL": "1"}),
    "wal": ("answer after a journal append + fdatasync; file, fsyncs, index later",
            {"CONDUIT_EXP_WAL": "1"}),
    "nodur": ("answer once the attributes are read: nothing durable, indexed or routed",
              {"CONDUIT_EXP_NODUR": "1"}),
    "nodur-lean": ("as nodur, and no early writeback, TCP_QUICKACK or free-space check",
                   {"CONDUIT_EXP_NODUR": "1", "CONDUIT_EXP_NOEW": "1", "CONDUIT_EXP_NOQA": "1",
                    "CONDUIT_EXP_NOCAP": "1"}),
    "storescp": ("DCMTK storescp -od DIR: a file per instance, no fsync", {}),
}


def echo_ok(port, aet, env):
    return subprocess.run(["echoscu", "-aet", "BENCH", "-aec", aet, "127.0.0.1", str(port)],
                          env=env, capture_output=True, timeout=20).returncode == 0


def received(http_port):
    for line in http_get(f"http://127.0.0.1:{http_port}/metrics").splitlines():
        if line.startswith("conduit_instances_received_total"):
            return int(float(line.split()[-1]))
    return 0


def one_round(mode, conduit, files, work):
    port, http_port = free_ports(2)
    env = dict(os.environ, TCP_NODELAY="1", **MODES[mode][1])
    os.makedirs(work)
    if mode == "storescp":
        aet = "STORESCP"
        os.makedirs(os.path.join(work, "out"))
        proc = subprocess.Popen(["storescp", "-aet", aet, "-pdu", str(PDU), "-od",
                                 os.path.join(work, "out"), str(port)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    else:
        aet = "CONDUIT"
        cfg = {"node": {"name": "bench", "data_dir": os.path.join(work, "data")},
               "dicom": {"ae_title": aet, "port": port, "bind": "127.0.0.1",
                         "max_pdu_bytes": PDU, "min_free_bytes": 0},
               "http": {"port": http_port}}
        path = os.path.join(work, "conduit.yaml")
        with open(path, "w") as f:
            json.dump(cfg, f)
        proc = subprocess.Popen([conduit, "serve", "--config", path], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(mode, lambda: proc.poll() is None and echo_ok(port, aet, env))
        sync_disk()
        cpu0 = cpu_seconds(proc.pid)
        t0 = time.monotonic()
        subprocess.run(["storescu", "-aet", "BENCH", "-aec", aet, "127.0.0.1", str(port)] + files,
                       env=env, check=True, capture_output=True)
        seconds = time.monotonic() - t0
        cpu = cpu_seconds(proc.pid) - cpu0
        durable_after = None
        if mode in ("conduit", "pool", "wal"):
            wait_until("every instance durable", lambda: received(http_port) >= len(files),
                       interval=0.02)
            durable_after = time.monotonic() - t0
        elif mode == "storescp":
            count = len(os.listdir(os.path.join(work, "out")))
            if count != len(files):
                raise SystemExit(f"storescp stored {count} of {len(files)} files")
        return {"rate": len(files) / seconds, "cpu_ms": 1000 * cpu / len(files),
                "durable_after": durable_after}
    finally:
        stop(proc)
        shutil.rmtree(work, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", required=True, help="build folder of the patched tree")
    parser.add_argument("--tmp", default=tempfile.gettempdir(), help="the disk under test")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--modes", default="conduit,pool,wal,nodur,storescp",
                        help=f"comma-separated, of: {', '.join(MODES)}")
    args = parser.parse_args()
    modes = args.modes.split(",")
    tmp = tempfile.mkdtemp(prefix="receive-paths-", dir=args.tmp)
    started = time.monotonic()
    try:
        files = []
        for i in range(STUDIES):
            out = os.path.join(tmp, "gen", str(i))
            subprocess.run([os.path.join(args.build, "conduit-make-study"), "--out", out,
                            "--modality", "MR", "--slices", "150", "--seed", str(100 + i)],
                           check=True, capture_output=True)
            files += sorted(os.path.join(out, f) for f in os.listdir(out))
        for f in files:  # into the page cache, for every receiver alike
            with open(f, "rb") as fh:
                fh.read()
        results = {m: [] for m in modes}
        for r in range(args.rounds):
            for m in modes:
                res = one_round(m, os.path.join(args.build, "conduit"), files,
                                os.path.join(tmp, f"run-{r}-{m}"))
                log(f"round {r + 1} {m}: {res['rate']:.0f}/s, {res['cpu_ms']:.2f} ms CPU")
                results[m].append(res)
        mount = subprocess.run(["findmnt", "-no", "SOURCE,FSTYPE", "-T", tmp],
                               capture_output=True, text=True).stdout.strip()
        print(f"Run {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
              f"{os.cpu_count()} CPUs, kernel {platform.release()}, temp dir on {mount}; "
              f"{len(files)} MR 256x256 instances on one association (storescu, TCP_NODELAY=1), "
              f"median of {args.rounds} interleaved rounds (range: slowest–fastest); "
              f"whole run {time.monotonic() - started:.0f} s.\n")
        print("| receiver | what it does before answering | instances/s | range | receiver CPU "
              "ms per instance | / storescp (median of per-round ratios) | all durable after |")
        print("|---|---|---:|---:|---:|---:|---:|")
        for m in modes:
            rates = [x["rate"] for x in results[m]]
            cpu = statistics.median(x["cpu_ms"] for x in results[m])
            ratio = "—"
            if "storescp" in results and m != "storescp":
                ratio = f"{statistics.median(a['rate'] / b['rate'] for a, b in zip(results[m], results['storescp'])):.2f}"
            after = [x["durable_after"] for x in results[m] if x["durable_after"] is not None]
            after = f"{statistics.median(after):.2f} s" if after else "—"
            print(f"| {m} | {MODES[m][0]} | {statistics.median(rates):.0f} | "
                  f"{min(rates):.0f}–{max(rates):.0f} | {cpu:.2f} | {ratio} | {after} |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
