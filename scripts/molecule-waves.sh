#!/usr/bin/env bash
# Run Molecule scenarios in waves: the waves one after another; within a wave, at most MOLECULE_JOBS
# scenarios at a time (default 3), started in the order listed, the next as soon as one ends.
#
#   scripts/molecule-waves.sh "emq_cluster+manual,haproxy_lb,emq_node,nginx_lb site"
#
# A wave is a comma-separated list; "name+value" runs scenario name with EMQ_CLUSTER_DISCOVERY=value.
# Why: a Molecule run spends most of its time waiting (containers booting, services starting, probes and
# settle times), so three scenarios share 2 cores well; list the longest first, so the short ones fill the
# slots the others leave. Scenarios never share containers, networks (each has its own subnet) or Molecule
# state. Tests that measure failed connects under a rollout (site) run in a wave of their own. Each
# scenario's output goes to tests/output/molecule-<name>.log: printed whole when it fails (then its failure
# lines again, last), its closing lines when it passes. Stops after the first wave with a failure.
set -uo pipefail

waves="${1:?usage: molecule-waves.sh \"a,b c d,e\"}"
out_dir="tests/output"
jobs="${MOLECULE_JOBS:-3}"
mkdir -p "$out_dir"

run_one() {  # scenario[+discovery] -> exit code of molecule test; its duration in <log>.seconds
  local spec="$1" name="${1%%+*}" log="$out_dir/molecule-${1//+/-}.log" t0=$SECONDS rc
  if [[ "$spec" == *+* ]]; then
    EMQ_CLUSTER_DISCOVERY="${spec#*+}" molecule test -s "$name" > "$log" 2>&1
  else
    molecule test -s "$name" > "$log" 2>&1
  fi
  rc=$?
  echo $(( SECONDS - t0 )) > "$log.seconds"
  return $rc
}

for wave in $waves; do
  IFS=, read -r -a specs <<< "$wave"
  echo "==> molecule wave: ${specs[*]} ($(date -u +%H:%M:%S))"
  declare -A running=()  # pid -> spec
  failed=()
  for spec in "${specs[@]}"; do
    while [ "${#running[@]}" -ge "$jobs" ]; do
      wait -n -p done_pid "${!running[@]}" || failed+=("${running[$done_pid]}")
      unset "running[$done_pid]"
    done
    run_one "$spec" &
    running[$!]=$spec
    echo "==> started $spec ($(date -u +%H:%M:%S))"
  done
  while [ "${#running[@]}" -gt 0 ]; do
    wait -n -p done_pid "${!running[@]}" || failed+=("${running[$done_pid]}")
    unset "running[$done_pid]"
  done
  for spec in "${specs[@]}"; do
    log="$out_dir/molecule-${spec//+/-}.log"
    took=$(cat "$log.seconds" 2>/dev/null || echo 0)
    if [[ " ${failed[*]} " == *" $spec "* ]]; then
      echo "==> $spec FAILED after $(( took / 60 )) min $(( took % 60 )) s; its whole output ($log):"
      cat "$log"
      # CI may keep only the closing lines of this output: repeat what failed, last.
      echo "==> $spec: what failed (from $log)"
      grep -a -E "^(E   |FAILED |ERROR |fatal:|failed:)|short test summary|Error: " "$log" | tail -n 60 | cut -c1-400
    else
      echo "==> $spec passed in $(( took / 60 )) min $(( took % 60 )) s"
      grep -a -E "[0-9]+ passed" "$log" | tail -n 1 | sed "s/^/    /"
    fi
  done
  unset running
  if [ "${#failed[@]}" -gt 0 ]; then
    echo "==> molecule: ${failed[*]} failed"
    exit 1
  fi
done
