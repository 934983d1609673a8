#!/usr/bin/env python3
"""onnxruntime graph-optimisation levels on the shipped networks at 480x360 (CPU EP, OMP_NUM_THREADS threads).

Exports (or reuses the cached) ONNX files of the default codec, then times 15 runs per level after 3
warm-up runs, on the example inputs of the network IO table. A measurement for BENCHMARKS.md."""
import numpy as np, time, onnxruntime as ort
from semcomp_core.codecs import build
from semcomp_core.inference.export import cached_onnx
from semcomp_core.inference.base import NETWORKS
c = build('semantic-gan')
res = {}
for kind, model, path in (("segmenter", c.segmenter, c._seg_path), ("generator", c.generator, c._gen_path)):
    onnx = cached_onnx(kind, model, path)
    feeds = NETWORKS[kind].example(model, 360, 480, np.random.default_rng(0))
    for lvl in ("ORT_DISABLE_ALL", "ORT_ENABLE_BASIC", "ORT_ENABLE_EXTENDED", "ORT_ENABLE_ALL"):
        o = ort.SessionOptions(); o.intra_op_num_threads = 0  # OMP_NUM_THREADS
        o.graph_optimization_level = getattr(ort.GraphOptimizationLevel, lvl)
        s = ort.InferenceSession(str(onnx), o, providers=["CPUExecutionProvider"])
        for _ in range(3): s.run(None, feeds)
        t = []
        for _ in range(15):
            t0 = time.perf_counter(); s.run(None, feeds); t.append(time.perf_counter() - t0)
        res[(kind, lvl)] = (1e3 * np.mean(t), 1e3 * np.median(t))
        print(kind, lvl, "mean %.1f p50 %.1f ms" % res[(kind, lvl)], flush=True)
