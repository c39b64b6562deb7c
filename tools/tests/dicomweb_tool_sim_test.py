#!/usr/bin/python3
"""Integration test of conduit-dicomweb-tool-sim (NON-CLINICAL) against a results endpoint
played by this script (http.server) and independent checks with Debian's pydicom.

usage: dicomweb_tool_sim_test.py MAKE_STUDY_BINARY TOOL_SIM_BINARY
Checks: bearer token required (401); a chunked STOW-RS study and an unchunked one are
answered with a proper STOW-RS response and their results come back by STOW-RS with the job's
token, valid, referencing the inputs; error5xx answers 503 then recovers; malformed sends an
unparsable object; wrong-references references other UIDs; other-job uses the previous job's
URL and token; slow delays; /sim/status counts; poll mode serves QIDO-RS and WADO-RS; crash
exits mid-study after the acknowledgement; SIGTERM stops cleanly. Every wait is bounded.
"""
import http.client
import http.server
import io
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import pydicom

HERE = os.path.dirname(os.path.abspath(__file__))
WAIT_S = 180  # generous: a loaded 2-core machine
SEG_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
SC_CLASS = "1.2.840.10008.5.1.4.1.1.7"

failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL: " + msg, file=sys.stderr, flush=True)
    return cond


def log(msg):
    print(msg, flush=True)


# --- multipart/related -------------------------------------------------------------------

def multipart_body(blobs):
    boundary = "dwsimtestboundary7c1f0a"
    out = io.BytesIO()
    for blob in blobs:
        out.write(b"--" + boundary.encode() + b"\r\nContent-Type: application/dicom\r\n\r\n")
        out.write(blob)
        out.write(b"\r\n")
    out.write(b"--" + boundary.encode() + b"--\r\n")
    ctype = 'multipart/related; type="application/dicom"; boundary=' + boundary
    return out.getvalue(), ctype


def parse_multipart(body, content_type):
    m = re.search(r'boundary="?([^";]+)"?', content_type)
    if not m:
        raise ValueError("no boundary in " + content_type)
    delim = b"--" + m.group(1).encode()
    parts = []
    for chunk in body.split(delim)[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, data = chunk.partition(b"\r\n\r\n")
        if data.endswith(b"\r\n"):
            data = data[:-2]
        parts.append(data)
    return parts


# --- the gateway's results endpoint ------------------------------------------------------

class Received:
    def __init__(self):
        self.cond = threading.Condition()
        self.requests = []  # dicts: path, auth, job, parts, content_type

    def add(self, item):
        with self.cond:
            self.requests.append(item)
            self.cond.notify_all()

    def wait_for(self, path, timeout=WAIT_S):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for r in self.requests:
                    if r["path"] == path:
                        return r
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)


RECEIVED = Received()


class ResultsHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        ctype = self.headers.get("Content-Type", "")
        try:
            parts = parse_multipart(body, ctype)
        except ValueError:
            parts = None
        RECEIVED.add({"path": self.path, "auth": self.headers.get("Authorization"),
                      "job": self.headers.get("Conduit-Job"), "parts": parts,
                      "content_type": ctype})
        reply = json.dumps({"00081199": {"vr": "SQ", "Value": []}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/dicom+json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)


# --- the simulator -----------------------------------------------------------------------

class Sim:
    def __init__(self, binary, work, *args):
        self.proc = subprocess.Popen([binary, "--port", "0", "--work", work] + list(args),
                                     stdout=subprocess.PIPE, stderr=open(work + ".log", "w"))
        ready, _, _ = select.select([self.proc.stdout], [], [], 60)
        line = self.proc.stdout.readline().decode() if ready else ""
        m = re.match(r"listening on 127\.0\.0\.1:(\d+)", line)
        if not m:
            self.proc.kill()
            raise RuntimeError("simulator did not report its port: %r" % line)
        self.port = int(m.group(1))

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=WAIT_S)
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, dict((k.lower(), v) for k, v in resp.getheaders()), data

    def stow(self, blobs, headers=None, path="/dicom-web/studies"):
        body, ctype = multipart_body(blobs)
        h = {"Content-Type": ctype, "Accept": "application/dicom+json"}
        h.update(headers or {})
        return self.request("POST", path, body, h)

    def set_mode(self, mode, count=None):
        body = {"mode": mode}
        if count is not None:
            body["count"] = count
        status, _, data = self.request("POST", "/sim/mode", json.dumps(body),
                                       {"Content-Type": "application/json"})
        check(status == 200, "POST /sim/mode %s -> %d %r" % (mode, status, data))

    def status(self):
        _, _, data = self.request("GET", "/sim/status")
        return json.loads(data)

    def wait_status(self, key, at_least, timeout=WAIT_S):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self.status()
            if st[key] >= at_least:
                return st
            time.sleep(0.1)
        return self.status()

    def wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None


