"""Container format: round trips, exact sizes and strict parsing."""
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semcomp_core.bitstream import (MAX_SIDE, CodecId, LayerId, bits_per_pixel, decode_varint, encode_varint,
                                    pack, unpack)
from semcomp_core.errors import BitstreamError

layer_ids = st.sampled_from([int(x) for x in LayerId])
codec_ids = st.sampled_from([int(x) for x in CodecId])


@settings(max_examples=200, deadline=None)
@given(codec=codec_ids, h=st.integers(1, MAX_SIDE), w=st.integers(1, MAX_SIDE),
       layers=st.lists(st.tuples(layer_ids, st.binary(max_size=300)), max_size=16))
def test_roundtrip(codec, h, w, layers):
    data = pack(codec, h, w, layers)
    c = unpack(data)
    assert (c.codec_id, c.height, c.width) == (codec, h, w)
    assert [(i, bytes(p)) for i, p in c.layers] == [(i, p) for i, p in layers]


@given(st.integers(0, (1 << 21) - 1))
def test_varint_roundtrip(v):
    b = encode_varint(v)
    assert decode_varint(b, 0, "x") == (v, len(b))


def test_layout_is_as_documented():
    data = pack(CodecId.JPEG, 360, 480, [(LayerId.IMAGE, b"abc")])
    assert data[:2] == b"SC" and data[2] == 3 and data[3] == CodecId.JPEG
    assert data[4:6] == encode_varint(360) and data[6:8] == encode_varint(480)
    assert data[8] == 1 and data[9] == LayerId.IMAGE and data[10] == 3 and data[11:14] == b"abc"
    assert int.from_bytes(data[-4:], "big") == zlib.crc32(data[:-4])
    assert len(data) == 14 + 4


def test_bpp_counts_every_byte():
    data = pack(CodecId.JPEG, 360, 480, [(LayerId.IMAGE, b"x" * 100)])
    assert bits_per_pixel(len(data), 360, 480) == pytest.approx(8 * len(data) / (360 * 480))


def _recrc(body: bytes) -> bytes:
    return body + zlib.crc32(body).to_bytes(4, "big")


@pytest.mark.parametrize("data,msg", [
    (b"", "magic"),
    (b"XX\x01\x01", "magic"),
    (b"SC\x01", "truncated"),
    (_recrc(b"SC\x04\x01\x01\x01\x00"), "version"),
    (_recrc(b"SC\x00\x01\x01\x01\x00"), "version"),
    (_recrc(b"SC\x01\xff\x01\x01\x00"), "unknown codec id"),
    (_recrc(b"SC\x01\x01\x00\x01\x00"), "absurd height"),
    (_recrc(b"SC\x01\x01\x81\x80\x02\x01\x00"), "absurd height"),   # 32769
    (_recrc(b"SC\x01\x01\x01\x01\x11"), "layer count"),
    (_recrc(b"SC\x01\x01\x01\x01\x01\x63\x00"), "unknown layer id"),
    (_recrc(b"SC\x01\x01\x01\x01\x01\x10\xff\xff\x7f"), "truncated"),
    (_recrc(b"SC\x01\x01\x01\x01\x01\x10\x01ab"), "trailing"),
    (_recrc(b"SC\x01\x01\x80\x00\x01\x00"), "non-minimal"),
    (_recrc(b"SC\x01\x01\x01\x01\x01\x10\x80\x80\x80\x01"), "varint longer"),
])
def test_bad_headers_raise_documented_error(data, msg):
    with pytest.raises(BitstreamError, match=msg):
        unpack(data)


def test_crc_mismatch_detected():
    data = bytearray(pack(CodecId.WEBP, 10, 10, [(LayerId.IMAGE, b"payload")]))
    data[12] ^= 0x01
    with pytest.raises(BitstreamError, match="CRC"):
        unpack(bytes(data))


def test_every_truncation_raises():
    data = pack(CodecId.JPEG, 360, 480, [(LayerId.SEGMAP, b"a" * 200), (LayerId.COLORMAP, b"b" * 30)])
    for n in range(len(data)):
        with pytest.raises(BitstreamError):
            unpack(data[:n])


def test_pack_rejects_what_the_format_cannot_hold():
    with pytest.raises(ValueError):
        pack(CodecId.JPEG, 0, 10, [])
    with pytest.raises(ValueError):
        pack(CodecId.JPEG, 10, MAX_SIDE + 1, [])
    with pytest.raises(ValueError):
        pack(CodecId.JPEG, 10, 10, [(LayerId.IMAGE, b"")] * 17)
    with pytest.raises(ValueError):
        pack(200, 10, 10, [])


def test_unpack_rejects_non_bytes():
    with pytest.raises(BitstreamError):
        unpack("SC")  # type: ignore[arg-type]
