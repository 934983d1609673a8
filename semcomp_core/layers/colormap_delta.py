"""Delta colour-map layer: the colour thumbnail coded against the reference's (format version 3).

In an inter frame the colour map is coded as the difference of its quantised
DCT coefficients (:func:`semcomp_core.layers.colormap.quantise`) to the
reference frame's, at the same thumbnail size and quantiser: ``d = q - q_ref``
per coefficient, in the colour-map layer's order (channel by channel, zig-zag).
Per channel, the number ``n`` of coefficients up to the last non-zero
difference comes first (a quantised Laplace on 0..h*w, scale 3), then the
first ``n`` differences with quantised Laplace models centred on 0 whose scale
adapts per (channel, frequency band) from the differences already coded
(starting at 0.5); the rest are 0 and cost nothing. An inter frame without any
colour-map layer keeps the reference's thumbnail unchanged.

The encoder chooses ``q`` with a dead zone around the reference
(:func:`delta_quantise`): a coefficient moves only when it drifted at least
``deadzone + 0.5`` steps away, so sensor noise and slow drifts do not make the
colours flicker or cost bytes every frame.

Payload::

    byte 0   thumbnail width  (must equal the reference's)
    byte 1   thumbnail height (must equal the reference's)
    byte 2   quantiser index  (must equal the reference's)
    rest     range-coded differences (constriction words, trailing zero bytes trimmed)
"""
from __future__ import annotations

import numpy as np

from ..bitstream import LayerId
from ..errors import BitstreamError
from .base import Layer, register_layer
from .colormap import _coef_range, _models, _steps, coefficients
from .entropy import RangeEncoder, constriction, new_decoder, words_to_bytes

_INITIAL_SCALE = 0.5


def delta_quantise(thumb: np.ndarray, q_ref: np.ndarray, qi: int, deadzone: float = 0.25) -> np.ndarray:
    """Quantised coefficients for ``thumb`` that stay at ``q_ref`` unless they moved by at least
    ``0.5 + deadzone`` steps (``deadzone=0``: plain rounding, as the intra layer quantises)."""
    coefs = coefficients(thumb)
    _, h, w = coefs.shape
    x = coefs / _steps(h, w, qi) - q_ref
    d = np.sign(x) * np.floor(np.maximum(np.abs(x) + 0.5 - deadzone, 0.0))
    return q_ref + d.astype(np.int64)


def _count_model(per_channel: int):
    return constriction.stream.model.QuantizedLaplace(0, per_channel, 0.0, 3.0)


class _Scales:
    def __init__(self) -> None:
        self.sums: dict[tuple[int, int], float] = {}
        self.counts: dict[tuple[int, int], float] = {}

    def model(self, c: int, band: int, r: int):
        key = (c, band)
        scale = max(self.sums.get(key, _INITIAL_SCALE) / self.counts.get(key, 1.0), 0.1)
        return constriction.stream.model.QuantizedLaplace(-2 * r, 2 * r, 0.0, scale)

    def update(self, c: int, band: int, d: int) -> None:
        key = (c, band)
        self.sums[key] = self.sums.get(key, _INITIAL_SCALE) + abs(d)
        self.counts[key] = self.counts.get(key, 1.0) + 1.0


@register_layer
class ColorMapDeltaLayer(Layer):
    layer_id = LayerId.COLORMAP_DELTA
    name = "colormap-delta"

    def encode(self, value: tuple[np.ndarray, np.ndarray, int]) -> bytes:
        """``value = (q, q_ref, qi)``: quantised coefficients of this frame and of the reference."""
        q, q_ref, qi = value
        if q.shape != q_ref.shape or q.ndim != 3 or q.shape[0] != 3:
            raise ValueError(f"coefficient arrays {q.shape} and {q_ref.shape} differ or are not (3, h, w)")
        _, h, w = q.shape
        scales = _Scales()
        enc = RangeEncoder()
        order = list(_models(h, w, qi))
        per = h * w
        for c in range(3):
            coded = order[c * per:(c + 1) * per]
            nonzero = [i for i, (_, u, v, _) in enumerate(coded) if q[c, u, v] != q_ref[c, u, v]]
            n = nonzero[-1] + 1 if nonzero else 0
            enc.encode(n, _count_model(per))
            for _, u, v, step in coded[:n]:
                r = _coef_range(h, w, step)
                d = int(q[c, u, v] - q_ref[c, u, v])
                if abs(d) > 2 * r:
                    raise ValueError(f"coefficient difference {d} outside +-{2 * r}")
                enc.encode(d, scales.model(c, u + v, r))
                scales.update(c, u + v, d)
        return bytes([w, h, qi]) + words_to_bytes(enc)

    @classmethod
    def describe(cls, payload: bytes) -> dict:
        if len(payload) < 3:
            raise BitstreamError("truncated delta colour-map layer header")
        return {"thumbnail": f"{payload[0]}x{payload[1]}", "quantiser": payload[2]}

    def decode(self, payload: bytes, q_ref: np.ndarray | None = None, qi_ref: int | None = None) -> np.ndarray:
        """The quantised coefficients (3, h, w) of this frame, from the reference's ``q_ref`` at ``qi_ref``."""
        payload = bytes(payload)
        if len(payload) < 3:
            raise BitstreamError("truncated delta colour-map layer header")
        if q_ref is None:
            raise BitstreamError("delta colour-map layer without a reference colour map")
        w, h, qi = payload[0], payload[1], payload[2]
        if (h, w, qi) != (q_ref.shape[1], q_ref.shape[2], qi_ref):
            raise BitstreamError(f"delta colour map {w}x{h} at quantiser {qi} does not match the reference's "
                                 f"{q_ref.shape[2]}x{q_ref.shape[1]} at {qi_ref}")
        q = q_ref.copy()
        try:
            dec = new_decoder(payload[3:])
            scales = _Scales()
            order = list(_models(h, w, qi))
            per = h * w
            for c in range(3):
                n = int(dec.decode(_count_model(per)))
                for _, u, v, step in order[c * per:c * per + n]:
                    r = _coef_range(h, w, step)
                    d = int(dec.decode(scales.model(c, u + v, r)))
                    scales.update(c, u + v, d)
                    q[c, u, v] += d
        except BitstreamError:
            raise
        except Exception as exc:
            raise BitstreamError(f"corrupt delta colour-map layer: {exc}") from None
        return q
