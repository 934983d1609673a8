"""How much the CLIP embedding changes a clip codec's frame: each val frame's container rendered with its
own embedding and with another frame's (frames spread over the set, the swap pairs frames half the
sample apart): the mean absolute pixel difference (grey levels) says whether the UNet uses the embedding
at all, beside the two embeddings' cosine similarity.

    .venv/bin/python scripts/clip_influence.py --data ../shared/data/camvid/val [--limit 8] [--ldm DIR]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


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
    frames = [load_image(f) for f in files]
    datas = [codec.encode(f) for f in frames]
    swap = {}
    real_render = codec.render

    def render(labels, factor, thumb, H, W, seed, embed=None, **kw):
        return real_render(labels, factor, thumb, H, W, seed, embed=swap.get("embed", embed), **kw)
    codec.render = render
    own, other, embeds = [], [], []
    for d in datas:                                  # own embedding, and collect them
        captured = {}

        def grab(labels, factor, thumb, H, W, seed, embed=None, **kw):
            captured["e"] = embed
            return real_render(labels, factor, thumb, H, W, seed, embed=embed, **kw)
        codec.render = grab
        own.append(codec.decode(d).astype(np.float32))
        embeds.append(captured["e"])
    codec.render = render
    for i, d in enumerate(datas):
        swap["embed"] = embeds[(i + len(datas) // 2) % len(datas)]
        other.append(codec.decode(d).astype(np.float32))
    rows = {"frames": len(datas), "spec": spec,
            "mean_abs_diff_swapped_embedding": float(np.mean([np.abs(x - y).mean() for x, y in zip(own, other)])),
            "embedding_cosine_own_vs_swapped": float(np.mean([
                np.dot(embeds[i], embeds[(i + len(datas) // 2) % len(datas)]) /
                (np.linalg.norm(embeds[i]) * np.linalg.norm(embeds[(i + len(datas) // 2) % len(datas)]) + 1e-9)
                for i in range(len(datas))]))}
    text = json.dumps(rows, indent=2)
    print(text)
    if a.out:
        a.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
