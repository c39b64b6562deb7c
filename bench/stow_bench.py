#!/usr/bin/python3
"""STOW-RS ingest benchmark: Conduit's POST /dicom-web/studies beside Orthanc's DICOMweb plugin,
same studies, same client, same run; plus the client's own ceiling (the same client posting to a
null HTTP sink that reads and discards). Prints a markdown report on stdout.

Run by hand (never part of the test suite): bench/run_stow.sh [--clients N] [--quick].
"""

import argparse
import datetime
import hashlib
import http.client
import json
import multiprocessing
import os
import platform
import resource
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True  # keep bench/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import stop, log, free_ports, wait_until, http_get, vm_hwm_kib, cpu_seconds  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # keep bench/ free of __pycache__
ROOT = os.path.dirname(HERE)
BUILD = os.path.abspath(os.environ.get("CONDUIT_BUILD_DIR", os.path.join(ROOT, "build")))
CONDUIT = os.path.join(BUILD, "conduit")
MAKE_STUDY = os.path.join(BUILD, "conduit-make-study")
ORTHANC_DICOMWEB = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
ENV = dict(os.environ, TCP_NODELAY="1")
STOW_PATH = "/dicom-web/studies"
REQUEST_TIMEOUT = 120  # seconds; one request of a whole CT series on a slow disk fits easily

# Per study: (series label, make-study args). Every study gets its own Study Instance UID; its
# CT and MR series share it (two series of one study, as a scanner session would send them).
SERIES_FULL = [("CT 512x512x100", "CT", ["--slices", "100", "--rows", "512", "--cols", "512"]),
               ("MR 256x256x100", "MR", ["--slices", "100", "--rows", "256", "--cols", "256"])]
SERIES_QUICK = [("CT 512x512x20", "CT", ["--slices", "20", "--rows", "512", "--cols", "512"]),
                ("MR 256x256x20", "MR", ["--slices", "20", "--rows", "256", "--cols", "256"])]









