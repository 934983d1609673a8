"""The encoder node's per-frame logic, without ROS.

``EncoderStage`` turns an Image message (or an RGB array plus a header) into a
semcomp bitstream. Frames that cannot be encoded are counted (``rejected`` for
bad input, ``errors`` for codec failures), the reason is kept in
:attr:`EncoderStage.last_error`, and ``None`` is returned -- the stage never
raises on a frame.

Codec settings are four values: ``codec`` (a name or a full spec
``NAME[:K=V...]``, e.g. ``bpg:q=45``), ``quality`` (the codec's quality knob,
negative = the codec's default), ``options`` (extra ``K=V[:K=V]``) and
``device``. Later ones win: ``options`` over the spec's own ``K=V``,
``quality`` over both.

Changing them at run time (:meth:`EncoderStage.request`) is two steps:

1. :func:`validate_codec` -- cheap, synchronous: parses the spec and checks every
   value against the codec class's declared :class:`~semcomp_core.codecs.Param`
   objects and the device pattern, without building the codec or loading any
   model. A bad value raises UsageError and changes nothing.
2. the build -- in a background thread: build the codec and encode one small
   warm-up frame (so models are loaded before the first real frame). Frames go
   on being encoded with the running codec meanwhile; the new one replaces it
   under a lock once ready. A failed build keeps the running codec, bumps the
   ``rebuild_failures`` counter and keeps the reason in
   :attr:`EncoderStage.last_rebuild_error`. Requests made while a build runs are
   coalesced: only the latest one is built next.

:func:`codec_param_resets` is the parameter rule of ``encoder_node``: ``quality``
and ``codec_options`` belong to a codec, so a change of ``codec`` that does not
also set them resets them to their defaults (``-1``, ``""``).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..codecs import Codec, build, quality_value, resolve
from ..image_messages import header_text, image_to_rgb, semcomp_format
from .stats import Counters, DiagnosticReport, RateMeter, RollingWindow, fmt

#: what ``quality`` and ``codec_options`` are reset to when ``codec`` changes alone
CODEC_PARAM_DEFAULTS = {"quality": -1, "codec_options": ""}


@dataclass
class EncodedFrame:
    """One encoded frame: the input header (unchanged), the container and its format string."""

    header: Any
    data: bytes
    format: str
    height: int
    width: int
    encode_ms: float


def codec_param_resets(current: dict, changes: dict) -> dict:
    """The codec-switch rule: extra changes that go with ``changes`` (one set-parameters call).

    When ``changes`` sets ``codec`` to a value other than ``current['codec']`` and sets
    neither ``quality`` nor ``codec_options``, those two are reset to
    :data:`CODEC_PARAM_DEFAULTS` (only the ones not already at their default are returned):
    they were chosen for the previous codec (``quality=90`` is a jpeg quality, an invalid
    bpg ``q``). A call that sets ``quality`` or ``codec_options`` too keeps what it sets
    and resets nothing (``{codec: bpg, quality: 40}`` means bpg at q=40).
    """
    if "codec" not in changes or changes["codec"] == current.get("codec"):
        return {}
    if any(k in changes for k in CODEC_PARAM_DEFAULTS):
        return {}
    return {k: v for k, v in CODEC_PARAM_DEFAULTS.items() if current.get(k, v) != v}


def resolve_codec(codec: str, quality: Any = None, device: str = "cpu", options: str = "") -> tuple[type[Codec], dict]:
    """Check codec settings without building anything (:func:`semcomp_core.codecs.resolve`)."""
    return resolve(str(codec), quality, device, str(options or ""))


def validate_codec(codec: str, quality: Any = None, device: str = "cpu", options: str = "") -> str:
    """Cheap check of codec settings (see :func:`resolve_codec`); returns the spec they resolve to."""
    cls, params = resolve_codec(codec, quality, device, options)
    return cls.name + "".join(f":{k}={v}" for k, v in params.items())


def build_codec(codec: str, quality: Any = None, device: str = "cpu", options: str = "") -> Codec:
    """Build a codec (:func:`semcomp_core.codecs.build`) from a name or spec, an optional quality
    and ``K=V[:K=V]`` options, after the checks of :func:`resolve_codec`.

    ``quality`` (None or negative: the codec's default) sets the parameter the codec names
    as its quality knob (``quality`` for jpeg/webp, ``q`` for bpg, ``level`` for
    semantic-gan) and wins over the same key in ``options``, which win over the spec's
    own. UsageError on anything invalid. Loads nothing: see :func:`warm_up`.
    """
    return build(str(codec), quality=quality, device=device, options=str(options or ""))


def warm_up(codec: Codec) -> None:
    """Encode one small grey frame, so lazily loaded models are in memory before real frames."""
    codec.encode(np.full((64, 64, 3), 128, np.uint8))


def build_and_warm_up(codec: str, quality: Any = None, device: str = "cpu", options: str = "") -> Codec:
    """The background builder of :class:`EncoderStage`: :func:`build_codec` then :func:`warm_up`."""
    new = build_codec(codec, quality, device, options)
    warm_up(new)
    return new


def wire_format(codec: Codec) -> str:
    """``CompressedImage.format``: ``semcomp/<wire label>`` (no local paths, no receiver settings)."""
    return semcomp_format(codec.wire_label())


def _key(codec: str, quality: Any, device: str, options: str) -> tuple:
    return (str(codec), quality_value(quality), str(device), str(options or ""))


class EncoderStage:
    """Encode frames with one codec; count what could not be encoded; swap codecs in the background.

    ``builder(codec, quality, device, options) -> Codec`` builds codecs for :meth:`request`
    (default :func:`build_and_warm_up`; tests inject a slow one). ``log(level, text)``
    (``level`` ``"info"`` or ``"error"``) hears about background builds, from the builder's
    thread.
    """

    def __init__(self, codec: str = "semantic-gan", quality: int | None = None, device: str = "cpu",
                 options: str = "", *, window: int = 1000,
                 builder: Callable[..., Codec] | None = None,
                 log: Callable[[str, str], None] | None = None) -> None:
        self.counters = Counters("received", "encoded", "rejected", "errors", "rebuilds", "rebuild_failures")
        self.encode_ms = RollingWindow(window)
        self.bytes = RollingWindow(window)
        self.rate = RateMeter()
        self.last_error = ""
        self.last_rebuild_error = ""
        self.builder = builder or build_and_warm_up
        self.log = log or (lambda level, text: None)
        self._lock = threading.Lock()
        self._active: tuple[Codec, str, tuple] | None = None
        self._wanted: tuple | None = None
        self._worker: threading.Thread | None = None
        self.configure(codec, quality, device, options)

    # -- configuration ----------------------------------------------------------------------
    @property
    def codec(self) -> Codec:
        return self._active[0]

    @property
    def format(self) -> str:
        return self._active[1]

    @property
    def label(self) -> str:
        return self.codec.label()

    @property
    def pending(self) -> str | None:
        """The settings being built in the background (``codec|quality|device|options``), or None."""
        with self._lock:
            w = self._wanted
        return None if w is None else "|".join("" if v is None else str(v) for v in w)

    def configure(self, codec: str, quality: int | None = None, device: str = "cpu", options: str = "") -> bool:
        """Build the codec now (synchronously) if the settings changed; True if rebuilt.

        UsageError if invalid (the previous codec then stays in use). Used at start-up; at
        run time prefer :meth:`request`."""
        key = _key(codec, quality, device, options)
        if self._active is not None and key == self._active[2]:
            return False
        new = build_codec(*key)
        with self._lock:
            self._active = (new, wire_format(new), key)
        return True

    def validate(self, codec: str, quality: int | None = None, device: str = "cpu", options: str = "") -> str:
        """:func:`validate_codec`: cheap, loads nothing; UsageError if invalid."""
        return validate_codec(codec, quality, device, options)

    def request(self, codec: str, quality: int | None = None, device: str = "cpu", options: str = "") -> bool:
        """Validate now, build in the background; True if a build was started or re-aimed.

        UsageError (nothing changes) if the settings are invalid. Frames keep using the
        running codec until the new one is built and warmed up."""
        validate_codec(codec, quality, device, options)
        key = _key(codec, quality, device, options)
        with self._lock:
            if key == self._active[2] and self._wanted is None:
                return False
            self._wanted = key
            if self._worker is None:
                self._worker = threading.Thread(target=self._build_loop, name="semcomp-codec-build",
                                                daemon=True)
                self._worker.start()
        return True

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for background builds to finish; True if none is running any more."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout)
        return self._worker is None

    def _build_loop(self) -> None:
        while True:
            with self._lock:
                key = self._wanted
                if key is None or key == self._active[2]:
                    self._wanted = None
                    self._worker = None
                    return
            t0 = time.perf_counter()
            try:
                new = self.builder(*key)
                fmt_text = wire_format(new)
            except Exception as exc:  # noqa: BLE001 -- a failed build keeps the running codec
                with self._lock:
                    self.counters.bump("rebuild_failures")
                    self.last_rebuild_error = f"cannot build codec {key[0]!r}: {type(exc).__name__}: {exc}"
                    if self._wanted == key:
                        self._wanted = None
                    running = self._active[0].label()
                self.log("error", f"{self.last_rebuild_error}; still encoding with {running}")
                continue
            with self._lock:
                if self._wanted != key:  # a newer request came in meanwhile: build that one instead
                    continue
                self._active = (new, fmt_text, key)
                self._wanted = None
                self.counters.bump("rebuilds")
            self.log("info", f"codec now {new.label()} ({new.implementation}), built in "
                             f"{time.perf_counter() - t0:.2f} s")

    # -- per frame -----------------------------------------------------------------------
    def encode_msg(self, msg: Any) -> EncodedFrame | None:
        """Encode a sensor_msgs/Image (any object with its fields); None if it cannot be."""
        self.counters.bump("received")
        try:
            image = image_to_rgb(msg)
        except ValueError as exc:
            return self._reject("rejected", f"cannot use image on frame {header_text(msg.header)}: {exc}")
        return self._encode(image, msg.header)

    def encode(self, image: np.ndarray, header: Any) -> EncodedFrame | None:
        """Encode an (H, W, 3) uint8 RGB array; ``header`` is passed through unchanged."""
        self.counters.bump("received")
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            shape = getattr(image, "shape", None)
            return self._reject("rejected", f"expected (H, W, 3) uint8 RGB, got {shape}")
        return self._encode(image, header)

    def _encode(self, image: np.ndarray, header: Any) -> EncodedFrame | None:
        with self._lock:
            codec, fmt_text, _ = self._active
        t0 = time.perf_counter()
        try:
            data = codec.encode(image)
        except ValueError as exc:  # UsageError, container limits (e.g. side > 16384)
            return self._reject("rejected", f"codec {codec.label()} refused frame {header_text(header)}: {exc}")
        except Exception as exc:  # noqa: BLE001 -- a codec failure must not stop the node
            return self._reject("errors", f"codec {codec.label()} failed on frame {header_text(header)}: "
                                          f"{type(exc).__name__}: {exc}")
        ms = (time.perf_counter() - t0) * 1e3
        self.counters.bump("encoded")
        self.encode_ms.add(ms)
        self.bytes.add(len(data))
        self.rate.add(len(data))
        return EncodedFrame(header, data, fmt_text, image.shape[0], image.shape[1], ms)

    def _reject(self, counter: str, reason: str) -> None:
        self.counters.bump(counter)
        self.last_error = reason
        return None

    # -- diagnostics ---------------------------------------------------------------------
    def diagnostics(self, name: str = "semcomp encoder") -> DiagnosticReport:
        """Counters, fps, bitrate and encode time percentiles since start / over the window.

        WARN when frames could not be encoded or a codec rebuild failed since the last report."""
        fps, bytes_per_s = self.rate.rates()
        c = self.counters
        failed_builds = c.since_report("rebuild_failures")
        level, message = c.status(("rejected", "errors"), "could not be encoded", self.last_error,
                                  "received", "waiting for images", f"encoding with {self.label}")
        if failed_builds:
            level = "WARN"
            message = f"{failed_builds} codec rebuild(s) failed: {self.last_rebuild_error}" + (
                "" if message.startswith(("waiting", "encoding")) else f"; {message}")
        pending = self.pending
        return DiagnosticReport(name, level, message, {
            "codec": self.label,
            "format": self.format,
            "implementation": self.codec.implementation,
            "codec_pending": pending or "-",
            "frames_received": str(c["received"]),
            "frames_encoded": str(c["encoded"]),
            "frames_rejected": str(c["rejected"]),
            "frames_failed": str(c["errors"]),
            "codec_rebuilds": str(c["rebuilds"]),
            "codec_rebuild_failures": str(c["rebuild_failures"]),
            "fps": fmt(fps),
            "bitrate_kbps": fmt(bytes_per_s * 8 / 1e3),
            "bytes_mean": fmt(self.bytes.mean(), 0),
            "encode_ms_p50": fmt(self.encode_ms.percentile(50)),
            "encode_ms_p95": fmt(self.encode_ms.percentile(95)),
        })
