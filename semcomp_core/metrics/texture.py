"""No-reference texture figure: how much fine detail a picture holds, computed from the picture alone.

:func:`texture` is the mean absolute Laplacian of the luma (BT.601, 0..255) over the picture, a
high-frequency energy figure in grey levels per pixel (the variance-of-Laplacian family of focus
measures, Pech-Pacheco et al. 2000, with the mean absolute value so that a few strong edges do not
dominate). Smooth, painted-looking reconstructions score low; photographs of road scenes score
high (CamVid val frames: about 9). It needs no weights, so it can be computed here; it rewards noise
as much as texture, so read it beside a fidelity and a semantic figure, never alone.
"""
from __future__ import annotations

import numpy as np


def texture(image: np.ndarray) -> float:
    """Mean |Laplacian| of the luma of an (H, W, 3) or (H, W) uint8 picture (0 for pictures under 3x3)."""
    x = np.asarray(image, np.float32)
    if x.ndim == 3:
        x = x[..., 0] * 0.299 + x[..., 1] * 0.587 + x[..., 2] * 0.114
    if x.shape[0] < 3 or x.shape[1] < 3:
        return 0.0
    lap = (x[1:-1, :-2] + x[1:-1, 2:] + x[:-2, 1:-1] + x[2:, 1:-1]) - 4.0 * x[1:-1, 1:-1]
    return float(np.abs(lap).mean())
