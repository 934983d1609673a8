"""The robustness suite (``semcomp robustness``): a labelled dataset under camera-style transforms.

For every transform of :data:`semcomp_core.bench.camera_transforms.TRANSFORMS` and every frame,
the frame and its ground truth are transformed together, then

* (a) the segmenter (by default the codec's shipped encoder) runs on the transformed frame and is
  scored against the transformed ground truth: ``miou_seg_vs_gt``, the *encoder mIoU* under that
  transform -- the number retraining for other cameras has to raise;
* (b) the independent evaluation segmenter, the same way: ``eval_miou_vs_gt`` (reference);
* (a') and (b') the same two on the frame at the semantic codec's working resolution
  (``seg_pixels``, 480x360 pixels: larger frames are area-downscaled to about that many pixels
  before its encoder segments them; the logits are upsampled back to the frame to be scored):
  ``miou_seg_work_vs_gt``, ``eval_miou_work_vs_gt`` -- what ``semantic-gan``'s encoder actually
  sees on a large frame; equal to (a), (b) for frames no larger than that (likewise
  ``miou_recon_work_vs_gt`` and ``eval_miou_recon_work_vs_gt`` for the reconstructions: at
  2048x1024 the shipped segmenters fail at full resolution themselves, so only the ``work``
  columns say what a codec kept there);
* (c) with codecs, each codec's reconstruction of the transformed frame is scored by both
  (``miou_recon_vs_gt``, ``eval_miou_recon_vs_gt``, bytes, PSNR, ...): one :class:`BenchRunner`
  per transform writes its usual files into ``OUT/<transform>/``.

``OUT/robustness.csv`` and ``OUT/robustness.json`` hold one row per transform x (``none`` -- the
segmenters on the transformed original -- and each codec); they are rewritten after every
transform, so an interrupted run keeps what it finished. mIoU is dataset-level (summed confusion
matrices, :mod:`semcomp_core.metrics.segmentation`). Frames are streamed and the runners'
segmentation caches are emptied after every frame, so memory does not grow with the number of
frames. ``noise`` draws from a generator seeded by (seed, transform, frame name): the same frame
gets the same noise whatever ``--limit`` or the other transforms.
"""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np

from ..errors import UsageError
from ..metrics.segmentation import ConfusionAccumulator, confusion_matrix, mean_iou
from .camera_transforms import TRANSFORMS, frame_rng

ROW_FIELDS = ["transform", "codec", "frames", "frames_with_gt", "height", "width", "bytes", "bpp", "psnr",
              "ms_ssim", "edge_f", "miou_seg_vs_gt", "eval_miou_vs_gt", "pixel_accuracy_seg_vs_gt", "miou_seg_work_vs_gt",
              "eval_miou_work_vs_gt", "miou_recon_vs_gt",
              "eval_miou_recon_vs_gt", "miou_recon_work_vs_gt", "eval_miou_recon_work_vs_gt", "preservation",
              "eval_preservation", "miou_recon_vs_orig",
              "eval_miou_recon_vs_orig", "encode_ms", "decode_ms", "roi_bytes", "roi_share", "roi_frames",
              "fallback_frames", "roi_dropped"]
_FROM_RUNNER = ("bytes", "bpp", "psnr", "ms_ssim", "edge_f", "miou_recon_vs_gt", "eval_miou_recon_vs_gt",
                "miou_recon_work_vs_gt", "eval_miou_recon_work_vs_gt", "preservation",
                "eval_preservation", "miou_recon_vs_orig", "eval_miou_recon_vs_orig", "encode_ms", "decode_ms",
                "roi_bytes", "roi_share", "roi_frames", "fallback_frames", "roi_dropped")
TABLE_COLUMNS = [("transform", "transform", "{}"), ("codec", "codec", "{}"), ("size", "size", "{}"),
                 ("bytes", "bytes", "{:.0f}"), ("roi_bytes", "ROI", "{:.0f}"), ("fallback_frames", "fallback", "{}"),
                 ("psnr", "PSNR", "{:.2f}"),
                 ("miou_seg_vs_gt", "mIoU(seg)", "{:.3f}"), ("eval_miou_vs_gt", "mIoU(ind)", "{:.3f}"),
                 ("miou_seg_work_vs_gt", "mIoU(seg@work)", "{:.3f}"),
                 ("eval_miou_work_vs_gt", "mIoU(ind@work)", "{:.3f}"),
                 ("miou_recon_vs_gt", "mIoU(recon)", "{:.3f}"),
                 ("eval_miou_recon_vs_gt", "mIoU(recon,ind)", "{:.3f}"),
                 ("miou_recon_work_vs_gt", "mIoU(recon@work)", "{:.3f}"),
                 ("eval_miou_recon_work_vs_gt", "mIoU(recon,ind@work)", "{:.3f}")]


