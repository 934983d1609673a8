#!/usr/bin/env python3
"""Write a folder of frames (sorted by name) as a near-lossless H.264 video, e.g. to try
``semcomp make-bag --video`` on a recorded sequence:

    .venv/bin/python scripts/frames_to_video.py FRAMES_DIR OUT.mp4 --fps 15 [--glob '0016E5_*.png'] [--limit N]
"""
from __future__ import annotations

import argparse
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("frames", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--fps", type=float, default=10.0)
    ap.add_argument("--glob", default="*.png")
    ap.add_argument("--limit", type=int)
    args = ap.parse_args()
    files = sorted(args.frames.glob(args.glob))[: args.limit]
    if not files:
        raise SystemExit(f"no frames matching {args.glob} in {args.frames}")
    with av.open(str(args.out), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(args.fps).limit_denominator(1000))
        first = np.asarray(Image.open(files[0]).convert("RGB"))
        stream.height, stream.width = first.shape[:2]
        stream.pix_fmt = "yuv444p"
        stream.options = {"crf": "8", "preset": "medium"}
        for f in files:
            frame = av.VideoFrame.from_ndarray(np.asarray(Image.open(f).convert("RGB")), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    print(f"{len(files)} frames -> {args.out} at {args.fps} fps")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
