#!/usr/bin/python3
"""Added-latency benchmark: how long Conduit itself holds a study on its way to an AI tool, and a
result on its way to PACS, quiet periods excluded. Conduit runs with one route to one tool (the
tool kind is a parameter) and Orthanc as PACS; N studies are sent one after another, each
waited for until its job is done. Prints a markdown report on stdout.

  (a) dispatch latency: from the study unit completing (the job's creation, audit "assemble")
      to the tool holding every input, timestamped by the tool side:
        executable: the tool's wrapper script's first instruction (`date +%s.%N`);
        dimse:      the newest modification time of the files the tool node's storescp wrote
                    (storescp writes a file, then answers the C-STORE);
        dicomweb:   the newest modification time of the files the DICOMweb tool simulator
                    wrote (it renames each received instance into its inbox).
  (b) delivery latency: from the result being Conduit's to PACS having answered its C-STORE
      (or, with --stow-delivery, its STOW-RS request: Orthanc's DICOMweb plugin; the last
      audit "deliver", written after Orthanc's response):
        executable: from the tool's exit (the wrapper's last `date +%s.%N`);
        dimse, dicomweb: from the last result attached (the job's result records,
                    received_at) plus the tool's results_stable_after (the quiet period after
                    which results are complete).

Run by hand (never part of the test suite): bench/run_latency.sh [--studies N] [--tools ...]
[--dead-neighbour] [--stow-delivery].
"""

import argparse
import datetime
import glob
import hashlib
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.dont_write_bytecode = True  # keep bench/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import stop, log, free_port, free_ports, wait_until  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # keep bench/ free of __pycache__
ROOT = os.path.dirname(HERE)
BUILD = os.path.abspath(os.environ.get("CONDUIT_BUILD_DIR", os.path.join(ROOT, "build")))
BIN = {name: os.path.join(BUILD, name) for name in
       ("conduit", "conduit-make-study", "conduit-reference-tool", "conduit-dicomweb-tool-sim")}
NODE_SCRIPT = os.path.join(ROOT, "tools", "dimse_tool_node", "run-node.sh")
ENV = dict(os.environ, TCP_NODELAY="1")
STABLE_AFTER_S = 1        # the route's quiet period (excluded from every figure)
RESULTS_STABLE_AFTER_S = 1  # remote tools: results complete after this long without one
JOB_TIMEOUT_S = 90        # one study, from the last instance sent to its job done





