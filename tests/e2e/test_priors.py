"""Priors from PACS end to end: a tool whose entry asks for the two most recent comparable
studies within five years gets them from Orthanc, over DIMSE (C-FIND, then C-GET or C-MOVE to
Conduit's listener) and over DICOMweb (QIDO-RS + WADO-RS), beside the current study and under
the same pseudonymous patient; studies that are too old, of another modality or of another
patient stay out, and priors that arrive on the listener are not routed as new studies."""

import collections
import os
import sys
import unittest

import pydicom  # Debian python3-pydicom (tests run with /usr/bin/python3)

sys.path.insert(0, os.path.dirname(__file__))
from harness import E2ETest, Conduit, Orthanc, make_study, read_uids, storescu  # noqa: E402
from test_dicomweb import DicomwebSim  # noqa: E402

PATIENT = "PRIORS-E2E-7731"
NAME = "Comparison^Pat"


class PriorsTest(E2ETest):
    def study(self, name, modality, slices, date, patient=PATIENT):
        """A study of `patient` dated `date` (YYYYMMDD), written to its own folder."""
        files = make_study(self.dir(name), modality, slices=slices, rows=32, cols=32,
                           extra=["--patient-id", patient, "--patient-name", NAME])
        for path in files:
            ds = pydicom.dcmread(path)
            ds.StudyDate = date
            ds.SeriesDate = date
            ds.save_as(path)
        return files

    def run_with_source(self, source_kind):
        conduit_ports = Conduit(self.tmp)  # only for its free ports; the real one is made below
        pacs = self.started(Orthanc(self.tmp, dicomweb_servers={}, modalities={
            "conduit": {"AET": "CONDUIT", "Host": "127.0.0.1", "Port": conduit_ports.dicom_port,
                        "AllowFind": True, "AllowGet": True,
                        "AllowMove": source_kind == "dimse-move"}}))
        priors = {
            "recent": self.study("recent", "CT", 3, "20250301"),
            "older": self.study("older", "CT", 4, "20230301"),
            "mr": self.study("mr", "MR", 5, "20260101"),
            "too-old": self.study("too-old", "CT", 2, "20190101"),
            "oldest-comparable": self.study("oldest", "CT", 2, "20220301"),
            "other-patient": self.study("other", "CT", 7, "20250601", patient="SOMEONE-ELSE"),
        }
        for files in priors.values():
            for path in files:
                pacs.upload(path)
        current = self.study("current", "CT", 6, "20261101")

        sim = self.started(DicomwebSim(self.tmp))
        source = ({"kind": "dimse", "ae_title": pacs.aet, "host": "127.0.0.1", "port": pacs.dicom_port}
                  if source_kind.startswith("dimse") else {"kind": "dicomweb", "url": pacs.url + "/dicom-web"})
        if source_kind == "dimse-move":
            source["retrieve"] = "move"
        config = {
            "dicom": {"port": conduit_ports.dicom_port},
            "priors_source": source,
            "destinations": [{"name": "pacs", "ae_title": pacs.aet, "host": "127.0.0.1",
                              "port": pacs.dicom_port, "timeout": "5s"}],
            "tools": [{"name": "compare", "kind": "dicomweb", "dicomweb": {"url": sim.url + "/dicom-web"},
                       "timeout": "60s", "results_stable_after": "1s", "hosting_region": "UK",
                       "priors": {"count": 2, "max_age": "5y", "time_limit": "60s",
                                  "on_missing": "proceed"}}],
            "routes": [{"name": "ct", "when": {"Modality": "CT"}, "tool": "compare",
                        "results_to": ["pacs"], "stable_after": "1s"}],
        }
        conduit = Conduit(self.tmp, config)
        conduit.dicom_port = conduit_ports.dicom_port  # the port Orthanc knows
        self.started(conduit)
        storescu(conduit.dicom_port, current)
        self.wait_job_state(conduit, "done", timeout=120)
        ctx = f"\nsimulator log:\n{sim.log()[-2000:]}\nconduit log tail:\n{conduit.logs()[-4000:]}"

        # What the tool received: the current study and the two most recent comparable priors,
        # each a study of its own, all under one pseudonymous patient.
        by_study = collections.defaultdict(list)
        patients = set()
        for path in sim.received_files():
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            if ds.Modality != "CT":
                continue  # the simulator keeps its own results beside what it received
            by_study[ds.StudyInstanceUID].append(ds)
            patients.add(str(ds.PatientID))
        sizes = sorted(len({d.SOPInstanceUID for d in v}) for v in by_study.values())
        self.assertEqual(sizes, [3, 4, 6], f"current (6) + recent (3) + older (4){ctx}")
        self.assertEqual(len(patients), 1, f"one pseudonymous patient: {patients}")
        self.assertNotIn(PATIENT, patients)
        originals = {read_uids(files[0])[0] for files in list(priors.values()) + [current]}
        self.assertFalse(originals & set(by_study), "no original Study UID reaches the tool")
        for studies in by_study.values():
            self.assertNotIn(NAME, str(studies[0].PatientName))

        audit = conduit.api("/api/audit?limit=1000")["events"]
        fetched = [e for e in audit if e["action"] == "prior_fetched"]
        self.assertTrue(fetched, f"fetching is audited{ctx}")
        self.assertFalse([e for e in audit if e["action"] == "prior_missing"], ctx)
        # The priors were not routed as new studies: one job only.
        self.assertEqual(len(conduit.jobs()["jobs"]), 1, ctx)
        self.assertNotIn(PATIENT, conduit.logs())

    def test_priors_over_dimse_reach_the_tool_under_the_current_studys_pseudonym(self):
        self.run_with_source("dimse")

    def test_priors_over_dimse_by_c_move_reach_the_tool_and_are_not_routed(self):
        self.run_with_source("dimse-move")

    def test_priors_over_dicomweb_reach_the_tool_under_the_current_studys_pseudonym(self):
        self.run_with_source("dicomweb")


if __name__ == "__main__":
    unittest.main()
