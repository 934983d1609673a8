"""Region-of-interest layer (id 5): pixels inside a mask coded classically (HEVC intra), the rest generated.

The mask lives on the seg-map grid (one bit per map cell). It travels either as a rule the
receiver applies to the decoded seg map -- "cells whose label is in this class set, dilated by r
cells" (2-6 bytes) -- or, when it is not derivable from the map (low-confidence cells, a user's
mask), as an explicit two-class map coded with the seg-map coder (:mod:`.segmap`, no prior). The
pixels are one HEVC intra picture of the mask's bounding box (in frame pixels, possibly
downscaled by 2**shift), coded like the ``bpg`` codec's x265 path; the HEVC parameter sets
(VPS/SPS/PPS, ~75 bytes raw) are sent deflated against a fixed dictionary of typical parameter
sets (about 10-35 bytes); the dictionary is stored as hex text (``data/priors/hevc_param_sets_v1.hex``).

A *full-frame* ROI layer is the classic fallback: the frame could not be read (too much of it
uncertain for the budget), so the whole frame is one HEVC picture at the budget and the container
carries no semantic layers.

Payload::

    byte 0   flags: bit 0 full frame (fallback), bit 1 explicit mask; bits 2-7 zero;
             full frame and explicit mask exclude each other
    -- mask (absent for a full frame)
    explicit:  varint n, then n bytes: SEGMAP payload (alphabet 2) of the cell mask, the seg map's shape
    classes:   varint class set (bit c = class c; nonzero, < 2**21: classes 0..20 -- a rule on classes
               with larger ids goes as an explicit mask), byte dilation radius in cells 0..15
    -- picture
    byte     shift 0..3 (the box is coded at 1/2**shift of its size, rounded up)
    varint   top, left, height, width of the box in frame pixels (height, width >= 1; inside the frame;
             the full-frame box is the frame)
    byte     parameter-set dictionary id (1 = hevc-ps-v1)
    varint   n, then n bytes: raw deflate (with that dictionary) of the VPS, SPS and PPS NAL units
             in the HEVC_INTRA payload format of ``codecs.bpg`` (varint length + NAL unit each);
             inflates to at most 1024 bytes
    rest     the slice NAL units, same format; the whole picture must parse as a HEVC_INTRA payload
             of the picture's size (``bpg.check_payload``)
"""
from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass

import numpy as np

from ..bitstream import LayerId, decode_varint, encode_varint
from ..errors import BitstreamError
from ..paths import data_path
from .base import Layer, register_layer

FULL_FRAME = 0x01
EXPLICIT = 0x02
MAX_SHIFT = 3
MAX_DILATION = 15
#: class rules cover class ids 0..MAX_RULE_CLASS (the class set is a varint of at most 3 bytes)
MAX_RULE_CLASS = 20
#: explicit masks are at most this many cells a side (a 16384-pixel frame side at map factor 4)
MAX_MASK_SIDE = 4096
MAX_PS_BYTES = 1024
PS_DICTIONARIES = {1: "hevc_param_sets_v1.hex"}
PS_DICTIONARY_ID = 1


@functools.lru_cache(maxsize=4)
def ps_dictionary(dict_id: int) -> bytes:
    """The fixed deflate dictionary of HEVC parameter sets with id ``dict_id`` (part of the format)."""
    if dict_id not in PS_DICTIONARIES:
        raise BitstreamError(f"unknown ROI parameter-set dictionary id {dict_id}")
    lines = data_path("priors", PS_DICTIONARIES[dict_id]).read_text().splitlines()
    return bytes.fromhex("".join(ln for ln in lines if not ln.startswith("#")))


@dataclass(frozen=True)
class RoiMaskRule:
    """The mask as a rule on the decoded seg map: labels in ``classes`` (bit set), dilated by ``dilation``."""

    classes: int
    dilation: int = 1

    def class_ids(self) -> list[int]:
        return [c for c in range(self.classes.bit_length()) if self.classes >> c & 1]


