"""HEVC NAL units, the SPS fields we need, and the few HEIF boxes around them.

Used by :mod:`semcomp_core.codecs.bpg` to send what an HEVC intra encoder
really produces (parameter sets + slice data) instead of a whole HEIF file,
and to wrap those NAL units back into a minimal HEIF file that libheif can
decode. Three parts:

* NAL lists -- :func:`pack_nals` / :func:`unpack_nals`: varint-length-prefixed
  NAL units, parsed strictly (see the payload format in ``bpg``).
* SPS -- :func:`parse_sps` reads the sequence parameter set up to the bit
  depths (ITU-T H.265 7.3.2.2), :func:`set_conformance_window` rewrites its
  cropping window. Emulation-prevention bytes are removed before parsing and
  re-inserted after writing.
* HEIF (ISO/IEC 23008-12 on ISO BMFF) -- :func:`extract_heif_hevc` pulls the
  primary ``hvc1`` item's NAL units out of a file libheif wrote;
  :func:`build_heif` writes ``ftyp`` + ``meta`` + ``mdat`` for one image.

Every parser here raises :class:`~semcomp_core.errors.BitstreamError` (and
nothing else) on malformed input.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Iterator, Sequence

from ..bitstream import decode_varint, encode_varint
from ..errors import BitstreamError

# NAL unit types (H.265 table 7-1) used here
NAL_VPS = 32
NAL_SPS = 33
NAL_PPS = 34
NAL_PREFIX_SEI = 39
NAL_SUFFIX_SEI = 40
IRAP_SLICE_TYPES = range(16, 22)          # BLA_W_LP .. CRA_NUT: intra random access slices
PARAMETER_SET_TYPES = (NAL_VPS, NAL_SPS, NAL_PPS)

#: at most this many luma samples of padding right of / below the picture
MAX_PADDING = 64
_MAX_EXP_GOLOMB_ZEROS = 31


# -- NAL units -------------------------------------------------------------------------------

def nal_type(nal: bytes) -> int:
    """The nal_unit_type of a NAL unit (6 bits after the forbidden zero bit)."""
    return (nal[0] >> 1) & 0x3F


def check_nal_header(nal: bytes, index: int) -> int:
    """Validate a NAL unit's 2-byte header; return its type.

    Requires forbidden_zero_bit 0, nuh_layer_id 0, TemporalId 0 and at least
    one payload byte.
    """
    if len(nal) < 3:
        raise BitstreamError(f"NAL unit {index} is {len(nal)} bytes, at least 3 needed")
    if nal[0] & 0x80:
        raise BitstreamError(f"NAL unit {index}: forbidden_zero_bit is set")
    layer_id = ((nal[0] & 1) << 5) | (nal[1] >> 3)
    temporal_id_plus1 = nal[1] & 7
    if layer_id != 0 or temporal_id_plus1 != 1:
        raise BitstreamError(
            f"NAL unit {index}: layer id {layer_id}, temporal id plus 1 {temporal_id_plus1} (need 0 and 1)")
    return nal_type(nal)


def pack_nals(nals: Sequence[bytes]) -> bytes:
    """Concatenate NAL units, each prefixed by its length as a LEB128 varint."""
    out = bytearray()
    for nal in nals:
        out += encode_varint(len(nal))
        out += nal
    return bytes(out)


def unpack_nals(payload: bytes) -> list[bytes]:
    """Split a :func:`pack_nals` payload and check the NAL sequence.

    The sequence must be VPS, SPS, PPS, then one or more units that are each
    an IRAP slice segment or an SEI message, at least one of them a slice.
    """
    nals: list[bytes] = []
    pos = 0
    while pos < len(payload):
        length, pos = decode_varint(payload, pos, f"length of NAL unit {len(nals)}")
        if length > len(payload) - pos:
            raise BitstreamError(
                f"truncated: NAL unit {len(nals)} needs {length} bytes, {len(payload) - pos} left")
        nals.append(bytes(payload[pos:pos + length]))
        pos += length
    check_nal_sequence(nals)
    return nals


def check_nal_sequence(nals: Sequence[bytes]) -> None:
    """Enforce VPS, SPS, PPS, then IRAP slices / SEI with at least one slice."""
    types = [check_nal_header(nal, i) for i, nal in enumerate(nals)]
    if tuple(types[:3]) != PARAMETER_SET_TYPES:
        raise BitstreamError(f"NAL unit types {types[:6]}: expected VPS, SPS, PPS (32, 33, 34) first")
    n_slices = 0
    for i, t in enumerate(types[3:], start=3):
        if t in IRAP_SLICE_TYPES:
            n_slices += 1
        elif t not in (NAL_PREFIX_SEI, NAL_SUFFIX_SEI):
            raise BitstreamError(f"NAL unit {i} has type {t}: only intra slices (16..21) and SEI allowed")
    if n_slices == 0:
        raise BitstreamError("no slice data: no NAL unit of type 16..21")


def nal_to_rbsp(nal: bytes) -> bytes:
    """The RBSP of a NAL unit: payload after the 2-byte header, 0x000003 -> 0x0000."""
    out = bytearray()
    zeros = 0
    for byte in nal[2:]:
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def rbsp_to_nal(header: bytes, rbsp: bytes) -> bytes:
    """Inverse of :func:`nal_to_rbsp`: insert emulation-prevention bytes after ``header``."""
    out = bytearray(header)
    zeros = 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


# -- bits ----------------------------------------------------------------------------------

class BitReader:
    """MSB-first reader over an RBSP; BitstreamError when reading past the end."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data = data
        self.pos = 0
        self.what = what

    def u(self, n: int) -> int:
        """Read an n-bit unsigned integer."""
        if self.pos + n > 8 * len(self.data):
            raise BitstreamError(f"truncated {self.what}: needs more than {len(self.data)} bytes")
        value = 0
        for _ in range(n):
            byte = self.data[self.pos >> 3]
            value = (value << 1) | ((byte >> (7 - (self.pos & 7))) & 1)
            self.pos += 1
        return value

    def ue(self) -> int:
        """Read an unsigned exp-Golomb code ue(v)."""
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > _MAX_EXP_GOLOMB_ZEROS:
                raise BitstreamError(f"{self.what}: exp-Golomb code longer than 32 bits")
        return (1 << zeros) - 1 + self.u(zeros)