def http_json(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def echo_ok(port, aet):
    return subprocess.run(["echoscu", "-aet", "BENCH", "-aec", aet, "127.0.0.1", str(port)],
                          env=ENV, capture_output=True, timeout=20).returncode == 0



def iso_seconds(text):
    """ISO 8601 UTC ("2026-11-28T21:06:00.123Z") to Unix seconds."""
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# ---------------------------------------------------------------- tools
# A tool kind: config(work) -> Conduit tools[] entry; start(work, conduit_port); holding(i, job)
# -> Unix time the tool held all inputs of the i-th study; result_ready(i, job, audit) -> Unix
# time the result became Conduit's to deliver (quiet period excluded); finish().

class ExecutableTool:
    kind = "executable"
    what_a = "wrapper script started with its inputs"
    what_b = "tool process exited (results in its output folder)"

    def config(self, work):
        self.log_path = os.path.join(work, "tool-runs.log")
        script = os.path.join(work, "tool.sh")
        # The first instruction stamps the start; the reference tool then makes real results
        # (SEG, SR, SC) that Conduit validates and delivers; the last stamps the exit.
        with open(script, "w") as f:
            f.write(f"""#!/bin/sh
t0=$(date +%s.%N)
input=""; output=""
while [ $# -gt 0 ]; do
  case "$1" in --input) input="$2"; shift 2 ;; --output) output="$2"; shift 2 ;; *) shift ;; esac
done
"{BIN['conduit-reference-tool']}" --input "$input" --output "$output"
rc=$?
t1=$(date +%s.%N)
echo "$t0 $t1 $rc $(find "$input" -type f | wc -l) $input" >> "{self.log_path}"
exit $rc
""")
        os.chmod(script, 0o755)
        return {"name": "tool", "kind": "executable", "command": [script]}

    def start(self, work, conduit_port):
        pass

    def runs(self):
        out = []
        if os.path.exists(self.log_path):
            with open(self.log_path) as f:
                for line in f:
                    t0, t1, rc, n, path = line.split(maxsplit=4)
                    out.append({"start": float(t0), "exit": float(t1), "rc": int(rc),
                                "inputs": int(n)})
        return out

    def holding(self, i, job, audit):
        run = self.runs()[i]
        if run["rc"] != 0:
            raise RuntimeError(f"executable tool run {i + 1} exited {run['rc']}")
        return run["start"], run["inputs"]

    def result_ready(self, i, job, audit):
        return self.runs()[i]["exit"]

    def finish(self):
        pass


class DimseTool:
    kind = "dimse"
    what_a = "newest mtime of the inputs the tool node's storescp wrote"
    what_b = (f"last result C-STORE received by Conduit (its result record's received_at) + "
              f"results_stable_after ({RESULTS_STABLE_AFTER_S} s)")

    def config(self, work):
        self.port = free_port()
        self.work = os.path.join(work, "node")
        return {"name": "tool", "kind": "dimse", "ae_title": "AITOOL", "host": "127.0.0.1",
                "port": self.port, "hosting_region": "UK",
                "results_stable_after": f"{RESULTS_STABLE_AFTER_S}s"}

    def start(self, work, conduit_port):
        self.log = open(os.path.join(work, "node.out"), "w")
        self.proc = subprocess.Popen(
            [NODE_SCRIPT, "--port", str(self.port), "--aet", "AITOOL", "--conduit-port",
             str(conduit_port), "--work", self.work, "--quiet", "1", "--build", BUILD],
            stdout=self.log, stderr=subprocess.STDOUT, env=ENV)
        wait_until("tool node", lambda: echo_ok(self.port, "AITOOL"))

    def runs(self):
        """One entry per study the node received, in order of receipt."""
        out = []
        for d in glob.glob(os.path.join(self.work, "runs", "*", "input")):
            times = [os.stat(os.path.join(dp, f)).st_mtime_ns / 1e9
                     for dp, _, fs in os.walk(d) for f in fs]
            if times:
                out.append({"first": min(times), "last": max(times), "inputs": len(times)})
        return sorted(out, key=lambda r: r["first"])

    def holding(self, i, job, audit):
        run = self.runs()[i]
        return run["last"], run["inputs"]

    def result_ready(self, i, job, audit):
        return max(iso_seconds(r["received_at"]) for r in job["results"]) + \
            RESULTS_STABLE_AFTER_S

    def finish(self):
        stop(self.proc)
        self.log.close()


class DicomwebTool:
    """The DICOMweb tool simulator (tools/dicomweb_tool_sim, build/conduit-dicomweb-tool-sim):
    receives by STOW-RS, runs the reference tool, stores the results back by STOW-RS. It
    writes each received instance to a file and renames it into WORK/inputs/<group>/, so the
    files' modification times are the moments it held each input."""

    kind = "dicomweb"
    what_a = "newest mtime of the inputs the simulator wrote (WORK/inputs/<group>/)"
    what_b = (f"last result attached (its result record's received_at) + results_stable_after "
              f"({RESULTS_STABLE_AFTER_S} s)")

    @staticmethod
    def available():
        exe = BIN["conduit-dicomweb-tool-sim"]
        return None if os.access(exe, os.X_OK) else f"{exe} not built"

    def config(self, work):
        self.port = free_port()
        self.work = os.path.join(work, "sim")
        return {"name": "tool", "kind": "dicomweb",
                "dicomweb": {"url": f"http://127.0.0.1:{self.port}/dicom-web"}, "hosting_region": "UK",
                "results_stable_after": f"{RESULTS_STABLE_AFTER_S}s"}

    def start(self, work, conduit_port):
        self.log = open(os.path.join(work, "sim.out"), "w")
        self.proc = subprocess.Popen(
            [BIN["conduit-dicomweb-tool-sim"], "--port", str(self.port), "--bind", "127.0.0.1",
             "--work", self.work], stdout=self.log, stderr=subprocess.STDOUT, env=ENV)
        wait_until("DICOMweb tool simulator", lambda: socket.create_connection(
            ("127.0.0.1", self.port), timeout=1).close() or True)

    def runs(self):
        """One entry per group (job or study) the simulator received, in order of receipt."""
        out = []
        for d in glob.glob(os.path.join(self.work, "inputs", "*")):
            times = [os.stat(os.path.join(dp, f)).st_mtime_ns / 1e9
                     for dp, _, fs in os.walk(d) for f in fs]
            if times:
                out.append({"first": min(times), "last": max(times), "inputs": len(times)})
        return sorted(out, key=lambda r: r["first"])

    holding = DimseTool.holding

    def result_ready(self, i, job, audit):
        return max(iso_seconds(r["received_at"]) for r in job["results"]) + \
            RESULTS_STABLE_AFTER_S

    def finish(self):
        stop(self.proc)
        self.log.close()


TOOLS = {"executable": ExecutableTool, "dimse": DimseTool, "dicomweb": DicomwebTool}


# ---------------------------------------------------------------- peers

class Orthanc:
    """Debian's Orthanc as PACS: private config, storage in the run's temp dir, fsync on; with
    `dicomweb`, its DICOMweb plugin too (STOW-RS at http://127.0.0.1:<http_port>/dicom-web)."""

    DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"

    def start(self, work, dicomweb=False):
        root = os.path.join(work, "orthanc")
        os.makedirs(os.path.join(root, "db"))
        self.port, self.http_port = free_ports(2)
        cfg = {"Name": "pacs", "StorageDirectory": os.path.join(root, "db"),
               "IndexDirectory": os.path.join(root, "db"), "DicomAet": "ORTHANC",
               "DicomPort": self.port, "HttpPort": self.http_port, "RemoteAccessAllowed": False,
               "AuthenticationEnabled": False, "DicomAlwaysAllowStore": True,
               "DicomCheckCalledAet": False, "Plugins": [], "StableAge": 3600,
               "SyncStorageArea": True}
        if dicomweb:
            cfg["Plugins"] = [self.DICOMWEB_PLUGIN]
            cfg["DicomWeb"] = {"Enable": True, "Root": "/dicom-web/"}
        path = os.path.join(root, "orthanc.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        self.log = open(os.path.join(root, "orthanc.log"), "w")
        self.proc = subprocess.Popen(["Orthanc", path], stdout=self.log,
                                     stderr=subprocess.STDOUT, env=ENV)
        wait_until("Orthanc", lambda: echo_ok(self.port, "ORTHANC"))

    def instances(self):
        return http_json(f"http://127.0.0.1:{self.http_port}/statistics")["CountInstances"]

    def finish(self):
        stop(self.proc)
        self.log.close()


class Conduit:
    def start(self, work, tool_entry, pacs, dead_neighbour=False, stow=False):
        root = os.path.join(work, "conduit")
        os.makedirs(root)
        self.port, self.http_port = free_ports(2)
        cfg = {
            "node": {"name": "bench", "data_dir": os.path.join(root, "data"), "log_level": "info"},
            "dicom": {"ae_title": "CONDUIT", "port": self.port, "bind": "127.0.0.1",
                      "min_free_bytes": 0},
            "http": {"port": self.http_port, "bind": "127.0.0.1"},
            "destinations": [
                {"name": "pacs",
                 "dicomweb": {"url": f"http://127.0.0.1:{pacs.http_port}/dicom-web"}} if stow
                else {"name": "pacs", "ae_title": "ORTHANC", "host": "127.0.0.1",
                      "port": pacs.port}],
            "tools": [tool_entry],
            "routes": [{"name": "all", "tool": "tool", "results_to": ["pacs"],
                        "stable_after": f"{STABLE_AFTER_S}s"}],
        }
        if dead_neighbour:
            # A DICOMweb tool nobody answers for (a closed port), fed every study too: its jobs
            # fail, retry and trip its circuit breaker beside the measured tool.
            cfg["tools"].append({"name": "dead", "kind": "dicomweb", "hosting_region": "UK",
                                 "dicomweb": {"url": f"http://127.0.0.1:{free_port()}/dicom-web"},
                                 "timeout": "5s"})
            cfg["routes"].append({"name": "dead", "tool": "dead", "results_to": ["pacs"],
                                  "stable_after": f"{STABLE_AFTER_S}s"})
        path = os.path.join(root, "conduit.yaml")
        with open(path, "w") as f:
            json.dump(cfg, f, indent=2)
        self.root = root
        self.log = open(os.path.join(root, "conduit.log"), "w")
        self.proc = subprocess.Popen([BIN["conduit"], "serve", "--config", path],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=ENV)

        def up():
            if self.proc.poll() is not None:
                with open(os.path.join(root, "conduit.log")) as f:
                    tail = f.read()[-2000:]
                raise SystemExit(f"conduit exited with {self.proc.returncode}:\n{tail}")
            return echo_ok(self.port, "CONDUIT")
        wait_until("Conduit", up)

    def api(self, path):
        return http_json(f"http://127.0.0.1:{self.http_port}{path}")

    def audit(self):
        events, offset = [], 0
        while True:
            page = self.api(f"/api/audit?limit=1000&offset={offset}")["events"]
            events += page
            if len(page) < 1000 or offset > 200_000:
                return events
            offset += 1000

    def finish(self):
        stop(self.proc)
        self.log.close()


# ---------------------------------------------------------------- run

def generate(n, gen_dir, slices, size):
    studies = []
    for i in range(n):
        out = os.path.join(gen_dir, f"s{i:03d}")
        subprocess.run([BIN["conduit-make-study"], "--out", out, "--modality", "CT", "--slices",
                        str(slices), "--rows", str(size), "--cols", str(size), "--seed",
                        str(3000 + i)], check=True, env=ENV, capture_output=True)
        files = sorted(os.path.join(out, f) for f in os.listdir(out))
        studies.append(files)
    return studies


def study_uid_of(path):
    out = subprocess.run(["dcmdump", "+P", "0020,000d", "-s", path], capture_output=True,
                         text=True, check=True).stdout
    return out.split("[", 1)[1].split("]", 1)[0]


DEAD = " + dead neighbour"
STOW = ", results by STOW-RS"


def assembled_for(event, tool):
    detail = event["detail"]
    if isinstance(detail, str):
        detail = json.loads(detail)
    return event["action"] == "assemble" and detail.get("tool") == tool


def run_tool(kind, studies, tmp, dead_neighbour=False, stow=False):
    work = tempfile.mkdtemp(prefix=f"lat-{kind}-", dir=tmp)
    tool = TOOLS[kind]()
    pacs, conduit = Orthanc(), Conduit()
    rows = []
    try:
        pacs.start(work, dicomweb=stow)
        entry = tool.config(work)
        conduit.start(work, entry, pacs, dead_neighbour, stow)
        tool.start(work, conduit.port)
        for i, files in enumerate(studies):
            uid = study_uid_of(files[0])
            subprocess.run(["storescu", "-aet", "MODALITY", "-aec", "CONDUIT", "127.0.0.1",
                            str(conduit.port)] + files, check=True, env=ENV,
                           capture_output=True, timeout=120)

            def job_done():
                jobs = [j for j in conduit.api(f"/api/studies/{uid}")["jobs"]
                        if j["tool"] == "tool"]
                if jobs and jobs[0]["state"] in ("failed", "dead_letter"):
                    raise SystemExit(f"{kind}: job {jobs[0]['id']} {jobs[0]['state']}: "
                                     f"{jobs[0].get('last_error')}")
                return jobs[0] if jobs and jobs[0]["state"] == "done" else None
            job = wait_until(f"{kind}: job of study {i + 1} done", job_done,
                             timeout=JOB_TIMEOUT_S, interval=0.2)
            rows.append({"uid": uid, "job_id": job["id"], "files": len(files)})
            log(f"{kind}: study {i + 1}/{len(studies)} done (job {job['id']})")
        audit = conduit.audit()
        if hasattr(tool, "runs") and len(tool.runs()) != len(rows):
            raise RuntimeError(f"{kind}: the tool ran {len(tool.runs())} times for {len(rows)} "
                               "studies (a retry?): cannot pair runs with studies")
        for i, row in enumerate(rows):
            job = conduit.api(f"/api/jobs/{row['job_id']}")
            study = conduit.api(f"/api/studies/{row['uid']}")
            mine = [e for e in audit if e["job_id"] == row["job_id"]]
            created = [iso_seconds(e["at"]) for e in audit if assembled_for(e, "tool")
                       and e["study_ref"] == job["study_ref"]]
            delivered = [iso_seconds(e["at"]) for e in mine
                         if e["action"] == "deliver" and e["outcome"] == "success"]
            # The job's result records (received_at: durable and attached); the audit's
            # "result" rows also hold the job's own step "results complete".
            results = [iso_seconds(r["received_at"]) for r in job["results"]]
            if len(created) != 1 or not delivered or not results:
                raise RuntimeError(f"{kind}: study {i + 1}: audit has {len(created)} assemble, "
                                   f"{len(results)} result, {len(delivered)} deliver rows")
            started = [iso_seconds(e["at"]) for e in mine
                       if e["action"] == "dispatch" and e["outcome"] == "started"]
            held, inputs = tool.holding(i, job, audit)
            if inputs != row["files"]:
                raise RuntimeError(f"{kind}: study {i + 1}: tool held {inputs} of "
                                   f"{row['files']} inputs")
            ready = tool.result_ready(i, job, mine)
            row.update({
                "assembly_s": created[0] - iso_seconds(study["last_received_at"])
                - STABLE_AFTER_S,
                "dispatch_s": held - created[0],
                "pickup_s": min(started) - created[0] if started else None,
                "delivery_s": max(delivered) - ready,
                "attach_s": max(results) - ready if kind == "executable" else None,
                "results": len(results), "delivered": len(delivered),
            })
        expected = sum(r["delivered"] for r in rows)
        got = pacs.instances()
        if got != expected:
            raise RuntimeError(f"{kind}: Orthanc holds {got} instances, audit says {expected}")
    finally:
        for part in (tool, conduit, pacs):
            try:
                part.finish()
            except Exception as e:  # keep stopping the others
                log(f"stopping {type(part).__name__}: {e}")
        shutil.rmtree(work, ignore_errors=True)
    return rows


def pct(values, p):
    s = sorted(values)
    k = (len(s) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def main():
    global BIN
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=10, help="studies per tool kind")
    parser.add_argument("--slices", type=int, default=20, help="CT slices per study")
    parser.add_argument("--size", type=int, default=256, help="rows and columns per slice")
    parser.add_argument("--tools", default="executable,dimse,dicomweb",
                        help="comma-separated tool kinds; dicomweb is skipped (with a note) "
                             "until its simulator exists")
    parser.add_argument("--tmp", default=tempfile.gettempdir())
    parser.add_argument("--json", help="also write the raw results here")
    parser.add_argument("--dead-neighbour", action="store_true",
                        help="run each kind again with every study also routed to a DICOMweb "
                             "tool that is down, to show whether it delays the measured tool")
    parser.add_argument("--stow-delivery", action="store_true",
                        help="run each kind again with its results delivered by STOW-RS to "
                             "Orthanc's DICOMweb plugin instead of by C-STORE")
    args = parser.parse_args()
    kinds = [k for k in args.tools.split(",") if k]
    if set(kinds) - set(TOOLS):
        sys.exit(f"unknown tool kinds: {sorted(set(kinds) - set(TOOLS))}")
    for name in ("conduit", "conduit-make-study", "conduit-reference-tool"):
        if not os.access(BIN[name], os.X_OK):
            sys.exit(f"missing {BIN[name]}: build conduit, conduit-make-study and "
                     "conduit-reference-tool first")
    skipped = {}
    if "dicomweb" in kinds:
        why = DicomwebTool.available()
        if why:
            skipped["dicomweb"] = why
            kinds.remove("dicomweb")
    started = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="conduit-latency-bench-", dir=args.tmp)
    rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "src"],
                           capture_output=True, text=True).stdout.strip()
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    info = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "kernel": platform.release(), "nproc": os.cpu_count(), "load": load,
            "conduit": f"git {rev}" + (" + uncommitted changes in src/" if dirty else "")}
    # Private copies: a rebuild of the build dir during the run cannot mix two binaries.
    os.makedirs(os.path.join(tmp, "bin"))
    for name, path in BIN.items():
        if os.access(path, os.X_OK):
            BIN[name] = shutil.copy2(path, os.path.join(tmp, "bin"))
    with open(BIN["conduit"], "rb") as f:
        info["conduit"] += f", conduit sha256 {hashlib.sha256(f.read()).hexdigest()[:12]}"
    results = {}
    try:
        studies = generate(args.studies, os.path.join(tmp, "gen"), args.slices, args.size)
        for kind in kinds:
            try:
                results[kind] = run_tool(kind, studies, tmp)
                if args.dead_neighbour:
                    results[kind + DEAD] = run_tool(kind, studies, tmp, dead_neighbour=True)
                if args.stow_delivery:
                    results[kind + STOW] = run_tool(kind, studies, tmp, stow=True)
            except (RuntimeError, SystemExit) as e:  # report the kind that failed, go on
                skipped[kind] = f"failed: {str(e)[-300:]}"
                log(f"{kind}: {e}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    total = time.monotonic() - started
    print(render(info, args, results, skipped, total))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"info": info, "total_seconds": total, "results": results,
                       "skipped": skipped}, f, indent=1)


