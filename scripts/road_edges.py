#!/usr/bin/env python3
"""Edge preservation where the seg map is blind: the edge F-score restricted to road-surface pixels.

CamVid folds lane markings and kerbs into Road / Pavement, so a finer seg map cannot carry them; the
structure layer can. For each codec spec: encode/decode CamVid val frames and score the fixed edge
metric (``semcomp_core.metrics.edges.edge_f_score`` with a mask) only on ground-truth Road and
Pavement pixels (both edge maps masked; matching within 2 px as usual), next to the whole-frame figure.

    python scripts/road_edges.py --data ../shared/data/camvid --limit 101 \
        --codecs "semantic-gan:roi=none,semantic-gan:roi=none:structure=l,semantic-gan:roi=none:level=xl,bpg:q=51"
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def main() -> int:
    from semcomp_core.codecs import build
    from semcomp_core.datasets.camvid import CamVid
    from semcomp_core.metrics.edges import edge_f_score

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=101)
    ap.add_argument("--codecs", required=True)
    args = ap.parse_args()
    ds = CamVid(args.data, "val")
    idx = np.linspace(0, len(ds) - 1, min(args.limit, len(ds))).round().astype(int)
    road = [CamVid.classes.index(c) for c in ("Road", "Pavement")]
    for spec in args.codecs.split(","):
        codec = build(spec)
        rows, whole, sizes = [], [], []
        for i in idx:
            image, label = ds[int(i)]
            data = codec.encode(image)
            recon = codec.decode(data)
            sizes.append(len(data))
            whole.append(edge_f_score(image, recon).f)
            s = edge_f_score(image, recon, mask=np.isin(label, road))
            if s.edges_original:                       # frames without road edges say nothing here
                rows.append((s.precision, s.recall, s.f))
        p, r, f = np.mean(rows, 0)
        print(json.dumps({"codec": spec, "bytes": float(np.mean(sizes)), "edge_f": float(np.mean(whole)),
                          "road_edge_precision": float(p), "road_edge_recall": float(r), "road_edge_f": float(f)}),
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
