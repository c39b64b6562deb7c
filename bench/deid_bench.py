#!/usr/bin/python3
"""De-identification benchmark: `conduit deid` beside a pydicom de-identifier
(bench/pydicom_deid.py), DCMTK dcmodify and Orthanc's /anonymize, on the same generated
studies, same two cores, same run; plus `cp -r` of the same tree (the page-cache copy limit).
Prints a markdown report on stdout (progress on stderr).

Run by hand (never part of the test suite): bench/run_deid.sh [--quick] [--repeat N].
"""

import argparse
import base64
import datetime
import hashlib
import hmac
import http.client
import json
import math
import os
import platform
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
from benchlib import free_ports, http_get, log, stop, wait_until  # noqa: E402

ROOT = os.path.dirname(HERE)
BUILD = os.path.abspath(os.environ.get("CONDUIT_BUILD_DIR", os.path.join(ROOT, "build")))
CONDUIT = os.path.join(BUILD, "conduit")
MAKE_STUDY = os.path.join(BUILD, "conduit-make-study")
PYDICOM_DEID = os.path.join(HERE, "pydicom_deid.py")
PROFILE_ROWS = os.path.join(ROOT, "tests", "e2e", "data", "profile_rows.json")
PYTHON = "/usr/bin/python3"  # Debian's, with pydicom
JOBS = 2  # every tool gets two workers: the machine's two cores

# label, key, modality, make-study args, number of studies of that shape
STUDIES_FULL = [
    ("one MR slice (start-up cost)", "mr1", "MR", ["--slices", "1"], 1),
    ("CT 512x512x300", "ct300", "CT", ["--slices", "300", "--rows", "512", "--cols", "512"], 1),
    ("MR 256x256x150", "mr150", "MR", ["--slices", "150", "--rows", "256", "--cols", "256"], 1),
    ("DX 3000x2500 x20", "dx20", "DX", ["--rows", "3000", "--cols", "2500"], 20),
]
FLAT_FULL = [  # memory flatness of conduit deid: CT of growing size
    ("CT 512x512x100", "ct100", "CT", ["--slices", "100"], 1),
    ("CT 512x512x600", "ct600", "CT", ["--slices", "600"], 1),
]
STUDIES_QUICK = [
    ("one MR slice (start-up cost)", "mr1", "MR", ["--slices", "1"], 1),
    ("CT 512x512x30", "ct30", "CT", ["--slices", "30"], 1),
    ("MR 256x256x20", "mr20", "MR", ["--slices", "20"], 1),
    ("DX 3000x2500 x2", "dx2", "DX", [], 2),
]
FLAT_QUICK = [("CT 512x512x10", "ct10", "CT", ["--slices", "10"], 1),
              ("CT 512x512x60", "ct60", "CT", ["--slices", "60"], 1)]

TOOLS = ["cp", "conduit", "pydicom", "dcmodify", "dcmodify-inplace", "orthanc"]
NAMES = {"cp": "`cp -r` (copy limit)", "conduit": "**conduit deid**",
         "pydicom": "pydicom de-identifier", "dcmodify": "`cp -r` + dcmodify",
         "dcmodify-inplace": "dcmodify in place only (copy untimed)",
         "orthanc": "Orthanc /anonymize"}


# ---------------------------------------------------------------- measuring processes

