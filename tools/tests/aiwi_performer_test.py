#!/usr/bin/python3
"""End-to-end test of conduit-aiwi-performer (NON-CLINICAL) against a small UPS-RS Task
Manager written here from PS3.18 chapter 11 (http.server), with a WebSocket event channel
(RFC 6455, server side written here) and WADO-RS/STOW-RS on the same server.

    aiwi_performer_test.py MAKE_STUDY PERFORMER

Runs under Debian's /usr/bin/python3 (pydicom). Covers the pull workflow (complete, 409 taken,
crash-mid-claim, cancel, malformed, wrong-references, error) and the triggered workflow
(subscription, State Report events, catch-up query, Cancel Requested while slow, SIGTERM).
"""
import base64
import hashlib
import http.server
import io
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid

import pydicom

TOKEN = "perf-token-123"
GLOBAL = "1.2.840.10008.5.1.4.34.5"
SEG = "1.2.840.10008.5.1.4.1.1.66.4"


def ui(v):
    return {"vr": "UI", "Value": [v]}


def first(ds, tag):
    v = ds.get(tag, {}).get("Value", [])
    return v[0] if v else None


class TaskManager:
    """Workitems, their history, and the studies served by WADO-RS / received by STOW-RS."""

    def __init__(self, root):
        self.lock = threading.Lock()
        self.items = {}  # uid -> dict(dataset, state, txn, updates, claims)
        self.conflict_once = set()  # uids whose next claim is answered 409
        self.studies = {}  # study uid -> [paths]
        self.stored = []  # bytes of each STOWed part
        self.subscribers = []
        self.retrieved = []  # paths of the GET requests, recorded before they are answered
        self.root = root
        self.base = None

    def add_study(self, folder):
        files = sorted(p for p in pathlib.Path(folder).iterdir() if p.is_file())
        study = str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
        self.studies[study] = files
        return study

    def add_workitem(self, study):
        uid = "2.25.%d" % uuid.uuid4().int
        ds = {
            "00080016": ui("1.2.840.10008.5.1.4.34.6.1"),
            "00080018": ui(uid),
            "00741000": {"vr": "CS", "Value": ["SCHEDULED"]},
            "00404018": {"vr": "SQ", "Value": [{
                "00080100": {"vr": "SH", "Value": ["LUNGSEG"]},
                "00080102": {"vr": "SH", "Value": ["99TEST"]},
                "00080104": {"vr": "LO", "Value": ["Lung segmentation"]}}]},
            "00404021": {"vr": "SQ", "Value": [{
                "0020000D": ui(study),
                "0040E025": {"vr": "SQ", "Value": [{
                    "00081190": {"vr": "UR", "Value": [self.base + "/studies/" + study]}}]}}]},
            "00404070": {"vr": "SQ", "Value": [{
                "00404072": {"vr": "SQ", "Value": [{
                    "00404073": {"vr": "UR", "Value": [self.base]}}]}}]},
        }
        with self.lock:
            self.items[uid] = {"dataset": ds, "state": "SCHEDULED", "txn": None,
                               "updates": [], "claims": 0}
        return uid


