"""End-to-end tests of `conduit deid` against the de-identification contract (PS3.15 Annex E as
Conduit applies it), checked independently with pydicom and dicom3tools' dciodvfy:

1. every row of Table E.1-1 under the Basic Profile and each of its 10 options;
2. a torture corpus with unique PHI planted wherever identifiers hide: none may survive;
3. python3-pydicom's valid sample files all de-identify (or are refused for a stated reason);
4. the report, exit statuses, the output tree, and `conduit keygen`."""

import glob
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest
import warnings

sys.path.insert(0, os.path.dirname(__file__))
from harness import CONDUIT, ENV, E2ETest  # noqa: E402
import deid_corpus as corpus  # noqa: E402

import pydicom  # noqa: E402

# pydicom warns about odd values in its own sample files; they are not what is tested.
warnings.filterwarnings("ignore", category=UserWarning, module=r"pydicom\.")

SAMPLES = "/usr/lib/python3/dist-packages/pydicom/data/test_files"
TIMEOUT = 120
RISKY_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.7", "1.2.840.10008.5.1.4.1.1.7.1", "1.2.840.10008.5.1.4.1.1.7.2",
    "1.2.840.10008.5.1.4.1.1.7.3", "1.2.840.10008.5.1.4.1.1.7.4",  # secondary capture
    "1.2.840.10008.5.1.4.1.1.6.1", "1.2.840.10008.5.1.4.1.1.6.2", "1.2.840.10008.5.1.4.1.1.3.1",  # US
    "1.2.840.10008.5.1.4.1.1.104.1", "1.2.840.10008.5.1.4.1.1.104.2", "1.2.840.10008.5.1.4.1.1.104.3",
    "1.2.840.10008.5.1.4.1.1.104.4", "1.2.840.10008.5.1.4.1.1.104.5",  # encapsulated documents
}


def conduit(*args, timeout=TIMEOUT):
    if not os.path.exists(CONDUIT):
        raise AssertionError(f"{CONDUIT} is not built (set CONDUIT_BUILD_DIR)")
    return subprocess.run([CONDUIT] + [str(a) for a in args], env=ENV, capture_output=True, text=True,
                          timeout=timeout)


def write_key(path, data=None):
    data = os.urandom(32) if data is None else data
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)
    return data


def deid(in_dir, out_dir, key, policy=None, report=None, extra=()):
    """Runs `conduit deid`; returns (completed process, report dict or None)."""
    args = ["deid", "--key-file", key, "--in", in_dir, "--out", out_dir]
    if policy:
        args += ["--policy", policy]
    if report:
        args += ["--report", report]
    proc = conduit(*(args + list(extra)))
    data = None
    if report and os.path.exists(report):
        with open(report) as f:
            data = json.load(f)
    return proc, data


def describe(proc):
    return f"exit {proc.returncode}\nstdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[-2000:]}"


def dciodvfy_errors(path, scratch):
    """dciodvfy's Error lines for a file, with values masked (a deflated file is inflated by
    DCMTK's dcmconv first, as dciodvfy cannot read it)."""
    target = path
    ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    if str(ds.file_meta.TransferSyntaxUID) == corpus.DEFLATED:
        target = os.path.join(scratch, "inflated.dcm")
        subprocess.run(["dcmconv", "+te", path, target], check=True, timeout=TIMEOUT, capture_output=True)
    proc = subprocess.run(["dciodvfy", target], capture_output=True, text=True, timeout=TIMEOUT)
    lines = set()
    for line in (proc.stdout + proc.stderr).splitlines():
        if "Error" not in line:
            continue
        line = re.sub(r"= <[^>]*>", "= <*>", line)
        line = re.sub(r"VL is 0x[0-9a-f]+ should be 0x[0-9a-f]+", "VL is * should be *", line)
        line = re.sub(r"Length invalid for this VR = \d+", "Length invalid for this VR = *", line)
        lines.add(line.strip())
    return lines


# ---------------------------------------------------------------- the generators on their own

