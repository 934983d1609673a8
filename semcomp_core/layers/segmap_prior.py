"""Fitting the seg-map layer's rank prior from training label maps.

``python -m semcomp_core.layers.segmap_prior --camvid DIR --name camvid-v1``
rewrites ``semcomp_core/data/priors/segmap_ranks_<name>.json``. A prior that
changes must get a new name and a new fixed id in ``segmap.PRIOR_IDS``:
already-written bitstreams decode with the prior their id names.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from .scale import downscale_labels
from .segmap import N_CONTEXTS, iter_ranks

RANKS = 12


def fit_prior(maps: list[np.ndarray], num_classes: int, strength: float = 64.0, ranks: int = RANKS) -> dict:
    counts = np.zeros((N_CONTEXTS, ranks))
    for m in maps:
        for ctx, r in iter_ranks(m, num_classes):
            counts[ctx, min(r, ranks - 1)] += 1
    probs = (counts + 0.5) / (counts + 0.5).sum(axis=1, keepdims=True)
    return {"strength": strength, "ranks": ranks, "symbols": int(counts.sum()),
            "probabilities": [[round(float(p), 6) for p in row] for row in probs]}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--camvid", required=True, type=Path, help="CamVid root (SegNet layout)")
    ap.add_argument("--name", default="camvid-v1")
    ap.add_argument("--scales", default="4,8,16")
    ap.add_argument("--strength", type=float, default=64.0)
    args = ap.parse_args(argv)
    from PIL import Image
    maps = []
    for p in sorted((args.camvid / "trainannot").glob("*.png")):
        lab = np.asarray(Image.open(p))
        for f in (int(s) for s in args.scales.split(",")):
            maps.append(downscale_labels(lab, f))
    doc = fit_prior(maps, num_classes=12, strength=args.strength)
    doc["name"] = args.name
    doc["source"] = f"CamVid train labels (367 maps, 12 values incl. void), mode-pooled at 1/{args.scales} scale"
    out = Path(__file__).resolve().parents[1] / "data" / "priors" / f"segmap_ranks_{args.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=0) + "\n")
    print(f"wrote {out} ({doc['symbols']} symbols)")


if __name__ == "__main__":
    main()
