"""DICOMweb end to end over real HTTP: the DICOMweb push adapter with the vendor simulator
(tools/dicomweb_tool_sim: STOW-RS in, the reference algorithm, STOW-RS of the results back to
the job's endpoint with the job's token), de-identified out and re-identified back, results in
Orthanc; each misbehaviour of the simulator ends in a clear state. And Orthanc's own DICOMweb
plugin storing to Conduit (STOW-RS), searching it (QIDO-RS) and retrieving from it (WADO-RS)."""

import glob
import json
import os
import ssl
import subprocess
import sys
import unittest
import urllib.error
import urllib.request

import pydicom  # Debian python3-pydicom (tests run with /usr/bin/python3)

sys.path.insert(0, os.path.dirname(__file__))
from harness import (E2ETest, PeerExited, Conduit, Orthanc, make_study, read_uids,  # noqa: E402
                     storescu, wait_until, http_json, stop_process, first_line, read_bytes, read_text,
                     make_test_pki, run, BUILD, CONDUIT, ENV)

SIM = os.path.join(BUILD, "conduit-dicomweb-tool-sim")


class DicomwebSim:
    """The vendor simulator on a free port, in a folder of its own."""

    def __init__(self, root, mode="none", port=0, extra=(), tls=None):
        """tls: make_test_pki's paths; the simulator then serves https with its server
        certificate and wants a client certificate from its CA."""
        self.work = os.path.join(root, "vendor")
        os.makedirs(self.work, exist_ok=True)
        self.mode = mode
        self.extra = list(extra)
        self.proc = None
        self.port = port
        self.tls = tls
        self.context = None
        if tls:
            self.extra += ["--tls-cert", tls["server_cert"], "--tls-key", tls["server_key"],
                           "--tls-client-ca", tls["ca"]]
            self.context = ssl.create_default_context(cafile=tls["ca"])
            self.context.load_cert_chain(tls["client_cert"], tls["client_key"])

    @property
    def url(self):
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self):
        self.err = open(os.path.join(self.work, "sim.log"), "a")
        self.proc = subprocess.Popen([SIM, "--port", str(self.port), "--work", self.work,
                                      "--misbehave", self.mode] + self.extra, stdout=subprocess.PIPE, stderr=self.err, env=ENV, text=True)
        line = first_line(self.proc, timeout=90)
        if "listening on" not in line:
            if self.proc.poll() is None:
                self.proc.kill()
            raise PeerExited(f"simulator did not start: {line!r}\n{self.log()}")
        self.port = int(line.strip().rsplit(":", 1)[1])
        return self

    def set_mode(self, mode, count=None):
        body = {"mode": mode}
        if count is not None:
            body["count"] = count
        return http_json(self.url + "/sim/mode", "POST", body, context=self.context)

    def status(self):
        if self.proc.poll() is not None:
            return {"exited": self.proc.returncode}
        return http_json(self.url + "/sim/status", context=self.context)

    def stop(self):
        stop_process(self.proc)
        self.proc = None
        if getattr(self, "err", None):
            self.err.close()

    def log(self):
        path = os.path.join(self.work, "sim.log")
        return read_text(path)

    def received_files(self):
        files = [p for p in glob.glob(os.path.join(self.work, "**", "*"), recursive=True) if os.path.isfile(p)]
        return [p for p in files if read_bytes(p, 132)[128:132] == b"DICM"]


