#!/bin/bash
# Integration test of conduit-make-study and conduit-reference-tool against independent
# checkers: dciodvfy (dicom3tools) must report no errors on generated inputs and on every
# result; pydicom (Debian's /usr/bin/python3) checks references, measurements and labels;
# a re-run must produce identical UIDs; unsuitable input must exit 2.
# usage: reference_tool_integration.sh MAKE_STUDY_BINARY REFERENCE_TOOL_BINARY
set -u
make_study=$1
tool=$2
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/conduit-tools-it.XXXXXX")
trap 'rm -rf "$work"' EXIT
failures=0

fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# dciodvfy prints to stderr; any line starting with "Error" fails the object.
validate() {
  local file=$1 out
  out=$(dciodvfy "$file" 2>&1)
  if grep -q '^Error' <<<"$out"; then
    fail "dciodvfy errors in $file:"
    grep '^Error' <<<"$out" >&2
  fi
}

uids_of() {  # SOP and series UIDs of the three results, one per line
  /usr/bin/python3 - "$1" <<'PY'
import sys, pydicom
for name in ("seg", "sr", "sc"):
    ds = pydicom.dcmread("%s/%s.dcm" % (sys.argv[1], name), stop_before_pixels=True)
    print(name, ds.SeriesInstanceUID, ds.SOPInstanceUID)
PY
}

command -v dciodvfy >/dev/null || { echo "dciodvfy (dicom3tools) missing" >&2; exit 1; }

# Generated inputs.
"$make_study" --out "$work/ct" --modality CT --slices 20 --rows 128 --cols 128 --seed 7 \
  >/dev/null || fail "make-study CT"
"$make_study" --out "$work/mr" --modality MR --slices 10 --rows 96 --cols 96 --seed 8 \
  --transfer-syntax implicit >/dev/null || fail "make-study MR"
"$make_study" --out "$work/dx" --modality DX --rows 300 --cols 250 --seed 9 \
  >/dev/null || fail "make-study DX"
[ "$(ls "$work/ct" | wc -l)" = 20 ] || fail "CT study should have 20 files"
for f in "$work"/ct/*.dcm "$work"/mr/*.dcm "$work"/dx/*.dcm; do validate "$f"; done

# Two runs on CT (with a stray non-DICOM file), one on MR.
echo "not dicom" > "$work/ct/README.txt"
for run in ct1 ct2; do
  "$tool" --input "$work/ct" --output "$work/$run" >"$work/$run.log" 2>&1 \
    || { fail "tool on CT ($run) exited $?"; cat "$work/$run.log" >&2; }
done
"$tool" --input "$work/mr" --output "$work/mr1" >"$work/mr1.log" 2>&1 \
  || { fail "tool on MR exited $?"; cat "$work/mr1.log" >&2; }
for dir in ct1 mr1; do
  for obj in seg sr sc; do validate "$work/$dir/$obj.dcm"; done
done
/usr/bin/python3 "$here/check_reference_outputs.py" "$work/ct" "$work/ct1" CT || fail "pydicom CT"
/usr/bin/python3 "$here/check_reference_outputs.py" "$work/mr" "$work/mr1" MR || fail "pydicom MR"
if [ "$(uids_of "$work/ct1")" != "$(uids_of "$work/ct2")" ]; then
  fail "a re-run produced different UIDs"
fi

# Mixed input: the larger (CT, 20 slices) series wins over MR (10) and DX.
mkdir -p "$work/mixed"
cp -r "$work/ct" "$work/mr" "$work/dx" "$work/mixed/"
"$tool" --input "$work/mixed" --output "$work/mixed-out" >/dev/null 2>&1 \
  || fail "tool on mixed input"
/usr/bin/python3 "$here/check_reference_outputs.py" "$work/ct" "$work/mixed-out" CT \
  || fail "mixed input did not pick the CT series"

# No suitable input: exit 2 with a message on stderr.
mkdir -p "$work/empty"
for input in "$work/empty" "$work/dx" "$work/does-not-exist"; do
  "$tool" --input "$input" --output "$work/none" >/dev/null 2>"$work/err.txt"
  code=$?
  [ "$code" = 2 ] || fail "exit code $code (want 2) for $input"
  [ -s "$work/err.txt" ] || fail "no message on stderr for $input"
done

if [ "$failures" != 0 ]; then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "reference tool integration: all checks passed"
