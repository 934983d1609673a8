"""Image loading/saving and the in-memory image convention.

Every codec takes and returns ``numpy.ndarray`` of shape (H, W, 3), dtype
uint8, RGB order. :func:`as_rgb` converts the common variants (gray, RGBA,
16-bit) or raises :class:`UsageError`.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import UsageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")


def as_rgb(image: np.ndarray) -> np.ndarray:
    """Return a contiguous (H, W, 3) uint8 RGB view/copy of ``image``."""
    if not isinstance(image, np.ndarray):
        raise UsageError(f"image must be a numpy array, got {type(image).__name__}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4) or image.shape[0] < 1 or image.shape[1] < 1:
        raise UsageError(f"image must be HxW, HxWx1, HxWx3 or HxWx4, got shape {image.shape}")
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise UsageError(f"image dtype must be uint8 or uint16, got {image.dtype}")
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    elif image.shape[2] == 4:
        image = image[:, :, :3]
    return np.ascontiguousarray(image)


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 RGB; UsageError naming the problem otherwise."""
    p = Path(path)
    if not p.exists():
        raise UsageError(f"no such file: {p}")
    if p.is_dir():
        raise UsageError(f"expected an image file, got a directory: {p}")
    try:
        with Image.open(p) as im:
            im.load()
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im).astype(np.uint32)
                arr = (np.clip(arr, 0, 65535) >> 8).astype(np.uint8)
                return as_rgb(arr)
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise UsageError(f"cannot read image {p}: {exc}") from None


def load_label(path: str | os.PathLike) -> np.ndarray:
    """Read a single-channel label PNG as (H, W) uint8."""
    p = Path(path)
    try:
        with Image.open(p) as im:
            arr = np.asarray(im)
    except (FileNotFoundError, UnidentifiedImageError, OSError) as exc:
        raise UsageError(f"cannot read label map {p}: {exc}") from None
    if arr.ndim == 3:
        arr = arr[:, :, 0]
    return arr.astype(np.uint8, copy=False)


def save_png(path: str | os.PathLike, image: np.ndarray) -> None:
    p = Path(path)
    if p.parent and not p.parent.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
    try:
        Image.fromarray(np.ascontiguousarray(image)).save(p, format="PNG")
    except OSError as exc:
        raise UsageError(f"cannot write {p}: {exc}") from None


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files directly in ``folder`` (sorted); UsageError if none or not a folder."""
    d = Path(folder)
    if not d.is_dir():
        raise UsageError(f"not a directory: {d}")
    files = sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise UsageError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {d}")
    return files