class DicomwebToolTest(E2ETest):
    def gateway(self, pacs, sim, timeout="20s", retry=None, tls=None, start=True, https=None):
        """tls: the tool's dicomweb.tls; https: make_test_pki's paths, Conduit then serves https
        with its server certificate."""
        tool = {"name": "vendor", "kind": "dicomweb", "dicomweb": {"url": sim.url + "/dicom-web"},
                "timeout": timeout, "results_stable_after": "1s", "hosting_region": "UK"}
        if tls:
            tool["dicomweb"]["tls"] = tls
        config = {
            "destinations": [{"name": "pacs", "ae_title": pacs.aet, "host": "127.0.0.1",
                              "port": pacs.dicom_port, "timeout": "5s"}],
            "tools": [tool],
            "routes": [{"name": "ct", "when": {"Modality": "CT"}, "tool": "vendor",
                        "results_to": ["pacs"], "stable_after": "1s"}],
            "retry": retry or {"max_attempts": 4, "initial_backoff": "200ms", "max_backoff": "500ms"},
        }
        if https:
            # Mutual TLS: the vendor returning results and this test's API calls present the
            # client certificate of the same CA.
            config["http"] = {"tls": {"certificate_file": https["server_cert"],
                                      "key_file": https["server_key"], "ca_file": https["ca"]}}
        conduit = Conduit(self.tmp, config, ca_file=https["ca"] if https else None)
        if https:
            conduit.context.load_cert_chain(https["client_cert"], https["client_key"])
        return self.started(conduit) if start else conduit

    def send_study(self, conduit, slices=6):
        files = make_study(self.dir("study"), "CT", slices=slices, rows=64, cols=64)
        storescu(conduit.dicom_port, files)
        return files, read_uids(files[0])[0]

    def audit(self, conduit):
        return conduit.api("/api/audit?limit=1000")["events"]

    def context(self, conduit, sim):
        return f"\nsimulator log:\n{sim.log()[-3000:]}\nconduit log tail:\n{conduit.logs()[-4000:]}"

    def pacs_modalities(self, pacs, study_uid):
        return sorted(s["MainDicomTags"].get("Modality", "") for s in pacs.series_of(study_uid))

    def test_the_study_goes_out_deidentified_and_results_come_back_reidentified_into_pacs(self):
        pacs = self.started(Orthanc(self.tmp))
        sim = self.started(DicomwebSim(self.tmp))
        conduit = self.gateway(pacs, sim)
        files, study_uid = self.send_study(conduit)

        job = self.wait_job_state(conduit, "done", timeout=90)[0]
        ctx = self.context(conduit, sim)
        self.assertEqual(self.pacs_modalities(pacs, study_uid), ["OT", "SEG", "SR"], ctx)
        input_sops = {read_uids(f)[2] for f in files}
        in_pacs = {i["MainDicomTags"]["SOPInstanceUID"] for i in pacs.instances_of_study(study_uid)}
        self.assertEqual(len(in_pacs), 3, "the three results, each once")
        self.assertFalse(input_sops & in_pacs, "no input is sent to PACS")

        original = pydicom.dcmread(files[0], stop_before_pixels=True)
        for instance in pacs.instances_of_study(study_uid):
            tags = http_json(f"{pacs.url}/instances/{instance['ID']}/simplified-tags")
            self.assertEqual(tags["PatientID"], str(original.PatientID), "re-identified")

        # What the vendor received carries no identifier in clear.
        received = sim.received_files()
        self.assertGreaterEqual(len(received), 6, ctx)
        secrets = [str(original.PatientID).encode(), str(original.PatientName).encode(),
                   study_uid.encode(), str(original.SOPInstanceUID).encode()]
        for path in received:
            data = read_bytes(path)
            for secret in secrets:
                self.assertNotIn(secret, data, f"{path} carries an identifier in clear")

        detail = conduit.api(f"/api/jobs/{job['id']}")
        self.assertEqual(len(detail["results"]), 3)
        self.assertEqual(len(detail["deliveries"]), 3)
        self.assertTrue(detail.get("findings"), "findings extracted from the validated results")
        actions = {(e["action"], e["outcome"]) for e in self.audit(conduit) if e["job_id"] == job["id"]}
        for expected in (("deidentify", "success"), ("dispatch", "success"), ("reidentify", "success"),
                         ("result", "success"), ("done", "success")):
            self.assertIn(expected, actions, ctx)

    def test_a_vendor_answering_503_is_retried_and_the_job_completes(self):
        pacs = self.started(Orthanc(self.tmp))
        sim = self.started(DicomwebSim(self.tmp))
        sim.set_mode("error5xx", 2)
        conduit = self.gateway(pacs, sim)
        _, study_uid = self.send_study(conduit)

        job = self.wait_job_state(conduit, "done", timeout=90)[0]
        self.assertEqual(self.pacs_modalities(pacs, study_uid), ["OT", "SEG", "SR"],
                         self.context(conduit, sim))
        retries = [e for e in self.audit(conduit) if e["job_id"] == job["id"] and e["action"] == "retry"]
        self.assertGreaterEqual(len(retries), 2, "each 503 was a retry with backoff")

    def test_a_vendor_slower_than_its_timeout_is_retried_and_nothing_reaches_pacs_twice(self):
        pacs = self.started(Orthanc(self.tmp))
        # The timeout is generous for the second, prompt answer on a loaded machine, and the
        # first answer comes well after it.
        sim = self.started(DicomwebSim(self.tmp, extra=["--slow-ms", "25000"]))
        sim.set_mode("slow", 1)  # the first study only
        conduit = self.gateway(pacs, sim, timeout="15s")
        _, study_uid = self.send_study(conduit)

        job = self.wait_job_state(conduit, "done", timeout=90)[0]
        mine = [e for e in self.audit(conduit) if e["job_id"] == job["id"]]
        retries = [e for e in mine if e["action"] == "retry"]
        self.assertEqual(len(retries), 1, self.context(conduit, sim))
        self.assertIn("DEADLINE_EXCEEDED", str(retries[0]["detail"]))
        # The late answer to the first dispatch arrives after the job moved on: it is refused
        # or replaces identical objects, never a second copy in PACS.
        wait_until("both answers", lambda: sim.status().get("studies_processed", 0) >= 2
                   and sim.status().get("studies_queued", 1) == 0, timeout=60)
        sops = [i["MainDicomTags"]["SOPInstanceUID"] for i in pacs.instances_of_study(study_uid)]
        self.assertEqual(sorted(self.pacs_modalities(pacs, study_uid)), ["OT", "SEG", "SR"])
        self.assertEqual(len(sops), len(set(sops)))

    def expect_quarantine_and_nothing_unvalidated_in_pacs(self, mode, reason_words):
        pacs = self.started(Orthanc(self.tmp))
        sim = self.started(DicomwebSim(self.tmp, mode=mode))
        conduit = self.gateway(pacs, sim, timeout="10s",
                               retry={"max_attempts": 2, "initial_backoff": "200ms", "max_backoff": "200ms"})
        _, study_uid = self.send_study(conduit)
        self.expect_quarantine_then_end(conduit, pacs, study_uid, reason_words,
                                        lambda: self.context(conduit, sim))
        kept = glob.glob(os.path.join(conduit.data_dir, "spool", "quarantine", "**", "*.reason.txt"),
                         recursive=True)
        self.assertGreaterEqual(len(kept), 1, "the refused object is kept as evidence")
        return conduit, pacs, sim, study_uid

    def test_a_malformed_result_is_quarantined(self):
        conduit, pacs, sim, study_uid = self.expect_quarantine_and_nothing_unvalidated_in_pacs(
            "malformed", ["DICOM", "parse", "read"])
        # The SR cites the truncated SEG (too damaged to name itself): it is withheld too, so
        # PACS never holds a report whose evidence does not arrive.
        events = [e for e in self.audit(conduit) if e["action"] == "quarantine"]
        self.assertTrue(any("references result" in str(e["detail"]) for e in events),
                        f"{events}" + self.context(conduit, sim))
        modalities = [http_json(f"{pacs.url}/instances/{i['ID']}/simplified-tags").get("Modality")
                      for i in pacs.instances_of_study(study_uid)]
        self.assertNotIn("SR", modalities, self.context(conduit, sim))

    def test_results_with_wrong_references_are_quarantined(self):
        conduit, pacs, sim, study_uid = self.expect_quarantine_and_nothing_unvalidated_in_pacs(
            "wrong-references", ["reference", "never sent", "not one of"])
        # None of the objects with invented references reached PACS.
        self.assertEqual(pacs.instances_of_study(study_uid), [], self.context(conduit, sim))

    def test_results_sent_to_another_jobs_endpoint_are_refused_and_audited(self):
        pacs = self.started(Orthanc(self.tmp))
        sim = self.started(DicomwebSim(self.tmp, mode="other-job"))
        conduit = self.gateway(pacs, sim, timeout="8s",
                               retry={"max_attempts": 2, "initial_backoff": "200ms", "max_backoff": "200ms"})
        _, study_uid = self.send_study(conduit)
        wait_until("a refused result",
                   lambda: [e for e in self.audit(conduit) if e["action"] == "result_refused"], timeout=60)
        job = self.wait_job_state(conduit, "dead_letter", timeout=90)[0]
        self.assertIn("within its timeout", job["last_error"])
        self.assertEqual(pacs.instances_of_study(study_uid), [])
        self.assertEqual(conduit.api(f"/api/jobs/{job['id']}")["results"], [])
        # Nothing lost: the study is still held and the job can be replayed.
        self.assertEqual(conduit.api("/api/studies")["studies"][0]["instance_count"], 6)

    def test_a_vendor_that_crashes_mid_study_leaves_a_dead_lettered_job_that_replays(self):
        pacs = self.started(Orthanc(self.tmp))
        sim = self.started(DicomwebSim(self.tmp, mode="crash"))
        conduit = self.gateway(pacs, sim, timeout="5s",
                               retry={"max_attempts": 2, "initial_backoff": "200ms", "max_backoff": "200ms"})
        _, study_uid = self.send_study(conduit)
        job = self.wait_job_state(conduit, "dead_letter", timeout=90)[0]
        self.assertEqual(pacs.instances_of_study(study_uid), [])
        # The vendor comes back healthy; the operator replays the job; results reach PACS.
        sim.stop()
        self.started(DicomwebSim(self.tmp, port=sim.port))
        conduit.cli("jobs", "retry", str(job["id"]))
        wait_until("the replayed job", lambda: conduit.api(f"/api/jobs/{job['id']}")["state"] == "done",
                   timeout=90)
        self.assertEqual(self.pacs_modalities(pacs, study_uid), ["OT", "SEG", "SR"])

    def test_a_vendor_over_mutual_tls_gets_the_study_and_its_results_reach_pacs(self):
        """Mutual TLS both ways: Conduit to the vendor, and the vendor's results back to
        Conduit's own https front end (http.tls with ca_file), verified against the same CA."""
        pki = make_test_pki(self.dir("pki"))
        pacs = self.started(Orthanc(self.tmp))
        sim = self.started(DicomwebSim(self.tmp, tls=pki, extra=[
            "--results-ca-file", pki["ca"], "--results-client-cert", pki["client_cert"],
            "--results-client-key", pki["client_key"]]))
        # A key that is not the certificate's stops the start, naming the setting.
        wrong = self.gateway(pacs, sim, start=False, tls={
            "ca_file": pki["ca"], "client_certificate_file": pki["client_cert"],
            "client_key_file": pki["other_ca_key"]})
        check = run([CONDUIT, "config", "check", "--config", wrong.config_path], check=False)
        self.assertEqual(check.returncode, 1, check.stdout + check.stderr)
        self.assertIn("dicomweb.tls.client_key_file", check.stderr)
        with self.assertRaises(PeerExited):
            wrong.start()
        wrong.stop()
        self.assertIn("tool 'vendor': dicomweb.tls.client_key_file", wrong.logs())
        self.assertIn("does not match", wrong.logs())
        os.remove(wrong.log_path)

        conduit = self.gateway(pacs, sim, https=pki, tls={
            "ca_file": pki["ca"], "client_certificate_file": pki["client_cert"],
            "client_key_file": pki["client_key"]})
        self.assertTrue(conduit.url.startswith("https://"))
        _, study_uid = self.send_study(conduit)
        self.wait_job_state(conduit, "done", timeout=90)
        self.assertEqual(self.pacs_modalities(pacs, study_uid), ["OT", "SEG", "SR"],
                         self.context(conduit, sim))
        self.assertGreaterEqual(sim.status()["stow_requests"], 1)

    def test_a_vendor_whose_certificate_is_not_trusted_gets_nothing_and_the_job_says_why(self):
        pki = make_test_pki(self.dir("pki"))
        pacs = self.started(Orthanc(self.tmp))
        sim = self.started(DicomwebSim(self.tmp, tls=pki))
        conduit = self.gateway(pacs, sim, tls={
            "ca_file": pki["other_ca"], "client_certificate_file": pki["client_cert"],
            "client_key_file": pki["client_key"]},
            retry={"max_attempts": 2, "initial_backoff": "200ms", "max_backoff": "200ms"})
        _, study_uid = self.send_study(conduit)
        job = self.wait_job_state(conduit, "dead_letter", timeout=90)[0]
        ctx = self.context(conduit, sim)
        self.assertIn("was not accepted", job["last_error"], ctx)
        self.assertIn("dicomweb.tls.ca_file", job["last_error"], ctx)
        self.assertEqual(sim.status()["stow_requests"], 0, "nothing reached an unverified peer")
        self.assertEqual(sim.received_files(), [])
        self.assertEqual(pacs.instances_of_study(study_uid), [])
        retries = [e for e in self.audit(conduit) if e["job_id"] == job["id"] and e["action"] == "retry"]
        self.assertGreaterEqual(len(retries), 1, "a certificate problem is retried with backoff")


