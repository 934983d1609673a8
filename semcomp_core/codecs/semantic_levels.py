"""Named quality levels of the semantic codecs: what each spends its bytes on.

Bytes are typical for a 480x360 CamVid frame (container framing included);
``semcomp bench`` measures the real numbers (see BENCHMARKS.md).

The map grid follows the frame (format version 3): a level's ``map_factor``
holds for frames up to about 480x360 (:data:`REFERENCE_PIXELS`); larger frames
get the factor doubled per doubling of the side (:func:`grid_factor`), so the
number of map cells -- and the bytes -- stays about the same whatever the
camera's resolution: a 1024x512 frame is coded on a 1/16 grid at level m (64x32
cells), a 2048x1024 frame on a 1/32 grid. Smaller frames keep the level's
factor. Objects then occupy as many cells as they would in a 480x360 frame.

:data:`RATE_POINTS` adds two coarser operating points below ``xs`` that only
rate control (``kbps=``) uses, when even ``xs`` would overrun the budget or
the frame cap.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Level:
    name: str
    map_factor: int       # seg-map side = ceil(frame side / map_factor)
    thumb: tuple[int, int]  # colour thumbnail (width, height)
    color_qi: int         # colour-map quantiser index (higher = coarser)
    typical_bytes: int


LEVELS = (
    Level("xs", 16, (8, 6), 16, 105),
    Level("s", 16, (16, 12), 14, 140),
    Level("m", 8, (16, 12), 20, 195),
    Level("l", 8, (24, 18), 10, 285),
    Level("xl", 4, (32, 24), 5, 505),
)
DEFAULT_LEVEL = 1
#: operating points of rate control, smallest first: two coarser than xs, then the levels
RATE_POINTS = (
    Level("xxxs", 32, (4, 3), 24, 45),
    Level("xxs", 32, (8, 6), 20, 70),
) + LEVELS
#: frame size up to which a level's map factor applies unchanged (480x360)
REFERENCE_PIXELS = 480 * 360
#: map factors a decoder accepts (seg-map side = ceil(frame side / factor))
MAP_FACTORS = (4, 8, 16, 32, 64)


def grid_factor(map_factor: int, height: int, width: int) -> int:
    """The map factor a level uses on a ``height`` x ``width`` frame: ``map_factor`` times the power of
    two nearest to sqrt(frame pixels / REFERENCE_PIXELS) (never below 1), at most 64."""
    import math

    ratio = height * width / REFERENCE_PIXELS
    k = max(0, round(0.5 * math.log2(ratio))) if ratio > 1 else 0
    return min(map_factor * 2 ** k, MAP_FACTORS[-1])
LEVEL_NAMES = {lv.name: i for i, lv in enumerate(LEVELS)}


def resolve_level(value) -> int:
    """Level index from an index (0..4) or a name (xs, s, m, l, xl)."""
    if isinstance(value, str) and value in LEVEL_NAMES:
        return LEVEL_NAMES[value]
    return int(value)
