"""Harness for end-to-end tests against real peers: Conduit's own binary, Orthanc as the PACS,
DCMTK's command-line tools as modalities. Everything listens on 127.0.0.1 on free ports, lives
in a temporary folder, and is stopped at the end of each test; every wait is bounded."""

import fcntl
import glob
import json
import os
import random
import select
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request

BUILD = os.environ.get("CONDUIT_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
BUILD = os.path.abspath(BUILD)
CONDUIT = os.path.join(BUILD, "conduit")
MAKE_STUDY = os.path.join(BUILD, "conduit-make-study")
REFERENCE_TOOL = os.path.join(BUILD, "conduit-reference-tool")
ENV = dict(os.environ, TCP_NODELAY="1")


_PORT_LOCK_DIR = os.path.join(tempfile.gettempdir(), f"conduit-test-ports-{os.getuid()}")
_held_port_locks = []


def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(x) for x in f.read().split())
            return low, high
    except (OSError, ValueError):
        return 32768, 60999


def free_port():
    """A port on 127.0.0.1 that nothing listens on now and that no other test process (ctest
    runs suites in parallel) will be handed while this one runs: each port is claimed by a lock
    file held until this process ends. Ports come from below the kernel's ephemeral range, so an
    outgoing connection cannot take one as its source port before its peer binds it."""
    low_ephemeral, _ = _ephemeral_range()
    first, last = 15000, low_ephemeral - 1
    if last - first < 1000:  # an unusual range: fall back to the kernel's choice
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]
    os.makedirs(_PORT_LOCK_DIR, exist_ok=True)
    for _ in range(500):
        port = random.randint(first, last)
        fd = os.open(os.path.join(_PORT_LOCK_DIR, f"{port}.lock"), os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port))
        except OSError:
            os.close(fd)  # releases the lock
            continue
        _held_port_locks.append(fd)
        return port
    raise AssertionError(f"no free port in {first}-{last} after 500 tries")


def read_bytes(path, size=-1):
    with open(path, "rb") as f:
        return f.read(size)


def read_text(path):
    """The file's text, or "" when it does not exist (yet)."""
    if not os.path.exists(path):
        return ""
    with open(path, errors="replace") as f:
        return f.read()


class PeerExited(AssertionError):
    """A peer process ended while a test waited on it: waiting longer cannot help."""


def wait_until(what, predicate, timeout=60.0, interval=0.2):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except PeerExited:
            raise
        except Exception as e:  # the peer may not be up yet
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def first_line(proc, timeout=60):
    """The first line `proc` writes to its stdout pipe, waiting at most `timeout` seconds; ""
    when the process ends or says nothing in time (the caller reports which)."""
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        return ""
    return proc.stdout.readline()


