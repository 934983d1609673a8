#!/usr/bin/env python3
"""Sample grid of selective coding: original | semcomp with ROI | semcomp without | BPG at similar bytes.

Rows are CamVid val frames, as they are and transformed by the robustness suite
(``semcomp_core.bench.camera_transforms``). The BPG column takes the largest q (fewest bytes) whose
container is not smaller than the ROI container, so BPG never gets fewer bytes than semcomp. Each tile
is labelled with its codec and bytes. Writes a JPEG (quality 88) and a JSON of the numbers.

    python scripts/roi_grid.py --data ../shared/data/camvid --out docs/benchmarks/roi_grid.jpg \
        --rows 0016E5_08070:identity:budget=400 0016E5_08130:cityscapes-1024x512 ...
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np


def tile(image: np.ndarray, text: str, width: int) -> np.ndarray:
    import cv2

    h = round(image.shape[0] * width / image.shape[1])
    out = cv2.resize(image, (width, h), interpolation=cv2.INTER_AREA).copy()
    cv2.rectangle(out, (0, 0), (width, 18), (0, 0, 0), -1)
    cv2.putText(out, text, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def main() -> int:
    from PIL import Image

    from semcomp_core.bench.camera_transforms import TRANSFORMS, frame_rng
    from semcomp_core.bench.matched import bpg_at
    from semcomp_core.codecs import build

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="CamVid root (val/ is read)")
    ap.add_argument("--rows", nargs="+", required=True,
                    help="FRAME:TRANSFORM[:codec options] per row, e.g. 0016E5_08070:identity:budget=400")
    ap.add_argument("--codec", default="semantic-gan", help="the semcomp codec (ROI settings: its defaults)")
    ap.add_argument("--width", type=int, default=320, help="tile width in pixels")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    grid, numbers = [], []
    for row in args.rows:
        name, tname, *opts = row.split(":")
        image = np.asarray(Image.open(args.data / "val" / f"{name}.png").convert("RGB"))
        image, _ = TRANSFORMS[tname](image, None, frame_rng(0, tname, name))
        spec = ":".join([args.codec, *opts])
        with_roi = build(spec)
        data = with_roi.encode(image)
        rep = with_roi.last_roi.as_dict() if with_roi.last_roi else {}
        plain = build(re.sub(r"(^|:)roi=[^:]*", r"\1roi=none", spec) if re.search(r"(^|:)roi=", spec)
                      else spec + ":roi=none")
        plain_data = plain.encode(image)
        q, bpg_data = bpg_at(image, len(data))
        recon = [with_roi.decode(data), plain.decode(plain_data), build("bpg").decode(bpg_data)]
        labels = [f"original {tname} {image.shape[1]}x{image.shape[0]}",
                  f"semcomp ROI {len(data)} B (ROI {rep.get('roi_bytes', 0)} B)",
                  f"semcomp no ROI {len(plain_data)} B", f"BPG q={q} {len(bpg_data)} B"]
        grid.append(np.concatenate([tile(im, t, args.width) for im, t in zip([image] + recon, labels)], 1))
        numbers.append({"frame": name, "transform": tname, "spec": spec, "bytes": len(data), "roi": rep,
                        "bytes_without_roi": len(plain_data), "bpg_q": q, "bpg_bytes": len(bpg_data)})
    width = max(g.shape[1] for g in grid)
    grid = [np.pad(g, ((0, 0), (0, width - g.shape[1]), (0, 0))) for g in grid]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(grid, 0)).save(args.out, quality=88)
    args.out.with_suffix(".json").write_text(json.dumps(numbers, indent=1) + "\n")
    print(json.dumps(numbers))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
