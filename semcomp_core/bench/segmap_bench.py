"""Seg-map layer size vs the same label maps as optimised PNG (``semcomp segmap-bench``).

PNG reference: the smallest of Pillow's ``optimize=True`` 8-bit grey PNG and,
when the ``pyoxipng`` package is installed, oxipng level 6 with zopfli
deflate and all metadata chunks stripped.
"""
from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import UsageError
from ..imageio import load_label
from ..layers import SegMapLayer, downscale_labels


def optimised_png_size(labels: np.ndarray) -> tuple[int, str]:
    buf = io.BytesIO()
    Image.fromarray(labels, "L").save(buf, "PNG", optimize=True)
    best, how = len(buf.getvalue()), "pillow optimize"
    try:
        import oxipng
    except ImportError:
        return best, how
    opt = oxipng.optimize_from_memory(buf.getvalue(), level=6, strip=oxipng.StripChunks.all(),
                                      deflate=oxipng.Deflaters.zopfli(15))
    if len(opt) < best:
        best, how = len(opt), "oxipng -o6 --zopfli --strip all"
    return best, how


def run_segmap_bench(labels_dir: Path, scale: int, limit: int | None = None) -> dict:
    if not 1 <= scale <= 64:
        raise UsageError(f"--scale must be 1..64, got {scale}")
    files = sorted(Path(labels_dir).glob("*.png")) if Path(labels_dir).is_dir() else []
    if not files:
        raise UsageError(f"no label PNGs in {labels_dir}")
    files = files[:limit]
    layer = SegMapLayer()
    ours, pngs, enc_ms, dec_ms, methods = [], [], [], [], set()
    shape = None
    for f in files:
        m = downscale_labels(load_label(f), scale)
        shape = m.shape
        t0 = time.perf_counter()
        payload = layer.encode(m)
        t1 = time.perf_counter()
        back = layer.decode(payload)
        t2 = time.perf_counter()
        if not np.array_equal(back, m):
            raise RuntimeError(f"seg-map layer round trip failed on {f}")
        size, how = optimised_png_size(m)
        ours.append(len(payload))
        pngs.append(size)
        methods.add(how)
        enc_ms.append((t1 - t0) * 1e3)
        dec_ms.append((t2 - t1) * 1e3)
    mean_ours, mean_png = float(np.mean(ours)), float(np.mean(pngs))
    return {"labels": str(labels_dir), "maps": len(files), "scale": f"1/{scale}", "map_shape": list(shape),
            "segmap_mean_bytes": round(mean_ours, 1), "png_mean_bytes": round(mean_png, 1),
            "reduction_vs_png": round(1 - mean_ours / mean_png, 4), "png_method": sorted(methods),
            "encode_ms": round(float(np.mean(enc_ms)), 2), "decode_ms": round(float(np.mean(dec_ms)), 2),
            "lossless": True}
