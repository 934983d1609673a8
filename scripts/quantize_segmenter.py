#!/usr/bin/env python3
"""Measure int8 quantisation of the segmenter with onnxruntime (static, QDQ, per-channel weights).

Exports the codec's segmenter to ONNX (the onnxruntime backend's cache), calibrates activations on
CamVid train frames (every 12th, 24 frames: never the frames it is scored on), writes the int8 model
and scores both on CamVid val: mIoU at full label resolution and onnxruntime CPU latency at 480x360.
A measurement for BENCHMARKS.md; the codec's backends run the fp32 export.

    python scripts/quantize_segmenter.py --data ../shared/data/camvid --out runs/quant
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def frame(path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"), np.float32).transpose(2, 0, 1)[None].copy()


def main() -> int:
    import onnxruntime as ort
    import torch
    import torch.nn.functional as F
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process
    from PIL import Image

    from semcomp_core.codecs import build
    from semcomp_core.datasets.camvid import CamVid
    from semcomp_core.inference.export import cached_onnx
    from semcomp_core.metrics import ConfusionAccumulator

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    codec = build("semantic-gan")
    fp32 = cached_onnx("segmenter", codec.segmenter, codec._seg_path)
    calib = sorted((args.data / "train").glob("*.png"))[::12][:24]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.frames = iter(calib)

        def get_next(self):
            path = next(self.frames, None)
            return None if path is None else {"image": frame(path)}

    args.out.mkdir(parents=True, exist_ok=True)
    pre, int8 = args.out / "segmenter_pre.onnx", args.out / "segmenter_int8.onnx"
    quant_pre_process(str(fp32), str(pre))
    quantize_static(str(pre), str(int8), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    vals = sorted((args.data / "val").glob("*.png"))
    result = {}
    preds = {}
    for name, path in (("fp32", fp32), ("int8", int8)):
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        acc, times, labels = ConfusionAccumulator(len(CamVid.classes)), [], []
        for v in vals:
            x = frame(v)
            t0 = time.perf_counter()
            logits = session.run(None, {"image": x})[0]
            times.append(time.perf_counter() - t0)
            up = F.interpolate(torch.from_numpy(logits), size=x.shape[-2:], mode="bilinear", align_corners=False)
            pred = up.argmax(1)[0].numpy()
            labels.append(pred)
            acc.update(pred, CamVid.lut[np.asarray(Image.open(args.data / "valannot" / v.name))])
        preds[name] = labels
        t = np.array(times[3:]) * 1e3
        result[name] = {"miou": acc.miou(), "ms_mean": float(t.mean()), "ms_p50": float(np.median(t)),
                        "ms_p95": float(np.percentile(t, 95)), "bytes": Path(path).stat().st_size}
    result["label_agreement"] = float(np.mean([(a == b).mean() for a, b in zip(preds["fp32"], preds["int8"])]))
    result["threads"] = args.threads
    (args.out / "quantize.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
