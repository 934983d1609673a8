"""Video-codec anchors ``h264``, ``hevc`` and ``av1`` through PyAV (libavcodec).

What a teleoperation link would otherwise run: libx264, libx265 and SVT-AV1
(``libsvtav1``) as encoders, libavcodec's ``h264`` / ``hevc`` decoders and
dav1d (``libdav1d``) for AV1. They are stream codecs: use them through
:meth:`Codec.open_encoder` / :meth:`Codec.open_decoder`
(:mod:`semcomp_core.stream`); ``encode(image)`` / ``decode(data)`` code a
one-frame stream (one key frame) for the per-image tools and the benchmark.

Low delay (the default and the only mode): a vehicle link cannot wait for
future frames, so every encoder is set up to return a frame's packet in the
call that got the frame (one frame in, one packet out; the session raises
RuntimeError if an encoder ever holds a frame back), and the decoders output
each frame in the call that got its packet:

* h264: x264 ``tune=zerolatency`` (no look-ahead, no frame threads, no
  MB-tree), ``bframes=0``, one thread (one slice: the bytes do not depend on
  the machine's core count), ``forced-idr=1``;
* hevc: x265 ``tune=zerolatency`` plus ``x265-params``
  ``bframes=0:rc-lookahead=0:open-gop=0:info=0`` (no B frames, no look-ahead,
  key frames are IDR pictures, no SEI naming the encoder), ``forced-idr=1``;
* av1: SVT-AV1 ``svtav1-params`` ``pred-struct=1:lookahead=0`` (the low-delay
  prediction structure, no look-ahead; SVT-AV1 then also disables its
  temporal filtering and TPL), closed GOP (``flags=+cgop``: key frames,
  not forward key frames);
* decoders: slice threads only in h264/hevc (frame threads would delay the
  output), dav1d ``max_frame_delay=1``.

SVT-AV1's ``get_packet`` blocks until the frame's packet is ready in the
low-delay structure (it is non-blocking otherwise), so the 1-in/1-out
behaviour does not depend on thread timing; x264/x265 with zero-latency
tuning and no look-ahead return the frame's NAL units from the encode call.

Bytes counted: what a call returns is exactly the encoder's packet payloads
for that frame, concatenated, with no semcomp framing -- Annex-B NAL units
with start codes for h264/hevc (SPS/PPS, and the VPS for hevc, in band before
every key frame), AV1 OBUs of the low-overhead format for av1 (a temporal
delimiter first, a sequence header on key frames). One exception: x264
writes a user-data SEI with its version and full option string (about 600
bytes, no picture data) into the first frame of every stream; it is removed,
as x265 is told not to write its own (``info=0``), so a one-frame stream is
not charged for a banner.

Parameters (``h264`` / ``hevc`` / ``av1``):

* ``qp`` -- constant quantiser, 0..51 / 0..51 / 1..63; -1 (default) = off.
  The ``--quality`` knob of h264 and hevc. Wins over ``crf``: giving both a
  ``qp`` and a non-default ``crf`` is a UsageError. (av1 passes it as
  SVT-AV1's ``qp``; with SVT-AV1 4.1 in FFmpeg 8 it gave the same bytes as
  ``crf`` of the same value; SVT-AV1 has no quantiser 0.)
* ``crf`` -- constant rate factor, 0..51 / 0..51 / 1..63, defaults 23 / 28 / 35
  (each encoder's own default); the default rate control. The ``--quality``
  knob of av1.
* ``kbps`` -- 0 (default) = off; > 0: the encoder's bitrate rate control at
  that rate with a VBV buffer of one second (x264/x265 ABR with
  ``maxrate = kbps``, ``bufsize = kbps`` x 1 s; SVT-AV1 CBR, which it offers
  in low delay only). ``kbps`` replaces ``crf``'s default; with ``qp`` or a
  non-default ``crf`` it is a UsageError (two rate controls).
* ``gop`` -- key-frame interval in frames, default 250; 1 = all intra. x264
  may add key frames at scene cuts (reason "scene-cut").
* ``fps`` -- frame rate the encoder is told (time base 1/fps, and what
  ``kbps`` is spread over), default 10; ``open_encoder(fps=...)`` wins. The
  frames' capture stamps (``stamp_ns``) are not used: the rate control
  assumes that constant rate.
* ``preset`` -- encoder speed preset: x264/x265 ``ultrafast`` .. ``placebo``,
  default ``medium``; SVT-AV1 0 (slowest) .. 13, default 8. Measured on a
  shared 2-core machine, 480x360 frames (median encode per key / inter
  frame; the larger numbers while other jobs ran): x264 medium 7-13 / 3-8 ms,
  x265 medium 30-105 / 3-15 ms (the first frame of a stream, i.e. a
  per-image ``encode``, about 40-110 ms), SVT-AV1 preset 8 19-22 / 3-4 ms
  (preset 6: 47 / 4 ms, preset 10: 16 / 3 ms); decoding 1-4 ms.

Key frames: the first frame of a stream ("start"), every ``gop`` frames
("gop"), on :meth:`EncoderSession.request_key_frame` ("request": the frame is
handed to the encoder with picture type I, which x264/x265 turn into an IDR
picture because of ``forced-idr`` and SVT-AV1 into a KEY_FRAME; the session
checks that the packet is a key frame), and after a change of the frame size
("resize": the encoder is opened again for the new size).

Sizes: 4:2:0 sampling needs an even width and height. An odd size is a
UsageError naming it -- frames are never padded, as the receiver could not
know the crop. Frames are (H, W, 3) uint8 RGB (:func:`~semcomp_core.imageio.as_rgb`
also takes gray, RGBA and 16 bits), at least 16x16; they are converted to
Y'CbCr 4:2:0 with the BT.601 matrix at limited range, which the streams
signal (matrix 6, limited range) and the decoder converts back with.

Decoder sessions find out whether a frame is a key frame from its bytes (an
IDR NAL unit; an IRAP NAL unit for hevc; a KEY_FRAME frame header for AV1)
before decoding it, refuse an inter frame while they hold no reference
(ReferenceMissingError) and turn every failure, a packet that yields no
picture included, into BitstreamError.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import glob
import os
import re
from fractions import Fraction
from typing import Any

import numpy as np

from ..bitstream import Container
from ..bitstream.packets import annexb_units, av1_obus
from ..errors import BitstreamError, UsageError
from ..imageio import as_rgb
from ..stream.session import DecoderSession, EncoderSession, FrameInfo, ReferenceMissingError
from . import register_codec
from .base import Codec, Param

X26X_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
                "veryslow", "placebo")
#: one second of VBV buffer at the target rate when kbps > 0
VBV_SECONDS = 1.0
#: the largest decoded picture a decoder session accepts (as the container's MAX_SIDE squared)
MAX_PIXELS = 16384 * 16384
#: the UUID of x264's user-data-unregistered SEI (its version and option string)
X264_SEI_UUID = bytes.fromhex("dc45e9bde6d948b7962cd820d923eeef")


def _av():
    """PyAV, imported on first use (the registry works without it)."""
    try:
        import av
    except ImportError as exc:  # pragma: no cover - av is a dependency
        raise UsageError(f"the video codecs need PyAV (pip install av): {exc}") from None
    return av


# -- bitstream scanning (no decoding; the unit parsers live in bitstream.packets) ---------------

def _strip_x264_sei(data: bytes) -> bytes:
    """``data`` without x264's version SEI (an SEI NAL unit holding one user-data-unregistered message
    with x264's UUID); everything else byte for byte."""
    out, last = [], 0
    for start, end in annexb_units(data):
        nal = data[start:end]
        # NAL header 0x06 (SEI), payload type 5, then a 0xff-coded size and the 16-byte UUID
        if len(nal) > 3 and nal[0] & 0x1F == 6 and nal[1] == 5:
            pos = 2
            while pos < len(nal) and nal[pos] == 0xFF:
                pos += 1
            if nal[pos + 1:pos + 17] == X264_SEI_UUID:
                code = 4 if start >= 4 and data[start - 4] == 0 else 3
                out.append(data[last:start - code])
                last = end
    out.append(data[last:])
    return b"".join(out)