def tree_rss_kib(pid):
    """Resident set of pid and all its descendants, in KiB (0 if gone)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo += [int(c) for c in f.read().split()]
        except (FileNotFoundError, ProcessLookupError, ValueError):
            pass
    return total


def run_measured(cmd, stdin_bytes=None):
    """Runs cmd under /usr/bin/time; returns wall seconds, CPU seconds (user + system of it and
    its reaped descendants), peak RSS in KiB, exit code and stderr. Peak RSS is the larger of
    the sum over the tool's process tree sampled every 10 ms and the exact peak of its largest
    process (GNU time's %M; launched from `time`, not from this Python process, whose memory a
    forked child would otherwise inherit in its high-water mark)."""
    err = tempfile.TemporaryFile()
    maxrss_file = tempfile.NamedTemporaryFile(prefix="maxrss-", delete=False)
    maxrss_file.close()
    started = time.monotonic()
    p = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", maxrss_file.name] + cmd,
                         stdin=subprocess.PIPE if stdin_bytes is not None else None,
                         stdout=subprocess.DEVNULL, stderr=err)
    peak = [0]
    done = threading.Event()

    def sample():
        while not done.wait(0.01):
            peak[0] = max(peak[0], tree_rss_kib(p.pid))
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    if stdin_bytes is not None:
        p.stdin.write(stdin_bytes)
        p.stdin.close()
    _, status, ru = os.wait4(p.pid, 0)
    seconds = time.monotonic() - started
    done.set()
    sampler.join()
    p.returncode = os.waitstatus_to_exitcode(status)
    err.seek(0)
    stderr = err.read().decode(errors="replace")
    err.close()
    with open(maxrss_file.name) as f:
        lines = [ln for ln in f.read().split() if ln.isdigit()]
    os.unlink(maxrss_file.name)
    largest = int(lines[-1]) if lines else 0
    return {"seconds": seconds, "cpu": ru.ru_utime + ru.ru_stime,
            "peak_kib": max(peak[0], largest), "largest_process_kib": largest,
            "rc": p.returncode, "stderr": stderr}


def tree_bytes(d):
    return sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(d) for f in fs
               if not f.endswith(".part"))


def tree_files(d):
    return sorted(os.path.join(dp, f) for dp, _, fs in os.walk(d) for f in fs)


def sync_disk():
    subprocess.run(["sync"], check=True)


# ---------------------------------------------------------------- keyed substitutes
# The harness derives, for dcmodify only, the study-level substitutes conduit and the pydicom
# de-identifier compute themselves (dcmodify can set a value, not compute a keyed one).

def mac(key, domain, value):
    return hmac.new(key, domain.encode() + b"\0" + value.encode(), hashlib.sha256).digest()


def b32(digest):
    return base64.b32encode(digest).decode()[:15]


def keyed_uid(key, original):
    m = bytearray(mac(key, "uid", original))
    m[6] = (m[6] & 0x0F) | 0x80
    m[8] = (m[8] & 0x3F) | 0x80
    return "2.25." + str(int.from_bytes(m[:16], "big"))


# ---------------------------------------------------------------- dcmodify

RESOLVE = {"X": "X", "Z": "Z", "D": "D", "U": "U", "K": "K", "C": "C", "X/Z": "Z", "X/D": "D",
           "Z/D": "D", "X/Z/D": "D", "X/Z/U*": "U"}
DUMMY = {"AE": "ANON", "AS": "000Y", "CS": "ANONYMOUS", "DA": "19000101",
         "DT": "19000101000000", "TM": "000000", "DS": "0", "IS": "0", "LO": "ANONYMOUS",
         "SH": "ANONYMOUS", "ST": "ANONYMOUS", "LT": "ANONYMOUS", "UT": "ANONYMOUS",
         "PN": "ANONYMOUS", "UC": "ANONYMOUS", "US": "0", "UL": "0", "SS": "0", "SL": "0"}


def dcmodify_args(study_dir, key):
    """dcmodify options equivalent to the Basic Profile for the attributes present in this
    study's first file: -ea for X, -ma "tag=" for Z, -ma "tag=dummy" for D, keyed per-study
    values for Study/Series/Frame of Reference UIDs and the patient/accession pseudonyms, -gin
    for the SOP Instance UID (random), -ep for private tags, -i for the attributes a
    de-identified instance carries."""
    import pydicom  # Debian's, /usr/bin/python3
    with open(PROFILE_ROWS) as f:
        rows = {r["tag"].upper(): RESOLVE[r["basic"]] for r in json.load(f)["rows"]}
    headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in tree_files(study_dir)]
    ds = headers[0]
    args = ["-nb", "-imt", "-ep"]
    pseudonyms = {
        "(0010,0020)": "P" + b32(mac(key, "patient_id", str(ds.PatientID))),
        "(0010,0010)": "N" + b32(mac(key, "patient_name", str(ds.PatientID))),
        "(0008,0050)": "A" + b32(mac(key, "accession", str(ds.AccessionNumber))),
    }
    for elem in ds:
        tag = f"({elem.tag.group:04X},{elem.tag.element:04X})"
        if tag in pseudonyms:
            args += ["-ma", f"{tag}={pseudonyms[tag]}"]
            continue
        code = rows.get(tag)
        if code is None or code == "K" or (elem.VR == "SQ" and code != "X" and code != "Z"):
            continue  # kept, or a sequence whose items the profile processes: not expressible
        if code == "X":
            args += ["-ea", tag]
        elif code == "Z" and elem.VR == "SQ":  # an empty sequence: erase, insert empty
            args += ["-ea", tag, "-i", tag]
        elif code == "Z":
            args += ["-ma", f"{tag}="]
        elif code == "U" or elem.VR == "UI":
            varies = len({str(h.get(elem.tag).value) for h in headers if elem.tag in h}) > 1
            if elem.tag == 0x00080018:
                args += ["-gin"]  # new random SOP Instance UID, meta header updated too
            elif elem.tag == 0x0020000E and varies:
                args += ["-gse"]  # one series per file (DX): a new random Series UID each
            elif elem.tag == 0x0020000D and varies:
                args += ["-gst"]
            elif not varies:  # same value in every file of the study: keyed, computed here
                args += ["-ma", f"{tag}={keyed_uid(key, str(elem.value))}"]
            else:
                raise RuntimeError(f"{tag} differs between files: no dcmodify equivalent")
        elif code == "D":
            args += ["-ma", f"{tag}={DUMMY.get(elem.VR, 'ANONYMOUS')}"]
    args += ["-i", "(0012,0062)=YES",
             "-i", "(0012,0063)=dcmodify bench; Basic Application Confidentiality Profile",
             "-i", "(0012,0064)[0].(0008,0100)=113100",
             "-i", "(0012,0064)[0].(0008,0102)=DCM",
             "-i", "(0012,0064)[0].(0008,0104)=Basic Application Confidentiality Profile",
             "-i", "(0028,0303)=REMOVED"]
    return args


# ---------------------------------------------------------------- Orthanc

class Orthanc:
    """Debian's Orthanc: private config, storage and SQLite index in the run's temp dir,
    loopback HTTP only, no plugins, no storage compression, no fsync (like every other tool
    here)."""

    def __init__(self, work):
        self.root = os.path.join(work, "orthanc")
        os.makedirs(os.path.join(self.root, "db"), exist_ok=True)
        self.http_port, dicom_port = free_ports(2)
        cfg = {
            "Name": "bench", "StorageDirectory": os.path.join(self.root, "db"),
            "IndexDirectory": os.path.join(self.root, "db"), "DicomAet": "ORTHANC",
            "DicomPort": dicom_port, "HttpPort": self.http_port, "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False, "Plugins": [], "StorageCompression": False,
            "SyncStorageArea": False, "StableAge": 3600, "HttpTimeout": 3600,
        }
        self.config = os.path.join(self.root, "orthanc.json")
        with open(self.config, "w") as f:
            json.dump(cfg, f)
        self.proc = None

    def start(self):
        self.log = open(os.path.join(self.root, "orthanc.log"), "a")
        self.proc = subprocess.Popen(["Orthanc", self.config], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        wait_until("Orthanc HTTP", lambda: http_get(f"http://127.0.0.1:{self.http_port}/system"))

    def stop(self):
        stop(self.proc)
        self.log.close()

    def request(self, method, path, body=None, conn=None):
        own = conn is None
        if own:
            conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=3600)
        conn.request(method, path, body=body)
        r = conn.getresponse()
        data = r.read()
        if own:
            conn.close()
        if r.status >= 300:
            raise RuntimeError(f"Orthanc {method} {path}: HTTP {r.status} {data[:200]!r}")
        return json.loads(data) if data else None

    def upload(self, files):
        """POST /instances for every file (untimed); returns the Orthanc ids of the studies."""
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=600)
        studies = []
        for path in files:
            with open(path, "rb") as f:
                study = self.request("POST", "/instances", f.read(), conn)["ParentStudy"]
            if study not in studies:
                studies.append(study)
        conn.close()
        return studies

    def anonymize(self, studies):
        """Times synchronous POST /studies/{id}/anonymize of every study (two at a time from
        two client threads when there are several: the same two cores as the other tools);
        returns the measurement, with the new studies' ids and statistics."""
        pid = self.proc.pid
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current RSS
        cpu0 = proc_cpu(pid)
        todo, new, lock = list(studies), [], threading.Lock()

        def client():
            while True:
                with lock:
                    if not todo:
                        return
                    study = todo.pop(0)
                r = self.request("POST", f"/studies/{study}/anonymize",
                                 json.dumps({"Force": True, "Synchronous": True}))
                with lock:
                    new.append(r["ID"])
        started = time.monotonic()
        threads = [threading.Thread(target=client) for _ in range(min(JOBS, len(studies)))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.monotonic() - started
        cpu = proc_cpu(pid) - cpu0
        with open(f"/proc/{pid}/status") as f:
            hwm = next(int(ln.split()[1]) for ln in f if ln.startswith("VmHWM:"))
        if len(new) != len(studies):
            raise RuntimeError(f"Orthanc anonymized {len(new)} of {len(studies)} studies")
        out = {"seconds": seconds, "cpu": cpu, "peak_kib": hwm, "rc": 0, "bytes_out": 0,
               "files_out": 0, "new": new}
        out["patient_ids"] = []
        for study in new:
            tags = self.request("GET", f"/studies/{study}")["PatientMainDicomTags"]
            out["patient_ids"].append(tags.get("PatientID", ""))
            stats = self.request("GET", f"/studies/{study}/statistics")
            out["bytes_out"] += int(stats["DiskSize"])
            out["files_out"] += int(stats["CountInstances"])
        return out


def proc_cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- the run

def machine_info(tmp_root):
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                if ln.startswith("model name")), "unknown")
    mem = next((f"{int(ln.split()[1]) / 1024 / 1024:.1f} GiB" for ln in open("/proc/meminfo")
                if ln.startswith("MemTotal")), "unknown")
    mount = subprocess.run(["findmnt", "-no", "SOURCE,FSTYPE,OPTIONS", "-T", tmp_root],
                           capture_output=True, text=True).stdout.strip()

    def first_line(cmd):
        return subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines()[0]
    pydicom_version = subprocess.run([PYTHON, "-c", "import pydicom;print(pydicom.__version__)"],
                                     capture_output=True, text=True).stdout.strip()
    rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "src"],
                           capture_output=True, text=True).stdout.strip()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(), "cpu": cpu, "mem": mem, "kernel": platform.release(),
        "tmp": tmp_root, "fs": mount, "load": open("/proc/loadavg").read().split()[:3],
        "versions": {"dcmodify": first_line(["dcmodify", "--version"]).strip(" $"),
                     "Orthanc": first_line(["Orthanc", "--version"]),
                     "pydicom": f"pydicom {pydicom_version} (Python "
                                f"{first_line([PYTHON, '--version']).split()[-1]})"},
        "conduit": f"git {rev}" + (" + uncommitted changes in src/" if dirty else ""),
    }


