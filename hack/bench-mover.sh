#!/usr/bin/env bash
# hack/bench-mover.sh (make bench-mover): pxb's data mover side by side with kopia v0.23.1 (default and
# zstd-fastest) and restic v0.19.1 on generated, seeded data sets, fresh repositories and caches per run.
# Prints a Markdown report; ratios are to kopia's time in the same run.
#
#   BENCH_SETS=A,B,C   data sets (A: 2 GiB in 8,000 files; B: 200,000 small files; C: one 2 GiB file;
#                      tiny: 60 files, to try the benchmark itself)
#   BENCH_RUNS=3       runs per tool (medians)
#   BENCH_TOOLS=kopia,kopia-zstd,restic,pxb
#   BENCH_WORK=/tmp/pxb-bench   data sets (kept between runs), repositories and restores
#   BENCH_OUT=_out/bench-mover.md  where the report is also written
#   BENCH_STORE=dir    dir: directory repositories; s3: buckets on a versitygw S3 gateway the benchmark starts
#   KOPIA=..., RESTIC=..., VERSITYGW=...  prebuilt binaries of the pinned versions (default: hack/tools.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=${PXB_CACHE:-$HOME/.cache/pxb}
sets=${BENCH_SETS:-A,B,C}
runs=${BENCH_RUNS:-3}
tools=${BENCH_TOOLS:-kopia,kopia-zstd,restic,pxb}
work=${BENCH_WORK:-/tmp/pxb-bench}
out=${BENCH_OUT:-_out/bench-mover.md}
store=${BENCH_STORE:-dir}

kopia=${KOPIA:-$(hack/tools.sh kopia)}
restic=${RESTIC:-$(hack/tools.sh restic)}
s3=()
if [ "$store" = s3 ]; then
  s3=(-versitygw "${VERSITYGW:-$(hack/tools.sh versitygw)}")
fi
mkdir -p "$CACHE/bin" "$(dirname "$out")" "$work"
go build -trimpath -o "$CACHE/bin/benchmover" ./hack/benchmover

echo "kopia: $("$kopia" --version 2>&1 | head -1)" >&2
echo "restic: $("$restic" version 2>&1 | head -1)" >&2
"$CACHE/bin/benchmover" -work "$work" -sets "$sets" -runs "$runs" -tools "$tools" \
  -kopia "$kopia" -restic "$restic" "${s3[@]}" | tee "$out"
