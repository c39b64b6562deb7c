#!/bin/bash
# Runs bench/run_stow.sh against Conduit alone, built with stow-syncs.patch, once per
# combination of the patch's switches (each sync left out, then all), with the plain build's
# behaviour first and last. Prints the Conduit rows of each run.
# Usage: bench/experiments/stow_syncs.sh PATCHED_BUILD_DIR
set -eu
build=${1:?usage: $0 PATCHED_BUILD_DIR}
cd "$(dirname "$0")/../.."
for combo in base EXP_NODIRSYNC EXP_NOFILESYNC EXP_NOINDEXSYNC "EXP_NODIRSYNC EXP_NOINDEXSYNC" \
             "EXP_NODIRSYNC EXP_NOFILESYNC EXP_NOINDEXSYNC" base; do
  envs=()
  for v in $combo; do [ "$v" != base ] && envs+=("$v=1"); done
  echo "=== $combo"
  env "${envs[@]}" CONDUIT_BUILD_DIR="$build" bench/run_stow.sh --servers conduit --no-profile \
      --repeat 3 2>/dev/null | grep -E '^\| [14] \|.*Conduit'
done
