"""The RIS over HL7 v2.5.1 / MLLP end to end, with the RIS simulator (tools/ris_sim): the RIS's
"exam completed" order completes a study ahead of its quiet period; once the results are in
PACS the RIS receives the priority update (the reference tool's finding is urgent by the rule)
and the ORU^R01 with the AI finding, in that order, for the original patient; a RIS that is
down gets them when it is back; a refusal (AR) is final and audited; the RIS's own reports are
stored as ground truth."""

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from harness import (E2ETest, PeerExited, Conduit, Orthanc, make_study, read_uids,  # noqa: E402
                     storescu, wait_until, free_port, stop_process, read_text, make_test_pki, BUILD, ENV)

RIS_SIM = os.path.join(BUILD, "conduit-ris-sim")
PATIENT = "RIS-E2E-4410"
ACCESSION = "ACC-E2E-91"


class RisSim:
    """The RIS simulator listening on `port` (0: any free one) and logging what it receives."""

    def __init__(self, root, mode="aa", port=0, tls_args=()):
        self.root = os.path.join(root, "ris")
        os.makedirs(self.root, exist_ok=True)
        self.mode = mode
        self.port = port
        self.tls_args = list(tls_args)
        self.log_path = os.path.join(self.root, f"received-{mode}.jsonl")
        self.proc = None

    def start(self):
        port_file = os.path.join(self.root, "port")
        if os.path.exists(port_file):
            os.remove(port_file)
        self.err = open(os.path.join(self.root, "sim.log"), "a")
        self.proc = subprocess.Popen([RIS_SIM, "--listen", str(self.port), "--bind", "127.0.0.1",
                                      "--mode", self.mode, "--log", self.log_path, "--port-file", port_file,
                                      *self.tls_args],
                                     stdout=self.err, stderr=self.err, env=ENV)
        wait_until("the RIS simulator", lambda: self._alive() and os.path.exists(port_file)
                   and read_text(port_file).strip(), timeout=60)
        self.port = int(read_text(port_file))
        return self

    def _alive(self):
        if self.proc.poll() is not None:
            raise PeerExited(f"ris sim exited with {self.proc.returncode}")
        return True

    def stop(self):
        stop_process(self.proc)
        self.err.close()

    def received(self):
        if not os.path.exists(self.log_path):
            return []
        return [json.loads(line) for line in open(self.log_path) if line.strip()]


def send_to_conduit(port, kind, tls_args=(), **fields):
    """Sends an ORM "exam completed" or an ORU report to Conduit's MLLP listener; the exit code
    is the ACK's (0 for AA)."""
    cmd = [RIS_SIM, "--send", kind, "--to", f"127.0.0.1:{port}", "--ack-timeout-ms", "20000",
           *tls_args]
    for key, value in fields.items():
        cmd += ["--" + key.replace("_", "-"), value]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=ENV)


