#!/usr/bin/env python
"""Bjøntegaard deltas of codec families in a `semcomp bench` summary.csv, as a Markdown table.

    python scripts/bd_rates.py out/bench/summary.csv [more summary.csv ...] --anchor bpg --test bpg-se

For each test family (rows whose `name` column is that codec) against the anchor family: BD-rate in
percent (negative: fewer bytes for the same quality) and the BD quality difference, for PSNR,
MS-SSIM and the independent evaluation segmenter's mIoU against ground truth (`eval_miou_recon_vs_gt`),
over the overlapping range of each pair of curves. Rate is the mean container bytes (every byte on the
link). A family needs at least four rate points.
"""
from __future__ import annotations

import argparse
import csv
import sys

from semcomp_core.metrics.bd import bd_quality, bd_rate

METRICS = (("psnr", "PSNR (dB)"), ("ms_ssim", "MS-SSIM"), ("eval_miou_recon_vs_gt", "mIoU (ind)"))


def curves(rows, name):
    pts = sorted((float(r["bytes"]), r) for r in rows if r["name"] == name)
    return [p for _, p in pts]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("summary", nargs="+", help="summary.csv files of `semcomp bench` runs (rows are pooled)")
    ap.add_argument("--anchor", default="bpg")
    ap.add_argument("--test", action="append", required=True)
    args = ap.parse_args(argv)
    rows = []
    for path in args.summary:
        with open(path, newline="") as f:
            rows += list(csv.DictReader(f))
    anchor = curves(rows, args.anchor)
    print(f"| codec vs {args.anchor} | " + " | ".join(f"BD-rate {t} | BD {t}" for _, t in METRICS) + " |")
    print("|---|" + "---|---|" * len(METRICS))
    for name in args.test:
        test = curves(rows, name)
        cells = []
        for key, _ in METRICS:
            try:
                ra, qa = [float(r["bytes"]) for r in anchor], [float(r[key]) for r in anchor]
                rt, qt = [float(r["bytes"]) for r in test], [float(r[key]) for r in test]
                cells += [f"{bd_rate(ra, qa, rt, qt):+.1f}%", f"{bd_quality(ra, qa, rt, qt):+.4g}"]
            except (ValueError, KeyError) as exc:
                cells += [f"n/a ({exc})", ""]
        print(f"| {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
