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

Two stream settings sit beside them: ``gop`` (a key frame every N frames;
None: the codec's own default) and ``kbps`` (a bitrate budget; 0: unset). The
rule, in one sentence: for codecs that declare them, ``gop`` (when given) and
``kbps`` (when > 0) win over the same key in ``codec`` and ``options``, like
``quality``; other codecs (jpeg, webp, bpg: every frame intra, no rate
control) ignore them, and the diagnostics say so (:func:`stream_options`).

Streams: frames are coded in order through one stream session
(``codec.open_encoder()``, :mod:`semcomp_core.stream`) with the header stamp
as the frame's capture time, so the codecs with inter coding (semantic-gan,
h264, hevc, av1) send key and inter frames. Every codec build opens a new
session, so the first frame after a change of settings is a key frame
(reason ``start``); :meth:`EncoderStage.request_key_frame` asks for one at
any time (``encoder_node`` does when a receiver joins). Per frame the stage
counts key and inter frames and why key frames were sent, frames the rate
controller skipped (sent as "repeat the reference" because nothing else fit
the budget), stamps that do not advance (duplicates, out of order: counted,
the frame is still coded) and resolution changes (the session sends a key
frame, reason ``resize``). A frame the codec refuses -- e.g. one larger than
``max_bytes`` even at the smallest operating point -- counts as ``rejected``
with the reason; the stream goes on with the next frame. The diagnostics
compare the bitrate over the last frames (timed by their stamps, or by the
codec's ``fps`` when it has one) with ``kbps`` and WARN when it is over by
more than :data:`OVER_BUDGET` after at least :data:`BUDGET_MIN_FRAMES` frames.

Changing settings at run time (:meth:`EncoderStage.request`) is two steps:

1. :func:`validate_codec` -- cheap, synchronous: parses the spec and checks every
   value against the codec class's declared :class:`~semcomp_core.codecs.Param`
   objects and the device pattern, without building the codec or loading any
   model. A bad value raises UsageError and changes nothing.
2. the build -- in a background thread: build the codec and encode one small
   warm-up frame (so models are loaded before the first real frame). Frames go
   on being encoded with the running codec meanwhile; the new one replaces it
   under a lock once ready (and its new session starts with a key frame). A
   failed build keeps the running codec, bumps the ``rebuild_failures`` counter
   and keeps the reason in :attr:`EncoderStage.last_rebuild_error`. Requests
   made while a build runs are coalesced: only the latest one is built next.

:func:`codec_param_resets` is the parameter rule of ``encoder_node``: ``quality``
and ``codec_options`` belong to a codec, so a change of ``codec`` that does not
also set them resets them to their defaults (``-1``, ``""``). ``gop`` and
``kbps`` belong to the link, not to a codec: they are kept.
"""
from __future__ import annotations

from pathlib import Path

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..codecs import CODECS, Codec, build, parse_spec, quality_value, resolve
from ..errors import UsageError
from ..image_messages import header_text, image_to_rgb, semcomp_format, stamp_ns
from .stats import Counters, DiagnosticReport, RateMeter, RollingWindow, fmt

#: what ``quality`` and ``codec_options`` are reset to when ``codec`` changes alone
CODEC_PARAM_DEFAULTS = {"quality": -1, "codec_options": ""}
#: frames the diagnostics' budget bitrate is measured over
BUDGET_WINDOW = 50
#: frames the window must hold before "over budget" is reported
BUDGET_MIN_FRAMES = 20
#: WARN when the window's bitrate exceeds kbps by more than this share
OVER_BUDGET = 0.10


@dataclass
class EncodedFrame:
    """One encoded frame: the input header (unchanged), the bytes and their format string."""

    header: Any
    data: bytes
    format: str
    height: int
    width: int
    encode_ms: float
    #: a key frame (decodable on its own)?
    key: bool = True
    #: why it is a key frame ("start", "gop", "scene-cut", "request", "resize", "intra"; "" for inter)
    reason: str = "intra"


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


def _codec_class(codec: str) -> type[Codec] | None:
    try:
        (spec,) = parse_spec(str(codec))
        return CODECS.get(spec.name)
    except (UsageError, KeyError, ValueError):
        return None


def _kbps_text(cls: type[Codec], kbps: float) -> str:
    if cls.params["kbps"].type is int:  # the video codecs take whole kbit/s
        return str(max(1, int(round(kbps))))
    return f"{float(kbps):g}"


def stream_options(codec: str, options: str = "", gop: int | None = None, kbps: float = 0.0) -> str:
    """``options`` with the stream settings applied: ``gop`` (unless None) and ``kbps`` (when > 0)
    replace the same keys, for codecs that declare them; other codecs get ``options`` unchanged.

    Options placed last win over the spec's own keys (:func:`semcomp_core.codecs.resolve`), so
    ``gop``/``kbps`` win over ``codec`` and ``options`` -- the rule of ``encoder_node``. An unknown
    codec or a malformed ``options`` comes back unchanged (the checks name the problem).
    """
    options = str(options or "")
    cls = _codec_class(codec)
    if cls is None:
        return options
    extra = {}
    if gop is not None and "gop" in cls.params:
        extra["gop"] = str(int(gop))
    if kbps and float(kbps) > 0 and "kbps" in cls.params:
        extra["kbps"] = _kbps_text(cls, kbps)
    if not extra:
        return options
    try:
        return _option_text(dict(_option_dict(options), **extra))
    except UsageError:
        return options


def roi_options(codec: str, options: str = "", mask: str = "", boxes: str = "") -> str:
    """``options`` with a user region of interest added (``roi_mask`` / ``roi_boxes`` set, ``user`` among
    the ``roi`` sources) -- ``encoder_node``'s ``roi_mask`` / ``roi_boxes`` parameters. Unchanged when both
    are empty; UsageError for a codec without selective coding or a path the option syntax cannot carry."""
    if not mask and not boxes:
        return str(options or "")
    if ":" in mask or ":" in boxes:
        raise UsageError(f"roi_mask / roi_boxes cannot contain ':' (the option separator): {mask or boxes!r}")
    from ..roi.masks import with_user_source

    cls = _codec_class(codec)
    if cls is None:
        raise UsageError(f"unknown codec {codec!r}")
    if "roi" not in cls.params:
        raise UsageError(f"codec {cls.name!r} has no region-of-interest coding: clear roi_mask / roi_boxes")
    given = _option_dict(options)
    (spec,) = parse_spec(codec)
    roi = given.get("roi", spec.params.get("roi", cls.params["roi"].default))
    return _option_text(with_user_source(cls, dict(given, roi=roi), mask, boxes))


def model_options(codec: str, options: str = "", backend: str = "", model_dir: str = "") -> str:
    """``options`` with where the networks come from and run (``encoder_node``'s ``backend`` and
    ``model_dir`` parameters): ``backend=`` for codecs that run networks, ``segmenter=<model_dir>/segmenter``
    for codecs with a segmenter (options that name them win). Codecs without networks ignore both.
    UsageError when ``model_dir`` has no ``segmenter/config.json``."""
    cls = _codec_class(codec)
    if cls is None or not (backend or model_dir):
        return str(options or "")
    merged = _option_dict(options)
    (spec,) = parse_spec(codec)
    if backend and "backend" in cls.params and "backend" not in merged and "backend" not in spec.params:
        merged["backend"] = backend
    if model_dir and "segmenter" in cls.params and "segmenter" not in merged and "segmenter" not in spec.params:
        folder = Path(model_dir) / "segmenter"
        if not (folder / "config.json").is_file():
            raise UsageError(f"model_dir {model_dir}: no segmenter/config.json (a model folder per network: "
                             f"segmenter/, decoder/, as in semcomp_core/data/weights)")
        if ":" in str(folder):
            raise UsageError(f"model_dir cannot contain ':' (the option separator): {model_dir!r}")
        merged["segmenter"] = str(folder)
    return _option_text(merged)


def _option_dict(options: str) -> dict:
    """``K=V[:K=V]`` codec options as a dict (UsageError when malformed)."""
    text = str(options or "").strip().strip(":")
    return dict(parse_spec("x:" + text)[0].params) if text else {}


def _option_text(options: dict) -> str:
    return ":".join(f"{k}={v}" for k, v in options.items())


def stream_settings(codec: Codec) -> dict[str, str]:
    """What ``gop`` and ``kbps`` are for a built codec (diagnostics): the values in effect, or
    ``n/a (...)`` for codecs that do not declare them."""
    cfg, params = codec.config, codec.params
    if "gop" in params:
        gop = str(cfg["gop"])
    else:
        gop = "n/a (intra codec)"
    if "kbps" in params:
        kbps = f"{float(cfg['kbps']):g}" if cfg["kbps"] else "off"
    else:
        kbps = "n/a (no rate control)"
    return {"gop": gop, "kbps_target": kbps}


def resolve_codec(codec: str, quality: Any = None, device: str = "cpu", options: str = "") -> tuple[type[Codec], dict]:
    """Check codec settings without building anything (:func:`semcomp_core.codecs.resolve`)."""
    return resolve(str(codec), quality, device, str(options or ""))


def validate_codec(codec: str, quality: Any = None, device: str = "cpu", options: str = "",
                   gop: int | None = None, kbps: float = 0.0) -> str:
    """Cheap check of codec settings (see :func:`resolve_codec`, :func:`stream_options`); returns
    the spec they resolve to. Codecs none of whose parameters names a local file (models) are also
    constructed, which checks combinations of values; nothing is loaded."""
    if kbps is not None and float(kbps) < 0:
        raise UsageError(f"kbps must be >= 0 (0: off), got {kbps}")
    if gop is not None and int(gop) < 1:
        raise UsageError(f"gop must be >= 1 (1: every frame a key frame), got {gop}")
    cls, params = resolve_codec(codec, quality, device, stream_options(codec, options, gop, kbps))
    if not any(p.local for p in cls.params.values()):
        # nothing names a model or file: the constructor only checks values, e.g. the video codecs'
        # "give kbps or crf, not both" -- found now, not in the background build
        cls(device=device, **params)
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
    """Encode one small grey frame, so lazily loaded models are in memory before real frames (codecs with
    frame-size dependent settings, e.g. a user ROI mask, warm up their networks only)."""
    frame = np.full((64, 64, 3), 128, np.uint8)
    sender = getattr(codec, "warm_up_sender", None)
    if sender is not None:
        sender(frame)
    else:
        codec.encode(frame)


def build_and_warm_up(codec: str, quality: Any = None, device: str = "cpu", options: str = "") -> Codec:
    """The background builder of :class:`EncoderStage`: :func:`build_codec` then :func:`warm_up`."""
    new = build_codec(codec, quality, device, options)
    warm_up(new)
    return new


def wire_format(codec: Codec) -> str:
    """``CompressedImage.format``: ``semcomp/<wire label>`` (no local paths, no receiver settings)."""
    return semcomp_format(codec.wire_label())


def _key(codec: str, quality: Any, device: str, options: str, gop: int | None = None,
         kbps: float = 0.0) -> tuple:
    return (str(codec), quality_value(quality), str(device), str(options or ""),
            None if gop is None else int(gop), float(kbps or 0.0))


def _build_args(key: tuple) -> tuple:
    """The builder's ``(codec, quality, device, options)`` of a settings key (stream settings folded
    into the options)."""
    codec, quality, device, options, gop, kbps = key
    return codec, quality, device, stream_options(codec, options, gop, kbps)


class EncoderStage:
    """Encode a stream of frames with one codec; count what could not be encoded; swap codecs in
    the background.

    ``builder(codec, quality, device, options) -> Codec`` builds codecs for :meth:`request`
    (default :func:`build_and_warm_up`; tests inject a slow one); it gets the options with
    ``gop``/``kbps`` applied (:func:`stream_options`). ``log(level, text)`` (``level``
    ``"info"`` or ``"error"``) hears about background builds, from the builder's thread.
    """

    def __init__(self, codec: str = "semantic-gan", quality: int | None = None, device: str = "cpu",
                 options: str = "", *, gop: int | None = None, kbps: float = 0.0, window: int = 1000,
                 builder: Callable[..., Codec] | None = None,
                 log: Callable[[str, str], None] | None = None) -> None:
        self.counters = Counters("received", "encoded", "rejected", "errors", "rebuilds", "rebuild_failures",
                                 "key_frames", "inter_frames", "skipped", "stamp_anomalies",
                                 "resolution_changes", "key_requests", "settings_rejected",
                                 "roi_frames", "fallback_frames", "roi_dropped")
        self.encode_ms = RollingWindow(window)
        self.bytes = RollingWindow(window)
        self.rate = RateMeter()
        #: (stamp ns, bytes) of the last BUDGET_WINDOW frames
        self.budget = deque(maxlen=BUDGET_WINDOW)
        self.key_reasons: Counter[str] = Counter()
        self.last_error = ""
        self.last_rebuild_error = ""
        self.last_key_reason = ""
        self.last_stamp_anomaly = ""
        self.last_resize = ""
        self.last_settings_rejection = ""
        self.builder = builder or build_and_warm_up
        self.log = log or (lambda level, text: None)
        self._lock = threading.Lock()
        self._active: tuple[Codec, str, tuple] | None = None
        self._wanted: tuple | None = None
        self._worker: threading.Thread | None = None
        self._session = None  # the stream session of the codec in use (opened on its first frame)
        self._key_wanted = False
        self._last_stamp: int | None = None
        self._last_shape: tuple[int, int] | None = None
        self.configure(codec, quality, device, options, gop=gop, kbps=kbps)

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
    def session(self):
        """The stream session frames are coded with (None before the first frame of a codec)."""
        return self._session

    @property
    def pending(self) -> str | None:
        """The settings being built in the background (``codec|quality|device|options|gop|kbps``), or None."""
        with self._lock:
            w = self._wanted
        return None if w is None else "|".join("" if v is None else str(v) for v in w)

    def configure(self, codec: str, quality: int | None = None, device: str = "cpu", options: str = "",
                  *, gop: int | None = None, kbps: float = 0.0) -> bool:
        """Build the codec now (synchronously) if the settings changed; True if rebuilt.

        UsageError if invalid (the previous codec then stays in use). Used at start-up; at
        run time prefer :meth:`request`."""
        key = _key(codec, quality, device, options, gop, kbps)
        if self._active is not None and key == self._active[2]:
            return False
        validate_codec(*key)
        new = build_codec(*_build_args(key))
        with self._lock:
            self._active = (new, wire_format(new), key)
        return True

    def validate(self, codec: str, quality: int | None = None, device: str = "cpu", options: str = "",
                 *, gop: int | None = None, kbps: float = 0.0) -> str:
        """:func:`validate_codec`: cheap, loads nothing; UsageError if invalid."""
        return validate_codec(codec, quality, device, options, gop, kbps)

    def request(self, codec: str, quality: int | None = None, device: str = "cpu", options: str = "",
                *, gop: int | None = None, kbps: float = 0.0) -> bool:
        """Validate now, build in the background; True if a build was started or re-aimed.

        UsageError (nothing changes) if the settings are invalid. Frames keep using the
        running codec until the new one is built and warmed up; the first frame of the new
        one is a key frame."""
        try:
            validate_codec(codec, quality, device, options, gop, kbps)
        except ValueError as exc:
            self.reject_settings(str(exc))
            raise
        key = _key(codec, quality, device, options, gop, kbps)
        with self._lock:
            if key == self._active[2] and self._wanted is None:
                return False
            self._wanted = key
            if self._worker is None:
                self._worker = threading.Thread(target=self._build_loop, name="semcomp-codec-build",
                                                daemon=True)
                self._worker.start()
        return True

    def reject_settings(self, reason: str) -> None:
        """Count settings that were refused (bad parameter values; nothing changed)."""
        self.counters.bump("settings_rejected")
        self.last_settings_rejection = reason

    def request_key_frame(self) -> None:
        """Make the next frame a key frame (reason ``request``; e.g. a receiver joined)."""
        with self._lock:
            self._key_wanted = True

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
                new = self.builder(*_build_args(key))
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
                             f"{time.perf_counter() - t0:.2f} s; its stream starts with a key frame")

    def close(self) -> None:
        """Release the stream session (encoder contexts of the video codecs)."""
        session, self._session = self._session, None
        if session is not None:
            session.close()

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
        """Encode the next frame of the stream, an (H, W, 3) uint8 RGB array; ``header`` is passed
        through unchanged (its stamp is the frame's capture time)."""
        self.counters.bump("received")
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            shape = getattr(image, "shape", None)
            return self._reject("rejected", f"expected (H, W, 3) uint8 RGB, got {shape}")
        return self._encode(image, header)

    def _stream_session(self, codec: Codec):
        """The session of ``codec``: a new one (first frame a key frame) when the codec changed."""
        session = self._session
        if session is None or session.codec is not codec:
            self._session = codec.open_encoder()
            if session is not None:
                session.close()  # here, in the frame thread: never while it codes a frame
        return self._session

    def _check_stamp(self, stamp: int | None, header: Any) -> None:
        if stamp is None:
            return
        last = self._last_stamp
        if last is not None and stamp <= last:
            self.counters.bump("stamp_anomalies")
            kind = "repeats" if stamp == last else "is older than"
            self.last_stamp_anomaly = (f"stamp of frame {header_text(header)} {kind} the newest one seen "
                                       f"({last / 1e9:.9f} s): duplicate or out-of-order frame, coded anyway")
        else:
            self._last_stamp = stamp

    def _encode(self, image: np.ndarray, header: Any) -> EncodedFrame | None:
        with self._lock:
            codec, fmt_text, _ = self._active
            force_key, self._key_wanted = self._key_wanted, False
        try:
            stamp = stamp_ns(header)
        except Exception:  # noqa: BLE001 -- no usable stamp: rate control falls back to its fps
            stamp = None
        self._check_stamp(stamp, header)
        t0 = time.perf_counter()
        try:
            session = self._stream_session(codec)
            if force_key:
                session.request_key_frame()
            data = session.encode(image, stamp_ns=stamp)
        except ValueError as exc:  # UsageError (frame over max_bytes, odd size), container limits
            self._rearm_key_request(force_key)
            return self._reject("rejected", f"codec {codec.label()} refused frame {header_text(header)}: {exc}")
        except Exception as exc:  # noqa: BLE001 -- a codec failure must not stop the node
            self._rearm_key_request(True)  # the session's state is suspect: go on with a key frame
            return self._reject("errors", f"codec {codec.label()} failed on frame {header_text(header)}: "
                                          f"{type(exc).__name__}: {exc}")
        ms = (time.perf_counter() - t0) * 1e3
        if force_key:
            self.counters.bump("key_requests")
        info = session.last
        key = bool(info.key) if info is not None else True
        reason = info.reason if info is not None else "intra"
        self.counters.bump("encoded")
        self.counters.bump("key_frames" if key else "inter_frames")
        if key:
            self.key_reasons[reason] += 1
            self.last_key_reason = reason
        if info is not None and info.details.get("skip"):
            self.counters.bump("skipped")
        roi = info.details.get("roi") if info is not None else None
        if roi:                                 # selective coding: what became of the region of interest
            if roi["fallback"]:
                self.counters.bump("fallback_frames")
            elif roi["roi_bytes"]:
                self.counters.bump("roi_frames")
            if roi["dropped"]:
                self.counters.bump("roi_dropped")
        shape = image.shape[:2]
        if self._last_shape is not None and shape != self._last_shape:
            self.counters.bump("resolution_changes")
            self.last_resize = (f"{self._last_shape[1]}x{self._last_shape[0]} -> {shape[1]}x{shape[0]} "
                                f"at frame {header_text(header)} (key frame: {reason or 'no'})")
        self._last_shape = shape
        self.encode_ms.add(ms)
        self.bytes.add(len(data))
        self.rate.add(len(data))
        self.budget.append((stamp, len(data)))
        return EncodedFrame(header, data, fmt_text, image.shape[0], image.shape[1], ms, key, reason)

    def _rearm_key_request(self, wanted: bool) -> None:
        if wanted:
            with self._lock:
                self._key_wanted = True

    def _reject(self, counter: str, reason: str) -> None:
        self.counters.bump(counter)
        self.last_error = reason
        return None

    # -- diagnostics ---------------------------------------------------------------------
    def window_bitrate_kbps(self) -> float | None:
        """Bitrate over the last :data:`BUDGET_WINDOW` frames in kbit/s, timed as rate control
        times them: by the codec's ``fps`` when it declares a non-zero one, else by the frames'
        stamps (n frames span n - 1 intervals; the first frame's bytes are outside the span).
        None with fewer than two frames or stamps that do not advance."""
        frames = list(self.budget)
        if len(frames) < 2:
            return None
        codec = self.codec
        fps = float(codec.config.get("fps") or 0.0) if "fps" in codec.params else 0.0
        if fps > 0:
            span = (len(frames) - 1) / fps
        else:
            stamps = [s for s, _ in frames]
            if any(s is None for s in stamps):
                return None
            span = (max(stamps) - stamps[0]) / 1e9
        if span <= 0:
            return None
        return sum(n for _, n in frames[1:]) * 8 / 1e3 / span

    def diagnostics(self, name: str = "semcomp encoder") -> DiagnosticReport:
        """Counters, fps, bitrate against the budget, key/inter frames and encode time percentiles.

        WARN when frames could not be encoded, a codec rebuild failed or the rate controller
        skipped frames since the last report, or when the bitrate over the last frames exceeds
        ``kbps`` by more than :data:`OVER_BUDGET`."""
        fps, bytes_per_s = self.rate.rates()
        c = self.counters
        failed_builds = c.since_report("rebuild_failures")
        skipped = c.since_report("skipped")
        fallbacks = c.since_report("fallback_frames")
        level, message = c.status(("rejected", "errors"), "could not be encoded", self.last_error,
                                  "received", "waiting for images", f"encoding with {self.label}")
        problems = []
        if failed_builds:
            problems.append(f"{failed_builds} codec rebuild(s) failed: {self.last_rebuild_error}")
        settings = stream_settings(self.codec)
        target = float(self.codec.config["kbps"]) if "kbps" in self.codec.params else 0.0
        window = self.window_bitrate_kbps()
        use = None
        if target > 0 and window is not None:
            use = 100.0 * window / target
            if len(self.budget) >= BUDGET_MIN_FRAMES and window > target * (1 + OVER_BUDGET):
                problems.append(f"over budget: {window:.1f} kbps over the last {len(self.budget)} frames "
                                f"against kbps={target:g} (the smallest frames do not fit: raise kbps, "
                                f"raise gop or set max_bytes)")
        if skipped:
            problems.append(f"{skipped} frame(s) skipped (sent as a repeat of the previous one): "
                            f"kbps={target:g} is too low for this content")
        if fallbacks:
            problems.append(f"{fallbacks} frame(s) coded classically (the segmenter could not read them: "
                            f"more uncertain pixels than fallback= allows)")
        if problems:
            keep = "" if message.startswith(("waiting", "encoding")) else f"; {message}"
            level, message = "WARN", "; ".join(problems) + keep
        session = self._session
        rate = getattr(session, "rate", None) if session is not None and session.codec is self.codec else None
        rate_kbps = getattr(rate, "bitrate_kbps", None) if rate is not None and hasattr(rate, "sent") else None
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
            "settings_rejected": str(c["settings_rejected"]),
            "last_settings_rejection": self.last_settings_rejection or "-",
            "gop": settings["gop"],
            "kbps_target": settings["kbps_target"],
            "bitrate_window_kbps": fmt(window),
            "bitrate_window_frames": str(len(self.budget)),
            "budget_used_percent": fmt(use, 1),
            "rate_control_kbps": fmt(rate_kbps),
            "key_frames": str(c["key_frames"]),
            "inter_frames": str(c["inter_frames"]),
            "last_key_reason": self.last_key_reason or "-",
            "key_frame_reasons": " ".join(f"{k}:{v}" for k, v in sorted(self.key_reasons.items())) or "-",
            "key_frame_requests": str(c["key_requests"]),
            "frames_skipped": str(c["skipped"]),
            "roi_frames": str(c["roi_frames"]),
            "fallback_frames": str(c["fallback_frames"]),
            "roi_dropped": str(c["roi_dropped"]),
            "stamp_anomalies": str(c["stamp_anomalies"]),
            "last_stamp_anomaly": self.last_stamp_anomaly or "-",
            "resolution_changes": str(c["resolution_changes"]),
            "last_resolution_change": self.last_resize or "-",
            "fps": fmt(fps),
            "bitrate_kbps": fmt(bytes_per_s * 8 / 1e3),
            "bytes_mean": fmt(self.bytes.mean(), 0),
            "encode_ms_p50": fmt(self.encode_ms.percentile(50)),
            "encode_ms_p95": fmt(self.encode_ms.percentile(95)),
        })