def generate(studies, gen_dir):
    sets = []
    for label, key, modality, args, count in studies:
        d = os.path.join(gen_dir, key)
        # Several instances of one shape (DX): one study each (a radiograph is usually a study
        # of its own), all of one patient.
        same = ["--patient-id", "SYN" + key.upper(), "--patient-name", "SYNTHETIC^" + key.upper(),
                "--accession", "ACC" + key.upper()] if count > 1 else []
        for i in range(count):
            out = os.path.join(d, f"{i:03d}") if count > 1 else d
            subprocess.run([MAKE_STUDY, "--out", out, "--modality", modality, "--seed",
                            str(1000 + i)] + args + same, check=True, capture_output=True)
        files = tree_files(d)
        sets.append({"label": label, "key": key, "dir": d, "files": files,
                     "bytes": sum(os.path.getsize(f) for f in files)})
        log(f"generated {label}: {len(files)} files, {sets[-1]['bytes'] / 1e6:.1f} MB")
    return sets


def warm(study):
    for f in study["files"]:
        with open(f, "rb") as fh:
            while fh.read(1 << 20):
                pass


def check_output(out_dir, n_expected, original_patient_id):
    """Untimed: what the tool's output says (file count, distinct Study Instance UIDs,
    whether the original Patient ID is gone)."""
    import pydicom
    files = [f for f in tree_files(out_dir) if not f.endswith(".part")]
    studies, leaked = set(), 0
    for f in files:
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        studies.add(str(ds.StudyInstanceUID))
        leaked += str(ds.get("PatientID", "")) == original_patient_id
    if len(files) != n_expected:
        raise RuntimeError(f"{out_dir}: {len(files)} of {n_expected} files written")
    return {"files_out": len(files), "study_uids": len(studies), "patient_id_leaked": leaked}


