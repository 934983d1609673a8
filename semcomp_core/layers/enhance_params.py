"""Enhancement-parameters layer: what ``bpg-se``'s receiver needs to enhance the base picture.

Payload (exactly 3 bytes)::

    bytes 0-1  label-table id of the seg map that follows, big-endian (layers.decoder_params.label_table_id)
    byte  2    the base picture's quantiser q, 0..51 (the HEVC QP it was coded with)

The enhancement network takes q as an input (one network for every q); the label-table id lets a
receiver whose network was trained on other classes refuse the container (ModelMismatchError)
instead of enhancing with meaningless labels.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..bitstream import LayerId
from ..errors import BitstreamError
from .base import Layer, register_layer

MAX_Q = 51


@dataclass(frozen=True)
class EnhanceParams:
    label_table: int
    q: int


@register_layer
class EnhanceParamsLayer(Layer):
    layer_id = LayerId.ENHANCE_PARAMS
    name = "enhance-params"

    def encode(self, value: EnhanceParams) -> bytes:
        if not 0 <= value.label_table <= 0xFFFF:
            raise ValueError(f"label-table id {value.label_table} outside 0..65535")
        if not 0 <= value.q <= MAX_Q:
            raise ValueError(f"q {value.q} outside 0..{MAX_Q}")
        return value.label_table.to_bytes(2, "big") + bytes([value.q])

    def decode(self, payload: bytes) -> EnhanceParams:
        payload = bytes(payload)
        if len(payload) != 3:
            raise BitstreamError(f"enhance-params layer of {len(payload)} bytes, 3 expected")
        if payload[2] > MAX_Q:
            raise BitstreamError(f"enhance-params: q {payload[2]} outside 0..{MAX_Q}")
        return EnhanceParams(int.from_bytes(payload[:2], "big"), payload[2])

    @classmethod
    def describe(cls, payload: bytes) -> dict:
        p = cls().decode(payload)
        return {"label_table": f"{p.label_table:#06x}", "q": p.q}
