"""Region-of-interest layer (id 5) and its helpers: ``layers.roi`` (payload format, deflated HEVC
parameter sets against a fixed dictionary, strict parsing, fuzzing), ``roi.masks`` (sources, class
sets, cell/pixel footprints, user masks) and ``roi.picture`` (fill, budgeted HEVC coding, decoding).
No neural networks; every picture is a small x265 intra picture (milliseconds)."""
from __future__ import annotations

import functools
import hashlib
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("pillow_heif")

from semcomp_core.bitstream import CodecId, LayerId, encode_varint, pack  # noqa: E402
from semcomp_core.bitstream.inspect import describe as inspect_describe  # noqa: E402
from semcomp_core.codecs import hevc_nal  # noqa: E402
from semcomp_core.codecs.bpg import check_payload  # noqa: E402
from semcomp_core.errors import BitstreamError, UsageError  # noqa: E402
from semcomp_core.layers import LAYERS, RoiData, RoiLayer, RoiMaskRule  # noqa: E402
from semcomp_core.layers import roi as roi_mod  # noqa: E402
from semcomp_core.layers.roi import (EXPLICIT, FULL_FRAME, MAX_DILATION, MAX_PS_BYTES, MAX_SHIFT,  # noqa: E402
                                     PS_DICTIONARIES, PS_DICTIONARY_ID, deflate_param_sets, inflate_param_sets,
                                     picture_shape, ps_dictionary)
from semcomp_core.layers.segmap import SegMapLayer  # noqa: E402
from semcomp_core.roi import masks, picture  # noqa: E402

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MEDIUM = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: sha256 of the bytes in semcomp_core/data/priors/hevc_param_sets_v1.hex. The file is the deflate dictionary of
#: parameter-set dictionary id 1: it is part of the bitstream format and must NEVER change (every ROI
#: layer ever written inflates against it). A new dictionary gets a new file and a new id.
PS_DICTIONARY_V1_SHA256 = "4cb31273c8c0f537c9e603d792bbf1eb36948a8e0c0b4865a6cd2d966a0355c4"

#: the largest varint the container's reader accepts (3 bytes)
MAX_VARINT = 2**21 - 1
H0, W0 = 24, 40          # the default box / frame of the payload tests
MAP0 = (3, 5)            # the seg map (cells of 8 pixels) of a 24x40 frame


