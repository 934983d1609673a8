"""Stream sessions: the stateful side of every codec (one mechanism for all of them).

A :class:`~semcomp_core.codecs.Codec` codes single images (``encode``/``decode``).
A *stream* is a sequence of frames of one camera in order; an encoder session
may then code a frame against what the receiver already has (inter frames),
and a decoder session keeps the receiver's references.

* ``codec.open_encoder(fps=None)`` -> :class:`EncoderSession` (the sender);
* ``codec.open_decoder()`` -> :class:`DecoderSession` (the receiver; call it on
  the receiver's instance, :func:`semcomp_core.codecs.receiver_instance`).

Codecs without inter coding (jpeg, webp, bpg) get :class:`IntraEncoderSession`
and :class:`IntraDecoderSession`: every frame is a key frame and is exactly what
``codec.encode`` writes. The semantic codecs share one stream coder
(:mod:`semcomp_core.stream.semantic`: GOP, scene cuts, references, rate control);
the video anchors (:mod:`semcomp_core.codecs.video`) keep their state in libavcodec.

What one call returns is every byte that crosses the link for that frame.

Loss: there is no back channel on a vehicle link. A decoder session that gets
an inter frame whose reference it does not hold raises
:class:`ReferenceMissingError` (a :class:`~semcomp_core.errors.BitstreamError`),
counts it (``lost``) and stays in that state -- refusing inter frames, never
rendering them from a wrong reference -- until the next key frame
(``recoveries`` counts the resumptions).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import BitstreamError

if TYPE_CHECKING:  # pragma: no cover
    from ..codecs.base import Codec


class ReferenceMissingError(BitstreamError):
    """An inter frame arrived whose reference frame the receiver does not hold (a frame was lost,
    corrupted or arrived out of order). The receiver waits for the next key frame."""


@dataclass
class FrameInfo:
    """What the sender did with one frame (for reports and diagnostics)."""

    key: bool = True
    #: sequence number in the stream (0 for the first frame)
    seq: int = 0
    #: why a key frame was sent: "start", "gop", "scene-cut", "request", "resize", "intra" ("" for inter)
    reason: str = "intra"
    #: bytes of the frame (everything that crosses the link)
    bytes: int = 0
    #: codec-specific details (operating point, bytes per layer, ...)
    details: dict[str, Any] = field(default_factory=dict)


class EncoderSession:
    """The sender's side of one stream. Subclasses implement :meth:`_encode`."""

    def __init__(self, codec: "Codec", fps: float | None = None) -> None:
        self.codec = codec
        #: the stream's nominal frame rate, when the caller knows it (stamps, when given, are more exact)
        self.fps = fps
        self.frames = 0
        self.key_frames = 0
        self.inter_frames = 0
        self.last: FrameInfo | None = None
        self._key_requested = False

    def request_key_frame(self) -> None:
        """Make the next frame a key frame (e.g. after a parameter change, or a receiver joined)."""
        self._key_requested = True

    def encode(self, image: np.ndarray, stamp_ns: int | None = None) -> bytes:
        """Code the next frame of the stream (``stamp_ns``: its capture time, used by rate control)."""
        data, info = self._encode(image, stamp_ns, self._key_requested)
        self._key_requested = False
        info.bytes = len(data)
        info.seq = self.frames
        self.frames += 1
        if info.key:
            self.key_frames += 1
        else:
            self.inter_frames += 1
        self.last = info
        return data

    def _encode(self, image: np.ndarray, stamp_ns: int | None, force_key: bool) -> tuple[bytes, FrameInfo]:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the session holds (encoder contexts); it cannot be used afterwards."""


class DecoderSession:
    """The receiver's side of one stream. Subclasses implement :meth:`_decode`."""

    def __init__(self, codec: "Codec") -> None:
        self.codec = codec
        self.decoded = 0
        self.key_frames = 0
        self.inter_frames = 0
        self.lost = 0
        self.recoveries = 0
        self.waiting_for_key = False
        self.last_error = ""

    def decode(self, data: bytes) -> np.ndarray:
        """The frame ``data`` codes; BitstreamError (ReferenceMissingError when its reference is missing)."""
        try:
            image, key = self._decode(data)
        except ReferenceMissingError as exc:
            self.lost += 1
            self.waiting_for_key = True
            self.last_error = str(exc)
            raise
        except BitstreamError as exc:
            self.waiting_for_key = self.waiting_for_key or self.stateful
            self.last_error = str(exc)
            raise
        if key:
            self.key_frames += 1
            if self.waiting_for_key:
                self.recoveries += 1
            self.waiting_for_key = False
        else:
            self.inter_frames += 1
        self.decoded += 1
        return image

    #: True when frames depend on earlier ones (a corrupt frame then invalidates the references)
    stateful = False

    def _decode(self, data: bytes) -> tuple[np.ndarray, bool]:
        """(image, was it a key frame)."""
        raise NotImplementedError

    def reset(self) -> None:
        """Forget every reference (the next inter frame is refused until a key frame arrives)."""

    def close(self) -> None:
        """Release what the session holds."""


class IntraEncoderSession(EncoderSession):
    """Every frame a key frame: exactly ``codec.encode(image)``."""

    def _encode(self, image, stamp_ns, force_key):
        return self.codec.encode(image), FrameInfo(key=True, reason="intra")


class IntraDecoderSession(DecoderSession):
    """Every frame decoded on its own: exactly ``codec.decode(data)``."""

    def _decode(self, data):
        return self.codec.decode(data), True
