"""Named quality levels of the semantic codecs: what each spends its bytes on.

Bytes are typical for a 480x360 CamVid frame (container framing included);
``semcomp bench`` measures the real numbers (see BENCHMARKS.md).
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
DEFAULT_LEVEL = 2
LEVEL_NAMES = {lv.name: i for i, lv in enumerate(LEVELS)}


def resolve_level(value) -> int:
    """Level index from an index (0..4) or a name (xs, s, m, l, xl)."""
    if isinstance(value, str) and value in LEVEL_NAMES:
        return LEVEL_NAMES[value]
    return int(value)
