#!/usr/bin/env bash
# BENCHMARKS.md, "Diffusion renderer and CLIP layer": the same semantic-gan containers rendered by the GAN
# and by the diffusion renderer (SSGC SDEdit from the colour map; refining the GAN's frame), the clip
# codec, on CamVid val (101 frames, never trained on); per-step timing; the sample grid.
# Usage: scripts/bench_ldm.sh [CAMVID_ROOT] [OUT] [LIMIT]
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
root=${1:-../shared/data/camvid}
out=${2:-out/bench_ldm}
limit=${3:-}
lim=${limit:+--limit $limit}
.venv/bin/semcomp bench --data "$root" --dataset camvid --split val $lim \
  --codecs "semantic-gan,semantic-gan:renderer=ldm,semantic-gan:renderer=ldm:sdedit_from=gan:strength=0.4,clip:bytes=64,clip:bytes=64:segmap=on" \
  --out "$out/renderers"
.venv/bin/python scripts/ldm_timing.py --out "$out/timing.json"
.venv/bin/python scripts/sample_grid.py --data "$root/val" --limit 3 --scale 1.0 \
  --codecs "semantic-gan,semantic-gan:renderer=ldm,semantic-gan:renderer=ldm:sdedit_from=gan:strength=0.4,clip:bytes=64,bpg:q=51" \
  --out "$out/ldm_samples.png"
