#!/usr/bin/python3
"""A pydicom de-identifier doing the work `conduit deid` does with the built-in policy (PS3.15
Basic Application Level Confidentiality Profile, no options), as the peer a research team
would write: the bench's reference for "the same job in Python".

Per file: read it whole (pydicom.dcmread), walk every element at every depth, apply the basic
action of Table E.1-1 (rows from tests/e2e/data/profile_rows.json; composite codes resolved
X/Z->Z, X/D->D, Z/D->D, X/Z/D->D, X/Z/U*->U), remove private attributes, group lengths and
even-group attributes unknown to the dictionary, drop the whole overlay group 60xx when its
overlay data is removed, replace every UID of a U row by a 2.25 UID derived from
HMAC-SHA256(key, "uid\\0" + original), pseudonymise Patient ID, Patient's Name and Accession
Number with the same keyed HMAC, add Patient Identity Removed, De-identification Method (+ Code
Sequence) and Longitudinal Temporal Information Modified, set the file meta's Media Storage SOP
Instance UID, and write the output (same transfer syntax, via a .part file and a rename). No
fsync, like `conduit deid`. Files are shared over --jobs processes (multiprocessing).

Needs Debian's pydicom (/usr/bin/python3). Usage:
  /usr/bin/python3 bench/pydicom_deid.py --key-file KEY --in DIR --out DIR [--jobs 2]
Exit status 0 when every file was written, 1 otherwise (errors on stderr).
"""

import argparse
import base64
import hashlib
import hmac
import json
import multiprocessing
import os
import sys

import pydicom
from pydicom.datadict import dictionary_has_tag
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag

HERE = os.path.dirname(os.path.abspath(__file__))
ROWS = os.path.join(os.path.dirname(HERE), "tests", "e2e", "data", "profile_rows.json")

RESOLVE = {"X": "X", "Z": "Z", "D": "D", "U": "U", "K": "K", "C": "C", "X/Z": "Z", "X/D": "D",
           "Z/D": "D", "X/Z/D": "D", "X/Z/U*": "U"}
TEXT_VRS = {"PN", "LO", "SH", "ST", "LT", "UT", "UC", "DA", "DT", "TM", "AS"}
DUMMY = {"AE": "ANON", "AS": "000Y", "CS": "ANONYMOUS", "DA": "19000101",
         "DT": "19000101000000", "TM": "000000", "DS": "0", "IS": "0", "UR": "urn:anonymous"}
for _vr in ("LO", "SH", "ST", "LT", "UT", "UC", "PN"):
    DUMMY[_vr] = "ANONYMOUS"
NUMERIC_VRS = {"US", "SS", "UL", "SL", "UV", "SV", "FL", "FD"}
BINARY_VRS = {"OB", "OW", "OD", "OF", "OL", "OV", "UN"}
# Code attributes keep their value inside a dummied sequence item.
CODE_TAGS = {Tag(0x0008, e) for e in (0x0100, 0x0102, 0x0103, 0x0104, 0x0119, 0x0120, 0x010F,
                                      0x0117, 0x0105, 0x0118, 0x0106, 0x010D)}
PATIENT_ID, PATIENT_NAME, ACCESSION = Tag(0x0010, 0x0020), Tag(0x0010, 0x0010), Tag(0x0008, 0x0050)

_state = {}  # per process: key, rows


def load_rows(path):
    """Table E.1-1 rows: exact tags -> code, and the masked rows (50xx,xxxx), (60xx,3000),
    (60xx,4000) by (group high byte, element or None)."""
    with open(path) as f:
        rows = json.load(f)["rows"]
    exact, masked = {}, {}
    for r in rows:
        if "WHERE" in r["tag"]:  # (GGGG,EEEE) WHERE GGGG IS ODD: private, handled in walk()
            continue
        group, element = r["tag"].strip("()").split(",")
        code = RESOLVE[r["basic"]]
        if "X" in group.upper()[2:] or "X" in element.upper():
            low = None if "X" in element.upper() else int(element, 16)
            masked[(int(group[:2], 16), low)] = code
        else:
            exact[Tag(int(group, 16), int(element, 16))] = code
    return exact, masked


def mac(domain, value):
    message = domain.encode() + b"\0" + value.encode()
    return hmac.new(_state["key"], message, hashlib.sha256).digest()


def new_uid(original):
    m = bytearray(mac("uid", original))
    m[6] = (m[6] & 0x0F) | 0x80
    m[8] = (m[8] & 0x3F) | 0x80
    return "2.25." + str(int.from_bytes(m[:16], "big"))


def substitute(prefix, domain, original):
    return prefix + base64.b32encode(mac(domain, original)).decode()[:15]


