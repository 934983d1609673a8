"""The semcomp container: one self-describing byte string per frame, readable as far as it goes.

Layout (version 4), all multi-byte integers as described::

    offset  size  field
    0       2     magic  b"SC" (0x53 0x43)
    2       1     format version (4; versions 1-3 are still read, see below)
    3       1     codec id (semcomp_core.bitstream.ids.CodecId)
    4       1-3   height  in pixels, unsigned LEB128 varint, 1..16384
    .       1-3   width   in pixels, unsigned LEB128 varint, 1..16384
    .       1     number of layers n, 0..16
    .       n x   layer table entry:
                    1    layer type id (semcomp_core.bitstream.ids.LayerId)
                    1-3  payload length L in bytes, unsigned LEB128 varint
    .       n x   layer, in table order:
                    L    payload
                    2|4  check: CRC over *every byte of the container before it*
                         (header, table, earlier layers and their checks):
                         CRC-16/CCITT-FALSE (2 bytes) when L < 4096, else
                         CRC-32 (zlib/IEEE 802.3, 4 bytes); big-endian
    .       2     only when n = 0: CRC-16/CCITT-FALSE of the header and table

Varints are minimal (no trailing 0x80 padding) and at most 3 bytes
(values < 2**21). A 480x360 frame with three short layers has
2+1+1+2+2+1+3*2+3*2 = 21 bytes of framing.

Truncation (scalable decoding). Every layer ends with a check over the whole
container up to there, so a container cut right after any complete layer is
itself verifiable: :func:`unpack` accepts it, returns the complete layers and
marks it ``truncated`` (``declared`` still lists the whole table). Encoders
order layers from most to least essential -- frame info, decoder parameters,
seg map, colour map, structure, signal (ROI / classic base) -- so a link that
drops the tail still delivers a picture (docs/bitstream.md, "Layer order and
truncation"). A cut anywhere else (inside the header, the table, a payload or
a check) is a BitstreamError, as is a failed check. The check width follows
the polynomial: CRC-16/CCITT detects every 1-, 2- and 3-bit error and every
burst up to 16 bits in messages shorter than 4096 bytes; longer layers (a
classic-codec picture) keep the CRC-32 versions 1-3 had on the whole
container.

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
unchanged (their map factor is read from the map and frame sizes). Version 4
replaced the single trailing CRC-32 of versions 1-3 (same header and table;
payloads followed by one CRC-32 over everything) by the per-layer checks above
and added the structure layer (id 4). :data:`VERSION` is what :func:`pack`
writes, :data:`READABLE_VERSIONS` what :func:`unpack` accepts.

Parsing (:func:`unpack`) is strict: any violation raises
:class:`semcomp_core.errors.BitstreamError` whose message names the problem,
and nothing is allocated beyond slices of the input.

Rate: every byte of the container crosses the link, so
``bpp = 8 * len(container) / (height * width)`` (see :func:`bits_per_pixel`).
"""
from __future__ import annotations

import binascii
import zlib
from dataclasses import dataclass
from typing import Sequence

from ..errors import BitstreamError
from .ids import KNOWN_CODEC_IDS, KNOWN_LAYER_IDS

MAGIC = b"SC"
VERSION = 4
#: versions this build parses (it writes only :data:`VERSION`)
READABLE_VERSIONS = (1, 2, 3, 4)
MAX_SIDE = 16384
MAX_LAYERS = 16
_MAX_VARINT_BYTES = 3
_CRC_BYTES = 4  # versions 1-3: one CRC-32 at the end
#: layers of at least this many bytes get a CRC-32 check, shorter ones a CRC-16 (version 4)
LONG_LAYER_BYTES = 4096
MIN_CONTAINER_BYTES = len(MAGIC) + 1 + 1 + 1 + 1 + 1 + 2


def check_bytes(payload_length: int) -> int:
    """Bytes of the check after a layer of ``payload_length`` bytes (version 4)."""
    return 2 if payload_length < LONG_LAYER_BYTES else 4


def _crc16(data, value: int = 0xFFFF) -> int:
    return binascii.crc_hqx(data, value)   # CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection


@dataclass(frozen=True)
class Container:
    """A parsed container. ``layers`` is a tuple of ``(layer id, payload)``."""

    codec_id: int
    height: int
    width: int
    layers: tuple[tuple[int, bytes], ...]
    version: int = VERSION
    #: every layer id of the table, complete or not (== ids of ``layers`` unless truncated)
    declared: tuple[int, ...] | None = None

    @property
    def truncated(self) -> bool:
        """True when the container was cut after a complete layer (version 4): ``layers`` holds the
        complete ones, ``declared`` the whole table."""
        return self.declared is not None and len(self.declared) > len(self.layers)

    @property
    def layer_ids(self) -> list[int]:
        return [lid for lid, _ in self.layers]

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
            if self.truncated and int(layer_id) in self.declared:
                raise BitstreamError(f"layer id {int(layer_id)} lost: the container was cut after "
                                     f"{len(self.layers)} of its {len(self.declared)} layers")
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
    if not layers:
        out += _crc16(out).to_bytes(2, "big")
    for _, payload in layers:
        out += payload
        if check_bytes(len(payload)) == 2:
            out += _crc16(out).to_bytes(2, "big")
        else:
            out += zlib.crc32(out).to_bytes(4, "big")
    return bytes(out)


