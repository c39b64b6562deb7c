"""IHE AI Workflow for Imaging end to end over real HTTP and WebSocket: Conduit schedules a UPS
workitem per job on a pull-model tool's worklist (Task Requester + Task Manager); the AIW-I
performer simulator (tools/aiwi_performer, running the reference algorithm) finds it by query
(pull) or by event (triggered pull), claims it, reads the de-identified inputs by WADO-RS,
stores its results by STOW-RS and completes it; the results reach Orthanc re-identified. Each
misbehaviour of the performer ends in a clear state with nothing lost."""

import glob
import json
import os
import subprocess
import sys
import threading
import unittest
import urllib.error
import urllib.request

import pydicom  # Debian python3-pydicom (tests run with /usr/bin/python3)
import websocket  # Debian python3-websocket: an independent event-channel client

sys.path.insert(0, os.path.dirname(__file__))
from harness import (E2ETest, PeerExited, Conduit, Orthanc, make_study, read_uids,  # noqa: E402
                     storescu, wait_until, http_json, stop_process, free_port, first_line, read_bytes,
                     read_text, make_test_pki, BUILD, ENV)

PERFORMER = os.path.join(BUILD, "conduit-aiwi-performer")
TOKEN = "aiwi-performer-token-e2e"
GLOBAL_WORKLIST = "1.2.840.10008.5.1.4.34.5"


class Performer:
    """The AIW-I performer simulator, in a folder of its own."""

    def __init__(self, root, conduit, workflow="pull", misbehave="none", ae="AIPERF", extra=(),
                 poll_ms=300):
        self.work = os.path.join(root, f"performer-{ae}-{misbehave}")
        os.makedirs(self.work, exist_ok=True)
        self.token_file = os.path.join(root, "performer.token")
        self.conduit = conduit
        self.workflow = workflow
        self.misbehave = misbehave
        self.ae = ae
        self.extra = list(extra)
        self.poll_ms = poll_ms
        self.proc = None
        self.log_path = os.path.join(self.work, "handled.jsonl")

    def start(self):
        cmd = [PERFORMER, "--base-url", self.conduit.url + "/dicom-web", "--token-file", self.token_file,
               "--ae-title", self.ae, "--workflow", self.workflow, "--poll-ms", str(self.poll_ms),
               "--work", os.path.join(self.work, "files"), "--keep-files", "--log", self.log_path,
               "--misbehave", self.misbehave] + self.extra
        if self.workflow == "triggered":
            scheme = "wss" if self.conduit.url.startswith("https") else "ws"
            cmd += ["--events-url",
                    f"{scheme}://127.0.0.1:{self.conduit.event_port}/ws/subscribers/{self.ae}"]
        self.err = open(os.path.join(self.work, "performer.log"), "a")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.err, env=ENV, text=True)
        line = first_line(self.proc, timeout=90)
        if "ready" not in line:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait(timeout=10)
            raise PeerExited(f"performer did not start ({self.proc.returncode}): {line!r}\n{self.log()}")
        return self

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            stop_process(self.proc)
        if getattr(self, "err", None):
            self.err.close()

    def log(self):
        path = os.path.join(self.work, "performer.log")
        return read_text(path)

    def handled(self):
        if not os.path.exists(self.log_path):
            return []
        with open(self.log_path) as f:
            return [json.loads(line) for line in f if line.strip()]

    def received_files(self):
        files = [p for p in glob.glob(os.path.join(self.work, "files", "**", "*"), recursive=True)
                 if os.path.isfile(p)]
        return [p for p in files if read_bytes(p, 132)[128:132] == b"DICM"]