def _encoder_value_error(fn, *args, match=None):
    """The encoder refuses bad *input* with ValueError -- not with the bad-*data* error BitstreamError."""
    with pytest.raises(ValueError, match=match) as info:
        fn(*args)
    assert not isinstance(info.value, BitstreamError), info.value


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A small structured RGB picture: gradients, a flat block and a textured block."""
    yy, xx = np.mgrid[0:h, 0:w]
    texture = 128 + 60 * np.sin(xx / 3.0) * np.cos(yy / 4.0)
    img = np.stack([xx * 255 // max(1, w - 1), yy * 255 // max(1, h - 1), texture], -1)
    img = np.clip(img, 0, 255).astype(np.uint8)
    img[h // 4:h // 2, w // 4:w // 2] = (200, 30, 90)
    rng = np.random.default_rng(seed)
    img[h // 2:3 * h // 4, w // 2:3 * w // 4] = rng.integers(60, 200, (3 * h // 4 - h // 2, 3 * w // 4 - w // 2, 3))
    return img


@functools.lru_cache(maxsize=None)
def _hevc(h: int = H0, w: int = W0, q: int = 30, shift: int = 0) -> bytes:
    """HEVC_INTRA payload of ``_image(h, w)`` downscaled by 2**shift (the picture of box (0, 0, h, w))."""
    return picture.encode_picture(picture._downscale(_image(h, w), shift), q)


def _split(hevc: bytes) -> tuple[bytes, bytes]:
    nals = hevc_nal.unpack_nals(hevc)
    return hevc_nal.pack_nals(nals[:3]), hevc_nal.pack_nals(nals[3:])


def _raw(head: bytes, shift: int = 0, box=(0, 0, H0, W0), dict_id: int = PS_DICTIONARY_ID, z: bytes | None = None,
         slices: bytes | None = None, tail: bytes = b"", hevc: bytes | None = None) -> bytes:
    """A ROI payload assembled by hand from the format description (mask ``head`` incl. the flags byte)."""
    ps, sl = _split(hevc or _hevc())
    z = deflate_param_sets(ps) if z is None else z
    sl = sl if slices is None else slices
    return (head + bytes([shift]) + b"".join(encode_varint(v) for v in box) + bytes([dict_id])
            + encode_varint(len(z)) + z + sl + tail)


def _explicit_head(cells: np.ndarray, num_classes: int = 2, prior_id: int = 0) -> bytes:
    coded = SegMapLayer(num_classes=num_classes, prior_id=prior_id).encode(np.asarray(cells, np.uint8))
    return bytes([EXPLICIT]) + encode_varint(len(coded)) + coded


RULE = RoiMaskRule(0b1010, 1)
CELLS = np.array([[1, 0, 0, 0, 1], [0, 1, 1, 0, 0], [0, 0, 1, 1, 1]], bool)


def _valid_values() -> list[RoiData]:
    return [RoiData(RULE, (0, 0, H0, W0), 0, _hevc()),
            RoiData(CELLS, (0, 0, H0, W0), 0, _hevc()),
            RoiData(None, (0, 0, H0, W0), 0, _hevc())]


@functools.lru_cache(maxsize=None)
def _valid_payloads() -> tuple[bytes, ...]:
    return tuple(RoiLayer().encode(v) for v in _valid_values())


def _same(a: RoiData, b: RoiData) -> bool:
    if isinstance(a.mask, np.ndarray) or isinstance(b.mask, np.ndarray):
        if not (isinstance(a.mask, np.ndarray) and isinstance(b.mask, np.ndarray)):
            return False
        if a.mask.dtype != b.mask.dtype or a.mask.shape != b.mask.shape or not (a.mask == b.mask).all():
            return False
    elif a.mask != b.mask:
        return False
    return (a.box, a.shift, a.hevc) == (b.box, b.shift, b.hevc)


# ----------------------------------------------------------------------------------------------
# 0. the fixed parts of the format
# ----------------------------------------------------------------------------------------------

def test_ps_dictionary_file_is_pinned():
    # part of the bitstream format: a changed byte breaks every ROI layer already written
    raw = ps_dictionary(1)
    assert hashlib.sha256(raw).hexdigest() == PS_DICTIONARY_V1_SHA256
    assert PS_DICTIONARIES == {1: "hevc_param_sets_v1.hex"}
    assert PS_DICTIONARY_ID == 1


@pytest.mark.parametrize("dict_id", [0, 2, 255])
def test_unknown_ps_dictionary_is_a_bitstream_error(dict_id):
    with pytest.raises(BitstreamError, match="dictionary"):
        ps_dictionary(dict_id)


def test_format_constants_and_registration():
    assert (FULL_FRAME, EXPLICIT, MAX_SHIFT, MAX_DILATION, MAX_PS_BYTES) == (1, 2, 3, 15, 1024)
    assert RoiLayer.layer_id == LayerId.ROI == 5
    assert LAYERS.get("roi") is RoiLayer


def test_mask_rule_class_ids():
    assert RoiMaskRule(0b1010).dilation == 1
    assert RoiMaskRule(0b1010, 0).class_ids() == [1, 3]
    assert RoiMaskRule(1 << 31, 2).class_ids() == [31]
    assert RoiMaskRule(2**32 - 1).class_ids() == list(range(32))


@pytest.mark.parametrize("box,shift,shape", [
    ((0, 0, 24, 40), 0, (24, 40)), ((5, 7, 24, 40), 1, (12, 20)), ((0, 0, 23, 39), 1, (12, 20)),
    ((0, 0, 23, 39), 3, (3, 5)), ((0, 0, 1, 1), 3, (1, 1)), ((0, 0, 17, 9), 2, (5, 3)),
])
def test_picture_shape_rounds_up(box, shift, shape):
    assert picture_shape(box, shift) == shape
    d = RoiData(None, box, shift, b"")
    assert d.picture_shape == shape and d.full_frame
    assert not RoiData(RULE, box, shift, b"").full_frame


# ----------------------------------------------------------------------------------------------
# 1. round trips, exact layout, parameter-set deflation
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["rule", "explicit", "full"])
@pytest.mark.parametrize("size", [(24, 40), (64, 48)])
def test_roundtrip_three_mask_kinds(kind, size):
    H, W = size
    map_shape = (-(-H // 8), -(-W // 8))
    cells = np.zeros(map_shape, bool)
    cells[1, 1:3] = cells[-1, -1] = True
    mask = {"rule": RoiMaskRule(0b100101, 2), "explicit": cells, "full": None}[kind]
    value = RoiData(mask, (0, 0, H, W), 0, _hevc(H, W))
    payload = RoiLayer().encode(value)
    for kwargs in ({}, {"frame": (H, W)}, {"frame": (H, W), "map_shape": map_shape}, {"check_picture": False}):
        back = RoiLayer().decode(payload, **kwargs)
        assert _same(back, value), kwargs
        assert back.full_frame == (kind == "full")
        assert back.picture_shape == (H, W)
    if kind == "explicit":
        assert back.mask.dtype == bool
    # the picture inside is a complete, decodable HEVC_INTRA payload of the box
    check_payload(back.hevc, H, W)
    assert picture.decode_box(back.hevc, back.box, back.shift).shape == (H, W, 3)
    # RoiLayer is a fresh-instance codec: a second encode is byte-identical
    assert RoiLayer().encode(back) == payload


@pytest.mark.parametrize("index", [0, 1, 2])
def test_payload_layout_is_exactly_the_documented_one(index):
    value = _valid_values()[index]
    ps, slices = _split(value.hevc)
    z = deflate_param_sets(ps)
    if index == 0:
        head = b"\x00" + encode_varint(RULE.classes) + bytes([RULE.dilation])
    elif index == 1:
        head = _explicit_head(CELLS)
    else:
        head = b"\x01"
    expected = (head + b"\x00" + bytes([0, 0, H0, W0]) + b"\x01" + encode_varint(len(z)) + z + slices)
    assert _valid_payloads()[index] == expected == _raw(head)
    # a class rule costs exactly the documented 2..6 bytes (flag byte not counted: 1 + varint + 1)
    assert len(_valid_payloads()[0]) - len(_valid_payloads()[2]) == len(encode_varint(RULE.classes)) + 1


def test_explicit_mask_uses_the_segmap_coder_without_prior():
    payload = _valid_payloads()[1]
    n, pos = roi_mod.decode_varint(payload, 1, "n")
    coded = payload[pos:pos + n]
    assert coded[0] == 0 and coded[1] == 1                  # prior id 0, alphabet 2
    assert SegMapLayer.peek_shape(coded) == CELLS.shape
    assert (SegMapLayer().decode(coded) == CELLS).all()


@pytest.mark.parametrize("size,q", [((24, 40), 30), ((24, 40), 51), ((64, 48), 22), ((48, 64), 40), ((8, 8), 30),
                                    ((120, 200), 35)])
def test_param_sets_deflate_well_against_the_dictionary(size, q):
    hevc = _hevc(*size, q=q)
    ps, slices = _split(hevc)
    nals = hevc_nal.unpack_nals(ps + slices)
    assert [hevc_nal.nal_type(n) for n in nals[:3]] == [32, 33, 34]
    z = deflate_param_sets(ps)
    assert inflate_param_sets(z, 1) == ps
    assert len(z) < len(ps)
    assert len(z) <= 35, (len(z), len(ps))                  # the documented "about 10-35 bytes"
    # the dictionary is what makes it small: plain raw deflate of the same bytes is much larger
    plain = zlib.compressobj(9, zlib.DEFLATED, -15)
    assert len(z) < len(plain.compress(ps) + plain.flush()) - 10
    # the layer's overhead over the raw HEVC payload is well below the raw parameter sets
    payload = RoiLayer().encode(RoiData(None, (0, 0) + size, 0, hevc))
    assert len(payload) < len(hevc)
    # flags, shift, box (top, left, h, w), dictionary id, deflate length
    assert len(payload) == len(hevc) - len(ps) + len(z) + 1 + 1 + 2 + len(encode_varint(size[0])) \
        + len(encode_varint(size[1])) + 1 + len(encode_varint(len(z)))


@pytest.mark.parametrize("shift", [0, 1, 2, 3])
def test_roundtrip_offset_box_with_shift(shift):
    box = (8, 16, H0, W0)                                   # inside a 32x56 frame
    hevc = _hevc(shift=shift)
    value = RoiData(RULE, box, shift, hevc)
    payload = RoiLayer().encode(value)
    back = RoiLayer().decode(payload, frame=(32, 56))
    assert _same(back, value) and back.picture_shape == picture_shape(box, shift)
    check_payload(back.hevc, *picture_shape(box, shift))
    for frame in [(31, 56), (32, 55), (H0, W0)]:
        with pytest.raises(BitstreamError, match="outside"):
            RoiLayer().decode(payload, frame=frame)
    # the picture must have the size the box and shift give it
    other = (shift + 1) % (MAX_SHIFT + 1)
    with pytest.raises(BitstreamError):
        RoiLayer().decode(_raw(b"\x00\x0a\x01", shift=other, box=box, hevc=hevc))
    RoiLayer().decode(_raw(b"\x00\x0a\x01", shift=other, box=box, hevc=hevc), check_picture=False)


@st.composite
def _rule_values(draw):
    shift = draw(st.integers(0, MAX_SHIFT))
    rule = RoiMaskRule(draw(st.integers(1, MAX_VARINT)), draw(st.integers(0, MAX_DILATION)))
    top, left = draw(st.integers(0, MAX_VARINT - H0)), draw(st.integers(0, MAX_VARINT - W0))
    return RoiData(rule, (top, left, H0, W0), shift, _hevc(shift=shift))


@given(_rule_values())
@FAST
def test_class_rule_roundtrip_any(value):
    payload = RoiLayer().encode(value)
    back = RoiLayer().decode(payload)
    assert _same(back, value)
    assert back.mask.class_ids() == [c for c in range(32) if value.mask.classes >> c & 1]
    t, l, h, w = value.box
    assert RoiLayer().decode(payload, frame=(t + h, l + w)).box == value.box
    with pytest.raises(BitstreamError):
        RoiLayer().decode(payload, frame=(t + h - 1, l + w))


@given(st.integers(1, 9), st.integers(1, 9), st.data())
@MEDIUM
def test_explicit_mask_roundtrip_any(h, w, data):
    bits = data.draw(st.lists(st.booleans(), min_size=h * w, max_size=h * w))
    cells = np.array(bits, bool).reshape(h, w)
    value = RoiData(cells, (0, 0, H0, W0), 0, _hevc())
    payload = RoiLayer().encode(value)
    back = RoiLayer().decode(payload, map_shape=(h, w))
    assert _same(back, value)
    with pytest.raises(BitstreamError, match="seg map"):
        RoiLayer().decode(payload, map_shape=(h + 1, w))


def test_describe():
    rule, explicit, full = (RoiLayer.describe(p) for p in _valid_payloads())
    n = len(_hevc())
    common = {"box": [0, 0, H0, W0], "shift": 0, "picture": f"{H0}x{W0}", "hevc_bytes": n}
    assert rule == {"mask": "classes [1, 3] dilated 1", **common}
    assert explicit == {"mask": "explicit 3x5 cells", **common}
    assert full == {"mask": "full frame (classic fallback)", **common}
    d = RoiLayer.describe(RoiLayer().encode(RoiData(RoiMaskRule(1 << 20 | 1, 15), (1, 2, H0, W0), 2,
                                                    _hevc(shift=2))))
    assert d == {"mask": "classes [0, 20] dilated 15", "box": [1, 2, H0, W0], "shift": 2, "picture": "6x10",
                 "hevc_bytes": len(_hevc(shift=2))}
    with pytest.raises(BitstreamError):
        RoiLayer.describe(b"\x04")


def test_inspect_shows_the_roi_layer_header():
    payload = _valid_payloads()[0]
    data = pack(CodecId.SEMANTIC_GAN, H0, W0, [(int(LayerId.ROI), payload)])
    d = inspect_describe(data)
    (layer,) = d["layers"]
    assert (layer["id"], layer["name"], layer["bytes"]) == (5, "roi", len(payload))
    assert layer["header"]["mask"] == "classes [1, 3] dilated 1"


# ----------------------------------------------------------------------------------------------
# 2. strict parsing: every malformed payload is a BitstreamError
# ----------------------------------------------------------------------------------------------

def _deflate_plain(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, zdict=ps_dictionary(1))
    return c.compress(data) + c.flush()


def _bad_payloads():
    ps, slices = _split(_hevc())
    z = deflate_param_sets(ps)
    rule = b"\x00\x0a\x01"
    wrong_pps = hevc_nal.pack_nals(hevc_nal.unpack_nals(ps + slices)[2:3])     # a PPS after the slices
    return [
        ("empty", b"", "empty"),
        ("flag bit 2", _raw(b"\x04\x0a\x01"), "flags"),
        ("flag bit 7", _raw(b"\x80\x0a\x01"), "flags"),
        ("flags ff", _raw(b"\xff"), "flags"),
        ("full+explicit", _raw(b"\x03"), "flags"),
        ("full+bit 2", _raw(b"\x05"), "flags"),
        ("explicit+bit 3", _raw(b"\x0a" + _explicit_head(CELLS)[1:]), "flags"),
        ("class set 0", _raw(b"\x00\x00\x01"), "class set"),
        ("class set varint of 4 bytes", _raw(b"\x00\x80\x80\x80\x01\x01"), "longer"),
        ("class set non-minimal", _raw(b"\x00\x8a\x00\x01"), "non-minimal"),
        ("class set truncated", b"\x00\x8a", "truncated"),
        ("dilation missing", b"\x00\x0a", "truncated"),
        ("dilation 16", _raw(b"\x00\x0a\x10"), "dilation"),
        ("dilation 255", _raw(b"\x00\x0a\xff"), "dilation"),
        ("picture header missing", b"\x00\x0a\x01", "truncated"),
        ("full frame, nothing else", b"\x01", "truncated"),
        ("shift 4", _raw(rule, shift=4), "shift"),
        ("shift 255", _raw(rule, shift=255), "shift"),
        ("height 0", _raw(rule, box=(0, 0, 0, W0)), "empty"),
        ("width 0", _raw(rule, box=(0, 0, H0, 0)), "empty"),
        ("box truncated", (rule + b"\x00\x00\x00\x18"), "truncated"),
        ("box varint non-minimal", rule + b"\x00\x80\x00\x00\x18\x28\x01", "non-minimal"),
        ("dictionary id missing", rule + b"\x00\x00\x00\x18\x28", "truncated"),
        ("dictionary id 0", _raw(rule, dict_id=0), "dictionary"),
        ("dictionary id 2", _raw(rule, dict_id=2), "dictionary"),
        ("ps length missing", rule + b"\x00\x00\x00\x18\x28\x01", "truncated"),
        ("ps past the end", rule + b"\x00\x00\x00\x18\x28\x01" + encode_varint(len(z) + 1) + z, "truncated"),
        ("deflate empty", _raw(rule, z=b""), "deflate"),
        ("deflate invalid block type", _raw(rule, z=b"\xff\xff\xff\xff"), "corrupt deflate"),
        ("deflate truncated", _raw(rule, z=z[:-2]), "deflate"),
        ("deflate + extra byte", _raw(rule, z=z + b"\x00"), "deflate"),
        ("deflate of > 1024 bytes", _raw(rule, z=_deflate_plain(ps + bytes(2000))), "1024"),
        ("deflate of no parameter sets", _raw(rule, z=_deflate_plain(b"")), "expected VPS"),
        ("ps without the PPS", _raw(rule, z=_deflate_plain(hevc_nal.pack_nals(hevc_nal.unpack_nals(
            ps + slices)[:2]))), None),
        ("no slices", _raw(rule, slices=b""), "slice"),
        ("trailing zero byte", _raw(rule, tail=b"\x00"), None),
        ("trailing garbage", _raw(rule, tail=b"\x05garbage"), None),
        ("trailing NAL length past end", _raw(rule, tail=b"\x7f"), "truncated"),
        ("PPS after the slices", _raw(rule, tail=wrong_pps), "type 34"),
        ("picture of another size", _raw(rule, box=(0, 0, H0, W0 + 8)), "SPS"),
        ("explicit length past end", b"\x02\x40" + bytes(10), "truncated"),
        ("explicit mask too short", _raw(b"\x02\x02\x00\x01"), "truncated"),
        ("explicit alphabet 3", _raw(_explicit_head(CELLS, num_classes=3)), "alphabet"),
        ("explicit alphabet 1", _raw(_explicit_head(np.zeros(MAP0), num_classes=1)), "alphabet"),
        ("explicit label 2", _raw(_explicit_head(np.eye(3, 5) * 2, num_classes=3)), "alphabet"),
        ("explicit unknown prior", _raw(b"\x02\x05\x07\x01\x03\x05\x00"), "prior"),
        ("explicit 0 rows", _raw(b"\x02\x04\x00\x01\x00\x05"), "size"),
        ("explicit 5000 rows", _raw(b"\x02\x05\x00\x01" + encode_varint(5000) + b"\x05"), "size"),
    ]


_BAD = _bad_payloads()
#: the cases only the picture check (bpg.check_payload) catches
_PICTURE_LEVEL = {"deflate of no parameter sets", "ps without the PPS", "no slices", "trailing zero byte",
                  "trailing garbage", "trailing NAL length past end", "PPS after the slices", "picture of another size"}


@pytest.mark.parametrize("name,payload,match", _BAD, ids=[b[0] for b in _BAD])
def test_decoder_rejects_malformed_payload(name, payload, match):
    with pytest.raises(BitstreamError, match=match):
        RoiLayer().decode(payload)
    with pytest.raises(BitstreamError):
        RoiLayer().decode(payload, frame=(H0, W0), map_shape=MAP0)


def test_check_picture_false_still_parses_the_header_strictly():
    # the header and the parameter sets are checked; only the picture's NAL structure is not
    rule = b"\x00\x0a\x01"
    assert RoiLayer().decode(_raw(rule, slices=b""), check_picture=False).hevc == _split(_hevc())[0]
    assert RoiLayer().decode(_raw(rule, tail=b"\x00"), check_picture=False).hevc.endswith(b"\x00")
    for name, payload, _ in _BAD:
        if name not in _PICTURE_LEVEL:
            with pytest.raises(BitstreamError):
                RoiLayer().decode(payload, check_picture=False)
            if not name.startswith("explicit"):     # describe() reads an explicit mask's shape, not its cells
                with pytest.raises(BitstreamError):
                    RoiLayer.describe(payload)


@pytest.mark.parametrize("mask", ["rule", "explicit", "full"])
def test_frame_and_map_shape_checks(mask):
    m = {"rule": RULE, "explicit": CELLS, "full": None}[mask]
    payload = RoiLayer().encode(RoiData(m, (0, 0, H0, W0), 0, _hevc()))
    RoiLayer().decode(payload, frame=(H0, W0), map_shape=MAP0)
    with pytest.raises(BitstreamError, match="outside"):
        RoiLayer().decode(payload, frame=(H0 - 1, W0))
    with pytest.raises(BitstreamError, match="outside"):
        RoiLayer().decode(payload, frame=(H0, W0 - 1))
    if mask == "full":
        # a full-frame layer's box is the frame, exactly
        with pytest.raises(BitstreamError, match="full-frame"):
            RoiLayer().decode(payload, frame=(H0 + 8, W0))
        with pytest.raises(BitstreamError, match="full-frame"):
            RoiLayer().decode(payload, frame=(H0, W0 + 1))
        shifted = RoiLayer().encode(RoiData(None, (1, 0, H0, W0), 0, _hevc()))
        with pytest.raises(BitstreamError, match="full-frame"):
            RoiLayer().decode(shifted, frame=(H0 + 1, W0))
    else:
        assert RoiLayer().decode(payload, frame=(H0 + 8, W0 + 1)).box == (0, 0, H0, W0)
    if mask == "explicit":
        for shape in [(3, 6), (4, 5), (2, 5), (1, 1)]:
            with pytest.raises(BitstreamError, match="seg map"):
                RoiLayer().decode(payload, map_shape=shape)
    else:
        RoiLayer().decode(payload, map_shape=(7, 7))          # no mask to check against the map


@pytest.mark.parametrize("index", [0, 1, 2])
def test_every_truncation_is_a_bitstream_error(index):
    payload = _valid_payloads()[index]
    RoiLayer().decode(payload)
    for n in range(len(payload)):
        try:
            RoiLayer().decode(payload[:n])
        except BitstreamError:
            continue
        pytest.fail(f"prefix of {n} of {len(payload)} bytes decoded")


def _decode_or_bitstream_error(data: bytes, **kwargs):
    """Decode ``data``: only BitstreamError may come out; what decodes satisfies the format's invariants."""
    try:
        d = RoiLayer().decode(data, **kwargs)
    except BitstreamError:
        return None
    assert isinstance(d, RoiData)
    top, left, h, w = d.box
    assert h >= 1 and w >= 1 and 0 <= d.shift <= MAX_SHIFT
    if isinstance(d.mask, RoiMaskRule):
        assert 0 < d.mask.classes < 2**32 and 0 <= d.mask.dilation <= MAX_DILATION
    elif d.mask is not None:
        assert d.mask.dtype == bool and d.mask.ndim == 2
        if kwargs.get("map_shape"):
            assert d.mask.shape == kwargs["map_shape"]
    if kwargs.get("frame"):
        H, W = kwargs["frame"]
        assert top + h <= H and left + w <= W
        if d.mask is None:
            assert d.box == (0, 0, H, W)
    if kwargs.get("check_picture", True):
        check_payload(d.hevc, *d.picture_shape)
    return d