def stop_process(proc, timeout=20):
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds; always reaped, and
    the pipes to it closed."""
    if not proc:
        return
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe:
            pipe.close()


def http_json(url, method="GET", body=None, timeout=10, headers=None, context=None):
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    with urllib.request.urlopen(req, timeout=timeout, context=context) as r:
        raw = r.read()
        return json.loads(raw) if raw else None


def run(cmd, check=True, timeout=300, **kw):
    return subprocess.run(cmd, env=ENV, check=check, timeout=timeout, capture_output=True, text=True, **kw)


def make_test_pki(folder):
    """A throw-away CA and what it signs, made with the openssl command: a server certificate
    for 127.0.0.1, a client certificate, a node certificate for 127.0.0.1 good for both (a DICOM
    node that accepts and opens associations), and a second CA that signed nothing. Returns
    their paths by name (ca, other_ca, server_cert, server_key, client_cert, client_key,
    node_cert, node_key)."""
    os.makedirs(folder, exist_ok=True)
    path = {name: os.path.join(folder, name + ext) for name, ext in (
        ("ca", ".pem"), ("ca_key", ".key"), ("other_ca", ".pem"), ("other_ca_key", ".key"),
        ("server_cert", ".pem"), ("server_key", ".key"), ("client_cert", ".pem"), ("client_key", ".key"),
        ("node_cert", ".pem"), ("node_key", ".key"))}
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    for ca in ("ca", "other_ca"):
        run(["openssl", "req", "-x509", *ec, "-keyout", path[ca + "_key"], "-out", path[ca], "-days", "2",
             "-subj", f"/O=Conduit e2e/CN={ca}", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    for serial, (leaf, usage, names) in enumerate((
            ("server", "serverAuth", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"),
            ("client", "clientAuth", ""),
            ("node", "serverAuth,clientAuth", "subjectAltName=IP:127.0.0.1,DNS:localhost\n")), start=2):
        csr = os.path.join(folder, leaf + ".csr")
        ext = os.path.join(folder, leaf + ".ext")
        with open(ext, "w") as f:
            f.write(f"basicConstraints=critical,CA:FALSE\nextendedKeyUsage={usage}\n{names}")
        run(["openssl", "req", *ec, "-keyout", path[leaf + "_key"], "-out", csr,
             "-subj", f"/O=Conduit e2e/CN=conduit-e2e-{leaf}"])
        run(["openssl", "x509", "-req", "-in", csr, "-CA", path["ca"], "-CAkey", path["ca_key"],
             "-set_serial", str(serial), "-days", "2", "-extfile", ext,
             "-out", path[leaf + "_cert"]])
    for key in ("ca_key", "other_ca_key", "server_key", "client_key", "node_key"):
        os.chmod(path[key], 0o600)
    return path


def make_test_crl(pki, revoke=()):
    """The CA's CRL (next update in 7 days) revoking the certificates named in `revoke` (keys of
    make_test_pki's paths), made with `openssl ca`; its path."""
    folder = os.path.join(os.path.dirname(pki["ca"]), "crl-" + "-".join(revoke or ("none",)))
    os.makedirs(folder, exist_ok=True)
    index = os.path.join(folder, "index.txt")
    open(index, "w").close()
    with open(os.path.join(folder, "crlnumber"), "w") as f:
        f.write("01\n")
    cnf = os.path.join(folder, "ca.cnf")
    with open(cnf, "w") as f:
        f.write(f"[ca]\ndefault_ca = test\n[test]\ndatabase = {index}\n"
                f"crlnumber = {folder}/crlnumber\ndefault_md = sha256\ndefault_crl_days = 7\n")
    for name in revoke:
        run(["openssl", "ca", "-config", cnf, "-keyfile", pki["ca_key"], "-cert", pki["ca"],
             "-revoke", pki[name]])
    crl = os.path.join(folder, "crl.pem")
    run(["openssl", "ca", "-config", cnf, "-keyfile", pki["ca_key"], "-cert", pki["ca"], "-gencrl",
         "-out", crl])
    return crl


def expected_durability(path):
    """What the data dir's file system promises, worked out apart from Conduit: findmnt names
    the file system type and its device number, whose sysfs link names the device; an ext file
    system journals iff jbd2 lists a journal for that device. Of mounts stacked on one another,
    the last listed is the one in use."""
    mounts = run(["findmnt", "-n", "-o", "MAJ:MIN,FSTYPE", "--target", path]).stdout
    device_number, fstype = mounts.splitlines()[-1].split()
    if fstype in ("ext2", "ext3", "ext4"):
        device = os.path.basename(os.path.realpath(f"/sys/dev/block/{device_number}"))
        return "journaling" if glob.glob(f"/proc/fs/jbd2/{device}-*") else "no-journal"
    if fstype in ("xfs", "btrfs", "f2fs"):
        return "journaling"
    if fstype in ("tmpfs", "ramfs"):
        return "volatile"
    if fstype.startswith(("nfs", "cifs", "smb", "fuse")):
        return "network"
    return "unknown"


def make_study(out_dir, modality="CT", slices=12, rows=None, cols=None, extra=()):
    cmd = [MAKE_STUDY, "--out", out_dir, "--modality", modality]
    if modality in ("CT", "MR"):
        cmd += ["--slices", str(slices)]
    if rows:
        cmd += ["--rows", str(rows)]
    if cols:
        cmd += ["--cols", str(cols)]
    run(cmd + list(extra))
    return sorted(os.path.join(out_dir, f) for f in os.listdir(out_dir))


def read_uids(path):
    import pydicom
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID


def storescu(port, files, calling="MODALITY", called="CONDUIT", check=True):
    return run(["storescu", "-aet", calling, "-aec", called, "-nh", "127.0.0.1", str(port)] + list(files),
               check=check)


