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
# Optional: NODE_SLOW_S (slow mode's delay, default 30), NODE_PID (storescp, for crash mode),
# NODE_BAD_ONLY (wrong-study and echo modes), NODE_TLS (storescu's TLS options, space-separated;
# paths without spaces).
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
  local tls=()
  read -r -a tls <<<"${NODE_TLS:-}"
  out="$(storescu --verbose --aetitle "$NODE_AET" --call "$NODE_CONDUIT_AET" --required \
           --no-halt ${tls[@]+"${tls[@]}"} "$NODE_CONDUIT_HOST" "$NODE_CONDUIT_PORT" "$@" 2>&1)"
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
  slow)
    # Results held NODE_SLOW_S seconds (a tool slower than its declared turnaround).
    slow_s="${NODE_SLOW_S:-30}"
    if results; then
      note "slow: holding results for ${slow_s} s"
      sleep "$slow_s"
      send results "$output"/*
    fi
    ;;
  crash)
    # The node dies with the study received and nothing sent back: storescp (NODE_PID) is
    # killed, as a tool host that crashed would be.
    note "crash: killing storescp (pid ${NODE_PID:-unknown}) without sending results"
    if [[ -n "${NODE_PID:-}" ]]; then
      kill -TERM "$NODE_PID" 2>/dev/null
      for _ in $(seq 1 20); do
        kill -0 "$NODE_PID" 2>/dev/null || break
        sleep 0.1
      done
      kill -KILL "$NODE_PID" 2>/dev/null
    fi
    exit 0
    ;;
  malformed)
    # Well-encoded files whose content is broken for their SOP class, so storescu sends them
    # and the receiver must quarantine them: the SEG without its Pixel Data (7FE0,0010), the
    # TID 1500 SR without its Content Sequence (0040,A730) and its evidence (0040,A375).
    if results; then
      bad=0
      dcmodify --no-backup --erase "(7fe0,0010)" "$output/seg.dcm" >>"$log" 2>&1 || bad=1
      dcmodify --no-backup --erase "(0040,a730)" --erase "(0040,a375)" \
        "$output/sr.dcm" >>"$log" 2>&1 || bad=1
      if [[ $bad -eq 0 ]]; then
        note "malformed: SEG without Pixel Data, SR without content or evidence"
        send "malformed results" "$output"/*
      else
        note "malformed: dcmodify failed; nothing sent"
      fi
    fi
    ;;
  wrong-references)
    # Every Referenced SOP Instance UID (0008,1155), at any depth, of the results that point
    # at the inputs (the SEG's source images, the SC's source image) is replaced by a new UID
    # of no instance in the study; the SR still references the SEG.
    if results; then
      bad=0
      for file in "$output/seg.dcm" "$output/sc.dcm"; do
        wrong="2.25.$(od -An -N7 -tu8 /dev/urandom | tr -d ' ')"
        dcmodify --no-backup --modify-all "(0008,1155)=$wrong" "$file" >>"$log" 2>&1 || bad=1
      done
      if [[ $bad -eq 0 ]]; then
        note "wrong-references: SEG and SC reference instances not in the study"
        send "results with wrong references" "$output"/*
      else
        note "wrong-references: dcmodify failed; nothing sent"
      fi
    fi
    ;;
  *)
    note "unknown mode $NODE_MODE"
    exit 2
    ;;
esac
note "done"
