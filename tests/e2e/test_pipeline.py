"""A study travels the whole spine: modality -> Conduit (DIMSE) -> reference AI tool -> PACS."""

import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import (E2ETest, Conduit, Orthanc, make_study, read_uids, storescu,  # noqa: E402
                     http_json, run, wait_until)


class PipelineTest(E2ETest):
    def gateway(self, pacs, routes=None, tools=None, **extra):
        config = {
            "destinations": [{"name": "pacs", "ae_title": pacs.aet, "host": "127.0.0.1",
                              "port": pacs.dicom_port}],
            "tools": tools or [self.reference_tool()],
            "routes": routes or [{"name": "ct", "when": {"Modality": "CT"}, "tool": "reference",
                                  "results_to": ["pacs"], "stable_after": "1s"}],
        }
        config.update(extra)
        return self.started(Conduit(self.tmp, config))

    def test_ct_study_results_reach_the_pacs_on_the_original_study(self):
        pacs = self.started(Orthanc(self.tmp))
        conduit = self.gateway(pacs)
        files = make_study(self.dir("study"), "CT", slices=16, rows=128, cols=128,
                           extra=["--patient-name", "PLANTED^NAME", "--patient-id", "PLANTEDID123"])
        study_uid = read_uids(files[0])[0]
        storescu(conduit.dicom_port, files)

        job = self.wait_job_state(conduit, "done")[0]
        self.assertEqual(job["route"], "ct")
        series = pacs.series_of(study_uid)
        modalities = sorted(s["MainDicomTags"].get("Modality", "") for s in series)
        self.assertIn("SEG", modalities)
        self.assertIn("SR", modalities)
        self.assertEqual(len(series), 3, f"SEG, SR and SC expected in PACS, got {modalities}")
        # Every result was filed on the original study (same Study Instance UID) and the
        # original images themselves were not sent to PACS by Conduit.
        self.assertEqual(sum(len(s["Instances"]) for s in series), 3)

        detail = conduit.api(f"/api/jobs/{job['id']}")
        self.assertEqual(len(detail["results"]), 3)
        self.assertEqual(len(detail["deliveries"]), 3)

        audit = conduit.api("/api/audit?limit=500")["events"]
        actions = {e["action"] for e in audit}
        for action in ("receive", "dispatch", "deliver"):
            self.assertIn(action, actions)
        metrics = run(["curl", "-sf", conduit.url + "/metrics"]).stdout
        self.assertIn("conduit_instances_received_total 16", metrics)

        # No patient identifier in the logs or in the admin API's study list.
        logs = conduit.logs()
        self.assertNotIn("PLANTED", logs)
        self.assertNotIn("PLANTEDID123", logs)
        self.assertNotIn("PLANTED", str(conduit.api("/api/studies")))

    def committing_gateway(self, reports_to_port, commitment_timeout, dicom=None):
        """Orthanc as a PACS that knows AE CONDUIT at 127.0.0.1:`reports_to_port` (None: the
        gateway's own DICOM port), and a gateway whose only destination asks it to commit."""
        conduit_ports = Conduit(self.tmp)  # only for its free ports; the real one is made below
        pacs = self.started(Orthanc(self.tmp, modalities={
            "conduit": {"AET": "CONDUIT", "Host": "127.0.0.1",
                        "Port": reports_to_port or conduit_ports.dicom_port}}))
        conduit = Conduit(self.tmp, {
            "dicom": {"port": conduit_ports.dicom_port, **(dicom or {})},
            "destinations": [{"name": "pacs", "ae_title": pacs.aet, "host": "127.0.0.1",
                              "port": pacs.dicom_port, "storage_commitment": True,
                              "commitment_timeout": commitment_timeout}],
            "tools": [self.reference_tool()],
            "routes": [{"name": "ct", "when": {"Modality": "CT"}, "tool": "reference",
                        "results_to": ["pacs"], "stable_after": "1s"}]})
        conduit.dicom_port = conduit_ports.dicom_port  # the port Orthanc knows
        return pacs, self.started(conduit)

    def test_with_storage_commitment_the_job_is_done_once_the_pacs_committed(self):
        pacs, conduit = self.committing_gateway(
            None, "30s", dicom={"allowed_calling_aes": ["MODALITY", "ORTHANC"]})
        files = make_study(self.dir("study"), "CT", slices=4, rows=64, cols=64)
        study_uid = read_uids(files[0])[0]
        storescu(conduit.dicom_port, files)

        job = self.wait_job_state(conduit, "done")[0]
        self.assertEqual(sum(len(s["Instances"]) for s in pacs.series_of(study_uid)), 3)
        audit = conduit.api("/api/audit?limit=500")["events"]
        commits = [e for e in audit if e["action"] == "commit" and e["job_id"] == job["id"]]
        self.assertEqual([e["outcome"] for e in commits], ["success"] * 3, commits)
        reports = [e for e in audit if e["action"] == "commitment_report"]
        self.assertEqual(len(reports), 1, reports)
        self.assertEqual(reports[0]["actor"], pacs.aet)
        self.assertEqual(reports[0]["outcome"], "success")
        self.assertEqual(reports[0]["detail"]["committed"], 3)

    def test_an_awaited_commitment_survives_a_restart_and_its_deadline_still_holds(self):
        # Orthanc takes the request but reports to a port where nobody listens: no report comes.
        pacs, conduit = self.committing_gateway(1, "25s")
        files = make_study(self.dir("study"), "CT", slices=3, rows=64, cols=64)
        storescu(conduit.dicom_port, files)

        def audited(action, outcome="success"):
            audit = conduit.api("/api/audit?limit=500")["events"]
            return sum(e["action"] == action and e["outcome"] == outcome for e in audit)
        wait_until("the commitment asked of PACS", lambda: audited("commit_request") == 1,
                   timeout=60)
        self.assertEqual(audited("deliver"), 3)
        job = conduit.jobs()["jobs"][0]
        self.assertEqual(job["state"], "delivering")
        detail = conduit.api(f"/api/jobs/{job['id']}")
        self.assertEqual([c["state"] for c in detail["commitments"]], ["awaited"] * 3, detail)
        due = detail["commitments"][0]["report_due"]
        metrics = run(["curl", "-sf", conduit.url + "/metrics"]).stdout
        self.assertIn('conduit_storage_commitment_awaited_results{destination="pacs"} 3', metrics)

        # No worker waits for the report: SIGTERM stops at once.
        proc = conduit.proc
        proc.terminate()
        proc.wait(timeout=30)
        self.assertEqual(proc.returncode, 0, conduit.logs()[-2000:])
        conduit.stop()

        # After the restart the request is still awaited, with the same deadline: nothing is
        # sent again before it, nothing counts as delivered.
        conduit.start()
        time.sleep(3)
        detail = conduit.api(f"/api/jobs/{job['id']}")
        self.assertEqual(detail["state"], "delivering")
        self.assertEqual([c["report_due"] for c in detail["commitments"]], [due] * 3, detail)
        self.assertEqual(detail["deliveries"], [])
        self.assertEqual(audited("deliver"), 3)

        # Past the deadline the request is given up on and the retry sends and asks again.
        wait_until("the results sent again", lambda: audited("deliver") >= 6, timeout=120)
        self.assertGreaterEqual(audited("commit", "failure"), 1)
        wait_until("the commitment asked again", lambda: audited("commit_request") == 2,
                   timeout=60)
        self.assertEqual(conduit.api(f"/api/jobs/{job['id']}")["deliveries"], [])

    def test_route_test_and_echo_commands_explain_and_check_without_sending(self):
        pacs = self.started(Orthanc(self.tmp))
        routes = [
            {"name": "ct", "when": {"Modality": "CT"}, "tool": "reference", "results_to": ["pacs"]},
            {"name": "chest-mr", "when": {"Modality": "MR", "BodyPartExamined": "CHEST*"},
             "tool": "reference", "results_to": ["pacs"]},
        ]
        conduit = Conduit(self.tmp, {
            "destinations": [{"name": "pacs", "ae_title": pacs.aet, "host": "127.0.0.1",
                              "port": pacs.dicom_port}],
            "tools": [self.reference_tool()], "routes": routes})
        study = self.dir("ct")
        make_study(study, "CT", slices=2, rows=64, cols=64)
        out = conduit.cli("route", "test", study).stdout
        self.assertIn("FIRES ct", out)
        self.assertIn("skips chest-mr", out)
        self.assertIn("Modality", out)
        self.assertIn("C-ECHO OK", conduit.cli("echo", "pacs").stdout)
        pacs.stop()
        self.assertEqual(conduit.cli("echo", "pacs", check=False).returncode, 1)
        bad = os.path.join(self.tmp, "not-dicom.txt")
        with open(bad, "w") as f:
            f.write("hello")
        failed = conduit.cli("route", "test", bad, check=False)
        self.assertEqual(failed.returncode, 1)
        self.assertIn("not-dicom.txt", failed.stdout + failed.stderr)

    def test_resent_instances_are_deduplicated_and_do_not_make_a_second_job(self):
        pacs = self.started(Orthanc(self.tmp))
        conduit = self.gateway(pacs)
        files = make_study(self.dir("study"), "CT", slices=6, rows=64, cols=64)
        storescu(conduit.dicom_port, files)
        storescu(conduit.dicom_port, files)
        self.wait_job_state(conduit, "done")
        studies = conduit.api("/api/studies")["studies"]
        self.assertEqual(len(studies), 1)
        self.assertEqual(studies[0]["instance_count"], 6)
        self.assertEqual(len(conduit.jobs()["jobs"]), 1)

    def test_routes_choose_by_attribute_and_series_scope_makes_one_job_per_series(self):
        pacs = self.started(Orthanc(self.tmp))
        routes = [
            {"name": "ct-series", "when": {"Modality": "CT"}, "tool": "reference",
             "results_to": ["pacs"], "stable_after": "1s", "select": "series"},
            {"name": "mr-only", "when": {"Modality": "MR"}, "tool": "reference",
             "results_to": ["pacs"], "stable_after": "1s"},
        ]
        conduit = self.gateway(pacs, routes=routes)
        files = make_study(self.dir("ct"), "CT", slices=5, rows=64, cols=64)
        storescu(conduit.dicom_port, files)
        jobs = self.wait_job_state(conduit, "done")
        self.assertEqual([j["route"] for j in jobs], ["ct-series"])

    def test_calling_ae_not_on_the_allow_list_is_refused_and_audited(self):
        pacs = self.started(Orthanc(self.tmp))
        # BOUND may only come from 10.0.0.0/8, as a modality's entry in a PACS names its host.
        conduit = self.gateway(pacs, dicom={"allowed_calling_aes": [
            "TRUSTED", {"ae_title": "BOUND", "hosts": ["10.0.0.0/8"]}]})
        files = make_study(self.dir("study"), "CT", slices=2, rows=64, cols=64)
        for _ in range(3):  # as a port scanner would, again and again
            refused = storescu(conduit.dicom_port, files, calling="STRANGER", check=False)
            self.assertNotEqual(refused.returncode, 0)
        self.assertNotEqual(storescu(conduit.dicom_port, files, calling="BOUND", check=False).returncode, 0)
        storescu(conduit.dicom_port, files, calling="TRUSTED")
        studies = conduit.api("/api/studies")["studies"]
        self.assertEqual(studies[0]["instance_count"], 2)
        # Every refusal counted; one audit entry (and log line) a minute per peer, AE and reason.
        audit = conduit.api("/api/audit?limit=100")["events"]
        rejects = [e for e in audit if e["action"] == "reject" and e["actor"] == "STRANGER"]
        self.assertEqual(len(rejects), 1, rejects)
        self.assertEqual(rejects[0]["detail"]["peer"], "127.0.0.1")
        bound = [e for e in audit if e["action"] == "reject" and e["actor"] == "BOUND"]
        self.assertEqual(len(bound), 1, bound)
        self.assertIn("not allowed from this address", json.dumps(bound[0]))
        metrics = run(["curl", "-sf", conduit.url + "/metrics"]).stdout
        self.assertIn('conduit_instances_rejected_total{reason="PERMISSION_DENIED"} 4', metrics)

    def test_orthanc_as_a_sender_stores_a_study_into_conduit(self):
        sender_root = self.dir("sender")
        conduit_port_holder = {}
        # Orthanc must know Conduit as a modality: start Conduit first, then the sender.
        pacs = self.started(Orthanc(self.tmp))
        conduit = self.gateway(pacs)
        conduit_port_holder["port"] = conduit.dicom_port
        sender = self.started(Orthanc(sender_root, aet="SENDER",
                                      modalities={"conduit": ["CONDUIT", "127.0.0.1", conduit.dicom_port]}))
        files = make_study(self.dir("study"), "CT", slices=4, rows=64, cols=64)
        for f in files:
            sender.upload(f)
        study_uid = read_uids(files[0])[0]
        found = http_json(sender.url + "/tools/find", "POST", {"Level": "Study", "Query": {"StudyInstanceUID": study_uid}})
        http_json(sender.url + "/modalities/conduit/store", "POST", {"Resources": found, "Synchronous": True},
                  timeout=60)
        studies = conduit.api("/api/studies")["studies"]
        self.assertEqual(studies[0]["instance_count"], 4)
        self.wait_job_state(conduit, "done")


if __name__ == "__main__":
    unittest.main(verbosity=2)