def render(info, args, results, skipped, total):
    out = [f"Run {info['date']}, {info['nproc']} CPUs, kernel {info['kernel']}, load average "
           f"before the run {info['load']}; Conduit {info['conduit']}. Whole run {total:.0f} s.",
           "",
           f"{args.studies} studies per tool kind (CT {args.size}x{args.size}x{args.slices}, sent "
           f"by storescu one after another, each waited for until its job is done); route quiet "
           f"period {STABLE_AFTER_S} s, remote tools' results_stable_after "
           f"{RESULTS_STABLE_AFTER_S} s, both excluded. Orthanc is the PACS. Times in ms: "
           "median / p95 / max over the studies."
           + (f" Rows marked '{DEAD}' ran after the plain row of the same kind with the same "
              "studies, every study also routed to a second tool that is down (a DICOMweb tool "
              "on a closed port, timeout 5 s): its jobs fail and retry beside the measured ones."
              if args.dead_neighbour else "")
           + (f" Rows marked '{STOW}' ran after the plain row of the same kind with the same "
              "studies, the results delivered by STOW-RS to Orthanc's DICOMweb plugin (one "
              "request per job) instead of by C-STORE; (b) ends at Orthanc's answer to it."
              if args.stow_delivery else ""), "",
           "| tool kind | (a) job created → tool holds all inputs | "
           "(a) part: job created → dispatch started | "
           "(b) result ready → PACS answered | (b) part: tool exit → results attached | "
           "before (a): last instance + quiet period → job created |",
           "|---|---:|---:|---:|---:|---:|"]

    def cell(rows, key):
        vals = [1000 * r[key] for r in rows if r.get(key) is not None]
        if not vals:
            return "—"
        return f"{statistics.median(vals):.0f} / {pct(vals, 0.95):.0f} / {max(vals):.0f}"

    for kind, rows in results.items():
        out.append(f"| {kind} | {cell(rows, 'dispatch_s')} | {cell(rows, 'pickup_s')} | "
                   f"{cell(rows, 'delivery_s')} | {cell(rows, 'attach_s')} | "
                   f"{cell(rows, 'assembly_s')} |")
    out.append("")
    out.append("Where each end of (a) and (b) is taken, by tool kind:")
    out.append("")
    for kind in results:
        if kind.endswith(DEAD) or kind.endswith(STOW):
            continue
        t = TOOLS[kind]
        out.append(f"- {kind}: tool holds inputs = {t.what_a}; result ready = {t.what_b}.")
    for kind, why in skipped.items():
        out.append(f"- {kind}: not measured ({why}).")
    return "\n".join(out)


if __name__ == "__main__":
    main()