def run_tool(tool, study, ctx, work, orthanc=None):
    """One timed run of `tool` on `study`, output under `work` (deleted after the run, so
    every round writes into memory the kernel just freed, as on a machine in steady use)."""
    out = os.path.join(work, f"out-{tool}")
    n = len(study["files"])
    if tool == "orthanc":
        r = orthanc.anonymize(ctx["orthanc_study"][(work, study["key"])])
        if r["files_out"] != n:
            raise RuntimeError(f"Orthanc anonymized {r['files_out']} of {n} instances")
        ctx["check"].setdefault((tool, study["key"]), {
            "files_out": r["files_out"], "study_uids": len(r["patient_ids"]),
            "patient_id_leaked": sum(p == ctx["patient_id"][study["key"]]
                                     for p in r["patient_ids"])})
        for new in r["new"]:
            orthanc.request("DELETE", f"/studies/{new}")
        sync_disk()
        return r
    stdin = None
    batch = max(1, math.ceil(n / (4 * JOBS)))  # dcmodify: 8 batches, 2 at a time
    if tool == "cp":
        cmd = ["cp", "-r", study["dir"], out]
    elif tool == "conduit":
        report = os.path.join(work, "conduit-report.json")
        cmd = [CONDUIT, "deid", "--key-file", ctx["key"], "--in", study["dir"], "--out", out,
               "--jobs", str(JOBS), "--report", report]
    elif tool == "pydicom":
        cmd = [PYTHON, PYDICOM_DEID, "--key-file", ctx["key"], "--in", study["dir"],
               "--out", out, "--jobs", str(JOBS)]
    elif tool == "dcmodify":
        # dcmodify edits files in place: a de-identified copy of a folder is `cp -r` and then
        # dcmodify on the copy, both timed.
        script = ('src=$1 dst=$2; shift 2; cp -r "$src" "$dst" && find "$dst" -type f -print0 '
                  f'| xargs -0 -P {JOBS} -n {batch} dcmodify "$@"')
        cmd = ["sh", "-c", script, "sh", study["dir"], out] + ctx["dcmodify_args"][study["key"]]
    elif tool == "dcmodify-inplace":
        # Only the in-place edit: the copy it edits is made first, untimed.
        subprocess.run(["cp", "-r", study["dir"], out], check=True)
        cmd = ["xargs", "-0", "-P", str(JOBS), "-n", str(batch), "dcmodify"] + \
            ctx["dcmodify_args"][study["key"]]
        stdin = b"\0".join(f.encode() for f in tree_files(out))
    sync_disk()
    r = run_measured(cmd, stdin)
    if r["rc"] != 0:
        raise RuntimeError(f"{tool} exited {r['rc']}: {r['stderr'][-1500:]}")
    if tool == "conduit":
        with open(report) as f:
            rep = json.load(f)
        if rep["files"]["deidentified"] != n:
            raise RuntimeError(f"conduit deid: {rep['files']}")
        r["conduit_seconds"] = rep["seconds"]
    r["bytes_out"] = tree_bytes(out)
    if tool != "cp" and study["key"] in ctx["patient_id"] and \
            ctx["check"].get((tool, study["key"])) is None:
        ctx["check"][(tool, study["key"])] = check_output(out, n, ctx["patient_id"][study["key"]])
    shutil.rmtree(out)
    sync_disk()
    return r


