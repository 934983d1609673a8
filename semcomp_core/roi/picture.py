"""The ROI's pixels as one HEVC intra picture at a byte budget (x265 through the ``bpg`` codec's path).

:func:`fill_outside` replaces the pixels of the coded box that lie outside the coded region by a
smooth push-pull extrapolation of the region's own pixels (no edges for HEVC to spend bits on);
:func:`encode_at_budget` picks the finest quantiser -- and, when even QP 51 does not fit, the
smallest downscale 2**shift -- whose layer fits the byte allowance; :func:`decode_box` returns the
box's pixels at frame resolution.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..layers.roi import MAX_SHIFT, picture_shape

#: x265 effort for ROI pictures (bpgenc -m scale; 5 = x265 "slow": within 3 % of placebo's bytes, ~1.5x faster)
EFFORT = 5
QP_MAX = 51


def fill_outside(image: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``image`` with the pixels where ``keep`` is False replaced by a smooth extrapolation (push-pull
    pyramid of the kept pixels); unchanged when everything or nothing is kept."""
    import cv2

    if keep.all() or not keep.any():
        return image.copy()
    levels = []
    img = image.astype(np.float32) * keep[..., None]
    w = keep.astype(np.float32)
    while True:
        levels.append((img, w))
        h, wd = img.shape[:2]
        if min(h, wd) <= 2:
            break
        size = (max(1, wd // 2), max(1, h // 2))
        img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        w = cv2.resize(w, size, interpolation=cv2.INTER_AREA)
    img, w = levels[-1]
    filled = img / np.maximum(w, 1e-6)[..., None]
    filled[w <= 0] = (img.reshape(-1, 3).sum(0) / max(float(w.sum()), 1e-6))
    for img, w in reversed(levels[:-1]):
        up = cv2.resize(filled, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_LINEAR)
        mean = img / np.maximum(w, 1e-6)[..., None]
        a = np.clip(w, 0, 1)[..., None]
        filled = a * mean + (1 - a) * up
    out = np.where(keep[..., None], image, np.clip(np.rint(filled), 0, 255).astype(np.uint8))
    return np.ascontiguousarray(out)


def _downscale(image: np.ndarray, shift: int) -> np.ndarray:
    if shift == 0:
        return image
    import cv2

    h, w = picture_shape((0, 0) + image.shape[:2], shift)
    return np.ascontiguousarray(cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA))


def encode_picture(picture: np.ndarray, q: int, effort: int = EFFORT) -> bytes:
    """A HEVC_INTRA payload of ``picture`` at QP ``q`` (4:2:0)."""
    from ..codecs.bpg import heif_to_payload, x265_encode_heif

    return heif_to_payload(x265_encode_heif(picture, q, "420", effort), *picture.shape[:2])


def encode_at_budget(pixels: np.ndarray, allowance: int, size_of: Callable[[bytes, int], int],
                     q_best: int, max_shift: int = MAX_SHIFT, effort: int = EFFORT, q_max: int = QP_MAX):
    """``(hevc, shift, q)`` of the finest coding of ``pixels`` (the box, at frame resolution) whose
    layer -- ``size_of(hevc, shift)`` bytes -- fits ``allowance``: QP from ``q_best`` up to ``q_max``,
    then the box downscaled by 2, 4, 8 (up to 2**max_shift). None when nothing fits."""
    for shift in range(max_shift + 1):
        pic = _downscale(pixels, shift)
        if min(pic.shape[:2]) < 8 and shift:
            break
        tried = {}

        def fits(q):
            hevc = encode_picture(pic, q, effort)
            tried[q] = hevc
            return size_of(hevc, shift) <= allowance

        if fits(q_best):
            return tried[q_best], shift, q_best
        if q_best >= q_max or not fits(q_max):
            continue
        lo, hi = q_best, q_max           # lo does not fit, hi fits
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if fits(mid):
                hi = mid
            else:
                lo = mid
        return tried[hi], shift, hi
    return None


def decode_box(hevc: bytes, box: tuple[int, int, int, int], shift: int) -> np.ndarray:
    """The box's pixels (h, w, 3) uint8 at frame resolution; BitstreamError on a corrupt picture."""
    from ..codecs.bpg import x265_decode

    _, _, h, w = box
    ph, pw = picture_shape(box, shift)
    pic = x265_decode(hevc, ph, pw)
    if shift == 0:
        return pic
    import cv2

    return np.ascontiguousarray(np.clip(cv2.resize(pic, (w, h), interpolation=cv2.INTER_CUBIC), 0, 255))
