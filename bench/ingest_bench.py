#!/usr/bin/python3
"""C-STORE ingest benchmark: Conduit beside DCMTK storescp and Orthanc, same studies, same
sender (DCMTK storescu), same run; plus the loopback/sender limit (storescp --ignore) and the
disk-with-fsync limit and, for one association, the flush floor (bench/fsync_limit.py). Prints
a markdown report on stdout.

Run by hand (never part of the test suite): bench/run_ingest.sh [--senders N] [--quick].
"""

import argparse
import datetime
import hashlib
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # keep bench/ free of __pycache__
sys.path.insert(0, HERE)
import fsync_limit  # noqa: E402
from benchlib import stop, log, log_tail, free_port, free_ports, wait_until, http_get, vm_hwm_kib, cpu_seconds, sync_disk  # noqa: E402

ROOT = os.path.dirname(HERE)
BUILD = os.path.abspath(os.environ.get("CONDUIT_BUILD_DIR", os.path.join(ROOT, "build")))
CONDUIT = os.path.join(BUILD, "conduit")
MAKE_STUDY = os.path.join(BUILD, "conduit-make-study")
REFERENCE_TOOL = os.path.join(BUILD, "conduit-reference-tool")
ENV = dict(os.environ, TCP_NODELAY="1")
PDU = 131072  # every receiver is given the same maximum PDU (Conduit's default)

# name, modality, extra make-study args, number of studies of that shape
STUDIES_FULL = [
    ("CT 512x512x100", "ct100", "CT", ["--slices", "100", "--rows", "512", "--cols", "512"], 1),
    ("CT 512x512x300", "ct300", "CT", ["--slices", "300", "--rows", "512", "--cols", "512"], 1),
    ("MR 256x256x150", "mr150", "MR", ["--slices", "150", "--rows", "256", "--cols", "256"], 1),
    ("DX 3000x2500 x20", "dx20", "DX", ["--rows", "3000", "--cols", "2500"], 20),
]
STUDIES_QUICK = [
    ("CT 512x512x20", "ct20", "CT", ["--slices", "20"], 1),
    ("CT 512x512x60", "ct60", "CT", ["--slices", "60"], 1),
    ("MR 256x256x30", "mr30", "MR", ["--slices", "30"], 1),
    ("DX 3000x2500 x3", "dx3", "DX", [], 3),
]
# The CT 100 and MR studies alone: for the benches that compare one condition on and off
# (Nagle, TLS).
CT_MR_FULL = [STUDIES_FULL[0], STUDIES_FULL[2]]
CT_MR_QUICK = [STUDIES_QUICK[0], STUDIES_QUICK[2]]


def echo_ok(port, aet, args=()):
    """C-ECHO succeeds; `args`: more echoscu options (e.g. TLS)."""
    return subprocess.run(["echoscu", "-aet", "BENCH", "-aec", aet, *args, "127.0.0.1", str(port)],
                          env=ENV, capture_output=True, timeout=20).returncode == 0


# ---------------------------------------------------------------- receivers
# Each receiver: start(work_dir) -> (proc, port, aet); received(ctx) -> instance count or None.