def stow_probe(port):
    """Status of an empty STOW-RS request: 404 while the route does not exist, 4xx (bad request,
    unsupported media type) once a STOW-RS handler reads it."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", STOW_PATH, body=b"",
                     headers={"Content-Type": 'multipart/related; type="application/dicom"; '
                                              "boundary=probe"})
        r = conn.getresponse()
        r.read()
        return r.status
    finally:
        conn.close()


# ---------------------------------------------------------------- null sink

def _sink_connection(sock):
    """Reads HTTP/1.1 requests with Content-Length from `sock`, discards their bodies, answers
    200 with an empty DICOM JSON object; until the client closes."""
    buf = bytearray(4 << 20)
    view = memoryview(buf)
    pending = b""
    reply = (b"HTTP/1.1 200 OK\r\nContent-Type: application/dicom+json\r\n"
             b"Content-Length: 2\r\n\r\n{}")
    try:
        while True:
            while b"\r\n\r\n" not in pending:
                chunk = sock.recv(65536)
                if not chunk:
                    return
                pending += chunk
            head, pending = pending.split(b"\r\n\r\n", 1)
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            left = length - len(pending)
            pending = b"" if left >= 0 else pending[length:]
            while left > 0:
                n = sock.recv_into(view, min(left, len(buf)))
                if n == 0:
                    return
                left -= n
            sock.sendall(reply)
    finally:
        sock.close()


def _sink_main(listener):
    while True:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=_sink_connection, args=(conn,), daemon=True).start()


class _ForkedProc:
    """A multiprocessing.Process seen through the subset of Popen the servers use."""

    def __init__(self, process):
        self.p = process
        self.pid = process.pid

    def poll(self):
        return None if self.p.is_alive() else self.p.exitcode

    def terminate(self):
        self.p.terminate()

    def kill(self):
        self.p.kill()

    def wait(self, timeout=None):
        self.p.join(timeout)
        if self.p.is_alive():
            raise subprocess.TimeoutExpired("null sink", timeout)
        return self.p.exitcode


# ---------------------------------------------------------------- servers
# Each server: start(work) -> port; received() -> instance count or None; pid; finish().

class NullSink:
    """Reads each request whole and discards it (no parsing of the multipart body, no disk):
    the ceiling of this client and loopback on this machine."""

    name = "client ceiling (null HTTP sink)"

    def start(self, work):
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        p = multiprocessing.Process(target=_sink_main, args=(listener,), daemon=True)
        p.start()
        listener.close()
        self.proc = _ForkedProc(p)
        self.pid = p.pid
        return self.port

    def received(self):
        return None

    def finish(self):
        stop(self.proc)


class Orthanc:
    """Debian's Orthanc with its DICOMweb plugin; private config; storage and SQLite index in
    the run's temp dir. SyncStorageArea is left at its default for this version (true since
    Orthanc 1.7.4: fsync of each stored file); StorageCompression off."""

    name = "Orthanc + DICOMweb plugin"

    def __init__(self, wrap=()):
        self.wrap = list(wrap)  # e.g. strace; then pid is the wrapper's

    def start(self, work):
        root = os.path.join(work, "orthanc")
        os.makedirs(os.path.join(root, "db"))
        self.port, dicom_port = free_ports(2)
        cfg = {
            "Name": "bench", "StorageDirectory": os.path.join(root, "db"),
            "IndexDirectory": os.path.join(root, "db"), "DicomAet": "ORTHANC",
            "DicomPort": dicom_port, "HttpPort": self.port, "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False, "StorageCompression": False,
            "StableAge": 3600, "Plugins": [ORTHANC_DICOMWEB],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False},
        }
        path = os.path.join(root, "orthanc.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        self.cfg = cfg
        self.log = open(os.path.join(root, "orthanc.log"), "w")
        self.proc = subprocess.Popen(self.wrap + ["Orthanc", path], stdout=self.log,
                                     stderr=subprocess.STDOUT, env=ENV)
        self.pid = self.proc.pid

        def up():
            if self.proc.poll() is not None:
                raise SystemExit(f"Orthanc exited with {self.proc.returncode}")
            return http_get(f"http://127.0.0.1:{self.port}/system")
        wait_until("Orthanc HTTP", up)
        wait_until("Orthanc STOW-RS", lambda: stow_probe(self.port) != 404, timeout=20)
        return self.port

    def received(self):
        stats = json.loads(http_get(f"http://127.0.0.1:{self.port}/statistics"))
        return int(stats["CountInstances"])

    def finish(self):
        stop(self.proc)
        self.log.close()


class Conduit:
    """`conduit serve` with a route matching every instance (router and assembler do their
    per-instance work) and a quiet period longer than the run (no job competes)."""

    name = "Conduit"

    def __init__(self, tool_command, wrap=()):
        self.tool_command = tool_command
        self.wrap = list(wrap)  # e.g. strace; then pid is the wrapper's

    def start(self, work):
        root = os.path.join(work, "conduit")
        os.makedirs(root)
        self.port, dicom_port = free_ports(2)
        cfg = {
            "node": {"name": "bench", "data_dir": os.path.join(root, "data"), "log_level": "info"},
            "dicom": {"ae_title": "CONDUIT", "port": dicom_port, "bind": "127.0.0.1",
                      "min_free_bytes": 0},
            # Every client is 127.0.0.1 here, so they share one client's share of the workers:
            # let that be all of them, as for clients from as many hosts.
            "http": {"port": self.port, "bind": "127.0.0.1", "threads": 4,
                     "max_connections_per_client": 4},
            "tools": [{"name": "bench-tool", "kind": "executable",
                       "command": self.tool_command}],
            "routes": [{"name": "all", "tool": "bench-tool", "stable_after": "1h"}],
        }
        path = os.path.join(root, "conduit.yaml")
        with open(path, "w") as f:
            json.dump(cfg, f, indent=2)
        self.cfg = cfg
        self.log = open(os.path.join(root, "conduit.log"), "w")
        self.proc = subprocess.Popen(self.wrap + [CONDUIT, "serve", "--config", path],
                                     stdout=self.log,
                                     stderr=subprocess.STDOUT, env=ENV)
        self.pid = self.proc.pid

        def up():
            if self.proc.poll() is not None:
                raise SystemExit(f"conduit exited with {self.proc.returncode}; see {root}")
            return http_get(f"http://127.0.0.1:{self.port}/api/health")
        wait_until("Conduit HTTP", up)
        status = stow_probe(self.port)
        if status == 404:
            raise RuntimeError("Conduit answers 404 to POST /dicom-web/studies: STOW-RS not wired")
        return self.port

    def received(self):
        body = json.loads(http_get(f"http://127.0.0.1:{self.port}/api/studies?limit=1000"))
        return sum(int(s["instance_count"]) for s in body["studies"])

    def finish(self):
        stop(self.proc)
        self.log.close()


# ---------------------------------------------------------------- client

def multipart_body(files, boundary):
    parts = []
    head = (f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n").encode()
    for path in files:
        with open(path, "rb") as f:
            data = f.read()
        if boundary.encode() in data:
            raise RuntimeError(f"{path} contains the boundary")
        parts += [head, data, b"\r\n"]
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts)


def client_worker(port, requests, start_barrier, results):
    """One client process: builds its request bodies (untimed), waits for the others, then
    posts them one after another on one keep-alive connection with TCP_NODELAY."""
    try:
        boundary = "conduit-bench-" + secrets.token_hex(16)
        ctype = f'multipart/related; type="application/dicom"; boundary={boundary}'
        bodies = [multipart_body(files, boundary) for files in requests]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
        conn.connect()
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        statuses, failed, errors = [], 0, []
        start_barrier.wait(timeout=300)
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.monotonic()
        for body in bodies:
            conn.putrequest("POST", STOW_PATH, skip_accept_encoding=True)
            conn.putheader("Content-Type", ctype)
            conn.putheader("Content-Length", str(len(body)))
            conn.putheader("Accept", "application/dicom+json")
            conn.endheaders()
            conn.send(body)
            r = conn.getresponse()
            reply = r.read()
            statuses.append(r.status)
            if r.status not in (200, 202):
                errors.append(f"HTTP {r.status}: {reply[:200]!r}")
            elif reply.strip():
                doc = json.loads(reply)
                doc = doc[0] if isinstance(doc, list) and doc else doc
                if isinstance(doc, dict) and "00081198" in doc:  # FailedSOPSequence
                    n = len(doc["00081198"].get("Value", []))
                    failed += n
                    if n:
                        errors.append(f"{n} failed SOP(s): {reply[:300]!r}")
        t1 = time.monotonic()
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        conn.close()
        cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
        results.put({"t0": t0, "t1": t1, "cpu": cpu, "statuses": statuses, "failed": failed,
                     "errors": errors})
    except Exception as e:  # reported to the parent, which fails the round
        results.put({"error": f"{type(e).__name__}: {e}"})
        try:
            start_barrier.abort()
        except Exception:
            pass


def plan_requests(studies, per, clients):
    """Splits the studies into requests (one instance each, or one whole series each) and deals
    them to `clients` lists: instances round robin, series greedily by size (largest first to
    the least loaded client)."""
    if per == "instance":
        files = [f for s in studies for series in s["series"] for f in series["files"]]
        return [[[f] for f in files[i::clients]] for i in range(clients)]
    series = sorted((sr for s in studies for sr in s["series"]), key=lambda sr: -sr["bytes"])
    load = [0] * clients
    out = [[] for _ in range(clients)]
    for sr in series:
        i = load.index(min(load))
        out[i].append(sr["files"])
        load[i] += sr["bytes"]
    return out


def post_all(port, plan):
    """Runs one client process per list of requests; returns the wall time from the first
    client starting to the last one finishing, and the clients' CPU seconds."""
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(len(plan) + 1)
    results = ctx.Queue()
    procs = [ctx.Process(target=client_worker, args=(port, reqs, barrier, results), daemon=True)
             for reqs in plan]
    for p in procs:
        p.start()
    try:
        barrier.wait(timeout=300)  # every client has built its bodies and connected
        outs = [results.get(timeout=900) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
                p.join()
    errs = [o["error"] for o in outs if "error" in o]
    if errs:
        raise RuntimeError(f"client failed: {errs[:3]}")
    problems = [e for o in outs for e in o["errors"]]
    if problems:
        raise RuntimeError(f"STOW-RS errors: {problems[:3]}")
    seconds = max(o["t1"] for o in outs) - min(o["t0"] for o in outs)
    return seconds, sum(o["cpu"] for o in outs), sum(len(o["statuses"]) for o in outs)


# ---------------------------------------------------------------- run

def machine_info(tmp_root):
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem = next(f"{int(ln.split()[1]) / 1024 / 1024:.1f} GiB" for ln in f
                   if ln.startswith("MemTotal"))
    mount = subprocess.run(["findmnt", "-no", "SOURCE,FSTYPE,OPTIONS", "-T", tmp_root],
                           capture_output=True, text=True).stdout.strip()
    orthanc = subprocess.run(["Orthanc", "--version"], capture_output=True,
                             text=True).stdout.splitlines()[0]
    plugin = os.path.realpath(ORTHANC_DICOMWEB).rsplit(".so.", 1)[-1]
    rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "src"],
                           capture_output=True, text=True).stdout.strip()
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(), "cpu": cpu, "mem": mem, "kernel": platform.release(),
        "tmp": tmp_root, "fs": mount, "orthanc": f"{orthanc}, DICOMweb plugin {plugin}",
        "conduit": f"git {rev}" + (" + uncommitted changes in src/" if dirty else ""),
        "load_before": load, "python": platform.python_version(),
    }


