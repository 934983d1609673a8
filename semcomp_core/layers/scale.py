"""Resampling helpers for the semantic layers.

* :func:`downscale_labels` -- majority (mode) pooling over f x f blocks, so thin
  structures survive better than with strided sampling; the map has
  ceil(H/f) x ceil(W/f) cells (edges padded by replication).
* :func:`upscale_labels` -- nearest-neighbour back to the frame size.
* :func:`thumbnail` / :func:`upscale_thumbnail` -- area-averaged colour thumbnail and
  its smooth (bicubic) enlargement.
"""
from __future__ import annotations

import numpy as np
from PIL import Image


def check_map(values, max_side: int, what: str) -> np.ndarray:
    """``values`` as a non-empty 2-D array of at most ``max_side`` a side; ValueError naming ``what``."""
    values = np.asarray(values)
    if values.ndim != 2 or values.size == 0:
        raise ValueError(f"{what} must be a non-empty 2-D array, got shape {values.shape}")
    h, w = values.shape
    if h > max_side or w > max_side:
        raise ValueError(f"{what} {h}x{w} larger than {max_side} a side")
    return values


def map_shape(height: int, width: int, factor: int) -> tuple[int, int]:
    return -(-height // factor), -(-width // factor)


def downscale_labels(labels: np.ndarray, factor: int) -> np.ndarray:
    """Mode-pool a (H, W) uint8 label map by an integer factor (ties -> smaller label)."""
    if factor < 1:
        raise ValueError(f"factor must be >= 1, got {factor}")
    labels = np.asarray(labels, dtype=np.uint8)
    if factor == 1:
        return labels.copy()
    H, W = labels.shape
    h, w = map_shape(H, W, factor)
    pad = np.pad(labels, ((0, h * factor - H), (0, w * factor - W)), mode="edge")
    blocks = pad.reshape(h, factor, w, factor).transpose(0, 2, 1, 3).reshape(h, w, factor * factor)
    classes = np.unique(blocks)
    best = np.zeros((h, w), dtype=np.uint8)
    best_count = np.full((h, w), -1, dtype=np.int32)
    for c in classes:
        cnt = (blocks == c).sum(axis=-1, dtype=np.int32)
        better = cnt > best_count
        best[better] = c
        best_count[better] = cnt[better]
    return best


def upscale_labels(labels: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour upscaling of a reduced map to (height, width)."""
    h, w = labels.shape
    ys = np.minimum((np.arange(height) * h) // height, h - 1)
    xs = np.minimum((np.arange(width) * w) // width, w - 1)
    return labels[ys[:, None], xs[None, :]]


def thumbnail(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Area-averaged (box filter) RGB thumbnail of size (height, width)."""
    im = Image.fromarray(np.ascontiguousarray(image))
    return np.asarray(im.resize((width, height), Image.Resampling.BOX), dtype=np.uint8)


def upscale_thumbnail(thumb: np.ndarray, height: int, width: int) -> np.ndarray:
    im = Image.fromarray(np.ascontiguousarray(thumb))
    return np.asarray(im.resize((width, height), Image.Resampling.BICUBIC), dtype=np.uint8)
