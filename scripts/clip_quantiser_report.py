"""The CLIP layer's quantiser on held-out frames: relative squared error of the product quantiser at each size,
and how much the embeddings of different frames differ (mean cosine similarity), for BENCHMARKS.md.

    .venv/bin/python scripts/clip_quantiser_report.py --data ../shared/data/camvid/val [--clip DIR]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from report_json import emit


def main(argv=None) -> int:
    import numpy as np
    import torch

    from semcomp_core.imageio import list_images, load_image
    from semcomp_core.models import load_model
    from semcomp_core.paths import WEIGHTS_DIR

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--clip", type=Path, default=WEIGHTS_DIR / "ldm" / "clip")
    p.add_argument("--out", type=Path)
    a = p.parse_args(argv)
    tower = load_model(a.clip)
    embs = []
    with torch.no_grad():
        for f in list_images(a.data):
            x = torch.from_numpy(np.ascontiguousarray(load_image(f).transpose(2, 0, 1)))[None]
            embs.append(tower(x)[0])
    e = torch.stack(embs)
    n = e / e.norm(dim=1, keepdim=True)
    sim = n @ n.T
    off = sim[~torch.eye(len(e), dtype=torch.bool)]
    doc = {"frames": len(e), "dim": tower.embed_dim, "mean_cosine_between_frames": round(float(off.mean()), 4),
           "min_cosine_between_frames": round(float(off.min()), 4), "relative_squared_error": {}}
    for b in tower.pq_bytes:
        q = tower.dequantise(tower.quantise(e, b), b)
        doc["relative_squared_error"][b] = round(float(((e - q) ** 2).sum() / (e ** 2).sum()), 4)
    emit(doc, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
