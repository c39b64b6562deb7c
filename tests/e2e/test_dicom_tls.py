"""DICOM over TLS end to end (PS3.15 Annex B), with certificates from a throw-away CA: a
modality (DCMTK's storescu) stores on Conduit's TLS port with its client certificate, the
reference tool runs, and the results reach Orthanc over DICOM TLS, Orthanc wanting Conduit's
client certificate. A modality without a certificate, or speaking plain DICOM to the TLS port,
is refused and audited. A DIMSE AI tool node gets its study over TLS and sends its results back
to the TLS port."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import (E2ETest, Conduit, Orthanc, make_study, read_uids, run,  # noqa: E402
                     make_test_pki, make_test_crl, free_port, storescu, CONDUIT)
from test_dimse_tool import DimseToolNode, TOOL_AE  # noqa: E402


class DicomTlsTest(E2ETest):
    def tls_pacs(self, pki):
        # Orthanc wants the client certificate of whoever associates (our CA's).
        return self.started(Orthanc(self.tmp, extra={
            "DicomTlsEnabled": True, "DicomTlsCertificate": pki["server_cert"],
            "DicomTlsPrivateKey": pki["server_key"], "DicomTlsTrustedCertificates": pki["ca"],
            "DicomTlsRemoteCertificateRequired": True}))

    def gateway(self, pacs, pki, ca_for_pacs, crl=None):
        listener = {"port": free_port(), "certificate_file": pki["server_cert"],
                    "key_file": pki["server_key"], "ca_file": pki["ca"]}
        if crl:
            listener["crl_file"] = crl
        config = {
            "dicom": {"tls": listener},
            "destinations": [{"name": "pacs", "ae_title": pacs.aet, "host": "127.0.0.1",
                              "port": pacs.dicom_port,
                              "tls": {"ca_file": ca_for_pacs, "client_certificate_file": pki["client_cert"],
                                      "client_key_file": pki["client_key"]}}],
            "tools": [self.reference_tool()],
            "routes": [{"name": "ct", "when": {"Modality": "CT"}, "tool": "reference",
                        "results_to": ["pacs"], "stable_after": "1s"}],
            "retry": {"max_attempts": 2, "initial_backoff": "200ms", "max_backoff": "200ms"},
        }
        return self.started(Conduit(self.tmp, config))

    def storescu_tls(self, conduit, files, options):
        port = conduit.config["dicom"]["tls"]["port"]
        return run(["storescu", "-aet", "MODALITY", "-aec", "CONDUIT", *options, "127.0.0.1", str(port),
                    *files], check=False)

    def test_a_study_over_tls_in_and_its_results_over_tls_to_pacs(self):
        pki = make_test_pki(self.dir("pki"))
        pacs = self.tls_pacs(pki)
        conduit = self.gateway(pacs, pki, pki["ca"], crl=make_test_crl(pki, revoke=("node_cert",)))
        files = make_study(self.dir("study"), "CT", slices=6, rows=64, cols=64)
        study_uid = read_uids(files[0])[0]

        # Without a certificate, and in plain DICOM, the TLS port refuses; both are audited.
        anonymous = self.storescu_tls(conduit, files, ["+tla", "+cf", pki["ca"]])
        self.assertNotEqual(anonymous.returncode, 0, anonymous.stdout + anonymous.stderr)
        plain = self.storescu_tls(conduit, files, [])
        self.assertNotEqual(plain.returncode, 0)
        # One audit entry: refusals from one peer are throttled (one a minute, then counted).
        refusals = [e for e in conduit.api("/api/audit?limit=200")["events"] if e["action"] == "reject"]
        self.assertEqual(len(refusals), 1, refusals)
        self.assertIn("TLS association refused", refusals[0]["detail"]["reason"])
        self.assertIn("peer did not return a certificate", refusals[0]["detail"]["reason"])
        self.assertEqual(refusals[0]["detail"]["peer"], "127.0.0.1")
        self.assertEqual(conduit.api("/api/studies")["studies"], [])

        sent = self.storescu_tls(conduit, files, ["+tls", pki["client_key"], pki["client_cert"],
                                                  "+cf", pki["ca"]])
        self.assertEqual(sent.returncode, 0, sent.stdout + sent.stderr)
        self.wait_job_state(conduit, "done", timeout=120)
        series = pacs.series_of(study_uid)
        self.assertEqual(sorted(s["MainDicomTags"].get("Modality", "") for s in series),
                         ["OT", "SEG", "SR"], conduit.logs()[-3000:])
        receipts = [e for e in conduit.api("/api/audit?limit=500")["events"] if e["action"] == "receive"]
        self.assertEqual(len(receipts), 6)
        self.assertTrue(all(e["detail"].get("tls") is True for e in receipts), receipts[0])
        health = conduit.api("/api/health")
        self.assertEqual((health["dicom_listener"], health["dicom_tls_listener"]), ("up", "up"))
        # Each configured certificate's end is a metric, for an alert before it comes.
        metrics = run(["curl", "-sf", conduit.url + "/metrics"]).stdout
        for setting in ("dicom.tls.certificate_file", "dicom.tls.ca_file",
                        "destinations[pacs].tls.client_certificate_file", "destinations[pacs].tls.ca_file"):
            self.assertIn(f'conduit_tls_certificate_expiry_timestamp_seconds{{setting="{setting}"}}', metrics)
        self.assertIn('conduit_tls_crl_next_update_timestamp_seconds{setting="dicom.tls.crl_file"}', metrics)
        # A certificate the CA has revoked (the node's, also good for client authentication) is
        # refused and counted (its log line and audit entry fall under the minute's throttle of
        # this peer's earlier refusals).
        def refused():
            text = run(["curl", "-sf", conduit.url + "/metrics"]).stdout
            line = [x for x in text.splitlines()
                    if x.startswith('conduit_instances_rejected_total{reason="PERMISSION_DENIED"}')]
            return float(line[0].split()[-1]) if line else 0.0
        before = refused()
        revoked = self.storescu_tls(conduit, files, ["+tls", pki["node_key"], pki["node_cert"],
                                                     "+cf", pki["ca"]])
        self.assertNotEqual(revoked.returncode, 0, revoked.stdout + revoked.stderr)
        self.assertEqual(refused(), before + 1)
        # `conduit echo` reaches the PACS over TLS too.
        echo = run([CONDUIT, "echo", "--config", conduit.config_path, "pacs"], check=False)
        self.assertEqual(echo.returncode, 0, echo.stdout + echo.stderr)

    def test_a_pacs_whose_certificate_is_not_trusted_gets_nothing(self):
        pki = make_test_pki(self.dir("pki"))
        pacs = self.tls_pacs(pki)
        conduit = self.gateway(pacs, pki, pki["other_ca"])
        files = make_study(self.dir("study"), "CT", slices=4, rows=64, cols=64)
        study_uid = read_uids(files[0])[0]
        sent = self.storescu_tls(conduit, files, ["+tls", pki["client_key"], pki["client_cert"],
                                                  "+cf", pki["ca"]])
        self.assertEqual(sent.returncode, 0, sent.stdout + sent.stderr)
        job = self.wait_job_state(conduit, "dead_letter", timeout=120)[0]
        self.assertIn("certificate verify failed", job["last_error"])
        self.assertEqual(pacs.series_of(study_uid), [])

    def test_a_dimse_tool_over_tls_both_ways(self):
        pki = make_test_pki(self.dir("pki"))
        pacs = self.started(Orthanc(self.tmp))
        tls_port = free_port()
        # The node accepts the study and opens the association that returns its results.
        node = DimseToolNode(self.tmp, tls=(pki["node_key"], pki["node_cert"], pki["ca"]))
        node.conduit_port = tls_port
        self.started(node)
        config = {
            "dicom": {"tls": {"port": tls_port, "certificate_file": pki["server_cert"],
                              "key_file": pki["server_key"], "ca_file": pki["ca"]}},
            "destinations": [{"name": "pacs", "ae_title": pacs.aet, "host": "127.0.0.1",
                              "port": pacs.dicom_port}],
            "tools": [{"name": "node", "kind": "dimse", "ae_title": TOOL_AE, "host": "127.0.0.1",
                       "port": node.port, "hosting_region": "UK", "results_stable_after": "2s",
                       "timeout": "60s",
                       "tls": {"ca_file": pki["ca"], "client_certificate_file": pki["client_cert"],
                               "client_key_file": pki["client_key"]}}],
            "routes": [{"name": "ct", "when": {"Modality": "CT"}, "tool": "node",
                        "results_to": ["pacs"], "stable_after": "1s"}],
        }
        conduit = self.started(Conduit(self.tmp, config))
        files = make_study(self.dir("study"), "CT", slices=4, rows=64, cols=64)
        study_uid = read_uids(files[0])[0]
        storescu(conduit.dicom_port, files)  # the modality on the plain port
        self.wait_job_state(conduit, "done", timeout=120)
        self.assertEqual(sorted(s["MainDicomTags"].get("Modality", "") for s in pacs.series_of(study_uid)),
                         ["OT", "SEG", "SR"], node.log() + conduit.logs()[-3000:])
        results = [e for e in conduit.api("/api/audit?limit=500")["events"]
                   if e["action"] == "result" and e["outcome"] == "success"]
        self.assertTrue(results, "the tool's results came back over TLS and were taken")


if __name__ == "__main__":
    unittest.main()