class OrthancDicomwebPluginTest(E2ETest):
    """Orthanc's DICOMweb plugin as a client of Conduit's DICOMweb server."""

    def test_orthanc_stores_to_searches_and_retrieves_from_conduit(self):
        conduit = self.started(Conduit(self.tmp, {}))
        base = conduit.url + "/dicom-web/"
        source = self.started(Orthanc(self.tmp, dicomweb_servers={"conduit": base}, name="source"))
        files = make_study(self.dir("study"), "CT", slices=5, rows=64, cols=64)
        for f in files:
            source.upload(f)
        study_uid, series_uid, _ = read_uids(files[0])
        orthanc_study = http_json(source.url + "/studies")[0]

        # STOW-RS from Orthanc to Conduit: durable in Conduit's index when Orthanc hears 200.
        answer = http_json(source.url + "/dicom-web/servers/conduit/stow", "POST",
                           {"Resources": [orthanc_study]}, timeout=60)
        self.assertIsNotNone(answer)
        study = conduit.api("/api/studies")["studies"]
        self.assertEqual(len(study), 1)
        self.assertEqual(study[0]["instance_count"], 5)
        receipts = [e for e in conduit.api("/api/audit?limit=100")["events"] if e["action"] == "receive"]
        self.assertEqual(len(receipts), 5)
        self.assertIn("DICOMweb", str(receipts[0]["detail"]))

        # QIDO-RS through Orthanc's client.
        found = http_json(source.url + "/dicom-web/servers/conduit/get", "POST",
                          {"Uri": "/studies",
                           "Arguments": {"StudyInstanceUID": study_uid, "includefield": "all"}})
        self.assertEqual(len(found), 1)
        self.assertEqual(found[0]["0020000D"]["Value"][0], study_uid)
        self.assertEqual(found[0]["00201208"]["Value"][0], 5)
        series = http_json(source.url + "/dicom-web/servers/conduit/get", "POST",
                           {"Uri": f"/studies/{study_uid}/series"})
        self.assertEqual([s["0020000E"]["Value"][0] for s in series], [series_uid])

        # WADO-RS: a second, empty Orthanc retrieves the study from Conduit.
        target = self.started(Orthanc(self.tmp, dicomweb_servers={"conduit": base}, name="target"))
        http_json(target.url + "/dicom-web/servers/conduit/retrieve", "POST",
                  {"Resources": [{"Study": study_uid}]}, timeout=60)
        got = target.instances_of_study(study_uid)
        self.assertEqual(len(got), 5)
        original = pydicom.dcmread(files[0])
        match = [i for i in got if i["MainDicomTags"]["SOPInstanceUID"] == original.SOPInstanceUID][0]
        with urllib.request.urlopen(f"{target.url}/instances/{match['ID']}/file", timeout=10) as r:
            data = r.read()
        self.assertEqual(data, read_bytes(files[0]), "retrieved byte for byte as stored")

        # The study's audit trail names the store, the searches and the retrieval, with the
        # client's address and never the UID.
        trail = conduit.api(f"/api/audit?limit=500&study={study_uid}")["events"]
        by_action = {}
        for e in trail:
            by_action.setdefault(e["action"], []).append(e)
        self.assertEqual(len(by_action.get("receive", [])), 5, trail)
        retrieves = by_action.get("retrieve", [])
        self.assertEqual(len(retrieves), 1, trail)
        self.assertEqual(retrieves[0]["detail"]["resource"], "instances")
        self.assertEqual(retrieves[0]["detail"]["instances"], 5)
        self.assertEqual(retrieves[0]["detail"]["peer"], "127.0.0.1")
        self.assertEqual([q["detail"]["resource"] for q in by_action.get("query", [])], ["series"],
                         "the search within the study; the one across studies has no study")
        self.assertNotIn(study_uid, json.dumps(trail))
        # The same trail from the command line, for an IG lead with a shell on the node.
        listed = json.loads(conduit.cli("audit", "--study", study_uid, "--json").stdout)
        self.assertEqual([(e["at"], e["action"]) for e in listed], [(e["at"], e["action"]) for e in trail])
        table = conduit.cli("audit", "--study", study_uid).stdout
        self.assertIn("retrieve", table)
        self.assertNotIn(study_uid, table)
        self.assertEqual(conduit.cli("audit", "--study", "not-a-uid", check=False).returncode, 2)


    def test_with_api_tokens_orthanc_stores_with_its_token_and_a_stranger_is_refused(self):
        token_file = os.path.join(self.tmp, "api.tokens")
        token = "orthanc-" + "5" * 40
        with open(token_file, "w") as f:
            f.write("# the source Orthanc\n" + token + "\n")
        conduit = self.started(Conduit(self.tmp, {"http": {"api_token_file": token_file}}))
        base = conduit.url + "/dicom-web/"
        source = self.started(Orthanc(
            self.tmp, name="source",
            dicomweb_servers={"conduit": {"Url": base,
                                          "HttpHeaders": {"Authorization": "Bearer " + token}},
                              "stranger": base}))
        files = make_study(self.dir("study"), "CT", slices=2, rows=32, cols=32)
        for f in files:
            source.upload(f)
        study_uid, _, _ = read_uids(files[0])
        orthanc_study = http_json(source.url + "/studies")[0]

        # Without the token Orthanc's STOW-RS fails and nothing is stored.
        with self.assertRaises(urllib.error.HTTPError):
            http_json(source.url + "/dicom-web/servers/stranger/stow", "POST",
                      {"Resources": [orthanc_study]}, timeout=60)
        self.assertEqual(conduit.api("/api/studies")["studies"], [])
        refusals = [e for e in conduit.api("/api/audit?limit=100")["events"]
                    if e["action"] == "http_auth"]
        self.assertTrue(refusals)
        self.assertEqual(refusals[0]["outcome"], "failure")
        self.assertEqual(refusals[0]["actor"], "127.0.0.1")
        self.assertNotIn(token, conduit.logs())
        self.assertNotIn(study_uid, json.dumps(refusals))

        # With it: stored, and searchable through Orthanc's client.
        http_json(source.url + "/dicom-web/servers/conduit/stow", "POST",
                  {"Resources": [orthanc_study]}, timeout=60)
        self.assertEqual(conduit.api("/api/studies")["studies"][0]["instance_count"], 2)
        found = http_json(source.url + "/dicom-web/servers/conduit/get", "POST",
                          {"Uri": "/studies", "Arguments": {"StudyInstanceUID": study_uid}})
        self.assertEqual(found[0]["0020000D"]["Value"][0], study_uid)

        # Health stays open; the rest of the admin API does not.
        self.assertEqual(http_json(conduit.url + "/api/health")["status"], "ok")
        with self.assertRaises(urllib.error.HTTPError) as refused:
            http_json(conduit.url + "/api/jobs")
        self.assertEqual(refused.exception.code, 401)
        self.assertEqual(refused.exception.headers["WWW-Authenticate"], 'Bearer realm="conduit"')

    def test_with_client_certificates_only_an_orthanc_presenting_one_stores(self):
        """http.tls.ca_file: mutual TLS on the HTTP port; Orthanc's DICOMweb client presents the
        trust's client certificate, another entry without one is refused at the handshake."""
        pki = make_test_pki(self.dir("pki"))
        conduit = Conduit(self.tmp, {"http": {"tls": {
            "certificate_file": pki["server_cert"], "key_file": pki["server_key"],
            "ca_file": pki["ca"]}}}, ca_file=pki["ca"])
        conduit.context.load_cert_chain(pki["client_cert"], pki["client_key"])
        self.started(conduit)
        base = conduit.url + "/dicom-web/"
        source = self.started(Orthanc(
            self.tmp, name="source", extra={"HttpsCACertificates": pki["ca"]},
            dicomweb_servers={"conduit": {"Url": base, "CertificateFile": pki["client_cert"],
                                          "CertificateKeyFile": pki["client_key"]},
                              "anonymous": base}))
        files = make_study(self.dir("study"), "CT", slices=2, rows=32, cols=32)
        for f in files:
            source.upload(f)
        orthanc_study = http_json(source.url + "/studies")[0]

        with self.assertRaises(urllib.error.HTTPError):
            http_json(source.url + "/dicom-web/servers/anonymous/stow", "POST",
                      {"Resources": [orthanc_study]}, timeout=60)
        self.assertEqual(conduit.api("/api/studies")["studies"], [])
        refusals = [e for e in conduit.api("/api/audit?limit=100")["events"]
                    if e["action"] == "http_auth" and e["detail"]["route"] == "tls_handshake"]
        self.assertTrue(refusals)
        self.assertEqual(refusals[0]["detail"]["reason"], "no client certificate")
        self.assertIn("guard=client_certificate", conduit.logs())

        http_json(source.url + "/dicom-web/servers/conduit/stow", "POST",
                  {"Resources": [orthanc_study]}, timeout=60)
        self.assertEqual(conduit.api("/api/studies")["studies"][0]["instance_count"], 2)


