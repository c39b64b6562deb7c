"""The information-governance policy in the gateway: what reaches a tool is de-identified, its
results come back re-identified onto the original study, refusals are audited, and a tool the
policy forbids never starts."""

import glob
import hashlib
import os
import re
import stat
import sys
import unittest

import pydicom  # Debian python3-pydicom (tests run with /usr/bin/python3)

sys.path.insert(0, os.path.dirname(__file__))
from harness import (E2ETest, Conduit, Orthanc, make_study, read_uids, storescu,  # noqa: E402
                     expected_durability, run, read_bytes, CONDUIT, REFERENCE_TOOL)

POLICY = """\
policy: {name: "e2e trust policy", version: "7"}
deidentification:
  options: [retain_long_modified_dates]
  date_shift_days: {min: 30, max: 60}
hosting: {allowed_regions: [UK]}
"""


def walk_uids(ds, depth=0):
    """(keyword, value, depth) of every UI element, at every depth."""
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value:
                yield from walk_uids(item, depth + 1)
        elif elem.VR == "UI" and elem.value:
            values = elem.value if isinstance(elem.value, (list, pydicom.multival.MultiValue)) \
                else [elem.value]
            for v in values:
                yield elem.keyword, str(v), depth


class PolicyTest(E2ETest):
    def capturing_tool(self):
        """The reference tool behind a wrapper that keeps a copy of what the tool was given."""
        self.captured = self.dir("captured")
        script = os.path.join(self.tmp, "capture-tool.sh")
        with open(script, "w") as f:
            f.write("#!/bin/sh\n# --input DIR --output DIR\n"
                    f'cp -r "$2"/. "{self.captured}"/\n'
                    f'exec "{REFERENCE_TOOL}" "$@"\n')
        os.chmod(script, os.stat(script).st_mode | stat.S_IXUSR)
        return self.reference_tool(command=[script], deidentify=True)

    def gateway(self, pacs, tools, governance=None):
        config = {
            "destinations": [{"name": "pacs", "ae_title": pacs.aet, "host": "127.0.0.1",
                              "port": pacs.dicom_port}],
            "tools": tools,
            "routes": [{"name": "ct", "when": {"Modality": "CT"}, "tool": tools[0]["name"],
                        "results_to": ["pacs"], "stable_after": "1s"}],
        }
        if governance:
            config["governance"] = governance
        return self.started(Conduit(self.tmp, config))

    def policy_file(self):
        path = os.path.join(self.tmp, "policy.yaml")
        with open(path, "w") as f:
            f.write(POLICY)
        return path, hashlib.sha256(POLICY.encode()).hexdigest()

    def test_a_local_tool_sees_only_pseudonyms_and_its_results_file_onto_the_original_study(self):
        pacs = self.started(Orthanc(self.tmp))
        policy, policy_hash = self.policy_file()
        conduit = self.gateway(pacs, [self.capturing_tool()], {"policy": policy})
        files = make_study(self.dir("study"), "CT", slices=8, rows=96, cols=96,
                           extra=["--patient-name", "PLANTED^NAME", "--patient-id", "PLANTEDID123"])
        originals = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
        study_uid = str(originals[0].StudyInstanceUID)
        original_sops = {str(ds.SOPInstanceUID) for ds in originals}
        original_series = {str(ds.SeriesInstanceUID) for ds in originals}
        storescu(conduit.dicom_port, files)

        job = self.wait_job_state(conduit, "done")[0]

        # `policy show` with the gateway's config prints the policy it put in force.
        shown = conduit.cli("policy", "show").stdout
        self.assertIn(f"# sha256: {policy_hash}\n", shown)
        self.assertIn(POLICY, shown)

        # What the tool saw: pseudonyms only, dates moved back by the same 30-60 days.
        seen = [pydicom.dcmread(p) for p in sorted(glob.glob(os.path.join(self.captured, "*")))]
        self.assertEqual(len(seen), len(files))
        for ds in seen:
            raw = read_bytes(ds.filename)
            for secret in (b"PLANTED", study_uid.encode(), *(s.encode() for s in original_sops)):
                self.assertNotIn(secret, raw)
            self.assertEqual(ds.PatientIdentityRemoved, "YES")
            self.assertEqual(ds.LongitudinalTemporalInformationModified, "MODIFIED")
            self.assertTrue(str(ds.StudyInstanceUID).startswith("2.25."))
        self.assertEqual(len({str(ds.StudyInstanceUID) for ds in seen}), 1, "one pseudonymous study")
        self.assertEqual(len({str(ds.PatientID) for ds in seen}), 1, "one pseudonymous patient")
        if originals[0].get("StudyDate") and seen[0].get("StudyDate"):
            from datetime import datetime
            shift = (datetime.strptime(str(originals[0].StudyDate), "%Y%m%d")
                     - datetime.strptime(str(seen[0].StudyDate), "%Y%m%d")).days
            self.assertTrue(30 <= shift <= 60, shift)

        # What reached PACS: the results, re-identified onto the original patient and study,
        # every reference pointing at an original image (or at another result of the tool).
        results = pacs.instances_of_study(study_uid)
        self.assertEqual(len(results), 3)
        result_uids = set()
        datasets = []
        for instance in results:
            path = os.path.join(self.tmp, instance["ID"] + ".dcm")
            with open(path, "wb") as f:
                f.write(http_bytes(f"{pacs.url}/instances/{instance['ID']}/file"))
            ds = pydicom.dcmread(path)
            datasets.append(ds)
            result_uids |= {str(ds.SOPInstanceUID), str(ds.SeriesInstanceUID)}
        references = 0
        for ds in datasets:
            self.assertEqual(str(ds.PatientID), "PLANTEDID123")
            self.assertEqual(str(ds.PatientName), "PLANTED^NAME")
            self.assertEqual(str(ds.StudyInstanceUID), study_uid)
            self.assertNotIn("PatientIdentityRemoved", ds)
            for keyword, value, depth in walk_uids(ds):
                if depth == 0 or keyword not in ("ReferencedSOPInstanceUID", "SeriesInstanceUID",
                                                 "StudyInstanceUID"):
                    continue
                references += 1
                self.assertIn(value, original_sops | original_series | {study_uid} | result_uids,
                              f"{keyword} in a result points at nothing known")
        self.assertGreater(references, 0, "the results reference the images they were made from")

        # The audit names the policy (by its hash) on every entry, and the transfer's counts.
        audit = conduit.api("/api/audit?limit=500")["events"]
        self.assertTrue(all(e["policy_hash"] == policy_hash for e in audit),
                        {e["policy_hash"] for e in audit})
        mine = [e for e in audit if e["job_id"] == job["id"]]
        deid = [e for e in mine if e["action"] == "deidentify"]
        self.assertEqual(len(deid), 1)
        detail = deid[0]["detail"]
        self.assertEqual(detail["deidentified"], len(files))
        self.assertGreater(detail["actions"]["U"], 0)
        self.assertEqual(len([e for e in mine if e["action"] == "reidentify"]), 3)
        self.assertNotIn("PLANTED", conduit.logs())

        # The key the gateway made for itself is private to its owner.
        key = os.path.join(conduit.data_dir, "keys", "pseudonym.key")
        self.assertEqual(stat.S_IMODE(os.stat(key).st_mode), 0o600)
        self.assertEqual(os.path.getsize(key), 32)

    def test_instances_the_policy_refuses_never_leave_and_the_job_says_why(self):
        pacs = self.started(Orthanc(self.tmp))
        conduit = self.gateway(pacs, [self.capturing_tool()])
        files = make_study(self.dir("study"), "CT", slices=3, rows=64, cols=64)
        for f in files:
            run(["dcmodify", "-nb", "-i", "(0028,0301)=YES", f])
        storescu(conduit.dicom_port, files)

        job = self.wait_job_state(conduit, "failed")[0]
        self.assertEqual(os.listdir(self.captured), [], "nothing reached the tool")
        audit = [e for e in conduit.api("/api/audit?limit=500")["events"]
                 if e["job_id"] == job["id"]]
        deid = [e for e in audit if e["action"] == "deidentify"][0]
        self.assertEqual(deid["outcome"], "failure")
        self.assertEqual(len(deid["detail"]["refused"]), 3)
        self.assertIn("Burned In Annotation", deid["detail"]["refused"][0]["reason"])
        self.assertEqual(pacs.instances_of_study(read_uids(files[0])[0]), [])

    def test_a_tool_hosted_where_the_policy_forbids_is_refused_before_anything_runs(self):
        policy, _ = self.policy_file()
        conduit = Conduit(self.tmp, {
            "governance": {"policy": policy},
            "tools": [{"name": "us-cloud-ai", "kind": "dimse", "ae_title": "USAI",
                       "host": "127.0.0.1", "port": 11999, "hosting_region": "US"}],
        })
        out = conduit.cli("config", "check", check=False)
        self.assertEqual(out.returncode, 2, out.stdout + out.stderr)
        self.assertIn("us-cloud-ai", out.stderr)
        self.assertIn("'US'", out.stderr)
        self.assertIn("UK", out.stderr)

    def test_a_tools_dpia_names_its_manifest_and_policy_and_a_forbidden_tool_gets_none(self):
        examples = os.path.join(os.path.dirname(__file__), "..", "..", "examples")
        manifest = os.path.join(examples, "tools", "acme-chest-dimse.yaml")
        example_policy = os.path.join(examples, "policy.yaml")
        conduit = Conduit(self.tmp, {
            "governance": {"policy": example_policy},
            "tools": [{"manifest": manifest}],
            "destinations": [{"name": "pacs", "ae_title": "PACS", "host": "127.0.0.1", "port": 4242}],
            "routes": [{"name": "chest-ct", "when": {"Modality": "CT", "BodyPartExamined": ["CHEST", "THORAX"]},
                        "tool": "acme-chest-ct", "results_to": ["pacs"]}],
        })
        out_file = os.path.join(self.tmp, "dpia.md")
        out = conduit.cli("dpia", manifest, "--organisation", "E2E Trust", "--out", out_file)
        self.assertIn("written to", out.stdout)
        with open(out_file) as f:
            dpia = f.read()
        with open(manifest, "rb") as f:
            manifest_hash = hashlib.sha256(f.read()).hexdigest()
        with open(example_policy, "rb") as f:
            policy_hash = hashlib.sha256(f.read()).hexdigest()
        self.assertIn(f"| Manifest SHA-256 | `{manifest_hash}` |", dpia)
        self.assertIn(f"| Policy SHA-256 | `{policy_hash}` |", dpia)
        self.assertIn("| Organisation | E2E Trust |", dpia)
        self.assertIn("Retain Patient Characteristics", dpia)
        self.assertIn("**To complete.**", dpia)
        self.assertIn("- route `chest-ct`: Modality matches `CT`; and BodyPartExamined matches `CHEST` or "
                      "`THORAX`; results to pacs (C-STORE to PACS at 127.0.0.1:4242)", dpia)

        # A registered tool's DPIA is the one of the manifest it was added with.
        conduit.cli("tool", "add", manifest)
        registered = conduit.cli("dpia", "--tool", "acme-chest-ct", "--organisation", "E2E Trust")

        def undated(text):
            return [line for line in text.splitlines() if not re.search(r"\d{4}-\d{2}-\d{2}", line)]
        self.assertEqual(undated(registered.stdout), undated(dpia))
        missing = conduit.cli("dpia", "--tool", "acme-chest-ct", "--version", "0.0.1", check=False)
        self.assertEqual(missing.returncode, 1, missing.stdout + missing.stderr)
        self.assertIn("no tool 'acme-chest-ct' version 0.0.1 in the registry", missing.stderr)

        # The test policy grants the Acme tool's category nothing: no DPIA, as no registration.
        policy, _ = self.policy_file()
        refusing = Conduit(self.dir("refusing"), {"governance": {"policy": policy}})
        out = refusing.cli("dpia", manifest, check=False)
        self.assertEqual(out.returncode, 2, out.stdout + out.stderr)
        self.assertIn("acme-chest-ct", out.stderr)
        self.assertEqual(out.stdout, "")

    def test_an_api_token_also_given_to_an_ai_vendor_is_refused_before_anything_runs(self):
        token = "e2e-api-token-" + "0" * 40
        api_tokens = os.path.join(self.tmp, "api.tokens")
        vendor_token = os.path.join(self.tmp, "vendor.token")
        for path in (api_tokens, vendor_token):
            with open(path, "w") as f:
                f.write(token + "\n")
            os.chmod(path, 0o600)
        conduit = Conduit(self.tmp, {
            "http": {"api_token_file": api_tokens},
            "tools": [{"name": "cloud-vendor", "kind": "dicomweb", "hosting_region": "UK",
                       "dicomweb": {"url": "http://127.0.0.1:9/dicom-web",
                                    "auth_token_file": vendor_token}}],
        })
        out = conduit.cli("config", "check", check=False)
        self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
        self.assertIn("tool 'cloud-vendor'", out.stderr)
        self.assertIn("also an API token", out.stderr)
        self.assertNotIn(token, out.stdout + out.stderr)
        served = run([CONDUIT, "serve", "--config", conduit.config_path], check=False, timeout=60)
        self.assertNotEqual(served.returncode, 0)
        self.assertIn("tool 'cloud-vendor'", served.stdout + served.stderr)
        self.assertNotIn(token, served.stdout + served.stderr)

        with open(vendor_token, "w") as f:
            f.write("e2e-vendor-token-" + "1" * 40 + "\n")
        out = conduit.cli("config", "check", check=False)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        # The check also says what the data directory's file system promises.
        self.assertRegex(out.stdout, rf"data_dir {re.escape(conduit.data_dir)}: \S+, "
                         rf"{expected_durability(self.tmp)}\n")


def http_bytes(url):
    import urllib.request
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read()


if __name__ == "__main__":
    unittest.main()