@pytest.mark.parametrize("index", [0, 1, 2])
def test_every_single_byte_change_of_the_header_only_ever_raises_bitstream_error(index):
    payload = _valid_payloads()[index]
    for i in range(min(len(payload), 16)):
        for v in range(256):
            mutated = payload[:i] + bytes([v]) + payload[i + 1:]
            _decode_or_bitstream_error(mutated)
            _decode_or_bitstream_error(mutated, frame=(H0, W0), map_shape=MAP0)


@given(st.binary(max_size=160))
@FAST
def test_fuzz_random_bytes(data):
    _decode_or_bitstream_error(data)
    _decode_or_bitstream_error(data, frame=(H0, W0), map_shape=MAP0)
    _decode_or_bitstream_error(data, check_picture=False)


@given(st.sampled_from([b"\x00\x0a\x01\x00", b"\x01\x00", b"\x02\x06\x00\x01\x03\x05",
                        b"\x00\x0a\x01\x00\x00\x00\x18\x28\x01"]),
       st.binary(max_size=120))
@FAST
def test_fuzz_valid_header_then_random_bytes(head, rest):
    _decode_or_bitstream_error(head + rest)
    _decode_or_bitstream_error(head + rest, frame=(H0, W0), map_shape=MAP0)


@given(st.sampled_from([0, 1, 2]), st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1,
                                            max_size=3))