class Storescp:
    """DCMTK storescp: writes each object to a file, no fsync. --fork for parallel senders."""

    def __init__(self, ignore, fork):
        self.ignore, self.fork = ignore, fork
        self.name = "loopback (storescp --ignore)" if ignore else "storescp"

    def start(self, work):
        self.out = os.path.join(work, "storescp")
        os.makedirs(self.out)
        self.port = free_port()
        cmd = ["storescp", "-aet", "STORESCP", "-pdu", str(PDU), "-od", self.out]
        if self.ignore:
            cmd.append("--ignore")
        if self.fork:
            cmd.append("--fork")
        cmd.append(str(self.port))
        self.cmd = cmd
        self.log = open(os.path.join(work, "storescp.log"), "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=ENV)
        wait_until("storescp", lambda: echo_ok(self.port, "STORESCP"))
        return "STORESCP"

    def received(self):
        if self.ignore:
            return None
        return sum(len(files) for _, _, files in os.walk(self.out))

    def peak_pid(self):
        # With --fork every association is a child process: the parent's peak says nothing.
        return None if self.fork else self.proc.pid

    def finish(self):
        stop(self.proc)
        self.log.close()


class Orthanc:
    """Debian's Orthanc, private config, storage and SQLite index in the run's temp dir."""

    name = "Orthanc"

    def __init__(self, senders):
        self.threads = max(4, senders)

    def start(self, work):
        root = os.path.join(work, "orthanc")
        os.makedirs(os.path.join(root, "db"))
        self.port, self.http_port = free_ports(2)
        cfg = {
            "Name": "bench", "StorageDirectory": os.path.join(root, "db"),
            "IndexDirectory": os.path.join(root, "db"), "DicomAet": "ORTHANC",
            "DicomPort": self.port, "HttpPort": self.http_port, "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False, "DicomAlwaysAllowStore": True,
            "DicomCheckCalledAet": False, "Plugins": [], "StorageCompression": False,
            "SyncStorageArea": True, "MaximumPduLength": PDU,
            "DicomThreadsCount": self.threads, "StableAge": 3600,
        }
        path = os.path.join(root, "orthanc.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        self.cfg = cfg
        self.log = open(os.path.join(root, "orthanc.log"), "w")
        self.proc = subprocess.Popen(["Orthanc", path], stdout=self.log,
                                     stderr=subprocess.STDOUT, env=ENV)
        wait_until("Orthanc HTTP", lambda: http_get(f"http://127.0.0.1:{self.http_port}/system"))
        wait_until("Orthanc DICOM", lambda: echo_ok(self.port, "ORTHANC"))
        return "ORTHANC"

    def received(self):
        stats = json.loads(http_get(f"http://127.0.0.1:{self.http_port}/statistics"))
        return int(stats["CountInstances"])

    def peak_pid(self):
        return self.proc.pid

    def finish(self):
        stop(self.proc)
        self.log.close()


class Conduit:
    """Conduit with a route that matches every instance (so router and assembler do their
    per-instance work) and a quiet period longer than the run (so no job competes). With
    routed=False, no route: the instance is made durable and acknowledged, nothing more (this
    isolates what the router and study assembler cost per instance)."""

    def __init__(self, routed=True, wrap=(), dicom_extra=None):
        self.routed = routed
        self.wrap = list(wrap)  # e.g. strace: then proc is the wrapper, pid is Conduit
        self.dicom_extra = dicom_extra or {}  # more `dicom:` settings (e.g. tls)
        self.name = "Conduit" if routed else "Conduit, no route"

    def start(self, work):
        root = os.path.join(work, "conduit")
        os.makedirs(root)
        self.port, self.http_port = free_ports(2)
        cfg = {
            "node": {"name": "bench", "data_dir": os.path.join(root, "data"), "log_level": "info"},
            "dicom": {"ae_title": "CONDUIT", "port": self.port, "bind": "127.0.0.1",
                      "min_free_bytes": 0, "max_pdu_bytes": PDU, "max_associations": 32,
                      **self.dicom_extra},
            "http": {"port": self.http_port},
        }
        if self.routed:
            cfg["tools"] = [{"name": "reference", "kind": "executable",
                             "command": [REFERENCE_TOOL]}]
            cfg["routes"] = [{"name": "all", "tool": "reference", "stable_after": "1h"}]
        path = os.path.join(root, "conduit.yaml")
        with open(path, "w") as f:
            json.dump(cfg, f, indent=2)
        self.cfg = cfg
        self.log = open(os.path.join(root, "conduit.log"), "w")
        self.proc = subprocess.Popen(self.wrap + [CONDUIT, "serve", "--config", path],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=ENV)

        def up():
            if self.proc.poll() is not None:
                raise SystemExit(f"conduit exited with {self.proc.returncode}")
            return echo_ok(self.port, "CONDUIT")
        wait_until("Conduit", up)
        self.pid = self.proc.pid
        if self.wrap:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                children = f.read().split()
            self.pid = int(children[0]) if children else self.proc.pid  # valgrind: no child
        return "CONDUIT"

    def received(self):
        count = 0
        for line in http_get(f"http://127.0.0.1:{self.http_port}/metrics").splitlines():
            if line.startswith("conduit_instances_received_total"):
                count = int(float(line.split()[-1]))
            if line.startswith("conduit_ingest_seconds_sum"):
                # Sum over instances of (dataset received -> spool and index durable).
                self.ingest_seconds = float(line.split()[-1])
        return count

    def peak_pid(self):
        return self.pid

    def finish(self):
        if self.wrap and self.proc.poll() is None and self.pid != self.proc.pid:
            os.kill(self.pid, 15)  # the wrapper exits with Conduit
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        stop(self.proc)
        self.log.close()


# ---------------------------------------------------------------- senders

def shares(files, n):
    out = [files[i::n] for i in range(n)]
    return [s for s in out if s]


def send(port, aet, files, senders, work, env=None, args=()):
    """Runs `senders` storescu processes at once, each with its share of the files; returns the
    wall-clock seconds from the first start to the last exit. `env`: the senders' environment
    (default ENV, which has TCP_NODELAY=1); `args`: more storescu options (e.g. TLS)."""
    procs = []
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    for i, share in enumerate(shares(files, senders)):
        out = open(os.path.join(work, f"storescu-{i}.log"), "w")
        cmd = ["storescu", "-aet", "BENCH", "-aec", aet, "-nh", *args, "127.0.0.1", str(port)] + share
        procs.append((subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env or ENV),
                      out))
    # Popen.wait(timeout=...) polls in steps of up to 50 ms, too coarse for runs of 0.1 s:
    # wait blocking (waitpid), with a watchdog that kills a sender stuck for 30 minutes.
    watchdog = threading.Timer(1800, lambda: [p.kill() for p, _ in procs if p.poll() is None])
    watchdog.start()
    failed = []
    for p, out in procs:
        rc = p.wait()
        out.close()
        if rc != 0:
            failed.append(rc)
    seconds = time.monotonic() - started
    watchdog.cancel()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    problems = []
    for i in range(len(procs)):
        with open(os.path.join(work, f"storescu-{i}.log")) as f:
            problems += [ln.strip() for ln in f if ln.startswith(("E:", "F:"))]
    if failed or problems:
        raise RuntimeError(f"storescu failed (exit {failed}): {problems[:5]}")
    return seconds, cpu


# ---------------------------------------------------------------- run

def machine_info(tmp_root):
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "unknown"
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    df = subprocess.run(["df", "-hT", tmp_root], capture_output=True, text=True).stdout
    fs = df.strip().splitlines()[-1].split()
    mount = subprocess.run(["findmnt", "-no", "SOURCE,FSTYPE,OPTIONS", "-T", tmp_root],
                           capture_output=True, text=True).stdout.strip()
    versions = {
        "storescp/storescu": subprocess.run(["storescp", "--version"], capture_output=True,
                                            text=True).stdout.splitlines()[0].strip(" $"),
        "Orthanc": subprocess.run(["Orthanc", "--version"], capture_output=True,
                                  text=True).stdout.splitlines()[0],
    }
    rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "src"],
                           capture_output=True, text=True).stdout.strip()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(), "cpu": cpu, "mem": mem, "kernel": platform.release(),
        "tmp": tmp_root, "fs": f"{fs[0]} {fs[1]} ({mount})", "versions": versions,
        "conduit": f"git {rev}" + (" + uncommitted changes in src/" if dirty else ""),
    }


