"""Frame-info layer: where a frame sits in a stream (format version 3).

Every frame of a semantic *stream* (``gop`` > 1, :mod:`semcomp_core.stream`)
carries it; a container without it is a stand-alone intra frame (what a single
image, or ``gop=1``, codes). Payload (3..8 bytes)::

    byte 0   flags: bit 0 = key frame (decodable on its own); bits 1-7 must be 0
    byte 1   stream tag: chosen at random when the sender's stream starts, so a
             receiver never renders an inter frame against a reference from
             another stream (an encoder restart, a second camera on the topic)
    varint   sequence number, 0 .. 2**21-1, +1 per frame, wrapping to 0
    varint   inter frames only: reference distance d >= 1 -- the frame is coded
             against frame (sequence - d) mod 2**21; nothing may follow

Key frames carry no reference distance. A receiver holds the last frame it
decoded; an inter frame whose reference is not that frame (lost, corrupt or
reordered frames, another stream tag) is refused with
:class:`semcomp_core.stream.ReferenceMissingError` until the next key frame.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..bitstream import LayerId, decode_varint, encode_varint
from ..errors import BitstreamError
from .base import Layer, register_layer

SEQ_MODULO = 2**21


@dataclass(frozen=True)
class FrameHeader:
    key: bool
    stream_tag: int
    seq: int
    #: reference distance (0 for key frames)
    ref_distance: int = 0

    @property
    def ref_seq(self) -> int | None:
        return None if self.key else (self.seq - self.ref_distance) % SEQ_MODULO


@register_layer
class FrameInfoLayer(Layer):
    layer_id = LayerId.FRAME_INFO
    name = "frame-info"

    def encode(self, value: FrameHeader) -> bytes:
        if not 0 <= value.stream_tag <= 255:
            raise ValueError(f"stream tag {value.stream_tag} outside 0..255")
        if not 0 <= value.seq < SEQ_MODULO:
            raise ValueError(f"sequence number {value.seq} outside 0..{SEQ_MODULO - 1}")
        out = bytes([1 if value.key else 0, value.stream_tag]) + encode_varint(value.seq)
        if value.key:
            if value.ref_distance:
                raise ValueError("a key frame has no reference")
            return out
        if not 1 <= value.ref_distance < SEQ_MODULO:
            raise ValueError(f"reference distance {value.ref_distance} outside 1..{SEQ_MODULO - 1}")
        return out + encode_varint(value.ref_distance)

    @classmethod
    def describe(cls, payload: bytes) -> dict:
        h = cls().decode(payload)
        return {"frame": "key" if h.key else "inter", "stream_tag": h.stream_tag, "seq": h.seq,
                **({} if h.key else {"ref_seq": h.ref_seq})}

    def decode(self, payload: bytes) -> FrameHeader:
        payload = bytes(payload)
        if len(payload) < 3:
            raise BitstreamError(f"frame-info layer of {len(payload)} bytes, at least 3 expected")
        flags = payload[0]
        if flags & ~1:
            raise BitstreamError(f"frame-info flags {flags:#04x} set reserved bits")
        key = bool(flags & 1)
        seq, pos = decode_varint(payload, 2, "frame-info sequence number")
        dist = 0
        if not key:
            dist, pos = decode_varint(payload, pos, "frame-info reference distance")
            if dist == 0:
                raise BitstreamError("inter frame with reference distance 0")
        if pos != len(payload):
            raise BitstreamError(f"{len(payload) - pos} trailing bytes in the frame-info layer")
        return FrameHeader(key, payload[1], seq, dist)
