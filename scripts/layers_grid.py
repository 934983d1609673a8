#!/usr/bin/env python3
"""Sample grid of scalable decoding: original | semantic only | + structure | + signal | BPG at similar bytes.

Each row is ONE container of a CamVid val frame with all three layer groups (``semantic-gan`` with
``structure=`` and the ROI layer as the signal layer -- ``--signal``: ``roi=`` sources, default
people, cyclists, signs and what the segmenter cannot read; ``full`` = a low-quality base layer of
the whole frame -- at ``budget=`` bytes), decoded three times: cut after the colour map, cut after
the structure layer, whole
(``semcomp_core.bitstream.truncate``). The BPG column takes the largest q whose container is not
smaller than the whole one. Tiles are captioned with the bytes that reached the decoder. Writes a
JPEG and a JSON of the numbers.

    python scripts/layers_grid.py --data ../shared/data/camvid --out docs/benchmarks/layers_grid.jpg \
        --frames 0016E5_08009 0016E5_08059 0016E5_08149 --structure l --budget 900
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def main() -> int:
    from semcomp_core.bench.matched import bpg_at
    from semcomp_core.bench.report import panel_grid
    from semcomp_core.bitstream import LayerId, truncate, unpack
    from semcomp_core.codecs import build
    from semcomp_core.imageio import load_image
    from semcomp_core.metrics.edges import edge_f_score

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="CamVid root (val/ is read)")
    ap.add_argument("--frames", nargs="+", required=True)
    ap.add_argument("--structure", default="m", help="structure level (s, m, l)")
    ap.add_argument("--budget", type=int, default=900, help="bytes per frame for all layers")
    ap.add_argument("--signal", default="classes+uncertain", help="roi= sources of the signal layer")
    ap.add_argument("--scale", type=float, default=0.6)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    rows, numbers = [], []
    for name in args.frames:
        image = load_image(args.data / "val" / f"{name}.png")
        codec = build(f"semantic-gan:structure={args.structure}:roi={args.signal}:budget={args.budget}")
        data = codec.encode(image)
        ids = unpack(data).layer_ids
        cuts = {"semantic only": truncate(data, keep_layers=ids.index(LayerId.COLORMAP) + 1),
                "+ structure": truncate(data, keep_layers=ids.index(LayerId.STRUCTURE) + 1), "+ signal": data}
        panels, row = [("original", image)], {"frame": name}
        for label, part in cuts.items():
            out = codec.decode(part)
            panels.append((f"{label}: {len(part)} B  edgeF {edge_f_score(image, out).f:.2f}", out))
            row[label] = {"bytes": len(part), "edge_f": edge_f_score(image, out).f}
        q, bpg = bpg_at(image, len(data))
        out = build("bpg").decode(bpg)
        panels.append((f"BPG q={q}: {len(bpg)} B  edgeF {edge_f_score(image, out).f:.2f}", out))
        row["bpg"] = {"q": q, "bytes": len(bpg), "edge_f": edge_f_score(image, out).f}
        rows.append(panels)
        numbers.append(row)
    png = panel_grid(rows, args.out.with_suffix(".png"), scale=args.scale)
    from PIL import Image

    Image.open(png).save(args.out, quality=88)
    if png != args.out:
        png.unlink()
    args.out.with_suffix(".json").write_text(json.dumps(numbers, indent=1) + "\n")
    print(json.dumps(numbers))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
