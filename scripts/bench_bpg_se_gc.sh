#!/usr/bin/env bash
# BENCHMARKS.md, "bpg-se and gc": the two codecs beside bpg (q 35..51) and semantic-gan on CamVid val
# (101 frames), BD-rates against bpg, rate-quality curves and the sample grid.
# Usage: scripts/bench_bpg_se_gc.sh [CAMVID_ROOT] [OUT]
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
root=${1:-../shared/data/camvid}
out=${2:-out/bench_bpg_se_gc}
py=.venv/bin/python
.venv/bin/semcomp bench --data "$root" --dataset camvid --split val --codecs "bpg:q=35..51/2,semantic-gan" \
  --out "$out/anchors"
.venv/bin/semcomp bench --data "$root" --dataset camvid --split val --codecs "bpg-se:q=39..51/2,gc:level=0..4" \
  --out "$out/new"
$py scripts/bd_rates.py "$out/anchors/summary.csv" "$out/new/summary.csv" --anchor bpg --test bpg-se --test gc
$py scripts/plot_rd.py "$out/anchors/summary.csv" "$out/new/summary.csv" --out "$out/bpg_se_gc_rd.png"
$py scripts/sample_grid.py --data "$root/val" --limit 3 --codecs "gc:level=1,bpg-se:q=51,bpg:q=51,bpg:q=49" \
  --out "$out/bpg_se_gc_samples.png"