@FAST
def test_fuzz_mutations_of_valid_payloads(index, changes):
    data = bytearray(_valid_payloads()[index])
    for pos, value in changes:
        data[pos % len(data)] = value
    _decode_or_bitstream_error(bytes(data))
    _decode_or_bitstream_error(bytes(data), frame=(H0, W0), map_shape=MAP0)


@given(st.sampled_from([0, 1, 2]), st.integers(0, 10**6), st.integers(1, 8), st.binary(max_size=8))
@FAST
def test_fuzz_cut_and_insert(index, pos, cut, insert):
    payload = _valid_payloads()[index]
    pos %= len(payload)
    _decode_or_bitstream_error(payload[:pos] + insert + payload[pos + cut:])


# ----------------------------------------------------------------------------------------------
# 3. the encoder refuses values the format cannot hold with ValueError
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value,match", [
    (RoiData(RoiMaskRule(0, 1), (0, 0, H0, W0), 0, b""), "class rule"),
    (RoiData(RoiMaskRule(2**32, 1), (0, 0, H0, W0), 0, b""), "class rule"),
    (RoiData(RoiMaskRule(-1, 1), (0, 0, H0, W0), 0, b""), "class rule"),
    (RoiData(RoiMaskRule(1, 16), (0, 0, H0, W0), 0, b""), "class rule"),
    (RoiData(RoiMaskRule(1, -1), (0, 0, H0, W0), 0, b""), "class rule"),
    (RoiData(np.ones(MAP0, np.uint8), (0, 0, H0, W0), 0, b""), "bool"),
    (RoiData(np.ones(MAP0, np.int64), (0, 0, H0, W0), 0, b""), "bool"),
    (RoiData(np.ones(15, bool), (0, 0, H0, W0), 0, b""), "2-D"),
    (RoiData(np.ones((3, 5, 1), bool), (0, 0, H0, W0), 0, b""), "2-D"),
    (RoiData(np.ones((0, 5), bool), (0, 0, H0, W0), 0, b""), None),
    (RoiData(RULE, (0, 0, H0, W0), 4, b""), "shift"),
    (RoiData(RULE, (0, 0, H0, W0), -1, b""), "shift"),
    (RoiData(None, (0, 0, H0, W0), 4, b""), "shift"),
    (RoiData(RULE, (-1, 0, H0, W0), 0, b""), "box"),
    (RoiData(RULE, (0, -8, H0, W0), 0, b""), "box"),
    (RoiData(CELLS, (0, 0, 0, W0), 0, b""), "box"),
    (RoiData(None, (0, 0, H0, 0), 0, b""), "box"),
    (RoiData(None, (0, 0, -H0, W0), 0, b""), "box"),
], ids=lambda v: "" if isinstance(v, RoiData) else str(v))
def test_encoder_rejects_invalid_values(value, match):
    # (an empty hevc: the value checks come first, whatever the picture)
    _encoder_value_error(RoiLayer().encode, value, match=match)
    hevc_value = RoiData(value.mask, value.box, value.shift, _hevc())
    _encoder_value_error(RoiLayer().encode, hevc_value, match=match)