@dataclass(frozen=True)
class RoiData:
    """One ROI layer: ``mask`` is a :class:`RoiMaskRule`, an explicit (h, w) bool cell mask, or None
    (full frame); ``box`` (top, left, height, width) in frame pixels; ``hevc`` the picture as a
    HEVC_INTRA payload (parameter sets + slices) of size ``picture_shape``."""

    mask: RoiMaskRule | np.ndarray | None
    box: tuple[int, int, int, int]
    shift: int
    hevc: bytes

    @property
    def full_frame(self) -> bool:
        return self.mask is None

    @property
    def picture_shape(self) -> tuple[int, int]:
        return picture_shape(self.box, self.shift)


def picture_shape(box: tuple[int, int, int, int], shift: int) -> tuple[int, int]:
    _, _, h, w = box
    return -(-h // (1 << shift)), -(-w // (1 << shift))


def _split_param_sets(hevc: bytes) -> tuple[bytes, bytes]:
    from ..codecs import hevc_nal

    nals = hevc_nal.unpack_nals(hevc)
    return hevc_nal.pack_nals(nals[:3]), hevc_nal.pack_nals(nals[3:])


def deflate_param_sets(ps: bytes, dict_id: int = PS_DICTIONARY_ID) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, zdict=ps_dictionary(dict_id))
    return c.compress(ps) + c.flush()


def inflate_param_sets(data: bytes, dict_id: int) -> bytes:
    d = zlib.decompressobj(-15, zdict=ps_dictionary(dict_id))
    try:
        out = d.decompress(data, MAX_PS_BYTES)
    except zlib.error as exc:
        raise BitstreamError(f"ROI parameter sets: corrupt deflate data ({exc})") from None
    if d.unconsumed_tail or not d.eof or d.unused_data:
        raise BitstreamError(f"ROI parameter sets: deflate stream is truncated, longer than {MAX_PS_BYTES} "
                             f"bytes, or followed by extra bytes")
    return out


def _byte(data: bytes, pos: int, what: str, high: int) -> tuple[int, int]:
    """One byte 0..high at ``pos``; (value, next position)."""
    if pos >= len(data):
        raise BitstreamError(f"truncated: {what} missing")
    if data[pos] > high:
        raise BitstreamError(f"{what} {data[pos]} above {high}")
    return data[pos], pos + 1