# --- checks --------------------------------------------------------------------------------

def read_study(folder):
    blobs, sops = [], {}
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name), "rb") as f:
            blob = f.read()
        ds = pydicom.dcmread(io.BytesIO(blob), stop_before_pixels=True)
        blobs.append(blob)
        sops[ds.SOPInstanceUID] = ds
    return blobs, sops


def referenced_inputs(seg):
    return {i.ReferencedSOPInstanceUID
            for s in seg.ReferencedSeriesSequence for i in s.ReferencedInstanceSequence}


def results_by_class(parts):
    out = {}
    for blob in parts:
        ds = pydicom.dcmread(io.BytesIO(blob))
        out[ds.SOPClassUID] = ds
    return out


def check_stow_answer(status, data, sops, what):
    if not check(status == 200, "%s: STOW answered %d %r" % (what, status, data[:200])):
        return
    answer = json.loads(data)
    items = answer.get("00081199", {}).get("Value", [])
    got = {i["00081155"]["Value"][0] for i in items}
    classes = {i["00081150"]["Value"][0] for i in items}
    check(got == set(sops), "%s: ReferencedSOPSequence lists %d of %d instances"
          % (what, len(got & set(sops)), len(sops)))
    check(classes == {ds.SOPClassUID for ds in sops.values()}, what + ": ReferencedSOPClassUID")


def check_good_results(request, token, study_dir, sops, work, what):
    if not check(request is not None, what + ": no results arrived"):
        return
    check(request["auth"] == "Bearer " + token, what + ": results came without the job's token")
    check(request["content_type"].startswith("multipart/related")
          and 'type="application/dicom"' in request["content_type"], what + ": content type")
    if not check(request["parts"] and len(request["parts"]) == 3, what + ": want 3 result parts"):
        return
    by_class = results_by_class(request["parts"])
    check(SEG_CLASS in by_class and SC_CLASS in by_class, what + ": SEG and SC expected")
    seg = by_class.get(SEG_CLASS)
    if seg is not None:
        check(referenced_inputs(seg) == set(sops), what + ": SEG does not reference the inputs")
        check(seg.StudyInstanceUID == next(iter(sops.values())).StudyInstanceUID,
              what + ": SEG is not in the input study")
    # The reference tool's own independent checker, on the objects as received.
    out = os.path.join(work, what + "-results")
    os.makedirs(out, exist_ok=True)
    names = {SEG_CLASS: "seg.dcm", SC_CLASS: "sc.dcm"}
    for blob in request["parts"]:
        cls = pydicom.dcmread(io.BytesIO(blob), stop_before_pixels=True).SOPClassUID
        with open(os.path.join(out, names.get(cls, "sr.dcm")), "wb") as f:
            f.write(blob)
    rc = subprocess.call(["/usr/bin/python3", os.path.join(HERE, "check_reference_outputs.py"),
                          study_dir, out, "CT"], stdout=subprocess.DEVNULL)
    check(rc == 0, what + ": check_reference_outputs.py failed on the received results")