def scan_h264(data: bytes) -> bool:
    """Check that ``data`` is an H.264 access unit with a coded slice; True for an IDR picture."""
    types = []
    for start, end in annexb_units(data):
        if end <= start:
            raise BitstreamError("empty NAL unit")
        if data[start] & 0x80:
            raise BitstreamError("NAL unit with forbidden_zero_bit set")
        types.append(data[start] & 0x1F)
    if not any(1 <= t <= 5 for t in types):
        raise BitstreamError(f"no coded slice in the H.264 data (NAL unit types {types})")
    return 5 in types


def scan_hevc(data: bytes) -> bool:
    """Check that ``data`` is an HEVC access unit with a coded slice; True for an IRAP picture."""
    types = []
    for start, end in annexb_units(data):
        if end - start < 2:
            raise BitstreamError("NAL unit shorter than its 2-byte header")
        if data[start] & 0x80:
            raise BitstreamError("NAL unit with forbidden_zero_bit set")
        types.append((data[start] >> 1) & 0x3F)
    vcl = [t for t in types if t < 32]
    if not vcl:
        raise BitstreamError(f"no coded slice in the HEVC data (NAL unit types {types})")
    return all(16 <= t <= 23 for t in vcl)


def scan_av1(data: bytes, reduced_still: bool = False) -> tuple[bool, bool]:
    """Check that ``data`` is a temporal unit of AV1 OBUs (low-overhead format: every OBU has a size)
    holding a frame; ``(key frame?, reduced_still_picture_header of the last sequence header)``."""
    key = None
    for obu_type, _, pos, size in av1_obus(data):
        payload = data[pos:pos + size]
        if obu_type == 1 and payload:  # sequence header
            reduced_still = bool(payload[0] & 0x08)
        elif obu_type in (3, 6) and key is None:  # frame header / frame
            if not payload:
                raise BitstreamError("empty frame header OBU")
            key = reduced_still or (not payload[0] & 0x80 and (payload[0] >> 5) & 0x03 == 0)
    if key is None:
        raise BitstreamError("no frame in the AV1 data")
    return key, reduced_still