def _header(data: bytes, end: int) -> tuple[int, int, int, list[tuple[int, int]], int]:
    """(codec id, height, width, table [(id, length)], position after the table) from data[:end]."""
    codec_id = data[3]
    if codec_id not in KNOWN_CODEC_IDS:
        raise BitstreamError(f"unknown codec id {codec_id}")
    view = data[:end]
    height, pos = decode_varint(view, 4, "height")
    width, pos = decode_varint(view, pos, "width")
    for side, name in ((height, "height"), (width, "width")):
        if not 1 <= side <= MAX_SIDE:
            raise BitstreamError(f"absurd {name} {side} (allowed 1..{MAX_SIDE})")
    if pos >= end:
        raise BitstreamError("truncated: missing layer count")
    n_layers = data[pos]
    pos += 1
    if n_layers > MAX_LAYERS:
        raise BitstreamError(f"absurd layer count {n_layers} (at most {MAX_LAYERS})")
    table = []
    for i in range(n_layers):
        if pos >= end:
            raise BitstreamError(f"truncated: layer table entry {i} missing")
        layer_id = data[pos]
        if layer_id not in KNOWN_LAYER_IDS:
            raise BitstreamError(f"unknown layer id {layer_id} in table entry {i}")
        length, pos = decode_varint(view, pos + 1, f"length of layer {i}")
        table.append((layer_id, length))
    return codec_id, height, width, table, pos


def unpack(data: bytes | bytearray | memoryview) -> Container:
    """Parse and validate a container; raise BitstreamError on any problem. A version-4 container cut
    right after a complete layer parses, with ``truncated`` set (see the module docstring)."""
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
    if version < 4:
        return _unpack_v3(data, version)
    codec_id, height, width, table, pos = _header(data, n)
    declared = tuple(lid for lid, _ in table)
    if not table:
        if n != pos + 2:
            raise BitstreamError("truncated: header check missing" if n < pos + 2 else
                                 f"{n - pos - 2} trailing bytes after the header check")
        if _crc16(data[:pos]) != int.from_bytes(data[pos:], "big"):
            raise BitstreamError("header check failed: data corrupted")
        return Container(codec_id, height, width, (), version, declared)
    # where each layer (payload + check) ends, from the table alone
    ends, at = [], pos
    for layer_id, length in table:
        at += length + check_bytes(length)
        ends.append(at)
    if n > ends[-1]:
        raise BitstreamError(f"{n - ends[-1]} trailing bytes after the last layer")
    if n not in ends:
        i = next(i for i, e in enumerate(ends) if e > n)
        raise BitstreamError(f"truncated inside layer {i} (id {table[i][0]}): {n} bytes, the layer ends at "
                             f"byte {ends[i]}")
    complete = ends.index(n) + 1
    layers = []
    crc16, crc32, done = 0xFFFF, 0, 0
    for i in range(complete):
        layer_id, length = table[i]
        start = ends[i] - length - check_bytes(length)
        body_end = start + length
        crc16, crc32 = _crc16(data[done:body_end], crc16), zlib.crc32(data[done:body_end], crc32)
        stored = int.from_bytes(data[body_end:ends[i]], "big")
        if stored != (crc16 if check_bytes(length) == 2 else crc32):
            raise BitstreamError(f"check of layer {i} (id {layer_id}) failed: data corrupted")
        crc16, crc32 = _crc16(data[body_end:ends[i]], crc16), zlib.crc32(data[body_end:ends[i]], crc32)
        done = ends[i]
        layers.append((layer_id, data[start:body_end]))
    return Container(codec_id, height, width, tuple(layers), version, declared)


def layer_ends(data: bytes) -> list[int]:
    """Byte counts right after each complete layer of a version-4 container (its valid cut points)."""
    c = unpack(data)
    if c.version < 4:
        raise BitstreamError(f"a version-{c.version} container has no cut points (version 4 has)")
    ends, at = [], len(data) - sum(len(p) + check_bytes(len(p)) for _, p in c.layers)
    for _, p in c.layers:
        at += len(p) + check_bytes(len(p))
        ends.append(at)
    return ends


def truncate(data: bytes, max_bytes: int | None = None, keep_layers: int | None = None) -> bytes:
    """The longest valid prefix of a version-4 container with at most ``max_bytes`` bytes and at most
    ``keep_layers`` layers (what a link with a byte cap forwards: whole layers, tail first dropped).
    BitstreamError when even the first layer does not fit (or the container is not valid)."""
    ends = layer_ends(data)
    cut = [e for i, e in enumerate(ends) if (max_bytes is None or e <= max_bytes)
           and (keep_layers is None or i < keep_layers)]
    if not cut:
        raise BitstreamError(f"not even the first layer fits in {max_bytes} bytes ({ends[0] if ends else 0} "
                             f"needed)" if ends else "the container has no layers to keep")
    return bytes(data[:cut[-1]])


def _unpack_v3(data: bytes, version: int) -> Container:
    """Versions 1-3: one CRC-32 over everything at the end; no truncation."""
    n = len(data)
    if n < len(MAGIC) + 1 + 1 + 1 + 1 + 1 + _CRC_BYTES:
        raise BitstreamError(f"truncated: {n} bytes, a version-{version} container has at least "
                             f"{len(MAGIC) + 5 + _CRC_BYTES}")
    body_end = n - _CRC_BYTES
    crc_stored = int.from_bytes(data[body_end:], "big")
    if zlib.crc32(data[:body_end]) != crc_stored:
        raise BitstreamError("CRC mismatch: data corrupted or truncated")
    codec_id, height, width, table, pos = _header(data, body_end)
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
    return Container(codec_id=codec_id, height=height, width=width, layers=tuple(layers), version=version,
                     declared=tuple(lid for lid, _ in table))
