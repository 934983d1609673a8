"""``semcomp bench`` and ``semcomp demo``: frame sources wired to the BenchRunner."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import UsageError

DEMO_CODECS = ["bpg:q=51", "webp:quality=0", "jpeg:quality=3"]
#: frame rate of a --sequence folder when --fps is not given
DEFAULT_SEQUENCE_FPS = 10.0


def _codecs_from(text: str, device: str, backend: str | None = None):
    """Codecs of a ``--codecs`` list; ``backend`` (--backend) applies to every codec with networks
    whose spec does not name one."""
    from .. import codecs

    out = []
    for spec in codecs.parse_spec_list(text):
        params = dict(spec.params)
        if backend and "backend" in codecs.CODECS.get(spec.name).params:
            params.setdefault("backend", backend)
        out.append(codecs.create(codecs.CodecSpec(spec.name, params), device=device))
    return out


def _frames(args) -> tuple[int, Iterator[tuple[str, np.ndarray, np.ndarray | None]]]:
    """(count, iterator of (name, image, label or None)) for --data / --dataset."""
    from ..imageio import list_images, load_image

    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be at least 1")
    if args.dataset:
        from ..datasets import open_dataset

        ds = open_dataset(args.dataset, args.data, split=args.split, limit=args.limit)

        def gen():
            for i, s in enumerate(ds.samples):
                yield s.name, ds.load_image(i), (ds.load_label(i) if s.label_path else None)
        return len(ds), gen()
    files = list_images(args.data)[: args.limit]

    def gen_files():
        for f in files:
            yield f.stem, load_image(f), None
    return len(files), gen_files()


def semantic_kwargs(seg_spec: str, eval_spec: str, device: str) -> dict:
    """BenchRunner keyword arguments for the segmenter and, beside it, the independent evaluation one
    (the runner checks that their classes agree). Specs as in :func:`semcomp_core.models.segment.open_segmenter`."""
    from ..models.segment import open_segmenter

    seg = open_segmenter(seg_spec, device, auto="default")
    if seg is None:
        return {}
    return {"segmenter": seg, "num_classes": seg.num_classes,
            "eval_segmenter": open_segmenter(eval_spec, device, auto="eval")}


_WARNED = set()


def _usable_label(label, seg):
    """Ground truth only when a segmenter runs and the label ids fit its classes (else warn once)."""
    if seg is None or label is None:
        return None
    valid = label[label != 255]
    if valid.size and int(valid.max()) >= seg.num_classes:
        if "classes" not in _WARNED:
            print(f"semcomp: warning: dataset labels exceed the segmenter's {seg.num_classes} classes; "
                  "semantic metrics use seg(original) as reference only", file=sys.stderr)
            _WARNED.add("classes")
        return None
    return label


def _progress(total: int, quiet: bool, unit: str = "img"):
    from tqdm import tqdm

    return tqdm(total=total, disable=quiet or None, unit=unit, file=sys.stderr, dynamic_ncols=True,
                leave=False)


def run_bench(args) -> int:
    from ..bench.report import format_table
    from ..bench.runner import BenchRunner

    fps = getattr(args, "fps", None)
    if fps is not None and not (0 < fps <= 1000):
        raise UsageError(f"--fps must be in (0, 1000], got {fps}")
    sequence = getattr(args, "sequence", False)
    if sequence and args.bag is not None:
        raise UsageError("--sequence is for --data folders; a --bag is always benchmarked as a stream")
    codecs = _codecs_from(args.codecs, args.device, args.backend)
    seg_kw = semantic_kwargs(args.segmenter, args.eval_segmenter, args.device)
    seg = seg_kw.get("segmenter")
    if args.bag is not None:
        from ..rosbag.bag_bench import run_bag_bench

        rows = run_bag_bench(args.bag, args.topic, codecs, args.out, save_recon=args.save_recon,
                             limit=args.limit, progress=not args.quiet, storage=args.storage, fps=fps, **seg_kw)
    else:
        if args.dataset is None and not Path(args.data).is_dir():
            raise UsageError(f"--data must be a folder of images: {args.data}")
        total, frames = _frames(args)
        if sequence:
            fps = fps or DEFAULT_SEQUENCE_FPS
        runner = BenchRunner(codecs, args.out, save_recon=args.save_recon, stream=sequence,
                             fps=fps if sequence else None, **seg_kw)
        try:
            with _progress(total, args.quiet) as bar:
                for name, image, label in frames:
                    runner.run_frame(name, image, _usable_label(label, seg))
                    bar.update(1)
            rows = runner.finish({"data": str(args.data), "dataset": args.dataset, "split": args.split,
                                  "sequence": sequence, "fps": fps if sequence else None,
                                  "codecs": [c.label() for c in codecs]})
        finally:
            runner.close()
    print(format_table(rows))
    for r in rows:
        if r.get("skipped_frames"):
            print(f"semcomp: warning: {r['codec']}: {r['skipped_frames']} of {r['frames']} frames were sent as "
                  "repeats of the previous frame: the kbps budget is below what the smallest operating point "
                  "needs for this content", file=sys.stderr)
    print(f"results: {args.out}/summary.csv, summary.json, per_image.csv, per_image.json, rate_distortion.png")
    return 0


def side_by_side(panels: list[tuple[str, np.ndarray]], path: Path) -> Path:
    """Write captioned images next to each other as one PNG."""
    from ..bench.report import panel_grid

    return panel_grid([panels], path)


def _sample_label(path: Path) -> np.ndarray | None:
    """Bundled CamVid labels mapped like the CamVid dataset (0..10; void and anything else -> 255)."""
    from ..datasets.camvid import CamVid
    from ..imageio import load_label

    if not path.exists():
        return None
    return CamVid.lut[load_label(path)]


def demo_codecs() -> list[str]:
    """semantic-gan (when its weights are installed), with and without the structure layer, rendered by the
    diffusion renderer and the clip codec, gc and bpg-se (when their weights are), beside the baselines at
    their lowest rates."""
    from ..paths import WEIGHTS_DIR

    def have(*models):
        return all((WEIGHTS_DIR / m / "config.json").exists() for m in models)
    return ((["semantic-gan", "semantic-gan:structure=l"] if have("segmenter", "decoder") else [])
            + (["semantic-gan:renderer=ldm", "clip"] if have("segmenter", "decoder", "ldm/vae", "ldm/unet", "ldm/clip")
               else [])
            + (["gc:level=1"] if have("gc_encoder", "gc_decoder") else [])
            + (["bpg-se:q=51"] if have("segmenter", "bpg_se") else []) + DEMO_CODECS)


def run_demo(args) -> int:
    from ..bench.report import format_table
    from ..bench.runner import BenchRunner
    from ..imageio import list_images, load_image
    from ..paths import SAMPLES_DIR

    codecs = _codecs_from(",".join(demo_codecs()), args.device, args.backend)
    files = list_images(SAMPLES_DIR / "images")
    seg_kw = semantic_kwargs("auto", "auto", args.device)
    seg, ev = seg_kw.get("segmenter"), seg_kw.get("eval_segmenter")
    runner = BenchRunner(codecs, args.out, save_recon=False, **seg_kw)
    panels = []
    try:
        with _progress(len(files), args.quiet) as bar:
            for f in files:
                image = load_image(f)
                label = _sample_label(SAMPLES_DIR / "labels" / f.name) if seg else None
                outcomes = runner.run_frame(f.stem, image, label)
                if not panels:  # original | semantic-gan | + structure | ldm | clip | gc | bpg-se | BPG (lowest rate)
                    panels = [("original", image)] + [
                        (f"{o.row['codec']}: {o.row['bytes']} B", o.reconstruction) for o in outcomes
                        if o.row["codec"].startswith(("semantic-gan", "clip", "gc", "bpg"))]
                bar.update(1)
        rows = runner.finish({"data": "bundled samples", "codecs": [c.label() for c in codecs]})
    finally:
        runner.close()
    png = side_by_side(panels, Path(args.out) / "side_by_side.png")
    print(f"semcomp demo: {len(files)} bundled CamVid frames (480x360), mean per frame"
          + (" (mIoU: shipped segmenter on reconstructions vs ground truth" if seg else "")
          + ("; ind: the independent evaluation U-Net" if ev else "") + (")" if seg else ""))
    print(format_table(rows))
    for r in rows:
        print(f"  {r['codec']}: {r['implementation']}")
    print(f"side-by-side: {png}   tables: {args.out}/summary.csv")
    return 0
