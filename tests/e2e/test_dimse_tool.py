"""The DIMSE push adapter against a real tool node: DCMTK's storescp receives the study, runs the
reference tool once the study is quiet, and C-STOREs the results back to Conduit from the
tool's AE title (tools/dimse_tool_node). The node can be silent, send another study's image,
echo an input, or be down."""

import glob
import json
import os
import subprocess
import sys
import unittest
import pydicom  # Debian python3-pydicom (tests run with /usr/bin/python3)

sys.path.insert(0, os.path.dirname(__file__))
from harness import (E2ETest, PeerExited, stop_process, Conduit, Orthanc, make_study, read_uids, storescu, wait_until,  # noqa: E402
                     free_port, http_json, run, read_bytes, BUILD, ENV)

NODE = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "tools",
                                    "dimse_tool_node", "run-node.sh"))
TOOL_AE = "AITOOL"


class DimseToolNode:
    """The tool's DICOM node: run-node.sh (storescp + on-study.sh) in a folder of its own."""

    def __init__(self, root, mode="normal", bad_only=False, tls=None):
        """tls: (key, certificate, CA) files: the node speaks DICOM over TLS both ways."""
        self.work = os.path.join(root, "tool-node")
        self.port = free_port()
        self.conduit_port = None  # known once the gateway is made
        self.mode = mode
        self.bad_only = bad_only
        self.tls = ["+tls", tls[0], tls[1], "+cf", tls[2]] if tls else []
        self.proc = None

    def start(self):
        env = dict(ENV, NODE_MODE=self.mode, NODE_BAD_ONLY="1" if self.bad_only else "0",
                   CONDUIT_BUILD_DIR=BUILD)
        self.proc = subprocess.Popen([NODE, "--port", str(self.port), "--aet", TOOL_AE,
                                      "--conduit-port", str(self.conduit_port), "--work", self.work,
                                      "--quiet", "1"] + (["--tls", *self.tls[1:3], self.tls[4]] if self.tls else []),
                                     env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_until("the tool node", lambda: self._alive() and run(
            ["echoscu", "-aec", TOOL_AE, *self.tls, "127.0.0.1", str(self.port)], check=False).returncode == 0,
            timeout=60)
        return self

    def _alive(self):
        if self.proc.poll() is not None:
            raise PeerExited(f"tool node exited with {self.proc.returncode}: "
                                 f"{self.proc.stderr.read().decode(errors='replace')}")
        return True

    def stop(self):
        stop_process(self.proc)
        if self.proc:
            self.proc.stderr.close()
        self.proc = None

    def log(self):
        path = os.path.join(self.work, "node.log")
        if not os.path.exists(path):
            return ""
        with open(path, errors="replace") as f:
            return f.read()


class DimseToolTest(E2ETest):
    def gateway(self, pacs, node, timeout="10s", retry=None, start=True):
        tool = {"name": "aitool", "kind": "dimse", "ae_title": TOOL_AE, "host": "127.0.0.1",
                "port": node.port, "timeout": timeout, "results_stable_after": "1s",
                "hosting_region": "UK"}
        config = {
            "destinations": [{"name": "pacs", "ae_title": pacs.aet, "host": "127.0.0.1",
                              "port": pacs.dicom_port, "timeout": "5s"}],
            "tools": [tool],
            "routes": [{"name": "ct", "when": {"Modality": "CT"}, "tool": "aitool",
                        "results_to": ["pacs"], "stable_after": "1s"}],
            "retry": retry or {"max_attempts": 3, "initial_backoff": "200ms",
                               "max_backoff": "500ms"},
        }
        conduit = Conduit(self.tmp, config)
        node.conduit_port = conduit.dicom_port
        return self.started(conduit) if start else conduit

    def send_study(self, conduit, slices=6):
        files = make_study(self.dir("study"), "CT", slices=slices, rows=64, cols=64)
        storescu(conduit.dicom_port, files)
        return files, read_uids(files[0])[0]

    def audit(self, conduit):
        return conduit.api("/api/audit?limit=1000")["events"]

    def assert_results_in_pacs(self, pacs, study_uid, conduit, node):
        series = pacs.series_of(study_uid)
        modalities = sorted(s["MainDicomTags"].get("Modality", "") for s in series)
        context = f"\nnode log:\n{node.log()}\nconduit log tail:\n{conduit.logs()[-3000:]}"
        self.assertEqual(modalities, ["OT", "SEG", "SR"], f"PACS holds {modalities}" + context)
        sops = [i["MainDicomTags"]["SOPInstanceUID"] for i in pacs.instances_of_study(study_uid)]
        self.assertEqual(len(sops), 3, "only the three results, each once, and no input image")
        self.assertEqual(len(set(sops)), 3)

    def test_results_from_the_tool_node_reach_the_pacs_on_the_original_study(self):
        pacs = self.started(Orthanc(self.tmp))
        node = DimseToolNode(self.tmp)
        conduit = self.gateway(pacs, node)
        self.started(node)
        files, study_uid = self.send_study(conduit)

        job = self.wait_job_state(conduit, "done", timeout=60)[0]
        self.assertEqual(job["route"], "ct")
        self.assert_results_in_pacs(pacs, study_uid, conduit, node)
        input_sops = {read_uids(f)[2] for f in files}
        in_pacs = {i["MainDicomTags"]["SOPInstanceUID"] for i in pacs.instances_of_study(study_uid)}
        self.assertFalse(input_sops & in_pacs, "the inputs are not sent to PACS")
        detail = conduit.api(f"/api/jobs/{job['id']}")
        self.assertEqual(len(detail["results"]), 3)
        self.assertEqual(len(detail["deliveries"]), 3)

        mine = [e for e in self.audit(conduit) if e["job_id"] == job["id"]]
        actions = {(e["action"], e["outcome"]) for e in mine}
        for expected in (("dispatch", "success"), ("result", "success"), ("done", "success")):
            self.assertIn(expected, actions)
        # One 'result' event per object the intake attached, and one when the job moved on.
        objects = [e for e in mine if e["action"] == "result" and "sop_class" in str(e["detail"])]
        self.assertEqual(len(objects), 3, "each returned object is audited as the tool's result")
        self.assertTrue(all(e["actor"] == "aitool" for e in objects))
        self.assertTrue(any(e["action"] == "deliver" and e["outcome"] == "success"
                            for e in self.audit(conduit)))
        # The tool is outside the trust: what it received was de-identified under the policy,
        # and its results came back re-identified onto the original patient and study.
        for expected in (("deidentify", "success"), ("reidentify", "success")):
            self.assertIn(expected, actions)
        deid = [e for e in mine if e["action"] == "deidentify"][0]
        self.assertTrue(deid["policy_hash"])
        original = pydicom.dcmread(files[0], stop_before_pixels=True)
        secrets = [str(original.PatientID).encode(), str(original.PatientName).encode(),
                   study_uid.encode(), str(original.SOPInstanceUID).encode()]
        received = [p for p in glob.glob(os.path.join(node.work, "**", "*"), recursive=True)
                    if os.path.isfile(p) and not p.endswith((".log", ".sh"))]
        received = [p for p in received if read_bytes(p, 132)[128:132] == b"DICM"]
        self.assertGreater(len(received), 0, "the node kept what it received")
        for path in received:
            data = read_bytes(path)
            for secret in secrets:
                self.assertNotIn(secret, data, f"{path} carries an identifier in clear")
        for instance in pacs.instances_of_study(study_uid):
            tags = http_json(f"{pacs.url}/instances/{instance['ID']}/simplified-tags")
            self.assertEqual(tags["PatientID"], str(original.PatientID))
        self.assertIn("received 6 instance(s)", node.log())
        # The node notes what it sent once its storescu has ended, which may be after Conduit
        # has already delivered the results and finished the job.
        wait_until("the node's note of the results sent",
                   lambda: "sent results:" in node.log(), timeout=60)
        self.assertIn("sent results: 3 of 3 file(s) accepted", node.log())

    def test_a_silent_tool_times_out_and_the_job_is_dead_lettered(self):
        pacs = self.started(Orthanc(self.tmp))
        node = DimseToolNode(self.tmp, mode="silent")
        conduit = self.gateway(pacs, node, timeout="5s",
                               retry={"max_attempts": 2, "initial_backoff": "200ms",
                                      "max_backoff": "200ms"})
        self.started(node)
        _, study_uid = self.send_study(conduit)

        job = self.wait_job_state(conduit, "dead_letter", timeout=60)[0]
        self.assertEqual(job["attempts"], 2)
        self.assertIn("within its timeout", job["last_error"])
        # Each attempt sent the study again: the node saw it twice and answered neither.
        wait_until("the node's second silent run",
                   lambda: node.log().count("silent: no result sent") >= 2, timeout=30)
        self.assertEqual(node.log().count("received 6 instance(s)"), 2, node.log())
        self.assertEqual(pacs.instances_of_study(study_uid), [])
        mine = [e for e in self.audit(conduit) if e["job_id"] == job["id"]]
        self.assertEqual(sorted(e["action"] for e in mine if e["outcome"] == "failure"),
                         ["dead_letter", "retry"])
        self.assertEqual(conduit.api(f"/api/jobs/{job['id']}")["results"], [])

    def test_another_studys_image_from_the_tool_is_quarantined_and_the_good_results_delivered(self):
        pacs = self.started(Orthanc(self.tmp))
        node = DimseToolNode(self.tmp, mode="wrong-study")
        conduit = self.gateway(pacs, node)
        self.started(node)
        _, study_uid = self.send_study(conduit)

        job = self.wait_job_state(conduit, "done", timeout=60)[0]
        self.assert_results_in_pacs(pacs, study_uid, conduit, node)
        # Only the original study reached the PACS: the foreign image did not.
        self.assertEqual(len(http_json(pacs.url + "/studies")), 1)
        self.assertEqual(len(http_json(pacs.url + "/instances")), 3)
        self.assertIn("sent an image of another study: 0 of 1 file(s) accepted", node.log())
        # The foreign study is not one Conduit de-identified for this tool: the object is refused
        # to the tool, kept in quarantine as evidence and audited.
        events = [e for e in self.audit(conduit) if e["action"] == "quarantine"]
        self.assertEqual(len(events), 1, events)
        self.assertEqual(events[0]["actor"], "aitool")
        self.assertIn("not one this trust sent to the tool", str(events[0]["detail"]))
        self.assertNotEqual(events[0]["study_ref"], job["study_ref"])
        kept = glob.glob(os.path.join(conduit.data_dir, "spool", "quarantine", "unmatched-aitool", "*"))
        self.assertEqual(len([k for k in kept if k.endswith(".reason.txt")]), 1, kept)
        self.assertEqual(len(conduit.api(f"/api/jobs/{job['id']}")["results"]), 3)

    def expect_quarantined_and_nothing_unvalidated_in_pacs(self, mode, words, in_pacs):
        pacs = self.started(Orthanc(self.tmp))
        node = DimseToolNode(self.tmp, mode=mode)
        conduit = self.gateway(pacs, node, retry={"max_attempts": 2, "initial_backoff": "200ms",
                                                  "max_backoff": "200ms"})
        self.started(node)
        _, study_uid = self.send_study(conduit)
        context = lambda: f"\nnode log:\n{node.log()}\nconduit log tail:\n{conduit.logs()[-3000:]}"  # noqa: E731
        events = self.expect_quarantine_then_end(conduit, pacs, study_uid, words, context)
        modalities = sorted(s["MainDicomTags"].get("Modality", "") for s in pacs.series_of(study_uid))
        self.assertEqual(modalities, in_pacs, "only what passed validation" + context())
        return events

    def test_malformed_results_from_the_tool_node_are_quarantined(self):
        self.expect_quarantined_and_nothing_unvalidated_in_pacs(
            "malformed", ["Pixel", "Content", "content", "SEG", "SR", "missing"], in_pacs=["OT"])

    def test_results_referencing_images_not_sent_are_quarantined(self):
        # The SEG and SC reference images never sent: quarantined. The SR's images are right,
        # but it cites the quarantined SEG as evidence: withheld too, so PACS gets nothing.
        events = self.expect_quarantined_and_nothing_unvalidated_in_pacs(
            "wrong-references", ["reference", "Reference"], in_pacs=[])
        self.assertTrue(any("references quarantined result" in json.dumps(e) for e in events), events)

    def test_a_tool_node_that_crashes_mid_study_is_retried_and_completes_once_it_is_back(self):
        pacs = self.started(Orthanc(self.tmp))
        node = DimseToolNode(self.tmp, mode="crash")
        conduit = self.gateway(pacs, node, timeout="5s",
                               retry={"max_attempts": 2, "initial_backoff": "200ms", "max_backoff": "200ms"})
        self.started(node)
        _, study_uid = self.send_study(conduit)
        wait_until("the node to crash", lambda: node.proc.poll() is not None, timeout=60)
        job = self.wait_job_state(conduit, "dead_letter", timeout=90)[0]
        self.assertEqual(pacs.instances_of_study(study_uid), [], "nothing delivered from a crashed tool")

        # The node is back (behaving); the operator replays the job: it completes, once.
        node.mode = "normal"
        node.proc = None
        self.started(node)
        conduit.cli("jobs", "retry", str(job["id"]))
        self.wait_job_state(conduit, "done", timeout=90)
        self.assert_results_in_pacs(pacs, study_uid, conduit, node)

    def test_an_input_echoed_back_by_the_tool_is_quarantined_and_never_delivered(self):
        pacs = self.started(Orthanc(self.tmp))
        node = DimseToolNode(self.tmp, mode="echo")
        conduit = self.gateway(pacs, node)
        self.started(node)
        files, study_uid = self.send_study(conduit)

        job = self.wait_job_state(conduit, "done", timeout=60)[0]
        self.assert_results_in_pacs(pacs, study_uid, conduit, node)
        quarantined = glob.glob(os.path.join(conduit.data_dir, "spool", "quarantine",
                                             str(job["id"]), "*"))
        dicoms = [q for q in quarantined if not q.endswith(".reason.txt")]
        self.assertEqual(len(dicoms), 1, quarantined)
        self.assertIn(read_uids(dicoms[0])[2], {read_uids(f)[2] for f in files})
        self.assertIn("sent an input back: 0 of 1 file(s) accepted", node.log())
        with open(dicoms[0] + ".reason.txt") as f:
            self.assertIn("repeats an input instance", f.read())
        events = [e for e in self.audit(conduit) if e["action"] == "quarantine"]
        self.assertEqual(len(events), 1)
        self.assertEqual(events[0]["job_id"], job["id"])
        self.assertEqual(events[0]["outcome"], "failure")
        self.assertEqual(len(conduit.api(f"/api/jobs/{job['id']}")["results"]), 3)

    def test_a_tool_that_only_echoes_inputs_has_no_results_and_is_dead_lettered(self):
        pacs = self.started(Orthanc(self.tmp))
        node = DimseToolNode(self.tmp, mode="echo", bad_only=True)
        # Long enough for each attempt's echo to arrive while the job still awaits results.
        conduit = self.gateway(pacs, node, timeout="8s",
                               retry={"max_attempts": 2, "initial_backoff": "200ms",
                                      "max_backoff": "200ms"})
        self.started(node)
        _, study_uid = self.send_study(conduit)

        # A quarantined object is not a result: the job waits out the tool's timeout on each
        # attempt (src/pipeline/job_engine.cc, Await) and is then dead-lettered.
        job = self.wait_job_state(conduit, "dead_letter", timeout=60)[0]
        self.assertIn("within its timeout", job["last_error"])
        self.assertEqual(conduit.api(f"/api/jobs/{job['id']}")["results"], [])
        quarantined = [q for q in glob.glob(os.path.join(conduit.data_dir, "spool", "quarantine",
                                                         str(job["id"]), "*"))
                       if not q.endswith(".reason.txt")]
        self.assertEqual(len(quarantined), 2, "one echoed input per attempt")
        self.assertEqual(len([e for e in self.audit(conduit) if e["action"] == "quarantine"]), 2)
        self.assertEqual(pacs.instances_of_study(study_uid), [])

    def test_a_tool_node_that_is_down_dead_letters_then_a_retry_completes_once_it_is_up(self):
        pacs = self.started(Orthanc(self.tmp))
        node = DimseToolNode(self.tmp)  # not started: nothing listens on its port
        self._stoppables.append(node)
        conduit = self.gateway(pacs, node, retry={"max_attempts": 3, "initial_backoff": "200ms",
                                                  "max_backoff": "500ms"})
        _, study_uid = self.send_study(conduit)

        job = self.wait_job_state(conduit, "dead_letter", timeout=60)[0]
        self.assertEqual(job["attempts"], 3)
        self.assertIn(f":{node.port}", job["last_error"])
        retries = [e for e in self.audit(conduit)
                   if e["job_id"] == job["id"] and e["action"] == "retry"]
        self.assertEqual(len(retries), 2)
        self.assertEqual(pacs.instances_of_study(study_uid), [])

        node.start()
        conduit.cli("jobs", "retry", str(job["id"]))
        done = self.wait_job_state(conduit, "done", timeout=60)[0]
        self.assertEqual(done["id"], job["id"])
        self.assert_results_in_pacs(pacs, study_uid, conduit, node)
        self.assertTrue(any(e["action"] == "replay" for e in self.audit(conduit)))


if __name__ == "__main__":
    unittest.main(verbosity=2)