class StowDeliveryTest(E2ETest):
    """Results delivered to a PACS by STOW-RS: Orthanc's DICOMweb plugin as the PACS."""

    def gateway(self, pacs_url, token_file=None):
        dicomweb = {"url": pacs_url + "/dicom-web"}
        if token_file:
            dicomweb["auth_token_file"] = token_file
        return Conduit(self.tmp, {
            "destinations": [{"name": "pacs", "dicomweb": dicomweb, "timeout": "10s"}],
            "tools": [self.reference_tool()],
            "routes": [{"name": "ct", "when": {"Modality": "CT"}, "tool": "reference",
                        "results_to": ["pacs"], "stable_after": "1s"}],
            "retry": {"max_attempts": 20, "initial_backoff": "200ms", "max_backoff": "1s"},
        })

    def test_results_reach_orthanc_by_stow_rs_once_each_even_when_it_was_down(self):
        pacs = Orthanc(self.tmp, dicomweb_servers={})
        conduit = self.started(self.gateway(pacs.url))
        files = make_study(self.dir("study"), "CT", slices=6, rows=64, cols=64)
        storescu(conduit.dicom_port, files)
        study_uid = read_uids(files[0])[0]

        # The PACS is down when the results are ready: delivery is retried, and says why.
        wait_until("a failed STOW-RS delivery",
                   lambda: [e for e in conduit.api("/api/audit?limit=1000")["events"]
                            if e["action"] == "deliver" and e["outcome"] == "failure"],
                   timeout=90)
        self.assertEqual(conduit.jobs("done")["jobs"], [])
        self.started(pacs)
        job = self.wait_job_state(conduit, "done", timeout=90)[0]
        ctx = f"\nconduit log tail:\n{conduit.logs()[-4000:]}"

        series = sorted(s["MainDicomTags"].get("Modality", "") for s in pacs.series_of(study_uid))
        self.assertEqual(series, ["OT", "SEG", "SR"], ctx)
        instances = pacs.instances_of_study(study_uid)
        self.assertEqual(len(instances), 3, "the three results, each once")
        original = pydicom.dcmread(files[0], stop_before_pixels=True)
        for instance in instances:
            tags = http_json(f"{pacs.url}/instances/{instance['ID']}/simplified-tags")
            self.assertEqual(tags["PatientID"], str(original.PatientID))
        detail = conduit.api(f"/api/jobs/{job['id']}")
        self.assertEqual(len(detail["deliveries"]), 3, ctx)
        delivered = [e for e in conduit.api("/api/audit?limit=1000")["events"]
                     if e["action"] == "deliver" and e["outcome"] == "success"]
        self.assertEqual(len(delivered), 3, ctx)
        for event in delivered:
            self.assertEqual(event["detail"]["protocol"], "stow-rs")
        self.assertNotIn(str(original.PatientID), conduit.logs(), "no identifier in the log")

    def test_a_token_the_archive_refuses_holds_the_results_until_the_file_is_fixed(self):
        # A second Conduit, whose DICOMweb server wants a bearer token, stands in for an archive.
        tokens = os.path.join(self.tmp, "archive-tokens")
        right = "archive-token-" + "7" * 40
        with open(tokens, "w") as f:
            f.write(right + "\n")
        archive = self.started(Conduit(self.dir("archive"), {"http": {"api_token_file": tokens}}))
        token = os.path.join(self.tmp, "pacs.token")
        with open(token, "w") as f:
            f.write("not-what-the-archive-wants-" + "x" * 20 + "\n")
        conduit = self.started(self.gateway(archive.url, token))
        files = make_study(self.dir("study"), "CT", slices=4, rows=64, cols=64)
        storescu(conduit.dicom_port, files)
        wait_until("a refused STOW-RS delivery",
                   lambda: "destinations[pacs].dicomweb.auth_token_file" in conduit.logs(),
                   timeout=90)
        self.assertEqual(conduit.jobs("done")["jobs"], [])
        self.assertNotIn("not-what-the-archive-wants", conduit.logs(), "the token is never logged")

        # The token file is read at each delivery: fixed, the next retry gets through.
        with open(token, "w") as f:
            f.write(right + "\n")
        self.wait_job_state(conduit, "done", timeout=90)
        study_uid = read_uids(files[0])[0]
        held = archive.api(f"/api/studies/{study_uid}")
        self.assertEqual(held["instance_count"], 3, held)

