"""CLIP layer: a product-quantised image embedding (CoCliCo's semantic layer).

Payload::

    bytes 0-1  quantiser tag, big-endian: first two bytes of SHA-256 over the codebooks of that size
               (:func:`quantiser_tag`); a receiver with other codebooks refuses the container
    rest       B code bytes, one per sub-vector (index into that sub-space's 256-entry codebook);
               B (the embedding's size on the link) is the rest's length: one of the tower's sizes

The codebooks are buffers of the CLIP tower model (``models.clip_tower``), shipped with its weights to
both ends of the link; nothing else about the embedding travels.
"""
from __future__ import annotations

import hashlib

import numpy as np

from ..bitstream import LayerId
from ..errors import BitstreamError, ModelMismatchError
from .base import Layer, register_layer


def quantiser_tag(codebook) -> int:
    """16-bit tag of a codebook tensor/array: SHA-256 over its values rounded to 1e-4 (as text)."""
    values = np.round(np.asarray(codebook, np.float64).ravel(), 4) + 0.0     # no negative zeros
    return int.from_bytes(hashlib.sha256(",".join(f"{v:.4f}" for v in values).encode()).digest()[:2], "big")


@register_layer
class ClipLayer(Layer):
    layer_id = LayerId.CLIP
    name = "clip"

    def __init__(self, tags: dict[int, int] | None = None) -> None:
        """``tags``: {size in bytes: quantiser tag} of the receiver's (or sender's) codebooks."""
        self.tags = dict(tags or {})

    def encode(self, codes: np.ndarray) -> bytes:
        codes = np.asarray(codes)
        n = codes.size
        if n not in self.tags:
            raise ValueError(f"no {n}-byte quantiser (sizes: {sorted(self.tags)})")
        if codes.dtype != np.uint8:
            raise ValueError("CLIP codes must be uint8 codebook indices")
        return self.tags[n].to_bytes(2, "big") + codes.tobytes()

    def decode(self, payload: bytes) -> np.ndarray:
        """The (B,) uint8 codes; BitstreamError for a size no quantiser has, ModelMismatchError for another
        quantiser's tag."""
        payload = bytes(payload)
        if len(payload) < 3:
            raise BitstreamError(f"CLIP layer of {len(payload)} bytes (at least 3)")
        n = len(payload) - 2
        if n not in self.tags:
            raise BitstreamError(f"CLIP layer of {n} code bytes: this receiver's quantisers have "
                                 f"{sorted(self.tags)}")
        tag = int.from_bytes(payload[:2], "big")
        if tag != self.tags[n]:
            raise ModelMismatchError(f"CLIP layer quantised with codebooks {tag:#06x}, this receiver's {n}-byte "
                                     f"codebooks are {self.tags[n]:#06x}: use the sender's CLIP tower (clip=DIR)")
        return np.frombuffer(payload[2:], np.uint8).copy()

    @classmethod
    def describe(cls, payload: bytes) -> dict:
        payload = bytes(payload)
        return {"bytes": max(0, len(payload) - 2),
                "tag": f"{int.from_bytes(payload[:2], 'big'):#06x}" if len(payload) >= 2 else None}