def perf_profile(study, ctx, work):
    """conduit deid under `perf record` (5 kHz, call graphs): the top symbols and shared objects
    by self time, and the system calls with what they call, in shares of all samples."""
    out = tempfile.mkdtemp(prefix="out-perf-", dir=work)
    os.rmdir(out)
    data = os.path.join(work, "perf.data")
    sync_disk()
    r = subprocess.run(["perf", "record", "-q", "-F", "5000", "-g", "-o", data, "--", CONDUIT,
                        "deid", "--key-file", ctx["key"], "--in", study["dir"], "--out", out,
                        "--jobs", str(JOBS)], capture_output=True, text=True)
    if r.returncode != 0:
        return None, r.stderr[-500:]
    rep = subprocess.run(["perf", "report", "-i", data, "--no-children", "--stdio", "-g", "none",
                          "--sort", "dso,sym", "--percent-limit", "1.5"],
                         capture_output=True, text=True).stdout
    rows = []
    for line in rep.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "%" not in line:
            continue
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[0].endswith("%"):
            rows.append((parts[0], parts[1], parts[2].replace("[.] ", "").replace("[k] ", "")))
    by_dso = subprocess.run(["perf", "report", "-i", data, "--no-children", "--stdio",
                             "-g", "none", "--sort", "dso", "--percent-limit", "1"],
                            capture_output=True, text=True).stdout
    dsos = []
    for line in by_dso.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].endswith("%") and not line.startswith("#"):
            dsos.append((parts[0], parts[1]))
    children = subprocess.run(["perf", "report", "-i", data, "--children", "--stdio", "-g",
                               "none", "--sort", "sym"], capture_output=True, text=True).stdout
    calls = {"do_syscall_64": "all system calls", "ksys_write": "write", "ksys_read": "read",
             "do_sys_openat2": "open/create", "__x64_sys_rename": "rename"}
    syscalls = []
    for line in children.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[0].endswith("%") and parts[3] in calls:
            syscalls.append((calls[parts[3]], parts[0]))
    return (rows[:18], dsos, syscalls), None