def generate(studies, gen_dir):
    sets = []
    for label, key, modality, args, count in studies:
        d = os.path.join(gen_dir, key)
        for i in range(count):
            out = os.path.join(d, f"{i:03d}") if count > 1 else d
            subprocess.run([MAKE_STUDY, "--out", out, "--modality", modality, "--seed",
                            str(1000 + i)] + args, check=True, env=ENV, capture_output=True)
        files = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(d) for f in fs)
        nbytes = sum(os.path.getsize(f) for f in files)
        # Read once so every receiver sees the sender read from the page cache alike.
        for f in files:
            with open(f, "rb") as fh:
                while fh.read(1 << 20):
                    pass
        sets.append({"label": label, "key": key, "files": files, "bytes": nbytes})
        log(f"generated {label}: {len(files)} files, {nbytes / 1e6:.1f} MB")
    return sets


def measure_receiver(make, study, senders, tmp, sender_env=None):
    work = tempfile.mkdtemp(prefix="run-", dir=tmp)
    receiver = make()
    try:
        aet = receiver.start(work)
    except Exception:
        # Its log is in `work`, removed with the run: say what it said before giving up.
        log_file = getattr(getattr(receiver, "log", None), "name", None)
        if log_file:
            log(f"{receiver.name} did not start; the end of {log_file}:\n{log_tail(log_file)}")
        proc = getattr(receiver, "proc", None)
        if proc is not None:
            stop(proc)
        raise
    sync_disk()
    try:
        pid = receiver.peak_pid()
        # CPU of the round only: the receiver's start-up is not the round's work.
        cpu_before = cpu_seconds(pid) if pid else None
        # A receiver may ask its senders for options (TLS).
        seconds, sender_cpu = send(receiver.port, aet, study["files"], senders, work, sender_env,
                                   getattr(receiver, "sender_args", ()))
        peak = vm_hwm_kib(pid) if pid else None
        cpu = cpu_seconds(pid) - cpu_before if pid else None
        got = receiver.received()
    finally:
        receiver.finish()
    if got is not None and got != len(study["files"]):
        raise RuntimeError(f"{receiver.name} holds {got} of {len(study['files'])} instances")
    cmd = getattr(receiver, "cmd", None)
    shutil.rmtree(work, ignore_errors=True)
    sync_disk()
    return {"seconds": seconds, "peak_kib": peak, "cmd": cmd, "cpu": cpu,
            "sender_cpu": sender_cpu,
            "ingest_seconds": getattr(receiver, "ingest_seconds", None)}


