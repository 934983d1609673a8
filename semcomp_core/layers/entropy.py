"""Thin helpers around constriction's range coder (no hand-written coder here).

The range coder emits 32-bit words; trailing zero bytes of the last word are
trimmed on the wire and restored as zeros when decoding, which is exact.
"""
from __future__ import annotations

import numpy as np
import constriction

# constriction's submodules are attributes of its compiled extension, not importable modules
Categorical = constriction.stream.model.Categorical
RangeEncoder = constriction.stream.queue.RangeEncoder
RangeDecoder = constriction.stream.queue.RangeDecoder

from ..errors import BitstreamError

__all__ = ["constriction", "Categorical", "RangeEncoder", "new_decoder", "words_to_bytes", "MAX_CODED_BYTES"]

#: hard cap on the coded part of any layer payload (the container caps lengths anyway)
MAX_CODED_BYTES = 1 << 21


def words_to_bytes(encoder: RangeEncoder) -> bytes:
    words = np.asarray(encoder.get_compressed(), dtype="<u4")
    return words.tobytes().rstrip(b"\x00")


def new_decoder(data: bytes) -> RangeDecoder:
    if len(data) > MAX_CODED_BYTES:
        raise BitstreamError(f"coded data of {len(data)} bytes exceeds {MAX_CODED_BYTES}")
    pad = (-len(data)) % 4
    words = np.frombuffer(bytes(data) + b"\x00" * pad, dtype="<u4").astype(np.uint32)
    return RangeDecoder(words)
