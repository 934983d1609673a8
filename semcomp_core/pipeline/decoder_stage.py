"""The decoder node's per-frame logic, without ROS.

``DecoderStage`` turns a semcomp bitstream (a CompressedImage with format
``semcomp/<codec>``, or bytes plus a header) into an RGB array. The codec is
found from the container header alone through :func:`semcomp_core.codecs.decoder_for`
-- the receiver path ``semcomp decode`` and the benchmark use too -- with the
stage's ``decoder_options`` (the receiver's own configuration, e.g.
``decoder=/models/gan``); everything the encoder chose (level, seed) comes from
the container. Any codec the encoder runs -- baselines and semantic codecs
alike -- comes through the same path.

Bad input never raises: a foreign ``format`` or an oversized frame counts as
``rejected``, a container made for another label table than the decoder's as
``mismatch``, any other BitstreamError as ``corrupt``, anything else as
``errors``; the reason is kept in :attr:`DecoderStage.last_error` and ``None``
returned.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..bitstream import unpack
from ..codecs import CODECS, decoder_for, parse_receiver_options, receiver_instance
from ..devices import check_device
from ..inference.base import BACKENDS
from ..errors import BitstreamError, ModelMismatchError, UsageError
from ..image_messages import FORMAT_PREFIX, as_bytes, header_text
from .stats import Counters, DiagnosticReport, RateMeter, RollingWindow, fmt

@dataclass
class DecodedFrame:
    """One reconstructed frame with the header of the bitstream message (unchanged)."""

    header: Any
    image: np.ndarray
    codec_id: int
    n_bytes: int
    decode_ms: float


class DecoderStage:
    """Decode semcomp bitstreams; count what could not be decoded.

    ``max_pixels``: frames whose container header announces more pixels are
    rejected before any decoding work (0: no limit beyond the container's
    16384 x 16384).
    """

    def __init__(self, device: str = "cpu", *, max_pixels: int = 0, decoder_options: str = "",
                 backend: str = "", window: int = 1000) -> None:
        self.device, self.max_pixels, self.decoder_options, self._receiver = "cpu", 0, "", {}
        self.backend = ""
        self.configure(device, max_pixels, str(decoder_options or ""), backend)
        self.counters = Counters("received", "decoded", "rejected", "corrupt", "mismatch", "errors")
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
                  decoder_options: str | None = None, backend: str | None = None) -> None:
        """Change device, size limit, receiver options or backend (UsageError if invalid; nothing
        changes then). ``backend`` (torch, onnxruntime, tensorrt; empty: each codec's default)
        applies to every codec with networks unless ``decoder_options`` names one."""
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
        self.device = dev
        if max_pixels is not None:
            self.max_pixels = int(max_pixels)
        self.decoder_options, self.backend, self._receiver = options, back, receiver

    # -- per frame -----------------------------------------------------------------------
    def decode_msg(self, msg: Any) -> DecodedFrame | None:
        """Decode a sensor_msgs/CompressedImage (any object with its fields)."""
        return self.decode(as_bytes(msg.data), msg.header, str(msg.format))

    def decode(self, data: bytes, header: Any, fmt_text: str | None = None) -> DecodedFrame | None:
        """Decode one container; ``fmt_text`` (the message's format) must start with ``semcomp/``."""
        self.counters.bump("received")
        if fmt_text is not None:
            if not fmt_text.startswith(FORMAT_PREFIX):
                return self._fail("rejected", f"frame {header_text(header)} has format {fmt_text!r}, "
                                              f"expected {FORMAT_PREFIX}<codec>")
            self.last_format = fmt_text
        t0 = time.perf_counter()
        try:
            container = unpack(data)
            pixels = container.height * container.width
            if self.max_pixels and pixels > self.max_pixels:
                return self._fail("rejected", f"frame {header_text(header)} is {container.width}x{container.height}, "
                                              f"over max_pixels={self.max_pixels}")
            codec = decoder_for(container, self.device, self._receiver)
            image = np.ascontiguousarray(codec.reconstruct(container))
        except ModelMismatchError as exc:
            return self._fail("mismatch", f"frame {header_text(header)} was made for other models: {exc}")
        except BitstreamError as exc:
            return self._fail("corrupt", f"corrupt bitstream on frame {header_text(header)} "
                                         f"({len(data)} bytes): {exc}")
        except Exception as exc:  # noqa: BLE001 -- a codec failure must not stop the node
            return self._fail("errors", f"decoder failed on frame {header_text(header)}: {type(exc).__name__}: {exc}")
        ms = (time.perf_counter() - t0) * 1e3
        self.counters.bump("decoded")
        self.decode_ms.add(ms)
        self.rate.add(len(data))
        return DecodedFrame(header, image, container.codec_id, len(data), ms)

    def _fail(self, counter: str, reason: str) -> None:
        self.counters.bump(counter)
        self.last_error = reason
        return None

    # -- diagnostics ---------------------------------------------------------------------
    def diagnostics(self, name: str = "semcomp decoder") -> DiagnosticReport:
        fps, bytes_per_s = self.rate.rates()
        c = self.counters
        level, message = c.status(("rejected", "corrupt", "mismatch", "errors"), "could not be decoded",
                                  self.last_error,
                                  "received", "waiting for bitstreams",
                                  f"decoding {self.last_format or 'semcomp'} on {self.device}")
        return DiagnosticReport(name, level, message, {
            "format": self.last_format or "-",
            "device": self.device,
            "frames_received": str(c["received"]),
            "frames_decoded": str(c["decoded"]),
            "frames_rejected": str(c["rejected"]),
            "frames_corrupt": str(c["corrupt"]),
            "frames_model_mismatch": str(c["mismatch"]),
            "frames_failed": str(c["errors"]),
            "decoder_options": self.decoder_options or "-",
            "backend": self._receiver.get("backend", "codec default"),
            "fps": fmt(fps),
            "bitrate_kbps": fmt(bytes_per_s * 8 / 1e3),
            "decode_ms_p50": fmt(self.decode_ms.percentile(50)),
            "decode_ms_p95": fmt(self.decode_ms.percentile(95)),
        })