INTEROP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "interop", "dicomweb-client"))


class DicomwebClientInteropTest(E2ETest):
    """The npm dicomweb-client library (as used by web viewers) against Conduit."""

    def test_dicomweb_client_stores_searches_and_retrieves(self):
        if not os.path.isdir(os.path.join(INTEROP, "node_modules", "dicomweb-client")):
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=INTEROP, check=True,
                           timeout=300, capture_output=True)
        conduit = self.started(Conduit(self.tmp, {}))
        files = make_study(self.dir("study"), "CT", slices=4, rows=64, cols=64)
        out = subprocess.run(["node", "client_check.js", conduit.url + "/dicom-web"] + files,
                             cwd=INTEROP, capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr + conduit.logs()[-3000:])
        seen = json.loads(out.stdout)
        study_uid, series_uid, _ = read_uids(files[0])
        sops = sorted(read_uids(f)[2] for f in files)
        self.assertEqual(seen["studies"], 1)
        self.assertEqual(seen["study"], study_uid)
        self.assertEqual(seen["studyInstances"], 4)
        self.assertEqual(seen["series"], [series_uid])
        self.assertEqual(sorted(seen["instances"]), sops)
        self.assertEqual(sorted(seen["metadata"]), sops)
        self.assertEqual(sorted(seen["retrievedBytes"]), sorted(os.path.getsize(f) for f in files))
        self.assertIn(seen["oneBytes"], [os.path.getsize(f) for f in files])
        self.assertEqual(seen["limited"], 1)


if __name__ == "__main__":
    unittest.main()
