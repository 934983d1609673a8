"""Latent layer: a learned codec's quantised latent, range coded with its learned prior (``gc``).

Payload::

    byte  0    k: latent channels sent (1..255); the receiver zero-fills the rest (channels are ordered)
    bytes 1-2  model tag, big-endian: first two bytes of SHA-256 over the prior's coding scales (see
               :func:`model_tag`); a receiver with another prior refuses the container
    rest       the k x h x w integer symbols, channel-major (c, y, x), each coded with a discretised
               Gaussian of mean 0 and its channel's scale on the support -R..R (constriction's
               QuantizedGaussian through its range coder; 32-bit words, little-endian, trailing zero
               bytes trimmed). h x w = ceil(H/16) x ceil(W/16) of the container's frame.

The coding scales are the prior's per-channel scales rounded to 1e-4 (``coding_scales``), decimal
numbers that every machine turns into the same float64, so the range decoder's model is bit-identical
on the sender and the receiver. Decoding checks the channel count against the receiver's model and
that the coded words end where the payload ends.
"""
from __future__ import annotations

import hashlib

import numpy as np

from ..bitstream import LayerId
from ..errors import BitstreamError
from .base import Layer, register_layer
from .entropy import RangeEncoder, constriction, new_decoder, words_to_bytes

#: symbols are clipped to -R..R (the prior's tails beyond it carry no probability)
R = 63


def coding_scales(scales) -> np.ndarray:
    """The prior's scales as the coder uses them: float64, rounded to 1e-4, at least 0.11."""
    return np.maximum(np.round(np.asarray(scales, np.float64), 4), 0.11)


def model_tag(scales) -> int:
    """16-bit tag of a prior: SHA-256 over its coding scales written as text."""
    text = ",".join(f"{s:.4f}" for s in coding_scales(scales))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:2], "big")


def _model():
    return constriction.stream.model.QuantizedGaussian(-R, R)


@register_layer
class LatentLayer(Layer):
    layer_id = LayerId.LATENT
    name = "latent"

    def __init__(self, scales=(1.0,)) -> None:
        self.scales = coding_scales(scales)
        self.tag = model_tag(self.scales)

    def encode(self, symbols: np.ndarray) -> bytes:
        """``symbols`` (k, h, w) integers (clipped to -R..R) -> payload."""
        k = symbols.shape[0]
        if not 1 <= k <= min(255, len(self.scales)):
            raise ValueError(f"{k} latent channels, the prior has {len(self.scales)}")
        flat = np.clip(symbols, -R, R).astype(np.int32).reshape(-1)
        stds = np.repeat(self.scales[:k], symbols.shape[1] * symbols.shape[2])
        enc = RangeEncoder()
        enc.encode(flat, _model(), np.zeros_like(stds), stds)
        return bytes([k]) + self.tag.to_bytes(2, "big") + words_to_bytes(enc)

    @staticmethod
    def peek(payload: bytes) -> tuple[int, int]:
        """(channels sent, model tag) from the payload's header; BitstreamError if too short."""
        if len(payload) < 3:
            raise BitstreamError(f"latent layer of {len(payload)} bytes, at least 3 expected")
        if payload[0] == 0:
            raise BitstreamError("latent layer with 0 channels")
        return payload[0], int.from_bytes(payload[1:3], "big")

    @classmethod
    def describe(cls, payload: bytes) -> dict:
        k, tag = cls.peek(bytes(payload))
        return {"channels": k, "model_tag": f"{tag:#06x}", "coded_bytes": len(payload) - 3}

    def decode(self, payload: bytes, shape: tuple[int, int] = (1, 1)) -> np.ndarray:
        """Payload -> (k, h, w) int32 symbols for a latent grid ``shape`` = (h, w)."""
        payload = bytes(payload)
        k, tag = self.peek(payload)
        if tag != self.tag:
            raise BitstreamError(f"latent model tag {tag:#06x} is not this receiver's ({self.tag:#06x})")
        if k > len(self.scales):
            raise BitstreamError(f"latent layer sends {k} channels, the model has {len(self.scales)}")
        h, w = shape
        dec = new_decoder(payload[3:])
        stds = np.repeat(self.scales[:k], h * w)
        try:
            flat = np.asarray(dec.decode(_model(), np.zeros_like(stds), stds), np.int32)
        except BaseException as exc:  # constriction raises on words it cannot decode
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            raise BitstreamError(f"corrupt latent layer: {exc}") from None
        if not dec.maybe_exhausted():
            raise BitstreamError("latent layer: coded data continues after the last symbol")
        return flat.reshape(k, h, w)