# -- versions ----------------------------------------------------------------------------------

def _library(stem: str):
    """The shared library ``stem`` that PyAV loaded (its wheel's copy first), or None."""
    av = _av()
    site = os.path.dirname(os.path.dirname(os.path.abspath(av.__file__)))
    for folder in (os.path.join(site, "av.libs"), os.path.join(os.path.dirname(av.__file__), ".dylibs")):
        for path in sorted(glob.glob(os.path.join(folder, f"lib{stem}*"))):
            try:
                return ctypes.CDLL(path)
            except OSError:
                continue
    found = ctypes.util.find_library(stem)
    try:
        return ctypes.CDLL(found) if found else None
    except OSError:
        return None


@functools.lru_cache(maxsize=None)
def library_version(stem: str, symbol: str, is_function: bool) -> str:
    """A version string exported by a library (``x265_version_str``, ``svt_av1_get_version()``), or "?"."""
    try:
        lib = _library(stem)
        if lib is None:
            return "?"
        if is_function:
            fn = getattr(lib, symbol)
            fn.restype = ctypes.c_char_p
            fn.argtypes = []
            value = fn()
        else:
            value = ctypes.c_char_p.in_dll(lib, symbol).value
        return value.decode("ascii", "replace") if value else "?"
    except (AttributeError, OSError, ValueError):
        return "?"


@functools.lru_cache(maxsize=None)
def x264_version() -> str:
    """``core N`` from the version SEI x264 writes into a stream (x264 exports no version string)."""
    try:
        av = _av()
        ctx = av.CodecContext.create("libx264", "w")
        ctx.width, ctx.height, ctx.pix_fmt = 16, 16, "yuv420p"
        ctx.time_base = Fraction(1, 10)
        ctx.options = {"preset": "ultrafast", "tune": "zerolatency", "threads": "1"}
        ctx.open()
        frame = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24").reformat(
            format="yuv420p")
        data = b"".join(bytes(p) for p in ctx.encode(frame)) + b"".join(bytes(p) for p in ctx.encode(None))
    except Exception:
        return "?"
    match = re.search(rb"x264 - core (\d+)( r\d+)?", data)
    return ("core " + match.group(1).decode() + (match.group(2) or b"").decode()) if match else "?"