def generate(series_specs, count, gen_dir):
    studies = []
    for i in range(count):
        study_uid = f"2.25.{int.from_bytes(secrets.token_bytes(15), 'big')}"
        study = {"uid": study_uid, "series": []}
        for label, modality, args in series_specs:
            out = os.path.join(gen_dir, f"s{i}", modality.lower())
            subprocess.run([MAKE_STUDY, "--out", out, "--modality", modality, "--seed",
                            str(2000 + i), "--study-uid", study_uid] + args,
                           check=True, env=ENV, capture_output=True)
            files = sorted(os.path.join(out, f) for f in os.listdir(out))
            nbytes = sum(os.path.getsize(f) for f in files)
            for f in files:  # read once: every server's client reads from the page cache
                with open(f, "rb") as fh:
                    while fh.read(1 << 20):
                        pass
            study["series"].append({"label": label, "files": files, "bytes": nbytes})
        studies.append(study)
    return studies


def measure(make, plan, expected, tmp):
    work = tempfile.mkdtemp(prefix="run-", dir=tmp)
    server = make()
    port = server.start(work)
    subprocess.run(["sync"], check=True)
    try:
        cpu0 = cpu_seconds(server.pid)
        seconds, client_cpu, nreq = post_all(port, plan)
        cpu = cpu_seconds(server.pid) - cpu0
        peak = vm_hwm_kib(server.pid)
        got = server.received()
    finally:
        server.finish()
    if got is not None and got != expected:
        raise RuntimeError(f"{server.name} holds {got} of {expected} instances")
    shutil.rmtree(work, ignore_errors=True)
    subprocess.run(["sync"], check=True)
    return {"seconds": seconds, "peak_kib": peak, "cpu": cpu, "client_cpu": client_cpu,
            "requests": nreq}


