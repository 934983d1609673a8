"""Bjøntegaard deltas between two rate-quality curves (VCEG-M33, the figure codec papers report).

``bd_rate``: the average rate difference of ``test`` against ``anchor`` at equal quality, in percent
(negative = ``test`` needs fewer bytes); ``bd_quality``: the average quality difference at equal rate
(BD-PSNR when the quality is PSNR). Both fit a cubic polynomial (log10 rate against quality, or
quality against log10 rate) through each curve's points and integrate the difference over the
overlapping interval, as the reference implementation does. Each curve needs at least four points;
quality must rise with rate (a curve that does not is refused: its cubic fit would be meaningless).
"""
from __future__ import annotations

import numpy as np


def _curve(rate, quality) -> tuple[np.ndarray, np.ndarray]:
    r, q = np.asarray(rate, float), np.asarray(quality, float)
    if r.shape != q.shape or r.ndim != 1 or len(r) < 4:
        raise ValueError("a BD curve needs at least four (rate, quality) points")
    if (r <= 0).any() or not np.isfinite(q).all():
        raise ValueError("BD curves need positive rates and finite qualities")
    order = np.argsort(r)
    return np.log10(r[order]), q[order]


def _avg_diff(x1, y1, x2, y2) -> float:
    """Mean of (fit2 - fit1) over the overlap of x1 and x2 (cubic fits of y against x)."""
    lo, hi = max(x1.min(), x2.min()), min(x1.max(), x2.max())
    if hi <= lo:
        raise ValueError("the two curves do not overlap")
    p1, p2 = np.polyint(np.polyfit(x1, y1, 3)), np.polyint(np.polyfit(x2, y2, 3))
    return float((np.polyval(p2, hi) - np.polyval(p2, lo) - np.polyval(p1, hi) + np.polyval(p1, lo)) / (hi - lo))


def bd_rate(anchor_rate, anchor_quality, test_rate, test_quality) -> float:
    """Average rate difference of ``test`` against ``anchor`` at equal quality, percent."""
    ra, qa = _curve(anchor_rate, anchor_quality)
    rt, qt = _curve(test_rate, test_quality)
    return (10 ** _avg_diff(qa, ra, qt, rt) - 1) * 100


def bd_quality(anchor_rate, anchor_quality, test_rate, test_quality) -> float:
    """Average quality difference of ``test`` against ``anchor`` at equal rate (e.g. BD-PSNR in dB)."""
    ra, qa = _curve(anchor_rate, anchor_quality)
    rt, qt = _curve(test_rate, test_quality)
    return _avg_diff(ra, qa, rt, qt)