class CorpusTest(unittest.TestCase):
    """The committed table and the generated inputs are what the other tests assume."""

    def test_committed_profile_rows_are_up_to_date(self):
        if not os.path.isdir(corpus.STANDARD_DIR):
            self.skipTest(f"{corpus.STANDARD_DIR} is not present (fresh clone)")
        with open(corpus.PROFILE_ROWS) as f:
            committed = json.load(f)
        self.assertEqual(committed, corpus.build_profile_rows(),
                         "tests/e2e/data/profile_rows.json is stale: regenerate it with "
                         "/usr/bin/python3 -c 'import deid_corpus; deid_corpus.write_profile_rows()' in tests/e2e")

    def test_profile_rows_cover_the_table(self):
        rows = corpus.load_profile_rows()
        self.assertEqual(len(rows), 621)
        kinds = {}
        for r in rows:
            kinds.setdefault(corpus.row_kind(r), []).append(r["tag"])
        self.assertEqual(sorted(kinds["command"]), ["(0000,1000)", "(0000,1001)"])
        self.assertEqual(sorted(kinds["masked"]), ["(50XX,XXXX)", "(60XX,3000)", "(60XX,4000)"])
        self.assertEqual(len(kinds["private"]), 1)
        for r in rows:
            if corpus.row_kind(r) in ("plain", "meta"):
                self.assertTrue(r["vr"], r)

    def test_conformance_instances_read_back(self):
        rows = corpus.load_profile_rows()
        with tempfile.TemporaryDirectory() as tmp:
            files = corpus.conformance_instances(rows, tmp, "A")
            placed = set()
            for path, markers in files:
                ds = pydicom.dcmread(path)
                for elem in ds.iterall():
                    _ = elem.value
                for tag in markers:
                    self.assertIn(int(tag[1:5] + tag[6:10], 16), ds)
                placed |= set(markers)
            plain = {r["tag"] for r in rows if corpus.row_kind(r) == "plain"}
            self.assertEqual(placed | corpus.BASE_ROWS & plain, plain)

    def test_torture_corpus_reads_back_plants_its_phi_and_is_valid(self):
        with tempfile.TemporaryDirectory() as tmp:
            planted, files = corpus.torture_corpus(os.path.join(tmp, "in"))
            found = set()
            for rel in files:
                path = os.path.join(tmp, "in", rel)
                ds = pydicom.dcmread(path)
                for elem in ds.iterall():
                    _ = elem.value
                found |= set(corpus.find_needles(path, planted.needles()))
                errors = dciodvfy_errors(path, tmp)
                allowed = {e for e in errors if "not a recognized standard attribute" in e}
                self.assertEqual(errors - allowed, set(), f"{rel} is meant to be valid")
            self.assertGreater(len(found), 400)


# ---------------------------------------------------------------- 1. Table E.1-1 conformance

CONFIGS = [("basic", ())] + [(name, (name,)) for _, name, _ in corpus.OPTIONS]


