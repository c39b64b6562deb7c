#!/usr/bin/env bash
# Tests the DIMSE tool node's misbehaviours slow, crash, malformed and wrong-references
# (tools/dimse_tool_node) with real DCMTK peers on 127.0.0.1: for each mode a storescp
# stands in for Conduit's results listener, a small CT study is C-STOREd to the node, and
# what the node sends back (or does not) is checked with Debian's pydicom.
#
#   dimse_tool_node_modes_test.sh BUILD_DIR   (holding conduit-make-study, conduit-reference-tool)
set -uo pipefail

build="$(cd "${1:?usage: dimse_tool_node_modes_test.sh BUILD_DIR}" && pwd)"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
node_sh="$here/../dimse_tool_node/run-node.sh"
py=/usr/bin/python3
export TCP_NODELAY=1

tmp="$(mktemp -d "${TMPDIR:-/tmp}/dimse_tool_node_modes.XXXXXX")"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }

free_port() {
  "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_for SECONDS COMMAND...: runs COMMAND every 0.2 s until it succeeds; fails after SECONDS.
wait_for() {
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do
    ((SECONDS >= deadline)) && return 1
    sleep 0.2
  done
}
count_files() { find "$1" -type f 2>/dev/null | wc -l; }
has_files() { [[ $(count_files "$1") -ge $2 ]]; }
echo_ok() { echoscu -aec "$1" 127.0.0.1 "$2" >/dev/null 2>&1; }
is_dead() { ! kill -0 "$1" 2>/dev/null; }
# The node notes "sent ..." once its storescu has ended, i.e. once every C-STORE was answered,
# which storescp does after writing the file: then the received files are complete.
node_sent() { grep -q ': sent ' "$node_work/node.log" 2>/dev/null; }

"$build/conduit-make-study" --out "$tmp/study" --modality CT --slices 4 --rows 64 --cols 64 \
  >"$tmp/make-study.log" 2>&1 || { echo "conduit-make-study failed" >&2; exit 1; }

# start_mode MODE: a results receiver ("Conduit") and a node in MODE; sets recv_dir, node_pid,
# node_work, node_port. Extra environment (NODE_SLOW_S) is passed through.
start_mode() {
  local mode="$1"
  recv_dir="$tmp/$mode/received"
  node_work="$tmp/$mode/node"
  mkdir -p "$recv_dir" "$node_work"
  local recv_port; recv_port="$(free_port)"
  storescp --aetitle CONDUIT --output-directory "$recv_dir" --promiscuous \
    --accept-all --disable-host-lookup "$recv_port" >"$tmp/$mode/receiver.log" 2>&1 &
  pids+=($!)
  node_port="$(free_port)"
  bash "$node_sh" --port "$node_port" --aet AITOOL --conduit-port "$recv_port" \
    --work "$node_work" --quiet 1 --build "$build" --mode "$mode" --slow-s "${SLOW_S:-30}" &
  node_pid=$!
  pids+=("$node_pid")
  # Both listeners up: an echo to each answers.
  wait_for 90 echo_ok CONDUIT "$recv_port" || fail "$mode: receiver not up"
  wait_for 90 echo_ok AITOOL "$node_port" || fail "$mode: node not up"
}

send_study() {
  storescu --aetitle CONDUIT --call AITOOL 127.0.0.1 "$node_port" "$tmp/study"/* \
    >>"$tmp/send.log" 2>&1 || fail "storescu to the node failed"
}

# --- slow: the results come back, NODE_SLOW_S seconds after the study at the earliest ---
SLOW_S=3 start_mode slow
sent_at=$SECONDS
send_study
if wait_for 120 has_files "$recv_dir" 3; then
  elapsed=$((SECONDS - sent_at))
  if ((elapsed >= 3)); then pass "slow: 3 results after ${elapsed} s"; else
    fail "slow: results after ${elapsed} s, before the 3 s delay"
  fi
  grep -q "slow: holding results for 3 s" "$node_work/node.log" || fail "slow: not in node.log"
else
  fail "slow: results never arrived"
fi

# --- crash: the node's storescp dies after the study; nothing comes back ---
start_mode crash
send_study
if wait_for 60 is_dead "$node_pid"; then
  sleep 2  # anything the node were (wrongly) still sending would land by now
  if [[ $(count_files "$recv_dir") -eq 0 ]]; then pass "crash: node exited, nothing sent"; else
    fail "crash: the node sent $(count_files "$recv_dir") file(s)"
  fi
  if echoscu -aec AITOOL 127.0.0.1 "$node_port" >/dev/null 2>&1; then
    fail "crash: the node still answers C-ECHO"
  fi
  grep -q "crash: killing storescp" "$node_work/node.log" || fail "crash: not in node.log"
else
  fail "crash: the node is still running"
fi

# --- malformed: SEG without Pixel Data, SR without content, sent and received ---
start_mode malformed
send_study
if wait_for 120 has_files "$recv_dir" 3 && wait_for 60 node_sent; then
  if "$py" - "$recv_dir" <<'PY'
import pathlib, sys
import pydicom
SEG = "1.2.840.10008.5.1.4.1.1.66.4"
files = [pydicom.dcmread(p) for p in pathlib.Path(sys.argv[1]).rglob("*") if p.is_file()]
seg = [d for d in files if d.SOPClassUID == SEG]
sr = [d for d in files if d.Modality == "SR"]
assert len(files) == 3, f"{len(files)} files"
assert len(seg) == 1 and "PixelData" not in seg[0], "SEG still has Pixel Data"
assert len(sr) == 1, "no SR"
assert "ContentSequence" not in sr[0], "SR still has content"
assert "CurrentRequestedProcedureEvidenceSequence" not in sr[0], "SR still has evidence"
PY
  then pass "malformed: SEG without Pixel Data and SR without content received"; else
    fail "malformed: received objects are not the broken ones"
  fi
else
  fail "malformed: results never arrived"
fi

# --- wrong-references: SEG and SC point at instances that are not in the study ---
start_mode wrong-references
send_study
if wait_for 120 has_files "$recv_dir" 3 && wait_for 60 node_sent; then
  if "$py" - "$recv_dir" "$tmp/study" <<'PY'
import pathlib, sys
import pydicom
def refs(ds):
    out = []
    for elem in ds.iterall():
        if elem.tag == 0x00081155:
            out.append(str(elem.value))
    return out
inputs = {str(pydicom.dcmread(p).SOPInstanceUID)
          for p in pathlib.Path(sys.argv[2]).rglob("*") if p.is_file()}
files = [pydicom.dcmread(p) for p in pathlib.Path(sys.argv[1]).rglob("*") if p.is_file()]
assert len(files) == 3, f"{len(files)} files"
seg = [d for d in files if d.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4"][0]
sc = [d for d in files if d.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"][0]
sr = [d for d in files if d.Modality == "SR"][0]
for name, ds in (("SEG", seg), ("SC", sc)):
    r = refs(ds)
    assert r, f"{name} has no references"
    assert not set(r) & inputs, f"{name} still references an input"
assert str(seg.SOPInstanceUID) in refs(sr), "the SR no longer references the SEG"
assert seg.StudyInstanceUID == sc.StudyInstanceUID == sr.StudyInstanceUID
PY
  then pass "wrong-references: SEG and SC reference no input"; else
    fail "wrong-references: references not as expected"
  fi
else
  fail "wrong-references: results never arrived"
fi

# --- an unknown mode is refused ---
bash "$node_sh" --port 1 --conduit-port 2 --work "$tmp/bad" --build "$build" --mode explode \
  >/dev/null 2>&1
rc=$?
if [[ $rc -eq 2 ]]; then pass "unknown mode refused"; else fail "unknown mode: exit $rc"; fi

if ((failures > 0)); then
  echo "$failures failure(s); logs kept in $tmp" >&2
  trap - EXIT
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  exit 1
fi
echo "all DIMSE tool node mode tests passed"