class BitWriter:
    """MSB-first writer, the inverse of :class:`BitReader`."""

    def __init__(self) -> None:
        self.value = 0
        self.nbits = 0

    def u(self, n: int, value: int) -> None:
        """Append ``value`` as n bits."""
        self.value = (self.value << n) | (value & ((1 << n) - 1))
        self.nbits += n

    def ue(self, value: int) -> None:
        """Append ``value`` as an unsigned exp-Golomb code."""
        code = value + 1
        self.u(2 * code.bit_length() - 1, code)

    def copy(self, data: bytes, start: int, end: int) -> None:
        """Append bits [start, end) of ``data`` unchanged."""
        value = int.from_bytes(data, "big") >> (8 * len(data) - end)
        self.u(end - start, value)

    def trailing_bits(self) -> bytes:
        """Append rbsp_trailing_bits (a 1, then zeros to a byte boundary); return the bytes."""
        self.u(1, 1)
        self.u(-self.nbits % 8, 0)
        return self.value.to_bytes(self.nbits // 8, "big")


def _stop_bit_position(rbsp: bytes, what: str) -> int:
    """Bit index of rbsp_stop_one_bit: the last set bit of the RBSP."""
    end = len(rbsp)
    while end and rbsp[end - 1] == 0:
        end -= 1
    if not end:
        raise BitstreamError(f"{what}: no rbsp_stop_one_bit")
    last = rbsp[end - 1]
    return 8 * end - 1 - ((last & -last).bit_length() - 1)


# -- SPS ---------------------------------------------------------------------------------

_SUB_WIDTH_HEIGHT = {0: (1, 1), 1: (2, 2), 2: (2, 1), 3: (1, 1)}


@dataclass(frozen=True)
class SpsInfo:
    """The SPS fields up to the bit depths (H.265 7.3.2.2.1)."""

    max_sub_layers: int
    temporal_id_nesting: bool
    general_ptl: bytes             #: 12 bytes: profile_space .. general_level_idc, as in hvcC
    chroma_format_idc: int
    pic_width: int                 #: coded width in luma samples
    pic_height: int                #: coded height in luma samples
    conf_window: tuple[int, int, int, int]  #: left, right, top, bottom offsets in chroma units
    bit_depth_luma: int
    bit_depth_chroma: int
    conf_flag_bit: int             #: RBSP bit position of conformance_window_flag
    after_conf_bit: int            #: RBSP bit position just after the window offsets

    @property
    def sub_width_height(self) -> tuple[int, int]:
        """SubWidthC, SubHeightC: the chroma grid the conformance window counts in."""
        return _SUB_WIDTH_HEIGHT[self.chroma_format_idc]

    @property
    def width(self) -> int:
        """Output width after the conformance window."""
        left, right, _, _ = self.conf_window
        return self.pic_width - self.sub_width_height[0] * (left + right)

    @property
    def height(self) -> int:
        """Output height after the conformance window."""
        _, _, top, bottom = self.conf_window
        return self.pic_height - self.sub_width_height[1] * (top + bottom)


def _skip_profile_tier_level(r: BitReader, max_sub_layers_minus1: int) -> bytes:
    """Read profile_tier_level(1, max_sub_layers_minus1); return its 12 general bytes."""
    general = bytes(r.u(8) for _ in range(12))
    profile_present = []
    level_present = []
    for _ in range(max_sub_layers_minus1):
        profile_present.append(r.u(1))
        level_present.append(r.u(1))
    if max_sub_layers_minus1 > 0:
        for _ in range(max_sub_layers_minus1, 8):
            r.u(2)
    for i in range(max_sub_layers_minus1):
        if profile_present[i]:
            r.u(88)
        if level_present[i]:
            r.u(8)
    return general


def parse_sps(nal: bytes) -> SpsInfo:
    """Parse an SPS NAL unit up to the bit depths; BitstreamError on anything odd."""
    if check_nal_header(nal, 1) != NAL_SPS:
        raise BitstreamError(f"NAL unit type {nal_type(nal)} is not an SPS")
    r = BitReader(nal_to_rbsp(nal), "SPS")
    r.u(4)                                   # sps_video_parameter_set_id
    max_sub_layers_minus1 = r.u(3)
    if max_sub_layers_minus1 > 6:
        raise BitstreamError(f"SPS: sps_max_sub_layers_minus1 {max_sub_layers_minus1} > 6")
    nesting = bool(r.u(1))
    general_ptl = _skip_profile_tier_level(r, max_sub_layers_minus1)
    if r.ue() > 15:
        raise BitstreamError("SPS: sps_seq_parameter_set_id > 15")
    chroma_format_idc = r.ue()
    if chroma_format_idc > 3:
        raise BitstreamError(f"SPS: chroma_format_idc {chroma_format_idc} > 3")
    if chroma_format_idc == 3 and r.u(1):
        raise BitstreamError("SPS: separate colour planes are not supported")
    pic_width, pic_height = r.ue(), r.ue()
    conf_flag_bit = r.pos
    window = (r.ue(), r.ue(), r.ue(), r.ue()) if r.u(1) else (0, 0, 0, 0)
    after_conf_bit = r.pos
    depth_luma, depth_chroma = r.ue() + 8, r.ue() + 8
    sps = SpsInfo(max_sub_layers_minus1 + 1, nesting, general_ptl, chroma_format_idc, pic_width,
                  pic_height, window, depth_luma, depth_chroma, conf_flag_bit, after_conf_bit)
    if pic_width < 1 or pic_height < 1 or sps.width < 1 or sps.height < 1:
        raise BitstreamError(
            f"SPS: empty picture ({pic_width}x{pic_height}, cropped {sps.width}x{sps.height})")
    if depth_luma > 16 or depth_chroma > 16:
        raise BitstreamError(f"SPS: bit depth {depth_luma}/{depth_chroma} > 16")
    return sps


def set_conformance_window(nal: bytes, right: int, bottom: int) -> bytes:
    """Rewrite an SPS so its conformance window crops ``right``/``bottom`` chroma units only.

    Every SPS bit before conformance_window_flag and after the window offsets
    is copied unchanged.
    """
    sps = parse_sps(nal)
    rbsp = nal_to_rbsp(nal)
    stop = _stop_bit_position(rbsp, "SPS")
    if stop < sps.after_conf_bit:
        raise BitstreamError("SPS: rbsp_stop_one_bit inside the conformance window")
    w = BitWriter()
    w.copy(rbsp, 0, sps.conf_flag_bit)
    w.u(1, 1 if right or bottom else 0)
    if right or bottom:
        for offset in (0, right, 0, bottom):
            w.ue(offset)
    w.copy(rbsp, sps.after_conf_bit, stop)
    return rbsp_to_nal(nal[:2], w.trailing_bits())


def output_size(width: int, height: int, chroma_format_idc: int) -> tuple[int, int]:
    """The size an SPS must crop to for a width x height image: rounded up to the chroma grid."""
    sub_w, sub_h = _SUB_WIDTH_HEIGHT[chroma_format_idc]
    return -(-width // sub_w) * sub_w, -(-height // sub_h) * sub_h


def check_sps_size(sps: SpsInfo, width: int, height: int) -> None:
    """Require the SPS to describe a width x height image (before anything is decoded).

    The cropped SPS size must equal ``output_size(width, height)``, the window
    may crop only at the right and bottom, and by fewer than MAX_PADDING
    luma samples (so a small header cannot hide a huge coded picture).
    """
    want = output_size(width, height, sps.chroma_format_idc)
    if (sps.width, sps.height) != want:
        raise BitstreamError(f"SPS picture is {sps.width}x{sps.height}, header says {width}x{height} "
                             f"(expected {want[0]}x{want[1]})")
    left, _, top, _ = sps.conf_window
    if left or top:
        raise BitstreamError("SPS conformance window crops at the left or top")
    if sps.pic_width - sps.width >= MAX_PADDING or sps.pic_height - sps.height >= MAX_PADDING:
        raise BitstreamError(
            f"SPS coded picture {sps.pic_width}x{sps.pic_height} pads the {sps.width}x{sps.height} picture "
            f"by {MAX_PADDING} or more samples")


# -- ISO BMFF / HEIF -----------------------------------------------------------------------

def box(box_type: bytes, *parts: bytes) -> bytes:
    """An ISO BMFF box: 32-bit size, 4-character type, payload."""
    payload = b"".join(parts)
    return struct.pack(">I4s", 8 + len(payload), box_type) + payload


def full_box(box_type: bytes, version: int, flags: int, *parts: bytes) -> bytes:
    """An ISO BMFF FullBox: a box whose payload starts with version (8) and flags (24)."""
    return box(box_type, struct.pack(">I", (version << 24) | flags), *parts)


def iter_boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """Yield ``(type, payload start, payload end)`` for the boxes in data[start:end]."""
    pos = start
    while pos < end:
        if end - pos < 8:
            raise BitstreamError(f"truncated box header at offset {pos}")
        size, box_type = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if end - pos < 16:
                raise BitstreamError(f"truncated large box header at offset {pos}")
            size = struct.unpack_from(">Q", data, pos + 8)[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or size > end - pos:
            raise BitstreamError(f"box {box_type!r} at offset {pos} has bad size {size}")
        yield box_type, pos + header, pos + size
        pos += size


def _children(data: bytes, start: int, end: int) -> dict[bytes, tuple[int, int]]:
    """Map of the first box of each type in data[start:end]."""
    found: dict[bytes, tuple[int, int]] = {}
    for box_type, s, e in iter_boxes(data, start, end):
        found.setdefault(box_type, (s, e))
    return found


def _need(boxes: dict[bytes, tuple[int, int]], box_type: bytes, where: str) -> tuple[int, int]:
    if box_type not in boxes:
        raise BitstreamError(f"HEIF: no {box_type.decode()} box in {where}")
    return boxes[box_type]


class _Cursor:
    """Bounds-checked big-endian reads from data[pos:end]."""

    def __init__(self, data: bytes, pos: int, end: int) -> None:
        self.data, self.pos, self.end = data, pos, end

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > self.end:
            raise BitstreamError(f"HEIF: truncated box near offset {self.pos}")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def uint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")


@dataclass(frozen=True)
class HeifHevcItem:
    """The primary HEVC item of a HEIF file."""

    hvcc: bytes                    #: hvcC box payload
    data: bytes                    #: item data: length-prefixed NAL units
    properties: tuple[bytes, ...]  #: types of the item's properties, e.g. (b"hvcC", b"ispe", ...)
    nclx: tuple[int, int, int, int] | None  #: colr nclx: primaries, transfer, matrix, full range


def _primary_item_id(data: bytes, meta: dict) -> int:
    s, e = _need(meta, b"pitm", "meta")
    c = _Cursor(data, s, e)
    version = c.uint(4) >> 24
    return c.uint(2 if version == 0 else 4)


def _item_type(data: bytes, meta: dict, item_id: int) -> bytes:
    s, e = _need(meta, b"iinf", "meta")
    c = _Cursor(data, s, e)
    version = c.uint(4) >> 24
    c.uint(2 if version == 0 else 4)
    for box_type, bs, be in iter_boxes(data, c.pos, e):
        if box_type != b"infe":
            continue
        ic = _Cursor(data, bs, be)
        infe_version = ic.uint(4) >> 24
        if infe_version < 2:
            continue
        if ic.uint(2 if infe_version == 2 else 4) == item_id:
            ic.uint(2)                                  # item_protection_index
            return ic.take(4)
    raise BitstreamError(f"HEIF: no infe for item {item_id}")


def _item_extents(data: bytes, meta: dict, item_id: int) -> bytes:
    """The item's bytes, concatenated from its iloc extents (file offsets only)."""
    s, e = _need(meta, b"iloc", "meta")
    c = _Cursor(data, s, e)
    version = c.uint(4) >> 24
    sizes = c.uint(2)
    offset_size, length_size, base_size = sizes >> 12, (sizes >> 8) & 15, (sizes >> 4) & 15
    index_size = sizes & 15 if version in (1, 2) else 0
    count = c.uint(2 if version < 2 else 4)
    for _ in range(count):
        this_id = c.uint(2 if version < 2 else 4)
        method = c.uint(2) & 15 if version in (1, 2) else 0
        c.uint(2)                                       # data_reference_index
        base = c.uint(base_size)
        chunks = []
        for _ in range(c.uint(2)):
            c.uint(index_size)
            offset, length = base + c.uint(offset_size), c.uint(length_size)
            chunks.append((offset, length))
        if this_id != item_id:
            continue
        if method != 0:
            raise BitstreamError(f"HEIF: iloc construction method {method} not supported")
        out = bytearray()
        for offset, length in chunks:
            if offset + length > len(data):
                raise BitstreamError("HEIF: item extent beyond the end of the file")
            out += data[offset:offset + length]
        return bytes(out)
    raise BitstreamError(f"HEIF: no iloc entry for item {item_id}")


def _item_properties(data: bytes, meta: dict, item_id: int) -> list[tuple[bytes, int, int]]:
    """The (type, start, end) of each property associated with the item, in ipma order."""
    s, e = _need(meta, b"iprp", "meta")
    iprp = _children(data, s, e)
    props = list(iter_boxes(data, *_need(iprp, b"ipco", "iprp")))
    c = _Cursor(data, *_need(iprp, b"ipma", "iprp"))
    word = c.uint(4)
    version, flags = word >> 24, word & 0xFFFFFF
    out = []
    for _ in range(c.uint(4)):
        this_id = c.uint(2 if version < 1 else 4)
        for _ in range(c.uint(1)):
            index = c.uint(2) & 0x7FFF if flags & 1 else c.uint(1) & 0x7F
            if this_id == item_id and index:
                if index > len(props):
                    raise BitstreamError(f"HEIF: ipma refers to property {index} of {len(props)}")
                out.append(props[index - 1])
    return out


def _parse_nclx(data: bytes, start: int, end: int) -> tuple[int, int, int, int] | None:
    c = _Cursor(data, start, end)
    if c.take(4) != b"nclx":
        return None
    return c.uint(2), c.uint(2), c.uint(2), c.uint(1) >> 7


def extract_heif_hevc(data: bytes) -> HeifHevcItem:
    """Find the primary item of a HEIF file and return its hvcC, data and properties."""
    top = _children(data, 0, len(data))
    ms, me = _need(top, b"meta", "file")
    meta = _children(data, ms + 4, me)                  # meta is a FullBox
    item_id = _primary_item_id(data, meta)
    item_type = _item_type(data, meta, item_id)
    if item_type != b"hvc1":
        raise BitstreamError(f"HEIF: primary item is {item_type!r}, not a single hvc1 image")
    hvcc, nclx, types = None, None, []
    for box_type, s, e in _item_properties(data, meta, item_id):
        types.append(box_type)
        if box_type == b"hvcC":
            hvcc = data[s:e]
        elif box_type == b"colr":
            nclx = _parse_nclx(data, s, e) or nclx
    if hvcc is None:
        raise BitstreamError("HEIF: primary item has no hvcC")
    return HeifHevcItem(hvcc, _item_extents(data, meta, item_id), tuple(types), nclx)


def hvcc_nal_units(hvcc: bytes) -> tuple[list[bytes], int]:
    """The NAL units stored in an hvcC record, and its NAL length size in bytes."""
    c = _Cursor(hvcc, 0, len(hvcc))
    header = c.take(23)
    if header[0] != 1:
        raise BitstreamError(f"hvcC: configurationVersion {header[0]}")
    length_size = (header[21] & 3) + 1
    nals = []
    for _ in range(header[22]):
        c.uint(1)                                       # completeness + NAL type
        for _ in range(c.uint(2)):
            nals.append(c.take(c.uint(2)))
    return nals, length_size


def split_length_prefixed(data: bytes, length_size: int) -> list[bytes]:
    """Split HEIF item data (NAL units with big-endian length prefixes)."""
    c = _Cursor(data, 0, len(data))
    nals = []
    while c.pos < c.end:
        nals.append(c.take(c.uint(length_size)))
    return nals


def build_hvcc(sps: SpsInfo, parameter_sets: Sequence[bytes]) -> bytes:
    """An HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 8.3.3.1) from the SPS fields."""
    out = bytearray([1])
    out += sps.general_ptl                              # profile/tier/compat/constraints/level
    out += struct.pack(">HBBBBH", 0xF000, 0xFC, 0xFC | sps.chroma_format_idc,
                       0xF8 | (sps.bit_depth_luma - 8), 0xF8 | (sps.bit_depth_chroma - 8), 0)
    out.append((sps.max_sub_layers << 3) | (int(sps.temporal_id_nesting) << 2) | 3)
    out.append(len(parameter_sets))
    for nal in parameter_sets:
        out.append(0x80 | nal_type(nal))                # array_completeness = 1
        out += struct.pack(">HH", 1, len(nal))
        out += nal
    return bytes(out)


def build_heif(nals: Sequence[bytes], sps: SpsInfo, nclx: tuple[int, int, int, int]) -> bytes:
    """A minimal HEIF file holding one hvc1 image of the SPS's cropped size.

    Parameter sets go into hvcC, the other NAL units (with 4-byte lengths)
    into mdat; properties: hvcC (essential), ispe, colr nclx, pixi.
    """
    params = [n for n in nals if nal_type(n) in PARAMETER_SET_TYPES]
    item = b"".join(struct.pack(">I", len(n)) + n for n in nals if nal_type(n) not in PARAMETER_SET_TYPES)
    ftyp = box(b"ftyp", b"heic", struct.pack(">I", 0), b"mif1", b"heic")
    primaries, transfer, matrix, full_range = nclx
    ipco = box(b"ipco",
               box(b"hvcC", build_hvcc(sps, params)),
               full_box(b"ispe", 0, 0, struct.pack(">II", sps.width, sps.height)),
               box(b"colr", b"nclx", struct.pack(">HHHB", primaries, transfer, matrix, full_range << 7)),
               full_box(b"pixi", 0, 0, bytes([3, sps.bit_depth_luma, sps.bit_depth_chroma,
                                              sps.bit_depth_chroma])))
    ipma = full_box(b"ipma", 0, 0, struct.pack(">IHB", 1, 1, 4), bytes([0x81, 0x02, 0x03, 0x04]))

    def meta(mdat_offset: int) -> bytes:
        return full_box(
            b"meta", 0, 0,
            full_box(b"hdlr", 0, 0, struct.pack(">I", 0), b"pict", bytes(12), b"\0"),
            full_box(b"pitm", 0, 0, struct.pack(">H", 1)),
            full_box(b"iinf", 0, 0, struct.pack(">H", 1),
                     full_box(b"infe", 2, 0, struct.pack(">HH", 1, 0), b"hvc1", b"\0")),
            full_box(b"iloc", 0, 0, struct.pack(">BBH", 0x44, 0x00, 1),
                     struct.pack(">HHHII", 1, 0, 1, mdat_offset, len(item))),
            box(b"iprp", ipco, ipma))

    mdat_offset = len(ftyp) + len(meta(0)) + 8
    return ftyp + meta(mdat_offset) + box(b"mdat", item)