def _libavcodec_version() -> str:
    av = _av()
    return ".".join(str(v) for v in av.library_versions.get("libavcodec", ()))


# -- the codecs --------------------------------------------------------------------------------

class _VideoCodec(Codec):
    """Shared by h264, hevc and av1: a libavcodec encoder and decoder set up for low delay."""

    codec_ids = ()
    #: libavcodec encoder / decoder names
    encoder_name = ""
    decoder_name = ""

    def __init__(self, device: str = "cpu", **params: Any) -> None:
        super().__init__(device=device, **params)
        cfg = self.config
        qp_default = self.params["qp"].default
        crf_default = self.params["crf"].default
        if cfg["qp"] != qp_default and cfg["crf"] != crf_default:
            raise UsageError(f"{self.name}: give qp or crf, not both (qp={cfg['qp']}, crf={cfg['crf']})")
        if cfg["kbps"] > 0 and cfg["qp"] != qp_default:
            raise UsageError(f"{self.name}: give kbps or qp, not both (kbps={cfg['kbps']}, qp={cfg['qp']})")
        if cfg["kbps"] > 0 and cfg["crf"] != crf_default:
            raise UsageError(f"{self.name}: give kbps or crf, not both (kbps={cfg['kbps']}, crf={cfg['crf']})")

    # -- rate control ---------------------------------------------------------------------------
    @property
    def rate_control(self) -> str:
        """``qp=N``, ``crf=N`` or ``kbps=N``: the rate control in effect."""
        if self.config["qp"] >= 0:
            return f"qp={self.config['qp']}"
        if self.config["kbps"] > 0:
            return f"kbps={self.config['kbps']}"
        return f"crf={self.config['crf']}"

    def label(self) -> str:
        """Name, the rate control in effect and the other non-default parameters, e.g. ``h264:qp=30``."""
        keys = [k for k in self.params if k == self.rate_control.split("=")[0]
                or (k not in ("qp", "crf", "kbps") and self.config[k] != self.params[k].default)]
        return self.name + "".join(f":{k}={self.config[k]}" for k in keys)

    def wire_label(self) -> str:
        return self.label()  # every parameter is an encoder-side, non-local one

    def encoder_options(self) -> dict[str, str]:
        """The encoder's private options: its low-delay settings plus the rate control in effect."""
        return {**self.low_delay_options(), **self.rate_options()}

    def low_delay_options(self) -> dict[str, str]:
        """Speed preset and the options that make one frame in give one packet out."""
        raise NotImplementedError

    def rate_options(self) -> dict[str, str]:
        """``qp`` when set, else ``crf`` unless ``kbps`` rules (its bit rate is set on the context)."""
        if self.config["qp"] >= 0:
            return {"qp": str(self.config["qp"])}
        return {} if self.config["kbps"] > 0 else {"crf": str(self.config["crf"])}

    @property
    def implementation(self) -> str:
        """Encoder library and version, PyAV and libavcodec, preset, decoder (the rate control is in
        :meth:`label`, so a receiver's default instance reports the same text as the sender's)."""
        av = _av()
        return (f"{self.encoder_name} ({self.library_version()}) via PyAV {av.__version__} "
                f"(libavcodec {_libavcodec_version()}), low-delay, preset {self.config['preset']}; "
                f"decoder {self.decoder_name}{self.decoder_version()}")

    def library_version(self) -> str:
        """The encoder library and its version, e.g. ``x265 4.2``."""
        return "?"

    def decoder_version(self) -> str:
        return ""

    # -- frames -----------------------------------------------------------------------------------
    def check_frame(self, image: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB with an even width and height; UsageError otherwise."""
        rgb = as_rgb(image)
        height, width = rgb.shape[:2]
        if width % 2 or height % 2:
            raise UsageError(f"{self.name}: frame size {width}x{height} is odd; 4:2:0 video needs an even "
                             "width and height (crop or pad the frames before encoding)")
        if width < 16 or height < 16:
            raise UsageError(f"{self.name}: frame size {width}x{height} is below 16x16")
        return rgb

    def open_encoder_context(self, width: int, height: int, fps: float):
        """A libavcodec encoder context for ``width`` x ``height`` frames at ``fps``, opened."""
        av = _av()
        rate = Fraction(fps).limit_denominator(1001)
        ctx = av.CodecContext.create(self.encoder_name, "w")
        ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
        ctx.time_base = 1 / rate
        ctx.framerate = rate
        ctx.gop_size = self.config["gop"]
        ctx.max_b_frames = 0
        # BT.601 limited range, as the RGB -> YUV conversion below; written into the VUI / sequence header
        ctx.colorspace = 6  # SMPTE 170M
        ctx.color_range = 1  # MPEG (limited)
        options = self.encoder_options()
        kbps = self.config["kbps"]
        if kbps > 0:
            bits = kbps * 1000
            options.update({"b": str(bits), "maxrate": str(bits), "bufsize": str(int(bits * VBV_SECONDS))})
        ctx.options = options
        try:
            ctx.open()
        except Exception as exc:
            raise UsageError(f"{self.name}: cannot open {self.encoder_name} for {width}x{height} "
                             f"at {fps:g} fps: {exc}") from None
        return ctx

    def packet_bytes(self, packets) -> bytes:
        """The bytes counted for one frame: the packet payloads, concatenated."""
        return b"".join(bytes(p) for p in packets)

    def scan(self, data: bytes, state: dict) -> bool:
        """Check the structure of one frame's bytes; True for a key frame (BitstreamError if malformed)."""
        raise NotImplementedError

    def decoder_options(self) -> dict[str, str]:
        return {}

    def open_decoder_context(self):
        av = _av()
        ctx = av.CodecContext.create(self.decoder_name, "r")
        ctx.options = {"max_pixels": str(MAX_PIXELS), **self.decoder_options()}
        return ctx

    # -- sessions ---------------------------------------------------------------------------------
    def open_encoder(self, fps: float | None = None) -> "VideoEncoderSession":
        return VideoEncoderSession(self, fps)

    def open_decoder(self) -> "VideoDecoderSession":
        return VideoDecoderSession(self)

    # -- the per-image contract -------------------------------------------------------------------
    def encode(self, image: np.ndarray) -> bytes:
        """A one-frame stream: the key frame's packets."""
        session = self.open_encoder()
        try:
            return session.encode(image)
        finally:
            session.close()

    def decode(self, data: bytes) -> np.ndarray:
        """The picture of a one-frame stream (its key frame), with a fresh decoder session."""
        session = self.open_decoder()
        try:
            return session.decode(data)
        finally:
            session.close()

    def encode_layers(self, image: np.ndarray):
        raise UsageError(f"{self.name} codes raw video packets, not containers (use encode or open_encoder)")

    def decode_container(self, container: Container) -> np.ndarray:
        raise UsageError(f"{self.name} codes raw video packets, not containers (use decode or open_decoder)")


class VideoEncoderSession(EncoderSession):
    """A stream through one libavcodec encoder context (opened again when the frame size changes)."""

    def __init__(self, codec: _VideoCodec, fps: float | None = None) -> None:
        super().__init__(codec, fps)
        rate = codec.config["fps"] if fps is None else fps
        try:
            rate = float(rate)
        except (TypeError, ValueError):
            raise UsageError(f"{codec.name}: fps={rate!r} is not a number") from None
        if not 0 < rate <= 1000:
            raise UsageError(f"{codec.name}: fps={rate:g} outside (0, 1000]")
        self.rate = rate
        self._ctx = None
        self._size: tuple[int, int] | None = None
        self._pts = 0
        self._since_key = 0
        self._closed = False

    def _release(self) -> None:
        ctx, self._ctx = self._ctx, None
        if ctx is not None:
            try:  # drain (nothing is held back in low delay; SVT-AV1 wants its end of stream)
                ctx.encode(None)
            except Exception:
                pass
            del ctx  # PyAV frees the libavcodec context with its last reference

    def _encode(self, image, stamp_ns, force_key):
        if self._closed:
            raise UsageError(f"{self.codec.name}: encoder session is closed")
        codec: _VideoCodec = self.codec
        rgb = codec.check_frame(image)
        height, width = rgb.shape[:2]
        reason = ""
        if self._ctx is None or self._size != (width, height):
            reason = "start" if self._ctx is None and self.frames == 0 else "resize"
            self._release()
            self._ctx = codec.open_encoder_context(width, height, self.rate)
            self._size = (width, height)
            self._pts = 0
        av = _av()
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
            format="yuv420p", dst_colorspace="ITU601", dst_color_range="MPEG")
        frame.pts = self._pts
        want_key = bool(reason) or force_key
        if want_key:
            picture_type = getattr(av.video.frame, "PictureType", None)  # an enum since PyAV 13, "I" before
            frame.pict_type = picture_type.I if picture_type is not None else "I"
        try:
            packets = self._ctx.encode(frame)
        except Exception as exc:
            raise RuntimeError(f"{codec.name}: {codec.encoder_name} failed on frame {self.frames}: {exc}") from None
        if not packets:
            raise RuntimeError(f"{codec.name}: {codec.encoder_name} held frame {self.frames} back "
                               "(not low delay)")
        key = any(p.is_keyframe for p in packets)
        if want_key and not key:
            raise RuntimeError(f"{codec.name}: {codec.encoder_name} ignored the key frame request "
                               f"on frame {self.frames}")
        data = codec.packet_bytes(packets)
        pts = self._pts
        self._pts += 1
        if key:
            if not reason:
                gop = codec.config["gop"]
                reason = "request" if force_key else (
                    "gop" if self._since_key + 1 >= gop or pts % gop == 0 else "scene-cut")
            self._since_key = 0
        else:
            self._since_key += 1
        return data, FrameInfo(key=key, reason=reason if key else "",
                               details={"packets": len(packets), "pts": [p.pts for p in packets], "frame_pts": pts,
                                        "rate_control": codec.rate_control})

    def close(self) -> None:
        self._release()
        self._closed = True

    def __del__(self) -> None:  # a session dropped without close() still ends its encoder's stream
        try:
            self._release()
        except Exception:
            pass


