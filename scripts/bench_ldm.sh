#!/usr/bin/env bash
# BENCHMARKS.md, "Diffusion renderer and the CLIP layer": the same semantic-gan containers rendered by the GAN
# and by the diffusion renderer on CamVid val (101 frames, never trained on), every diffusion mode and the clip
# codec on the first 30, per-step timing, the CLIP quantiser report and the sample grid.
# Usage: scripts/bench_ldm.sh [CAMVID_ROOT] [OUT]
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
root=${1:-../shared/data/camvid}
out=${2:-out/bench_ldm}
bench=".venv/bin/semcomp bench --data $root --dataset camvid --split val --quiet"
$bench --codecs "semantic-gan,semantic-gan:renderer=ldm,semantic-gan:renderer=ldm:guidance=1" --out "$out/renderers"
$bench --limit 30 --codecs "semantic-gan,semantic-gan:renderer=ldm,semantic-gan:renderer=ldm:detail=vae,semantic-gan:renderer=ldm:strength=0.3,semantic-gan:renderer=ldm:sdedit_from=colormap,clip:bytes=64,clip:bytes=64:segmap=on" \
  --out "$out/modes"
.venv/bin/python scripts/ldm_timing.py --out "$out/timing.json"
.venv/bin/python scripts/clip_quantiser_report.py --data "$root/val" --out "$out/clip_quantiser.json"
.venv/bin/python scripts/clip_influence.py --data "$root/val" --limit 8 --out "$out/clip_influence.json"
.venv/bin/python scripts/sample_grid.py --data "$root/val" --limit 3 --scale 1.0 \
  --codecs "semantic-gan,semantic-gan:renderer=ldm,semantic-gan:renderer=ldm:sdedit_from=colormap,clip:bytes=64,bpg:q=51" \
  --out "$out/ldm_samples.png"