def test_encoder_accepts_the_extremes():
    for rule in (RoiMaskRule(1, 0), RoiMaskRule(MAX_VARINT, MAX_DILATION)):
        payload = RoiLayer().encode(RoiData(rule, (0, 0, H0, W0), 0, _hevc()))
        assert RoiLayer().decode(payload).mask == rule
    payload = RoiLayer().encode(RoiData(RULE, (0, 0, H0, W0), MAX_SHIFT, _hevc(shift=MAX_SHIFT)))
    assert RoiLayer().decode(payload).shift == MAX_SHIFT


# ----------------------------------------------------------------------------------------------
# 4. masks
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("none", ()), ("", ()), (None, ()), ("off", ()), ("  NONE ", ()),
    ("classes", ("classes",)), ("classes+uncertain", ("classes", "uncertain")),
    (" Classes + USER ", ("classes", "user")), ("user+classes+user", ("user", "classes")),
    ("uncertain+uncertain", ("uncertain",)), ("classes+uncertain+user", ("classes", "uncertain", "user")),
])
def test_parse_sources(text, expected):
    assert masks.parse_sources(text) == expected


@pytest.mark.parametrize("text", ["classes+foo", "bogus", "classes+", "classes,uncertain", "none+classes"])
def test_parse_sources_unknown_is_usage_error(text):
    with pytest.raises(UsageError, match="unknown source"):
        masks.parse_sources(text)


NAMES = ["Sky", "Building", "Pedestrian", "Bicyclist", "Car"]


@pytest.mark.parametrize("text,expected", [
    ("pedestrian", 0b100), ("Pedestrian,BICYCLIST", 0b1100), ("0,2", 0b101), ("sky, 3", 0b1001),
    (" car , car ", 0b10000), ("", 0), (",,", 0), ("4", 0b10000), ("1,building", 0b10),
])
def test_class_set_names_and_ids(text, expected):
    assert masks.class_set(text, NAMES, len(NAMES)) == expected


@pytest.mark.parametrize("text", ["truck", "sky,truck", "5", "-1", "Pedestrians"])
def test_class_set_unknown_is_usage_error_listing_the_classes(text):
    with pytest.raises(UsageError, match="unknown class") as info:
        masks.class_set(text, NAMES, len(NAMES))
    for name in NAMES:
        assert name in str(info.value)


def test_class_set_without_names_and_large_ids():
    assert masks.class_set("0,31", None, 40) == 1 | 1 << 31
    with pytest.raises(UsageError, match="0, 1, 2"):
        masks.class_set("sky", None, 3)
    assert masks.class_set("32", None, 40) == 1 << 32     # no rule for it: the codec sends such masks explicitly
    names = [f"c{i}" for i in range(40)]
    assert masks.class_set("c31", names, 40) == 1 << 31
    assert masks.class_set("c35", names, 40) == 1 << 35


def test_dilate_exact():
    cells = np.zeros((5, 6), bool)
    cells[2, 2] = True
    cells[0, 5] = True
    assert (masks.dilate(cells, 0) == cells).all()
    assert masks.dilate(cells, 0) is not cells
    expected1 = np.array([[0, 0, 0, 0, 1, 1],
                          [0, 1, 1, 1, 1, 1],
                          [0, 1, 1, 1, 0, 0],
                          [0, 1, 1, 1, 0, 0],
                          [0, 0, 0, 0, 0, 0]], bool)
    got = masks.dilate(cells, 1)
    assert got.dtype == bool and (got == expected1).all()
    expected2 = np.array([[1, 1, 1, 1, 1, 1],
                          [1, 1, 1, 1, 1, 1],
                          [1, 1, 1, 1, 1, 1],
                          [1, 1, 1, 1, 1, 0],
                          [1, 1, 1, 1, 1, 0]], bool)
    assert (masks.dilate(cells, 2) == expected2).all()
    empty = np.zeros((4, 4), bool)
    assert not masks.dilate(empty, 3).any()
    assert (cells == masks.dilate(cells, -1)).all()
    assert cells.sum() == 2                                  # input untouched


@given(st.integers(1, 8), st.integers(1, 8), st.integers(0, 3), st.data())
@MEDIUM
def test_dilate_is_the_square_max_filter(h, w, r, data):
    cells = np.array(data.draw(st.lists(st.booleans(), min_size=h * w, max_size=h * w)), bool).reshape(h, w)
    expected = np.zeros_like(cells)
    for y, x in zip(*np.nonzero(cells)):
        expected[max(0, y - r):y + r + 1, max(0, x - r):x + r + 1] = True
    assert (masks.dilate(cells, r) == expected).all()


def test_rule_cells():
    labels = np.array([[0, 0, 0, 0, 0],
                       [0, 2, 0, 0, 3],
                       [0, 0, 0, 0, 0],
                       [1, 0, 0, 0, 0]], np.uint8)
    assert (masks.rule_cells(labels, 1 << 2, 0) == (labels == 2)).all()
    assert (masks.rule_cells(labels, 1 << 2 | 1 << 3, 0) == np.isin(labels, [2, 3])).all()
    assert (masks.rule_cells(labels, 1 << 2, 1) == masks.dilate(labels == 2, 1)).all()
    assert masks.rule_cells(labels, 1 << 2, 1).sum() == 9
    assert not masks.rule_cells(labels, 1 << 7, 2).any()     # class not in the map
    assert masks.rule_cells(labels, 1 << 0, 0).sum() == (labels == 0).sum()
    assert masks.uncertain_cells(np.array([[0.2, 0.5], [0.51, 0.9]]), 0.5).tolist() == [[True, False],
                                                                                         [False, False]]


def test_pixels_to_cells_partial_last_cells():
    mask = np.zeros((30, 37), bool)                          # cells of 8: a 4x5 map, last row/col partial
    mask[29, 36] = True
    mask[0, 8] = True
    mask[15, 0] = True
    got = masks.pixels_to_cells(mask, 8, (4, 5))
    expected = np.zeros((4, 5), bool)
    expected[3, 4] = expected[0, 1] = expected[1, 0] = True
    assert got.dtype == bool and (got == expected).all()
    assert not masks.pixels_to_cells(np.zeros((30, 37), bool), 8, (4, 5)).any()
    assert masks.pixels_to_cells(np.ones((30, 37), bool), 8, (4, 5)).all()


