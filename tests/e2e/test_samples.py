"""Every valid real-world sample file shipped by Debian's python3-pydicom is accepted by Conduit
and stored as received: the dataset bytes in Conduit's spool equal those DCMTK's storescp stores
in bit-preserving mode from the same sender."""

import glob
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import E2ETest, Conduit, free_port, run, wait_until, ENV  # noqa: E402

SAMPLES = "/usr/lib/python3/dist-packages/pydicom/data/test_files"


def dataset_bytes(path):
    """The bytes after the Part 10 preamble and file meta group."""
    with open(path, "rb") as f:
        data = f.read()
    if data[128:132] != b"DICM":
        return data
    pos = 132
    while pos + 8 <= len(data) and data[pos:pos + 2] == b"\x02\x00":
        vr = data[pos + 4:pos + 6]
        if vr in (b"OB", b"OW", b"OF", b"SQ", b"UT", b"UN"):
            length = int.from_bytes(data[pos + 8:pos + 12], "little")
            pos += 12 + length
        else:
            length = int.from_bytes(data[pos + 6:pos + 8], "little")
            pos += 8 + length
    return data[pos:]


# storescu's option that proposes a transfer syntax first, so that the file travels as it is.
PROPOSE = {
    "1.2.840.10008.1.2": "-xi", "1.2.840.10008.1.2.1": "-xe", "1.2.840.10008.1.2.2": "-xb",
    "1.2.840.10008.1.2.1.99": "-xd", "1.2.840.10008.1.2.4.50": "-xy", "1.2.840.10008.1.2.4.51": "-xx",
    "1.2.840.10008.1.2.4.57": "-xs", "1.2.840.10008.1.2.4.70": "-xs", "1.2.840.10008.1.2.4.80": "-xt",
    "1.2.840.10008.1.2.4.81": "-xu", "1.2.840.10008.1.2.4.90": "-xv", "1.2.840.10008.1.2.4.91": "-xw",
    "1.2.840.10008.1.2.5": "-xr",
}


def propose_option(path):
    import pydicom
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        return [PROPOSE[str(ds.file_meta.TransferSyntaxUID)]]
    except Exception:
        return []


def sop_uid(path):
    import pydicom
    return str(pydicom.dcmread(path, stop_before_pixels=True, force=True).SOPInstanceUID)


class SampleFilesTest(E2ETest):
    def test_every_valid_pydicom_sample_is_accepted_and_stored_as_received(self):
        samples = sorted(glob.glob(os.path.join(SAMPLES, "*.dcm")))
        if not samples:
            self.skipTest("python3-pydicom's sample files are not installed")
        reference_dir = self.dir("storescp")
        port = free_port()
        storescp = subprocess.Popen(["storescp", "--bit-preserving", "-od", reference_dir, "-aet", "REFERENCE",
                                     "+uf", "+xa", str(port)], env=ENV, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        try:
            wait_until("storescp", lambda: run(["echoscu", "127.0.0.1", str(port)], check=False).returncode == 0)
            conduit = self.started(Conduit(self.tmp, {"routes": [], "tools": []}))
            valid, compared = [], 0
            for path in samples:
                # "Valid" means DCMTK can read and send it to a plain storescp.
                before = set(os.listdir(reference_dir))
                options = ["-R"] + propose_option(path)
                sent = run(["storescu"] + options + ["-aec", "REFERENCE", "-nh", "127.0.0.1", str(port), path],
                           check=False)
                after = set(os.listdir(reference_dir)) - before
                if sent.returncode != 0 or len(after) != 1:
                    continue
                valid.append(os.path.basename(path))
                to_conduit = run(["storescu"] + options + ["-aec", "CONDUIT", "-nh", "127.0.0.1",
                                  str(conduit.dicom_port), path], check=False)
                self.assertEqual(to_conduit.returncode, 0, f"{path}: {to_conduit.stdout}{to_conduit.stderr}")
                self.assertNotIn("Status: ", to_conduit.stderr.replace("Status: Success", ""),
                                 f"{path} refused: {to_conduit.stderr}")
                reference = os.path.join(reference_dir, after.pop())
                stored = glob.glob(os.path.join(conduit.data_dir, "spool", "instances", "**", "*"),
                                   recursive=True)
                uid = sop_uid(reference)
                matches = [p for p in stored if os.path.isfile(p) and sop_uid(p) == uid]
                self.assertEqual(len(matches), 1, f"{path}: stored copies {len(matches)}")
                self.assertEqual(dataset_bytes(matches[0]), dataset_bytes(reference),
                                 f"{path}: dataset bytes differ from storescp's bit-preserving copy")
                compared += 1
            self.assertGreaterEqual(len(valid), 40, f"only {len(valid)} samples were valid: {valid}")
            self.assertEqual(compared, len(valid))
            print(f"{compared} valid sample files stored byte-exact")
        finally:
            storescp.terminate()
            storescp.wait(timeout=10)


if __name__ == "__main__":
    unittest.main(verbosity=2)