class Orthanc:
    """A private Orthanc acting as the PACS (and, when asked, as a sender to Conduit)."""

    DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"

    def __init__(self, root, aet="ORTHANC", modalities=None, dicomweb_servers=None, name="orthanc",
                 extra=None):
        """`dicomweb_servers`: {name: base URL, or an Orthanc server object such as
        {"Url": ..., "HttpHeaders": {...}}}; loads the DICOMweb plugin when given. `extra`: more
        configuration options (e.g. DicomTlsEnabled and its files)."""
        self.root = os.path.join(root, name)
        os.makedirs(os.path.join(self.root, "db"), exist_ok=True)
        self.aet = aet
        self.dicom_port = free_port()
        self.http_port = free_port()
        self.modalities = modalities or {}
        self.dicomweb_servers = dicomweb_servers
        self.extra = extra or {}
        self.proc = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.http_port}"

    def start(self):
        cfg = {
            "Name": "test-pacs", "StorageDirectory": os.path.join(self.root, "db"),
            "IndexDirectory": os.path.join(self.root, "db"), "DicomAet": self.aet,
            "DicomPort": self.dicom_port, "HttpPort": self.http_port, "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False, "DicomAlwaysAllowStore": True, "Plugins": [],
            "DicomModalities": self.modalities, "StableAge": 1,
        }
        if self.dicomweb_servers is not None:
            cfg["Plugins"] = [self.DICOMWEB_PLUGIN]
            cfg["DicomWeb"] = {"Enable": True, "Root": "/dicom-web/",
                               "Servers": {k: v if isinstance(v, dict) else [v]
                                           for k, v in self.dicomweb_servers.items()}}
        cfg.update(self.extra)
        path = os.path.join(self.root, "orthanc.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        self.log = open(os.path.join(self.root, "orthanc.log"), "a")
        self.proc = subprocess.Popen(["Orthanc", path], stdout=self.log, stderr=subprocess.STDOUT, env=ENV)
        try:
            wait_until("Orthanc", lambda: self._alive() and http_json(self.url + "/system"), timeout=60)
        except PeerExited:
            raise
        except AssertionError as e:
            raise AssertionError(f"{e}; {self._ports_and_log()}") from None
        return self

    def _ports_and_log(self):
        self.log.flush()
        log = read_text(os.path.join(self.root, "orthanc.log"))
        return f"DICOM port {self.dicom_port}, HTTP port {self.http_port}; log:\n{log[-3000:]}"

    def _alive(self):
        if self.proc.poll() is not None:
            raise PeerExited(f"Orthanc exited with {self.proc.returncode}; {self._ports_and_log()}")
        return True

    def stop(self):
        stop_process(self.proc)
        self.proc = None
        if getattr(self, "log", None):
            self.log.close()

    def series_of(self, study_uid):
        return http_json(self.url + "/tools/find", "POST",
                         {"Level": "Series", "Query": {"StudyInstanceUID": study_uid}, "Expand": True})

    def instances_of_study(self, study_uid):
        return http_json(self.url + "/tools/find", "POST",
                         {"Level": "Instance", "Query": {"StudyInstanceUID": study_uid}, "Expand": True})

    def upload(self, path):
        with open(path, "rb") as f:
            return http_json(self.url + "/instances", "POST", f.read())


class Conduit:
    """A Conduit gateway process with a config written from a dict (JSON is valid YAML).
    `ca_file`: the CA to trust when the config has Conduit serve https (http.tls)."""

    def __init__(self, root, config=None, wrap=(), ca_file=None):
        self.root = root
        self.data_dir = os.path.join(root, "conduit-data")
        self.dicom_port = free_port()
        self.http_port = free_port()
        self.wrap = list(wrap)
        base = {
            "node": {"name": "e2e", "data_dir": self.data_dir, "log_level": "debug"},
            "dicom": {"ae_title": "CONDUIT", "port": self.dicom_port, "bind": "127.0.0.1",
                      "min_free_bytes": 0},
            "http": {"port": self.http_port},
            "retry": {"max_attempts": 4, "initial_backoff": "200ms", "max_backoff": "1s"},
        }
        for k, v in (config or {}).items():
            if isinstance(v, dict) and isinstance(base.get(k), dict):
                base[k].update(v)
            else:
                base[k] = v
        self.config = base
        self.config_path = os.path.join(root, "conduit.yaml")
        with open(self.config_path, "w") as f:
            json.dump(base, f, indent=2)
        self.log_path = os.path.join(root, "conduit.log")
        self.proc = None
        self.context = ssl.create_default_context(cafile=ca_file) if ca_file else None

    @property
    def url(self):
        scheme = "https" if self.config["http"].get("tls") else "http"
        return f"{scheme}://127.0.0.1:{self.http_port}"

    def start(self):
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen(self.wrap + [CONDUIT, "serve", "--config", self.config_path],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=ENV)
        allowed = self.config["dicom"].get("allowed_calling_aes") or ["ECHOSCU"]
        echo_ae = allowed[0] if isinstance(allowed[0], str) else allowed[0]["ae_title"]
        wait_until("Conduit's DICOM listener",
                   lambda: self._alive() and run(["echoscu", "-aet", echo_ae, "-aec", "CONDUIT",
                                                  "127.0.0.1", str(self.dicom_port)],
                                                 check=False).returncode == 0,
                   timeout=60)
        return self

    def _alive(self):
        if self.proc.poll() is not None:
            raise PeerExited(f"conduit exited with {self.proc.returncode}; log:\n{self.logs()[-3000:]}")
        return True

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None
        self.log.close()

    def stop(self):
        stop_process(self.proc)
        self.proc = None
        if getattr(self, "log", None):
            self.log.close()

    def api(self, path, method="GET"):
        # The first token of http.api_token_file, when the config sets one.
        headers = {}
        token_file = self.config["http"].get("api_token_file")
        if token_file:
            with open(token_file) as f:
                token = [line.strip() for line in f if line.strip() and not line.startswith("#")][0]
            headers["Authorization"] = "Bearer " + token
        return http_json(self.url + path, method, headers=headers, context=self.context)

    def jobs(self, state=None):
        return self.api("/api/jobs" + (f"?state={state}" if state else ""))

    def cli(self, *args, check=True):
        return run([CONDUIT] + list(args) + ["--config", self.config_path], check=check)

    def logs(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()


class E2ETest(unittest.TestCase):
    """Gives each test a temporary folder and stops whatever it started."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="conduit-e2e-")
        self._stoppables = []

    def tearDown(self):
        for s in reversed(self._stoppables):
            try:
                s.stop()
            except Exception:
                pass
        if os.environ.get("KEEP_E2E_TMP"):
            print("kept", self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def started(self, thing):
        self._stoppables.append(thing)
        return thing.start()

    def dir(self, name):
        path = os.path.join(self.tmp, name)
        os.makedirs(path, exist_ok=True)
        return path

    def reference_tool(self, **overrides):
        tool = {"name": "reference", "kind": "executable", "command": [REFERENCE_TOOL], "timeout": "120s"}
        tool.update(overrides)
        return tool

    def expect_quarantine_then_end(self, conduit, pacs, study_uid, reason_words, context=lambda: ""):
        """Waits for a quarantined result whose reason names one of `reason_words`, and for the
        job to end (done with what was valid, dead-lettered or failed); checks that PACS holds
        only result objects of the study. Returns the quarantine audit events."""
        def quarantined():
            return [e for e in conduit.api("/api/audit?limit=1000")["events"] if e["action"] == "quarantine"]
        wait_until("a quarantined result", quarantined, timeout=90)
        wait_until("the job to end",
                   lambda: [j for j in conduit.jobs()["jobs"] if j["state"] in ("done", "dead_letter", "failed")],
                   timeout=90)
        events = quarantined()
        self.assertTrue(any(any(w in str(e["detail"]) for w in reason_words) for e in events),
                        f"{events}" + context())
        for instance in pacs.instances_of_study(study_uid):
            tags = http_json(f"{pacs.url}/instances/{instance['ID']}/simplified-tags")
            self.assertIn(tags.get("Modality"), ("SEG", "SR", "OT"))
        return events

    def wait_job_state(self, conduit, state, count=1, timeout=120):
        return wait_until(f"{count} job(s) {state}",
                          lambda: (lambda j: j if len(j) >= count else None)(conduit.jobs(state)["jobs"]),
                          timeout=timeout)
