"""Inter seg-map layer: a label map coded against the reference frame's map (format version 3).

Both sides build the same *prediction* from the reference map (the last map
the receiver decoded): resampled to this frame's grid (nearest, cell centres)
when the grid changed, then shifted by the global motion ``(dy, dx)`` the
encoder chose (edge cells replicated)::

    P[y, x] = R'[clamp(y - dy), clamp(x - dx)]

Mode 0 ("copy") says the map *is* the prediction and carries nothing else.
Mode 1 codes every cell in raster order as the *rank* of its label in a
candidate list -- the predicted label P[y, x] first, then the causal
neighbours W, N, NE of the current map, then P's four neighbours, then every
other label by how often it has occurred so far -- with adaptive counts per
context. The 32 contexts are (P's 3x3 neighbourhood uniform?, did the W cell
change from its prediction?, did the N cell?, W == P[y, x]?, N == P[y, x]?).
Missing neighbours at the borders take the predicted label. Probabilities go
to constriction's range coder.

Payload::

    byte 0   mode: 0 = copy the prediction, 1 = coded
    byte 1   alphabet size K minus 1
    varint   map height h (1..16384)
    varint   map width  w (1..16384)
    byte     dy, signed (two's complement), -16..16 cells
    byte     dx, signed, -16..16 cells
    rest     mode 1 only: range-coded ranks (constriction words, little-endian,
             trailing zero bytes trimmed); mode 0: nothing
"""
from __future__ import annotations

import numpy as np

from ..bitstream import LayerId, decode_varint, encode_varint
from ..errors import BitstreamError
from .base import Layer, register_layer
from .entropy import Categorical, RangeEncoder, new_decoder, words_to_bytes
from .segmap import MAX_MAP_SIDE

MAX_SHIFT = 16
N_CONTEXTS = 32
#: initial pseudo-counts per rank: the predicted label is by far the most likely
_INIT = (2.0, 0.4, 0.2, 0.1, 0.08, 0.05, 0.04)
COPY, CODED = 0, 1


