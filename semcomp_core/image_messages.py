"""The ROS image-message layer: sensor_msgs/Image and CompressedImage <-> numpy, without ROS.

Used by the pipeline stages behind the rclpy nodes, by the rosbag tools and by the
benchmark: one place that knows the message fields, encodings and the
``semcomp/<codec>`` format string.

Works by duck typing on any object with the standard fields, so the same code
serves the message dataclasses of the ``rosbags`` library (bag tools, tests)
and rclpy's generated messages (the nodes):

* Image: ``header, height, width, encoding, is_bigendian, step, data``
* CompressedImage: ``header, format, data``
* Header: ``stamp`` (``sec``, ``nanosec``) and ``frame_id``

Accepted Image encodings (:data:`SUPPORTED_ENCODINGS`):

* 8 bit: ``rgb8``, ``bgr8``, ``rgba8``, ``bgra8``, ``mono8``;
* 16 bit: ``rgb16``, ``bgr16``, ``rgba16``, ``bgra16``, ``mono16`` -- these are
  **converted** to 8 bit by keeping the high byte (``value >> 8``), honouring
  ``is_bigendian``. Depth images (``16UC1``) are deliberately not accepted:
  they are not camera pictures.

Anything else (Bayer patterns, YUV, float and ``*UC*`` encodings) raises
:class:`ImageMessageError` naming the encoding and the supported list. Alpha
is dropped, mono is replicated to three channels. Row padding (``step`` larger
than ``width * channels * bytes``) is skipped. As in cv_bridge, ``len(data)``
must equal ``step * height``; any inconsistency raises ImageMessageError (a
ValueError) whose message gives the numbers.

Building messages: :func:`make_image` / :func:`make_compressed_image` take the
message *class* (rosbags dataclass or rclpy type) and fill ``data`` in the
form that class wants (numpy uint8 for rosbags, ``array('B')`` for rclpy).
Headers are passed through as they are -- never rebuilt -- so stamp and
frame_id survive unchanged.
"""
from __future__ import annotations

from array import array
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE_TYPE = "sensor_msgs/msg/CompressedImage"
#: Prefix of ``CompressedImage.format`` for semcomp bitstreams: ``semcomp/<codec label>``.
FORMAT_PREFIX = "semcomp/"


class ImageMessageError(ValueError):
    """An Image message that cannot be turned into an RGB array (encoding, sizes)."""


class _Layout(NamedTuple):
    channels: int
    bytes_per_channel: int
    #: channel indices that give R, G, B (None: mono, replicate)
    rgb_index: tuple[int, int, int] | None


_LAYOUTS: dict[str, _Layout] = {
    "rgb8": _Layout(3, 1, (0, 1, 2)),
    "bgr8": _Layout(3, 1, (2, 1, 0)),
    "rgba8": _Layout(4, 1, (0, 1, 2)),
    "bgra8": _Layout(4, 1, (2, 1, 0)),
    "mono8": _Layout(1, 1, None),
    "rgb16": _Layout(3, 2, (0, 1, 2)),
    "bgr16": _Layout(3, 2, (2, 1, 0)),
    "rgba16": _Layout(4, 2, (0, 1, 2)),
    "bgra16": _Layout(4, 2, (2, 1, 0)),
    "mono16": _Layout(1, 2, None),
}
SUPPORTED_ENCODINGS = tuple(_LAYOUTS)


# -- headers ------------------------------------------------------------------------------
def _field(obj: Any, name: str) -> Any:
    return obj[name] if isinstance(obj, dict) else getattr(obj, name)


def stamp_ns(header: Any) -> int:
    """``header.stamp`` as integer nanoseconds (objects or dicts with ``sec``/``nanosec``)."""
    stamp = _field(header, "stamp")
    if isinstance(stamp, int):
        return stamp
    return int(_field(stamp, "sec")) * 1_000_000_000 + int(_field(stamp, "nanosec"))


def frame_id(header: Any) -> str:
    """``header.frame_id`` of a header object or dict."""
    return str(_field(header, "frame_id"))


# -- raw bytes of a message field ---------------------------------------------------------
def as_uint8(data: Any) -> np.ndarray:
    """A flat uint8 view of a message ``data`` field (bytes, array('B'), numpy, list)."""
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8:
            raise ImageMessageError(f"data must hold uint8, got {data.dtype}")
        return data.reshape(-1)
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except TypeError:
        return np.asarray(data, dtype=np.uint8).reshape(-1)


def as_bytes(data: Any) -> bytes:
    """The ``data`` field of a CompressedImage as ``bytes``."""
    if isinstance(data, bytes):
        return data
    return as_uint8(data).tobytes()


def _is_rclpy_class(cls: Any) -> bool:
    return hasattr(cls, "get_fields_and_field_types")


def _data_for(cls: Any, payload: bytes | memoryview | np.ndarray) -> Any:
    """``payload`` in the form ``cls``'s ``data`` field expects."""
    if _is_rclpy_class(cls):
        out = array("B")
        out.frombytes(payload)
        return out
    return np.frombuffer(payload, dtype=np.uint8) if not isinstance(payload, np.ndarray) else payload.reshape(-1)