STRACE_LINE = re.compile(r"^(\d+)\s+(\w+)\((.*)\)\s+=\s+(-?\d+).*<([\d.]+)>\s*$")


def classify_sync(path):
    if path is None:
        return "other"
    if path.endswith("-wal"):
        return "index commit (SQLite WAL, fdatasync)"
    if path.endswith((".sqlite", ".db")):
        return "index checkpoint (SQLite database)"
    # A new key is synced under its final name (renamed before its fsync), a replaced one in
    # incoming/.
    if path.endswith((".part", ".dcm")) or "/incoming/" in path:
        return "instance file"
    if "/spool/instances" in path:
        return "spool directory"
    return "other"


def profile_conduit(study, routed, tmp):
    """One association with Conduit under `strace -f -T --seccomp-bpf` (only the traced calls
    stop the process): every fsync/fdatasync Conduit makes, by what it syncs, per instance. strace slows every system call: the
    counts are exact, the times are inflated."""
    work = tempfile.mkdtemp(prefix="profile-", dir=tmp)
    trace = os.path.join(work, "strace.txt")
    receiver = Conduit(routed, wrap=["strace", "-f", "-T", "--seccomp-bpf", "-e",
                                     "trace=openat,fsync,fdatasync", "-o", trace])
    aet = receiver.start(work)
    sync_disk()
    try:
        seconds, _ = send(receiver.port, aet, study["files"], 1, work)
    finally:
        receiver.finish()
    fds = {}  # (tid, fd) -> path
    classes = {}
    with open(trace) as f:
        for line in f:
            m = STRACE_LINE.match(line)
            if not m:
                continue
            tid, call, args, ret, took = m.groups()
            if call == "openat" and int(ret) >= 0:
                path = args.split('"')[1] if '"' in args else None
                fds[(tid, int(ret))] = path
            elif call in ("fsync", "fdatasync"):
                fd = int(args.split(",")[0])
                path = fds.get((tid, fd))
                if path is None:  # opened by another thread (the SQLite connection)
                    path = next((p for (t, d), p in fds.items() if d == fd and p), None)
                c = classes.setdefault(classify_sync(path), [0, 0.0])
                c[0] += 1
                c[1] += float(took)
    shutil.rmtree(work, ignore_errors=True)
    return {"seconds": seconds, "files": len(study["files"]), "classes": classes}


def measure_disk(study, threads, tmp):
    work = tempfile.mkdtemp(prefix="disk-", dir=tmp)
    sync_disk()
    _, seconds, cpu = fsync_limit.run(study["files"], work, threads)
    shutil.rmtree(work, ignore_errors=True)
    sync_disk()
    return {"seconds": seconds, "peak_kib": None, "cpu": cpu, "sender_cpu": 0.0}


def measure_flush(study, tmp):
    """The flush floor (fsync_limit.flush_floor), scaled to the study: seconds the study's
    instances would spend in it, one after another."""
    work = tempfile.mkdtemp(prefix="flush-", dir=tmp)
    sync_disk()
    per_sync = fsync_limit.flush_floor(work)
    shutil.rmtree(work, ignore_errors=True)
    return {"seconds": per_sync * len(study["files"]), "peak_kib": None, "cpu": None,
            "sender_cpu": 0.0}


