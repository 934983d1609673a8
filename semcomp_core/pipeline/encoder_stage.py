"""The encoder node's per-frame logic, without ROS.

``EncoderStage`` turns an Image message (or an RGB array plus a header) into a
semcomp bitstream. The codec is built once by :meth:`EncoderStage.configure`
and rebuilt only when codec, quality, options or device change; a failed
reconfiguration keeps the running codec. Frames that cannot be encoded are
counted (``rejected`` for bad input, ``errors`` for codec failures), the reason
is kept in :attr:`EncoderStage.last_error`, and ``None`` is returned -- the
stage never raises on a frame.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..codecs import CODECS, Codec, create, parse_spec
from ..errors import UsageError
from ..rosbag.messages import frame_id, image_to_rgb, semcomp_format, stamp_ns
from .stats import Counters, DiagnosticReport, RateMeter, RollingWindow, fmt


@dataclass
class EncodedFrame:
    """One encoded frame: the input header (unchanged), the container and its format string."""

    header: Any
    data: bytes
    format: str
    height: int
    width: int
    encode_ms: float


def build_codec(codec: str, quality: int | None = None, device: str = "cpu", options: str = "") -> Codec:
    """Build a codec from a name, an optional quality and ``K=V[:K=V]`` options.

    ``quality`` (None or negative: the codec's default) sets the parameter the
    codec names as its quality knob (``quality`` for jpeg/webp, ``q`` for bpg)
    and wins over the same key in ``options``. UsageError on anything invalid.
    """
    name = str(codec).strip()
    spec_text = name + (":" + options.strip().strip(":") if options and options.strip().strip(":") else "")
    (spec,) = parse_spec(spec_text)
    cls = CODECS.get(spec.name)
    overrides: dict[str, Any] = {}
    if quality is not None and int(quality) >= 0:
        if cls.quality_param is None:
            raise UsageError(f"codec {spec.name!r} has no quality parameter; leave quality at -1")
        overrides[cls.quality_param] = int(quality)
    return create(spec, device=device, **overrides)


class EncoderStage:
    """Encode frames with one codec; count what could not be encoded."""

    def __init__(self, codec: str = "semantic-gan", quality: int | None = None, device: str = "cpu",
                 options: str = "", *, window: int = 1000) -> None:
        self.counters = Counters("received", "encoded", "rejected", "errors")
        self.encode_ms = RollingWindow(window)
        self.bytes = RollingWindow(window)
        self.rate = RateMeter()
        self.last_error = ""
        self._key: tuple | None = None
        self.codec: Codec
        self.format = ""
        self.configure(codec, quality, device, options)

    # -- configuration (once, and on parameter changes) -----------------------------------
    def configure(self, codec: str, quality: int | None = None, device: str = "cpu", options: str = "") -> bool:
        """(Re)build the codec if the settings changed; True if rebuilt. UsageError if invalid
        (the previous codec then stays in use)."""
        key = (str(codec), None if quality is None or int(quality) < 0 else int(quality), str(device), str(options))
        if key == self._key:
            return False
        new = build_codec(*key)
        self.codec, self.format, self._key = new, semcomp_format(new.label()), key
        return True

    @property
    def label(self) -> str:
        return self.codec.label()

    # -- per frame -----------------------------------------------------------------------
    def encode_msg(self, msg: Any) -> EncodedFrame | None:
        """Encode a sensor_msgs/Image (any object with its fields); None if it cannot be."""
        self.counters.bump("received")
        try:
            image = image_to_rgb(msg)
        except ValueError as exc:
            return self._reject("rejected", f"cannot use image on frame {_where(msg.header)}: {exc}")
        return self._encode(image, msg.header)

    def encode(self, image: np.ndarray, header: Any) -> EncodedFrame | None:
        """Encode an (H, W, 3) uint8 RGB array; ``header`` is passed through unchanged."""
        self.counters.bump("received")
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            shape = getattr(image, "shape", None)
            return self._reject("rejected", f"expected (H, W, 3) uint8 RGB, got {shape}")
        return self._encode(image, header)

    def _encode(self, image: np.ndarray, header: Any) -> EncodedFrame | None:
        t0 = time.perf_counter()
        try:
            data = self.codec.encode(image)
        except ValueError as exc:  # UsageError, container limits (e.g. side > 16384)
            return self._reject("rejected", f"codec {self.label} refused frame {_where(header)}: {exc}")
        except Exception as exc:  # noqa: BLE001 -- a codec failure must not stop the node
            return self._reject("errors", f"codec {self.label} failed on frame {_where(header)}: "
                                          f"{type(exc).__name__}: {exc}")
        ms = (time.perf_counter() - t0) * 1e3
        self.counters.bump("encoded")
        self.encode_ms.add(ms)
        self.bytes.add(len(data))
        self.rate.add(len(data))
        return EncodedFrame(header, data, self.format, image.shape[0], image.shape[1], ms)

    def _reject(self, counter: str, reason: str) -> None:
        self.counters.bump(counter)
        self.last_error = reason
        return None

    # -- diagnostics ---------------------------------------------------------------------
    def diagnostics(self, name: str = "semcomp encoder") -> DiagnosticReport:
        """Counters, fps, bitrate and encode time percentiles since start / over the window."""
        fps, bytes_per_s = self.rate.rates()
        c = self.counters
        level, message = c.status(("rejected", "errors"), "could not be encoded", self.last_error,
                                  "received", "waiting for images", f"encoding with {self.label}")
        return DiagnosticReport(name, level, message, {
            "codec": self.label,
            "implementation": self.codec.implementation,
            "frames_received": str(c["received"]),
            "frames_encoded": str(c["encoded"]),
            "frames_rejected": str(c["rejected"]),
            "frames_failed": str(c["errors"]),
            "fps": fmt(fps),
            "bitrate_kbps": fmt(bytes_per_s * 8 / 1e3),
            "bytes_mean": fmt(self.bytes.mean(), 0),
            "encode_ms_p50": fmt(self.encode_ms.percentile(50)),
            "encode_ms_p95": fmt(self.encode_ms.percentile(95)),
        })


def _where(header: Any) -> str:
    """``stamp sec.nanosec`` of a header for messages; never raises."""
    try:
        sec, ns = divmod(stamp_ns(header), 1_000_000_000)
        return f"{sec}.{ns:09d} ({frame_id(header)})"
    except Exception:  # noqa: BLE001
        return "?"