# -- Image -> numpy -----------------------------------------------------------------------
def image_to_rgb(msg: Any) -> np.ndarray:
    """Turn a sensor_msgs/Image into (H, W, 3) uint8 RGB; ImageMessageError if it cannot.

    The result may be a read-only view of ``msg.data`` (rgb8 without padding);
    copy it before writing into it.
    """
    encoding = str(msg.encoding).strip().lower()
    layout = _LAYOUTS.get(encoding)
    if layout is None:
        raise ImageMessageError(
            f"unsupported image encoding {msg.encoding!r} (supported: {', '.join(SUPPORTED_ENCODINGS)})")
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ImageMessageError(f"empty image: {width}x{height}")
    pixel_bytes = layout.channels * layout.bytes_per_channel
    row_bytes = width * pixel_bytes
    if step < row_bytes:
        raise ImageMessageError(
            f"step {step} is smaller than width {width} x {pixel_bytes} bytes per pixel = {row_bytes} ({encoding})")
    buf = as_uint8(msg.data)
    if buf.size != step * height:
        raise ImageMessageError(
            f"data has {buf.size} bytes, step {step} x height {height} = {step * height} expected")
    if layout.bytes_per_channel == 1:
        dtype = np.dtype(np.uint8)
    else:
        dtype = np.dtype(">u2" if int(msg.is_bigendian) else "<u2")
    pixels = np.ndarray((height, width, layout.channels), dtype=dtype, buffer=buf,
                        strides=(step, pixel_bytes, layout.bytes_per_channel))
    if layout.bytes_per_channel == 2:
        pixels = (pixels >> 8).astype(np.uint8)
    if layout.rgb_index is None:
        return np.repeat(pixels, 3, axis=2)
    if layout.rgb_index != (0, 1, 2):
        pixels = pixels[:, :, list(layout.rgb_index)]
    elif layout.channels != 3:
        pixels = pixels[:, :, :3]
    return np.ascontiguousarray(pixels)


def compressed_to_rgb(msg: Any) -> np.ndarray:
    """Decode an OpenCV-readable CompressedImage (jpeg/png camera streams) to RGB.

    Used to read bags recorded with compressed_image_transport. Semcomp
    bitstreams (``format`` starting with ``semcomp/``) are rejected here: they
    go to :func:`semcomp_core.codecs.decode`.
    """
    import cv2

    fmt = str(msg.format)
    if fmt.startswith(FORMAT_PREFIX):
        raise ImageMessageError(f"format {fmt!r} is a semcomp bitstream, not a camera image")
    buf = as_uint8(msg.data)
    image = cv2.imdecode(buf, cv2.IMREAD_COLOR) if buf.size else None
    if image is None:
        raise ImageMessageError(f"cannot decode CompressedImage with format {fmt!r} ({buf.size} bytes)")
    return np.ascontiguousarray(image[:, :, ::-1])


def message_to_rgb(msg: Any, msgtype: str) -> np.ndarray:
    """RGB array of an Image or (OpenCV-readable) CompressedImage message."""
    if msgtype == IMAGE_TYPE:
        return image_to_rgb(msg)
    if msgtype == COMPRESSED_IMAGE_TYPE:
        return compressed_to_rgb(msg)
    raise ImageMessageError(f"not an image message type: {msgtype}")


# -- numpy -> messages --------------------------------------------------------------------
def make_image(cls: Any, header: Any, rgb: np.ndarray) -> Any:
    """A ``cls`` (sensor_msgs/Image) holding ``rgb`` as rgb8 with ``header`` unchanged."""
    rgb = np.ascontiguousarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ImageMessageError(f"expected (H, W, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}")
    height, width = rgb.shape[:2]
    return cls(header=header, height=height, width=width, encoding="rgb8", is_bigendian=0,
               step=width * 3, data=_data_for(cls, rgb.reshape(-1)))


def make_compressed_image(cls: Any, header: Any, fmt: str, data: bytes) -> Any:
    """A ``cls`` (sensor_msgs/CompressedImage) with ``format`` and ``data``, header unchanged."""
    return cls(header=header, format=fmt, data=_data_for(cls, data))


def semcomp_format(codec_label: str) -> str:
    """``CompressedImage.format`` for a codec label: ``semcomp/<label>``."""
    return FORMAT_PREFIX + codec_label


# -- rosbags typestore --------------------------------------------------------------------
@lru_cache(maxsize=None)
def typestore():
    """The rosbags typestore used to write bags (ROS 2 Humble definitions; Image and
    CompressedImage are identical in every ROS 2 release since)."""
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_HUMBLE)


def make_header(stamp: int, frame: str, store=None) -> Any:
    """A rosbags std_msgs/Header from integer nanoseconds and a frame id."""
    store = store or typestore()
    time_cls = store.types["builtin_interfaces/msg/Time"]
    header_cls = store.types["std_msgs/msg/Header"]
    sec, nanosec = divmod(int(stamp), 1_000_000_000)
    return header_cls(stamp=time_cls(sec=sec, nanosec=nanosec), frame_id=frame)


def header_text(header: Any) -> str:
    """``sec.nanosec (frame_id)`` of a message header, for log lines; never raises."""
    try:
        sec, ns = divmod(stamp_ns(header), 1_000_000_000)
        return f"{sec}.{ns:09d} ({frame_id(header)})"
    except Exception:  # noqa: BLE001
        return "?"