def main():
    global CONDUIT, MAKE_STUDY
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small studies (smoke test)")
    parser.add_argument("--tmp", default=tempfile.gettempdir(),
                        help="the disk under test: studies, and the 'disk' outputs")
    parser.add_argument("--memory-dir", default="/dev/shm",
                        help="a tmpfs for the 'memory' outputs ('' to skip them)")
    parser.add_argument("--repeat", type=int, default=7,
                        help="rounds per study and tool; the table shows the median")
    parser.add_argument("--json", help="also write the raw results here")
    parser.add_argument("--no-perf", action="store_true", help="skip the perf profile")
    args = parser.parse_args()

    for exe in (CONDUIT, MAKE_STUDY):
        if not os.access(exe, os.X_OK):
            sys.exit(f"missing {exe}: build the conduit and conduit-make-study targets first")
    run_started = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="conduit-deid-bench-", dir=args.tmp)
    targets = [("disk", tmp)]
    if args.memory_dir:
        targets.insert(0, ("memory", tempfile.mkdtemp(prefix="conduit-deid-bench-",
                                                      dir=args.memory_dir)))
    info = machine_info(tmp)
    info["targets"] = {name: subprocess.run(["findmnt", "-no", "SOURCE,FSTYPE", "-T", d],
                                            capture_output=True, text=True).stdout.split("\n")[0]
                       for name, d in targets}
    os.makedirs(os.path.join(tmp, "bin"))
    CONDUIT, MAKE_STUDY = (shutil.copy2(e, os.path.join(tmp, "bin")) for e in (CONDUIT, MAKE_STUDY))
    with open(CONDUIT, "rb") as f:
        info["conduit"] += f", conduit sha256 {hashlib.sha256(f.read()).hexdigest()[:12]}"
    results, flat, profiles, orthancs = {}, {}, {}, []
    try:
        key = os.path.join(tmp, "deid.key")
        subprocess.run([CONDUIT, "keygen", key], check=True, capture_output=True)
        with open(key, "rb") as f:
            key_bytes = f.read()
        studies = generate(STUDIES_QUICK if args.quick else STUDIES_FULL, os.path.join(tmp, "gen"))
        flats = generate(FLAT_QUICK if args.quick else FLAT_FULL, os.path.join(tmp, "gen"))
        import pydicom
        ctx = {"key": key, "check": {}, "orthanc_study": {}, "dcmodify_args": {},
               "patient_id": {}}
        for s in studies:
            ctx["dcmodify_args"][s["key"]] = dcmodify_args(s["dir"], key_bytes)
            ctx["patient_id"][s["key"]] = str(pydicom.dcmread(
                s["files"][0], stop_before_pixels=True).PatientID)
        for target, root in targets:
            work = os.path.join(root, "work")
            os.makedirs(work)
            # Orthanc keeps its storage and index where the other tools write their output.
            orthanc = Orthanc(os.path.join(root, "orthanc"))
            orthancs.append(orthanc)
            orthanc.start()
            t = time.monotonic()
            for s in studies:
                ctx["orthanc_study"][(work, s["key"])] = orthanc.upload(s["files"])
            log(f"{target}: uploaded every study to Orthanc in {time.monotonic() - t:.1f} s "
                "(not timed)")
            orthanc.stop()  # a fresh process for the measurements, its storage already filled
            orthanc.start()
            for s in studies:
                warm(s)
                runs = {t: [] for t in TOOLS}
                for rep in range(args.repeat):
                    for tool in TOOLS[rep % len(TOOLS):] + TOOLS[:rep % len(TOOLS)]:
                        r = run_tool(tool, s, ctx, work, orthanc)
                        runs[tool].append(r)
                        log(f"{target} / {s['label']} / {tool} #{rep + 1}: {r['seconds']:.2f} s, "
                            f"cpu {r['cpu']:.2f} s, peak {r['peak_kib'] / 1024:.0f} MiB")
                for tool, rs in runs.items():
                    secs = [r["seconds"] for r in rs]
                    mid = sorted(range(len(rs)), key=lambda i: secs[i])[len(rs) // 2]
                    results[(target, s["key"], tool)] = {
                        "seconds": statistics.median(secs), "all_seconds": secs,
                        "cpu": rs[mid]["cpu"], "peak_kib": max(r["peak_kib"] for r in rs),
                        "bytes_out": rs[mid]["bytes_out"],
                        "conduit_seconds": rs[mid].get("conduit_seconds")}
            orthanc.stop()
            orthancs.remove(orthanc)
            ct = next(s for s in studies if s["key"].startswith("ct"))
            for s in sorted(flats + [ct], key=lambda s: s["bytes"]):
                warm(s)
                r = run_tool("conduit", s, ctx, work)
                flat[(target, s["key"])] = {"label": s["label"], "files": len(s["files"]),
                                            "bytes": s["bytes"], "seconds": r["seconds"],
                                            "peak_kib": r["peak_kib"]}
                log(f"{target}: flatness {s['label']}: {r['seconds']:.2f} s, "
                    f"peak {r['peak_kib']} KiB")
            if not args.no_perf and shutil.which("perf"):
                biggest = max(flats + [ct], key=lambda s: s["bytes"])
                warm(biggest)
                profiles[target] = (biggest["label"], perf_profile(biggest, ctx, work))
    finally:
        for o in orthancs:
            o.stop()
        for _, root in targets:
            shutil.rmtree(root, ignore_errors=True)
    total = time.monotonic() - run_started
    info["load_end"] = open("/proc/loadavg").read().split()[:3]
    print(render(info, targets, studies, results, flat, profiles, ctx, args, total))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"info": info, "total_seconds": total,
                       "studies": [{k: s[k] for k in ("label", "key", "bytes")} |
                                   {"files": len(s["files"])} for s in studies],
                       "results": [{"target": k[0], "study": k[1], "tool": k[2]} | v
                                   for k, v in results.items()],
                       "flat": [{"target": k[0], "study": k[1]} | v for k, v in flat.items()],
                       "dcmodify_args": ctx["dcmodify_args"],
                       "checks": [{"tool": k[0], "study": k[1]} | v
                                  for k, v in ctx["check"].items()]}, f, indent=1)


