"""Time the diffusion renderer's parts on this machine: one UNet call (one DDIM step), the VAE encoder and
decoder, at 480x360 (and optionally other sizes), median of N runs after a warm-up; JSON to stdout/--out.

    .venv/bin/python scripts/ldm_timing.py [--ldm default] [--sizes 360x480] [--runs 5] [--backend torch]
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

from report_json import emit


def main(argv=None) -> int:
    import torch

    from semcomp_core.codecs.semantic import ldm_dir
    from semcomp_core.inference.base import NETWORKS
    from semcomp_core.renderers.ldm import LdmRenderer
    from semcomp_core.training.data import parse_size

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ldm", default="default")
    p.add_argument("--sizes", default="360x480")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--backend", default="torch")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path)
    a = p.parse_args(argv)
    r = LdmRenderer(ldm_dir(a.ldm), a.device, a.backend)
    rows = []
    for size in a.sizes.split(","):
        h, w = parse_size(size)
        for kind, model in (("vae-encoder", r.vae), ("ldm-unet", r.unet), ("vae-decoder", r.vae)):
            feeds = NETWORKS[kind].example(model, h, w, np.random.default_rng(0))
            run = r.runner(kind)
            run(**feeds)
            times = []
            for _ in range(a.runs):
                t0 = time.perf_counter()
                run(**feeds)
                times.append((time.perf_counter() - t0) * 1e3)
            rows.append({"network": kind, "height": h, "width": w, "ms_median": round(float(np.median(times)), 1),
                         "provider": run.provider})
    doc = {"rows": rows, "threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine()}
    emit(doc, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
