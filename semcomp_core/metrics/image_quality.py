"""Pixel-fidelity metrics: PSNR and MS-SSIM.

Inputs are two numpy arrays of equal shape, normally (H, W, 3) uint8 RGB as
everywhere in semcomp (see :mod:`semcomp_core.imageio`); (H, W) grayscale
also works. A shape mismatch raises :class:`ValueError`.

Both functions return a plain Python ``float``. torch is imported lazily by
:func:`ms_ssim` only, so importing this module stays cheap.
"""
from __future__ import annotations

import math

import numpy as np

#: Standard MS-SSIM scale weights (Wang, Simoncelli & Bovik 2003), finest first.
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
#: Standard Gaussian window: 11 taps, sigma 1.5.
WIN_SIZE = 11
WIN_SIGMA = 1.5


def _check_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"images must have the same shape, got {a.shape} and {b.shape}")
    if a.ndim not in (2, 3) or a.size == 0:
        raise ValueError(f"images must be non-empty (H, W) or (H, W, C) arrays, got shape {a.shape}")
    return a, b


#: PSNR reported for identical images wherever a finite number is needed (tables, means, CSV/JSON):
#: lossless frames are counted in means at this value, never dropped, and flagged ``lossless``.
PSNR_CAP_DB = 100.0


def psnr_for_mean(value: float) -> float:
    """``value`` capped at :data:`PSNR_CAP_DB` (``inf`` for identical images becomes the cap)."""
    return min(float(value), PSNR_CAP_DB)


def psnr(a: np.ndarray, b: np.ndarray, max_val: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB over all pixels and channels.

    ``10 * log10(max_val**2 / MSE)`` with the MSE taken in float64 over every
    sample; identical images give ``float('inf')``.
    """
    a, b = _check_pair(a, b)
    diff = a.astype(np.float64) - b.astype(np.float64)
    mse = float(np.mean(diff * diff))
    if mse == 0.0:
        return float("inf")
    return 10.0 * math.log10(float(max_val) ** 2 / mse)


def ms_ssim_plan(height: int, width: int) -> tuple[int, int]:
    """Return ``(levels, win_size)`` that :func:`ms_ssim` uses for an image size.

    Rule, with ``s = min(height, width)``:

    * ``s > 160``: the standard 5 scales with the 11-tap window -- exactly
      ``pytorch_msssim.ms_ssim``.
    * ``11 <= s <= 160``: keep the 11-tap window and use the largest number of
      scales ``L`` (1..4) with ``s > 10 * 2**(L - 1)``, so that the coarsest
      scale is still at least 11 pixels on its short side (the Gaussian filter
      then really applies at every scale). The first ``L`` standard weights are
      used, renormalised to sum to 1. ``L == 1`` is plain SSIM.
    * ``s < 11``: plain SSIM (one scale) with the largest odd window ``<= s``
      (sigma stays 1.5); sides 1 and 2 use a 1-tap window, i.e. a per-pixel
      luminance comparison.
    """
    s = min(int(height), int(width))
    if s < 1:
        raise ValueError(f"image sides must be >= 1, got {height}x{width}")
    if s >= WIN_SIZE:
        levels = 1
        while levels < len(MS_SSIM_WEIGHTS) and s > (WIN_SIZE - 1) * 2 ** levels:
            levels += 1
        return levels, WIN_SIZE
    return 1, s if s % 2 == 1 else s - 1


def _gauss_1d(size: int, sigma: float, torch):
    coords = torch.arange(size, dtype=torch.float32) - size // 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def _ms_ssim_torch(x, y, levels: int, win_size: int, data_range: float = 255.0):
    """MS-SSIM on (N, C, H, W) tensors, same algorithm as pytorch_msssim.ms_ssim.

    Per scale: Gaussian-filtered SSIM terms (valid convolution, K = 0.01, 0.03);
    contrast-structure of the finer scales and SSIM of the coarsest, each
    clamped at 0, combined as a weighted geometric mean; 2x2 average pooling
    (padding odd sides) between scales.
    """
    import torch
    import torch.nn.functional as F

    weights = torch.tensor(MS_SSIM_WEIGHTS[:levels], dtype=x.dtype)
    weights = weights / weights.sum()
    channels = x.shape[1]
    g = _gauss_1d(win_size, WIN_SIGMA, torch).to(x.dtype)
    win_h = g.view(1, 1, win_size, 1).repeat(channels, 1, 1, 1)
    win_w = g.view(1, 1, 1, win_size).repeat(channels, 1, 1, 1)

    def blur(t):
        return F.conv2d(F.conv2d(t, win_h, groups=channels), win_w, groups=channels)

    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    values = []
    for level in range(levels):
        mu1, mu2 = blur(x), blur(y)
        mu1_sq, mu2_sq, mu12 = mu1 * mu1, mu2 * mu2, mu1 * mu2
        s1 = blur(x * x) - mu1_sq
        s2 = blur(y * y) - mu2_sq
        s12 = blur(x * y) - mu12
        cs_map = (2 * s12 + c2) / (s1 + s2 + c2)
        if level < levels - 1:
            values.append(torch.relu(cs_map.flatten(2).mean(-1)))
            padding = [side % 2 for side in x.shape[2:]]
            x = F.avg_pool2d(x, kernel_size=2, padding=padding)
            y = F.avg_pool2d(y, kernel_size=2, padding=padding)
        else:
            ssim_map = (2 * mu12 + c1) / (mu1_sq + mu2_sq + c1) * cs_map
            values.append(torch.relu(ssim_map.flatten(2).mean(-1)))
    stacked = torch.stack(values, dim=0)  # (levels, N, C)
    return torch.prod(stacked ** weights.view(-1, 1, 1), dim=0).mean()


def ms_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Multi-scale SSIM in [0, 1] (1 for identical images), data range 255.

    Images are compared as float32 tensors in [0, 255], all channels, each
    channel scored separately and averaged. Images whose short side is over
    160 pixels go straight to ``pytorch_msssim.ms_ssim`` (5 scales, 11-tap
    window, sigma 1.5). Smaller images, which that function rejects, use fewer
    scales and, below 11 pixels, a smaller window -- see :func:`ms_ssim_plan`
    for the exact rule -- with the same algorithm. Never raises for any image
    of at least 1x1 pixel; a shape mismatch raises ValueError.
    """
    a, b = _check_pair(a, b)
    import torch

    def to_tensor(img: np.ndarray):
        arr = img.astype(np.float32)
        arr = arr[None, None] if arr.ndim == 2 else arr.transpose(2, 0, 1)[None]
        return torch.from_numpy(np.ascontiguousarray(arr))

    levels, win_size = ms_ssim_plan(a.shape[0], a.shape[1])
    x, y = to_tensor(a), to_tensor(b)
    with torch.no_grad():
        if levels == len(MS_SSIM_WEIGHTS) and win_size == WIN_SIZE:
            from pytorch_msssim import ms_ssim as _lib_ms_ssim

            value = _lib_ms_ssim(x, y, data_range=255, size_average=True,
                                 win_size=WIN_SIZE, win_sigma=WIN_SIGMA)
        else:
            value = _ms_ssim_torch(x, y, levels, win_size)
    return float(value)