class WorklistTest(E2ETest):
    def gateway(self, pacs, turnaround="60s", timeout="60s", retry=None, https=None):
        """https: make_test_pki's paths; Conduit then serves https (http.tls), and with it the
        event channel wss."""
        with open(os.path.join(self.tmp, "performer.token"), "w") as f:
            f.write(TOKEN + "\n")
        tool = {"name": "aiwi", "kind": "worklist",
                "worklist": {"auth_token_file": os.path.join(self.tmp, "performer.token"),
                             "priority": "HIGH"},
                "timeout": timeout, "expected_turnaround": turnaround, "hosting_region": "UK"}
        event_port = free_port()
        config = {
            "http": {"event_channel_port": event_port},
            "destinations": [{"name": "pacs", "ae_title": pacs.aet, "host": "127.0.0.1",
                              "port": pacs.dicom_port, "timeout": "5s"}],
            "tools": [tool],
            "routes": [{"name": "ct", "when": {"Modality": "CT"}, "tool": "aiwi",
                        "results_to": ["pacs"], "stable_after": "1s"}],
            "retry": retry or {"max_attempts": 4, "initial_backoff": "200ms", "max_backoff": "500ms"},
        }
        if https:
            # Mutual TLS: the performer and this test's API calls present the client
            # certificate of the same CA.
            config["http"]["tls"] = {"certificate_file": https["server_cert"],
                                     "key_file": https["server_key"], "ca_file": https["ca"]}
        conduit = Conduit(self.tmp, config, ca_file=https["ca"] if https else None)
        if https:
            conduit.context.load_cert_chain(https["client_cert"], https["client_key"])
        conduit.event_port = event_port
        return self.started(conduit)

    def send_study(self, conduit, slices=6):
        files = make_study(self.dir("study"), "CT", slices=slices, rows=64, cols=64)
        storescu(conduit.dicom_port, files)
        return files, read_uids(files[0])[0]

    def audit(self, conduit):
        return conduit.api("/api/audit?limit=1000")["events"]

    def workitems(self, conduit, query=""):
        req = urllib.request.Request(conduit.url + "/dicom-web/workitems" + query,
                                     headers={"Authorization": "Bearer " + TOKEN,
                                              "Accept": "application/dicom+json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read()
            return json.loads(body) if body else []

    @staticmethod
    def state_of(item):
        return item["00741000"]["Value"][0]

    def context(self, conduit, *performers):
        logs = "".join(f"\nperformer {p.ae}/{p.misbehave} log:\n{p.log()[-2500:]}" for p in performers)
        return logs + f"\nconduit log tail:\n{conduit.logs()[-4000:]}"

    def expect_results_in_pacs_reidentified(self, pacs, study_uid, files, ctx):
        modalities = sorted(s["MainDicomTags"].get("Modality", "") for s in pacs.series_of(study_uid))
        self.assertEqual(modalities, ["OT", "SEG", "SR"], ctx)
        input_sops = {read_uids(f)[2] for f in files}
        sops = [i["MainDicomTags"]["SOPInstanceUID"] for i in pacs.instances_of_study(study_uid)]
        self.assertEqual(len(sops), 3, "the three results, each once")
        self.assertFalse(input_sops & set(sops), "no input is sent to PACS")
        original = pydicom.dcmread(files[0], stop_before_pixels=True)
        for instance in pacs.instances_of_study(study_uid):
            tags = http_json(f"{pacs.url}/instances/{instance['ID']}/simplified-tags")
            self.assertEqual(tags["PatientID"], str(original.PatientID), "re-identified")
        return original

    def expect_nothing_identifying(self, performer, files, study_uid):
        original = pydicom.dcmread(files[0], stop_before_pixels=True)
        received = performer.received_files()
        self.assertGreaterEqual(len(received), len(files), "the performer read every input")
        secrets = [str(original.PatientID).encode(), str(original.PatientName).encode(),
                   study_uid.encode(), str(original.SOPInstanceUID).encode()]
        for path in received:
            data = read_bytes(path)
            for secret in secrets:
                self.assertNotIn(secret, data, f"{path} carries an identifier in clear")

    def test_pull_the_performer_queries_claims_and_completes_and_results_reach_pacs(self):
        pacs = self.started(Orthanc(self.tmp))
        conduit = self.gateway(pacs)
        performer = self.started(Performer(self.tmp, conduit, "pull"))
        files, study_uid = self.send_study(conduit)

        job = self.wait_job_state(conduit, "done", timeout=120)[0]
        ctx = self.context(conduit, performer)
        self.expect_results_in_pacs_reidentified(pacs, study_uid, files, ctx)
        self.expect_nothing_identifying(performer, files, study_uid)

        items = self.workitems(conduit)
        self.assertEqual(len(items), 1, ctx)
        self.assertEqual(self.state_of(items[0]), "COMPLETED")
        # What the worklist shows the tool is pseudonymous too.
        text = json.dumps(items[0])
        original = pydicom.dcmread(files[0], stop_before_pixels=True)
        self.assertNotIn(str(original.PatientID), text)
        self.assertNotIn(study_uid, text)
        self.assertNotIn("00081195", text, "the Transaction UID is never shown")
        # The performer logs its outcome once Conduit has answered its COMPLETED, which may be
        # after the job is done.
        wait_until("the performer's outcome log", performer.handled, timeout=60)
        self.assertEqual([h["outcome"] for h in performer.handled()][:1], ["completed"], ctx)
        actions = {(e["action"], e["outcome"]) for e in self.audit(conduit) if e["job_id"] == job["id"]}
        for expected in (("deidentify", "success"), ("dispatch", "success"), ("reidentify", "success"),
                         ("done", "success")):
            self.assertIn(expected, actions, ctx)
        # The performer's WADO-RS of the inputs is the transfer out: audited against the tool,
        # the job and the original study, from the de-identified view.
        reads = [e for e in conduit.api(f"/api/audit?limit=500&study={study_uid}")["events"]
                 if e["action"] == "retrieve"]
        self.assertTrue(reads, ctx)
        for e in reads:
            self.assertEqual((e["job_id"], e["detail"]["view"], e["detail"]["credential"]),
                             (job["id"], "deidentified", "job"), e)
            self.assertEqual(e["actor"], job["tool"], e)
        self.assertEqual(sum(e["detail"]["instances"] for e in reads
                             if e["detail"]["resource"] == "instances"), len(files), ctx)

    def test_triggered_pull_the_performer_acts_on_events_and_an_independent_client_sees_them(self):
        pacs = self.started(Orthanc(self.tmp))
        conduit = self.gateway(pacs)
        # An independent subscriber (websocket-client) on the whole worklist, beside the performer.
        req = urllib.request.Request(
            f"{conduit.url}/dicom-web/workitems/{GLOBAL_WORKLIST}/subscribers/WATCHER", method="POST",
            headers={"Authorization": "Bearer " + TOKEN})
        with urllib.request.urlopen(req, timeout=10) as r:
            self.assertIn(r.status, (200, 201))
        ws = websocket.create_connection(
            f"ws://127.0.0.1:{conduit.event_port}/ws/subscribers/WATCHER", timeout=60,
            header=["Authorization: Bearer " + TOKEN])
        events = []

        def listen():
            try:
                while True:
                    events.append(json.loads(ws.recv()))
            except Exception:
                pass
        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        try:
            performer = self.started(Performer(self.tmp, conduit, "triggered", poll_ms=600000))
            files, study_uid = self.send_study(conduit)
            self.wait_job_state(conduit, "done", timeout=120)
            ctx = self.context(conduit, performer)
            self.expect_results_in_pacs_reidentified(pacs, study_uid, files, ctx)
            self.expect_nothing_identifying(performer, files, study_uid)

            def states():
                out = []
                for e in events:
                    e = e[0] if isinstance(e, list) else e
                    if "00741000" in e:
                        out.append(e["00741000"]["Value"][0])
                return out
            wait_until("the watcher to see the workitem completed",
                       lambda: "COMPLETED" in states(), timeout=30)
            seen = states()
            self.assertEqual(seen[0], "SCHEDULED", f"{seen}{ctx}")
            self.assertIn("IN PROGRESS", seen)
        finally:
            ws.close()

    def test_over_https_the_event_channel_is_wss_and_a_plain_ws_client_gets_nothing(self):
        """With http.tls the performer's bearer token never travels in the clear: the UPS-RS
        calls are https and the event channel wss, both verified against the trust's CA, and
        both ask the performer for its client certificate (http.tls.ca_file)."""
        pki = make_test_pki(self.dir("pki"))
        pacs = self.started(Orthanc(self.tmp))
        conduit = self.gateway(pacs, https=pki)
        self.assertTrue(conduit.url.startswith("https://"))
        with self.assertRaises(Exception):
            websocket.create_connection(
                f"ws://127.0.0.1:{conduit.event_port}/ws/subscribers/AIPERF", timeout=10,
                header=["Authorization: Bearer " + TOKEN]).close()
        # A wss client that trusts the gateway but has no client certificate: refused at the
        # handshake, and audited, with the token still unsent.
        with self.assertRaises(Exception):
            websocket.create_connection(
                f"wss://127.0.0.1:{conduit.event_port}/ws/subscribers/AIPERF", timeout=10,
                header=["Authorization: Bearer " + TOKEN], sslopt={"ca_certs": pki["ca"]}).close()
        performer = self.started(Performer(self.tmp, conduit, "triggered", poll_ms=600000,
                                           extra=["--ca-file", pki["ca"],
                                                  "--client-cert", pki["client_cert"],
                                                  "--client-key", pki["client_key"]]))
        self.assertIn("event channel open (TLS)", performer.log())
        files, study_uid = self.send_study(conduit)
        self.wait_job_state(conduit, "done", timeout=120)
        ctx = self.context(conduit, performer)
        self.expect_results_in_pacs_reidentified(pacs, study_uid, files, ctx)
        self.expect_nothing_identifying(performer, files, study_uid)
        self.assertNotIn("plain WebSocket", conduit.logs())
        refused = [e for e in self.audit(conduit) if e["action"] == "ups_refused"
                   and e["detail"]["route"] == "tls_handshake"]
        self.assertEqual([e["detail"]["reason"] for e in refused], ["no client certificate"])

    def test_a_performer_that_crashes_mid_claim_has_its_work_returned_to_the_queue(self):
        pacs = self.started(Orthanc(self.tmp))
        # Long enough for the test to see the claim held before it is taken back.
        conduit = self.gateway(pacs, turnaround="10s")
        crasher = Performer(self.tmp, conduit, "pull", misbehave="crash-mid-claim", ae="CRASHER")
        self.started(crasher)
        files, study_uid = self.send_study(conduit)
        wait_until("the performer to crash mid-claim", lambda: crasher.proc.poll() is not None, timeout=60)
        self.assertEqual(crasher.proc.returncode, 3, crasher.log())
        items = self.workitems(conduit)
        self.assertEqual([self.state_of(i) for i in items], ["IN PROGRESS"])

        # The claim goes quiet past the tool's turnaround: canceled, and the job's work is
        # scheduled again for whoever comes next.
        wait_until("a fresh workitem",
                   lambda: sorted(self.state_of(i) for i in self.workitems(conduit)) == ["CANCELED", "SCHEDULED"],
                   timeout=60)
        performer = self.started(Performer(self.tmp, conduit, "pull"))
        self.wait_job_state(conduit, "done", timeout=120)
        self.expect_results_in_pacs_reidentified(pacs, study_uid, files, self.context(conduit, performer))
        self.assertTrue([e for e in self.audit(conduit) if "abandon" in json.dumps(e)],
                        "the abandonment is audited")

    def test_a_performer_that_cancels_has_the_job_dispatched_again(self):
        pacs = self.started(Orthanc(self.tmp))
        conduit = self.gateway(pacs)
        performer = self.started(Performer(self.tmp, conduit, "pull", misbehave="cancel",
                                           extra=["--misbehave-count", "1"]))
        files, study_uid = self.send_study(conduit)
        job = self.wait_job_state(conduit, "done", timeout=120)[0]
        ctx = self.context(conduit, performer)
        self.expect_results_in_pacs_reidentified(pacs, study_uid, files, ctx)
        wait_until("the performer's outcome log",
                   lambda: len(performer.handled()) >= 2, timeout=60)
        self.assertEqual([h["outcome"] for h in performer.handled()][:2], ["canceled", "completed"], ctx)
        retries = [e for e in self.audit(conduit) if e["job_id"] == job["id"] and e["action"] == "retry"]
        self.assertEqual(len(retries), 1, ctx)

    def expect_quarantine(self, misbehave, reason_words):
        pacs = self.started(Orthanc(self.tmp))
        conduit = self.gateway(pacs, retry={"max_attempts": 2, "initial_backoff": "200ms",
                                            "max_backoff": "200ms"})
        performer = self.started(Performer(self.tmp, conduit, "pull", misbehave=misbehave))
        _, study_uid = self.send_study(conduit)
        self.expect_quarantine_then_end(conduit, pacs, study_uid, reason_words,
                                        lambda: self.context(conduit, performer))

    def test_a_malformed_result_is_quarantined(self):
        self.expect_quarantine("malformed", ["DICOM", "parse", "read", "Pixel", "Content"])

    def test_results_referencing_other_images_are_quarantined(self):
        self.expect_quarantine("wrong-references", ["reference", "Reference"])

    def test_a_wrong_token_is_refused_and_audited(self):
        pacs = self.started(Orthanc(self.tmp))
        conduit = self.gateway(pacs)
        req = urllib.request.Request(conduit.url + "/dicom-web/workitems",
                                     headers={"Authorization": "Bearer not-the-token"})
        with self.assertRaises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(req, timeout=10)
        self.assertEqual(refused.exception.code, 401)
        self.assertNotIn("not-the-token", conduit.logs())


if __name__ == "__main__":
    unittest.main()
