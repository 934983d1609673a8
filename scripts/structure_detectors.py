#!/usr/bin/env python3
"""Which edge extractor keeps the original's lines per byte (the structure layer's design measurement).

For each candidate (grid factor, blur sigma, Canny thresholds) on CamVid val: the structure layer's
bytes (coded without the fitted prior, so no candidate is favoured by it), and how many edges of the
original (the fixed detector of ``semcomp_core.metrics.edges``) lie within 2 px + half a grid cell of
a sent edge: over the whole frame, and on Road/Pavement pixels of the ground truth (lane markings,
kerbs: what the seg map cannot carry).

    python scripts/structure_detectors.py --data ../shared/data/camvid [--limit 101]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def recall(image, road, edges, factor):
    import cv2

    from semcomp_core.metrics.edges import TOLERANCE_PX, edge_map

    H, W = image.shape[:2]
    up = cv2.resize(edges.astype(np.uint8), (W, H), interpolation=cv2.INTER_NEAREST) > 0
    ref = edge_map(image)
    dist = cv2.distanceTransform((~up).astype(np.uint8), cv2.DIST_L2, 5)
    near = dist <= TOLERANCE_PX + factor / 2
    return near[ref].mean() if ref.any() else 1.0, near[ref & road].mean() if (ref & road).any() else 1.0


def main() -> int:
    from semcomp_core.datasets.camvid import CamVid
    from semcomp_core.layers import StructureLayer
    from semcomp_core.structure.extract import canny_on_grid

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=101)
    args = ap.parse_args()
    ds = CamVid(args.data, "val")
    n = min(args.limit, len(ds))
    frames = [ds[int(i)] for i in np.linspace(0, len(ds) - 1, n).round().astype(int)]
    road_ids = [CamVid.classes.index(c) for c in ("Road", "Pavement")]
    cands = [(f, s, lo, hi) for f in (2, 4, 8) for s in (1.0,) for lo, hi in ((40, 100), (60, 150), (80, 160))]
    cands += [(4, 0.7, 60, 150), (4, 1.5, 40, 100), (4, 2.0, 30, 80)]
    layer = StructureLayer(prior_id=0)
    rows = []
    for cand in cands:
        b, r, rr = [], [], []
        for fr in frames:
            image, label = fr
            e = canny_on_grid(image, *cand)
            b.append(len(layer.encode(e)))
            a, c = recall(image, np.isin(label, road_ids), e, cand[0])
            r.append(a)
            rr.append(c)
        row = {"factor": cand[0], "sigma": cand[1], "canny": f"{cand[2]}/{cand[3]}", "bytes": float(np.mean(b)),
               "recall": float(np.mean(r)), "road_recall": float(np.mean(rr))}
        row["road_recall_per_100B"] = 100 * row["road_recall"] / row["bytes"]
        rows.append(row)
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
