"""``semcomp robustness``: a dataset under camera-style transforms (:mod:`semcomp_core.bench.robustness`)."""
from __future__ import annotations

import argparse
from pathlib import Path


def add_robustness_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("robustness",
                       help="mIoU of the segmenters (and codecs) on a labelled dataset under camera-style transforms")
    p.add_argument("--data", type=Path, required=True, help="dataset root, e.g. ../shared/data/camvid")
    p.add_argument("--dataset", default="camvid", help="camvid (default), cityscapes, ade20k or cocostuff")
    p.add_argument("--split", default="val", help="dataset split (default val)")
    p.add_argument("--transforms", default="all",
                   help="all (default) or comma-separated names: identity, cityscapes-1024x512, "
                        "cityscapes-2048x1024, narrow-fov, color-cast-warm, color-cast-cool, dark-gamma, blur, "
                        "noise, jpeg-q30, vignetting")
    p.add_argument("--codecs", default="semantic-gan",
                   help="codec specs scored on the transformed frames, comma-separated (default semantic-gan); "
                        "none: the segmenters only")
    p.add_argument("--limit", type=int, help="use the first N frames of the split")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise transform (default 0)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--segmenter", default="auto",
                   help="segmenter scored on the transformed frames (the encoder mIoU): auto (shipped), "
                        "a model folder, or none")
    p.add_argument("--eval-segmenter", default="auto",
                   help="independent evaluation segmenter: auto (the shipped U-Net), a model folder, or none")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--backend", choices=("torch", "onnxruntime", "tensorrt"),
                   help="where the codecs' networks run (default: the codec's, torch)")
    return p


def run_robustness_cmd(args) -> int:
    from ..bench.camera_transforms import parse_transforms
    from ..bench.robustness import print_rows, run_robustness
    from ..errors import UsageError

    names = parse_transforms(args.transforms)
    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be at least 1")
    rows = run_robustness(args.data, args.split, names, args.codecs, args.out, dataset=args.dataset,
                          limit=args.limit, segmenter=args.segmenter, eval_segmenter=args.eval_segmenter,
                          device=args.device, backend=args.backend, seed=args.seed, progress=not args.quiet)
    print_rows(rows, args.out)
    return 0