class VideoDecoderSession(DecoderSession):
    """A stream through one libavcodec decoder context; refuses inter frames while it holds no reference."""

    stateful = True

    def __init__(self, codec: _VideoCodec) -> None:
        super().__init__(codec)
        self._ctx = None
        self._has_reference = False
        self._scan_state: dict = {}

    def _decode(self, data):
        codec: _VideoCodec = self.codec
        try:  # a frame that is not even well-formed was lost: what follows it lacks its reference
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise BitstreamError(f"frame data must be bytes, got {type(data).__name__}")
            data = bytes(data)
            if not data:
                raise BitstreamError("empty frame")
            key = codec.scan(data, self._scan_state)
        except BitstreamError as exc:
            self._lose_reference()
            raise BitstreamError(f"{codec.name}: {exc}") from None
        if not key and not self._has_reference:
            raise ReferenceMissingError(f"{codec.name}: inter frame without its reference "
                                        "(waiting for a key frame)")
        av = _av()
        if self._ctx is None:
            self._ctx = codec.open_decoder_context()
        try:
            frames = self._ctx.decode(av.Packet(data))
            if len(frames) != 1:
                raise BitstreamError(f"{codec.name}: the frame's data gave {len(frames)} pictures, not 1")
            frame = frames[0]
            if frame.is_corrupt:
                raise BitstreamError(f"{codec.name}: {codec.decoder_name} marked the picture corrupt")
            image = frame.to_ndarray(format="rgb24")
        except BitstreamError:
            self._lose_reference()
            raise
        except Exception as exc:  # libavcodec errors, malformed pictures
            self._lose_reference()
            raise BitstreamError(f"{codec.name}: {codec.decoder_name} cannot decode the frame: "
                                 f"{type(exc).__name__}: {exc}") from None
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            self._lose_reference()
            raise BitstreamError(f"{codec.name}: decoded picture has shape {image.shape}")
        if key:
            self._has_reference = True
        return np.ascontiguousarray(image), key

    def _lose_reference(self) -> None:
        """After a failure the decoder's state is suspect: drop the context (PyAV frees it with its last
        reference); the next key frame starts a fresh one."""
        self._has_reference = False
        self._ctx = None

    def reset(self) -> None:
        self._lose_reference()

    def close(self) -> None:
        self._lose_reference()


