"""Edge preservation: how much of the original's structure (lane markings, kerbs, outlines) a
reconstruction keeps.

A fixed detector -- grey level (BT.601 luma), Gaussian blur sigma 1.0, Canny with hysteresis
thresholds 50 / 150 on 8-bit values (OpenCV, L2 gradient) -- runs on the original and on the
reconstruction. An edge pixel of one counts as matched when the other has an edge within
``tolerance`` pixels (Euclidean distance transform), as in the BSDS boundary benchmark but without
one-to-one assignment:

* precision = matched reconstruction edges / reconstruction edges,
* recall = matched original edges / original edges,
* F = 2 P R / (P + R).

Frames without edges in the original give recall 1 (nothing to keep); a reconstruction without
edges gives precision 1. The detector and its thresholds are part of the metric's definition: do
not tune them to a codec.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BLUR_SIGMA = 1.0
CANNY_LOW, CANNY_HIGH = 50, 150
TOLERANCE_PX = 2.0


def edge_map(image: np.ndarray) -> np.ndarray:
    """(H, W) bool edges of an (H, W, 3) uint8 RGB image with the fixed detector."""
    import cv2

    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"edge_map needs an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
    grey = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    grey = cv2.GaussianBlur(grey, (0, 0), sigmaX=BLUR_SIGMA)
    return cv2.Canny(grey, CANNY_LOW, CANNY_HIGH, L2gradient=True) > 0


@dataclass(frozen=True)
class EdgeScore:
    precision: float
    recall: float
    f: float
    edges_original: int
    edges_reconstruction: int


def _matched(edges: np.ndarray, other: np.ndarray, tolerance: float) -> int:
    import cv2

    if not edges.any():
        return 0
    if not other.any():
        return 0
    dist = cv2.distanceTransform((~other).astype(np.uint8), cv2.DIST_L2, 5)
    return int((dist[edges] <= tolerance).sum())


def edge_f_score(original: np.ndarray, reconstruction: np.ndarray, tolerance: float = TOLERANCE_PX,
                 mask: np.ndarray | None = None) -> EdgeScore:
    """Edge precision, recall and F of ``reconstruction`` against ``original`` (same shape); with
    ``mask`` ((H, W) bool), only the edges of both inside it count (e.g. road-surface pixels)."""
    if original.shape != reconstruction.shape:
        raise ValueError(f"shapes differ: {original.shape} vs {reconstruction.shape}")
    a, b = edge_map(original), edge_map(reconstruction)
    if mask is not None:
        a, b = a & mask, b & mask
    na, nb = int(a.sum()), int(b.sum())
    recall = _matched(a, b, tolerance) / na if na else 1.0
    precision = _matched(b, a, tolerance) / nb if nb else 1.0
    f = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return EdgeScore(precision, recall, f, na, nb)
