"""sensor_msgs Image/CompressedImage <-> numpy through rosbags' ROS 2 types, and CDR round trips."""
from __future__ import annotations

from array import array

import numpy as np
import pytest

pytest.importorskip("rosbags", reason="rosbags (pip install rosbags) is needed for ROS message types")

from semcomp_core.pipeline import DecoderStage, EncoderStage  # noqa: E402
from semcomp_core.image_messages import (COMPRESSED_IMAGE_TYPE, IMAGE_TYPE, ImageMessageError,  # noqa: E402
                                          as_bytes, frame_id, image_to_rgb, make_compressed_image,
                                          make_header, make_image, stamp_ns, typestore)

STAMP = 1_700_000_123 * 1_000_000_000 + 456_789_012


@pytest.fixture(scope="module")
def ts():
    return typestore()


@pytest.fixture(scope="module")
def rgb() -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)


def raw_image(ts, encoding: str, pixels: np.ndarray, step: int | None = None, bigendian: int = 0,
              pad_value: int = 0xAB):
    """An Image whose data is ``pixels`` (H, W, C) as bytes, each row padded to ``step``."""
    h, w = pixels.shape[:2]
    if pixels.dtype != np.uint8:  # 16 bit in the requested byte order
        pixels = pixels.astype(pixels.dtype.newbyteorder(">" if bigendian else "<"))
    row = np.ascontiguousarray(pixels).reshape(h, -1).view(np.uint8)
    step = step or row.shape[1]
    data = np.full((h, step), pad_value, dtype=np.uint8)
    data[:, :row.shape[1]] = row
    cls = ts.types[IMAGE_TYPE]
    return cls(header=make_header(STAMP, "cam", ts), height=h, width=w, encoding=encoding,
               is_bigendian=bigendian, step=step, data=data.reshape(-1))


def cdr_round_trip(ts, msg, msgtype):
    raw = ts.serialize_cdr(msg, msgtype)
    back = ts.deserialize_cdr(raw, msgtype)
    return raw, back, ts.serialize_cdr(back, msgtype)


# -- Image CDR round trips -------------------------------------------------------------------
def test_rgb8_image_cdr_round_trip_is_byte_identical(ts, rgb):
    msg = make_image(ts.types[IMAGE_TYPE], make_header(STAMP, "camera_optical", ts), rgb)
    assert (msg.encoding, msg.step, msg.height, msg.width) == ("rgb8", 15, 6, 5)
    raw, back, raw2 = cdr_round_trip(ts, msg, IMAGE_TYPE)
    assert raw == raw2
    assert stamp_ns(back.header) == STAMP and frame_id(back.header) == "camera_optical"
    np.testing.assert_array_equal(image_to_rgb(back), rgb)


def test_compressed_image_cdr_round_trip_is_byte_identical(ts):
    payload = bytes(range(256)) * 3
    msg = make_compressed_image(ts.types[COMPRESSED_IMAGE_TYPE], make_header(STAMP, "cam", ts),
                                "semcomp/jpeg:quality=10", payload)
    raw, back, raw2 = cdr_round_trip(ts, msg, COMPRESSED_IMAGE_TYPE)
    assert raw == raw2
    assert back.format == "semcomp/jpeg:quality=10"
    assert as_bytes(back.data) == payload
    assert stamp_ns(back.header) == STAMP


# -- encodings -------------------------------------------------------------------------------
def test_bgr8_is_reordered(ts, rgb):
    np.testing.assert_array_equal(image_to_rgb(raw_image(ts, "bgr8", rgb[:, :, ::-1].copy())), rgb)


def test_rgba8_and_bgra8_drop_alpha(ts, rgb):
    alpha = np.full(rgb.shape[:2] + (1,), 77, np.uint8)
    np.testing.assert_array_equal(image_to_rgb(raw_image(ts, "rgba8", np.concatenate([rgb, alpha], 2))), rgb)
    bgra = np.concatenate([rgb[:, :, ::-1], alpha], 2)
    np.testing.assert_array_equal(image_to_rgb(raw_image(ts, "bgra8", bgra)), rgb)


def test_mono8_is_replicated(ts, rgb):
    gray = rgb[:, :, :1].copy()
    out = image_to_rgb(raw_image(ts, "mono8", gray))
    assert out.shape == (6, 5, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], gray[:, :, 0])


def test_row_padding_is_skipped(ts, rgb):
    msg = raw_image(ts, "rgb8", rgb, step=15 + 9)  # 9 bytes of 0xAB padding per row
    np.testing.assert_array_equal(image_to_rgb(msg), rgb)
    msg = raw_image(ts, "bgr8", rgb[:, :, ::-1].copy(), step=16)
    np.testing.assert_array_equal(image_to_rgb(msg), rgb)