def main():
    make_study, sim_binary = sys.argv[1], sys.argv[2]
    work = tempfile.mkdtemp(prefix="conduit-dwsim-it.")
    results_server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ResultsHandler)
    threading.Thread(target=results_server.serve_forever, daemon=True).start()
    rport = results_server.server_address[1]
    sims = []
    try:
        study_dir = os.path.join(work, "study")
        subprocess.check_call([make_study, "--out", study_dir, "--modality", "CT", "--slices",
                               "8", "--rows", "96", "--cols", "96", "--seed", "11"],
                              stdout=subprocess.DEVNULL)
        blobs, sops = read_study(study_dir)
        study_uid = next(iter(sops.values())).StudyInstanceUID
        token_file = os.path.join(work, "token")
        with open(token_file, "w") as f:
            f.write("sim-secret\n")
        auth = {"Authorization": "Bearer sim-secret"}

        def job_headers(job, chunk=None):
            h = dict(auth)
            h.update({"Conduit-Job": job,
                      "Conduit-Results-URL": "http://127.0.0.1:%d/jobs/%s" % (rport, job),
                      "Conduit-Results-Token": "tok-" + job})
            if chunk:
                h["Conduit-Chunk"] = chunk
            return h

        sim = Sim(sim_binary, os.path.join(work, "sim"), "--require-token-file", token_file,
                  "--quiet-ms", "300", "--slow-ms", "1500")
        sims.append(sim)

        # Token required.
        status, headers, _ = sim.stow(blobs[:1], {"Conduit-Job": "nope"})
        check(status == 401, "STOW without a token: %d, want 401" % status)
        status, _, _ = sim.stow(blobs[:1], {"Authorization": "Bearer wrong"})
        check(status == 401, "STOW with a wrong token: %d, want 401" % status)

        # Normal, chunked: 2 chunks; results only after 2/2.
        half = len(blobs) // 2
        status, _, data = sim.stow(blobs[:half], job_headers("job-1", "1/2"))
        check(status == 200, "chunk 1/2: %d" % status)
        time.sleep(1.0)  # longer than --quiet-ms: chunked jobs must not use the quiet timer
        check(sim.status()["studies_received"] == 0, "job-1 completed before its last chunk")
        status, _, data2 = sim.stow(blobs[half:], job_headers("job-1", "2/2"))
        check(status == 200, "chunk 2/2: %d" % status)
        got = {i["00081155"]["Value"][0] for d in (data, data2)
               for i in json.loads(d)["00081199"]["Value"]}
        check(got == set(sops), "chunked STOW answers do not list every instance")
        check_good_results(RECEIVED.wait_for("/jobs/job-1/studies"), "tok-job-1", study_dir,
                           sops, work, "job-1")
        log("chunked job: done")

        # Normal, unchunked (quiet timer), to POST /studies/{study}.
        status, _, data = sim.stow(blobs, job_headers("job-2"),
                                   path="/dicom-web/studies/" + study_uid)
        check_stow_answer(status, data, sops, "job-2")
        check_good_results(RECEIVED.wait_for("/jobs/job-2/studies"), "tok-job-2", study_dir,
                           sops, work, "job-2")
        log("unchunked job: done")

        # A part that is not DICOM is refused in FailedSOPSequence; the rest is stored (202).
        status, _, data = sim.stow([b"not dicom at all"], job_headers("job-x"))
        check(status == 409, "STOW of only a non-DICOM part: %d, want 409" % status)
        check("00081198" in json.loads(data), "no FailedSOPSequence for a non-DICOM part")

        # error5xx for 2 requests, then normal again.
        sim.set_mode("error5xx", 2)
        for i in range(2):
            status, headers, _ = sim.stow(blobs, job_headers("job-3"))
            check(status == 503, "error5xx request %d: %d, want 503" % (i + 1, status))
        status, _, data = sim.stow(blobs, job_headers("job-3"))
        check_stow_answer(status, data, sops, "job-3 after error5xx")
        check_good_results(RECEIVED.wait_for("/jobs/job-3/studies"), "tok-job-3", study_dir,
                           sops, work, "job-3")
        log("error5xx: done")

        # malformed: one result is not parsable.
        sim.set_mode("malformed", 1)
        status, _, _ = sim.stow(blobs, job_headers("job-4"))
        check(status == 200, "job-4 STOW: %d" % status)
        req = RECEIVED.wait_for("/jobs/job-4/studies")
        if check(req is not None and req["parts"], "job-4 (malformed): no results arrived"):
            check(req["auth"] == "Bearer tok-job-4", "job-4: token")
            bad = 0
            for blob in req["parts"]:
                try:
                    pydicom.dcmread(io.BytesIO(blob))
                except Exception:
                    bad += 1
            check(bad == 1, "malformed: %d of %d parts unparsable, want 1"
                  % (bad, len(req["parts"])))
        log("malformed: done")

        # wrong-references: results reference other instances.
        sim.set_mode("wrong-references", 1)
        status, _, _ = sim.stow(blobs, job_headers("job-5"))
        check(status == 200, "job-5 STOW: %d" % status)
        req = RECEIVED.wait_for("/jobs/job-5/studies")
        if check(req is not None and req["parts"], "job-5 (wrong-references): no results"):
            by_class = results_by_class(req["parts"])
            seg = by_class.get(SEG_CLASS)
            if check(seg is not None, "wrong-references: no SEG"):
                refs = referenced_inputs(seg)
                check(refs and not (refs & set(sops)),
                      "wrong-references: SEG still references inputs")
            sc = by_class.get(SC_CLASS)
            if check(sc is not None, "wrong-references: no SC"):
                check(sc.SourceImageSequence[0].ReferencedSOPInstanceUID not in sops,
                      "wrong-references: SC source image is an input")
        log("wrong-references: done")

        # other-job: job-6's results go to the previous job's (job-5) URL and token.
        sim.set_mode("other-job", 1)
        before = len([r for r in RECEIVED.requests if r["path"] == "/jobs/job-5/studies"])
        status, _, _ = sim.stow(blobs, job_headers("job-6"))
        check(status == 200, "job-6 STOW: %d" % status)
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            hits = [r for r in RECEIVED.requests if r["path"] == "/jobs/job-5/studies"]
            if len(hits) > before:
                break
            time.sleep(0.1)
        hits = [r for r in RECEIVED.requests if r["path"] == "/jobs/job-5/studies"]
        if check(len(hits) > before, "other-job: nothing arrived at the previous job's URL"):
            check(hits[-1]["auth"] == "Bearer tok-job-5", "other-job: not the other job's token")
        check(not any(r["path"] == "/jobs/job-6/studies" for r in RECEIVED.requests),
              "other-job: results also went to the right job")
        log("other-job: done")

        # slow: results held for --slow-ms (1500 ms).
        sim.set_mode("slow", 1)
        acked = time.monotonic()
        status, _, _ = sim.stow(blobs, job_headers("job-7"))
        check(status == 200, "job-7 STOW: %d" % status)
        check(RECEIVED.wait_for("/jobs/job-7/studies") is not None, "slow: no results")
        check(time.monotonic() - acked >= 1.5, "slow: results came before --slow-ms")
        log("slow: done")

        st = sim.wait_status("results_sent", 21)
        check(st["studies_received"] == 7, "status studies_received %r" % st)
        check(st["results_sent"] == 21, "status results_sent %r" % st)
        check(st["instances_received"] == 7 * len(blobs), "status instances_received %r" % st)
        check(st["mode"] == "none" and st["stow_rejected"] >= 4, "status mode/rejected %r" % st)

        # SIGTERM: a clean stop.
        sim.proc.send_signal(signal.SIGTERM)
        check(sim.wait_exit(30) == 0, "SIGTERM did not stop the simulator with exit code 0")
        log("SIGTERM: done")

        # Poll mode: results served by QIDO-RS and WADO-RS, beside the inputs.
        poll = Sim(sim_binary, os.path.join(work, "poll"), "--results-mode", "poll",
                   "--quiet-ms", "300")
        sims.append(poll)
        status, _, data = poll.stow(blobs)
        check_stow_answer(status, data, sops, "poll")
        st = poll.wait_status("results_ready", 3)
        check(st["results_ready"] == 3 and st["result_requests_sent"] == 0,
              "poll: results not ready / sent anyway: %r" % st)
        status, headers, data = poll.request(
            "GET", "/dicom-web/studies/%s/instances" % study_uid,
            headers={"Accept": "application/dicom+json"})
        check(status == 200 and headers.get("content-type", "").startswith(
            "application/dicom+json"), "QIDO-RS: %d" % status)
        listed = json.loads(data) if status == 200 else []
        check(len(listed) == len(blobs) + 3, "QIDO-RS lists %d, want inputs + 3" % len(listed))
        results = [i for i in listed if i["00080018"]["Value"][0] not in sops]
        for item in results:
            check(all(k in item for k in ("0020000D", "0020000E", "00080018", "00080016")),
                  "QIDO-RS item lacks a UID attribute")
            series = item["0020000E"]["Value"][0]
            sop = item["00080018"]["Value"][0]
            status, headers, body = poll.request(
                "GET", "/dicom-web/studies/%s/series/%s/instances/%s" % (study_uid, series, sop),
                headers={"Accept": 'multipart/related; type="application/dicom"'})
            if not check(status == 200, "WADO-RS: %d" % status):
                continue
            parts = parse_multipart(body, headers.get("content-type", ""))
            check(len(parts) == 1, "WADO-RS: %d parts" % len(parts))
            ds = pydicom.dcmread(io.BytesIO(parts[0]))
            check(ds.SOPInstanceUID == sop, "WADO-RS: wrong instance")
            if ds.SOPClassUID == SEG_CLASS:
                check(referenced_inputs(ds) == set(sops), "poll: SEG does not reference inputs")
        status, _, data = poll.request(
            "GET", "/dicom-web/studies/%s/instances?Modality=SEG" % study_uid)
        check(status == 200 and len(json.loads(data)) == 1, "QIDO-RS Modality=SEG filter")
        status, _, _ = poll.request("GET", "/dicom-web/studies/1.2.3/series/4/instances/5")
        check(status == 404, "WADO-RS of an unknown instance: %d, want 404" % status)
        log("poll mode: done")

        # crash: the STOW is acknowledged, then the process exits mid-study.
        poll.set_mode("crash")
        status, _, _ = poll.stow(blobs)
        check(status == 200, "crash: STOW not acknowledged (%d)" % status)
        check(poll.wait_exit(60) == 3, "crash: the simulator did not exit with code 3")
        log("crash: done")
    finally:
        for s in sims:
            if s.proc.poll() is None:
                s.proc.kill()
                s.proc.wait()
        results_server.shutdown()
        if failures:
            for name in ("sim.log", "poll.log"):
                path = os.path.join(work, name)
                if os.path.exists(path):
                    sys.stderr.write("--- %s ---\n" % name + open(path).read()[-4000:])
        shutil.rmtree(work, ignore_errors=True)
    if failures:
        print("%d failure(s)" % len(failures), file=sys.stderr)
        return 1
    print("dicomweb tool sim integration: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
