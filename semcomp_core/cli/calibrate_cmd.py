"""``semcomp calibrate``: fit and report the segmenter's confidence calibration on a labelled split.

One pass runs the segmenter on every frame and keeps its raw logits (or recomputes them later
when they would take more than :data:`CACHE_BYTES`) and at most ``--pixels`` random labelled
pixels per frame, at two resolutions:

* ``pixels``: the logits resampled to the frame (bilinear, as :class:`semcomp_core.models.segment.Segmenter`
  labels it) against the ground truth;
* ``grid``: the logits pooled to the codec's map grid (``SemanticGanCodec.grid_labels``; the
  factor is ``--grid`` for frames up to 480x360, larger frames get it doubled as the codec does)
  against the ground truth mode-pooled onto the same grid (``downscale_labels``; cells whose
  most frequent label is void are skipped).

A temperature is fitted per resolution on the sampled pixels (:func:`fit_temperature`). A second
pass scores *every* labelled pixel / cell at T = 1 and at the fitted T (ECE, Brier, accuracy,
reliability bins, low-confidence shares, for each confidence kind) and, with ``--folds K``,
out of sample: K contiguous blocks of frames, each scored with the temperature fitted on the
other frames. Writes ``OUT/calibration.json`` (:class:`Calibration`) and ``OUT/reliability.png``
and prints two tables.
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from ..errors import UsageError

#: raw logits kept in memory between the passes (beyond: the segmenter runs again in pass 2)
CACHE_BYTES = 512 << 20
RESOLUTIONS = ("pixels", "grid")
#: confidence kinds (semcomp_core.models.confidence.KINDS; not imported here: the models package imports torch)
KINDS = ("maxprob", "margin", "entropy")


def add_calibrate_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("calibrate", help="fit the segmenter's confidence temperature on a labelled split and "
                                         "report its calibration (ECE, Brier, reliability plot)")
    p.add_argument("--data", type=Path, required=True, help="dataset root, e.g. ../shared/data/camvid")
    p.add_argument("--dataset", default="camvid", help="camvid (default), cityscapes, ade20k or cocostuff")
    p.add_argument("--split", default="val", help="dataset split (default val)")
    p.add_argument("--segmenter", default="default",
                   help="model folder, 'default' (the codec's shipped segmenter) or 'eval' (the shipped U-Net)")
    p.add_argument("--limit", type=int, help="use the first N frames of the split")
    p.add_argument("--grid", type=int, default=8,
                   help="map factor of the coarse grid (4, 8, 16, 32 or 64; default 8: level m/l)")
    p.add_argument("--kind", default="maxprob", choices=KINDS,  # = semcomp_core.models.confidence.KINDS
                   help="confidence kind of the headline numbers and the plot (default maxprob: the one whose "
                        "value estimates P(label right)); the tables show every kind")
    p.add_argument("--bins", type=int, default=15, help="reliability bins (default 15)")
    p.add_argument("--pixels", type=int, default=20000,
                   help="random labelled pixels per frame for the temperature fit (default 20000)")
    p.add_argument("--folds", type=int, default=2,
                   help="out-of-sample check: K contiguous blocks of frames, each scored with the temperature "
                        "fitted on the others (default 2; 0 = off)")
    p.add_argument("--seed", type=int, default=0, help="seed of the pixel sampling (default 0)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _segmenter_dir(spec: str) -> Path:
    from ..models.segment import SHIPPED_SEGMENTERS

    folder = SHIPPED_SEGMENTERS[spec]() if spec in SHIPPED_SEGMENTERS else Path(spec)
    if not (folder / "config.json").is_file():
        raise UsageError(f"no segmenter model at {folder} (config.json missing)")
    return folder


def _folds(n: int, k: int) -> list[tuple[int, int]]:
    """K contiguous blocks [start, stop) of n frames (the first ones shorter when n % k)."""
    return [(j * n // k, (j + 1) * n // k) for j in range(k)]


def run_calibration(data, dataset: str = "camvid", split: str = "val", segmenter: str = "default",
                    limit: int | None = None, grid: int = 8, kind: str = "maxprob", bins: int = 15,
                    pixels: int = 20000, folds: int = 2, seed: int = 0, device: str = "cpu",
                    progress: bool = False, command: str | None = None):
    """Fit and measure; returns ``(Calibration, results)`` where ``results[res][tag][kind]`` are
    :func:`reliability` dicts (``res``: pixels/grid; ``tag``: before, after, cv, foldJ_before,
    foldJ_after)."""
    import torch

    from ..codecs.semantic import SemanticGanCodec
    from ..codecs.semantic_levels import MAP_FACTORS, grid_factor
    from ..datasets import open_dataset
    from ..devices import check_device
    from ..layers import downscale_labels, map_shape
    from ..models.confidence import (KINDS, Calibration, ReliabilityAccumulator, confidences_from_probs,
                                     sample_pixels, softmax, temperature_from_samples)
    from ..models.io import load_model
    from ..models.segment import logits_for
    from .bench_cmd import _progress

    if grid not in MAP_FACTORS:
        raise UsageError(f"--grid must be one of {', '.join(map(str, MAP_FACTORS))}, got {grid}")
    if limit is not None and limit < 1:
        raise UsageError("--limit must be at least 1")
    if not 1 <= bins <= 1000:
        raise UsageError(f"--bins must be in 1..1000, got {bins}")
    if pixels < 1:
        raise UsageError(f"--pixels must be at least 1, got {pixels}")
    if folds < 0 or folds == 1:
        raise UsageError(f"--folds must be 0 (off) or at least 2, got {folds}")
    check_device(device)
    folder = _segmenter_dir(segmenter)
    ds = open_dataset(dataset, data, split, limit=limit)
    n = len(ds)
    if folds and n < folds:
        raise UsageError(f"--folds {folds} needs at least {folds} frames, the split has {n}")
    model = load_model(folder, device)
    k = model.num_classes

    def frame(i):
        image, label = ds[i]
        if label is None:
            raise UsageError(f"{dataset} {split}: frame {ds.samples[i].name} has no label file")
        valid = label[label != 255]
        if valid.size and int(valid.max()) >= k:
            raise UsageError(f"{dataset} labels go up to {int(valid.max())}, the segmenter has {k} classes")
        return image, label

    def raw_logits(image):
        with torch.inference_mode():
            return logits_for(model, image, device).float().cpu()

    def views(raw, label):
        """{res: (logits (K, h, w), labels (h, w))} of one frame."""
        H, W = label.shape
        f = grid_factor(grid, H, W)
        full = SemanticGanCodec.grid_labels(raw, (H, W))[1]
        coarse = SemanticGanCodec.grid_labels(raw, map_shape(H, W, f))[1]
        return {"pixels": (full, label), "grid": (coarse, downscale_labels(label, f))}, f

    # -- pass 1: raw logits + sampled pixels per frame --------------------------------------------
    t0 = time.perf_counter()
    cache: list = []
    cached = 0
    samples = {r: [] for r in RESOLUTIONS}
    factors: set[int] = set()
    with _progress(2 * n, not progress, unit="frame") as bar:
        for i in range(n):
            image, label = frame(i)
            raw = raw_logits(image)
            size = raw.numel() * 4
            if cached + size <= CACHE_BYTES:
                cache.append(raw)
                cached += size
            else:
                cache.append(None)
            v, f = views(raw, label)
            factors.add(f)
            rng = np.random.default_rng([seed, i])
            for r in RESOLUTIONS:
                samples[r].append(sample_pixels(*v[r], pixels, rng))
            bar.update()

        def fit(res, frames):
            z = [samples[res][i][0] for i in frames]
            y = [samples[res][i][1] for i in frames]
            if sum(len(a) for a in y) == 0:
                raise UsageError(f"no labelled {'cells' if res == 'grid' else 'pixels'} to fit a temperature on")
            return temperature_from_samples(np.concatenate(z), np.concatenate(y))

        temps = {r: fit(r, range(n)) for r in RESOLUTIONS}
        blocks = _folds(n, folds) if folds else []
        fold_temps = [{r: fit(r, [i for i in range(n) if not a <= i < b]) for r in RESOLUTIONS} for a, b in blocks]
        fold_of = {i: j for j, (a, b) in enumerate(blocks) for i in range(a, b)}

        # -- pass 2: every labelled pixel / cell --------------------------------------------------
        tags = ["before", "after"] + (["cv"] + [f"fold{j}_{w}" for j in range(len(blocks))
                                                for w in ("before", "after")] if blocks else [])
        accs = {(res, tag, kd): ReliabilityAccumulator(bins) for res in RESOLUTIONS for tag in tags for kd in KINDS}

        for i in range(n):
            image, label = frame(i)
            raw = cache[i] if cache[i] is not None else raw_logits(image)
            v, _ = views(raw, label)
            for res in RESOLUTIONS:
                z, y = v[res]
                ok = (y < k).ravel()
                if not ok.any():
                    continue
                zv = z.reshape(k, -1)[:, ok]
                correct = zv.argmax(0) == y.ravel()[ok]
                runs = [(1.0, ("before",)), (temps[res], ("after",))]
                if blocks:
                    j = fold_of[i]
                    runs[0] = (1.0, ("before", f"fold{j}_before"))
                    runs.append((fold_temps[j][res], ("cv", f"fold{j}_after")))
                for t, run_tags in runs:
                    confs = confidences_from_probs(softmax(zv, t))
                    for kd in KINDS:
                        for tag in run_tags:
                            accs[(res, tag, kd)].update(confs[kd], correct)
            bar.update()
    results = {r: {} for r in RESOLUTIONS}
    for (res, tag, kd), a in accs.items():
        results[res].setdefault(tag, {})[kd] = a.result()
    seconds = time.perf_counter() - t0

    def head(res):
        b, a = results[res]["before"][kind], results[res]["after"][kind]
        return {"temperature": temps[res], "ece_before": b["ece"], "ece_after": a["ece"],
                "brier_before": b["brier"], "brier_after": a["brier"], "accuracy": a["accuracy"],
                "count": a["count"], "bins": a["bins"]}

    def strip(d):
        return {key: val for key, val in d.items() if key != "bins"}

    crossval = []
    for j, (a, b) in enumerate(blocks):
        entry = {"fit_frames": [[c + 1, e] for jj, (c, e) in enumerate(blocks) if jj != j],
                 "eval_frames": [a + 1, b], "temperature": fold_temps[j]["pixels"],
                 "grid_temperature": fold_temps[j]["grid"]}
        for res in RESOLUTIONS:
            entry[res] = {kd: {"ece_before": results[res][f"fold{j}_before"][kd]["ece"],
                               "ece_after": results[res][f"fold{j}_after"][kd]["ece"],
                               "brier_before": results[res][f"fold{j}_before"][kd]["brier"],
                               "brier_after": results[res][f"fold{j}_after"][kd]["brier"],
                               "count": results[res][f"fold{j}_after"][kd]["count"]}
                          for kd in KINDS}
        crossval.append(entry)
    pooled = {res: {kd: strip(results[res]["cv"][kd]) for kd in KINDS} for res in RESOLUTIONS} if blocks else None
    mean = ({res: {kd: {key: float(np.mean([e[res][kd][key] for e in crossval]))
                        for key in ("ece_before", "ece_after", "brier_before", "brier_after")}
                   for kd in KINDS} for res in RESOLUTIONS} if blocks else None)

    top = head("pixels")
    g = head("grid")
    g = {"factor": grid, "factors": sorted(factors), **g}
    details = {
        "kinds": {res: {kd: {"before": strip(results[res]["before"][kd]), "after": strip(results[res]["after"][kd])}
                        for kd in KINDS} for res in RESOLUTIONS},
        "bins_before": {res: results[res]["before"][kind]["bins"] for res in RESOLUTIONS},
        "crossval": {"folds": folds, "blocks": crossval, "mean": mean, "pooled": pooled,
                     "note": "mean: per-block out-of-sample numbers averaged; pooled: every frame scored with "
                             "the T not fitted on it, one reliability diagram (errors of opposite sign in "
                             "different blocks cancel there)"},
        "data": {"dataset": dataset, "split": split, "root": str(data), "frames": n,
                 "pixels": top["count"], "cells": g["count"], "pixels_per_frame_fit": pixels, "seed": seed,
                 "segmenter": segmenter if segmenter in ("default", "eval") else str(folder),
                 "num_classes": k, "bins": bins},
        "brier": "mean((confidence - correct)^2) over labelled pixels",
        "fitted_on": f"{dataset} {split} itself: the after-numbers are in-sample; see crossval",
        "seconds": round(seconds, 1),
    }
    if command:
        details["command"] = command
    cal = Calibration(temperature=top["temperature"], kind=kind, ece_before=top["ece_before"],
                      ece_after=top["ece_after"], brier_before=top["brier_before"], brier_after=top["brier_after"],
                      accuracy=top["accuracy"], bins=top["bins"], grid=g, details=details)
    return cal, results


# -- output --------------------------------------------------------------------------------------

def _f(x, spec=".4f") -> str:
    return "-" if x is None else format(x, spec)


def format_tables(cal, results) -> str:
    """The printed report: calibration per resolution and kind, low-confidence shares, and the
    out-of-sample folds."""
    d = cal.details
    temps = {"pixels": cal.temperature, "grid": cal.grid_temperature}
    name = {"pixels": "pixels", "grid": f"grid 1/{cal.grid['factor']}"}
    lines = [f"{'where':<10} {'kind':<8} {'T':>6} {'ECE T=1':>8} {'ECE T':>8} {'Brier T=1':>9} {'Brier T':>8} "
             f"{'acc':>7}"]
    for res in RESOLUTIONS:
        for kd in KINDS:
            b, a = results[res]["before"][kd], results[res]["after"][kd]
            lines.append(f"{name[res]:<10} {kd:<8} {temps[res]:>6.3f} {_f(b['ece']):>8} {_f(a['ece']):>8} "
                         f"{_f(b['brier']):>9} {_f(a['brier']):>8} {_f(a['accuracy']):>7}")
    lines.append("")
    ths = [x["threshold"] for x in results["pixels"]["after"][KINDS[0]]["below"]]
    lines.append(f"{'where':<10} {'kind':<8} " + " ".join(f"{f'conf<{t:g}: share (acc)':>22}" for t in ths))
    for res in RESOLUTIONS:
        for kd in KINDS:
            cells = [f"{_f(x['fraction'] * 100 if x['fraction'] is not None else None, '.1f')}% "
                     f"({_f(x['accuracy'], '.3f')})" for x in results[res]["after"][kd]["below"]]
            lines.append(f"{name[res]:<10} {kd:<8} " + " ".join(f"{c:>22}" for c in cells))
    blocks = d["crossval"]["blocks"]
    if blocks:
        lines.append("")
        lines.append(f"out of sample ({cal.kind}): each block of frames scored with T fitted on the other frames")
        lines.append(f"{'eval frames':<12} {'where':<10} {'T':>6} {'ECE T=1':>8} {'ECE T':>8} {'Brier T=1':>9} "
                     f"{'Brier T':>8}")
        for b in blocks:
            for res in RESOLUTIONS:
                t = b["temperature"] if res == "pixels" else b["grid_temperature"]
                r = b[res][cal.kind]
                lines.append(f"{'%d-%d' % tuple(b['eval_frames']):<12} {name[res]:<10} {t:>6.3f} "
                             f"{_f(r['ece_before']):>8} {_f(r['ece_after']):>8} {_f(r['brier_before']):>9} "
                             f"{_f(r['brier_after']):>8}")
    data = d["data"]
    lines.append("")
    lines.append(f"{data['frames']} frames, {data['pixels']} labelled pixels, {data['cells']} labelled grid cells; "
                 "T fitted on this split (ECE T, Brier T and the low-confidence shares are in-sample)")
    return "\n".join(lines)


def plot_reliability(cal, results, path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def min_count(r):  # bins this sparse are noise: not drawn
        return max(10, 1e-4 * r["count"])

    temps = {"pixels": cal.temperature, "grid": cal.grid_temperature}
    fig, axes = plt.subplots(1, 2, figsize=(9.6, 4.4))
    for ax, res in zip(axes, RESOLUTIONS):
        ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="perfect")
        for tag, label, colour in (("before", "T = 1", "tab:red"), ("after", f"T = {temps[res]:.2f}", "tab:blue")):
            r = results[res][tag][cal.kind]
            pts = [(b["confidence"], b["accuracy"]) for b in r["bins"] if b["count"] >= min_count(r)]
            if pts:
                xs, ys = np.array(pts).T
                ax.plot(xs, ys, marker="o", color=colour, label=f"{label} (ECE {r['ece']:.3f})")
        r = results[res]["after"][cal.kind]
        share = ax.twinx()
        mids = [(b["lo"] + b["hi"]) / 2 for b in r["bins"]]
        share.bar(mids, [b["count"] / max(r["count"], 1) for b in r["bins"]], width=1 / len(r["bins"]),
                  color="tab:blue", alpha=0.15)
        share.set_ylabel("share of pixels (T fitted)" if res == "pixels" else "share of cells (T fitted)")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel(f"confidence ({cal.kind}); bins under 0.01 % not drawn")
        ax.set_ylabel("accuracy")
        ax.set_title("full resolution" if res == "pixels" else f"codec grid 1/{cal.grid['factor']}")
        ax.legend(loc="upper left", fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def run_calibrate_cmd(args) -> int:
    command = "semcomp " + shlex.join(
        ["calibrate", "--data", str(args.data), "--dataset", args.dataset, "--split", args.split,
         "--segmenter", args.segmenter, *(["--limit", str(args.limit)] if args.limit else []),
         "--grid", str(args.grid), "--kind", args.kind, "--bins", str(args.bins), "--pixels", str(args.pixels),
         "--folds", str(args.folds), "--seed", str(args.seed), "--out", str(args.out)])
    cal, results = run_calibration(args.data, args.dataset, args.split, args.segmenter, args.limit, args.grid,
                                   args.kind, args.bins, args.pixels, args.folds, args.seed, args.device,
                                   progress=not args.quiet, command=command)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create {args.out}: {exc.strerror or exc}") from None
    cal.save(args.out / "calibration.json")
    plot_reliability(cal, results, args.out / "reliability.png")
    print(format_tables(cal, results))
    print(f"wrote {args.out / 'calibration.json'} and {args.out / 'reliability.png'}", file=sys.stderr)
    return 0