@register_layer
class RoiLayer(Layer):
    layer_id = LayerId.ROI
    name = "roi"

    def encode(self, value: RoiData) -> bytes:
        out = bytearray()
        top, left, h, w = value.box
        if not all(isinstance(v, (int, np.integer)) for v in value.box) or h < 1 or w < 1 or top < 0 or left < 0 \
                or not isinstance(value.shift, (int, np.integer)) or not 0 <= value.shift <= MAX_SHIFT:
            raise ValueError(f"ROI box {value.box} / shift {value.shift} out of range")
        if value.mask is None:
            out.append(FULL_FRAME)
        elif isinstance(value.mask, RoiMaskRule):
            if not 0 < value.mask.classes < 1 << (MAX_RULE_CLASS + 1) or not 0 <= value.mask.dilation <= MAX_DILATION:
                raise ValueError(f"ROI class rule out of range (classes 0..{MAX_RULE_CLASS}, dilation "
                                 f"0..{MAX_DILATION}): {value.mask}")
            out.append(0)
            out += encode_varint(value.mask.classes) + bytes([value.mask.dilation])
        else:
            from .segmap import SegMapLayer

            cells = np.asarray(value.mask)
            if cells.ndim != 2 or cells.dtype != bool or not 0 < min(cells.shape) <= max(cells.shape) <= MAX_MASK_SIDE:
                raise ValueError(f"explicit ROI mask must be a 2-D bool array of 1..{MAX_MASK_SIDE} cells a side, "
                                 f"got {cells.shape} {cells.dtype}")
            coded = SegMapLayer(num_classes=2, prior_id=0).encode(cells.astype(np.uint8))
            out.append(EXPLICIT)
            out += encode_varint(len(coded)) + coded
        try:
            from ..codecs.bpg import check_payload

            check_payload(value.hevc, *picture_shape(value.box, value.shift))
        except BitstreamError as exc:
            raise ValueError(f"ROI picture is not a HEVC intra picture of the box's size: {exc}") from None
        out.append(value.shift)
        for v in value.box:
            out += encode_varint(int(v))
        ps, slices = _split_param_sets(value.hevc)
        z = deflate_param_sets(ps)
        out.append(PS_DICTIONARY_ID)
        out += encode_varint(len(z)) + z + slices
        return bytes(out)

    @classmethod
    def describe(cls, payload: bytes) -> dict:
        d = cls().decode(payload, check_picture=False, decode_mask=False)
        mask = ("full frame (classic fallback)" if d.mask is None else
                f"classes {d.mask.class_ids()} dilated {d.mask.dilation}" if isinstance(d.mask, RoiMaskRule)
                else f"explicit {d.mask.shape[0]}x{d.mask.shape[1]} cells")
        return {"mask": mask, "box": list(d.box), "shift": d.shift,
                "picture": "x".join(map(str, d.picture_shape)), "hevc_bytes": len(d.hevc)}

    def decode(self, payload: bytes, frame: tuple[int, int] | None = None,
               map_shape: tuple[int, int] | None = None, check_picture: bool = True,
               decode_mask: bool = True) -> RoiData:
        """Parse strictly. ``frame`` (H, W) bounds the box; ``map_shape`` is the shape an explicit mask
        must have. The picture's NAL structure and SPS size are checked (``check_picture``)."""
        from .segmap import SegMapLayer

        data = bytes(payload)
        if not data:
            raise BitstreamError("empty ROI layer")
        flags, pos = data[0], 1
        if flags & ~(FULL_FRAME | EXPLICIT) or flags == FULL_FRAME | EXPLICIT:
            raise BitstreamError(f"ROI layer: invalid flags {flags:#04x}")
        mask: RoiMaskRule | np.ndarray | None = None
        if flags & EXPLICIT:
            n, pos = decode_varint(data, pos, "ROI mask length")
            if pos + n > len(data):
                raise BitstreamError("truncated: ROI mask runs past the end of the layer")
            coded = data[pos:pos + n]
            pos += n
            shape = SegMapLayer.peek_shape(coded)
            if map_shape is not None and shape != tuple(map_shape):
                raise BitstreamError(f"ROI mask of {shape[0]}x{shape[1]} cells, the seg map has "
                                     f"{map_shape[0]}x{map_shape[1]}")
            if coded[0] != 0 or coded[1] != 1:
                raise BitstreamError("ROI mask: must be coded without prior, alphabet 2 (a 0/1 cell map)")
            if decode_mask:
                cells = SegMapLayer(num_classes=2, prior_id=0).decode(coded, max_shape=map_shape or
                                                                      (MAX_MASK_SIDE, MAX_MASK_SIDE))
                mask = cells.astype(bool)
            else:                       # describe(): the shape only (decoding a large mask takes seconds)
                mask = np.zeros(shape, bool)
        elif not flags & FULL_FRAME:
            classes, pos = decode_varint(data, pos, "ROI class set")
            if not classes:
                raise BitstreamError("ROI class set is empty")
            dilation, pos = _byte(data, pos, "ROI dilation", MAX_DILATION)
            mask = RoiMaskRule(classes, dilation)
        shift, pos = _byte(data, pos, "ROI shift", MAX_SHIFT)
        box = []
        for what in ("top", "left", "height", "width"):
            v, pos = decode_varint(data, pos, f"ROI box {what}")
            box.append(v)
        top, left, h, w = box
        if h < 1 or w < 1:
            raise BitstreamError(f"ROI box {h}x{w}: empty")
        if frame is not None:
            H, W = frame
            if top + h > H or left + w > W:
                raise BitstreamError(f"ROI box {box} outside the {W}x{H} frame")
            if mask is None and tuple(box) != (0, 0, H, W):
                raise BitstreamError(f"full-frame ROI with box {box}, not the {W}x{H} frame")
        if pos >= len(data):
            raise BitstreamError("truncated: ROI parameter-set dictionary id missing")
        dict_id = data[pos]
        n, pos = decode_varint(data, pos + 1, "ROI parameter-set length")
        if pos + n > len(data):
            raise BitstreamError("truncated: ROI parameter sets run past the end of the layer")
        ps = inflate_param_sets(data[pos:pos + n], dict_id)
        hevc = ps + data[pos + n:]
        d = RoiData(mask, (top, left, h, w), shift, hevc)
        if check_picture:
            from ..codecs.bpg import check_payload

            ph, pw = d.picture_shape
            check_payload(hevc, ph, pw)
        return d