class RisTest(E2ETest):
    def gateway(self, pacs, ris_port, stable_after="1s", allowed_hosts=None, tls=None, shadow=False):
        listen = free_port()
        config = {
            "destinations": [{"name": "pacs", "ae_title": pacs.aet, "host": "127.0.0.1",
                              "port": pacs.dicom_port, "timeout": "5s"}],
            "tools": [self.reference_tool()],
            "routes": [{"name": "ct", "when": {"Modality": "CT"}, "tool": "reference",
                        "results_to": ["pacs"], "stable_after": stable_after}],
            "ris": {"host": "127.0.0.1", "port": ris_port, "receiving_application": "RIS",
                    "sending_facility": "AIHUB", "listen_port": listen, "listen_bind": "127.0.0.1",
                    "ack_timeout": "5s", "connect_timeout": "2s",
                    "retry": {"initial_backoff": "200ms", "max_backoff": "1s"},
                    "send": {"results": True, "priority": "omi"},
                    "urgent_when": {"codes": ["SCT:52101004"]}},
        }
        if shadow:
            config["routes"][0]["shadow"] = True
            del config["routes"][0]["results_to"]
        if allowed_hosts is not None:
            config["ris"]["listen_allowed_hosts"] = allowed_hosts
        if tls is not None:
            config["ris"]["tls"] = tls
        conduit = Conduit(self.tmp, config)
        conduit.mllp_port = listen
        return self.started(conduit)

    def study(self, slices=6):
        files = make_study(self.dir("study"), "CT", slices=slices, rows=64, cols=64,
                           extra=["--patient-id", PATIENT, "--accession", ACCESSION])
        return files, read_uids(files[0])[0]

    def audit(self, conduit):
        return conduit.api("/api/audit?limit=1000")["events"]

    def expect_priority_then_results(self, ris, ctx):
        messages = wait_until("the priority update and the results at the RIS",
                              lambda: (lambda m: m if len(m) >= 2 else None)(ris.received()), timeout=60)
        self.assertEqual([m["type"] for m in messages[:2]], ["OMI^O23", "ORU^R01"], ctx)
        for m in messages[:2]:
            self.assertEqual(m["patient_id"], PATIENT, "the RIS gets the original patient")
            self.assertEqual(m["accession"], ACCESSION)
        self.assertEqual(messages[0]["priority"], "S", f"stat: {messages[0]}")
        self.assertTrue(messages[1]["obx"], "the ORU carries the AI findings")
        self.assertEqual(len({m["control_id"] for m in messages}), len(messages), "nothing sent twice")
        return messages

    def test_an_exam_completed_order_completes_the_study_and_the_ris_gets_priority_then_findings(self):
        pacs = self.started(Orthanc(self.tmp))
        ris = self.started(RisSim(self.tmp))
        # The quiet period is ten minutes: only the RIS's order can complete the study in time.
        conduit = self.gateway(pacs, ris.port, stable_after="600s")
        files, study_uid = self.study()
        storescu(conduit.dicom_port, files)
        wait_until("the instances indexed",
                   lambda: conduit.api("/api/studies?limit=10")["studies"], timeout=60)
        answer = send_to_conduit(conduit.mllp_port, "orm-complete", accession=ACCESSION, patient_id=PATIENT)
        self.assertEqual(answer.returncode, 0, f"AA expected: {answer.stdout}{answer.stderr}")

        self.wait_job_state(conduit, "done", timeout=90)
        ctx = f"\nconduit log tail:\n{conduit.logs()[-4000:]}"
        self.expect_priority_then_results(ris, ctx)
        self.assertNotIn(PATIENT, conduit.logs(), "no identifier in Conduit's log")
        time.sleep(1)
        self.assertEqual(len(ris.received()), 2, "one priority update and one result, once each")

    def test_over_tls_both_ways_an_order_completes_the_study_and_the_ris_gets_the_results(self):
        pki = make_test_pki(self.dir("pki"))
        pacs = self.started(Orthanc(self.tmp))
        # The RIS: its server certificate, and it wants Conduit's client certificate.
        ris = self.started(RisSim(self.tmp, tls_args=["--tls-ca", pki["ca"], "--tls-cert",
                                                      pki["server_cert"], "--tls-key", pki["server_key"]]))
        conduit = self.gateway(pacs, ris.port, stable_after="600s", tls={
            "ca_file": pki["ca"], "certificate_file": pki["node_cert"], "key_file": pki["node_key"]})
        files, _ = self.study()
        storescu(conduit.dicom_port, files)
        wait_until("the instances indexed",
                   lambda: conduit.api("/api/studies?limit=10")["studies"], timeout=60)
        client = ["--tls-ca", pki["ca"], "--tls-cert", pki["client_cert"], "--tls-key", pki["client_key"]]
        # MLLP in the clear, and TLS without a client certificate, are refused and audited.
        plain = send_to_conduit(conduit.mllp_port, "orm-complete", accession=ACCESSION, patient_id=PATIENT)
        self.assertNotEqual(plain.returncode, 0, plain.stdout)
        anonymous = send_to_conduit(conduit.mllp_port, "orm-complete", tls_args=client[:2],
                                    accession=ACCESSION, patient_id=PATIENT)
        self.assertNotEqual(anonymous.returncode, 0, anonymous.stdout)
        refused = wait_until("the refusals audited", lambda: [
            e for e in self.audit(conduit) if e["action"] == "hl7_refused"], timeout=30)
        self.assertIn("TLS handshake failed", json.dumps(refused))
        answer = send_to_conduit(conduit.mllp_port, "orm-complete", tls_args=client,
                                 accession=ACCESSION, patient_id=PATIENT)
        self.assertEqual(answer.returncode, 0, f"AA expected: {answer.stdout}{answer.stderr}")

        self.wait_job_state(conduit, "done", timeout=90)
        self.expect_priority_then_results(ris, f"\nconduit log tail:\n{conduit.logs()[-4000:]}")
        self.assertIn("over TLS", conduit.logs())

    def test_a_ris_that_is_down_gets_the_messages_once_it_is_back(self):
        pacs = self.started(Orthanc(self.tmp))
        port = free_port()
        conduit = self.gateway(pacs, port)
        files, _ = self.study()
        storescu(conduit.dicom_port, files)
        self.wait_job_state(conduit, "done", timeout=90)
        # The operator sees the messages waiting, with why (once an attempt has failed against
        # the closed port), and nothing of the patient.
        outbox = wait_until("the waiting messages in the outbox view, tried at least once",
                            lambda: (lambda o: o if o["pending"] >= 2 and any(
                                m["attempts"] >= 1 and m["last_error"] for m in o["messages"])
                                else None)(conduit.api("/api/ris/outbox?state=pending")),
                            timeout=60)
        self.assertEqual({m["message_type"] for m in outbox["messages"]}, {"OMI^O23", "ORU^R01"})
        self.assertTrue(any(m["attempts"] >= 1 and m["last_error"] for m in outbox["messages"]),
                        outbox)
        self.assertNotIn(PATIENT, json.dumps(outbox))
        self.assertNotIn(ACCESSION, json.dumps(outbox))
        # The gauge is refreshed by the outbox's next pass.
        gauge = r'conduit_hl7_outbox_pending\{destination="ris"\} [1-9]'
        metrics = wait_until("the pending gauge", lambda: (lambda m: m if re.search(gauge, m) else None)(
            urllib.request.urlopen(conduit.url + "/metrics", timeout=10).read().decode()), timeout=60)
        self.assertRegex(metrics, gauge)
        ris = self.started(RisSim(self.tmp, port=port))
        self.expect_priority_then_results(ris, f"\nconduit log tail:\n{conduit.logs()[-4000:]}")
        outbox = wait_until("the outbox view to show both sent",
                            lambda: (lambda o: o if o["pending"] == 0 else None)(
                                conduit.api("/api/ris/outbox")), timeout=30)
        self.assertEqual([m["state"] for m in outbox["messages"]], ["sent", "sent"])
        listed = json.loads(conduit.cli("ris", "outbox", "--json").stdout)
        self.assertEqual(sorted(m["control_id"] for m in listed),
                         sorted(m["control_id"] for m in outbox["messages"]))
        self.assertNotIn(PATIENT, json.dumps(listed))

    def test_a_shadow_route_keeps_the_findings_and_tells_neither_pacs_nor_the_ris(self):
        pacs = self.started(Orthanc(self.tmp))
        ris = self.started(RisSim(self.tmp))
        conduit = self.gateway(pacs, ris.port, shadow=True)
        files, study_uid = self.study()
        storescu(conduit.dicom_port, files)
        self.wait_job_state(conduit, "done", timeout=90)
        ctx = f"\nconduit log tail:\n{conduit.logs()[-4000:]}"
        job = conduit.jobs()["jobs"][0]
        self.assertTrue(job["shadow"], ctx)
        detail = conduit.api(f"/api/jobs/{job['id']}")
        self.assertTrue(detail["results"], f"the tool's results are kept{ctx}")
        self.assertTrue(detail["findings"], f"and their findings recorded{ctx}")
        time.sleep(3)  # a clinical route's messages follow its job's end, without a quiet period
        self.assertEqual(ris.received(), [], "no findings or priority update at the RIS")
        self.assertEqual(pacs.instances_of_study(study_uid), [], "nothing in PACS")
        done = [e for e in self.audit(conduit) if e["action"] == "done"]
        self.assertTrue(done and done[0]["detail"].get("shadow") is True, done)

    def test_a_refusal_is_final_and_audited(self):
        pacs = self.started(Orthanc(self.tmp))
        ris = self.started(RisSim(self.tmp, mode="ar"))
        conduit = self.gateway(pacs, ris.port)
        files, _ = self.study()
        storescu(conduit.dicom_port, files)
        self.wait_job_state(conduit, "done", timeout=90)
        wait_until("both refusals audited",
                   lambda: len([e for e in self.audit(conduit) if "hl7" in e["action"]
                                and e["outcome"] == "failure"]) >= 2, timeout=60)
        time.sleep(2)
        self.assertEqual(len(ris.received()), 2, "AR is not retried")

    def test_a_sender_whose_address_is_not_allowed_is_refused_and_audited(self):
        pacs = self.started(Orthanc(self.tmp))
        ris = self.started(RisSim(self.tmp))
        conduit = self.gateway(pacs, ris.port, allowed_hosts=["10.0.0.0/8"])
        answer = send_to_conduit(conduit.mllp_port, "oru-report", accession=ACCESSION, patient_id=PATIENT,
                                 report_text="No nodule seen.", report_status="F", code="SCT:2667000",
                                 control_id="RPT-X")
        self.assertNotEqual(answer.returncode, 0, "no ACK for a peer that is not allowed")
        refused = wait_until("the refusal audited",
                             lambda: [e for e in self.audit(conduit) if e["action"] == "hl7_refused"],
                             timeout=30)
        self.assertEqual(refused[0]["actor"], "127.0.0.1")
        self.assertIn("PERMISSION_DENIED", json.dumps(refused[0]))
        db = sqlite3.connect(os.path.join(conduit.data_dir, "index.sqlite"))
        try:
            self.assertEqual(db.execute("SELECT COUNT(*) FROM ris_reports").fetchone()[0], 0)
        finally:
            db.close()
        metrics = urllib.request.urlopen(conduit.url + "/metrics", timeout=10).read().decode()
        self.assertRegex(metrics, r'conduit_hl7_connections_refused_total\{reason="PERMISSION_DENIED",'
                                  r'source="ris"\} 1')

    def test_reports_from_the_ris_are_stored_as_ground_truth(self):
        pacs = self.started(Orthanc(self.tmp))
        ris = self.started(RisSim(self.tmp))
        conduit = self.gateway(pacs, ris.port)
        answer = send_to_conduit(conduit.mllp_port, "oru-report", accession=ACCESSION, patient_id=PATIENT,
                                 report_text="No nodule seen.", report_status="F", code="SCT:2667000",
                                 control_id="RPT-1")
        self.assertEqual(answer.returncode, 0, answer.stdout + answer.stderr)
        again = send_to_conduit(conduit.mllp_port, "oru-report", accession=ACCESSION, patient_id=PATIENT,
                                report_text="No nodule seen.", report_status="F", code="SCT:2667000",
                                control_id="RPT-1")
        self.assertEqual(again.returncode, 0, "a repeat is acknowledged")
        db = sqlite3.connect(os.path.join(conduit.data_dir, "index.sqlite"))
        try:
            rows = db.execute("SELECT accession, result_status, report_text FROM ris_reports").fetchall()
        finally:
            db.close()
        self.assertEqual(rows, [(ACCESSION, "F", "No nodule seen.")], "stored once")
        refused = send_to_conduit(conduit.mllp_port, "@" + self.garbage_message())
        self.assertNotEqual(refused.returncode, 0, "a message we cannot take is refused (AR)")

    def garbage_message(self):
        path = os.path.join(self.tmp, "adt.hl7")
        with open(path, "w") as f:
            f.write("MSH|^~\\&|RIS|T|CONDUIT|T|20261129||ADT^A01|X1|P|2.5.1\rPID|1||123\r")
        return path


if __name__ == "__main__":
    unittest.main()
