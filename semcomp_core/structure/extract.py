"""Edge maps for the structure layer (the SCMC paper's middle layer).

The seg map carries regions, not lines: CamVid folds lane markings into Road, and a 1/16 grid has
no kerbs or facade outlines. The structure layer sends a binary edge map on a grid four times finer
than level ``s``'s seg map (1/4 of a 480x360 frame: 120x90 cells; larger frames get a coarser grid
the same way the seg map's does, :func:`structure_factor`), coded losslessly
(:mod:`semcomp_core.layers.structure`).

Detector: BT.601 luma, area-downscaled to the grid, Gaussian blur sigma 1.0, Canny (L2 gradient)
with the level's hysteresis thresholds. Higher thresholds keep only high-contrast lines (markings,
kerbs, strong outlines) and cost fewer bytes. Canny was chosen over a learned edge network: it needs
no training data of edges, runs in well under a millisecond at this size, and on the CamVid val
frames a lower threshold buys recall of the original's edges at a steady rate per byte (numbers in
BENCHMARKS.md "Structure layer"). A learned detector is not built (see README).

The receiver turns the decoded map into one generator channel at the frame size
(:func:`structure_input`): bilinear upsampling of the 0/255 map, so lines stay thin and centred.
Training builds exactly this input from the same extractor.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UsageError

BLUR_SIGMA = 1.0
#: structure-grid factor on frames up to 480x360 (scaled like the seg map's for larger frames)
BASE_FACTOR = 4


@dataclass(frozen=True)
class StructureLevel:
    name: str
    low: int    # Canny hysteresis thresholds on 8-bit luma
    high: int
    typical_bytes: int  # CamVid val mean (BENCHMARKS.md "Structure layer")


STRUCTURE_LEVELS = {
    "s": StructureLevel("s", 80, 160, 210),
    "m": StructureLevel("m", 60, 150, 260),
    "l": StructureLevel("l", 40, 100, 375),
}


def resolve_structure_level(value) -> StructureLevel | None:
    """A level from its name; None for "none"/""/"0"/False; UsageError otherwise."""
    if value in (None, False, "", "none", "0", 0, "off"):
        return None
    if isinstance(value, StructureLevel):
        return value
    name = str(value).strip().lower()
    if name in ("1", "on", "true"):
        name = "l"                      # the level that raises the edge F-score (BENCHMARKS.md)
    if name not in STRUCTURE_LEVELS:
        raise UsageError(f"unknown structure level {value!r} (use none, {', '.join(STRUCTURE_LEVELS)})")
    return STRUCTURE_LEVELS[name]


def structure_factor(height: int, width: int) -> int:
    """The structure grid's factor on a ``height`` x ``width`` frame (4 up to 480x360)."""
    from ..codecs.semantic_levels import grid_factor

    return grid_factor(BASE_FACTOR, height, width)


def grid_shape(height: int, width: int) -> tuple[int, int]:
    f = structure_factor(height, width)
    return -(-height // f), -(-width // f)


def extract_structure(image: np.ndarray, level: StructureLevel | str = "m") -> np.ndarray:
    """(h, w) bool edge map of an (H, W, 3) uint8 RGB frame on the structure grid."""
    lv = resolve_structure_level(level)
    if lv is None:
        raise UsageError("extract_structure needs a level, not none")
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"extract_structure needs an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
    return canny_on_grid(image, structure_factor(*image.shape[:2]), BLUR_SIGMA, lv.low, lv.high)


def canny_on_grid(image: np.ndarray, factor: int, sigma: float, low: int, high: int) -> np.ndarray:
    """The detector with explicit parameters: BT.601 luma area-downscaled to ceil(H/factor) x
    ceil(W/factor), Gaussian blur ``sigma``, Canny (L2 gradient) with thresholds ``low``/``high``."""
    import cv2

    H, W = image.shape[:2]
    h, w = -(-H // factor), -(-W // factor)
    grey = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    if (h, w) != (H, W):
        grey = cv2.resize(grey, (w, h), interpolation=cv2.INTER_AREA)
    grey = cv2.GaussianBlur(grey, (0, 0), sigmaX=sigma)
    return cv2.Canny(grey, low, high, L2gradient=True) > 0


def structure_input(edges: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The generator's ``structure`` channel for a decoded edge map: ((H, W, 1) uint8 values, (H, W)
    presence of ones), as :func:`semcomp_core.codecs.semantic.optional_layer_input` takes it."""
    import cv2

    m = np.asarray(edges, dtype=np.uint8) * 255
    if m.shape != (height, width):
        m = cv2.resize(m, (width, height), interpolation=cv2.INTER_LINEAR)
    return m[:, :, None], np.ones((height, width), np.float32)