def prepare_run(prefix, tmp_root):
    """Checks that the binaries are built, makes the run's temp folder under `tmp_root`, reads
    the machine's facts, and switches this module to private copies of the binaries, so that a
    rebuild of build/ during the run cannot mix two of them. Returns (temp folder, facts)."""
    global CONDUIT, MAKE_STUDY, REFERENCE_TOOL
    for exe in (CONDUIT, MAKE_STUDY, REFERENCE_TOOL):
        if not os.access(exe, os.X_OK):
            sys.exit(f"missing {exe}: build the conduit, conduit-make-study and "
                     f"conduit-reference-tool targets first")
    tmp = tempfile.mkdtemp(prefix=prefix, dir=tmp_root)
    info = machine_info(tmp)
    os.makedirs(os.path.join(tmp, "bin"))
    CONDUIT, MAKE_STUDY, REFERENCE_TOOL = (
        shutil.copy2(exe, os.path.join(tmp, "bin")) for exe in (CONDUIT, MAKE_STUDY, REFERENCE_TOOL))
    with open(CONDUIT, "rb") as f:
        info["conduit"] += (f", build/conduit sha256 {hashlib.sha256(f.read()).hexdigest()[:12]}"
                            f" built {datetime.datetime.fromtimestamp(os.path.getmtime(CONDUIT), datetime.timezone.utc):%H:%M UTC}")
    return tmp, info


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--senders", type=int, default=4, help="parallel storescu processes")
    parser.add_argument("--quick", action="store_true", help="small studies (smoke test)")
    parser.add_argument("--tmp", default=tempfile.gettempdir(),
                        help="where studies and receivers' data live (default: system temp)")
    parser.add_argument("--repeat", type=int, default=5,
                        help="rounds per study and scenario; the table shows the median")
    parser.add_argument("--json", help="also write the raw results here")
    args = parser.parse_args()

    run_started = time.monotonic()
    tmp, info = prepare_run("conduit-bench-", args.tmp)
    results = {}  # (study key, scenario, receiver) -> measurement
    try:
        studies = generate(STUDIES_QUICK if args.quick else STUDIES_FULL, os.path.join(tmp, "gen"))
        scenarios = [("single", 1), ("parallel", args.senders)]
        for study in studies:
            for scenario, n in scenarios:
                fork = n > 1
                makers = {
                    "loopback": lambda: Storescp(ignore=True, fork=fork),
                    "storescp": lambda: Storescp(ignore=False, fork=fork),
                    "orthanc": lambda: Orthanc(n),
                    "conduit": Conduit,
                    "conduit-noroute": lambda: Conduit(routed=False),
                    "disk": None,
                }
                if n == 1:
                    makers["flush"] = None
                order = list(makers)
                runs = {k: [] for k in order}
                for rep in range(args.repeat):
                    # Rotate the order each round so no receiver always follows the same one.
                    for key in order[rep % len(order):] + order[:rep % len(order)]:
                        if key == "disk":
                            r = measure_disk(study, n, tmp)
                        elif key == "flush":
                            r = measure_flush(study, tmp)
                        else:
                            r = measure_receiver(makers[key], study, n, tmp)
                        runs[key].append(r)
                        log(f"{study['label']} / {scenario} x{n} / {key} #{rep + 1}: "
                            f"{r['seconds']:.2f} s, peak {r['peak_kib']} KiB")
                for key, rs in runs.items():
                    secs = sorted(r["seconds"] for r in rs)
                    peaks = [r["peak_kib"] for r in rs if r["peak_kib"]]
                    results[(study["key"], scenario, key)] = {
                        "seconds": statistics.median(secs), "all_seconds": secs,
                        "all_seconds_raw": [r["seconds"] for r in rs],
                        "peak_kib": max(peaks) if peaks else None,
                        "ingest_seconds": [r.get("ingest_seconds") for r in rs],
                        "cpu": [r.get("cpu") for r in rs],
                        "sender_cpu": [r.get("sender_cpu") for r in rs],
                    }
        profile_study = next(s for s in studies if s["key"].startswith("mr"))
        profiles = {}
        if shutil.which("strace"):
            for routed in (True, False):
                log(f"profile: {profile_study['label']}, 1 association, Conduit under strace, "
                    f"{'with' if routed else 'without'} route ...")
                profiles[routed] = profile_conduit(profile_study, routed, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    total = time.monotonic() - run_started
    report = render(info, studies, results, args, total)
    report += render_profile(profile_study, profiles)
    print(report)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"info": info, "total_seconds": total,
                       "studies": [{k: s[k] for k in ("label", "key", "bytes")} |
                                   {"files": len(s["files"])} for s in studies],
                       "results": [{"study": k[0], "scenario": k[1], "receiver": k[2]} | v
                                   for k, v in results.items()]}, f, indent=1)


