#!/usr/bin/env bash
# Builds the libFuzzer targets with clang into build-fuzz/ and runs each for a bounded time on a
# copy of its seed corpus (plus every committed regression input). Fails on any crash, leak,
# sanitizer report, timeout or out-of-memory; the input that caused it is kept and named.
# Idempotent. Environment: FUZZ_SECONDS (per target, default 30; 0 replays the seeds only),
# FUZZ_JOBS (build, default 2), FUZZ_PARALLEL (targets run at once, default: the number of
# cores), FUZZ_TARGETS (default: all).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
seconds=${FUZZ_SECONDS:-30}
jobs=${FUZZ_JOBS:-2}
parallel=${FUZZ_PARALLEL:-$(nproc 2>/dev/null || echo 2)}
all_targets=(fuzz_instance_meta fuzz_config fuzz_route_glob fuzz_deid fuzz_multipart fuzz_qido_query
  fuzz_tool_manifest fuzz_hl7 fuzz_ups_body fuzz_rendered_params fuzz_policy fuzz_stow_response
  fuzz_commitment_report fuzz_forwarded_for)
if [ -n "${FUZZ_TARGETS:-}" ]; then
  read -r -a targets <<<"$FUZZ_TARGETS"
else
  targets=("${all_targets[@]}")
fi
build=$root/build-fuzz
work=$build/fuzz-work

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCONDUIT_FUZZ=ON -DCONDUIT_TESTS=OFF >/dev/null
cmake --build "$build" --target "${targets[@]}" -j"$jobs" >"$build/fuzz-build.log" 2>&1 || {
  tail -n 60 "$build/fuzz-build.log"
  echo "fuzz: build failed (log: $build/fuzz-build.log)" >&2
  exit 1
}

# Seeds for one target into $2: committed seeds, plus generated or system ones.
seed() {
  local target=$1 dir=$2
  cp "$root/fuzz/corpus/$target/"* "$dir/"
  case $target in
    fuzz_instance_meta)
      # pydicom's small samples cover big endian, implicit VR, no meta header, deflate, bad VRs.
      local samples=/usr/lib/python3/dist-packages/pydicom/data/test_files
      if [ -d "$samples" ]; then
        find "$samples" -maxdepth 1 -name '*.dcm' -size -20k -exec cp {} "$dir/" \;
      fi
      ;;
    fuzz_config)
      cp "$root/examples/"*.yaml "$dir/"
      ;;
    fuzz_tool_manifest)
      cp "$root/examples/tools/"*.yaml "$dir/"
      ;;
    fuzz_deid)
      # pydicom's small samples, each behind two option bytes: basic profile and everything on.
      local samples=/usr/lib/python3/dist-packages/pydicom/data/test_files f
      if [ -d "$samples" ]; then
        for f in $(find "$samples" -maxdepth 1 -name '*.dcm' -size -20k); do
          { printf '\x00\x04'; cat "$f"; } >"$dir/basic-$(basename "$f")"
          { printf '\xff\x07'; cat "$f"; } >"$dir/all-$(basename "$f")"
        done
      fi
      ;;
  esac
}

# Runs one target and leaves its report in $work/$target/report: one "ok" line, or the failure
# with the tail of its log. Returns non-zero on failure.
run_target() {
  local target=$1
  local binary=$build/fuzz/$target
  local corpus=$work/$target/corpus
  local artifacts=$work/$target/artifacts
  local log=$work/$target/fuzz.log
  local report=$work/$target/report
  mkdir -p "$corpus" "$artifacts"
  seed "$target" "$corpus"

  # Every committed regression input must pass on its own first.
  local regressions=("$root/fuzz/regressions/$target/"*)
  if [ -e "${regressions[0]}" ]; then
    if ! "$binary" "${regressions[@]}" >"$work/$target/regressions.log" 2>&1; then
      {
        tail -n 40 "$work/$target/regressions.log"
        echo "fuzz: $target: a regression input fails again (log: $work/$target/regressions.log)"
      } >"$report"
      return 1
    fi
    cp "${regressions[@]}" "$corpus/"
  fi

  local extra=()
  [ -f "$root/fuzz/$target.dict" ] && extra+=(-dict="$root/fuzz/$target.dict")
  case $target in
    fuzz_instance_meta) extra+=(-max_len=20000) ;;
    fuzz_config) extra+=(-max_len=4096) ;;
    fuzz_route_glob) extra+=(-max_len=600) ;;
    fuzz_multipart) extra+=(-max_len=4096) ;;
    fuzz_qido_query) extra+=(-max_len=4096) ;;
    fuzz_tool_manifest) extra+=(-max_len=8192) ;;
    fuzz_ups_body) extra+=(-max_len=8192) ;;
    fuzz_policy) extra+=(-max_len=8192) ;;
    fuzz_stow_response) extra+=(-max_len=8192) ;;
    fuzz_commitment_report) extra+=(-max_len=4096) ;;
  esac
  # FUZZ_SECONDS=0: only replay the seeds (libFuzzer reads 0 as "no time limit").
  local budget
  if [ "$seconds" -gt 0 ]; then budget=(-max_total_time="$seconds"); else budget=(-runs=0); fi
  if "$binary" "$corpus" "${budget[@]}" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$artifacts/" "${extra[@]}" >"$log" 2>&1; then
    local runs rate cov
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 || true)
    echo "fuzz: $target: ok, ${seconds}s, ${runs:-?} inputs, ${rate:-?} exec/s, ${cov:-cov: ?}" >"$report"
    return 0
  fi
  {
    tail -n 60 "$log"
    echo "fuzz: $target: FAILED; reproducer(s): $(find "$artifacts" -type f | tr '\n' ' ')"
    echo "fuzz: reproduce with: $binary <file>; keep it under fuzz/regressions/$target/"
  } >"$report"
  return 1
}

# Targets run side by side, up to $parallel at a time (each libFuzzer process uses one core);
# reports are printed in target order once all have ended.
for target in "${targets[@]}"; do rm -rf "${work:?}/$target"; done
running=0
for target in "${targets[@]}"; do
  if [ "$running" -ge "$parallel" ]; then
    wait -n || true
    running=$((running - 1))
  fi
  # errexit holds inside the subshell: any unexpected failure ends it without "passed".
  (
    run_target "$target"
    touch "$work/$target/passed"
  ) &
  running=$((running + 1))
done
wait || true

status=0
passed=0
failed=0
for target in "${targets[@]}"; do
  report=$work/$target/report
  if [ -f "$work/$target/passed" ]; then
    cat "$report"
    passed=$((passed + 1))
  else
    if [ -f "$report" ]; then cat "$report" >&2; else echo "fuzz: $target: ended without a report" >&2; fi
    status=1
    failed=$((failed + 1))
  fi
done
echo "fuzz: $passed passed, $failed failed"
exit $status
