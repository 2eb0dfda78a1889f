#!/usr/bin/env bash
# Object path benchmark: backs up and restores 10,000 ConfigMaps, 1,000 Secrets and 200 Deployments across
# 20 namespaces on a real etcd + kube-apiserver (pkg/testbed), and reports objects per second for backup and
# restore and the peak resident memory of each. Targets: backup >= 2,000 objects/s, restore >= 500 objects/s.
# PXB_BENCH_SCALE=N multiplies the object counts (memory should stay flat).
set -euo pipefail
cd "$(dirname "$0")/.."

out=$(mktemp)
trap 'rm -f "$out"' EXIT
go test -tags integration -run '^$' -bench '^BenchmarkObjects$' -benchtime 1x -timeout 30m ./pkg/apply/ | tee "$out"

metric() { awk -v unit="$1" '/^BenchmarkObjects/ { for (i = 2; i < NF; i++) if ($(i+1) == unit) print $i }' "$out"; }
backup=$(metric backup-objects/s)
restore=$(metric restore-objects/s)
backup_rss=$(metric backup-peak-RSS-MiB)
restore_rss=$(metric restore-peak-RSS-MiB)
base_rss=$(metric base-RSS-MiB)
if [[ -z "$backup" || -z "$restore" ]]; then
	echo "bench-objects: no result" >&2
	exit 1
fi

verdict() { awk -v v="$1" -v t="$2" 'BEGIN { print (v >= t) ? "meets" : "BELOW" }'; }
printf '\nobject path (%s x 11,200 objects in 20 namespaces)\n' "${PXB_BENCH_SCALE:-1}"
printf '  backup   %8.0f objects/s  (target >= 2000: %s)  peak RSS %6.1f MiB\n' "$backup" "$(verdict "$backup" 2000)" "$backup_rss"
printf '  restore  %8.0f objects/s  (target >=  500: %s)  peak RSS %6.1f MiB\n' "$restore" "$(verdict "$restore" 500)" "$restore_rss"
printf '  (resident before each step: %.1f MiB; the test process also created the objects)\n' "$base_rss"