def predict(reference: np.ndarray, h: int, w: int, dy: int = 0, dx: int = 0) -> np.ndarray:
    """The prediction of an (h, w) map from ``reference``: resampled (nearest), then shifted by (dy, dx)."""
    hr, wr = reference.shape
    ys = np.minimum(((2 * np.arange(h) + 1) * hr) // (2 * h), hr - 1)
    xs = np.minimum(((2 * np.arange(w) + 1) * wr) // (2 * w), wr - 1)
    ys = ys[np.clip(np.arange(h) - dy, 0, h - 1)]
    xs = xs[np.clip(np.arange(w) - dx, 0, w - 1)]
    return reference[ys[:, None], xs[None, :]]


def estimate_shift(labels: np.ndarray, reference: np.ndarray, radius: int = 2) -> tuple[int, int]:
    """The global shift (dy, dx) within ``radius`` cells whose prediction matches ``labels`` best
    (ties: the smallest shift)."""
    h, w = labels.shape
    best, best_cost = (0, 0), None
    shifts = sorted(((dy, dx) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)),
                    key=lambda s: (abs(s[0]) + abs(s[1]), s))
    for dy, dx in shifts:
        cost = int(np.count_nonzero(predict(reference, h, w, dy, dx) != labels))
        if best_cost is None or cost < best_cost:
            best, best_cost = (dy, dx), cost
    return best


def _uniform(pred: np.ndarray) -> np.ndarray:
    """True where the 3x3 neighbourhood of the prediction holds one label."""
    p = np.pad(pred, 1, mode="edge")
    h, w = pred.shape
    same = np.ones((h, w), dtype=bool)
    for oy in range(3):
        for ox in range(3):
            same &= p[oy:oy + h, ox:ox + w] == pred
    return same


def _init_counts(k: int) -> np.ndarray:
    row = np.full(k, _INIT[-1] / 2)
    row[:min(k, len(_INIT))] = _INIT[:k]
    return np.tile(row, (N_CONTEXTS, 1))


class _Model:
    """Context and candidate list of every cell, shared by encoder and decoder."""

    def __init__(self, pred: np.ndarray, k: int) -> None:
        self.h, self.w = pred.shape
        self.k = k
        self.pred = pred.astype(np.int64).reshape(-1).tolist()
        self.uniform = _uniform(pred).reshape(-1).tolist()
        self.counts = _init_counts(k)
        self.freq = [0] * k

    def cell(self, cur: list[int], y: int, x: int) -> tuple[int, list[int]]:
        w, p = self.w, self.pred
        i = y * w + x
        r = p[i]
        if x > 0:
            wv = cur[i - 1]
            cw = wv != p[i - 1]
        else:
            wv, cw = r, False
        if y > 0:
            nv = cur[i - w]
            cn = nv != p[i - w]
            ne = cur[i - w + 1] if x < w - 1 else nv
        else:
            nv, cn, ne = r, False, r
        ctx = (16 if self.uniform[i] else 0) + (8 if cw else 0) + (4 if cn else 0) + (2 if wv == r else 0) \
            + (1 if nv == r else 0)
        cands = [r]
        for v in (wv, nv, ne, p[i - w] if y > 0 else r, p[i + w] if y < self.h - 1 else r,
                  p[i - 1] if x > 0 else r, p[i + 1] if x < w - 1 else r):
            if v not in cands:
                cands.append(v)
        return ctx, cands

    def full_order(self, cands: list[int]) -> list[int]:
        rest = sorted((c for c in range(self.k) if c not in cands), key=lambda c: (-self.freq[c], c))
        return cands + rest


@register_layer
class SegMapInterLayer(Layer):
    layer_id = LayerId.SEGMAP_INTER
    name = "segmap-inter"

    def __init__(self, num_classes: int | None = None) -> None:
        if num_classes is not None and not 1 <= num_classes <= 256:
            raise ValueError(f"num_classes must be 1..256, got {num_classes}")
        self.num_classes = num_classes

    def encode(self, value: tuple[np.ndarray, np.ndarray, tuple[int, int]]) -> bytes:
        """``value = (labels, reference map, (dy, dx))``."""
        labels, reference, (dy, dx) = value
        labels = np.asarray(labels)
        if labels.ndim != 2 or labels.size == 0 or max(labels.shape) > MAX_MAP_SIDE:
            raise ValueError(f"label map must be a non-empty 2-D array up to {MAX_MAP_SIDE} a side, got {labels.shape}")
        if not (abs(dy) <= MAX_SHIFT and abs(dx) <= MAX_SHIFT):
            raise ValueError(f"shift ({dy}, {dx}) outside +-{MAX_SHIFT}")
        reference = np.asarray(reference)
        if min(int(labels.min()), int(reference.min())) < 0:
            raise ValueError("labels must not be negative")
        k = self.num_classes or int(max(labels.max(), reference.max())) + 1
        if int(labels.max()) >= k or int(reference.max()) >= k:
            raise ValueError(f"label outside 0..{k - 1}")
        h, w = labels.shape
        pred = predict(np.asarray(reference), h, w, dy, dx)
        mode = COPY if np.array_equal(pred, labels) else CODED
        head = bytes([mode, k - 1]) + encode_varint(h) + encode_varint(w) + bytes([dy & 0xFF, dx & 0xFF])
        if mode == COPY:
            return head
        model = _Model(pred, k)
        cur = labels.astype(np.int64).reshape(-1).tolist()
        ranks = np.empty(h * w, dtype=np.int32)
        probs = np.empty((h * w, k), dtype=np.float64)
        i = 0
        for y in range(h):
            for x in range(w):
                ctx, cands = model.cell(cur, y, x)
                s = cur[i]
                r = cands.index(s) if s in cands else model.full_order(cands).index(s)
                row = model.counts[ctx]
                probs[i] = row
                row[r] += 1.0
                ranks[i] = r
                model.freq[s] += 1
                i += 1
        enc = RangeEncoder()
        enc.encode(ranks, Categorical(perfect=False), probs)
        return head + words_to_bytes(enc)

    @staticmethod
    def peek(payload: bytes) -> tuple[int, int, int, int, int, int]:
        """(mode, K, h, w, dy, dx) from the payload header; BitstreamError if malformed."""
        return SegMapInterLayer._header(payload)[:6]

    @staticmethod
    def _header(payload: bytes) -> tuple[int, int, int, int, int, int, int]:
        """(mode, K, h, w, dy, dx, header length)."""
        payload = bytes(payload[:10])
        if len(payload) < 6:
            raise BitstreamError("truncated inter seg-map layer header")
        mode, k = payload[0], payload[1] + 1
        if mode not in (COPY, CODED):
            raise BitstreamError(f"inter seg-map mode {mode} unknown")
        h, pos = decode_varint(payload, 2, "inter seg-map height")
        w, pos = decode_varint(payload, pos, "inter seg-map width")
        if pos + 2 > len(payload):
            raise BitstreamError("truncated inter seg-map layer header")
        dy, dx = (int(np.int8(np.uint8(b))) for b in payload[pos:pos + 2])
        if abs(dy) > MAX_SHIFT or abs(dx) > MAX_SHIFT:
            raise BitstreamError(f"inter seg-map shift ({dy}, {dx}) outside +-{MAX_SHIFT}")
        return mode, k, h, w, dy, dx, pos + 2

    @classmethod
    def describe(cls, payload: bytes) -> dict:
        mode, k, h, w, dy, dx = cls.peek(payload)
        return {"mode": "copy" if mode == COPY else "coded", "map": f"{w}x{h}", "classes": k, "shift": f"{dy},{dx}"}

    def decode(self, payload: bytes, reference: np.ndarray | None = None,
               max_shape: tuple[int, int] | None = None) -> np.ndarray:
        """Decode against ``reference`` (the receiver's last map); ``max_shape`` bounds (h, w) first."""
        payload = bytes(payload)
        mode, k, h, w, dy, dx, pos = self._header(payload)
        limit = max_shape or (MAX_MAP_SIDE, MAX_MAP_SIDE)
        if not (1 <= h <= limit[0] and 1 <= w <= limit[1]):
            raise BitstreamError(f"absurd inter seg-map size {h}x{w} (at most {limit[0]}x{limit[1]})")
        if reference is None:
            raise BitstreamError("inter seg-map layer without a reference map")
        if int(reference.max()) >= k or int(reference.min()) < 0:
            raise BitstreamError(f"reference map label {int(reference.max())} outside the layer's {k} classes")
        pred = predict(reference, h, w, dy, dx)
        if mode == COPY:
            if pos != len(payload):
                raise BitstreamError("inter seg-map copy mode carries extra bytes")
            return pred.astype(np.uint8)
        try:
            dec = new_decoder(payload[pos:])
            model = _Model(pred, k)
            cur = [0] * (h * w)
            i = 0
            for y in range(h):
                for x in range(w):
                    ctx, cands = model.cell(cur, y, x)
                    row = model.counts[ctx]
                    r = int(dec.decode(Categorical(row, perfect=False)))
                    row[r] += 1.0
                    s = cands[r] if r < len(cands) else model.full_order(cands)[r]
                    cur[i] = s
                    model.freq[s] += 1
                    i += 1
        except BitstreamError:
            raise
        except Exception as exc:  # constriction errors on corrupt data
            raise BitstreamError(f"corrupt inter seg-map layer: {exc}") from None
        return np.asarray(cur, dtype=np.uint8).reshape(h, w)