@given(st.integers(1, 20), st.integers(1, 20), st.integers(1, 5), st.data())
@MEDIUM
def test_pixels_to_cells_any_pixel(H, W, f, data):
    px = np.array(data.draw(st.lists(st.booleans(), min_size=H * W, max_size=H * W)), bool).reshape(H, W)
    shape = (-(-H // f), -(-W // f))
    cells = masks.pixels_to_cells(px, f, shape)
    assert cells.shape == shape
    for cy in range(shape[0]):
        for cx in range(shape[1]):
            assert cells[cy, cx] == px[cy * f:(cy + 1) * f, cx * f:(cx + 1) * f].any()
    # back to pixels: a superset of the mask, of the frame's size
    back = masks.cells_to_pixels(cells, f, H, W)
    assert back.shape == (H, W) and (back >= px).all()


def test_cells_to_pixels():
    cells = np.array([[1, 0, 0], [0, 0, 1]], bool)
    px = masks.cells_to_pixels(cells, 4, 7, 10)
    assert px.shape == (7, 10) and px.dtype == bool
    yy, xx = np.mgrid[0:7, 0:10]
    assert (px == cells[yy // 4, xx // 4]).all()
    assert masks.cells_to_pixels(cells, 4, 8, 12).sum() == 32
    assert masks.cells_to_pixels(cells, 1, 2, 3).tolist() == cells.tolist()


def test_coded_box_exact():
    cells = np.zeros((4, 5), bool)                           # 30x37 frame, cells of 8
    assert masks.coded_box(cells, 8, 30, 37) is None
    cells[1, 1] = True
    assert masks.coded_box(cells, 8, 30, 37) == (0, 0, 24, 24)
    assert masks.coded_box(cells, 8, 30, 37, margin=0) == (8, 8, 8, 8)
    cells[:] = False
    cells[3, 4] = True                                        # bottom-right, partial cell: clipped
    assert masks.coded_box(cells, 8, 30, 37) == (16, 24, 14, 13)
    assert masks.coded_box(cells, 8, 30, 37, margin=0) == (24, 32, 6, 5)
    cells[0, 0] = True                                        # top-left: the margin is clipped at 0
    assert masks.coded_box(cells, 8, 30, 37) == (0, 0, 30, 37)
    cells[:] = False
    cells[0, 2] = True
    assert masks.coded_box(cells, 8, 30, 37) == (0, 8, 16, 24)
    assert masks.coded_box(cells, 8, 30, 37, margin=2) == (0, 0, 24, 37)


def test_alpha_ramp():
    f, H, W = 8, 40, 56
    cells = np.zeros((5, 7), bool)
    cells[2, 3] = True
    a = masks.alpha(cells, f, H, W)
    assert a.dtype == np.float32 and a.shape == (H, W)
    assert a.min() >= 0.0 and a.max() <= 1.0
    inside = masks.cells_to_pixels(cells, f, H, W)
    assert (a[inside] == 1.0).all()
    # zero more than one cell away: every weighted pixel is in the one-cell margin (the coded pixels)
    margin = masks.cells_to_pixels(masks.dilate(cells, 1), f, H, W)
    assert (a[~margin] == 0.0).all()
    assert (a[~inside & margin] < 1.0).all()
    assert a[~inside & margin].max() > 0.8 and (a[~inside & margin] > 0).sum() > 4 * f
    # a monotone ramp along the row through the ROI: up to 1, flat, back down
    row = a[20]                                              # ROI: rows 16..23, columns 24..31
    assert (row[24:32] == 1.0).all() and row[:16].max() == 0 and row[40:].max() == 0
    assert (np.diff(row[:25]) >= 0).all() and (np.diff(row[31:]) <= 0).all()
    assert len(set(np.round(row[16:24], 4))) >= 6          # a ramp, not a step
    col = a[:, 27]
    assert (col[16:24] == 1.0).all() and col[:8].max() == 0 and col[32:].max() == 0
    assert (np.diff(col[:17]) >= 0).all() and (np.diff(col[23:]) <= 0).all()
    # the coded box (one-cell margin) covers every pixel the receiver blends in
    top, left, h, w = masks.coded_box(cells, f, H, W)
    outside = np.ones((H, W), bool)
    outside[top:top + h, left:left + w] = False
    assert (a[outside] == 0).all()
    assert not masks.alpha(np.zeros((5, 7), bool), f, H, W).any()
    assert masks.alpha(np.zeros((5, 7), bool), f, H, W).dtype == np.float32
    assert (masks.alpha(np.ones((5, 7), bool), f, H, W) == 1).all()


@pytest.fixture()
def mask_files(tmp_path):
    from PIL import Image

    m = np.zeros((6, 8), np.uint8)
    m[1:3, 2:5] = 255
    Image.fromarray(m, "L").save(tmp_path / "l.png")
    rgb = np.zeros((6, 8, 3), np.uint8)
    rgb[1:3, 2:5] = (255, 0, 0)
    rgb[5, 7] = (0, 200, 0)
    Image.fromarray(rgb, "RGB").save(tmp_path / "rgb.png")
    Image.fromarray(np.zeros((6, 9), np.uint8), "L").save(tmp_path / "wide.png")
    np.save(tmp_path / "m.npy", m.astype(bool))
    np.save(tmp_path / "f.npy", m.astype(np.float32) / 255)
    np.save(tmp_path / "c3.npy", rgb)
    np.save(tmp_path / "c5.npy", np.zeros((6, 8, 5)))
    np.save(tmp_path / "small.npy", np.zeros((5, 8)))
    np.save(tmp_path / "str.npy", np.full((6, 8), "x"))
    (tmp_path / "junk.png").write_bytes(b"not an image")
    (tmp_path / "junk.npy").write_bytes(b"not an array")
    return tmp_path, m != 0


def test_load_user_mask_ok(mask_files):
    d, expected = mask_files
    for name in ("l.png", "m.npy", "f.npy"):
        got = masks.load_user_mask(d / name, 6, 8)
        assert got.dtype == bool and got.shape == (6, 8) and (got == expected).all(), name
    for name in ("rgb.png", "c3.npy"):
        got = masks.load_user_mask(str(d / name), 6, 8)
        e = expected.copy()
        e[5, 7] = True
        assert (got == e).all(), name


@pytest.mark.parametrize("name,match", [
    ("wide.png", "is 9x6, the frame is 8x6"), ("small.npy", "is 8x5, the frame is 8x6"),
    ("junk.png", "cannot read"), ("junk.npy", "cannot read"), ("missing.png", "cannot read"),
    ("c5.npy", "single-channel"), ("str.npy", "single-channel"),
])
def test_load_user_mask_errors(mask_files, name, match):
    d, _ = mask_files
    with pytest.raises(UsageError, match=match):
        masks.load_user_mask(d / name, 6, 8)


def test_load_user_mask_directory_is_usage_error(tmp_path):
    with pytest.raises(UsageError, match="cannot read"):
        masks.load_user_mask(tmp_path, 6, 8)


def test_parse_boxes():
    m = masks.parse_boxes("1,2,4,5; 6,0,8,1", 6, 8)
    expected = np.zeros((6, 8), bool)
    expected[2:5, 1:4] = True
    expected[0:1, 6:8] = True
    assert m.dtype == bool and (m == expected).all()
    assert masks.parse_boxes("0,0,8,6", 6, 8).all()
    assert not masks.parse_boxes("", 6, 8).any()
    assert (masks.parse_boxes(" 1, 2, 4, 5 ;;", 6, 8) == masks.parse_boxes("1,2,4,5", 6, 8)).all()


@pytest.mark.parametrize("text,match", [
    ("1,2,3", "not x0,y0,x1,y1"), ("1,2,3,4,5", "not x0,y0,x1,y1"), ("a,b,c,d", "not x0,y0,x1,y1"),
    ("1.5,0,3,4", "not x0,y0,x1,y1"), ("0,0,4,4;1,2", "not x0,y0,x1,y1"),
    ("2,0,2,4", "empty or outside"), ("0,3,4,3", "empty or outside"), ("3,0,2,4", "empty or outside"),
    ("0,0,9,6", "empty or outside"), ("0,0,8,7", "empty or outside"), ("-1,0,4,4", "empty or outside"),
])
def test_parse_boxes_errors(text, match):
    with pytest.raises(UsageError, match=match):
        masks.parse_boxes(text, 6, 8)


# ----------------------------------------------------------------------------------------------
# 5. picture: fill, budgeted coding, decoding
# ----------------------------------------------------------------------------------------------

def _gradient(h=48, w=64):
    yy, xx = np.mgrid[0:h, 64:64 + w]
    return np.stack([xx, yy * 2, 255 - xx], -1).astype(np.uint8)


@pytest.mark.parametrize("region", ["block", "left band", "single pixel", "L shape"])
def test_fill_outside_is_smooth_and_within_the_kept_range(region):
    img = _gradient()
    keep = np.zeros((48, 64), bool)
    if region == "block":
        keep[10:30, 20:40] = True
    elif region == "left band":
        keep[:, :10] = True
    elif region == "single pixel":
        keep[5, 7] = True
    else:
        keep[30:40, 5:50] = True
        keep[5:40, 40:50] = True
    out = picture.fill_outside(img, keep)
    assert out.dtype == np.uint8 and out.shape == img.shape and out.flags.c_contiguous
    assert (out[keep] == img[keep]).all()
    kept, filled = img[keep].astype(int), out[~keep].astype(int)
    assert (filled >= kept.min(0)).all() and (filled <= kept.max(0)).all()
    o = out.astype(int)
    assert np.abs(np.diff(o, axis=0)).max() <= 24 and np.abs(np.diff(o, axis=1)).max() <= 24
    if region == "single pixel":
        assert (out == img[5, 7]).all()
    # not a trivial fill: what is filled is not one flat colour (except from a single pixel)
    if region != "single pixel":
        assert max(len(np.unique(out[~keep][:, c])) for c in range(3)) > 8


def test_fill_outside_smooths_a_noisy_surround():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (40, 56, 3)).astype(np.uint8)
    keep = np.zeros((40, 56), bool)
    keep[12:20, 10:30] = True
    out = picture.fill_outside(img, keep)
    assert (out[keep] == img[keep]).all()
    far = out[26:].astype(int)                               # the outside noise is gone
    assert np.abs(np.diff(far, axis=0)).max() <= 8 and np.abs(np.diff(far, axis=1)).max() <= 8


def test_fill_outside_all_or_nothing_kept_is_unchanged():
    img = _image(24, 40)
    for keep in (np.ones((24, 40), bool), np.zeros((24, 40), bool)):
        out = picture.fill_outside(img, keep)
        assert out is not img and (out == img).all() and out.dtype == np.uint8


def test_encode_picture_is_a_checked_hevc_intra_payload():
    hevc = _hevc(24, 40, q=30)
    nals, sps = check_payload(hevc, 24, 40)
    assert [hevc_nal.nal_type(n) for n in nals[:3]] == [32, 33, 34]
    assert len(_hevc(24, 40, q=51)) < len(hevc) < len(_hevc(24, 40, q=15))
    with pytest.raises(BitstreamError):
        check_payload(hevc, 24, 48)


def _size_of(box, mask=RULE):
    def size_of(hevc: bytes, shift: int) -> int:
        return len(RoiLayer().encode(RoiData(mask, box, shift, hevc)))
    return size_of


def test_encode_at_budget_generous_allowance_takes_q_best():
    img = _image(48, 64)
    size_of = _size_of((0, 0, 48, 64))
    hevc, shift, q = picture.encode_at_budget(img, 100_000, size_of, 30)
    assert (shift, q) == (0, 30)
    assert hevc == picture.encode_picture(img, 30)
    assert size_of(hevc, 0) <= 100_000


@pytest.mark.parametrize("allowance", [300, 150, 100])
def test_encode_at_budget_tight_allowance_raises_q(allowance):
    img = _image(48, 64)
    box = (0, 0, 48, 64)
    size_of = _size_of(box)
    assert size_of(picture.encode_picture(img, 30), 0) > allowance
    got = picture.encode_at_budget(img, allowance, size_of, 30)
    assert got is not None
    hevc, shift, q = got
    assert q > 30 or shift > 0
    assert size_of(hevc, shift) <= allowance
    check_payload(hevc, *picture_shape(box, shift))
    if shift == 0:
        # the finest QP that fits: one step finer does not
        assert size_of(picture.encode_picture(img, q - 1), 0) > allowance
    # what the layer carries decodes back to the box
    back = RoiLayer().decode(RoiLayer().encode(RoiData(RULE, box, shift, hevc)), frame=(48, 64))
    assert picture.decode_box(back.hevc, back.box, back.shift).shape == (48, 64, 3)


def test_encode_at_budget_impossible_allowance_is_none():
    img = _image(48, 64)
    assert picture.encode_at_budget(img, 5, _size_of((0, 0, 48, 64)), 30) is None
    assert picture.encode_at_budget(img, 5, _size_of((0, 0, 48, 64)), 51) is None


def test_encode_at_budget_downscales_when_no_qp_fits():
    # a size_of that makes full resolution unaffordable: the search must go to shift 1
    img = _image(48, 64)
    calls = []

    def size_of(hevc, shift):
        calls.append(shift)
        return len(hevc) + (10**6 if shift == 0 else 0)

    allowance = len(picture.encode_picture(picture._downscale(img, 1), 40))
    hevc, shift, q = picture.encode_at_budget(img, allowance, size_of, 20)
    assert shift == 1 and 20 < q <= 40
    assert len(hevc) <= allowance
    assert len(picture.encode_picture(picture._downscale(img, 1), q - 1)) > allowance
    check_payload(hevc, 24, 32)
    assert calls[:2] == [0, 0]                      # q_best and QP 51 at full size first, no search there
    assert set(calls) == {0, 1}
    # q_best = 51 that does not fit goes straight to the next downscale
    hevc, shift, q = picture.encode_at_budget(img, 10**5, lambda h, s: len(h) + (10**6 if s < 2 else 0), 51)
    assert (shift, q) == (2, 51) and hevc == picture.encode_picture(picture._downscale(img, 2), 51)


def test_encode_at_budget_stops_below_8_pixels():
    img = _image(12, 12)
    seen = []

    def size_of(hevc, shift):
        seen.append(shift)
        return 10**6                                   # nothing fits
    assert picture.encode_at_budget(img, 1000, size_of, 30) is None
    assert set(seen) == {0}                            # 6x6 at shift 1 is below 8 pixels: not tried
    assert picture.encode_at_budget(img, 1000, size_of, 30, max_shift=0) is None


@pytest.mark.parametrize("box,shift", [((0, 0, 48, 64), 0), ((0, 0, 48, 64), 1), ((4, 8, 47, 63), 1),
                                       ((0, 0, 48, 64), 2)])
def test_decode_box_shape_and_fidelity(box, shift):
    _, _, h, w = box
    img = _image(h, w)
    hevc = picture.encode_picture(picture._downscale(img, shift), 30)
    out = picture.decode_box(hevc, box, shift)
    assert out.shape == (h, w, 3) and out.dtype == np.uint8
    err = np.abs(out.astype(int) - img.astype(int)).mean()
    assert err < {0: 8, 1: 14, 2: 20}[shift], err
    # the smooth part (left half, away from the textured block) is much closer still
    smooth = np.abs(out[:, :w // 4].astype(int) - img[:, :w // 4].astype(int)).mean()
    assert smooth < {0: 5, 1: 8, 2: 12}[shift], smooth


def test_decode_box_rejects_a_picture_of_another_size():
    hevc = _hevc(24, 40)
    with pytest.raises(BitstreamError):
        picture.decode_box(hevc, (0, 0, 24, 48), 0)
    with pytest.raises(BitstreamError):
        picture.decode_box(hevc, (0, 0, 24, 40), 1)
    with pytest.raises(BitstreamError):
        picture.decode_box(hevc[:-5], (0, 0, 24, 40), 0)


def test_end_to_end_box_coding():
    """Sender: cells -> coded box -> fill -> budget -> layer. Receiver: layer -> box pixels -> alpha blend."""
    f, H, W = 8, 48, 64
    frame = _image(H, W)
    cells = np.zeros((6, 8), bool)
    cells[2:4, 3] = True
    top, left, h, w = box = masks.coded_box(cells, f, H, W)
    assert box == (8, 16, 32, 24)
    grown = masks.cells_to_pixels(masks.dilate(cells, 1), f, H, W)
    pixels = picture.fill_outside(frame[top:top + h, left:left + w], grown[top:top + h, left:left + w])
    size_of = _size_of(box, cells)
    hevc, shift, q = picture.encode_at_budget(pixels, 400, size_of, 28)
    payload = RoiLayer().encode(RoiData(cells, box, shift, hevc))
    assert len(payload) <= 400
    d = RoiLayer().decode(payload, frame=(H, W), map_shape=cells.shape)
    out = picture.decode_box(d.hevc, d.box, d.shift)
    a = masks.alpha(d.mask, f, H, W)
    inside = masks.cells_to_pixels(d.mask, f, H, W)
    roi_err = np.abs(out.astype(int)[inside[top:top + h, left:left + w]]
                     - frame[inside].astype(int)).mean()
    assert roi_err < 15, roi_err
    assert (a[inside] == 1).all() and a[:top].max() == 0 and a[top + h:].max() == 0


# ----------------------------------------------------------------------------------------------
# 6. defects found while writing these tests (fixed; kept as regression tests)
# ----------------------------------------------------------------------------------------------

def test_encoder_rejects_a_malformed_picture_with_value_error():
    _encoder_value_error(RoiLayer().encode, RoiData(RULE, (0, 0, H0, W0), 0, b"junk"))


def test_encoder_rejects_a_picture_of_another_size():
    _encoder_value_error(RoiLayer().encode, RoiData(RULE, (0, 0, 10, 10), 0, _hevc()))


def test_load_user_mask_empty_npy_is_usage_error(tmp_path):
    (tmp_path / "empty.npy").write_bytes(b"")
    with pytest.raises(UsageError):
        masks.load_user_mask(tmp_path / "empty.npy", 6, 8)
    np.savez(tmp_path / "archive.npz", a=np.zeros((6, 8)))
    (tmp_path / "archive.npz").rename(tmp_path / "renamed.npy")
    with pytest.raises(UsageError):
        masks.load_user_mask(tmp_path / "renamed.npy", 6, 8)


def test_load_user_mask_rgb_any_nonzero_channel_counts(tmp_path):
    from PIL import Image

    rgb = np.zeros((6, 8, 3), np.uint8)
    rgb[1, 1] = (0, 0, 2)
    Image.fromarray(rgb, "RGB").save(tmp_path / "dark.png")
    got = masks.load_user_mask(tmp_path / "dark.png", 6, 8)
    assert got[1, 1] and got.sum() == 1


def test_class_set_unicode_digit_is_usage_error():
    with pytest.raises(UsageError):
        masks.class_set("²", NAMES, len(NAMES))


@pytest.mark.parametrize("class_id", [0, 20])
def test_class_rules_cover_class_ids_0_to_20(class_id):
    rule = RoiMaskRule(masks.class_set(str(class_id), None, 32), 1)
    payload = RoiLayer().encode(RoiData(rule, (0, 0, H0, W0), 0, _hevc()))
    assert RoiLayer().decode(payload).mask == rule


@pytest.mark.parametrize("class_id", [21, 31, 149])
def test_class_ids_above_20_are_no_rule(class_id):
    """The class set is a varint of at most 3 bytes: rules cover ids 0..20; the encoder refuses larger ones
    (ValueError) and the codec sends such masks explicitly instead."""
    bits = masks.class_set(str(class_id), None, 150)
    assert bits == 1 << class_id
    _encoder_value_error(RoiLayer().encode, RoiData(RoiMaskRule(bits, 1), (0, 0, H0, W0), 0, _hevc()))


def test_describe_does_not_decode_a_large_explicit_mask():
    import time

    cells = np.zeros((512, 512), bool)
    cells[::7, ::5] = True
    payload = RoiLayer().encode(RoiData(cells, (0, 0, H0, W0), 0, _hevc()))
    t0 = time.perf_counter()
    info = RoiLayer.describe(payload)
    assert time.perf_counter() - t0 < 0.2 and info["mask"] == "explicit 512x512 cells"


def test_explicit_mask_with_a_prior_is_refused():
    coded = SegMapLayer(num_classes=2, prior_id=1).encode(np.zeros(MAP0, np.uint8))
    payload = _raw(bytes([EXPLICIT]) + encode_varint(len(coded)) + coded)
    with pytest.raises(BitstreamError, match="without prior"):
        RoiLayer().decode(payload)


def test_encoder_refuses_oversized_explicit_masks_and_float_boxes():
    _encoder_value_error(RoiLayer().encode, RoiData(np.zeros((1, 5000), bool), (0, 0, H0, W0), 0, _hevc()))
    _encoder_value_error(RoiLayer().encode, RoiData(RULE, (0, 0, 24.5, W0), 0, _hevc()))


def test_alpha_in_the_box_equals_the_full_frame_alpha_cropped():
    cells = np.zeros((6, 9), bool)
    cells[2:4, 3:5] = True
    cells[5, 8] = True                                   # a region at the frame's corner
    f, H, W = 8, 45, 70                                  # partial last row and column of cells
    full = masks.alpha(cells, f, H, W)
    for region in (cells & (np.arange(9) < 6)[None], cells & (np.arange(9) >= 6)[None]):
        box = masks.coded_box(region, f, H, W)
        top, left, h, w = box
        in_box = masks.alpha(region, f, 0, 0, box=box)
        assert in_box.shape == (h, w)
        np.testing.assert_allclose(in_box, masks.alpha(region, f, H, W)[top:top + h, left:left + w])
    assert full.max() == 1.0


def test_blend_touches_only_the_box():
    from semcomp_core.roi.selective import blend

    rendered = np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8)
    box = (8, 16, 16, 24)
    out = blend(rendered, box, np.full((16, 24, 3), 7, np.uint8), np.ones((16, 24), np.float32))
    assert (out[8:24, 16:40] == 7).all()
    outside = np.ones((40, 60), bool)
    outside[8:24, 16:40] = False
    assert np.array_equal(out[outside], rendered[outside])
