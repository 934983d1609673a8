"""The semcomp container: one self-describing byte string per frame.

Layout (version 3; the framing is unchanged since version 1), all multi-byte integers as described::

    offset  size  field
    0       2     magic  b"SC" (0x53 0x43)
    2       1     format version (2; version 1 is still read, see below)
    3       1     codec id (semcomp_core.bitstream.ids.CodecId)
    4       1-3   height  in pixels, unsigned LEB128 varint, 1..16384
    .       1-3   width   in pixels, unsigned LEB128 varint, 1..16384
    .       1     number of layers n, 0..16
    .       n x   layer table entry:
                    1    layer type id (semcomp_core.bitstream.ids.LayerId)
                    1-3  payload length in bytes, unsigned LEB128 varint
    .       sum   payloads, concatenated in table order
    end-4   4     CRC-32 (zlib/IEEE 802.3 polynomial), big-endian, over every
                  byte before it

Varints are minimal (no trailing 0x80 padding) and at most 3 bytes
(values < 2**21). The payload lengths must add up exactly to the bytes
between the table and the CRC. A 480x360 frame with two layers has
2+1+1+2+2+1+2*(1+2)+4 = 19 bytes of framing when both payloads are
128 bytes or longer (17 when both are shorter).

Versions: the version byte covers the whole wire format -- the framing above
*and* every layer payload (seg-map contexts, colour-map quantiser, ...). Any
change to what bytes an encoder writes for the same input and parameters bumps
it (the golden bitstreams in ``test/data/golden`` fail otherwise). Version 2
added the decoder-parameters layer (``LayerId.DECODER_PARAMS``: label-table id
and generator seed) to the semantic codecs; version-1 containers (no such
layer: seed 0, label table unchecked) are still decoded. Version 3 added
streams (frame-info, inter seg-map and delta colour-map layers, ids 7-9; see
:mod:`semcomp_core.stream`) and made the seg-map grid follow the frame size
(:func:`semcomp_core.codecs.semantic_levels.grid_factor`: frames larger than
480x360 get a coarser grid than version 2 wrote); version-2 containers decode
unchanged (their map factor is read from the map and frame sizes). :data:`VERSION` is
what :func:`pack` writes, :data:`READABLE_VERSIONS` what :func:`unpack` accepts.

Parsing (:func:`unpack`) is strict: any violation raises
:class:`semcomp_core.errors.BitstreamError` whose message names the problem,
and nothing is allocated beyond slices of the input.

Rate: every byte of the container crosses the link, so
``bpp = 8 * len(container) / (height * width)`` (see :func:`bits_per_pixel`).
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Sequence

from ..errors import BitstreamError
from .ids import KNOWN_CODEC_IDS, KNOWN_LAYER_IDS

MAGIC = b"SC"
VERSION = 3
#: versions this build parses (it writes only :data:`VERSION`)
READABLE_VERSIONS = (1, 2, 3)
MAX_SIDE = 16384
MAX_LAYERS = 16
_MAX_VARINT_BYTES = 3
_CRC_BYTES = 4
MIN_CONTAINER_BYTES = len(MAGIC) + 1 + 1 + 1 + 1 + 1 + _CRC_BYTES


@dataclass(frozen=True)
class Container:
    """A parsed container. ``layers`` is a tuple of ``(layer id, payload)``."""

    codec_id: int
    height: int
    width: int
    layers: tuple[tuple[int, bytes], ...]
    version: int = VERSION

    def find(self, layer_id: int) -> bytes | None:
        """The payload of the first layer of ``layer_id``, or None if the container has none."""
        for lid, payload in self.layers:
            if lid == layer_id:
                return payload
        return None

    def layer(self, layer_id: int) -> bytes:
        """The payload of the first layer of ``layer_id``; BitstreamError if absent."""
        payload = self.find(layer_id)
        if payload is None:
            raise BitstreamError(f"missing layer id {int(layer_id)} for codec id {self.codec_id}")
        return payload


def bits_per_pixel(n_bytes: int, height: int, width: int) -> float:
    """Honest rate: 8 x all bytes that cross the link / pixels."""
    return 8.0 * n_bytes / (height * width)


def encode_varint(value: int) -> bytes:
    if value < 0 or value >= 1 << (7 * _MAX_VARINT_BYTES):
        raise ValueError(f"varint out of range: {value}")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def decode_varint(data: bytes | memoryview, pos: int, what: str) -> tuple[int, int]:
    """Read a minimal LEB128 varint at ``pos``; return (value, new position)."""
    value = 0
    for i in range(_MAX_VARINT_BYTES):
        if pos + i >= len(data):
            raise BitstreamError(f"truncated: {what} runs past the end of the data")
        byte = data[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            if i > 0 and byte == 0:
                raise BitstreamError(f"{what}: non-minimal varint encoding")
            return value, pos + i + 1
    raise BitstreamError(f"{what}: varint longer than {_MAX_VARINT_BYTES} bytes")


def pack(codec_id: int, height: int, width: int, layers: Sequence[tuple[int, bytes]]) -> bytes:
    """Build a container. Raises ValueError on arguments the format cannot hold."""
    if int(codec_id) not in KNOWN_CODEC_IDS:
        raise ValueError(f"unknown codec id {codec_id}")
    for side, name in ((height, "height"), (width, "width")):
        if not 1 <= side <= MAX_SIDE:
            raise ValueError(f"{name} {side} outside 1..{MAX_SIDE}")
    if len(layers) > MAX_LAYERS:
        raise ValueError(f"{len(layers)} layers, at most {MAX_LAYERS}")
    out = bytearray(MAGIC)
    out.append(VERSION)
    out.append(int(codec_id))
    out += encode_varint(height)
    out += encode_varint(width)
    out.append(len(layers))
    for layer_id, payload in layers:
        if int(layer_id) not in KNOWN_LAYER_IDS:
            raise ValueError(f"unknown layer id {layer_id}")
        out.append(int(layer_id))
        out += encode_varint(len(payload))
    for _, payload in layers:
        out += payload
    out += zlib.crc32(out).to_bytes(_CRC_BYTES, "big")
    return bytes(out)


def unpack(data: bytes | bytearray | memoryview) -> Container:
    """Parse and validate a container; raise BitstreamError on any problem."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise BitstreamError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    n = len(data)
    if n < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
        raise BitstreamError("wrong magic: not a semcomp container")
    if n < MIN_CONTAINER_BYTES:
        raise BitstreamError(f"truncated: {n} bytes, a container has at least {MIN_CONTAINER_BYTES}")
    version = data[2]
    if version not in READABLE_VERSIONS:
        raise BitstreamError(f"unsupported format version {version} (this build reads "
                             f"{', '.join(map(str, READABLE_VERSIONS))})")
    body_end = n - _CRC_BYTES
    crc_stored = int.from_bytes(data[body_end:], "big")
    if zlib.crc32(data[:body_end]) != crc_stored:
        raise BitstreamError("CRC mismatch: data corrupted or truncated")
    codec_id = data[3]
    if codec_id not in KNOWN_CODEC_IDS:
        raise BitstreamError(f"unknown codec id {codec_id}")
    pos = 4
    height, pos = decode_varint(data[:body_end], pos, "height")
    width, pos = decode_varint(data[:body_end], pos, "width")
    for side, name in ((height, "height"), (width, "width")):
        if not 1 <= side <= MAX_SIDE:
            raise BitstreamError(f"absurd {name} {side} (allowed 1..{MAX_SIDE})")
    if pos >= body_end:
        raise BitstreamError("truncated: missing layer count")
    n_layers = data[pos]
    pos += 1
    if n_layers > MAX_LAYERS:
        raise BitstreamError(f"absurd layer count {n_layers} (at most {MAX_LAYERS})")
    table = []
    for i in range(n_layers):
        if pos >= body_end:
            raise BitstreamError(f"truncated: layer table entry {i} missing")
        layer_id = data[pos]
        if layer_id not in KNOWN_LAYER_IDS:
            raise BitstreamError(f"unknown layer id {layer_id} in table entry {i}")
        length, pos = decode_varint(data[:body_end], pos + 1, f"length of layer {i}")
        table.append((layer_id, length))
    remaining = body_end - pos
    total = 0
    for i, (_, length) in enumerate(table):
        total += length
        if total > remaining:
            raise BitstreamError(
                f"truncated: layer {i} ends at payload byte {total}, only {remaining} present")
    if total != remaining:
        raise BitstreamError(f"{remaining - total} trailing bytes after the last layer")
    layers = []
    for layer_id, length in table:
        layers.append((layer_id, data[pos:pos + length]))
        pos += length
    return Container(codec_id=codec_id, height=height, width=width, layers=tuple(layers), version=version)