def _rate_params(top: int, crf_low: int, crf_default: int, kbps_mode: str, preset: Param) -> dict[str, Param]:
    """The parameters every anchor has: rate control (qp / crf / kbps), gop, fps and its speed preset."""
    low = max(crf_low, 0)
    return {
        "qp": Param(int, -1, f"constant quantiser {max(low, 1) if crf_low else 0}..{top} (-1: off, crf or kbps rules)",
                    low=-1, high=top),
        "crf": Param(int, crf_default, f"constant rate factor {low}..{top} (the default rate control)",
                     low=low, high=top),
        "kbps": Param(int, 0, f"target bitrate in kbit/s {kbps_mode} (0: off)", low=0, high=1_000_000),
        "gop": Param(int, 250, "key-frame interval in frames (1: all intra)", low=1, high=100_000),
        "fps": Param(float, 10.0, "frame rate the encoder is told (time base, kbps)", low=0.001, high=1000),
        "preset": preset,
    }


@register_codec
class H264Codec(_VideoCodec):
    name = "h264"
    summary = "H.264/AVC anchor: libx264 via PyAV, low delay (zerolatency, no B frames), decoded by libavcodec"
    quality_param = "qp"
    encoder_name = "libx264"
    decoder_name = "h264"
    params = _rate_params(51, 0, 23, "with a 1 s VBV buffer",
                          Param(str, "medium", "x264 speed preset", choices=X26X_PRESETS))

    def library_version(self) -> str:
        return f"x264 {x264_version()}"

    def low_delay_options(self):
        return {"preset": self.config["preset"], "tune": "zerolatency", "bframes": "0", "forced-idr": "1",
                "threads": "1"}

    def packet_bytes(self, packets) -> bytes:
        return _strip_x264_sei(super().packet_bytes(packets))

    def scan(self, data, state):
        return scan_h264(data)

    def decoder_options(self):
        return {"threads": "1", "thread_type": "slice"}


