#!/usr/bin/env bash
# Run by storescp (see run-node.sh) once a study received in folder $1 has been quiet: runs
# the reference tool on it and C-STOREs the results back to Conduit from the node's AE title,
# misbehaving as NODE_MODE asks. Settings come from the environment run-node.sh exported.
# Each run takes the study's folder away (so a re-sent study starts a fresh one) and logs to
# NODE_WORK/runs/<run>.log; NODE_WORK/node.log gets one line per run.
set -uo pipefail

study_dir="${1:?usage: on-study.sh STUDY_DIR}"
: "${NODE_WORK:?} ${NODE_BUILD:?} ${NODE_AET:?} ${NODE_CONDUIT_AET:?}"
: "${NODE_CONDUIT_HOST:?} ${NODE_CONDUIT_PORT:?} ${NODE_MODE:?}"
export TCP_NODELAY=1

runs="$NODE_WORK/runs"
mkdir -p "$runs"
run="$(basename "$study_dir").$(date -u +%Y%m%dT%H%M%S).$$"
input="$runs/$run/input"
output="$runs/$run/output"
log="$runs/$run.log"
mkdir -p "$runs/$run" "$output"

note() { echo "$(date -u +%FT%TZ) $run: $*" >>"$NODE_WORK/node.log"; }

# Take the study away from storescp's folder: a later dispatch of the same study is a new run.
if ! mv "$study_dir" "$input" 2>>"$log"; then
  note "study folder $study_dir not found; nothing to do"
  exit 0
fi
count=$(find "$input" -type f | wc -l)
note "received $count instance(s), mode $NODE_MODE"

send() {  # send WHAT FILE...: C-STORE files to Conduit from the tool's AE title
  local what="$1"; shift
  local out rc accepted answered
  # --required: one presentation context per SOP class and transfer syntax of the files
  # (storescu's default proposal lacks newer classes such as Segmentation Storage).
  out="$(storescu --verbose --aetitle "$NODE_AET" --call "$NODE_CONDUIT_AET" --required \
           --no-halt "$NODE_CONDUIT_HOST" "$NODE_CONDUIT_PORT" "$@" 2>&1)"
  rc=$?
  printf '%s\n' "$out" >>"$log"
  answered=$(grep -c "Received Store Response" <<<"$out")
  accepted=$(grep -c "Received Store Response (Success)" <<<"$out")
  note "sent $what: $accepted of $# file(s) accepted ($answered answered, storescu exit $rc)"
}

results() {  # runs the reference tool; the result files are then in $output
  "$NODE_BUILD/conduit-reference-tool" --input "$input" --output "$output" >>"$log" 2>&1
  local rc=$?
  [[ $rc -eq 0 ]] || note "reference tool failed (exit $rc)"
  return $rc
}

case "$NODE_MODE" in
  silent)
    note "silent: no result sent"
    ;;
  normal)
    results && send results "$output"/*
    ;;
  wrong-study)
    other="$runs/$run/other-study"
    if "$NODE_BUILD/conduit-make-study" --out "$other" --modality CT --slices 1 --rows 32 \
         --cols 32 >>"$log" 2>&1; then
      send "an image of another study" "$other"/*
    else
      note "conduit-make-study failed"
    fi
    [[ "${NODE_BAD_ONLY:-0}" == 1 ]] || { results && send results "$output"/*; }
    ;;
  echo)
    first="$(find "$input" -type f | sort | head -n 1)"
    send "an input back" "$first"
    [[ "${NODE_BAD_ONLY:-0}" == 1 ]] || { results && send results "$output"/*; }
    ;;
  *)
    note "unknown mode $NODE_MODE"
    exit 2
    ;;
esac
note "done"
