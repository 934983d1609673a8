#!/usr/bin/env python3
"""onnxruntime graph-optimisation levels on the shipped networks at 480x360 (CPU EP, OMP_NUM_THREADS threads).

Exports (or reuses the cached) ONNX files of the default codec, then times 15 runs per level after 3
warm-up runs, on the example inputs of the network IO table. A measurement for BENCHMARKS.md.

    OMP_NUM_THREADS=2 python scripts/ort_optimisation_levels.py
"""
from __future__ import annotations

import time

import numpy as np

LEVELS = ("ORT_DISABLE_ALL", "ORT_ENABLE_BASIC", "ORT_ENABLE_EXTENDED", "ORT_ENABLE_ALL")


def main() -> int:
    import onnxruntime as ort

    from semcomp_core.codecs import build
    from semcomp_core.inference.base import NETWORKS
    from semcomp_core.inference.export import cached_onnx

    codec = build("semantic-gan")
    for kind, model, folder in (("segmenter", codec.segmenter, codec._seg_path),
                                ("generator", codec.generator, codec._gen_path)):
        onnx = cached_onnx(kind, model, folder)
        feeds = NETWORKS[kind].example(model, 360, 480, np.random.default_rng(0))
        for level in LEVELS:
            options = ort.SessionOptions()
            options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
            session = ort.InferenceSession(str(onnx), options, providers=["CPUExecutionProvider"])
            for _ in range(3):
                session.run(None, feeds)
            times = []
            for _ in range(15):
                t0 = time.perf_counter()
                session.run(None, feeds)
                times.append(time.perf_counter() - t0)
            t = np.array(times) * 1e3
            print(f"{kind:10s} {level:20s} mean {t.mean():.1f} ms  p50 {np.median(t):.1f} ms", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
