"""How much the CLIP embedding changes a clip codec's frame: each container rendered with its own embedding
and with another frame's (frames spread over the set; frame i swaps with frame i + n/2). The mean absolute
pixel difference (grey levels) says whether the UNet uses the embedding at all; the two embeddings'
cosine similarity says how different they were.

    .venv/bin/python scripts/clip_influence.py --data ../shared/data/camvid/val [--limit 8] [--ldm DIR]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from report_json import emit


def main(argv=None) -> int:
    from semcomp_core import codecs
    from semcomp_core.imageio import load_image

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--limit", type=int, default=8)
    p.add_argument("--ldm", default="default", help="renderer folder (its clip/ is the tower)")
    p.add_argument("--out", type=Path)
    a = p.parse_args(argv)
    spec = "clip:bytes=64" + ("" if a.ldm == "default" else f":ldm={a.ldm}:clip={a.ldm}/clip")
    codec = codecs.create(spec)
    files = sorted(a.data.glob("*.png"))
    files = files[:: max(1, len(files) // a.limit)][: a.limit]
    datas = [codec.encode(load_image(f)) for f in files]

    render, seen, swap = codec.render, [], {}

    def spy(*args, embed=None, **kw):              # record the decoded embedding, or replace it
        seen.append(embed)
        return render(*args, embed=swap.get("embed", embed), **kw)
    codec.render = spy
    own = [codec.decode(d).astype(np.float32) for d in datas]
    embeds = list(seen)
    n = len(datas)
    diffs, cosines = [], []
    for i, d in enumerate(datas):
        e, other = embeds[i], embeds[(i + n // 2) % n]
        swap["embed"] = other
        diffs.append(float(np.abs(codec.decode(d).astype(np.float32) - own[i]).mean()))
        cosines.append(float(e @ other / (np.linalg.norm(e) * np.linalg.norm(other) + 1e-9)))
    emit({"frames": n, "spec": spec, "mean_abs_diff_swapped_embedding": float(np.mean(diffs)),
          "embedding_cosine_own_vs_swapped": float(np.mean(cosines))}, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
