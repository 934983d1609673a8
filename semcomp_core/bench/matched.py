"""Classic anchors at matched bytes: the BPG picture a semcomp frame is compared with."""
from __future__ import annotations

import numpy as np


def bpg_at(image: np.ndarray, at_least: int) -> tuple[int, bytes]:
    """(q, container) of the largest BPG q (fewest bytes) whose container has at least ``at_least`` bytes,
    so BPG never gets fewer bytes than the frame it is compared with (q=10 if none has)."""
    from ..codecs import build

    best = None
    for q in range(51, 9, -1):
        data = build(f"bpg:q={q}").encode(image)
        best = (q, data)
        if len(data) >= at_least:
            break
    return best