def row_code(tag):
    code = _state["exact"].get(tag)
    if code is not None:
        return code
    masked = _state["masked"]
    if tag.group & 0xFF01 in (0x5000, 0x6000) and (tag.group & 0xFF) % 2 == 0:
        hi = tag.group >> 8
        return masked.get((hi, tag.element), masked.get((hi, None)))
    return None


def dummy(elem):
    vr = elem.VR
    if vr == "UI":
        return new_uid_values(elem)
    if vr in DUMMY:
        return DUMMY[vr]
    if vr in NUMERIC_VRS:
        return 0
    if vr in BINARY_VRS:
        return b"\0\0"
    if vr == "AT":
        return Tag(0, 0)
    return None


def new_uid_values(elem):
    if elem.VM > 1:
        return [new_uid(str(v)) for v in elem.value]
    return new_uid(str(elem.value)) if elem.value else elem.value


def walk(ds, dummy_text, counts, patient_id):
    overlay_groups = set()
    for elem in list(ds):
        tag = elem.tag
        if tag.element == 0 or tag.is_private or not dictionary_has_tag(tag):
            del ds[tag]
            counts["removed_other"] += 1
            continue
        code = row_code(tag)
        if tag == PATIENT_ID:
            elem.value = substitute("P", "patient_id", str(elem.value or ""))
            counts["pseudonym"] += 1
            continue
        if tag == PATIENT_NAME:
            elem.value = substitute("N", "patient_name", patient_id)
            counts["pseudonym"] += 1
            continue
        if tag == ACCESSION:
            if elem.value:
                elem.value = substitute("A", "accession", str(elem.value))
            counts["pseudonym"] += 1
            continue
        if code is None:
            if dummy_text and elem.VR in TEXT_VRS and tag not in CODE_TAGS:
                elem.value = DUMMY.get(elem.VR, "ANONYMOUS")
                counts["D"] += 1
            elif elem.VR == "SQ":
                for item in elem.value:
                    walk(item, dummy_text, counts, patient_id)
            counts["K"] += 1
            continue
        counts[code] += 1
        if code == "X":
            if tag.group & 0xFF01 == 0x6000 and tag.element == 0x3000:
                overlay_groups.add(tag.group)
            del ds[tag]
        elif code == "Z":
            elem.value = Sequence() if elem.VR == "SQ" else None
        elif code in ("D", "U", "K", "C"):
            if elem.VR == "SQ":
                for item in elem.value:
                    walk(item, code == "D" or dummy_text, counts, patient_id)
            elif code == "U" or (code == "D" and elem.VR == "UI"):
                elem.value = new_uid_values(elem)
            elif code == "D":
                elem.value = dummy(elem)
            elif code == "C" and elem.VR in BINARY_VRS:
                del ds[tag]
    for group in overlay_groups:
        for elem in list(ds.group_dataset(group)):
            del ds[elem.tag]


def code_item(value, meaning):
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = "DCM"
    item.CodeMeaning = meaning
    return item


def deidentify(job):
    src, dst = job
    try:
        ds = pydicom.dcmread(src)
        counts = {k: 0 for k in ("X", "Z", "D", "U", "K", "C", "pseudonym", "removed_other")}
        walk(ds, False, counts, str(ds.get("PatientID", "") or ""))
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = "pydicom bench; Basic Application Confidentiality Profile"
        ds.DeidentificationMethodCodeSequence = Sequence(
            [code_item("113100", "Basic Application Confidentiality Profile")])
        ds.LongitudinalTemporalInformationModified = "REMOVED"
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        part = dst + ".part"
        ds.save_as(part, write_like_original=True)
        os.rename(part, dst)
        return None
    except Exception as e:  # report and go on, like conduit deid's "failed" list
        return f"{src}: {type(e).__name__}: {e}"


def init(key, exact, masked):
    _state["key"] = key
    _state["exact"], _state["masked"] = exact, masked


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--key-file", required=True)
    p.add_argument("--in", dest="src", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--rows", default=ROWS, help="Table E.1-1 rows (profile_rows.json)")
    args = p.parse_args()
    with open(args.key_file, "rb") as f:
        key = f.read()
    jobs = []
    for dirpath, _, names in os.walk(args.src):
        rel = os.path.relpath(dirpath, args.src)
        os.makedirs(os.path.join(args.out, rel), exist_ok=True)
        for n in sorted(names):
            jobs.append((os.path.join(dirpath, n), os.path.join(args.out, rel, n)))
    jobs.sort()
    exact, masked = load_rows(args.rows)  # here, so a bad table fails once, not per worker
    with multiprocessing.Pool(args.jobs, initializer=init, initargs=(key, exact, masked)) as pool:
        errors = [e for e in pool.imap_unordered(deidentify, jobs, chunksize=2) if e]
    for e in errors[:10]:
        print(e, file=sys.stderr)
    print(f"pydicom_deid: {len(jobs) - len(errors)} of {len(jobs)} files written", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
