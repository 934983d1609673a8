"""The colour map a receiver assumes when a container was cut before its colour map.

Each class gets its mean colour over the training frames of its label table
(``data/priors/class_colours_v1.json``, keyed by label-table id, :func:`label_table_id`); tables
without an entry get mid-grey. :func:`prior_colour_map` paints those colours on the decoded label
map and quantises a 16x12 thumbnail of it, so the generator sees what a colour map would have said
about a typical frame with this layout.
"""
from __future__ import annotations

import functools
import json

import numpy as np

from ..paths import data_path

#: thumbnail size and quantiser index of the assumed colour map
PRIOR_THUMB = (16, 12)
PRIOR_QI = 10


@functools.lru_cache(maxsize=1)
def _tables() -> dict:
    return json.loads(data_path("priors", "class_colours_v1.json").read_text())["tables"]


def class_colours(label_table: int, num_classes: int) -> np.ndarray:
    """(num_classes + 1, 3) uint8: each class's mean colour (grey for unknown tables and classes);
    the last row is for labels outside the table."""
    out = np.full((num_classes + 1, 3), 128, np.uint8)
    entry = _tables().get(f"{label_table:#06x}")
    if entry is not None:
        rgb = np.asarray(entry["rgb"], np.uint8)[:num_classes]
        out[:len(rgb)] = rgb
    return out


def prior_colour_map(labels: np.ndarray, label_table: int) -> tuple[np.ndarray, int]:
    """(quantised coefficients, quantiser index) of the assumed colour map for ``labels``."""
    from .colormap import quantise
    from .scale import thumbnail

    k = int(labels.max()) + 1
    painted = class_colours(label_table, k)[labels]
    h, w = labels.shape
    tw, th = min(PRIOR_THUMB[0], w), min(PRIOR_THUMB[1], h)
    return quantise(thumbnail(np.ascontiguousarray(painted), tw, th), PRIOR_QI), PRIOR_QI