SYNC_CALLS = ("fsync", "fdatasync", "sync_file_range", "syncfs", "msync")


def sync_target(path):
    """What a synced path is, for both servers' layouts."""
    name = os.path.basename(path)
    if name.endswith(("-wal", "-journal")) or ".sqlite" in name or name.startswith("index"):
        return "(index: SQLite)"
    if os.path.isdir(path) or "." not in name and "/spool/instances" in path:
        return "(directory)"
    return "(file)"


def profile_syncs(make, series, tmp):
    """One request holding `series`, posted to a server run under `strace -f`: how many
    fsync-family calls it makes per instance (counts exact; strace slows every call). Answers
    "is this server durable before it answers?" from what it does, not from its settings."""
    work = tempfile.mkdtemp(prefix="profile-", dir=tmp)
    trace = os.path.join(work, "strace.txt")
    server = make(["strace", "-f", "-qq", "-y", "-e", "trace=" + ",".join(SYNC_CALLS), "-o", trace])
    port = server.start(work)
    try:
        post_all(port, [[series["files"]]])
    finally:
        server.finish()
    counts = {}
    with open(trace) as f:
        for line in f:
            parts = line.split(None, 1)
            if len(parts) == 2:
                call, _, rest = parts[1].partition("(")
                if call in SYNC_CALLS:
                    # -y prints the fd's path: fdatasync(5</path/to/file>) = 0
                    path = rest.split("<", 1)[1].split(">", 1)[0] if "<" in rest else "?"
                    what = sync_target(path)
                    counts[f"{call} {what}"] = counts.get(f"{call} {what}", 0) + 1
    shutil.rmtree(work, ignore_errors=True)
    return counts