NAMES = {"loopback": "loopback limit (storescp --ignore)", "storescp": "storescp (no fsync)",
         "orthanc": "Orthanc", "conduit": "**Conduit**",
         "conduit-noroute": "Conduit, no route (no assembler work)",
         "disk": "disk-with-fsync limit"}


def render(info, studies, results, args, total):
    n = args.senders
    out = []
    out.append(f"Run {info['date']}, {info['nproc']} CPUs ({info['cpu']}), {info['mem']} RAM, "
               f"kernel {info['kernel']}, temp dir {info['tmp']} on {info['fs']}; "
               f"Conduit {info['conduit']}; {info['versions']['storescp/storescu']}; "
               f"{info['versions']['Orthanc']}. Whole run {total:.0f} s.")
    out.append("")
    out.append(f"Each figure is the median of {args.repeat} rounds (a fresh receiver process per "
               "round, rounds interleaved); the range column shows the slowest and fastest round.")
    out.append("")
    out.append("CPU columns: CPU time used during the round (user + system) as a share of the "
               "round's wall time, in cores (the machine has "
               f"{info['nproc']}): the receiver's, and all storescu senders' together.")
    out.append("")
    out.append("| study | scenario | receiver | instances/s | MB/s | range, instances/s | "
               "peak RSS (VmHWM) | receiver CPU | senders CPU |")
    out.append("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for s in studies:
        count = len(s["files"])
        label = f"{s['label']} ({count} files, {s['bytes'] / 1e6:.0f} MB)"
        for scenario, senders in (("single", 1), ("parallel", n)):
            sc = "1 association" if senders == 1 else f"{senders} parallel senders"
            for key in ("loopback", "storescp", "orthanc", "conduit", "conduit-noroute", "disk"):
                r = results[(s["key"], scenario, key)]
                peak = f"{r['peak_kib'] / 1024:.0f} MiB" if r["peak_kib"] else "—"
                name = NAMES[key] if key != "disk" else (
                    f"disk-with-fsync limit ({senders} thread{'s' if senders > 1 else ''})")
                lo, hi = count / max(r["all_seconds"]), count / min(r["all_seconds"])
                raw = r["all_seconds_raw"]
                mid = raw.index(sorted(raw)[len(raw) // 2])  # the median round
                rcpu = r["cpu"][mid]
                rcpu = f"{rcpu / raw[mid]:.2f}" if rcpu is not None else "—"
                scpu = f"{r['sender_cpu'][mid] / raw[mid]:.2f}" if key != "disk" else "—"
                out.append(f"| {label} | {sc} | {name} | {count / r['seconds']:.1f} | "
                           f"{s['bytes'] / 1e6 / r['seconds']:.1f} | {lo:.0f}–{hi:.0f} | {peak} | "
                           f"{rcpu} | {scpu} |")
    out.append("")
    out.append("Ratios (throughput ratios are equal in instances/s and MB/s: same files):")
    out.append("")
    out.append("| study | Conduit / storescp, 1 assoc. (target ≥ 1) | "
               f"Conduit / Orthanc, {n} senders (target ≥ 2) | "
               f"Conduit / disk-with-fsync limit, {n} senders (target ≥ 0.5) | "
               f"Conduit / loopback limit, {n} senders | Conduit / Orthanc, 1 assoc. | "
               "bound: any durable receiver / storescp, 1 assoc. |")
    out.append("|---|---:|---:|---:|---:|---:|---:|")

    def ratio(study, scenario, a, b):
        return results[(study, scenario, b)]["seconds"] / results[(study, scenario, a)]["seconds"]

    for s in studies:
        k = s["key"]
        r1 = ratio(k, "single", "conduit", "storescp")
        r2 = ratio(k, "parallel", "conduit", "orthanc")
        r3 = ratio(k, "parallel", "conduit", "disk")
        r4 = ratio(k, "parallel", "conduit", "loopback")
        r5 = ratio(k, "single", "conduit", "orthanc")
        # On one association the sender waits for each answer, and a durable receiver can
        # answer no sooner than the loopback limit's receiver plus one flush.
        bound = results[(k, "single", "storescp")]["seconds"] / (
            results[(k, "single", "loopback")]["seconds"] + results[(k, "single", "flush")]["seconds"])

        def mark(v, t):
            return f"{v:.2f} {'met' if v >= t else 'NOT met'}"
        out.append(f"| {s['label']} | {mark(r1, 1)} | {mark(r2, 2)} | {mark(r3, 0.5)} | "
                   f"{r4:.2f} | {r5:.2f} | {bound:.2f} |")
    out.append("")
    floors = ", ".join(
        f"{s['label']} {1000 * results[(s['key'], 'single', 'flush')]['seconds'] / len(s['files']):.3f}"
        for s in studies)
    out.append("The bound: on one association `storescu` sends an instance only once the previous "
               "one is answered, so a receiver that answers only when the instance is durable "
               "needs at least the loopback limit's time per instance (the same sender, a "
               "receiver that discards) plus one flush: a 4 KiB write into an already written "
               "file and its `fdatasync` (`bench/fsync_limit.py`, 200 in a row, median of the "
               f"rounds; ms per flush: {floors}). Below 1, no such receiver can reach storescp "
               "on this disk in this run.")
    out.append("")
    out.append("Where Conduit's time goes: mean time per instance from dataset received to durable "
               "(rename, file fsync, directory fsync, index commit; Conduit's own "
               "`conduit_ingest_seconds`), against the wall time per instance, median round:")
    out.append("")
    out.append("| study | scenario | wall ms/instance | durable ms/instance | durable share |")
    out.append("|---|---|---:|---:|---:|")
    for s in studies:
        for scenario, senders in (("single", 1), ("parallel", n)):
            r = results[(s["key"], scenario, "conduit")]
            rounds = sorted(zip(r["all_seconds_raw"], r["ingest_seconds"]))
            wall, durable = rounds[len(rounds) // 2]
            count = len(s["files"])
            # With parallel senders the durable times overlap: per instance, wall time is the
            # share of the run each instance costs, durable time is each instance's own wait.
            out.append(f"| {s['label']} | {senders} sender(s) | {1000 * wall / count:.2f} | "
                       f"{1000 * durable / count:.2f} | "
                       f"{durable / (wall * senders):.0%} of sender time |")
    out.append("")
    out.append("Conduit's peak memory (VmHWM of a fresh process per row) by study size:")
    out.append("")
    out.append("| study | MB sent | Conduit, 1 assoc. | Conduit, "
               f"{n} senders | Orthanc, 1 assoc. | Orthanc, {n} senders | storescp, 1 assoc. |")
    out.append("|---|---:|---:|---:|---:|---:|---:|")
    for s in studies:
        k = s["key"]

        def mib(scenario, key):
            v = results[(k, scenario, key)]["peak_kib"]
            return f"{v / 1024:.0f} MiB" if v else "—"
        out.append(f"| {s['label']} | {s['bytes'] / 1e6:.0f} | {mib('single', 'conduit')} | "
                   f"{mib('parallel', 'conduit')} | {mib('single', 'orthanc')} | "
                   f"{mib('parallel', 'orthanc')} | {mib('single', 'storescp')} |")
    return "\n".join(out)


def render_profile(study, profiles):
    if not profiles:
        return "\n\n(strace not found: no fsync profile)"
    out = ["", "", f"fsync profile: {study['label']}, 1 association, Conduit run under `strace -f -T "
           "--seccomp-bpf -e trace=openat,fsync,fdatasync` (counts exact; strace inflates "
           "the times):", "",
           "| Conduit | what is synced | syncs per instance | mean ms per sync | "
           "ms per instance |", "|---|---|---:|---:|---:|"]
    for routed, p in profiles.items():
        who = "with route" if routed else "no route"
        total_ms = 0.0
        for cls, (count, secs) in sorted(p["classes"].items()):
            total_ms += 1000 * secs / p["files"]
            out.append(f"| {who} | {cls} | {count / p['files']:.2f} | "
                       f"{1000 * secs / count:.2f} | {1000 * secs / p['files']:.2f} |")
        wall_ms = 1000 * p["seconds"] / p["files"]
        out.append(f"| {who} | **all syncs** / wall time per instance under strace | | | "
                   f"**{total_ms:.2f}** / {wall_ms:.2f} ({total_ms / wall_ms:.0%}) |")
    return "\n".join(out)


if __name__ == "__main__":
    main()
