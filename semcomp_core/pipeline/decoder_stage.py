"""The decoder node's per-frame logic, without ROS.

``DecoderStage`` turns a semcomp bitstream (a CompressedImage with format
``semcomp/<codec>``, or bytes plus a header) into an RGB array. Frames are
decoded in order through stream sessions (:mod:`semcomp_core.stream`), one
per codec: the receiver's instance of the codec
(:func:`semcomp_core.codecs.receiver_instance`, with the stage's
``decoder_options`` -- the receiver's own configuration, e.g.
``decoder=/models/gan`` -- and backend) opens a decoder session that holds
the references inter frames are coded against. The codec is found from the
container header's codec id; everything the encoder chose (level, seed)
comes from the container. Codecs whose bytes are not semcomp containers --
the video anchors ``h264``, ``hevc``, ``av1``, raw codec packets -- are found
from the message format instead, ``semcomp/<name>[:...]`` (what
``encoder_node`` publishes); their bytes need that format.

Loss: an inter frame whose reference the receiver does not hold (a message
was lost, corrupted or reordered, or the receiver joined mid-stream) is
refused and counted as ``lost``; nothing is shown until the next key frame,
which ``recoveries`` counts. Changing ``device``, ``decoder_options`` or
``backend`` drops the sessions (their references belong to the old receiver
set-up), so inter frames are refused until the next key frame then too;
``max_pixels`` does not.

Bad input never raises: a foreign ``format`` or an oversized frame counts as
``rejected``, a container made for another label table than the decoder's as
``mismatch``, any other BitstreamError as ``corrupt``, anything else as
``errors``; the reason is kept in :attr:`DecoderStage.last_error` and ``None``
returned. ``max_pixels`` is checked from the container header before any
decoding; for the video codecs (no semcomp header) after decoding.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..bitstream import unpack
from ..codecs import CODECS, Codec, codec_class_for_id, parse_receiver_options, receiver_instance
from ..devices import check_device
from ..errors import BitstreamError, ModelMismatchError, UsageError
from ..image_messages import FORMAT_PREFIX, as_bytes, header_text
from ..inference.base import BACKENDS
from ..stream import DecoderSession, ReferenceMissingError
from .stats import Counters, DiagnosticReport, RateMeter, RollingWindow, fmt


@dataclass
class DecodedFrame:
    """One reconstructed frame with the header of the bitstream message (unchanged)."""

    header: Any
    image: np.ndarray
    #: the container's codec id (-1 for codecs without containers: the video anchors)
    codec_id: int
    n_bytes: int
    decode_ms: float
    #: a key frame?
    key: bool = True
    #: the codec's name
    codec: str = ""


def raw_codec_class(fmt_text: str | None) -> type[Codec] | None:
    """The codec a ``semcomp/<name>[:...]`` format names when its bytes are not semcomp containers
    (no codec ids: the video anchors); None for container codecs, other formats and unknown names."""
    if not fmt_text or not fmt_text.startswith(FORMAT_PREFIX):
        return None
    name = fmt_text[len(FORMAT_PREFIX):].split(":", 1)[0].strip()
    if name not in CODECS:
        return None
    cls = CODECS.get(name)
    return None if cls.codec_ids else cls


class DecoderStage:
    """Decode semcomp streams, one session per codec; count what could not be decoded.

    ``max_pixels``: frames whose container header announces more pixels are
    rejected before any decoding work (0: no limit beyond the container's
    16384 x 16384).
    """

    def __init__(self, device: str = "cpu", *, max_pixels: int = 0, decoder_options: str = "",
                 backend: str = "", renderer: str = "", window: int = 1000) -> None:
        self.device, self.max_pixels, self.decoder_options, self._receiver = "cpu", 0, "", {}
        self.backend, self.renderer = "", ""
        self._sessions: dict[type[Codec], DecoderSession] = {}
        self.configure(device, max_pixels, str(decoder_options or ""), backend, renderer)
        self.counters = Counters("received", "decoded", "truncated", "rejected", "corrupt", "mismatch", "errors",
                                 "lost", "key_frames", "inter_frames", "recoveries", "stream_resets")
        self.decode_ms = RollingWindow(window)
        self.rate = RateMeter()
        self.last_error = ""
        self.last_format = ""

    def warm_up(self) -> list[str]:
        """Load and run every codec's receiver networks once on a dummy frame (node start, after a
        change of device or options), so the first real frame has no loading spike. Returns what ran;
        raises what loading raises (missing weights: UsageError)."""
        ran = []
        for name, cls in CODECS.items():
            if "warm_up_receiver" in cls.__dict__:  # codecs that run networks on the receiver
                codec = receiver_instance(cls, self.device, self._receiver)
                codec.warm_up_receiver()
                ran.append(codec.implementation)
        return ran

    def configure(self, device: str | None = None, max_pixels: int | None = None,
                  decoder_options: str | None = None, backend: str | None = None,
                  renderer: str | None = None) -> bool:
        """Change device, size limit, receiver options, backend or renderer (UsageError if invalid; nothing
        changes then). ``backend`` (torch, onnxruntime, tensorrt; empty: each codec's default)
        applies to every codec with networks unless ``decoder_options`` names one; ``renderer`` (gan, ldm;
        empty: each codec's default) likewise to the semantic codecs.

        A change of device, options or backend drops the stream sessions (returns True then): inter
        frames are refused until the next key frame of each stream."""
        dev = check_device(device) if device is not None else self.device
        if max_pixels is not None and int(max_pixels) < 0:
            raise UsageError(f"max_pixels must be >= 0, got {max_pixels}")
        options = str(decoder_options) if decoder_options is not None else self.decoder_options
        back = str(backend) if backend is not None else self.backend
        receiver = parse_receiver_options(options)
        if back and back not in BACKENDS:
            raise UsageError(f"backend must be one of {', '.join(BACKENDS)}, got {back!r}")
        if back:
            receiver = dict({"backend": back}, **receiver)
        rend = str(renderer) if renderer is not None else self.renderer
        from ..renderers import RENDERERS

        if rend and rend not in RENDERERS:
            raise UsageError(f"renderer must be one of {', '.join(RENDERERS)}, got {rend!r}")
        if rend:
            receiver = dict({"renderer": rend}, **receiver)
        changed = (dev, receiver) != (self.device, self._receiver)
        self.device = dev
        if max_pixels is not None:
            self.max_pixels = int(max_pixels)
        self.decoder_options, self.backend, self.renderer, self._receiver = options, back, rend, receiver
        if changed and self._sessions:
            self.reset_streams()
            return True
        return False

    def reset_streams(self) -> None:
        """Drop every stream session: inter frames are refused until the next key frame."""
        sessions, self._sessions = self._sessions, {}
        for session in sessions.values():
            session.close()
        if hasattr(self, "counters"):
            self.counters.bump("stream_resets")

    def _session(self, cls: type[Codec]) -> DecoderSession:
        session = self._sessions.get(cls)
        if session is None:
            session = receiver_instance(cls, self.device, self._receiver).open_decoder()
            self._sessions[cls] = session
        return session

    @property
    def waiting_for_key(self) -> list[str]:
        """Codecs whose stream waits for a key frame (after a lost or corrupt frame)."""
        return sorted(cls.name for cls, s in self._sessions.items() if s.waiting_for_key)

    # -- per frame -----------------------------------------------------------------------
    def decode_msg(self, msg: Any) -> DecodedFrame | None:
        """Decode a sensor_msgs/CompressedImage (any object with its fields)."""
        return self.decode(as_bytes(msg.data), msg.header, str(msg.format))

    def decode(self, data: bytes, header: Any, fmt_text: str | None = None) -> DecodedFrame | None:
        """Decode the next frame of its stream; ``fmt_text`` (the message's format) must start with
        ``semcomp/`` (and name the codec for the video codecs)."""
        self.counters.bump("received")
        if fmt_text is not None:
            if not fmt_text.startswith(FORMAT_PREFIX):
                return self._fail("rejected", f"frame {header_text(header)} has format {fmt_text!r}, "
                                              f"expected {FORMAT_PREFIX}<codec>")
            self.last_format = fmt_text
        t0 = time.perf_counter()
        session = None
        try:
            cls = raw_codec_class(fmt_text)
            codec_id = -1
            if cls is None:  # a semcomp container: the header names the codec and the size
                container = unpack(data)
                pixels = container.height * container.width
                if self.max_pixels and pixels > self.max_pixels:
                    return self._fail("rejected", f"frame {header_text(header)} is {container.width}x"
                                                  f"{container.height}, over max_pixels={self.max_pixels}")
                cls, codec_id = codec_class_for_id(container.codec_id), container.codec_id
                if container.truncated:       # cut after a complete layer: decoded from what arrived
                    self.counters.bump("truncated")
            session = self._session(cls)
            keys, recoveries = session.key_frames, session.recoveries
            image = np.ascontiguousarray(session.decode(data))
        except ReferenceMissingError as exc:
            return self._fail("lost", f"frame {header_text(header)} not shown: {exc}")
        except ModelMismatchError as exc:
            return self._fail("mismatch", f"frame {header_text(header)} was made for other models: {exc}")
        except BitstreamError as exc:
            return self._fail("corrupt", f"corrupt bitstream on frame {header_text(header)} "
                                         f"({len(data)} bytes): {exc}")
        except Exception as exc:  # noqa: BLE001 -- a codec failure must not stop the node
            return self._fail("errors", f"decoder failed on frame {header_text(header)}: {type(exc).__name__}: {exc}")
        key = session.key_frames > keys
        self.counters.bump("key_frames" if key else "inter_frames")
        self.counters.bump("recoveries", session.recoveries - recoveries)
        height, width = image.shape[:2]
        if self.max_pixels and height * width > self.max_pixels:  # video codecs: known only now
            return self._fail("rejected", f"frame {header_text(header)} is {width}x{height}, "
                                          f"over max_pixels={self.max_pixels}")
        ms = (time.perf_counter() - t0) * 1e3
        self.counters.bump("decoded")
        self.decode_ms.add(ms)
        self.rate.add(len(data))
        return DecodedFrame(header, image, codec_id, len(data), ms, key, cls.name)

    def _fail(self, counter: str, reason: str) -> None:
        self.counters.bump(counter)
        self.last_error = reason
        return None

    # -- diagnostics ---------------------------------------------------------------------
    def diagnostics(self, name: str = "semcomp decoder") -> DiagnosticReport:
        """Counters, key/inter frames, lost frames and recoveries, fps, bitrate, decode times.

        WARN when frames could not be decoded (``lost`` included) since the last report."""
        fps, bytes_per_s = self.rate.rates()
        c = self.counters
        waiting = self.waiting_for_key
        level, message = c.status(("rejected", "corrupt", "mismatch", "errors", "lost"), "could not be decoded",
                                  self.last_error,
                                  "received", "waiting for bitstreams",
                                  f"decoding {self.last_format or 'semcomp'} on {self.device}")
        if waiting and level == "OK":
            message = f"{message}; waiting for a key frame of {', '.join(waiting)}"
        return DiagnosticReport(name, level, message, {
            "format": self.last_format or "-",
            "device": self.device,
            "frames_received": str(c["received"]),
            "frames_decoded": str(c["decoded"]),
            "frames_rejected": str(c["rejected"]),
            "frames_corrupt": str(c["corrupt"]),
            "frames_model_mismatch": str(c["mismatch"]),
            "frames_failed": str(c["errors"]),
            "frames_lost": str(c["lost"]),
            "frames_truncated": str(c["truncated"]),
            "key_frames": str(c["key_frames"]),
            "inter_frames": str(c["inter_frames"]),
            "recoveries": str(c["recoveries"]),
            "waiting_for_key_frame": ", ".join(waiting) if waiting else "no",
            "streams": ", ".join(sorted(cls.name for cls in self._sessions)) or "-",
            "stream_resets": str(c["stream_resets"]),
            "decoder_options": self.decoder_options or "-",
            "backend": self._receiver.get("backend", "codec default"),
            "renderer": self._receiver.get("renderer", "codec default"),
            "fps": fmt(fps),
            "bitrate_kbps": fmt(bytes_per_s * 8 / 1e3),
            "decode_ms_p50": fmt(self.decode_ms.percentile(50)),
            "decode_ms_p95": fmt(self.decode_ms.percentile(95)),
        })