class ProfileConformanceTest(unittest.TestCase):
    """For the Basic Profile and each option: four CT instances carry every row of Table E.1-1
    with a recognisable original; the output must hold exactly what the contract says."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="conduit-e2e-deid-")
        cls.rows = corpus.load_profile_rows()
        cls.key = os.path.join(cls.tmp, "key")
        write_key(cls.key)
        cls.runs = {}
        for n, (label, options) in enumerate(CONFIGS):
            letter = chr(ord("A") + n)
            root = os.path.join(cls.tmp, label)
            files = corpus.conformance_instances(cls.rows, os.path.join(root, "in"), letter)
            policy = os.path.join(root, "policy.yaml")
            with open(policy, "w") as f:
                f.write(corpus.policy_yaml(f"e2e {label}", options, safe_private=True))
            report = os.path.join(root, "report.json")
            proc, data = deid(os.path.join(root, "in"), os.path.join(root, "out"), cls.key, policy, report)
            with open(policy, "rb") as f:
                policy_hash = hashlib.sha256(f.read()).hexdigest()
            cls.runs[label] = dict(root=root, files=files, proc=proc, report=data, options=options,
                                   policy_name=f"e2e {label}", policy_hash=policy_hash)

    @classmethod
    def tearDownClass(cls):
        if os.environ.get("KEEP_E2E_TMP"):
            print("kept", cls.tmp)
        else:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def check_config(self, label):
        run = self.runs[label]
        proc, options = run["proc"], run["options"]
        self.assertEqual(proc.returncode, 0, describe(proc))
        ctx = corpus.Context()
        problems = []
        sop_out = {}
        for path, placed in run["files"]:
            name = os.path.basename(path)
            out_path = os.path.join(run["root"], "out", name)
            if not os.path.exists(out_path):
                problems.append(f"{name}: no output")
                continue
            ds_in = pydicom.dcmread(path)
            ds_out = pydicom.dcmread(out_path)
            sop_out[str(ds_in.SOPInstanceUID)] = str(ds_out.SOPInstanceUID)
            for row in self.rows:
                kind = corpus.row_kind(row)
                if kind != "plain" or (row["tag"] not in placed and row["tag"] not in corpus.BASE_ROWS):
                    continue
                tag = corpus.tag_int(row)
                code = corpus.expected_code(row, options)
                try:
                    found = corpus.check_element(row, code, ds_in[tag], ds_out, ctx, options)
                except Exception as e:  # a value the checker cannot even read is a failure too
                    found = [f"unreadable output: {e!r}"]
                for p in found:
                    problems.append(f"{name} {row['tag']} {row['name'][:40]!r} [{row['vr']}] "
                                    f"basic={row['basic']} want={code}: {p}")
            # (0002,0003): the only meta row.
            meta_uid = str(ds_out.file_meta.MediaStorageSOPInstanceUID)
            if "retain_uids" in options:
                if meta_uid != str(ds_in.file_meta.MediaStorageSOPInstanceUID):
                    problems.append(f"{name} (0002,0003) should be kept under retain_uids, is {meta_uid}")
            elif not corpus.is_new_uid(meta_uid, str(ds_in.SOPInstanceUID)):
                problems.append(f"{name} (0002,0003) should be a new 2.25 UID, is {meta_uid}")
            if str(ds_out.file_meta.TransferSyntaxUID) != str(ds_in.file_meta.TransferSyntaxUID):
                problems.append(f"{name}: transfer syntax changed")
            if ds_out.get("PixelData") != ds_in.PixelData:
                problems.append(f"{name}: pixel data changed")
            if 0x00280301 in ds_out and str(ds_out[0x00280301].value) != "NO":
                problems.append(f"{name}: Burned In Annotation {ds_out[0x00280301].value!r}")
            problems += [f"{name}: {p}" for p in corpus.check_added_attributes(
                ds_out, options, run["policy_name"], run["policy_hash"])]
            if name == "batch0.dcm":
                problems += [f"{name}: {p}" for p in
                             corpus.check_graphics_private_unknown(ds_in, ds_out, options)]
        # References: a Referenced SOP Instance UID in an item names the next instance; its new
        # value must be that instance's new SOP Instance UID.
        if "retain_uids" not in options:
            for original, new in ctx.uid_map.items():
                if original in sop_out and sop_out[original] != new:
                    problems.append(f"reference to {original} became {new}, the instance became {sop_out[original]}")
        problems += [f"UID replaced inconsistently: {c}" for c in ctx.uid_conflicts]
        if len(ctx.date_shifts) > 1:
            problems.append(f"dates of one patient shifted by different amounts: {sorted(ctx.date_shifts)}")
        if "retain_long_modified_dates" in options and not ctx.date_shifts:
            problems.append("no date was shifted under retain_long_modified_dates")
        report = run["report"] or {}
        if report.get("files", {}).get("deidentified") != len(run["files"]):
            problems.append(f"report files: {report.get('files')}")
        if problems:
            self.fail(f"{label}: {len(problems)} problem(s):\n" + "\n".join(problems[:150]) +
                      ("\n..." if len(problems) > 150 else ""))

    def test_command_rows_are_not_in_files(self):
        self.skipTest("rows (0000,1000) and (0000,1001) are DIMSE command attributes: a file's dataset "
                      "cannot hold group 0000")

    def test_pseudonyms_are_consistent_across_runs(self):
        """The same key and original give the same UID, Patient ID, Patient's Name and Accession
        Number in every run and file."""
        seen = {"StudyInstanceUID": {}, "PatientID": {}, "PatientName": {}, "AccessionNumber": {}}
        outputs = 0
        for label, run in self.runs.items():
            for path, _ in run["files"]:
                out = os.path.join(run["root"], "out", os.path.basename(path))
                if not os.path.exists(out):
                    continue
                outputs += 1
                ds = pydicom.dcmread(out, stop_before_pixels=True)
                for kw, values in seen.items():
                    if kw == "StudyInstanceUID" and "retain_uids" in run["options"]:
                        continue
                    values.setdefault(str(ds.get(kw, "")), []).append(f"{label}/{os.path.basename(out)}")
        self.assertGreater(outputs, 0)
        for kw, values in seen.items():
            self.assertEqual(len(values), 1, f"{kw} became several: {values}")
        self.assertTrue(corpus.is_new_uid(next(iter(seen["StudyInstanceUID"])), corpus.SHARED_STUDY_UID))
        pid = next(iter(seen["PatientID"]))
        self.assertRegex(pid, r"^P[0-9A-Z]{15,16}$")
        self.assertEqual(next(iter(seen["PatientName"])), "PSEUDO^" + pid)
        self.assertRegex(next(iter(seen["AccessionNumber"])), r"^A[0-9A-Z]{15,16}$")


def _make_config_test(label):
    def test(self):
        self.check_config(label)
    test.__name__ = f"test_rows_under_{label}"
    test.__doc__ = f"Every row of Table E.1-1 under {label}."
    return test


for _label, _ in CONFIGS:
    setattr(ProfileConformanceTest, f"test_rows_under_{_label}", _make_config_test(_label))


# ---------------------------------------------------------------- 2. torture corpus

class TortureCorpusTest(E2ETest):
    def test_no_planted_phi_survives_and_no_new_dciodvfy_errors(self):
        in_dir, out_dir = self.dir("in"), os.path.join(self.tmp, "out")
        planted, files = corpus.torture_corpus(in_dir)
        key = os.path.join(self.tmp, "key")
        write_key(key)
        report_path = os.path.join(self.tmp, "report.json")
        proc, report = deid(in_dir, out_dir, key, report=report_path)
        self.assertEqual(proc.returncode, 0, describe(proc))
        needles = set()
        for rel in files:
            needles |= set(corpus.find_needles(os.path.join(in_dir, rel), planted.needles()))
        problems = []
        for rel in files:
            src, out = os.path.join(in_dir, rel), os.path.join(out_dir, rel)
            if not os.path.exists(out):
                problems.append(f"{rel}: no output")
                continue
            for where, raw in corpus.find_needles(out, sorted(needles)):
                problems.append(f"{rel}: planted PHI survives: {where} ({raw!r})")
            ds_in = pydicom.dcmread(src)
            try:
                ds_out = pydicom.dcmread(out)
                for elem in ds_out.iterall():
                    _ = elem.value
            except Exception as e:
                problems.append(f"{rel}: output unreadable by pydicom: {e!r}")
                continue
            if str(ds_out.file_meta.TransferSyntaxUID) != str(ds_in.file_meta.TransferSyntaxUID):
                problems.append(f"{rel}: transfer syntax {ds_in.file_meta.TransferSyntaxUID} -> "
                                f"{ds_out.file_meta.TransferSyntaxUID}")
            if ds_out.get("SpecificCharacterSet") != ds_in.get("SpecificCharacterSet"):
                problems.append(f"{rel}: Specific Character Set {ds_in.get('SpecificCharacterSet')!r} -> "
                                f"{ds_out.get('SpecificCharacterSet')!r}")
            if "PixelData" in ds_in and ds_out.get("PixelData") != ds_in.PixelData:
                problems.append(f"{rel}: pixel data changed")
            new_errors = dciodvfy_errors(out, self.tmp) - dciodvfy_errors(src, self.tmp)
            for e in sorted(new_errors):
                problems.append(f"{rel}: new dciodvfy error: {e}")
        self.assertGreater(len(needles), 400)
        print(f"torture corpus: {len(files)} files, {len(needles)} planted PHI patterns searched")
        if problems:
            self.fail(f"{len(problems)} problem(s):\n" + "\n".join(problems))


# ---------------------------------------------------------------- 3. pydicom's sample files

def valid_samples():
    """Samples both DCMTK (dcmdump) and pydicom read without complaint, with a transfer syntax,
    SOP Class and SOP Instance UID (what a sender could send)."""
    out = []
    for path in sorted(glob.glob(os.path.join(SAMPLES, "*.dcm"))):
        dump = subprocess.run(["dcmdump", "-q", path], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              timeout=TIMEOUT)
        if dump.returncode != 0 or dump.stderr.strip():
            continue
        try:
            ds = pydicom.dcmread(path)
            for elem in ds.iterall():
                _ = elem.value
            identified = ds.file_meta.TransferSyntaxUID and ds.SOPClassUID and ds.SOPInstanceUID
        except Exception:
            continue
        if identified:
            out.append(path)
    return out


def risky(ds):
    return (str(ds.get("BurnedInAnnotation", "")).upper() == "YES" or str(ds.get("Modality", "")) in ("US", "DOC")
            or str(ds.get("SOPClassUID", "")) in RISKY_SOP_CLASSES)


class SampleFilesTest(E2ETest):
    def test_valid_pydicom_samples_deidentify_or_are_refused_with_a_reason(self):
        samples = valid_samples()
        if not samples:
            self.skipTest("python3-pydicom's sample files are not installed")
        in_dir, out_dir = self.dir("in"), os.path.join(self.tmp, "out")
        for path in samples:
            shutil.copy(path, in_dir)
        key = os.path.join(self.tmp, "key")
        write_key(key)
        report_path = os.path.join(self.tmp, "report.json")
        proc, report = deid(in_dir, out_dir, key, report=report_path)
        self.assertIn(proc.returncode, (0, 1), describe(proc))
        self.assertIsNotNone(report, describe(proc))
        refused = {r["file"]: r["reason"] for r in report.get("refused", [])}
        failed = {r["file"]: r["error"] for r in report.get("failed", [])}
        problems, deidentified = [], 0
        for path in samples:
            name = os.path.basename(path)
            ds_in = pydicom.dcmread(path)
            out = os.path.join(out_dir, name)
            if name in failed:
                problems.append(f"{name}: failed: {failed[name]}")
            elif name in refused:
                if not refused[name].strip():
                    problems.append(f"{name}: refused without a reason")
                if not risky(ds_in):
                    problems.append(f"{name}: refused ({refused[name]}) but is not a burned-in/risky kind")
                if os.path.exists(out):
                    problems.append(f"{name}: refused but written")
            elif not os.path.exists(out):
                problems.append(f"{name}: neither written nor reported")
            else:
                deidentified += 1
                if risky(ds_in):
                    problems.append(f"{name}: a burned-in/risky kind was not refused by the built-in policy")
                try:
                    ds_out = pydicom.dcmread(out)
                    for elem in ds_out.iterall():
                        _ = elem.value
                except Exception as e:
                    problems.append(f"{name}: output unreadable by pydicom: {e!r}")
                    continue
                if str(ds_out.file_meta.TransferSyntaxUID) != str(ds_in.file_meta.TransferSyntaxUID):
                    problems.append(f"{name}: transfer syntax changed")
                for kw in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"):
                    if kw in ds_in and ds_out.get(kw) != ds_in.get(kw):
                        problems.append(f"{name}: {kw} bytes changed")
                if str(ds_out.get("PatientIdentityRemoved", "")) != "YES":
                    problems.append(f"{name}: Patient Identity Removed is not YES")
        self.assertEqual(report["files"]["processed"], len(samples), report["files"])
        self.assertEqual(proc.returncode, 1 if refused or failed else 0, describe(proc))
        print(f"{len(samples)} valid samples: {deidentified} de-identified, {len(refused)} refused "
              f"({', '.join(sorted(refused))})")

        # A policy that allows every kind: then every valid sample de-identifies and reads back.
        policy = os.path.join(self.tmp, "allow-all.yaml")
        with open(policy, "w") as f:
            f.write('policy: {name: "e2e allow all", version: "1"}\n'
                    "burned_in_text:\n  refuse_burned_in_annotation: false\n"
                    "  allow: [ultrasound, secondary_capture, scanned_documents]\n")
        all_out = os.path.join(self.tmp, "out-all")
        proc, report = deid(in_dir, all_out, key, policy=policy,
                            report=os.path.join(self.tmp, "report-all.json"))
        self.assertEqual(proc.returncode, 0, describe(proc))
        self.assertEqual(report["files"]["deidentified"], len(samples), report["files"])
        for path in samples:
            name = os.path.basename(path)
            try:
                ds_out = pydicom.dcmread(os.path.join(all_out, name))
                for elem in ds_out.iterall():
                    _ = elem.value
            except Exception as e:
                problems.append(f"{name}: output (allow-all policy) unreadable by pydicom: {e!r}")
        if problems:
            self.fail(f"{len(problems)} problem(s):\n" + "\n".join(problems))


# ---------------------------------------------------------------- 4. report, exit status, keygen

def ct(path, sop_uid, **attrs):
    ds = corpus.image_base(sop_uid)
    for k, v in attrs.items():
        setattr(ds, k, v)
    corpus.save(ds, path)


class CommandTest(E2ETest):
    def setUp(self):
        super().setUp()
        self.key = os.path.join(self.tmp, "key")
        self.key_bytes = write_key(self.key)

    def test_report_refusal_failure_and_mirrored_tree(self):
        in_dir, out_dir = self.dir("in"), os.path.join(self.tmp, "out")
        ct(os.path.join(in_dir, "a", "b", "one.dcm"), "1.2.826.0.1.3680043.10.1087.5.1")
        ct(os.path.join(in_dir, "a", "two.dcm"), "1.2.826.0.1.3680043.10.1087.5.2")
        ct(os.path.join(in_dir, "burned.dcm"), "1.2.826.0.1.3680043.10.1087.5.3", BurnedInAnnotation="YES")
        with open(os.path.join(in_dir, "a", "notes.txt"), "w") as f:
            f.write("not DICOM\n")
        policy = os.path.join(self.tmp, "policy.yaml")
        with open(policy, "w") as f:
            f.write(corpus.policy_yaml("e2e report", ["retain_uids"]))
        with open(policy, "rb") as f:
            policy_hash = hashlib.sha256(f.read()).hexdigest()
        report_path = os.path.join(self.tmp, "report.json")
        proc, report = deid(in_dir, out_dir, self.key, policy, report_path)
        self.assertEqual(proc.returncode, 1, describe(proc))
        self.assertIsNotNone(report, describe(proc))
        for key in ("policy", "key_id", "files", "refused", "failed", "actions", "bytes_in", "bytes_out",
                    "seconds"):
            self.assertIn(key, report)
        self.assertIn("e2e report", report["policy"]["name"])
        self.assertEqual(report["policy"]["hash"], policy_hash)
        self.assertEqual(report["key_id"], hashlib.sha256(self.key_bytes).hexdigest()[:16])
        self.assertEqual(report["files"], {"processed": 4, "deidentified": 2, "refused": 1, "failed": 1})
        self.assertEqual([r["file"] for r in report["refused"]], ["burned.dcm"])
        self.assertTrue(report["refused"][0]["reason"].strip())
        self.assertEqual([r["file"] for r in report["failed"]], [os.path.join("a", "notes.txt")])
        self.assertTrue(report["failed"][0]["error"].strip())
        self.assertTrue(report["actions"])
        allowed = {"K", "X", "Z", "D", "C", "U", "pseudonymised", "private_removed", "private_kept",
                   "unknown_removed", "pixel_regions_blanked"}
        self.assertLessEqual(set(report["actions"]), allowed)
        self.assertTrue(all(isinstance(v, int) and v >= 0 for v in report["actions"].values()))
        self.assertGreater(report["bytes_in"], 0)
        self.assertGreater(report["bytes_out"], 0)
        self.assertIsInstance(report["seconds"], (int, float))
        written = sorted(os.path.relpath(os.path.join(d, f), out_dir)
                         for d, _, fs in os.walk(out_dir) for f in fs)
        self.assertEqual(written, [os.path.join("a", "b", "one.dcm"), os.path.join("a", "two.dcm")])
        ds = pydicom.dcmread(os.path.join(out_dir, "a", "b", "one.dcm"))
        self.assertEqual(str(ds.SOPInstanceUID), "1.2.826.0.1.3680043.10.1087.5.1")  # retain_uids
        method = str(ds.DeidentificationMethod)
        self.assertIn("e2e report", method)
        self.assertIn(policy_hash[:16], method)
        # The report names neither the patient nor any original identifier.
        with open(report_path) as f:
            text = f.read()
        for secret in (corpus.Patient.family, corpus.Patient.patient_id, corpus.Patient.accession):
            self.assertNotIn(secret, text)

    def test_everything_deidentified_exits_zero_with_the_built_in_policy(self):
        in_dir, out_dir = self.dir("in"), os.path.join(self.tmp, "out")
        for k in range(3):
            ct(os.path.join(in_dir, f"{k}.dcm"), f"1.2.826.0.1.3680043.10.1087.6.{k}")
        report_path = os.path.join(self.tmp, "report.json")
        proc, report = deid(in_dir, out_dir, self.key, report=report_path)
        self.assertEqual(proc.returncode, 0, describe(proc))
        self.assertEqual(report["files"], {"processed": 3, "deidentified": 3, "refused": 0, "failed": 0})
        self.assertEqual(report["refused"], [])
        self.assertEqual(report["failed"], [])
        self.assertTrue(report["policy"]["name"])
        self.assertEqual(sorted(os.listdir(out_dir)), ["0.dcm", "1.dcm", "2.dcm"])

    def test_bad_policy_exits_2_and_writes_nothing(self):
        in_dir = self.dir("in")
        ct(os.path.join(in_dir, "one.dcm"), "1.2.826.0.1.3680043.10.1087.7.1")
        cases = {
            "unknown option": corpus.policy_yaml("e2e bad", ["retain_everything"]),
            "unknown key": corpus.policy_yaml("e2e bad") + "surprise: true\n",
            "not YAML": "policy: {name: [unclosed\n",
            "no policy section": "deidentification: {options: [retain_uids]}\n",
            "both date options": corpus.policy_yaml("e2e bad", ["retain_long_full_dates",
                                                                 "retain_long_modified_dates"]),
        }
        for what, text in cases.items():
            with self.subTest(what):
                policy = os.path.join(self.tmp, "bad.yaml")
                with open(policy, "w") as f:
                    f.write(text)
                out_dir = os.path.join(self.tmp, "out-" + what.replace(" ", "-"))
                proc, _ = deid(in_dir, out_dir, self.key, policy, os.path.join(self.tmp, "r.json"))
                self.assertEqual(proc.returncode, 2, describe(proc))
                self.assertTrue(proc.stderr.strip() or proc.stdout.strip(), "no message")
                written = [f for _, _, fs in os.walk(out_dir) for f in fs] if os.path.isdir(out_dir) else []
                self.assertEqual(written, [])

    def test_bad_key_or_usage_exits_2(self):
        in_dir = self.dir("in")
        ct(os.path.join(in_dir, "one.dcm"), "1.2.826.0.1.3680043.10.1087.8.1")
        short = os.path.join(self.tmp, "short.key")
        write_key(short, os.urandom(16))
        for what, args in {
            "short key": ["deid", "--key-file", short, "--in", in_dir, "--out", os.path.join(self.tmp, "o1")],
            "missing key": ["deid", "--key-file", os.path.join(self.tmp, "nokey"), "--in", in_dir,
                            "--out", os.path.join(self.tmp, "o2")],
            "no --in": ["deid", "--key-file", self.key, "--out", os.path.join(self.tmp, "o3")],
            "missing policy file": ["deid", "--key-file", self.key, "--in", in_dir, "--out",
                                    os.path.join(self.tmp, "o4"), "--policy", os.path.join(self.tmp, "none.yaml")],
        }.items():
            with self.subTest(what):
                proc = conduit(*args)
                self.assertEqual(proc.returncode, 2, describe(proc))
                out = args[args.index("--out") + 1]
                written = [f for _, _, fs in os.walk(out) for f in fs] if os.path.isdir(out) else []
                self.assertEqual(written, [])
                if what == "short key":
                    self.assertNotIn(self.key_bytes.hex(), proc.stderr)

    def test_risky_kinds_refused_unless_allowed_or_cleaned(self):
        """Burned In Annotation YES is blanked by a matching cleaning rule (RLE decoded, written
        Explicit VR Little Endian); ultrasound goes only when the policy allows it."""
        in_dir = self.dir("in")
        native = corpus.image_base("1.2.826.0.1.3680043.10.1087.10.1")
        native.BurnedInAnnotation = "YES"
        native.ManufacturerModelName = "SCANNER 9"
        corpus.save(native, os.path.join(in_dir, "burned_native.dcm"))
        rle = corpus.image_base("1.2.826.0.1.3680043.10.1087.10.2")
        rle.BurnedInAnnotation = "YES"
        rle.ManufacturerModelName = "SCANNER 9"
        rle.compress(pydicom.uid.RLELossless)
        rle.is_little_endian, rle.is_implicit_VR = True, False
        rle.save_as(os.path.join(in_dir, "burned_rle.dcm"), write_like_original=False)
        us = corpus.image_base("1.2.826.0.1.3680043.10.1087.10.3", sop_class="1.2.840.10008.5.1.4.1.1.6.1",
                               modality="US")
        corpus.save(us, os.path.join(in_dir, "us.dcm"))

        proc, report = deid(in_dir, os.path.join(self.tmp, "out-default"), self.key,
                            report=os.path.join(self.tmp, "r0.json"))
        self.assertEqual(proc.returncode, 1, describe(proc))
        self.assertEqual(sorted(r["file"] for r in report["refused"]),
                         ["burned_native.dcm", "burned_rle.dcm", "us.dcm"])
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "out-default", "us.dcm")))

        policy = os.path.join(self.tmp, "policy.yaml")
        with open(policy, "w") as f:
            f.write(corpus.policy_yaml("e2e pixels", [], extra=(
                "burned_in_text:\n"
                "  allow: [ultrasound]\n"
                "  clean_regions:\n"
                "    - {modality: \"c?\", manufacturer: \"acme\", model: \"SCANNER*\", regions: [[0, 0, 2, 1]]}\n")))
        out_dir = os.path.join(self.tmp, "out")
        proc, report = deid(in_dir, out_dir, self.key, policy, os.path.join(self.tmp, "r1.json"))
        self.assertEqual(proc.returncode, 0, describe(proc))
        self.assertEqual(report["files"]["deidentified"], 3, report)
        self.assertGreaterEqual(report["actions"].get("pixel_regions_blanked", 0), 2, report["actions"])
        original = corpus.image_base("1.2.3").pixel_array
        expected = original.copy()
        expected[0, 0:2] = 0
        for name, ts in (("burned_native.dcm", pydicom.uid.ExplicitVRLittleEndian),
                         ("burned_rle.dcm", pydicom.uid.ExplicitVRLittleEndian)):
            with self.subTest(name):
                ds = pydicom.dcmread(os.path.join(out_dir, name))
                self.assertEqual(str(ds.file_meta.TransferSyntaxUID), ts)
                self.assertEqual(str(ds.BurnedInAnnotation), "NO")
                self.assertEqual(ds.pixel_array.tolist(), expected.tolist())
                codes = [str(i.CodeValue) for i in ds.DeidentificationMethodCodeSequence]
                self.assertEqual(codes, [corpus.BASIC_CODE, "113101"])
        us_out = pydicom.dcmread(os.path.join(out_dir, "us.dcm"))
        self.assertEqual(us_out.PixelData, us.PixelData)

    def test_keygen_makes_a_private_32_byte_key_and_never_overwrites(self):
        path = os.path.join(self.tmp, "new.key")
        proc = conduit("keygen", path)
        self.assertEqual(proc.returncode, 0, describe(proc))
        st = os.stat(path)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        self.assertEqual(st.st_size, 32)
        with open(path, "rb") as f:
            first = f.read()
        again = conduit("keygen", path)
        self.assertNotEqual(again.returncode, 0, describe(again))
        with open(path, "rb") as f:
            self.assertEqual(f.read(), first)
        other = os.path.join(self.tmp, "other.key")
        self.assertEqual(conduit("keygen", other).returncode, 0)
        with open(other, "rb") as f:
            self.assertNotEqual(f.read(), first)
        # The new key works.
        in_dir = self.dir("in")
        ct(os.path.join(in_dir, "one.dcm"), "1.2.826.0.1.3680043.10.1087.9.1")
        proc, _ = deid(in_dir, os.path.join(self.tmp, "out"), path)
        self.assertEqual(proc.returncode, 0, describe(proc))


if __name__ == "__main__":
    unittest.main(verbosity=2)