@pytest.mark.parametrize("bigendian", [0, 1])
def test_16bit_is_converted_by_high_byte_with_endianness(ts, rgb, bigendian):
    wide = rgb.astype(np.uint16) * 256 + 0x7F  # low byte must be dropped
    np.testing.assert_array_equal(image_to_rgb(raw_image(ts, "rgb16", wide, bigendian=bigendian)), rgb)
    np.testing.assert_array_equal(
        image_to_rgb(raw_image(ts, "bgr16", wide[:, :, ::-1].copy(), bigendian=bigendian, step=5 * 6 + 3)), rgb)
    mono = image_to_rgb(raw_image(ts, "mono16", wide[:, :, :1].copy(), bigendian=bigendian))
    np.testing.assert_array_equal(mono[:, :, 1], rgb[:, :, 0])


def test_16bit_endianness_matters(ts):
    value = np.full((1, 1, 1), 0x1234, np.uint16)
    assert image_to_rgb(raw_image(ts, "mono16", value, bigendian=0))[0, 0, 0] == 0x12
    assert image_to_rgb(raw_image(ts, "mono16", value, bigendian=1))[0, 0, 0] == 0x12
    msg = raw_image(ts, "mono16", value, bigendian=0)
    msg.is_bigendian = 1  # same bytes read the other way round
    assert image_to_rgb(msg)[0, 0, 0] == 0x34


@pytest.mark.parametrize("encoding", ["bayer_rggb8", "yuv422", "32FC1", "16UC1", "8UC3"])
def test_unsupported_encodings_are_rejected_clearly(ts, rgb, encoding):
    msg = raw_image(ts, "rgb8", rgb)
    msg.encoding = encoding
    with pytest.raises(ImageMessageError, match=f"unsupported image encoding '{encoding}'.*rgb8.*mono16"):
        image_to_rgb(msg)


def test_inconsistent_sizes_raise_value_error_with_numbers(ts, rgb):
    msg = raw_image(ts, "rgb8", rgb)
    msg.data = msg.data[:-1]
    with pytest.raises(ValueError, match="89 bytes, step 15 x height 6 = 90"):
        image_to_rgb(msg)
    msg = raw_image(ts, "rgb8", rgb)
    msg.step = 14
    with pytest.raises(ValueError, match="step 14 is smaller than"):
        image_to_rgb(msg)
    msg = raw_image(ts, "rgb8", rgb)
    msg.width = 0
    with pytest.raises(ValueError, match="empty image"):
        image_to_rgb(msg)


def test_rclpy_style_classes_get_array_data(rgb):
    class FakeRclpyImage:
        @classmethod
        def get_fields_and_field_types(cls):
            return {}

        def __init__(self, **fields):
            self.__dict__.update(fields)

    msg = make_image(FakeRclpyImage, {"stamp": STAMP, "frame_id": "f"}, rgb)
    assert isinstance(msg.data, array) and msg.data.typecode == "B"
    np.testing.assert_array_equal(image_to_rgb(msg), rgb)  # array('B') reads back too


# -- header survival through the stages ------------------------------------------------------
def test_stamp_and_frame_id_survive_encoder_then_decoder_through_cdr(ts, sample_image):
    image_cls, comp_cls = ts.types[IMAGE_TYPE], ts.types[COMPRESSED_IMAGE_TYPE]
    camera = make_image(image_cls, make_header(STAMP, "front_camera", ts), sample_image[:64, :80])
    camera = ts.deserialize_cdr(ts.serialize_cdr(camera, IMAGE_TYPE), IMAGE_TYPE)  # as received

    frame = EncoderStage("jpeg", quality=50).encode_msg(camera)
    assert frame is not None and frame.header is camera.header
    bits = make_compressed_image(comp_cls, frame.header, frame.format, frame.data)
    bits = ts.deserialize_cdr(ts.serialize_cdr(bits, COMPRESSED_IMAGE_TYPE), COMPRESSED_IMAGE_TYPE)
    assert bits.format == "semcomp/jpeg:quality=50"

    decoded = DecoderStage().decode_msg(bits)
    assert decoded is not None
    recon = make_image(image_cls, decoded.header, decoded.image)
    recon = ts.deserialize_cdr(ts.serialize_cdr(recon, IMAGE_TYPE), IMAGE_TYPE)
    assert stamp_ns(recon.header) == STAMP
    assert recon.header.frame_id == "front_camera"
    assert (recon.height, recon.width, recon.encoding) == (64, 80, "rgb8")
    header_type = "std_msgs/msg/Header"
    assert ts.serialize_cdr(recon.header, header_type) == ts.serialize_cdr(camera.header, header_type)
