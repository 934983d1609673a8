"""Structure layer: the edge extractor, the lossless context coder (round trips, strictness, fuzz)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semcomp_core.errors import BitstreamError, UsageError
from semcomp_core.layers import StructureLayer
from semcomp_core.layers.structure import contexts
from semcomp_core.structure import (STRUCTURE_LEVELS, extract_structure, resolve_structure_level, structure_factor,
                                    structure_input)
from semcomp_core.structure.extract import grid_shape


def test_extractor_grid_follows_the_frame(sample_image):
    e = extract_structure(sample_image, "m")
    assert e.dtype == bool and e.shape == (90, 120) == grid_shape(360, 480)
    assert 0.02 < e.mean() < 0.3                        # thin lines, not texture everywhere nor nothing
    assert structure_factor(360, 480) == 4 and structure_factor(1024, 2048) == 8 * 2
    big = np.ascontiguousarray(np.repeat(np.repeat(sample_image, 2, 0), 2, 1))
    assert extract_structure(big, "m").shape == (90, 120)   # 960x720: factor 8, the same cells


def test_levels_trade_lines_for_bytes(sample_image):
    edges = {n: extract_structure(sample_image, n) for n in STRUCTURE_LEVELS}
    sizes = {n: len(StructureLayer().encode(e)) for n, e in edges.items()}
    assert edges["s"].sum() < edges["m"].sum() < edges["l"].sum()
    assert sizes["s"] < sizes["m"] < sizes["l"]
    # the lines of a stricter level are (almost all) lines of a looser one: the levels nest
    assert (edges["s"] & edges["l"]).sum() >= 0.9 * edges["s"].sum()


def test_level_names_and_bad_levels():
    assert resolve_structure_level("none") is None and resolve_structure_level(None) is None
    assert resolve_structure_level("M").name == "m" and resolve_structure_level("on").name == "l"
    with pytest.raises(UsageError, match="unknown structure level"):
        resolve_structure_level("xl")
    with pytest.raises(ValueError):
        extract_structure(np.zeros((10, 10), np.uint8), "m")


def test_structure_input_is_thin_and_centred():
    e = np.zeros((9, 12), bool)
    e[4, :] = True                                       # one horizontal line on the 1/4 grid
    values, presence = structure_input(e, 36, 48)
    assert values.shape == (36, 48, 1) and presence.shape == (36, 48) and presence.min() == 1.0
    rows = values[:, :, 0].mean(1)
    assert rows.argmax() in (17, 18) and rows[:14].max() == 0 and rows[22:].max() == 0


@settings(max_examples=60, deadline=None)
@given(h=st.integers(1, 40), w=st.integers(1, 40), density=st.floats(0, 1), seed=st.integers(0, 2**31),
       prior=st.sampled_from([0, 1]))
def test_roundtrip_is_lossless(h, w, density, seed, prior):
    e = np.random.default_rng(seed).random((h, w)) < density
    layer = StructureLayer(prior_id=prior)
    data = layer.encode(e)
    assert np.array_equal(layer.decode(data), e)
    assert StructureLayer.peek_shape(data) == (h, w)


def test_real_edges_code_compactly_and_the_prior_helps(sample_image):
    e = extract_structure(sample_image, "m")
    with_prior, without = len(StructureLayer().encode(e)), len(StructureLayer(prior_id=0).encode(e))
    raw_bits = e.size                                    # 1 bit per cell uncompressed
    assert with_prior < without < raw_bits / 8
    assert with_prior < raw_bits / 8 / 3                  # a context model, not a bit dump


def test_empty_map_is_header_only():
    data = StructureLayer().encode(np.zeros((90, 120), bool))
    assert len(data) == 1 + 1 + 1 and not StructureLayer().decode(data).any()


def test_contexts_match_the_documented_template():
    e = np.zeros((4, 6), bool)
    e[1, 2] = True
    c = contexts(e).reshape(4, 6)
    assert c[1, 3] == 1                      # W
    assert c[1, 4] == 2                      # WW
    assert c[2, 3] == 4 and c[2, 2] == 8 and c[2, 1] == 16   # NW, N, NE
    assert c[3, 2] == 32                     # NN
    assert c[2, 4] == 64 and c[2, 0] == 128  # NWW, NEE


@pytest.mark.parametrize("payload,msg", [
    (b"", "truncated"), (b"\x01\x05", "truncated"), (b"\x07\x05\x05", "unknown structure prior"),
    (b"\x01\x00\x05", "absurd"), (b"\x01\x80\x80\x80\x01\x05", "varint"),
])
def test_bad_payloads_raise_documented_error(payload, msg):
    with pytest.raises(BitstreamError, match=msg):
        StructureLayer().decode(payload)


def test_the_frame_bounds_the_map_before_allocation():
    data = StructureLayer().encode(np.ones((50, 60), bool))
    with pytest.raises(BitstreamError, match="absurd"):
        StructureLayer().decode(data, max_shape=(49, 60))


def test_encoder_rejects_what_it_cannot_code():
    with pytest.raises(ValueError):
        StructureLayer().encode(np.zeros((0, 4), bool))
    with pytest.raises(ValueError):
        StructureLayer().encode(np.full((3, 3), 2))
    with pytest.raises(ValueError):
        StructureLayer(prior_id=9)


def test_fuzzed_payloads_decode_or_raise(sample_image):
    rng = np.random.default_rng(7)
    good = StructureLayer().encode(extract_structure(sample_image, "s"))
    outcomes = {"ok": 0, "bad": 0}
    for _ in range(300):
        b = bytearray(good)
        op = rng.integers(3)
        if op == 0:
            b = b[:rng.integers(len(b))]
        elif op == 1:
            b[rng.integers(len(b))] ^= 1 << int(rng.integers(8))
        else:
            b[rng.integers(3, len(b)):] = rng.integers(0, 256, 6).astype(np.uint8).tobytes()
        try:
            out = StructureLayer().decode(bytes(b), max_shape=(90, 120))
        except BitstreamError as exc:
            assert str(exc)
            outcomes["bad"] += 1
            continue
        assert out.dtype == bool and out.shape[0] <= 90 and out.shape[1] <= 120
        outcomes["ok"] += 1
    assert outcomes["bad"] > 0 and outcomes["ok"] + outcomes["bad"] == 300