def _open(spec, device: str, auto: str):
    """A segmenter from a spec string (see :func:`open_segmenter`) or a ready callable with ``num_classes``."""
    if spec is None or isinstance(spec, (str, Path)):
        from ..models.segment import open_segmenter

        return open_segmenter(str(spec or "none"), device, auto=auto)
    if not hasattr(spec, "num_classes"):
        raise UsageError("a segmenter callable needs a num_classes attribute")
    return spec


def _codec_list(codecs, device: str, backend: str | None = None) -> list:
    if codecs is None:
        return []
    if isinstance(codecs, str):
        if codecs.strip() in ("", "none"):
            return []
        from ..cli.bench_cmd import _codecs_from

        return _codecs_from(codecs, device, backend)
    return list(codecs)


def _finite(x):
    return float(x) if x is not None and np.isfinite(x) else None


def default_work_pixels() -> int:
    """The semantic codec's default working resolution of its segmenter, in pixels (``seg_pixels``)."""
    from ..codecs.semantic import SemanticGanCodec

    return int(SemanticGanCodec.params["seg_pixels"].default)


def labels_at_work(model, image: np.ndarray, pixels: int) -> np.ndarray | None:
    """(H, W) labels of ``model`` run on ``image`` area-downscaled to about ``pixels`` pixels, as the
    semantic codec's encoder does (logits bilinearly upsampled back to H x W for shipped models,
    labels nearest-upsampled for plain callables); None when the frame is not larger than that."""
    from ..codecs.semantic import working_resolution

    work = working_resolution(image, pixels)
    if work is image:
        return None
    H, W = image.shape[:2]
    if hasattr(model, "model") and hasattr(model, "device"):
        import torch

        from ..models.segment import logits_for

        with torch.inference_mode():
            logits = logits_for(model.model, work, model.device, size=(H, W))
            return logits.argmax(1)[0].to(torch.uint8).cpu().numpy()
    import cv2

    return cv2.resize(np.ascontiguousarray(np.asarray(model(work)), dtype=np.uint8), (W, H),
                      interpolation=cv2.INTER_NEAREST_EXACT)


class _Accumulators:
    """Segmenter and evaluation segmenter on the transformed originals vs the transformed ground truth,
    at full resolution and at the codec's working resolution."""

    def __init__(self, seg, ev) -> None:
        def make(m):
            return ConfusionAccumulator(m.num_classes) if m is not None else None
        self.seg, self.ev, self.seg_work, self.ev_work = make(seg), make(ev), make(seg), make(ev)

    def row(self) -> dict:
        out = {"frames_with_gt": self.seg.count if self.seg is not None else 0}
        for key, acc in (("miou_seg_vs_gt", self.seg), ("eval_miou_vs_gt", self.ev),
                         ("miou_seg_work_vs_gt", self.seg_work), ("eval_miou_work_vs_gt", self.ev_work)):
            out[key] = _finite(acc.miou()) if acc is not None and acc.count else None
        out["pixel_accuracy_seg_vs_gt"] = (_finite(self.seg.pixel_accuracy())
                                           if self.seg is not None and self.seg.count else None)
        return out


