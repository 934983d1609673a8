"""Decoder-parameters layer: what the receiver must use to render what the encoder meant.

The encoder chooses these; they travel in every semantic container so that
``semcomp decode``, the benchmark and ``decoder_node`` render the same frame:

* **label-table id** (16 bits): identifies what the seg-map's label values mean
  -- the first two bytes of SHA-256 over the encoder's class names joined by
  newlines (:func:`label_table_id`). A receiver whose model was trained on
  another label table refuses the container with a clear error instead of
  rendering garbage. It names the label *semantics*, not a particular network:
  any renderer trained on the same class table (a retrained GAN, later a
  diffusion model) may decode it -- the receiver chooses.
* **seed** of the generator's noise (decoding is deterministic per seed).

Payload (3..5 bytes)::

    bytes 0-1  label-table id, big-endian
    varint     seed, 0 .. 2**21-1 (unsigned LEB128, minimal, at most 3 bytes)

Nothing may follow the seed. What is *not* here is the receiver's own
configuration: which weights file, renderer or backend it runs.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Sequence

from ..bitstream import LayerId, decode_varint, encode_varint
from ..errors import BitstreamError
from .base import Layer, register_layer

MAX_SEED = 2**21 - 1


def label_table_id(class_names: Sequence[str] | None, num_classes: int) -> int:
    """16-bit id of a label table: its class names in order (or, without names, its size)."""
    text = "\n".join(class_names) if class_names else f"<{int(num_classes)} unnamed classes>"
    if class_names is not None and len(class_names) != num_classes:
        raise ValueError(f"{len(class_names)} class names for {num_classes} classes")
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:2], "big")


@dataclass(frozen=True)
class DecoderParams:
    label_table: int
    seed: int = 0


@register_layer
class DecoderParamsLayer(Layer):
    layer_id = LayerId.DECODER_PARAMS
    name = "decoder-params"

    def encode(self, value: DecoderParams) -> bytes:
        if not 0 <= value.label_table <= 0xFFFF:
            raise ValueError(f"label-table id {value.label_table} outside 0..65535")
        if not 0 <= value.seed <= MAX_SEED:
            raise ValueError(f"seed {value.seed} outside 0..{MAX_SEED}")
        return value.label_table.to_bytes(2, "big") + encode_varint(value.seed)

    @classmethod
    def describe(cls, payload: bytes) -> dict:
        p = cls().decode(payload)
        return {"label_table": f"{p.label_table:#06x}", "seed": p.seed}

    def decode(self, payload: bytes) -> DecoderParams:
        payload = bytes(payload)
        if len(payload) < 3:
            raise BitstreamError(f"decoder-params layer of {len(payload)} bytes, at least 3 expected")
        seed, end = decode_varint(payload, 2, "decoder-params seed")
        if end != len(payload):
            raise BitstreamError(f"{len(payload) - end} trailing bytes in the decoder-params layer")
        return DecoderParams(int.from_bytes(payload[:2], "big"), seed)