def make_handler(tm):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def reply(self, status, body=b"", ctype="application/dicom+json"):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def body(self):
            n = int(self.headers.get("Content-Length", "0"))
            return self.rfile.read(n)

        def authorized(self):
            if self.headers.get("Authorization") != "Bearer " + TOKEN:
                self.body()
                self.reply(401, b"no")
                return False
            return True

        def do_GET(self):
            if not self.authorized():
                return
            url = urllib.parse.urlsplit(self.path)
            q = urllib.parse.parse_qs(url.query)
            with tm.lock:
                tm.retrieved.append(url.path)
            if url.path == "/dw/workitems":
                with tm.lock:
                    out = [{"00080018": ui(u), "00741000": {"vr": "CS", "Value": [w["state"]]}}
                           for u, w in tm.items.items()
                           if q.get("ProcedureStepState", [w["state"]])[0] == w["state"]]
                return self.reply(200, json.dumps(out).encode()) if out else self.reply(204)
            m = re.fullmatch(r"/dw/workitems/([0-9.]+)", url.path)
            if m:
                with tm.lock:
                    w = tm.items.get(m.group(1))
                    if not w:
                        return self.reply(404)
                    ds = dict(w["dataset"], **{"00741000": {"vr": "CS", "Value": [w["state"]]}})
                return self.reply(200, json.dumps([ds]).encode())
            m = re.fullmatch(r"/dw/studies/([0-9.]+)", url.path)
            if m and m.group(1) in tm.studies:
                boundary = "b" + uuid.uuid4().hex
                out = io.BytesIO()
                for p in tm.studies[m.group(1)]:
                    out.write(b"--" + boundary.encode() + b"\r\nContent-Type: application/dicom\r\n\r\n")
                    out.write(p.read_bytes() + b"\r\n")
                out.write(b"--" + boundary.encode() + b"--\r\n")
                return self.reply(200, out.getvalue(),
                                  'multipart/related; type="application/dicom"; boundary=' + boundary)
            self.reply(404)

        def do_PUT(self):
            if not self.authorized():
                return
            m = re.fullmatch(r"/dw/workitems/([0-9.]+)/state", self.path)
            body = json.loads(self.body() or b"{}")
            if not m:
                return self.reply(404)
            state, txn = first(body, "00741000"), first(body, "00081195")
            with tm.lock:
                w = tm.items.get(m.group(1))
                if not w:
                    return self.reply(404)
                if state == "IN PROGRESS":
                    w["claims"] += 1
                    if m.group(1) in tm.conflict_once:
                        tm.conflict_once.discard(m.group(1))
                        w["state"] = "IN PROGRESS"  # someone else took it
                        return self.reply(409)
                    if w["state"] != "SCHEDULED" or not txn:
                        return self.reply(409)
                    w["state"], w["txn"] = "IN PROGRESS", txn
                    return self.reply(200)
                if state in ("COMPLETED", "CANCELED"):
                    if w["state"] != "IN PROGRESS" or txn != w["txn"]:
                        return self.reply(400)
                    w["state"] = state
                    return self.reply(200)
            self.reply(400)

        def do_POST(self):
            if not self.authorized():
                return
            url = urllib.parse.urlsplit(self.path)
            q = urllib.parse.parse_qs(url.query)
            m = re.fullmatch(r"/dw/workitems/([0-9.]+)/subscribers/([^/]+)", url.path)
            if m:
                self.body()
                tm.subscribers.append((m.group(1), urllib.parse.unquote(m.group(2)),
                                       q.get("deletionlock", [""])[0]))
                return self.reply(201)
            m = re.fullmatch(r"/dw/workitems/([0-9.]+)", url.path)
            if m:
                body = json.loads(self.body() or b"{}")
                with tm.lock:
                    w = tm.items.get(m.group(1))
                    if not w:
                        return self.reply(404)
                    txn = q.get("transaction", [None])[0]
                    if w["state"] != "IN PROGRESS" or txn != w["txn"] or \
                            first(body, "00081195") != w["txn"]:
                        return self.reply(400)
                    w["updates"].append(body)
                return self.reply(200)
            if url.path == "/dw/studies":
                ctype = self.headers.get("Content-Type", "")
                boundary = re.search(r'boundary="?([^";]+)"?', ctype).group(1).encode()
                data = self.body()
                parts = data.split(b"--" + boundary)
                for part in parts[1:]:
                    if part.startswith(b"--"):
                        break
                    head, _, content = part.partition(b"\r\n\r\n")
                    tm.stored.append(content[:-2] if content.endswith(b"\r\n") else content)
                return self.reply(200, b"{}")
            self.reply(404)

    return Handler