@register_codec
class HevcCodec(_VideoCodec):
    name = "hevc"
    summary = "H.265/HEVC anchor: libx265 via PyAV, low delay (zerolatency, no B frames), decoded by libavcodec"
    quality_param = "qp"
    encoder_name = "libx265"
    decoder_name = "hevc"
    params = _rate_params(51, 0, 28, "with a 1 s VBV buffer",
                          Param(str, "medium", "x265 speed preset", choices=X26X_PRESETS))

    def library_version(self) -> str:
        return f"x265 {library_version('x265', 'x265_version_str', False)}"

    def low_delay_options(self):
        return {"preset": self.config["preset"], "tune": "zerolatency", "forced-idr": "1",
                "x265-params": "bframes=0:rc-lookahead=0:open-gop=0:info=0:log-level=error"}

    def scan(self, data, state):
        return scan_hevc(data)

    def decoder_options(self):
        return {"thread_type": "slice"}


@register_codec
class Av1Codec(_VideoCodec):
    name = "av1"
    summary = "AV1 anchor: SVT-AV1 via PyAV, low-delay prediction structure, decoded by dav1d"
    quality_param = "crf"
    encoder_name = "libsvtav1"
    decoder_name = "libdav1d"
    params = _rate_params(63, 1, 35, "CBR with a 1 s buffer",
                          Param(int, 8, "SVT-AV1 speed preset 0 (slowest) .. 13", low=0, high=13))

    def __init__(self, device: str = "cpu", **params: Any) -> None:
        super().__init__(device=device, **params)
        if self.config["qp"] == 0:
            raise UsageError("av1: qp=0 is not an SVT-AV1 quantiser (1..63, or -1 for off)")

    def library_version(self) -> str:
        return f"SVT-AV1 {library_version('SvtAv1Enc', 'svt_av1_get_version', True)}"

    def decoder_version(self) -> str:
        return f" (dav1d {library_version('dav1d', 'dav1d_version', True)})"

    def low_delay_options(self):
        return {"preset": str(self.config["preset"]), "svtav1-params": "pred-struct=1:lookahead=0",
                "flags": "+cgop"}

    def open_encoder_context(self, width, height, fps):
        os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its banner to stderr unless told otherwise
        return super().open_encoder_context(width, height, fps)

    def scan(self, data, state):
        key, state["reduced_still"] = scan_av1(data, state.get("reduced_still", False))
        return key

    def decoder_options(self):
        return {"max_frame_delay": "1"}
