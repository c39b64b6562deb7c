#!/usr/bin/env bash
# A real DICOM node standing in for an AI tool, for Conduit's tests and demos (NON-CLINICAL).
# DCMTK's storescp receives studies on PORT as AE; once a study has been quiet for
# --quiet seconds, storescp runs on-study.sh on the study's folder, which runs
# conduit-reference-tool and C-STOREs the results back to Conduit FROM the node's AE title.
#
#   run-node.sh --port 11112 --aet AITOOL --conduit-port 4242 --work /tmp/node \
#               [--conduit-aet CONDUIT] [--conduit-host 127.0.0.1] [--quiet 1] \
#               [--build DIR] [--slow-s 30]
#               [--mode normal|silent|wrong-study|echo|slow|crash|malformed|wrong-references]
#               [--tls KEY CERT CA]
#
# --tls: DICOM over TLS both ways (DCMTK's default BCP 195 non-downgrading profile): storescp
# speaks only TLS with CERT and KEY and wants a client certificate from CA; results go back
# over TLS with the same certificate, verifying Conduit's against CA.
#
# NODE_MODE (or --mode) makes the node misbehave on purpose:
#   normal       results (SEG, SR, SC) are sent back
#   silent       nothing is ever sent back
#   wrong-study  a 1-slice image of another study is sent back, then the results
#   echo         one of the received inputs is sent back, then the results
#   slow         the results are sent back --slow-s (NODE_SLOW_S, default 30) seconds late
#   crash        the node exits (storescp is killed) once a study is received; nothing is sent
#   malformed    results broken for their SOP class are sent: the SEG without Pixel Data and
#                the SR without Content Sequence or evidence (the SC as made)
#   wrong-references  the SEG's and SC's Referenced SOP Instance UIDs are replaced by UIDs
#                of no instance in the study, then the results are sent
# NODE_BAD_ONLY=1 leaves the results out in wrong-study and echo modes.
# The node runs in the foreground (storescp is exec'd: its pid is this script's pid); its log
# and each study's on-study log are under WORK/. TCP_NODELAY=1 is set for every DCMTK tool.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
port=""
aet="AITOOL"
conduit_aet="CONDUIT"
conduit_host="127.0.0.1"
conduit_port=""
work=""
quiet=1
build="${CONDUIT_BUILD_DIR:-$here/../../build}"
mode="${NODE_MODE:-normal}"
slow_s="${NODE_SLOW_S:-30}"
tls=()

usage() {
  sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --port) port="$2"; shift 2 ;;
    --aet) aet="$2"; shift 2 ;;
    --conduit-aet) conduit_aet="$2"; shift 2 ;;
    --conduit-host) conduit_host="$2"; shift 2 ;;
    --conduit-port) conduit_port="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    --quiet) quiet="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    --mode) mode="$2"; shift 2 ;;
    --slow-s) slow_s="$2"; shift 2 ;;
    --tls) tls=(+tls "$2" "$3" +cf "$4"); shift 4 ;;
    -h|--help) usage ;;
    *) echo "run-node.sh: unknown argument '$1'" >&2; usage ;;
  esac
done

[[ -n "$port" && -n "$conduit_port" && -n "$work" ]] || usage
case "$mode" in
  normal|silent|wrong-study|echo|slow|crash|malformed|wrong-references) ;;
  *) echo "run-node.sh: unknown mode '$mode'" >&2; exit 2 ;;
esac
if ! [[ "$slow_s" =~ ^[0-9]+$ ]]; then
  echo "run-node.sh: --slow-s must be a whole number of seconds" >&2
  exit 2
fi
if ! [[ "$quiet" =~ ^[0-9]+$ && "$quiet" -ge 1 ]]; then
  echo "run-node.sh: --quiet must be a whole number of seconds >= 1" >&2
  exit 2
fi
build="$(cd "$build" && pwd)"
for tool in storescp storescu dcmodify; do
  command -v "$tool" >/dev/null || { echo "run-node.sh: $tool (DCMTK) not found" >&2; exit 1; }
done
for prog in conduit-reference-tool conduit-make-study; do
  [[ -x "$build/$prog" ]] || { echo "run-node.sh: $build/$prog not built" >&2; exit 1; }
done

mkdir -p "$work/incoming" "$work/results"
work="$(cd "$work" && pwd)"

# on-study.sh reads its settings from the environment storescp passes on.
export NODE_MODE="$mode" NODE_AET="$aet" NODE_WORK="$work" NODE_BUILD="$build"
export NODE_CONDUIT_AET="$conduit_aet" NODE_CONDUIT_HOST="$conduit_host"
export NODE_CONDUIT_PORT="$conduit_port" NODE_SLOW_S="$slow_s" TCP_NODELAY=1
# storescu's TLS options for on-study.sh (empty: plain DICOM).
export NODE_TLS="${tls[*]}"
# storescp is exec'd below, so this shell's pid is storescp's: crash mode kills it.
export NODE_PID="$$"

echo "$(date -u +%FT%TZ) node $aet on port $port, mode $mode, results to" \
     "$conduit_aet@$conduit_host:$conduit_port" >>"$work/node.log"

# -su: one folder per Study Instance UID; -xcs/-tos: run on-study.sh on a study's folder once
# no association has arrived for `quiet` seconds (or another study begins). #p is the folder.
exec storescp --aetitle "$aet" --output-directory "$work/incoming" \
  --sort-on-study-uid study --exec-on-eostudy "$here/on-study.sh #p" \
  --eostudy-timeout "$quiet" --disable-host-lookup --log-level info ${tls[@]+"${tls[@]}"} \
  "$port" >>"$work/storescp.log" 2>&1