class EventChannel:
    """A minimal RFC 6455 server: accepts upgrades, sends unmasked text frames."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.clients = []
        self.requests = []
        self.lock = threading.Lock()
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
            text = data.decode("latin-1")
            key = re.search(r"(?i)sec-websocket-key:\s*(\S+)", text).group(1)
            accept = base64.b64encode(hashlib.sha1(
                (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
            # Record the request before answering: the performer says "ready" as soon as the
            # upgrade is answered, and the test reads the request then.
            with self.lock:
                self.requests.append(text)
                conn.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n"
                              % accept).encode())
                self.clients.append(conn)

    def send(self, obj):
        payload = json.dumps(obj).encode()
        n = len(payload)
        header = bytes([0x81, n]) if n < 126 else bytes([0x81, 126]) + n.to_bytes(2, "big")
        with self.lock:
            for c in list(self.clients):
                try:
                    c.sendall(header + payload)
                except OSError:
                    self.clients.remove(c)


def event(kind, uid, state=None):
    ev = {"00000002": ui("1.2.840.10008.5.1.4.34.6.4"), "00001000": ui(uid),
          "00001002": {"vr": "US", "Value": [kind]}}
    if state:
        ev["00741000"] = {"vr": "CS", "Value": [state]}
    return ev


def wait_until(pred, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


class Run:
    def __init__(self, performer, args, tmp):
        self.log = os.path.join(tmp, "outcomes-%s.jsonl" % uuid.uuid4().hex[:8])
        self.stderr = open(os.path.join(tmp, "performer-%s.err" % uuid.uuid4().hex[:8]), "w+")
        self.proc = subprocess.Popen([performer] + args + ["--log", self.log],
                                     stdout=subprocess.PIPE, stderr=self.stderr, text=True)
        self.lines = []
        self.ready = threading.Event()
        self.reader = threading.Thread(target=self.read, daemon=True)
        self.reader.start()

    def read(self):
        for line in self.proc.stdout:
            self.lines.append(line.strip())
            if line.strip() == "ready":
                self.ready.set()

    def outcomes(self):
        if not os.path.exists(self.log):
            return []
        return [json.loads(l) for l in open(self.log) if l.strip()]

    def wait(self, seconds=300):
        """The exit code, once the process has ended and all of its stdout has been read."""
        code = self.proc.wait(timeout=seconds)
        self.reader.join(60)  # the reader sees EOF once the process (and its stdout) ended
        assert not self.reader.is_alive(), "stdout still open after the performer exited"
        return code

    def logs(self):
        self.stderr.seek(0)
        return self.stderr.read()


def main():
    make_study, performer = sys.argv[1], sys.argv[2]
    tmp = tempfile.mkdtemp(prefix="aiwi_performer_test.")
    ok = False
    try:
        subprocess.run([make_study, "--out", tmp + "/study", "--modality", "CT", "--slices", "4",
                        "--rows", "64", "--cols", "64"], check=True, capture_output=True)
        tm = TaskManager(tmp)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), make_handler(tm))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        tm.base = "http://127.0.0.1:%d/dw" % server.server_address[1]
        study = tm.add_study(tmp + "/study")
        inputs = {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID)
                  for p in tm.studies[study]}
        token_file = os.path.join(tmp, "token")
        with open(token_file, "w") as f:
            f.write(TOKEN + "\n")
        common = ["--base-url", tm.base, "--token-file", token_file, "--ae-title", "AIPERF",
                  "--poll-ms", "200", "--work", os.path.join(tmp, "work")]

        def stored_datasets():
            out = []
            for blob in tm.stored:
                try:
                    out.append(pydicom.dcmread(io.BytesIO(blob)))
                except Exception:
                    out.append(None)
            return out

        # 1. pull, normal, with a workitem taken by another performer first (409).
        taken = tm.add_workitem(study)
        tm.conflict_once.add(taken)
        uid = tm.add_workitem(study)
        run = Run(performer, common + ["--once"], tmp)
        assert run.wait() == 0, run.logs()
        assert "ready" in run.lines, run.lines
        outcomes = {o["uid"]: o["outcome"] for o in run.outcomes()}
        assert outcomes == {taken: "taken", uid: "completed"}, outcomes
        w = tm.items[uid]
        assert w["state"] == "COMPLETED", w["state"]
        progress = [first(u["00741002"]["Value"][0], "00741004")
                    for u in w["updates"] if "00741002" in u]
        assert progress == [25, 50, 100], progress
        performed = [u for u in w["updates"] if "00741216" in u]
        assert len(performed) == 1
        item = performed[0]["00741216"]["Value"][0]
        assert first(item["00404019"]["Value"][0], "00080100") == "LUNGSEG"
        refs = [r for s in item["00404033"]["Value"] for r in s["00081199"]["Value"]]
        assert len(refs) == 3, refs
        results = stored_datasets()
        assert len(results) == 3 and all(results), "3 parsable results expected"
        assert {str(d.StudyInstanceUID) for d in results} == {study}
        assert {first(r, "00081155") for r in refs} == {str(d.SOPInstanceUID) for d in results}
        assert "Bearer" not in run.logs() and TOKEN not in run.logs()
        assert study not in run.logs(), "a study UID was logged in clear"
        print("ok: pull: 409 skipped, workitem completed with progress 25/50/100 and outputs")

        # 2. crash-mid-claim: exit 3 with the claim held.
        tm.stored.clear()
        uid = tm.add_workitem(study)
        run = Run(performer, common + ["--misbehave", "crash-mid-claim"], tmp)
        assert run.wait() == 3, run.logs()
        assert tm.items[uid]["state"] == "IN PROGRESS" and not tm.items[uid]["updates"]
        assert [o["outcome"] for o in run.outcomes()] == ["crash-mid-claim"]
        assert not tm.stored
        tm.items[uid]["state"] = "CANCELED"  # as a Task Manager abandoning it would
        print("ok: crash-mid-claim: exit 3, claim held, nothing stored")

        # 3. cancel: claimed then CANCELED with a reason.
        uid = tm.add_workitem(study)
        run = Run(performer, common + ["--misbehave", "cancel", "--once",
                                       "--cancel-reason", "testing cancel"], tmp)
        assert run.wait() == 0, run.logs()
        w = tm.items[uid]
        assert w["state"] == "CANCELED", w["state"]
        reason = first(w["updates"][-1]["00741002"]["Value"][0], "00741238")
        assert reason == "testing cancel", w["updates"]
        assert first(w["updates"][-1]["00741002"]["Value"][0], "00404052")
        assert run.outcomes()[0]["outcome"] == "canceled"
        print("ok: cancel: canceled with reason and cancellation date-time")

        # 4. malformed: one stored part is not DICOM; the workitem is still completed.
        tm.stored.clear()
        uid = tm.add_workitem(study)
        run = Run(performer, common + ["--misbehave", "malformed", "--once"], tmp)
        assert run.wait() == 0, run.logs()
        assert tm.items[uid]["state"] == "COMPLETED"
        parsed = stored_datasets()
        assert len(parsed) == 3 and parsed.count(None) == 1, parsed
        print("ok: malformed: a truncated SEG stored, workitem completed")

        # 5. wrong-references: no result references an input.
        tm.stored.clear()
        uid = tm.add_workitem(study)
        run = Run(performer, common + ["--misbehave", "wrong-references", "--once"], tmp)
        assert run.wait() == 0, run.logs()
        seg = [d for d in stored_datasets() if d is not None and d.SOPClassUID == SEG][0]
        referenced = {str(e.value) for e in seg.iterall() if e.tag == 0x00081155}
        assert referenced and not referenced & inputs, "the SEG still references inputs"
        assert str(seg.StudyInstanceUID) == study
        print("ok: wrong-references: the SEG references no input")

        # 6. error: exits at start-up.
        run = Run(performer, common + ["--misbehave", "error"], tmp)
        assert run.wait(60) == 4
        assert "ready" not in run.lines
        print("ok: error: exit 4 at start-up")

        # 7. triggered: subscription, catch-up query, State Report events, Cancel Requested
        #    while slow, control port, SIGTERM.
        ws = EventChannel()
        early = tm.add_workitem(study)  # created while the performer was away
        run = Run(performer, common + ["--workflow", "triggered", "--control-port", "0",
                                       "--slow-ms", "60000", "--events-url",
                                       "ws://127.0.0.1:%d/ws/subscribers/AIPERF" % ws.port], tmp)
        assert run.ready.wait(60), run.logs()
        assert (GLOBAL, "AIPERF", "false") in tm.subscribers, tm.subscribers
        assert "bearer " + TOKEN in ws.requests[0].lower()
        wait_until(lambda: tm.items[early]["state"] == "COMPLETED", 120, "catch-up completion")
        uid = tm.add_workitem(study)
        ws.send(event(1, uid, "SCHEDULED"))
        wait_until(lambda: tm.items[uid]["state"] == "COMPLETED", 120, "triggered completion")
        control = [l for l in run.lines if l.startswith("control on ")][0].split()[-1]
        import urllib.request
        req = urllib.request.Request("http://%s/sim/mode" % control,
                                     data=json.dumps({"mode": "slow", "count": 1}).encode(),
                                     method="POST")
        assert json.load(urllib.request.urlopen(req, timeout=30))["mode"] == "slow"
        uid = tm.add_workitem(study)
        ws.send(event(1, uid, "SCHEDULED"))
        wait_until(lambda: tm.items[uid]["state"] == "IN PROGRESS", 60, "slow claim")
        # The claim is granted (state set) before the performer reads the answer; it honours a
        # Cancel Requested only for the workitem it is performing, which it records before
        # retrieving the workitem (RAD-83): wait for that retrieval, not for a fixed time.
        wait_until(lambda: "/dw/workitems/" + uid in tm.retrieved, 60, "slow workitem retrieved")
        ws.send(event(2, uid, "IN PROGRESS"))
        wait_until(lambda: tm.items[uid]["state"] == "CANCELED", 60, "cancel on request")
        updates = tm.items[uid]["updates"]
        assert len(updates) == 1 and "00404052" in updates[0]["00741002"]["Value"][0], updates
        # The performer counts an outcome after the Task Manager has answered its last request.
        want = {"completed": 2, "canceled-on-request": 1}
        last = {}

        def status_outcomes():
            last["status"] = json.load(urllib.request.urlopen("http://%s/sim/status" % control,
                                                              timeout=30))
            return last["status"]["outcomes"] == want

        try:
            wait_until(status_outcomes, 60, "outcomes %s in /sim/status" % want)
        except AssertionError:
            raise AssertionError("outcomes in /sim/status: %r" % last.get("status"))
        run.proc.send_signal(signal.SIGTERM)
        assert run.wait(30) == 0, run.logs()
        print("ok: triggered: catch-up, State Report, Cancel Requested while slow, SIGTERM")
        ok = True
    finally:
        if ok:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("logs kept in " + tmp, file=sys.stderr)


if __name__ == "__main__":
    main()
