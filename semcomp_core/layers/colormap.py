"""Colour-map layer: a tiny colour thumbnail, DCT-quantised and range coded.

The encoder takes a small RGB thumbnail (e.g. 16x12, made with
:func:`semcomp_core.layers.scale.thumbnail`), converts it to YCbCr
(BT.601, full range), applies an orthonormal 2-D DCT-II per channel and
quantises coefficient (u, v) of channel c with step

    step = base * (1 + 0.35 * (u + v)) * (1.6 if c is chroma else 1)
    base = 1.5 * 1.12 ** qi          (qi = quantiser index, 0..63)

Coefficients are coded channel by channel in zig-zag order with quantised
Laplace models whose scale adapts per (channel, frequency band u+v) from the
magnitudes already coded, starting from fixed initial values. The DC of Y is
coded with a wide Laplace centred on 128's quantised value.

Every quantised coefficient lies in ``[-R, R]`` with
``R = max(4096, ceil(255 * sqrt(h * w) / step) + 1)``: an orthonormal DCT
coefficient never exceeds ``sqrt(h * w)`` times the largest sample magnitude
(255), so no coefficient of any thumbnail (up to 64x64) at any quantiser is
clipped -- a white 64x64 thumbnail at quantiser 0 decodes to white.

Payload::

    byte 0   thumbnail width  tw (1..64)
    byte 1   thumbnail height th (1..64)
    byte 2   quantiser index qi (0..63)
    rest     range-coded coefficients (constriction, trailing zero bytes trimmed)
"""
from __future__ import annotations

import functools

import numpy as np

from ..bitstream import LayerId
from ..errors import BitstreamError
from .base import Layer, register_layer
from .entropy import RangeEncoder, constriction, new_decoder, words_to_bytes

MAX_THUMB_SIDE = 64
MAX_QI = 63
_COEF_RANGE = 4096  # the smallest range; larger where a coefficient can exceed it (see _coef_range)
_CHROMA_FACTOR = 1.6
_SLOPE = 0.35

_RGB2YCC = np.array([[0.299, 0.587, 0.114],
                     [-0.168736, -0.331264, 0.5],
                     [0.5, -0.418688, -0.081312]])
_YCC2RGB = np.linalg.inv(_RGB2YCC)


@functools.lru_cache(maxsize=64)
def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m