def main():
    global CONDUIT, MAKE_STUDY
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4, help="parallel client processes")
    parser.add_argument("--studies", type=int, default=3,
                        help="studies posted per round (each a CT and an MR series)")
    parser.add_argument("--quick", action="store_true", help="small series (smoke test)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds per variant and server; the table shows the median")
    parser.add_argument("--servers", default="sink,orthanc,conduit",
                        help="comma-separated subset of sink,orthanc,conduit")
    parser.add_argument("--tmp", default=tempfile.gettempdir(),
                        help="where studies and both servers' storage live (the disk under test)")
    parser.add_argument("--json", help="also write the raw results here")
    parser.add_argument("--no-profile", action="store_true",
                        help="skip counting each server's fsync calls under strace")
    args = parser.parse_args()
    servers = [s for s in args.servers.split(",") if s]
    unknown = set(servers) - {"sink", "orthanc", "conduit"}
    if unknown:
        sys.exit(f"unknown servers: {sorted(unknown)}")

    needed = [MAKE_STUDY] + ([CONDUIT] if "conduit" in servers else [])
    for exe in needed:
        if not os.access(exe, os.X_OK):
            sys.exit(f"missing {exe}: build the conduit and conduit-make-study targets first")
    if "orthanc" in servers and not os.path.exists(ORTHANC_DICOMWEB):
        sys.exit(f"missing {ORTHANC_DICOMWEB}: install Debian's orthanc-dicomweb")
    run_started = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="conduit-stow-bench-", dir=args.tmp)
    info = machine_info(tmp)
    os.makedirs(os.path.join(tmp, "bin"))
    MAKE_STUDY = shutil.copy2(MAKE_STUDY, os.path.join(tmp, "bin"))
    if "conduit" in servers:
        CONDUIT = shutil.copy2(CONDUIT, os.path.join(tmp, "bin"))
        with open(CONDUIT, "rb") as f:
            info["conduit"] += f", conduit sha256 {hashlib.sha256(f.read()).hexdigest()[:12]}"
    # The route's tool never runs (quiet period 1 h); any executable will do.
    tool = ["/bin/true"]
    makers = {"sink": NullSink, "orthanc": Orthanc, "conduit": lambda: Conduit(tool)}
    wrapped = {"orthanc": lambda w: Orthanc(w), "conduit": lambda w: Conduit(tool, w)}
    results, profiles = {}, {}
    try:
        specs = SERIES_QUICK if args.quick else SERIES_FULL
        studies = generate(specs, 1 if args.quick else args.studies, os.path.join(tmp, "gen"))
        nfiles = sum(len(sr["files"]) for s in studies for sr in s["series"])
        nbytes = sum(sr["bytes"] for s in studies for sr in s["series"])
        log(f"generated {len(studies)} studies: {nfiles} files, {nbytes / 1e6:.1f} MB")
        variants = [(c, per) for c in (1, args.clients) for per in ("instance", "series")]
        for clients, per in variants:
            plan = [reqs for reqs in plan_requests(studies, per, clients) if reqs]
            runs = {k: [] for k in servers}
            for rep in range(args.repeat):
                order = servers[rep % len(servers):] + servers[:rep % len(servers)]
                for key in order:
                    r = measure(makers[key], plan, nfiles, tmp)
                    runs[key].append(r)
                    log(f"{clients} client(s), one {per}/request, {key} #{rep + 1}: "
                        f"{r['seconds']:.2f} s ({nfiles / r['seconds']:.0f} inst/s), "
                        f"peak {r['peak_kib']} KiB")
            for key, rs in runs.items():
                results[(clients, per, key)] = rs
        if not args.no_profile and shutil.which("strace"):
            mr = studies[0]["series"][-1]
            for key in servers:
                if key in wrapped:
                    log(f"profile: {key} under strace, one request of {mr['label']} ...")
                    profiles[key] = (mr, profile_syncs(wrapped[key], mr, tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    total = time.monotonic() - run_started
    report = render(info, studies, specs, servers, results, args, nfiles, nbytes, total)
    if profiles:
        report += "\n\nfsync-family calls (" + ", ".join(SYNC_CALLS) + ") per instance, one " \
            "request of one series, server run under `strace -f` (counts exact):\n\n" \
            "| server | series | calls per instance, by call |\n|---|---|---|\n"
        for key, (series, counts) in profiles.items():
            n = len(series["files"])
            by = ", ".join(f"{c} {v / n:.2f}" for c, v in sorted(counts.items())) or "none"
            report += f"| {NAMES[key]} | {series['label']} ({n} instances) | {by} |\n"
    print(report)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"info": info, "total_seconds": total, "files": nfiles, "bytes": nbytes,
                       "syncs": {k: v[1] for k, v in profiles.items()},
                       "results": [{"clients": k[0], "per": k[1], "server": k[2], "rounds": v}
                                   for k, v in results.items()]}, f, indent=1)


