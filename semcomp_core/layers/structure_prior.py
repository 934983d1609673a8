"""Fit the structure layer's context prior: ``python -m semcomp_core.layers.structure_prior IMAGES_DIR``.

Runs the structure extractor (every level, :data:`semcomp_core.structure.STRUCTURE_LEVELS`) on the
training images and rewrites ``semcomp_core/data/priors/structure_ctx_<name>.json`` with P(1) per
context. A prior that is in use by shipped bitstreams must never be changed: add a new name and
prior id instead (``layers.structure.PRIOR_IDS``).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def fit(images, strength: float = 32.0) -> dict:
    from ..structure import STRUCTURE_LEVELS, extract_structure
    from .structure import N_CONTEXTS, contexts

    n = np.zeros((N_CONTEXTS, 2))
    for im in images:
        for lv in STRUCTURE_LEVELS.values():
            e = extract_structure(im, lv)
            c = contexts(e)
            b = e.reshape(-1)
            n[:, 0] += np.bincount(c[~b], minlength=N_CONTEXTS)
            n[:, 1] += np.bincount(c[b], minlength=N_CONTEXTS)
    p1 = (n[:, 1] + 0.5) / (n.sum(1) + 1.0)
    return {"strength": strength, "p_one": [round(float(v), 5) for v in p1],
            "fitted_on": f"{len(images)} images x {len(STRUCTURE_LEVELS)} levels"}


def main(argv=None) -> None:
    from ..imageio import list_images, load_image

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("images", type=Path)
    ap.add_argument("--name", default="camvid-v1")
    ap.add_argument("--strength", type=float, default=32.0)
    args = ap.parse_args(argv)
    files = list_images(args.images)
    doc = fit([load_image(p) for p in files], args.strength)
    out = Path(__file__).resolve().parents[1] / "data" / "priors" / f"structure_ctx_{args.name}.json"
    out.write_text(json.dumps(doc) + "\n")
    print(f"wrote {out} from {len(files)} images")


if __name__ == "__main__":
    main()
