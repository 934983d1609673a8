"""Behaviour of semcomp_core.layers that mutation testing found unpinned (docs/testing/mutation.md):
the documented resampling rules of layers.scale and the error messages of the seg-map and
decoder-params payload parsers.
"""
from __future__ import annotations

import numpy as np
import pytest

from semcomp_core.errors import BitstreamError
from semcomp_core.layers.decoder_params import MAX_SEED, DecoderParams, DecoderParamsLayer, label_table_id
from semcomp_core.layers.scale import downscale_labels, map_shape, upscale_labels
from semcomp_core.layers.segmap import SegMapLayer


def test_downscale_factor_one_is_a_uint8_copy():
    labels = np.array([[0, 1, 2], [3, 4, 5]], dtype=np.int64)
    out = downscale_labels(labels, 1)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, labels)
    out[0, 0] = 9
    assert labels[0, 0] == 0
    with pytest.raises(ValueError, match="factor must be >= 1, got 0"):
        downscale_labels(labels, 0)


def test_downscale_by_two_is_the_block_mode_with_ties_to_the_smaller_label():
    labels = np.array([[3, 5, 1, 1],
                       [7, 9, 1, 2],
                       [4, 4, 6, 6],
                       [2, 2, 6, 0]], dtype=np.uint8)
    np.testing.assert_array_equal(downscale_labels(labels, 2), [[3, 1], [2, 6]])
    # odd sides: edges padded by replication, ceil(H/f) x ceil(W/f) cells
    odd = np.array([[1, 2, 3], [1, 2, 3], [5, 5, 4]], dtype=np.uint8)
    assert map_shape(3, 3, 2) == (2, 2)
    np.testing.assert_array_equal(downscale_labels(odd, 2), [[1, 3], [5, 4]])


def test_upscale_is_nearest_neighbour_to_the_frame_size():
    small = np.array([[1, 2], [3, 4]], dtype=np.uint8)
    np.testing.assert_array_equal(upscale_labels(small, 4, 4), [[1, 1, 2, 2],
                                                               [1, 1, 2, 2],
                                                               [3, 3, 4, 4],
                                                               [3, 3, 4, 4]])
    np.testing.assert_array_equal(upscale_labels(small, 3, 5), [[1, 1, 1, 2, 2],
                                                               [1, 1, 1, 2, 2],
                                                               [3, 3, 3, 4, 4]])


def test_segmap_header_errors_name_the_problem():
    layer = SegMapLayer()
    with pytest.raises(BitstreamError, match="^truncated seg-map layer header$"):
        layer.decode(b"\x01\x01\x05")
    with pytest.raises(BitstreamError, match="^truncated seg-map layer header$"):
        SegMapLayer.peek_shape(b"\x01\x01\x05")
    with pytest.raises(BitstreamError, match="^seg-map height: varint longer than 3 bytes$"):
        layer.decode(b"\x01\x01\x80\x80\x80\x01")
    with pytest.raises(BitstreamError, match="^seg-map width: non-minimal varint encoding$"):
        layer.decode(b"\x01\x01\x05\x80\x00")
    with pytest.raises(BitstreamError, match="unknown seg-map prior id 9"):
        layer.decode(b"\x09\x01\x05\x05")
    with pytest.raises(BitstreamError, match=r"absurd seg-map size 5x5 \(at most 4x8\)"):
        layer.decode(b"\x01\x01\x05\x05", max_shape=(4, 8))
    with pytest.raises(BitstreamError, match="^seg-map layer with one label carries extra bytes$"):
        layer.decode(b"\x01\x00\x05\x05\x00")
    one_label = layer.decode(b"\x01\x00\x02\x03")
    assert one_label.dtype == np.uint8 and one_label.shape == (2, 3) and not one_label.any()


def test_segmap_max_shape_bounds_height_and_width_separately():
    labels = np.arange(15, dtype=np.uint8).reshape(3, 5) % 3
    payload = SegMapLayer(num_classes=3).encode(labels)
    for limit in ((3, 5), (4, 6), None):
        out = SegMapLayer().decode(payload, max_shape=limit)
        assert out.dtype == np.uint8
        np.testing.assert_array_equal(out, labels)
    for limit in ((2, 5), (3, 4), (5, 3)):
        with pytest.raises(BitstreamError, match=rf"absurd seg-map size 3x5 \(at most {limit[0]}x{limit[1]}\)"):
            SegMapLayer().decode(payload, max_shape=limit)


def test_decoder_params_format_bounds_and_errors():
    layer = DecoderParamsLayer()
    assert layer.encode(DecoderParams(0xBEEF, 0)) == b"\xbe\xef\x00"
    assert layer.encode(DecoderParams(1, MAX_SEED)) == b"\x00\x01\xff\xff\x7f"
    assert layer.encode(DecoderParams(0, 1)) == b"\x00\x00\x01"
    assert layer.encode(DecoderParams(0xFFFF, 0)) == b"\xff\xff\x00"
    assert layer.decode(b"\xbe\xef\x05") == DecoderParams(0xBEEF, 5)
    assert layer.decode(b"\x00\x01\xff\xff\x7f") == DecoderParams(1, MAX_SEED)
    for bad, msg in ((DecoderParams(0x10000, 0), "label-table id 65536 outside 0..65535"),
                     (DecoderParams(-1, 0), "label-table id -1 outside"),
                     (DecoderParams(0, MAX_SEED + 1), f"seed {MAX_SEED + 1} outside 0..{MAX_SEED}"),
                     (DecoderParams(0, -1), "seed -1 outside")):
        with pytest.raises(ValueError, match=msg):
            layer.encode(bad)
    with pytest.raises(BitstreamError, match="decoder-params layer of 2 bytes, at least 3 expected"):
        layer.decode(b"\x00\x01")
    with pytest.raises(BitstreamError, match="1 trailing bytes in the decoder-params layer"):
        layer.decode(b"\x00\x01\x05\x00")
    with pytest.raises(BitstreamError, match="decoder-params seed: non-minimal"):
        layer.decode(b"\x00\x01\x85\x00")


def test_label_table_id_is_the_first_two_bytes_of_sha256():
    import hashlib

    names = ["sky", "road"]
    want = int.from_bytes(hashlib.sha256(b"sky\nroad").digest()[:2], "big")
    assert label_table_id(names, 2) == want
    unnamed = int.from_bytes(hashlib.sha256(b"<3 unnamed classes>").digest()[:2], "big")
    assert label_table_id(None, 3) == unnamed
    with pytest.raises(ValueError, match="2 class names for 3 classes"):
        label_table_id(names, 3)


def test_segmap_peek_shape_of_the_shortest_header():
    assert SegMapLayer.peek_shape(b"\x01\x01\x05\x07") == (5, 7)
    assert SegMapLayer.peek_shape(b"\x01\x01\x80\x01\x07") == (128, 7)


def test_colormap_header_errors_name_the_problem():
    from semcomp_core.layers.colormap import ColorMapLayer

    layer = ColorMapLayer()
    with pytest.raises(BitstreamError, match="^truncated colour-map layer header$"):
        layer.decode(b"\x04\x04")
    with pytest.raises(BitstreamError, match="^absurd colour-map size 65x4$"):
        layer.decode(b"\x41\x04\x0c")
    with pytest.raises(BitstreamError, match="^colour-map quantiser index 64 > 63$"):
        layer.decode(b"\x04\x04\x40")