@functools.lru_cache(maxsize=64)
def _zigzag(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    order = sorted(((u + v, u if (u + v) % 2 else v, u, v) for u in range(h) for v in range(w)))
    us = np.array([o[2] for o in order])
    vs = np.array([o[3] for o in order])
    return us, vs


def _steps(h: int, w: int, qi: int) -> np.ndarray:
    base = 1.5 * 1.12 ** qi
    u = np.arange(h)[:, None]
    v = np.arange(w)[None, :]
    luma = base * (1.0 + _SLOPE * (u + v))
    return np.stack([luma, luma * _CHROMA_FACTOR, luma * _CHROMA_FACTOR])


def _coef_range(h: int, w: int, step: float) -> int:
    """Largest quantised magnitude any coefficient of an (h, w) thumbnail can take at ``step``."""
    return max(_COEF_RANGE, int(np.ceil(255.0 * np.sqrt(h * w) / step)) + 1)


def _initial_scale(channel: int, band: int, step: float) -> float:
    amplitude = (60.0 if channel == 0 else 25.0) * 0.7 ** band
    return max(amplitude / step, 0.15)


def _models(h: int, w: int, qi: int):
    """Yield (channel, u, v, step) in coding order."""
    steps = _steps(h, w, qi)
    us, vs = _zigzag(h, w)
    for c in range(3):
        for u, v in zip(us.tolist(), vs.tolist()):
            yield c, u, v, float(steps[c, u, v])


class _AdaptiveScales:
    """Per-(channel, band) running mean of |coefficient| used as the Laplace scale."""

    def __init__(self, h: int, w: int, qi: int) -> None:
        self.qi = qi
        self.h, self.w = h, w
        self.ranges: dict[float, int] = {}
        self.sums: dict[tuple[int, int], float] = {}
        self.counts: dict[tuple[int, int], float] = {}

    def scale(self, c: int, band: int, step: float) -> float:
        key = (c, band)
        if key not in self.sums:
            self.sums[key] = _initial_scale(c, band, step)
            self.counts[key] = 1.0
        return max(self.sums[key] / self.counts[key], 0.12)

    def model(self, c: int, u: int, v: int, step: float, mean: float):
        if c == 0 and u == 0 and v == 0:
            scale = max(abs(mean) / 2.0, 4.0)  # luma DC: wide, centred on mid-grey
        else:
            scale = self.scale(c, u + v, step)
        r = self.ranges.setdefault(step, _coef_range(self.h, self.w, step))
        return constriction.stream.model.QuantizedLaplace(-r, r, mean, scale)

    def update(self, c: int, band: int, value: int) -> None:
        key = (c, band)
        if key in self.sums:  # the luma DC has its own fixed model
            self.sums[key] += abs(value)
            self.counts[key] += 1.0


def _mean(c: int, u: int, v: int, step: float, h: int, w: int) -> float:
    if c == 0 and u == 0 and v == 0:
        return 128.0 * np.sqrt(h * w) / step  # mid-grey DC
    return 0.0


@register_layer
class ColorMapLayer(Layer):
    layer_id = LayerId.COLORMAP
    name = "colormap"

    def __init__(self, qi: int = 12) -> None:
        if not 0 <= qi <= MAX_QI:
            raise ValueError(f"quantiser index must be 0..{MAX_QI}, got {qi}")
        self.qi = qi

    def encode(self, thumb: np.ndarray) -> bytes:
        return self.encode_quantised(quantise(thumb, self.qi), self.qi)

    @staticmethod
    def encode_quantised(q: np.ndarray, qi: int) -> bytes:
        """The payload of already quantised coefficients ``q`` (3, th, tw) (see :func:`quantise`)."""
        _, h, w = q.shape
        scales = _AdaptiveScales(h, w, qi)
        enc = RangeEncoder()
        for c, u, v, step in _models(h, w, qi):
            mean = _mean(c, u, v, step, h, w)
            model = scales.model(c, u, v, step, mean)
            enc.encode(int(q[c, u, v]), model)
            scales.update(c, u + v, int(q[c, u, v]))
        return bytes([w, h, qi]) + words_to_bytes(enc)

    @classmethod
    def describe(cls, payload: bytes) -> dict:
        if len(payload) < 3:
            raise BitstreamError("truncated colour-map layer header")
        return {"thumbnail": f"{payload[0]}x{payload[1]}", "quantiser": payload[2]}

    def decode(self, payload: bytes) -> np.ndarray:
        q, qi = self.decode_quantised(payload)
        return dequantise(q, qi)

    @staticmethod
    def decode_quantised(payload: bytes) -> tuple[np.ndarray, int]:
        """The quantised coefficients (3, th, tw) and quantiser index of a payload."""
        payload = bytes(payload)
        if len(payload) < 3:
            raise BitstreamError("truncated colour-map layer header")
        w, h, qi = payload[0], payload[1], payload[2]
        if not (1 <= h <= MAX_THUMB_SIDE and 1 <= w <= MAX_THUMB_SIDE):
            raise BitstreamError(f"absurd colour-map size {w}x{h}")
        if qi > MAX_QI:
            raise BitstreamError(f"colour-map quantiser index {qi} > {MAX_QI}")
        q = np.zeros((3, h, w), dtype=np.int64)
        try:
            dec = new_decoder(payload[3:])
            scales = _AdaptiveScales(h, w, qi)
            for c, u, v, step in _models(h, w, qi):
                mean = _mean(c, u, v, step, h, w)
                model = scales.model(c, u, v, step, mean)
                q[c, u, v] = int(dec.decode(model))
                scales.update(c, u + v, int(q[c, u, v]))
        except BitstreamError:
            raise
        except Exception as exc:
            raise BitstreamError(f"corrupt colour-map layer: {exc}") from None
        return q, qi


def check_thumbnail(thumb: np.ndarray) -> np.ndarray:
    thumb = np.asarray(thumb)
    if thumb.ndim != 3 or thumb.shape[2] != 3 or thumb.dtype != np.uint8:
        raise ValueError(f"thumbnail must be (h, w, 3) uint8, got {thumb.shape} {thumb.dtype}")
    h, w = thumb.shape[:2]
    if not (1 <= h <= MAX_THUMB_SIDE and 1 <= w <= MAX_THUMB_SIDE):
        raise ValueError(f"thumbnail {w}x{h} outside 1..{MAX_THUMB_SIDE} a side")
    return thumb


def coefficients(thumb: np.ndarray) -> np.ndarray:
    """The orthonormal 2-D DCT (3, h, w) of a thumbnail's YCbCr channels (unquantised)."""
    thumb = check_thumbnail(thumb)
    h, w = thumb.shape[:2]
    ycc = thumb.astype(np.float64) @ _RGB2YCC.T
    return np.stack([_dct_matrix(h) @ ycc[:, :, c] @ _dct_matrix(w).T for c in range(3)])


def quantise(thumb: np.ndarray, qi: int) -> np.ndarray:
    """Quantised DCT coefficients (3, h, w) of a thumbnail at quantiser ``qi`` (what the layer codes)."""
    coefs = coefficients(thumb)
    _, h, w = coefs.shape
    steps = _steps(h, w, qi)
    q = np.rint(coefs / steps).astype(np.int64)
    for c in range(3):  # per-step range (see _coef_range)
        for u in range(h):
            for v in range(w):
                r = _coef_range(h, w, float(steps[c, u, v]))
                q[c, u, v] = min(max(q[c, u, v], -r), r)
    return q


def dequantise(q: np.ndarray, qi: int) -> np.ndarray:
    """The RGB thumbnail (h, w, 3) uint8 of quantised coefficients."""
    _, h, w = q.shape
    coefs = q * _steps(h, w, qi)
    ycc = np.stack([_dct_matrix(h).T @ coefs[c] @ _dct_matrix(w) for c in range(3)], axis=-1)
    rgb = ycc @ _YCC2RGB.T
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8)
