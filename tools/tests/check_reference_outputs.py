#!/usr/bin/python3
"""Independent check (pydicom) of conduit-reference-tool's outputs against its input.

usage: check_reference_outputs.py INPUT_DIR OUTPUT_DIR MODALITY
Exits non-zero with a message on the first failed check.
"""
import os
import re
import sys

import pydicom

UID_225 = re.compile(r"^2\.25\.(0|[1-9][0-9]*)$")
SEG_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
SC_CLASS = "1.2.840.10008.5.1.4.1.1.7"
SR_CLASSES = {"1.2.840.10008.5.1.4.1.1.88.22", "1.2.840.10008.5.1.4.1.1.88.33",
              "1.2.840.10008.5.1.4.1.1.88.34"}


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def expect(cond, msg):
    if not cond:
        fail(msg)


def walk_content(items):
    for item in items:
        yield item
        if "ContentSequence" in item:
            yield from walk_content(item.ContentSequence)


def main():
    in_dir, out_dir, modality = sys.argv[1], sys.argv[2], sys.argv[3]
    inputs = {}
    for root, _, files in os.walk(in_dir):
        for name in files:
            try:
                ds = pydicom.dcmread(os.path.join(root, name), stop_before_pixels=True)
            except Exception:  # non-DICOM files are allowed in the input
                continue
            if ds.get("Modality") == modality:
                inputs[ds.SOPInstanceUID] = ds
    expect(inputs, "no %s input instances found" % modality)
    first = next(iter(inputs.values()))
    series_uid = first.SeriesInstanceUID

    seg = pydicom.dcmread(os.path.join(out_dir, "seg.dcm"))
    sr = pydicom.dcmread(os.path.join(out_dir, "sr.dcm"))
    sc = pydicom.dcmread(os.path.join(out_dir, "sc.dcm"))
    expect(seg.SOPClassUID == SEG_CLASS, "seg SOP class")
    expect(sr.SOPClassUID in SR_CLASSES, "sr SOP class %s" % sr.SOPClassUID)
    expect(sc.SOPClassUID == SC_CLASS, "sc SOP class")

    series = set()
    for name, ds in (("seg", seg), ("sr", sr), ("sc", sc)):
        expect(ds.StudyInstanceUID == first.StudyInstanceUID, name + ": study UID differs")
        expect(str(ds.PatientID) == str(first.PatientID), name + ": patient ID differs")
        expect(str(ds.PatientName) == str(first.PatientName), name + ": patient name differs")
        expect(ds.get("AccessionNumber", "") == first.get("AccessionNumber", ""),
               name + ": accession differs")
        expect("NON-CLINICAL" in ds.SeriesDescription, name + ": SeriesDescription not labelled")
        expect(UID_225.match(ds.SOPInstanceUID), name + ": SOP UID not in 2.25 form")
        expect(UID_225.match(ds.SeriesInstanceUID), name + ": series UID not in 2.25 form")
        expect(ds.SeriesInstanceUID != series_uid, name + ": reuses the input series")
        series.add(ds.SeriesInstanceUID)
    expect(len(series) == 3, "each output must be its own series")

    # SEG: segments, references, geometry.
    labels = [s.SegmentLabel for s in seg.SegmentSequence]
    expect(labels == ["Body", "Lung"], "segments %r" % labels)
    for s in seg.SegmentSequence:
        expect(s.SegmentedPropertyCategoryCodeSequence[0].CodingSchemeDesignator == "SCT",
               "segment category scheme")
        expect(s.SegmentedPropertyTypeCodeSequence[0].CodingSchemeDesignator == "SCT",
               "segment type scheme")
    expect("NON-CLINICAL" in seg.ContentDescription, "seg ContentDescription not labelled")
    expect(seg.FrameOfReferenceUID == first.FrameOfReferenceUID, "seg frame of reference")
    ref_series = seg.ReferencedSeriesSequence
    expect(len(ref_series) == 1 and ref_series[0].SeriesInstanceUID == series_uid,
           "seg ReferencedSeriesSequence")
    referenced = {i.ReferencedSOPInstanceUID for i in ref_series[0].ReferencedInstanceSequence}
    expect(referenced == set(inputs), "seg ReferencedInstanceSequence != input instances")
    frames = seg.PerFrameFunctionalGroupsSequence
    expect(int(seg.NumberOfFrames) == 2 * len(inputs) == len(frames), "seg frame count")
    for frame in frames:
        src = frame.DerivationImageSequence[0].SourceImageSequence[0]
        uid = src.ReferencedSOPInstanceUID
        expect(uid in inputs, "frame source image not in input")
        pos = [float(v) for v in frame.PlanePositionSequence[0].ImagePositionPatient]
        want = [float(v) for v in inputs[uid].ImagePositionPatient]
        expect(all(abs(a - b) < 1e-3 for a, b in zip(pos, want)), "frame position != source")
    pixels = seg.pixel_array
    expect(pixels.shape == (len(frames), int(seg.Rows), int(seg.Columns)), "seg pixel shape")
    expect(pixels.sum() > 0, "seg is empty")

    # SR: TID 1500 with a lung volume in ml referencing the SEG's lung segment.
    expect(sr.ContentTemplateSequence[0].TemplateIdentifier == "1500", "sr template")
    volumes = []
    seg_refs = []
    for item in walk_content(sr.ContentSequence):
        concept = item.get("ConceptNameCodeSequence")
        if item.ValueType == "NUM" and concept and concept[0].CodeValue == "118565006":
            mv = item.MeasuredValueSequence[0]
            expect(mv.MeasurementUnitsCodeSequence[0].CodeValue == "ml", "volume unit")
            volumes.append(float(mv.NumericValue))
        if item.ValueType == "IMAGE":
            ref = item.ReferencedSOPSequence[0]
            seg_refs.append((ref.ReferencedSOPInstanceUID, int(ref.ReferencedSegmentNumber)))
    expect(len(volumes) == 2 and all(v > 0 for v in volumes), "sr volumes %r" % volumes)
    expect(sorted(seg_refs) == sorted([(seg.SOPInstanceUID, 1), (seg.SOPInstanceUID, 2)]),
           "sr segment references %r" % seg_refs)
    texts = [str(i.get("TextValue", "")) for i in walk_content(sr.ContentSequence)]
    expect(any("NON-CLINICAL" in t for t in texts), "sr has no NON-CLINICAL text")
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
    expect(evidence.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == seg.SOPInstanceUID,
           "sr evidence does not list the seg")

    # SC: RGB overlay of a source slice.
    expect(sc.SamplesPerPixel == 3 and sc.PhotometricInterpretation == "RGB", "sc colour")
    expect(sc.ConversionType == "WSD", "sc conversion type")
    expect(sc.SourceImageSequence[0].ReferencedSOPInstanceUID in inputs, "sc source image")
    expect(sc.pixel_array.shape == (int(sc.Rows), int(sc.Columns), 3), "sc pixel shape")
    print("ok: %s lung %.1f ml, body %.1f ml" % (modality, volumes[0], volumes[1]))


if __name__ == "__main__":
    main()
