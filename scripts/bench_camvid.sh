#!/usr/bin/env bash
# The rate-quality benchmark of BENCHMARKS.md: every codec at several rates on CamVid val (101 frames),
# semantic metrics from the shipped segmenter and the independent evaluation U-Net. Usage: scripts/bench_camvid.sh [CAMVID_ROOT] [OUT]
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
root=${1:-../shared/data/camvid}
out=${2:-out/bench_camvid_val}
exec .venv/bin/semcomp bench --data "$root" --dataset camvid --split val \
  --codecs "semantic-gan:level=0..4,bpg:q=35..51/4,jpeg:quality=2|5|10,webp:quality=0|10" --out "$out"
