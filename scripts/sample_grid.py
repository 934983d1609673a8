"""Write a grid of reconstructions for BENCHMARKS.md: one row per frame, one column per codec.

    .venv/bin/python scripts/sample_grid.py --data ../shared/data/camvid/val --limit 4 \
        --codecs "semantic-gan:level=xs,semantic-gan:level=m,semantic-gan:level=l,bpg:q=51" \
        --out docs/benchmarks/semantic_gan_samples.png

Frames are taken evenly spaced from the sorted folder; each panel is captioned with the codec
label and the container bytes of that frame.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    from semcomp_core import codecs
    from semcomp_core.bench.report import panel_grid
    from semcomp_core.imageio import list_images, load_image

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--codecs", required=True)
    p.add_argument("--limit", type=int, default=4)
    p.add_argument("--scale", type=float, default=0.5, help="panel scale (default 0.5)")
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args(argv)
    files = list_images(a.data)
    if not files:
        print(f"no images in {a.data}", file=sys.stderr)
        return 2
    files = [files[i] for i in np.linspace(0, len(files) - 1, min(a.limit, len(files))).round().astype(int)]
    specs = [s for s in a.codecs.split(",") if s]
    made = [codecs.create(s) for s in specs]
    rows = []
    for f in files:
        image = load_image(f)
        panels = [("original", image)]
        for c in made:
            data = c.encode(image)
            panels.append((f"{c.label()}: {len(data)} B", c.decode(data)))
        rows.append(panels)
    panel_grid(rows, a.out, scale=a.scale)
    print(a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