NAMES = {"sink": "client ceiling (null HTTP sink)", "orthanc": "Orthanc + DICOMweb plugin",
         "conduit": "**Conduit**"}


def render(info, studies, specs, servers, results, args, nfiles, nbytes, total):
    out = [f"Run {info['date']}, {info['nproc']} CPUs ({info['cpu']}), {info['mem']} RAM, "
           f"kernel {info['kernel']}, load average before the run {info['load_before']}; "
           f"temp dir {info['tmp']} on {info['fs']}; Conduit {info['conduit']}; "
           f"{info['orthanc']}; client Python {info['python']}. Whole run {total:.0f} s.", ""]
    per_study = ", ".join(f"{sr['label']} ({len(sr['files'])} files, {sr['bytes'] / 1e6:.1f} MB)"
                          for sr in studies[0]["series"])
    out.append(f"Each round posts {len(studies)} studies, each {per_study}: {nfiles} instances, "
               f"{nbytes / 1e6:.0f} MB of DICOM files (MB/s counts these bytes, not the "
               "multipart framing). Each figure is the median of "
               f"{args.repeat} rounds (a fresh server process and storage per round, rounds "
               "interleaved); the range shows the slowest and fastest round. CPU: cores used "
               "during the round (user + system over wall time) by the server and by all "
               "client processes together.")
    out.append("")
    out.append("| clients | request | server | instances/s | MB/s | range, instances/s | "
               "peak RSS (VmHWM) | server CPU | clients CPU |")
    out.append("|---:|---|---|---:|---:|---:|---:|---:|---:|")
    med = {}
    for (clients, per, key), rs in results.items():
        secs = [r["seconds"] for r in rs]
        m = statistics.median(secs)
        med[(clients, per, key)] = m
        mid = min(rs, key=lambda r: abs(r["seconds"] - m))
        peak = max(r["peak_kib"] for r in rs) / 1024
        req = f"one instance ({rs[0]['requests']} requests)" if per == "instance" else \
            f"one series ({rs[0]['requests']} requests)"
        out.append(f"| {clients} | {req} | {NAMES[key]} | {nfiles / m:.0f} | "
                   f"{nbytes / 1e6 / m:.0f} | {nfiles / max(secs):.0f}–{nfiles / min(secs):.0f} | "
                   f"{peak:.0f} MiB | {mid['cpu'] / mid['seconds']:.2f} | "
                   f"{mid['client_cpu'] / mid['seconds']:.2f} |")
    if "conduit" in servers and ("orthanc" in servers or "sink" in servers):
        out.append("")
        out.append("Ratios of the medians (equal in instances/s and MB/s: same files):")
        out.append("")
        out.append("| clients | request | Conduit / Orthanc (target ≥ 2) | "
                   "Conduit / client ceiling | Orthanc / client ceiling |")
        out.append("|---:|---|---:|---:|---:|")
        for clients in sorted({k[0] for k in results}):
            for per in ("instance", "series"):
                def ratio(a, b):
                    if (clients, per, a) not in med or (clients, per, b) not in med:
                        return "—"
                    return f"{med[(clients, per, b)] / med[(clients, per, a)]:.2f}"
                r = ratio("conduit", "orthanc")
                if r != "—":
                    r += " met" if float(r) >= 2 else " NOT met"
                out.append(f"| {clients} | one {per} | {r} | {ratio('conduit', 'sink')} | "
                           f"{ratio('orthanc', 'sink')} |")
    return "\n".join(out)


if __name__ == "__main__":
    main()