class _ReconAtWork:
    """Per codec: both segmenters on the reconstructions at the working resolution vs the ground truth
    (summed confusion matrices). Frames not larger than the working resolution take the runner's own
    full-resolution matrices (the same numbers, not computed twice)."""

    def __init__(self, runner, seg, ev, pixels: int) -> None:
        self.runner, self.models, self.pixels = runner, (seg, ev), pixels
        self.sums = [[None, None] for _ in runner.stats]

    def _runner_matrices(self) -> list[list]:
        return [[None if acc is None else acc.recon_vs_gt.matrix for acc in (st.semantic, st.eval_semantic)]
                for st in self.runner.stats]

    def before(self) -> None:
        self._before = self._runner_matrices()

    def after(self, outcomes, label: np.ndarray | None) -> None:
        if label is None:
            return
        now = self._runner_matrices()
        for i, outcome in enumerate(outcomes):
            for j, model in enumerate(self.models):
                if model is None:
                    continue
                at_work = labels_at_work(model, outcome.reconstruction, self.pixels)
                if at_work is None:
                    m = now[i][j] - self._before[i][j]
                else:
                    m = confusion_matrix(at_work, label, model.num_classes)
                self.sums[i][j] = m if self.sums[i][j] is None else self.sums[i][j] + m

    def values(self, i: int) -> dict:
        return {key: None if self.sums[i][j] is None else _finite(mean_iou(self.sums[i][j]))
                for j, key in enumerate(("miou_recon_work_vs_gt", "eval_miou_recon_work_vs_gt"))}


def _labels_of(runner, which: str, model, image: np.ndarray, name: str) -> np.ndarray:
    """seg(image): from the runner's cache when it already segmented this frame, else by running ``model``."""
    if runner is not None and runner.stats and getattr(runner.stats[0], which) is not None:
        return getattr(runner.stats[0], which).cache.get(image, name)
    return np.asarray(model(image))


def _clear_caches(runner) -> None:
    if runner is not None and runner.stats:
        for acc in (runner.stats[0].semantic, runner.stats[0].eval_semantic):
            if acc is not None:
                acc.cache.clear()


def _row(base: dict, codec: str, summary: dict) -> dict:
    """One result row with every ROW_FIELDS key (None where it does not apply)."""
    r = {**base, "codec": codec, **{k: summary.get(k) for k in _FROM_RUNNER}}
    return {k: r.get(k) for k in ROW_FIELDS}


