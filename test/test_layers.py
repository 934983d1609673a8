"""Seg-map and colour-map layers: lossless/lossy round trips, sizes, strict decoding, registry."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from semcomp_core.errors import BitstreamError, RegistryError
from semcomp_core.layers import (LAYERS, ColorMapLayer, SegMapLayer, downscale_labels, thumbnail, upscale_labels,
                                 upscale_thumbnail)
from semcomp_core.layers.base import register_layer
from semcomp_core.metrics import psnr


@settings(max_examples=60, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 20), st.integers(1, 20)), elements=st.integers(0, 11)),
       st.sampled_from([0, 1]))
def test_segmap_lossless_roundtrip(labels, prior_id):
    layer = SegMapLayer(prior_id=prior_id)
    assert np.array_equal(layer.decode(layer.encode(labels)), labels)


def test_segmap_large_alphabet_and_constant_maps():
    rng = np.random.default_rng(0)
    m = rng.integers(0, 256, size=(9, 13), dtype=np.uint8)
    layer = SegMapLayer()
    assert np.array_equal(layer.decode(layer.encode(m)), m)
    const = np.full((30, 40), 7, np.uint8)
    enc = SegMapLayer(num_classes=12).encode(const)
    assert np.array_equal(SegMapLayer().decode(enc), const)
    assert len(enc) < 12
    one = np.zeros((5, 5), np.uint8)
    assert len(SegMapLayer().encode(one)) == 4  # header only: a single label costs nothing


def test_segmap_beats_png_on_real_labels(sample_label):
    from semcomp_core.bench.segmap_bench import optimised_png_size

    m = downscale_labels(sample_label, 8)
    assert m.shape == (45, 60)
    ours = len(SegMapLayer().encode(m))
    png, _ = optimised_png_size(m)
    assert ours < 0.7 * png


def test_segmap_prior_helps(sample_label):
    m = downscale_labels(sample_label, 8)
    assert len(SegMapLayer(prior_id=1).encode(m)) < len(SegMapLayer(prior_id=0).encode(m))


def test_segmap_rejects_bad_input():
    with pytest.raises(ValueError):
        SegMapLayer().encode(np.zeros((3,), np.uint8))
    with pytest.raises(ValueError):
        SegMapLayer(num_classes=3).encode(np.full((2, 2), 5, np.uint8))
    with pytest.raises(BitstreamError):
        SegMapLayer().decode(b"\x01")
    with pytest.raises(BitstreamError, match="prior"):
        SegMapLayer().decode(b"\x09\x05\x05\x05abc")
    with pytest.raises(BitstreamError, match="absurd"):
        SegMapLayer().decode(b"\x01\x05\x40\x40abc", max_shape=(10, 10))


def test_layer_decoders_raise_only_documented_error_on_garbage():
    rng = np.random.default_rng(1)
    seg = SegMapLayer()
    cmap = ColorMapLayer()
    good_seg = seg.encode(rng.integers(0, 5, (12, 16)).astype(np.uint8))
    good_cmap = cmap.encode(rng.integers(0, 255, (6, 8, 3)).astype(np.uint8))
    for _ in range(400):
        for layer, good, kw in ((seg, good_seg, {"max_shape": (64, 64)}), (cmap, good_cmap, {})):
            b = bytearray(good)
            op = rng.integers(3)
            if op == 0:
                b = b[: rng.integers(len(b) + 1)]
            elif op == 1 and len(b):
                i = rng.integers(len(b))
                b[i] = rng.integers(256)
            else:
                b = bytearray(rng.integers(0, 256, rng.integers(0, 40)).astype(np.uint8).tobytes())
            try:
                out = layer.decode(bytes(b), **kw)
            except BitstreamError:
                continue
            assert out.dtype == np.uint8


def test_colormap_roundtrip_quality_and_size(sample_image):
    th = thumbnail(sample_image, 16, 12)
    assert th.shape == (12, 16, 3)
    sizes, quality = [], []
    for qi in (4, 12, 24):
        payload = ColorMapLayer(qi).encode(th)
        back = ColorMapLayer().decode(payload)
        assert back.shape == th.shape and back.dtype == np.uint8
        sizes.append(len(payload))
        quality.append(psnr(th, back))
    assert sizes[0] > sizes[1] > sizes[2]
    assert quality[0] > quality[2]
    assert quality[1] > 24.0
    assert sizes[1] < 120
    big = upscale_thumbnail(back, 360, 480)
    assert big.shape == (360, 480, 3)


@settings(max_examples=40, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 64), st.integers(1, 64), st.just(3))), st.integers(0, 63))
def test_colormap_any_thumbnail_roundtrips(th, qi):
    back = ColorMapLayer(qi).decode(ColorMapLayer(qi).encode(th))
    assert back.shape == th.shape
    if qi <= 4:
        assert psnr(th, back) > 20


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 64), st.integers(1, 64), st.sampled_from([0, 5, 8, 12, 20]),
       st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255)))
def test_colormap_flat_thumbnails_keep_their_colour_at_every_size(h, w, qi, rgb):
    """A flat thumbnail is all DC: its mean must survive (the DC once clipped at +-4096:
    white 64x64 at quantiser 0 came back as grey 96)."""
    th = np.empty((h, w, 3), np.uint8)
    th[:] = rgb
    back = ColorMapLayer(qi).decode(ColorMapLayer(qi).encode(th))
    step = 1.5 * 1.12 ** qi * 1.6          # the coarsest DC step (chroma)
    tol = 2.0 + 1.5 * step / np.sqrt(h * w)  # half a quantiser step, spread over the pixels, in each of Y/Cb/Cr
    assert np.abs(back.astype(float).mean((0, 1)) - np.array(rgb)).max() <= tol


@pytest.mark.parametrize("side,qi", [(32, 0), (64, 0), (64, 5), (64, 8)])
def test_colormap_white_thumbnail_is_white(side, qi):
    th = np.full((side, side, 3), 255, np.uint8)
    assert ColorMapLayer(qi).decode(ColorMapLayer(qi).encode(th)).mean() >= 254


def test_scale_helpers():
    lab = np.zeros((360, 480), np.uint8)
    lab[:, 240:] = 3
    lab[100:101, :] = 5  # a 1-px line loses the vote
    m = downscale_labels(lab, 8)
    assert m.shape == (45, 60) and set(np.unique(m)) == {0, 3}
    up = upscale_labels(m, 360, 480)
    assert up.shape == (360, 480) and (up == lab).mean() > 0.99
    odd = downscale_labels(np.arange(35, dtype=np.uint8).reshape(5, 7), 4)
    assert odd.shape == (2, 2)


def test_layer_registry_rejects_duplicates():
    assert set(LAYERS.names()) >= {"segmap", "colormap"}
    with pytest.raises(RegistryError):
        register_layer(SegMapLayer)
