"""Stream-format layers (container format version 3): frame info (id 7), inter seg-map (id 8) and
delta colour map (id 9) -- round trips, exact sizes, strict decoding, fuzzing. No neural networks."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from semcomp_core.bitstream import CodecId, LayerId, encode_varint, pack, unpack
from semcomp_core.bitstream.inspect import describe as inspect_describe
from semcomp_core.bitstream.inspect import format_description
from semcomp_core.errors import BitstreamError
from semcomp_core.layers import LAYERS, ColorMapDeltaLayer, ColorMapLayer, FrameHeader, FrameInfoLayer, SegMapInterLayer
from semcomp_core.layers.colormap import coefficients, dequantise, quantise
from semcomp_core.layers.colormap_delta import delta_quantise
from semcomp_core.layers.frame_info import SEQ_MODULO
from semcomp_core.layers.segmap_inter import CODED, COPY, MAX_SHIFT, estimate_shift, predict

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MEDIUM = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _encoder_value_error(fn, *args, match=None):
    """The encoder refuses bad *input* with ValueError -- not with the bad-*data* error BitstreamError."""
    with pytest.raises(ValueError, match=match) as info:
        fn(*args)
    assert not isinstance(info.value, BitstreamError), info.value


# ----------------------------------------------------------------------------------------------
# 1. frame info
# ----------------------------------------------------------------------------------------------

def test_seq_modulo_is_2_pow_21():
    assert SEQ_MODULO == 2**21


@pytest.mark.parametrize("header,size", [
    (FrameHeader(True, 0, 0), 3),
    (FrameHeader(True, 255, 127), 3),
    (FrameHeader(True, 17, 128), 4),
    (FrameHeader(True, 17, 2**14 - 1), 4),
    (FrameHeader(True, 17, 2**14), 5),
    (FrameHeader(True, 200, SEQ_MODULO - 1), 5),
    (FrameHeader(False, 3, 1, 1), 4),
    (FrameHeader(False, 3, 127, 127), 4),
    (FrameHeader(False, 3, 500, 1), 5),
    (FrameHeader(False, 3, 5, 128), 5),
    (FrameHeader(False, 99, SEQ_MODULO - 2, 1), 6),
    (FrameHeader(False, 255, SEQ_MODULO - 1, 2**14 - 1), 7),
    (FrameHeader(False, 255, SEQ_MODULO - 1, SEQ_MODULO - 1), 8),
    (FrameHeader(False, 0, 0, 1), 4),
    (FrameHeader(False, 0, 3, 10), 4),
])
def test_frame_info_roundtrip_and_exact_size(header, size):
    layer = FrameInfoLayer()
    payload = layer.encode(header)
    assert len(payload) == size
    assert payload[0] == (1 if header.key else 0)
    assert payload[1] == header.stream_tag
    back = layer.decode(payload)
    assert back == header
    assert isinstance(back.key, bool)


def test_frame_info_payload_is_at_most_8_bytes_as_documented():
    payload = FrameInfoLayer().encode(FrameHeader(False, 255, SEQ_MODULO - 1, SEQ_MODULO - 1))
    assert len(payload) == 8


def test_frame_info_exact_bytes():
    layer = FrameInfoLayer()
    assert layer.encode(FrameHeader(True, 0xAB, 5)) == b"\x01\xab\x05"
    assert layer.encode(FrameHeader(False, 0x07, 300, 2)) == b"\x00\x07\xac\x02\x02"
    assert layer.encode(FrameHeader(True, 1, SEQ_MODULO - 1)) == b"\x01\x01\xff\xff\x7f"
    assert layer.decode(b"\x00\x07\xac\x02\x02") == FrameHeader(False, 7, 300, 2)


@given(st.booleans(), st.integers(0, 255), st.integers(0, SEQ_MODULO - 1), st.integers(1, SEQ_MODULO - 1))
@FAST
def test_frame_info_roundtrip_any(key, tag, seq, dist):
    header = FrameHeader(key, tag, seq, 0 if key else dist)
    payload = FrameInfoLayer().encode(header)
    assert FrameInfoLayer().decode(payload) == header
    assert len(payload) == 2 + len(encode_varint(seq)) + (0 if key else len(encode_varint(dist)))


def test_frame_info_ref_seq_arithmetic():
    assert FrameHeader(True, 0, 10).ref_seq is None
    assert FrameHeader(False, 0, 10, 1).ref_seq == 9
    assert FrameHeader(False, 0, 10, 10).ref_seq == 0
    # wrap-around: the reference lies before the sequence number wrapped to 0
    assert FrameHeader(False, 0, 0, 1).ref_seq == SEQ_MODULO - 1
    assert FrameHeader(False, 0, 3, 5).ref_seq == SEQ_MODULO - 2
    assert FrameHeader(False, 0, 0, SEQ_MODULO - 1).ref_seq == 1
    assert FrameHeader(False, 0, SEQ_MODULO - 1, SEQ_MODULO - 1).ref_seq == 0
    assert FrameHeader(False, 0, SEQ_MODULO - 1, 1).ref_seq == SEQ_MODULO - 2
    # the decoded header has the same arithmetic
    h = FrameInfoLayer().decode(FrameInfoLayer().encode(FrameHeader(False, 9, 2, 7)))
    assert h.ref_seq == SEQ_MODULO - 5


@given(st.integers(0, SEQ_MODULO - 1), st.integers(1, SEQ_MODULO - 1))
@FAST
def test_frame_info_ref_seq_is_seq_minus_distance_mod(seq, dist):
    r = FrameHeader(False, 1, seq, dist).ref_seq
    assert 0 <= r < SEQ_MODULO
    assert (r + dist) % SEQ_MODULO == seq


@pytest.mark.parametrize("header,match", [
    (FrameHeader(True, 0, 5, 1), "reference"),            # a key frame with a reference
    (FrameHeader(True, 0, 5, -1), "reference"),
    (FrameHeader(False, 0, 5, 0), "distance"),             # inter frame with distance 0
    (FrameHeader(False, 0, 5, -3), "distance"),
    (FrameHeader(False, 0, 5, SEQ_MODULO), "distance"),
    (FrameHeader(True, 256, 5), "tag"),
    (FrameHeader(True, -1, 5), "tag"),
    (FrameHeader(False, 256, 5, 1), "tag"),
    (FrameHeader(True, 0, SEQ_MODULO), "sequence"),
    (FrameHeader(True, 0, -1), "sequence"),
    (FrameHeader(False, 0, SEQ_MODULO + 5, 1), "sequence"),
])
def test_frame_info_encoder_rejects_invalid_values(header, match):
    _encoder_value_error(FrameInfoLayer().encode, header, match=match)


@pytest.mark.parametrize("payload,match", [
    (b"", "at least 3"),
    (b"\x01", "at least 3"),
    (b"\x01\x05", "at least 3"),
    (b"\x02\x05\x05", "reserved"),                       # bit 1 set
    (b"\x03\x05\x05", "reserved"),
    (b"\x80\x05\x05\x01", "reserved"),
    (b"\xff\x05\x05", "reserved"),
    (b"\x00\x05\x05", "truncated"),                      # inter frame without its distance
    (b"\x01\x05\x80", "truncated"),                      # sequence varint runs off the end
    (b"\x00\x05\x05\x80", "truncated"),                  # distance varint runs off the end
    (b"\x00\x05\x05\x00", "distance 0"),
    (b"\x01\x05\x05\x00", "trailing"),                   # a key frame carries no distance
    (b"\x01\x05\x05\x01", "trailing"),
    (b"\x00\x05\x05\x01\x00", "trailing"),
    (b"\x00\x05\x05\x01\x01\x01", "trailing"),
    (b"\x01\x05\x80\x00", "non-minimal"),                # seq 0 in two bytes
    (b"\x01\x05\x85\x80\x00", "non-minimal"),
    (b"\x00\x05\x05\x81\x00", "non-minimal"),            # distance 1 in two bytes
    (b"\x01\x05\x80\x80\x80\x01", "longer"),             # seq 2**21: a 4-byte varint
    (b"\x00\x05\x05\xff\xff\xff\x01", "longer"),
])
def test_frame_info_decoder_rejects_bad_payloads(payload, match):
    with pytest.raises(BitstreamError, match=match):
        FrameInfoLayer().decode(payload)
    with pytest.raises(BitstreamError):
        FrameInfoLayer.describe(payload)


@given(st.one_of(st.binary(max_size=9),
                 st.tuples(st.sampled_from([0, 1, 2, 0x81]), st.integers(0, 255),
                           st.binary(min_size=1, max_size=7)).map(lambda t: bytes([t[0], t[1]]) + t[2])))
@FAST
def test_frame_info_fuzz_decodes_canonically_or_raises(payload):
    try:
        h = FrameInfoLayer().decode(payload)
    except BitstreamError as exc:
        assert str(exc)
        return
    # whatever decodes is the one canonical encoding of its header
    assert FrameInfoLayer().encode(h) == payload
    assert 3 <= len(payload) <= 8
    assert (h.ref_distance == 0) == h.key
    assert 0 <= h.seq < SEQ_MODULO


def test_frame_info_describe():
    key = FrameInfoLayer().encode(FrameHeader(True, 42, 7))
    assert FrameInfoLayer.describe(key) == {"frame": "key", "stream_tag": 42, "seq": 7}
    inter = FrameInfoLayer().encode(FrameHeader(False, 42, 1, 3))
    assert FrameInfoLayer.describe(inter) == {"frame": "inter", "stream_tag": 42, "seq": 1,
                                              "ref_seq": SEQ_MODULO - 2}


def test_frame_info_registered():
    assert FrameInfoLayer.layer_id == LayerId.FRAME_INFO == 7
    assert LAYERS.get("frame-info") is FrameInfoLayer


# ----------------------------------------------------------------------------------------------
# 2. inter seg-map
# ----------------------------------------------------------------------------------------------

def _blocks(rng, h, w, block, k):
    small = rng.integers(0, k, (-(-h // block), -(-w // block)))
    return np.kron(small, np.ones((block, block), dtype=np.int64))[:h, :w].astype(np.uint8)


def _header_len(h, w):
    return 2 + len(encode_varint(h)) + len(encode_varint(w)) + 2


def test_predict_hand_made_examples():
    r = np.array([[0, 1], [2, 3]], np.uint8)
    up = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]])
    assert np.array_equal(predict(r, 4, 4), up)
    assert np.array_equal(predict(r, 2, 2), r)
    # shift down by 1: row 0 is the (clamped) edge, the rest moves down
    assert np.array_equal(predict(r, 4, 4, 1, 0), [[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3]])
    # shift left by 1: P[y, x] = R'[y, clamp(x + 1)]
    assert np.array_equal(predict(r, 4, 4, 0, -1), [[0, 1, 1, 1], [0, 1, 1, 1], [2, 3, 3, 3], [2, 3, 3, 3]])
    # shift up and right
    assert np.array_equal(predict(r, 4, 4, -2, 1), [[2, 2, 2, 3], [2, 2, 2, 3], [2, 2, 2, 3], [2, 2, 2, 3]])
    # shifts beyond the map replicate the edge everywhere
    assert np.array_equal(predict(r, 2, 2, 16, -16), [[1, 1], [1, 1]])
    # downsampling picks the cell centres: 4x4 -> rows/cols 1 and 3
    big = np.arange(16, dtype=np.uint8).reshape(4, 4)
    assert np.array_equal(predict(big, 2, 2), [[5, 7], [13, 15]])
    # 3x5 -> 2x2: rows (2i+1)*3//4 = 0, 2; cols (2i+1)*5//4 = 1, 3
    odd = np.arange(15, dtype=np.uint8).reshape(3, 5)
    assert np.array_equal(predict(odd, 2, 2), [[1, 3], [11, 13]])
    # a 1x1 reference predicts a constant map of any size
    assert np.array_equal(predict(np.array([[7]], np.uint8), 3, 5, 2, -1), np.full((3, 5), 7))
    assert predict(r, 3, 7).shape == (3, 7)


@given(st.integers(1, 12), st.integers(1, 12), st.integers(1, 12), st.integers(1, 12),
       st.integers(-MAX_SHIFT, MAX_SHIFT), st.integers(-MAX_SHIFT, MAX_SHIFT), st.integers(0, 2**32 - 1))
@FAST
def test_predict_matches_the_documented_formula(hr, wr, h, w, dy, dx, seed):
    ref = np.random.default_rng(seed).integers(0, 9, (hr, wr)).astype(np.uint8)
    p = predict(ref, h, w, dy, dx)
    assert p.shape == (h, w)
    for y in range(h):
        for x in range(w):
            yy = min(max(y - dy, 0), h - 1)
            xx = min(max(x - dx, 0), w - 1)
            ry = min((2 * yy + 1) * hr // (2 * h), hr - 1)
            rx = min((2 * xx + 1) * wr // (2 * w), wr - 1)
            assert p[y, x] == ref[ry, rx]


def _segmap_case(seed, k, h, w, hr, wr, dy, dx, kind):
    rng = np.random.default_rng(seed)
    ref = rng.integers(0, k, (hr, wr)).astype(np.uint8)
    pred = predict(ref, h, w, dy, dx)
    if kind == "random":
        labels = rng.integers(0, k, (h, w)).astype(np.uint8)
    elif kind == "copy":
        labels = pred.copy()
    else:  # the prediction with a few changed cells
        labels = pred.copy()
        n = max(1, h * w // 20)
        labels.reshape(-1)[rng.integers(0, h * w, n)] = rng.integers(0, k, n)
    return labels, ref


@pytest.mark.parametrize("k", [2, 3, 7, 20])
@pytest.mark.parametrize("h,w,hr,wr", [
    (1, 1, 1, 1), (1, 1, 5, 7), (1, 9, 1, 9), (9, 1, 4, 1), (12, 16, 12, 16),   # same grid
    (40, 60, 40, 60), (40, 60, 20, 30), (23, 31, 40, 60), (45, 60, 30, 40), (7, 5, 3, 11),
])
@pytest.mark.parametrize("kind", ["random", "noisy"])
def test_segmap_inter_lossless_roundtrip(k, h, w, hr, wr, kind):
    seed = k * 1000 + h * 61 + w * 7 + hr + wr
    dy, dx = (seed % 33) - 16, ((seed // 33) % 33) - 16
    labels, ref = _segmap_case(seed, k, h, w, hr, wr, dy, dx, kind)
    for layer in (SegMapInterLayer(), SegMapInterLayer(num_classes=k)):
        payload = layer.encode((labels, ref, (dy, dx)))
        mode, kk, hh, ww, ddy, ddx = SegMapInterLayer.peek(payload)
        assert (hh, ww, ddy, ddx) == (h, w, dy, dx)
        assert kk == (k if layer.num_classes else int(max(labels.max(), ref.max())) + 1)
        assert mode == (COPY if np.array_equal(labels, predict(ref, h, w, dy, dx)) else CODED)
        out = SegMapInterLayer().decode(payload, ref)
        assert out.dtype == np.uint8 and out.shape == (h, w)
        assert np.array_equal(out, labels)


@given(st.integers(2, 20), st.integers(1, 40), st.integers(1, 60), st.integers(1, 40), st.integers(1, 60),
       st.integers(-MAX_SHIFT, MAX_SHIFT), st.integers(-MAX_SHIFT, MAX_SHIFT),
       st.sampled_from(["random", "noisy", "copy"]), st.integers(0, 2**32 - 1), st.booleans())
@MEDIUM
def test_segmap_inter_lossless_roundtrip_any(k, h, w, hr, wr, dy, dx, kind, seed, same_grid):
    if same_grid:
        hr, wr = h, w
    labels, ref = _segmap_case(seed, k, h, w, hr, wr, dy, dx, kind)
    layer = SegMapInterLayer(num_classes=k)
    payload = layer.encode((labels, ref, (dy, dx)))
    assert np.array_equal(SegMapInterLayer().decode(payload, ref, max_shape=(h, w)), labels)
    assert layer.encode((labels, ref, (dy, dx))) == payload          # deterministic


def test_segmap_inter_copy_mode_is_header_only():
    rng = np.random.default_rng(3)
    ref = _blocks(rng, 20, 30, 3, 6)
    for h, w, dy, dx in [(20, 30, 0, 0), (20, 30, 4, -3), (40, 60, -16, 16), (200, 150, 1, 1), (1, 1, 0, 0)]:
        labels = predict(ref, h, w, dy, dx)
        payload = SegMapInterLayer(num_classes=6).encode((labels, ref, (dy, dx)))
        assert payload[0] == COPY
        assert len(payload) == _header_len(h, w)
        assert payload == bytes([COPY, 5]) + encode_varint(h) + encode_varint(w) + bytes([dy & 0xFF, dx & 0xFF])
        out = SegMapInterLayer().decode(payload, ref)
        assert out.dtype == np.uint8 and np.array_equal(out, labels)
        assert SegMapInterLayer.describe(payload) == {"mode": "copy", "map": f"{w}x{h}", "classes": 6,
                                                      "shift": f"{dy},{dx}"}
    assert len(SegMapInterLayer().encode((np.zeros((3, 4), np.uint8), np.zeros((3, 4), np.uint8), (0, 0)))) == 6
    # one changed cell switches to the coded mode
    labels = predict(ref, 20, 30)
    labels[5, 5] = (labels[5, 5] + 1) % 6
    payload = SegMapInterLayer(num_classes=6).encode((labels, ref, (0, 0)))
    assert payload[0] == CODED and len(payload) > 6
    assert len(payload) < 20  # one cell off the prediction is cheap
    assert np.array_equal(SegMapInterLayer().decode(payload, ref), labels)


def test_segmap_inter_exact_header_bytes():
    ref = np.zeros((200, 3), np.uint8)
    labels = np.zeros((200, 3), np.uint8)
    labels[0, 0] = 4
    payload = SegMapInterLayer(num_classes=12).encode((labels, ref, (-1, 16)))
    assert payload[:7] == bytes([CODED, 11, 0xC8, 0x01, 3, 0xFF, 16])
    assert SegMapInterLayer.peek(payload) == (CODED, 12, 200, 3, -1, 16)
    assert SegMapInterLayer.describe(payload) == {"mode": "coded", "map": "3x200", "classes": 12, "shift": "-1,16"}


def test_segmap_inter_prediction_beats_random_and_noisy_is_cheap():
    rng = np.random.default_rng(11)
    ref = _blocks(rng, 40, 60, 4, 8)
    noisy = ref.copy()
    idx = rng.integers(0, ref.size, 30)
    noisy.reshape(-1)[idx] = rng.integers(0, 8, 30)
    random = rng.integers(0, 8, ref.shape).astype(np.uint8)
    layer = SegMapInterLayer(num_classes=8)
    n_noisy = len(layer.encode((noisy, ref, (0, 0))))
    n_random = len(layer.encode((random, ref, (0, 0))))
    assert n_noisy * 5 < n_random
    assert n_random > 0.6 * ref.size * np.log2(8) / 8  # random labels cannot be compressed much


@pytest.mark.parametrize("dy,dx", [(2, -1), (-2, 2), (0, 1), (1, 0), (-1, -2), (2, 2), (0, 0)])
def test_estimate_shift_finds_a_rolled_map_and_matches_predict_sign(dy, dx):
    rng = np.random.default_rng(5)
    ref = _blocks(rng, 40, 60, 4, 6)
    labels = np.roll(ref, (dy, dx), axis=(0, 1))  # labels[y, x] = ref[y - dy, x - dx]
    assert estimate_shift(labels, ref) == (dy, dx)
    # the sign convention is predict's: away from the wrapped/clamped border the prediction is exact
    p = predict(ref, 40, 60, dy, dx)
    inner = (slice(2, -2), slice(2, -2))
    assert np.array_equal(p[inner], labels[inner])
    if (dy, dx) != (0, 0):
        assert not np.array_equal(predict(ref, 40, 60, -dy, -dx)[inner], labels[inner])


def test_estimate_shift_other_grid_radius_and_ties():
    rng = np.random.default_rng(6)
    ref = _blocks(rng, 20, 30, 2, 5)
    labels = predict(ref, 40, 60, 1, -2)                 # the reference resampled, then shifted
    assert estimate_shift(labels, ref) == (1, -2)
    far = predict(ref, 40, 60, -3, 3)
    assert estimate_shift(far, ref, radius=3) == (-3, 3)
    assert estimate_shift(far, ref, radius=1) != (-3, 3)   # out of reach
    # a constant map matches every shift equally: the smallest shift wins
    const = np.full((10, 10), 2, np.uint8)
    assert estimate_shift(const, const) == (0, 0)
    assert estimate_shift(const, const, radius=4) == (0, 0)


def test_shifted_map_compresses_much_better_with_its_shift():
    rng = np.random.default_rng(8)
    ref = _blocks(rng, 40, 60, 4, 10)
    labels = np.roll(ref, (3, -2), axis=(0, 1))
    shift = estimate_shift(labels, ref, radius=3)
    assert shift == (3, -2)
    layer = SegMapInterLayer(num_classes=10)
    with_shift = layer.encode((labels, ref, shift))
    without = layer.encode((labels, ref, (0, 0)))
    assert len(with_shift) * 2 < len(without)
    assert np.array_equal(SegMapInterLayer().decode(with_shift, ref), labels)
    assert np.array_equal(SegMapInterLayer().decode(without, ref), labels)


def test_segmap_inter_deterministic():
    rng = np.random.default_rng(9)
    labels = rng.integers(0, 7, (17, 23)).astype(np.uint8)
    ref = rng.integers(0, 7, (9, 40)).astype(np.uint8)
    a = SegMapInterLayer().encode((labels, ref, (3, -4)))
    b = SegMapInterLayer().encode((labels.copy(), ref.copy(), (3, -4)))
    c = SegMapInterLayer(num_classes=7).encode((labels.astype(np.int64), ref.astype(np.int32), (3, -4)))
    assert a == b == c
    d1 = SegMapInterLayer().decode(a, ref)
    d2 = SegMapInterLayer().decode(a, ref)
    assert np.array_equal(d1, d2)


def test_segmap_inter_encoder_rejects_bad_input():
    ref = np.zeros((4, 4), np.uint8)
    lab = np.zeros((4, 4), np.uint8)
    enc = SegMapInterLayer(num_classes=3).encode
    _encoder_value_error(enc, (np.full((4, 4), 3, np.uint8), ref, (0, 0)), match="label")       # label >= K
    _encoder_value_error(enc, (lab, np.full((4, 4), 5, np.uint8), (0, 0)), match="label")       # reference >= K
    _encoder_value_error(SegMapInterLayer().encode, (np.zeros((0, 5), np.uint8), ref, (0, 0)))  # empty map
    _encoder_value_error(SegMapInterLayer().encode, (np.zeros((5,), np.uint8), ref, (0, 0)))    # not 2-D
    _encoder_value_error(SegMapInterLayer().encode, (np.zeros((2, 2, 2), np.uint8), ref, (0, 0)))
    for shift in [(MAX_SHIFT + 1, 0), (0, -MAX_SHIFT - 1), (-100, 100)]:
        _encoder_value_error(SegMapInterLayer().encode, (lab, ref, shift), match="shift")
    for bad_k in (0, 257, -1):
        with pytest.raises(ValueError):
            SegMapInterLayer(num_classes=bad_k)
    # the extreme allowed values are accepted
    assert SegMapInterLayer().encode((lab, ref, (MAX_SHIFT, -MAX_SHIFT)))[4:6] == bytes([16, 0xF0])
    big = np.full((3, 3), 255, np.uint8)
    payload = SegMapInterLayer().encode((big, np.zeros((3, 3), np.uint8), (0, 0)))
    assert payload[1] == 255
    assert np.array_equal(SegMapInterLayer().decode(payload, np.zeros((3, 3), np.uint8)), big)


def test_segmap_inter_encoder_rejects_negative_labels_against_a_valid_reference():
    m = np.array([[-1, 0], [1, 2]])
    _encoder_value_error(SegMapInterLayer(num_classes=3).encode, (m, np.zeros((2, 2), np.uint8), (0, 0)))


def test_segmap_inter_encoder_rejects_negative_labels_in_copy_mode():
    m = np.array([[-1, 0], [1, 2]])
    with pytest.raises(ValueError):
        payload = SegMapInterLayer(num_classes=3).encode((m, m, (0, 0)))
        # were it accepted, it would have to round-trip
        assert np.array_equal(SegMapInterLayer().decode(payload, m), m)


def _valid_coded_payload():
    rng = np.random.default_rng(12)
    ref = rng.integers(0, 4, (8, 10)).astype(np.uint8)
    labels = rng.integers(0, 4, (8, 10)).astype(np.uint8)
    return SegMapInterLayer(num_classes=4).encode((labels, ref, (1, -1))), labels, ref


def test_segmap_inter_decoder_rejects_bad_payloads():
    payload, labels, ref = _valid_coded_payload()
    dec = SegMapInterLayer().decode
    assert np.array_equal(dec(payload, ref), labels)
    with pytest.raises(BitstreamError, match="reference"):
        dec(payload)                                                        # missing reference
    with pytest.raises(BitstreamError, match="reference"):
        dec(payload, None, max_shape=(64, 64))
    with pytest.raises(BitstreamError, match="outside"):
        dec(payload, np.full((8, 10), 4, np.uint8))                         # reference label >= K
    with pytest.raises(BitstreamError, match="absurd"):
        dec(payload, ref, max_shape=(7, 10))                                # larger than max_shape
    with pytest.raises(BitstreamError, match="absurd"):
        dec(payload, ref, max_shape=(8, 9))
    assert np.array_equal(dec(payload, ref, max_shape=(8, 10)), labels)
    for sh in (bytes([17, 0]), bytes([0, 0xEF]), bytes([0x80, 0]), bytes([0, 0x7F])):  # +-17, -128, 127
        bad = payload[:4] + sh + payload[6:]
        with pytest.raises(BitstreamError, match="shift"):
            dec(bad, ref)
    for mode in (2, 3, 0xFF):
        with pytest.raises(BitstreamError, match="mode"):
            dec(bytes([mode]) + payload[1:], ref)
    for n in range(6):                                                       # truncated header
        with pytest.raises(BitstreamError, match="truncated"):
            dec(payload[:n], ref)
    long_header = SegMapInterLayer().encode((np.ones((200, 300), np.uint8), np.ones((2, 2), np.uint8), (0, 0)))
    assert len(long_header) == 8
    for n in range(8):
        with pytest.raises(BitstreamError):
            dec(long_header[:n], np.ones((2, 2), np.uint8))
    with pytest.raises(BitstreamError, match="non-minimal"):
        dec(bytes([COPY, 1, 0x88, 0x00, 8, 0, 0]), ref)                     # h=8 as a 2-byte varint
    for hw in (bytes([0, 5]), bytes([5, 0])):                                # zero-sized map
        with pytest.raises(BitstreamError, match="absurd"):
            dec(bytes([COPY, 3]) + hw + b"\x00\x00", ref)
    with pytest.raises(BitstreamError, match="absurd"):                     # beyond 16384 a side
        dec(bytes([COPY, 3]) + encode_varint(16385) + b"\x01\x00\x00", ref)
    copy = SegMapInterLayer(num_classes=4).encode((predict(ref, 8, 10, 2, 0), ref, (2, 0)))
    assert copy[0] == COPY
    assert np.array_equal(dec(copy, ref), predict(ref, 8, 10, 2, 0))
    for extra in (b"\x00", b"\x01", b"\x00\x00\x00\x00"):
        with pytest.raises(BitstreamError, match="extra"):
            dec(copy + extra, ref)


def test_segmap_inter_describe_rejects_bad_header():
    for bad in (b"", b"\x00\x01\x05", b"\x05\x01\x05\x05\x00\x00", b"\x00\x01\x05\x05\x11\x00"):
        with pytest.raises(BitstreamError):
            SegMapInterLayer.describe(bad)


_FUZZ_REFS = [np.zeros((3, 3), np.uint8), np.arange(12, dtype=np.uint8).reshape(3, 4) % 3,
              np.random.default_rng(13).integers(0, 2, (16, 20)).astype(np.uint8)]


@st.composite
def _segmap_inter_payloads(draw):
    if draw(st.booleans()):
        return draw(st.binary(max_size=48))
    mode = draw(st.sampled_from([0, 1, 1, 1, 2]))
    k1 = draw(st.sampled_from([0, 1, 2, 3, 5, 255]))
    h = draw(st.integers(0, 40))
    w = draw(st.integers(0, 40))
    dy = draw(st.integers(-20, 20)) & 0xFF
    dx = draw(st.integers(-20, 20)) & 0xFF
    tail = draw(st.one_of(st.just(b""), st.binary(max_size=48)))
    return bytes([mode, k1]) + encode_varint(h) + encode_varint(w) + bytes([dy, dx]) + tail


def _check_inter_decode(payload, ref):
    try:
        out = SegMapInterLayer().decode(payload, ref, max_shape=(32, 32))
    except BitstreamError as exc:
        assert str(exc)
        return None
    mode, k, h, w, dy, dx = SegMapInterLayer.peek(payload)
    assert out.shape == (h, w) and out.dtype == np.uint8
    assert int(out.max()) < k
    if mode == COPY:
        assert np.array_equal(out, predict(ref, h, w, dy, dx))
    return out


@given(_segmap_inter_payloads(), st.sampled_from(range(len(_FUZZ_REFS))))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_segmap_inter_fuzz_decodes_or_raises_bitstream_error(payload, ref_i):
    _check_inter_decode(payload, _FUZZ_REFS[ref_i])


@given(st.data())
@FAST
def test_segmap_inter_fuzz_mutated_valid_payloads(data):
    payload, labels, ref = _valid_coded_payload()
    b = bytearray(payload)
    op = data.draw(st.sampled_from(["truncate", "byte", "append"]))
    if op == "truncate":
        b = b[:data.draw(st.integers(0, len(b)))]
    elif op == "byte":
        b[data.draw(st.integers(0, len(b) - 1))] = data.draw(st.integers(0, 255))
    else:
        b += data.draw(st.binary(min_size=1, max_size=8))
    _check_inter_decode(bytes(b), ref)


def test_segmap_inter_registered():
    assert SegMapInterLayer.layer_id == LayerId.SEGMAP_INTER == 8
    assert LAYERS.get("segmap-inter") is SegMapInterLayer


# ----------------------------------------------------------------------------------------------
# 3. delta colour map
# ----------------------------------------------------------------------------------------------

def _doc_steps(h, w, qi):
    """The quantiser steps as docs/colormap.py state them."""
    u = np.arange(h)[:, None]
    v = np.arange(w)[None, :]
    luma = 1.5 * 1.12 ** qi * (1 + 0.35 * (u + v))
    return np.stack([luma, 1.6 * luma, 1.6 * luma])


def _thumbs(seed, h, w, kind):
    rng = np.random.default_rng(seed)
    ref = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
    if kind == "unrelated":
        th = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
    elif kind == "noise":
        th = np.clip(ref.astype(int) + rng.integers(-6, 7, ref.shape), 0, 255).astype(np.uint8)
    else:  # same
        th = ref.copy()
    return th, ref


@pytest.mark.parametrize("h,w", [(1, 1), (1, 5), (2, 3), (12, 16), (9, 7), (24, 32)])
@pytest.mark.parametrize("qi", [0, 12, 40, 63])
@pytest.mark.parametrize("kind", ["unrelated", "noise"])
def test_colormap_delta_roundtrip(h, w, qi, kind):
    th, ref = _thumbs(h * 100 + w + qi, h, w, kind)
    q_ref = quantise(ref, qi)
    for q in (quantise(th, qi), delta_quantise(th, q_ref, qi), delta_quantise(th, q_ref, qi, 0.4)):
        payload = ColorMapDeltaLayer().encode((q, q_ref, qi))
        assert payload[:3] == bytes([w, h, qi])
        keep = q_ref.copy()
        back = ColorMapDeltaLayer().decode(payload, q_ref, qi)
        assert np.array_equal(q_ref, keep)          # the reference is not modified in place
        assert back.shape == (3, h, w)
        assert np.array_equal(back, q)
        assert ColorMapDeltaLayer().encode((q, q_ref, qi)) == payload  # deterministic
        assert ColorMapDeltaLayer.describe(payload) == {"thumbnail": f"{w}x{h}", "quantiser": qi}


@given(st.integers(1, 16), st.integers(1, 16), st.integers(0, 63), st.integers(0, 2**32 - 1),
       st.sampled_from([1, 3, 50, 4000]), st.floats(0.0, 1.0))
@MEDIUM
def test_colormap_delta_roundtrip_any_differences(h, w, qi, seed, spread, density):
    rng = np.random.default_rng(seed)
    q_ref = quantise(rng.integers(0, 256, (h, w, 3)).astype(np.uint8), qi)
    d = rng.integers(-spread, spread + 1, q_ref.shape) * (rng.random(q_ref.shape) < density)
    q = q_ref + d
    payload = ColorMapDeltaLayer().encode((q, q_ref, qi))
    assert np.array_equal(ColorMapDeltaLayer().decode(payload, q_ref, qi), q)


def test_colormap_delta_last_coefficient_and_single_channel_changes():
    rng = np.random.default_rng(21)
    h, w, qi = 6, 5, 10
    q_ref = quantise(rng.integers(0, 256, (h, w, 3)).astype(np.uint8), qi)
    # the last zig-zag coefficient of each channel is (h-1, w-1)
    for c in range(3):
        for (u, v) in [(h - 1, w - 1), (0, 0), (0, 1)]:
            for delta in (1, -1, 7):
                q = q_ref.copy()
                q[c, u, v] += delta
                payload = ColorMapDeltaLayer().encode((q, q_ref, qi))
                assert np.array_equal(ColorMapDeltaLayer().decode(payload, q_ref, qi), q)
                assert len(payload) <= 12  # one changed coefficient costs a few bytes


@pytest.mark.parametrize("h,w", [(1, 1), (12, 16), (64, 64)])
@pytest.mark.parametrize("qi", [0, 12, 63])
def test_colormap_delta_zero_difference_is_cheap(h, w, qi):
    th = np.random.default_rng(h + qi).integers(0, 256, (h, w, 3)).astype(np.uint8)
    q_ref = quantise(th, qi)
    payload = ColorMapDeltaLayer().encode((q_ref.copy(), q_ref, qi))
    assert len(payload) <= 5
    assert np.array_equal(ColorMapDeltaLayer().decode(payload, q_ref, qi), q_ref)
    # far cheaper than coding the thumbnail again
    assert len(payload) * 3 < len(ColorMapLayer(qi).encode(th)) or len(ColorMapLayer(qi).encode(th)) <= 15
    # small drifts under the dead zone cost nothing either
    assert ColorMapDeltaLayer().encode((delta_quantise(th, q_ref, qi), q_ref, qi)) == payload


def test_colormap_delta_smaller_change_smaller_payload():
    rng = np.random.default_rng(22)
    ref = rng.integers(0, 256, (12, 16, 3)).astype(np.uint8)
    q_ref = quantise(ref, 12)
    sizes = []
    for noise in (0, 3, 20, 128):
        th = np.clip(ref.astype(int) + rng.integers(-noise, noise + 1, ref.shape), 0, 255).astype(np.uint8)
        sizes.append(len(ColorMapDeltaLayer().encode((delta_quantise(th, q_ref, 12, 0.0), q_ref, 12))))
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1] / 10


@given(st.integers(1, 12), st.integers(1, 12), st.integers(0, 63), st.integers(0, 2**32 - 1), st.integers(0, 3))
@FAST
def test_delta_quantise_deadzone_zero_is_intra_quantisation(h, w, qi, seed, ref_kind):
    rng = np.random.default_rng(seed)
    th = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
    other = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
    q_ref = [quantise(other, qi), quantise(th, qi), np.zeros((3, h, w), np.int64),
             quantise(th, qi) + rng.integers(-3, 4, (3, h, w))][ref_kind]
    q = delta_quantise(th, q_ref, qi, deadzone=0.0)
    assert np.array_equal(q, quantise(th, qi))
    assert np.array_equal(delta_quantise(th, q_ref, qi, 0.0), delta_quantise(th, q_ref, qi, deadzone=0))


@given(st.integers(1, 10), st.integers(1, 10), st.integers(0, 63), st.integers(0, 2**32 - 1),
       st.sampled_from([0.0, 0.1, 0.25, 0.4, 0.49]))
@FAST
def test_delta_quantise_deadzone_properties(h, w, qi, seed, dz):
    rng = np.random.default_rng(seed)
    ref = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
    th = np.clip(ref.astype(int) + rng.integers(-20, 21, ref.shape), 0, 255).astype(np.uint8)
    q_ref = quantise(ref, qi)
    q = delta_quantise(th, q_ref, qi, dz)
    assert q.shape == q_ref.shape and np.issubdtype(q.dtype, np.integer)
    x = coefficients(th) / _doc_steps(h, w, qi)      # the coefficient in steps
    drift = x - q_ref
    eps = 1e-9
    # inside the dead zone nothing moves
    inside = np.abs(drift) < 0.5 + dz - eps
    assert np.array_equal(q[inside], q_ref[inside])
    # a coefficient only moves in the direction it drifted, never past its rounded value
    d = q - q_ref
    assert np.all(d * drift >= 0)
    assert np.all(np.abs(d) <= np.rint(np.abs(drift)) + eps)
    # the reconstruction error stays within half a step plus the dead zone
    assert np.all(np.abs(q - x) <= 0.5 + dz + eps)
    # a larger dead zone never moves more coefficients
    assert np.count_nonzero(q != q_ref) <= np.count_nonzero(delta_quantise(th, q_ref, qi, 0.0) != q_ref)


@pytest.mark.parametrize("h,w,qi", [(4, 4, 24), (6, 8, 28), (8, 8, 32)])
def test_delta_quantise_keeps_reference_for_one_grey_level(h, w, qi):
    rng = np.random.default_rng(h * w + qi)
    moved_plain = 0
    for _ in range(20):
        th = rng.integers(0, 255, (h, w, 3)).astype(np.uint8)      # <= 254: +1 does not clip
        q_ref = quantise(th, qi)
        brighter = th + np.uint8(1)
        # one grey level drifts the luma DC by sqrt(h*w) / step < 0.25 steps here: the dead zone holds
        assert np.sqrt(h * w) / _doc_steps(h, w, qi)[0, 0, 0] < 0.25
        assert np.array_equal(delta_quantise(brighter, q_ref, qi, 0.25), q_ref)
        moved_plain += not np.array_equal(delta_quantise(brighter, q_ref, qi, 0.0), q_ref)
        # a large change moves the luma DC by about the drift in steps
        dark = (th // 2).astype(np.uint8)
        bright = (dark + np.uint8(100)).astype(np.uint8)
        q_dark = quantise(dark, qi)
        q_bright = delta_quantise(bright, q_dark, qi, 0.25)
        steps_moved = q_bright[0, 0, 0] - q_dark[0, 0, 0]
        expect = 100 * np.sqrt(h * w) / _doc_steps(h, w, qi)[0, 0, 0]
        assert abs(steps_moved - expect) <= 1.25 + 1e-9   # rounding (0.5) plus the dead zone (0.75)
        assert steps_moved >= 1
        rest = (q_bright - q_dark).reshape(-1)[1:]      # chroma and luma AC did not drift: they stay
        assert not rest.any()
    assert moved_plain >= 1  # plain rounding flickers where the dead zone holds


def test_quantise_and_dequantise_agree_with_the_intra_layer():
    rng = np.random.default_rng(31)
    for h, w in [(1, 1), (12, 16), (7, 3), (64, 64)]:
        for qi in (0, 12, 63):
            th = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
            q = quantise(th, qi)
            assert q.shape == (3, h, w) and np.issubdtype(q.dtype, np.integer)
            payload = ColorMapLayer(qi).encode(th)
            assert ColorMapLayer.encode_quantised(q, qi) == payload
            q2, qi2 = ColorMapLayer.decode_quantised(payload)
            assert qi2 == qi and np.array_equal(q2, q)
            assert np.array_equal(ColorMapLayer().decode(payload), dequantise(q2, qi))
            assert np.array_equal(q, np.rint(coefficients(th) / _doc_steps(h, w, qi)))
    # an intra frame followed by a delta: the receiver's q_ref is decode_quantised's
    th0 = rng.integers(0, 256, (12, 16, 3)).astype(np.uint8)
    th1 = np.clip(th0.astype(int) + 30, 0, 255).astype(np.uint8)
    q_ref, qi = ColorMapLayer.decode_quantised(ColorMapLayer(14).encode(th0))
    q1 = delta_quantise(th1, q_ref, qi)
    back = ColorMapDeltaLayer().decode(ColorMapDeltaLayer().encode((q1, q_ref, qi)), q_ref, qi)
    assert np.array_equal(dequantise(back, qi), dequantise(q1, qi))


def test_colormap_delta_decoder_rejects_mismatch_and_missing_reference():
    rng = np.random.default_rng(41)
    q_ref = quantise(rng.integers(0, 256, (12, 16, 3)).astype(np.uint8), 12)
    q = q_ref + rng.integers(-2, 3, q_ref.shape)
    payload = ColorMapDeltaLayer().encode((q, q_ref, 12))
    dec = ColorMapDeltaLayer().decode
    assert np.array_equal(dec(payload, q_ref, 12), q)
    with pytest.raises(BitstreamError, match="reference"):
        dec(payload)
    with pytest.raises(BitstreamError, match="reference"):
        dec(payload, None, 12)
    with pytest.raises(BitstreamError, match="match"):
        dec(payload, q_ref, 13)                               # other quantiser
    with pytest.raises(BitstreamError, match="match"):
        dec(payload, q_ref, None)
    with pytest.raises(BitstreamError, match="match"):
        dec(payload, q_ref[:, :11], 12)                       # other height
    with pytest.raises(BitstreamError, match="match"):
        dec(payload, q_ref[:, :, :15], 12)                    # other width
    with pytest.raises(BitstreamError, match="match"):
        dec(payload, np.zeros((3, 16, 12), np.int64), 12)     # transposed size
    for hdr in (bytes([16, 12, 13]), bytes([15, 12, 12]), bytes([16, 11, 12]), bytes([12, 16, 12])):
        with pytest.raises(BitstreamError, match="match"):
            dec(hdr + payload[3:], q_ref, 12)
    for n in range(3):
        with pytest.raises(BitstreamError, match="truncated"):
            dec(payload[:n], q_ref, 12)
        with pytest.raises(BitstreamError, match="truncated"):
            ColorMapDeltaLayer.describe(payload[:n])
    assert np.array_equal(dec(payload[:3], q_ref, 12), q_ref)  # header only: no difference at all


def test_colormap_delta_encoder_rejects_bad_input():
    q = np.zeros((3, 4, 5), np.int64)
    enc = ColorMapDeltaLayer().encode
    _encoder_value_error(enc, (q, np.zeros((3, 4, 6), np.int64), 12))
    _encoder_value_error(enc, (q[:2], q[:2], 12))
    _encoder_value_error(enc, (q[0], q[0], 12))
    big = q.copy()
    big[0, 0, 0] = 10**6
    _encoder_value_error(enc, (big, q, 12), match="difference")


@st.composite
def _colormap_delta_payloads(draw):
    if draw(st.booleans()):
        return draw(st.binary(max_size=40))
    head = draw(st.sampled_from([bytes([5, 4, 12]), bytes([5, 4, 12]), bytes([5, 4, 11]), bytes([4, 5, 12])]))
    return head + draw(st.binary(max_size=40))


_DELTA_REF = quantise(np.random.default_rng(51).integers(0, 256, (4, 5, 3)).astype(np.uint8), 12)


@given(_colormap_delta_payloads())
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_colormap_delta_fuzz_decodes_or_raises_bitstream_error(payload):
    keep = _DELTA_REF.copy()
    try:
        out = ColorMapDeltaLayer().decode(payload, _DELTA_REF, 12)
    except BitstreamError as exc:
        assert str(exc)
        return
    finally:
        assert np.array_equal(_DELTA_REF, keep)
    assert payload[:3] == bytes([5, 4, 12])
    assert out.shape == (3, 4, 5) and np.issubdtype(out.dtype, np.integer)


@given(st.data())
@FAST
def test_colormap_delta_fuzz_mutated_valid_payloads(data):
    rng = np.random.default_rng(52)
    q = _DELTA_REF + rng.integers(-3, 4, _DELTA_REF.shape)
    b = bytearray(ColorMapDeltaLayer().encode((q, _DELTA_REF, 12)))
    op = data.draw(st.sampled_from(["truncate", "byte", "append"]))
    if op == "truncate":
        b = b[:data.draw(st.integers(0, len(b)))]
    elif op == "byte":
        b[data.draw(st.integers(0, len(b) - 1))] = data.draw(st.integers(0, 255))
    else:
        b += data.draw(st.binary(min_size=1, max_size=8))
    try:
        out = ColorMapDeltaLayer().decode(bytes(b), _DELTA_REF, 12)
    except BitstreamError:
        return
    assert out.shape == _DELTA_REF.shape


def test_colormap_delta_registered():
    assert ColorMapDeltaLayer.layer_id == LayerId.COLORMAP_DELTA == 9
    assert LAYERS.get("colormap-delta") is ColorMapDeltaLayer


# ----------------------------------------------------------------------------------------------
# 4. containers and inspect
# ----------------------------------------------------------------------------------------------

def _inter_frame_layers():
    rng = np.random.default_rng(61)
    ref = _blocks(rng, 45, 60, 5, 12)
    labels = np.roll(ref, (1, -2), axis=(0, 1))
    q_ref = quantise(rng.integers(0, 256, (12, 16, 3)).astype(np.uint8), 9)
    q = q_ref.copy()
    q[0, 0, 0] += 2
    return [(LayerId.FRAME_INFO, FrameInfoLayer().encode(FrameHeader(False, 77, 4, 1))),
            (LayerId.SEGMAP_INTER, SegMapInterLayer(num_classes=12).encode((labels, ref, (1, -2)))),
            (LayerId.COLORMAP_DELTA, ColorMapDeltaLayer().encode((q, q_ref, 9)))], labels, ref, q, q_ref


def test_pack_unpack_accept_the_stream_layer_ids():
    layers, labels, ref, q, q_ref = _inter_frame_layers()
    data = pack(CodecId.SEMANTIC_GAN, 360, 480, layers)
    c = unpack(data)
    assert c.version == 4 and (c.height, c.width) == (360, 480)
    assert [lid for lid, _ in c.layers] == [7, 8, 9]
    assert [p for _, p in c.layers] == [p for _, p in layers]
    assert FrameInfoLayer().decode(c.layer(LayerId.FRAME_INFO)) == FrameHeader(False, 77, 4, 1)
    assert np.array_equal(SegMapInterLayer().decode(c.layer(LayerId.SEGMAP_INTER), ref), labels)
    assert np.array_equal(ColorMapDeltaLayer().decode(c.layer(LayerId.COLORMAP_DELTA), q_ref, 9), q)
    # a key frame: frame info beside the intra layers
    key = pack(CodecId.SEMANTIC_GAN, 10, 12, [(7, FrameInfoLayer().encode(FrameHeader(True, 1, 0))),
                                              (2, ColorMapLayer(3).encode(np.zeros((3, 4, 3), np.uint8)))])
    assert [lid for lid, _ in unpack(key).layers] == [7, 2]
    with pytest.raises(ValueError):
        pack(CodecId.SEMANTIC_GAN, 10, 10, [(12, b"x")])       # id 12 is not assigned


def test_inspect_names_the_stream_layers_with_their_headers():
    layers, *_ = _inter_frame_layers()
    data = pack(CodecId.SEMANTIC_GAN, 360, 480, layers)
    d = inspect_describe(data)
    assert d["format_version"] == 4
    got = [(x["id"], x["name"], x["bytes"]) for x in d["layers"]]
    assert got == [(7, "frame-info", len(layers[0][1])), (8, "segmap-inter", len(layers[1][1])),
                   (9, "colormap-delta", len(layers[2][1]))]
    assert d["layers"][0]["header"] == {"frame": "inter", "stream_tag": 77, "seq": 4, "ref_seq": 3}
    assert d["layers"][1]["header"] == {"mode": "coded", "map": "60x45", "classes": 12, "shift": "1,-2"}
    assert d["layers"][2]["header"] == {"thumbnail": "16x12", "quantiser": 9}
    text = format_description(d)
    for word in ("frame-info", "segmap-inter", "colormap-delta", "frame=inter", "stream_tag=77", "ref_seq=3",
                 "map=60x45", "shift=1,-2", "thumbnail=16x12", "quantiser=9"):
        assert word in text
    key = pack(CodecId.SEMANTIC_GAN, 8, 8, [(7, FrameInfoLayer().encode(FrameHeader(True, 5, SEQ_MODULO - 1)))])
    assert inspect_describe(key)["layers"][0]["header"] == {"frame": "key", "stream_tag": 5, "seq": SEQ_MODULO - 1}


@pytest.mark.parametrize("lid,payload", [
    (7, b"\x02\x05\x05"),            # reserved flag bit
    (7, b"\x00\x05\x05"),            # inter frame without its distance
    (8, b"\x07\x01\x05\x05\x00\x00"),  # unknown mode
    (8, b"\x00\x01\x05\x05\x20\x00"),  # shift 32
    (8, b"\x00\x01"),                # truncated header
    (9, b"\x10\x0c"),                # truncated header
])
def test_inspect_rejects_bad_stream_layer_headers(lid, payload):
    data = pack(CodecId.SEMANTIC_GAN, 16, 16, [(lid, payload)])
    assert unpack(data).layers == ((lid, payload),)   # the framing is fine ...
    with pytest.raises(BitstreamError):
        inspect_describe(data)                         # ... the layer header is not