def render(info, targets, studies, results, flat, profiles, ctx, args, total):
    where = {"memory": "tmpfs (memory)", "disk": "disk"}
    out = [f"Run {info['date']}, {info['nproc']} CPUs ({info['cpu']}), {info['mem']} RAM, "
           f"kernel {info['kernel']}; studies in {info['tmp']} on {info['fs']}; outputs on "
           + ", ".join(f"{where[t]}: {info['targets'][t]}" for t, _ in targets) +
           f"; Conduit {info['conduit']}; {info['versions']['dcmodify']}; "
           f"{info['versions']['Orthanc']}; {info['versions']['pydicom']}. Load average at "
           f"start {' '.join(info['load'])}, at end {' '.join(info['load_end'])}. "
           f"Whole run {total:.0f} s.", "",
           f"Each figure is the median of {args.repeat} rounds (tools interleaved, a fresh process "
           "per round except Orthanc, which serves every round); MB/s is input MB per second of "
           "wall time for every row. CPU: user + system time of the tool's processes over the "
           f"wall time, in cores (the machine has {info['nproc']}), and per GB of input (the "
           "median round's): the tool's own cost, less sensitive than wall time to other work "
           "on the machine. Peak RSS: the largest of the rounds (sum over the tool's processes).",
           "",
           "| output on | study | tool | wall s | instances/s | MB/s | range, MB/s | CPU (cores) | "
           "CPU s per GB | peak RSS | output MB |",
           "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for target, _ in targets:
        for s in studies:
            n, mb = len(s["files"]), s["bytes"] / 1e6
            label = f"{s['label']} ({n} file{'s' if n > 1 else ''}, " \
                    f"{mb:.{0 if mb >= 10 else 2}f} MB)"
            for tool in TOOLS:
                r = results[(target, s["key"], tool)]
                lo, hi = mb / max(r["all_seconds"]), mb / min(r["all_seconds"])
                out.append(f"| {where[target]} | {label} | {NAMES[tool]} | {r['seconds']:.3f} | "
                           f"{n / r['seconds']:.1f} | {mb / r['seconds']:.0f} | "
                           f"{lo:.0f}–{hi:.0f} | {r['cpu'] / r['seconds']:.2f} | "
                           f"{r['cpu'] / (mb / 1000):.2f} | {r['peak_kib'] / 1024:.0f} MiB | "
                           f"{r['bytes_out'] / 1e6:.{0 if mb >= 10 else 2}f} |")
    out += ["", "Ratios, conduit deid over each peer (wall-time throughput; equal in instances/s "
            "and MB/s: same files):", "",
            "| output on | study | conduit MB/s (target ≥ 1000 for CT) | / pydicom (target ≥ 10) "
            "| / `cp -r` + dcmodify (target ≥ 2) | / dcmodify in place only | / Orthanc | "
            "/ `cp -r` |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for target, _ in targets:
        for s in studies:
            c = results[(target, s["key"], "conduit")]["seconds"]
            mbps = s["bytes"] / 1e6 / c

            def ratio(tool):
                return results[(target, s["key"], tool)]["seconds"] / c

            def mark(v, t):
                return f"{v:.2f} {'met' if v >= t else 'NOT met'}"
            tgt = ("met" if mbps >= 1000 else "NOT met") if s["key"].startswith("ct") else ""
            out.append(f"| {where[target]} | {s['label']} | {mbps:.0f} {tgt} | "
                       f"{mark(ratio('pydicom'), 10)} | {mark(ratio('dcmodify'), 2)} | "
                       f"{ratio('dcmodify-inplace'):.2f} | {ratio('orthanc'):.2f} | "
                       f"{ratio('cp'):.2f} |")
    out += ["", "What each tool's output says (untimed check of its first round's files with "
            "pydicom; Orthanc: its index of the new studies):", "",
            "| study | tool | files out | distinct Study Instance UIDs | files still holding the "
            "original Patient ID |", "|---|---|---:|---:|---:|"]
    for (tool, key), c in sorted(ctx["check"].items(), key=lambda kv: (kv[0][1], kv[0][0])):
        label = next(s["label"] for s in studies if s["key"] == key)
        out.append(f"| {label} | {NAMES[tool]} | {c['files_out']} | {c['study_uids']} | "
                   f"{c['patient_id_leaked']} |")
    out += ["", "conduit deid peak memory by study size (peak RSS of the process, GNU time's %M; "
            "one run each, same run):", "",
            "| output on | study | files | MB | wall s | MB/s | peak RSS |",
            "|---|---|---:|---:|---:|---:|---:|"]
    for (target, _), f in sorted(flat.items(), key=lambda kv: (kv[0][0] != "memory",
                                                                kv[1]["bytes"])):
        out.append(f"| {where[target]} | {f['label']} | {f['files']} | {f['bytes'] / 1e6:.0f} | "
                   f"{f['seconds']:.2f} | {f['bytes'] / 1e6 / f['seconds']:.0f} | "
                   f"{f['peak_kib'] / 1024:.1f} MiB |")
    for target, (label, (prof, err)) in profiles.items():
        out += [""]
        if prof is None:
            out.append(f"(perf record failed: {err})")
            continue
        rows, dsos, syscalls = prof
        out += [f"Where conduit deid's time goes, output on {where[target]}: {label}, "
                "`perf record -F 5000 -g`, share of all samples. By shared object (self): "
                + ", ".join(f"{d} {p}" for p, d in dsos) + ". In system calls (with what they "
                "call): " + ", ".join(f"{c} {p}" for c, p in syscalls) + ". Symbols ≥ 1.5% "
                "(self):", "", "| self | object | symbol |", "|---:|---|---|"]
        out += [f"| {p} | {d} | `{s}` |" for p, d, s in rows]
    out += ["", "dcmodify command per study (run as `xargs -0 -P 2 -n B dcmodify ARGS` over the "
            "copied files, B = files / 8 rounded up):", ""]
    for s in studies:
        out.append(f"- {s['label']}: `dcmodify {' '.join(ctx['dcmodify_args'][s['key']])}`")
    return "\n".join(out)


if __name__ == "__main__":
    main()