def write_results(rows: list[dict], out_dir: Path, meta: dict) -> None:
    """``robustness.csv`` (ROW_FIELDS) and ``robustness.json`` ({"meta", "rows"}), written atomically."""
    out_dir = Path(out_dir)
    tmp = out_dir / ".robustness.csv.tmp"
    with open(tmp, "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=ROW_FIELDS, extrasaction="ignore")
        wr.writeheader()
        wr.writerows(rows)
    tmp.replace(out_dir / "robustness.csv")
    tmp = out_dir / ".robustness.json.tmp"
    tmp.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    tmp.replace(out_dir / "robustness.json")


def run_robustness(root, split: str = "val", transforms=None, codecs=None, out_dir="out/robustness", *,
                   dataset: str = "camvid", limit: int | None = None, segmenter="auto", eval_segmenter="auto",
                   device: str = "cpu", backend: str | None = None, seed: int = 0,
                   work_pixels: int | None = None, progress: bool = False) -> list[dict]:
    """Run the suite; returns the rows written to ``OUT/robustness.csv``/``.json``.

    ``transforms``: names (default: all); ``codecs``: Codec instances or a ``--codecs`` spec string
    (``none``/empty: segmenters only); ``segmenter``/``eval_segmenter``: specs for
    :func:`semcomp_core.models.segment.open_segmenter` (``auto``, ``none``, ``default``, ``eval``,
    a model folder) or callables with ``num_classes``; ``work_pixels``: the working resolution of
    the ``*_work_*`` columns (default: the semantic codec's ``seg_pixels`` default, 480x360).
    """
    from ..cli.bench_cmd import _progress, _usable_label
    from ..datasets import open_dataset
    from .runner import BenchRunner

    names = list(TRANSFORMS) if transforms is None else list(transforms)
    unknown = [n for n in names if n not in TRANSFORMS]
    if unknown:
        raise UsageError(f"unknown transform {', '.join(map(repr, unknown))}; valid: {', '.join(TRANSFORMS)}")
    if limit is not None and limit < 1:
        raise UsageError("--limit must be at least 1")
    ds = open_dataset(dataset, root, split=split, limit=limit)
    codec_list = _codec_list(codecs, device, backend)
    seg = _open(segmenter, device, "default")
    ev = _open(eval_segmenter, device, "eval") if seg is not None else None
    if seg is not None and ev is not None and ev.num_classes != seg.num_classes:
        raise UsageError(f"evaluation segmenter has {ev.num_classes} classes, the segmenter {seg.num_classes}")
    seg_kw = {} if seg is None else {"segmenter": seg, "num_classes": seg.num_classes, "eval_segmenter": ev}
    work_pixels = default_work_pixels() if work_pixels is None else int(work_pixels)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {"dataset": dataset, "data": str(root), "split": split, "limit": limit, "frames": len(ds), "seed": seed,
            "work_pixels": work_pixels,
            "transforms": [TRANSFORMS[n].describe() if hasattr(TRANSFORMS[n], "describe") else {"name": n}
                           for n in names],
            "codecs": [c.label() for c in codec_list],
            "segmenter": str(getattr(seg, "path", seg)) if seg is not None else None,
            "eval_segmenter": str(getattr(ev, "path", ev)) if ev is not None else None,
            "columns": {"miou_seg_vs_gt": "segmenter on the transformed original vs the transformed ground truth",
                        "eval_miou_vs_gt": "independent evaluation segmenter, the same",
                        "miou_seg_work_vs_gt": "segmenter on the transformed original at the codec's working "
                                               "resolution (work_pixels), upsampled back",
                        "eval_miou_work_vs_gt": "evaluation segmenter, the same",
                        "miou_recon_vs_gt": "segmenter on the codec's reconstruction of the transformed frame",
                        "eval_miou_recon_vs_gt": "evaluation segmenter on that reconstruction"}}
    rows: list[dict] = []
    warmed: set[tuple[int, int]] = set()
    with _progress(len(names) * len(ds), not progress) as bar:
        for tname in names:
            transform = TRANSFORMS[tname]
            acc = _Accumulators(seg, ev)
            runner = None
            size = None
            try:
                for i, sample in enumerate(ds.samples):
                    bar.set_description(tname)
                    label = ds.load_label(i) if sample.label_path else None
                    image, label = transform(ds.load_image(i), label, frame_rng(seed, tname, sample.name))
                    label = _usable_label(label, seg)
                    if size is None:
                        size = image.shape[:2]
                    if codec_list:
                        if runner is None:   # one warm-up per frame size: models load once for all transforms
                            runner = BenchRunner(codec_list, out_dir / tname, extra_fields=["transform"],
                                                 warmup=tuple(image.shape[:2]) not in warmed, **seg_kw)
                            warmed.add(tuple(image.shape[:2]))
                            recon_work = _ReconAtWork(runner, seg, ev, work_pixels)
                        recon_work.before()
                        outcomes = runner.run_frame(sample.name, image, label, extra={"transform": tname})
                        recon_work.after(outcomes, label if seg is not None else None)
                    if label is not None and seg is not None:
                        for which, model, full, work in (("semantic", seg, acc.seg, acc.seg_work),
                                                         ("eval_semantic", ev, acc.ev, acc.ev_work)):
                            if model is None:
                                continue
                            labels = _labels_of(runner, which, model, image, sample.name)
                            full.update(labels, label)
                            at_work = labels_at_work(model, image, work_pixels)
                            work.update(labels if at_work is None else at_work, label)
                    _clear_caches(runner)
                    bar.update(1)
                base = {"transform": tname, "frames": len(ds), "height": size[0], "width": size[1], **acc.row()}
                rows.append(_row(base, "none", {}))
                if runner is not None:
                    summary = runner.finish({"transform": meta["transforms"][names.index(tname)], "data": str(root),
                                             "dataset": dataset, "split": split, "seed": seed,
                                             "codecs": meta["codecs"]})
                    for k, s in enumerate(summary):
                        rows.append(_row(base, s["codec"], {**s, **recon_work.values(k)}))
            finally:
                if runner is not None:
                    runner.close()
            write_results(rows, out_dir, meta)
    return rows


def format_rows(rows: list[dict]) -> str:
    """The printed table: one line per transform x codec."""
    from .report import format_table

    shown = [{**r, "size": f"{r['width']}x{r['height']}"} for r in rows]
    return format_table(shown, TABLE_COLUMNS)


def print_rows(rows: list[dict], out_dir: Path, file=None) -> None:
    file = file or sys.stdout
    print(format_rows(rows), file=file)
    print(f"results: {out_dir}/robustness.csv, robustness.json, <transform>/summary.csv", file=file)
