#!/usr/bin/env python
"""Rate-quality curves of codec families from one or more `semcomp bench` summary.csv files.

    python scripts/plot_rd.py A/summary.csv B/summary.csv --out docs/benchmarks/bpg_se_gc_rd.png

Three panels against mean container bytes per frame (every byte on the link): PSNR, MS-SSIM and the
independent evaluation segmenter's mIoU against ground truth. One line per codec name (rows sorted by
bytes), single operating points as markers.
"""
from __future__ import annotations

import argparse
import csv
import sys
from collections import defaultdict

PANELS = (("psnr", "PSNR (dB)"), ("ms_ssim", "MS-SSIM"), ("eval_miou_recon_vs_gt", "mIoU, independent segmenter"))


def main(argv=None) -> int:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("summary", nargs="+")
    ap.add_argument("--out", required=True)
    ap.add_argument("--title", default="CamVid val (101 frames, 480x360)")
    args = ap.parse_args(argv)
    fam = defaultdict(list)
    for path in args.summary:
        with open(path, newline="") as f:
            for r in csv.DictReader(f):
                fam[r["name"]].append(r)
    fig, axes = plt.subplots(1, len(PANELS), figsize=(5 * len(PANELS), 4))
    for ax, (key, label) in zip(axes, PANELS):
        for name, rows in sorted(fam.items()):
            pts = sorted((float(r["bytes"]), float(r[key])) for r in rows if r.get(key) not in (None, ""))
            if not pts:
                continue
            xs, ys = zip(*pts)
            ax.plot(xs, ys, "o-" if len(pts) > 1 else "s", label=name, ms=4)
        ax.set_xscale("log")
        ax.set_xlabel("bytes per frame (container, all layers)")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(args.title)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
