"""Structure layer: a binary edge map coded losslessly with a context model.

Model (JBIG-style)
------------------
Pixels are visited in raster order. The context of a pixel is the 8-bit pattern of its causal
neighbours ``W, WW, NW, N, NE, NN, NWW, NEE`` (bit 0 .. bit 7; neighbours outside the map are 0).
Each of the 256 contexts keeps adaptive counts of zeros and ones, initialised from a prior fitted on
training edge maps (``data/priors/structure_ctx_<name>.json``, named by a fixed prior id in the
payload) and incremented by one per coded pixel. P(1) = o / (z + o) with z = prior zeros + zeros
counted so far and o = prior ones + ones counted so far (float64, in exactly this order on both
sides) goes to constriction's range coder (Bernoulli model). The seg map is not used as context:
on CamVid it made the maps larger, not smaller (more contexts to learn, no sharper predictions;
BENCHMARKS.md "Structure layer").

Payload
-------
::

    byte 0     prior id (0 = no prior: 0.4 pseudo-counts each; 1 = camvid-v1)
    varint     map height h (1..4096)
    varint     map width  w (1..4096)
    rest       range-coded pixels (constriction RangeEncoder words, little-endian,
               trailing zero bytes trimmed); empty when the map has no edge
               (an all-zero map is coded as no bytes at all)

The decoder bounds h x w by the frame it belongs to before it allocates anything.
"""
from __future__ import annotations

import functools
import json

import numpy as np

from ..bitstream import LayerId, decode_varint, encode_varint
from ..errors import BitstreamError
from ..paths import data_path
from .base import Layer, register_layer
from .entropy import RangeEncoder, constriction, new_decoder, words_to_bytes
from .scale import check_map

Bernoulli = constriction.stream.model.Bernoulli

PRIOR_IDS = {0: None, 1: "camvid-v1"}
DEFAULT_PRIOR_ID = 1
MAX_SIDE = 4096
N_CONTEXTS = 256
_UNIFORM_INIT = 0.4
#: (dy, dx) of context bits 0..7
TEMPLATE = ((0, -1), (0, -2), (-1, -1), (-1, 0), (-1, 1), (-2, 0), (-1, -2), (-1, 2))


def contexts(edges: np.ndarray) -> np.ndarray:
    """Context index of every pixel of a known map (flat, raster order): for the encoder and for fitting."""
    h, w = edges.shape
    p = np.pad(edges.astype(np.int64), ((2, 0), (2, 2)))
    ctx = np.zeros((h, w), np.int64)
    for bit, (dy, dx) in enumerate(TEMPLATE):
        ctx |= p[2 + dy:2 + dy + h, 2 + dx:2 + dx + w] << bit
    return ctx.reshape(-1)


@functools.lru_cache(maxsize=4)
def load_prior(prior_id: int) -> np.ndarray:
    """Initial (zeros, ones) pseudo-counts, shape (256, 2)."""
    if prior_id not in PRIOR_IDS:
        raise BitstreamError(f"unknown structure prior id {prior_id}")
    name = PRIOR_IDS[prior_id]
    if name is None:
        return np.full((N_CONTEXTS, 2), _UNIFORM_INIT)
    doc = json.loads(data_path("priors", f"structure_ctx_{name}.json").read_text())
    p1 = np.asarray(doc["p_one"], dtype=np.float64)
    if p1.shape != (N_CONTEXTS,):
        raise RuntimeError(f"structure prior {name} has shape {p1.shape}, expected ({N_CONTEXTS},)")
    s = float(doc["strength"])
    return np.stack([(1 - p1) * s, p1 * s], axis=1)


def _probabilities(edges: np.ndarray, prior_id: int) -> np.ndarray:
    """P(pixel = 1) of every pixel as the adaptive decoder will see it (vectorised)."""
    ctx = contexts(edges)
    bits = edges.reshape(-1).astype(np.int64)
    init = load_prior(prior_id)
    n = ctx.size
    order = np.argsort(ctx, kind="stable")
    c_sorted, b_sorted = ctx[order], bits[order]
    ones_before = np.cumsum(b_sorted) - b_sorted
    seen_before = np.arange(n)
    starts = np.r_[0, np.flatnonzero(np.diff(c_sorted)) + 1]
    group_start = np.repeat(starts, np.diff(np.r_[starts, n]))
    # ones seen earlier in the same context (the cumulative sum at a group start counts earlier groups)
    ones_before = (ones_before - ones_before[group_start]).astype(np.float64)
    zeros_before = (seen_before - group_start).astype(np.float64) - ones_before
    # the decoder computes exactly these float operations: prior + integer count, then o / (z + o)
    z = init[c_sorted, 0] + zeros_before
    o = init[c_sorted, 1] + ones_before
    p_sorted = o / (z + o)
    p = np.empty(n)
    p[order] = p_sorted
    return p


@register_layer
class StructureLayer(Layer):
    """Lossless binary edge-map layer (see module docstring)."""

    layer_id = LayerId.STRUCTURE
    name = "structure"

    def __init__(self, prior_id: int = DEFAULT_PRIOR_ID) -> None:
        if prior_id not in PRIOR_IDS:
            raise ValueError(f"unknown structure prior id {prior_id}")
        self.prior_id = prior_id

    def encode(self, edges: np.ndarray) -> bytes:
        edges = check_map(edges, MAX_SIDE, "edge map")
        h, w = edges.shape
        if edges.dtype != bool and not np.isin(edges, (0, 1)).all():
            raise ValueError("edge map values must be 0/1 or bool")
        edges = edges.astype(bool)
        head = bytes([self.prior_id]) + encode_varint(h) + encode_varint(w)
        if not edges.any():
            return head
        enc = RangeEncoder()
        enc.encode(edges.reshape(-1).astype(np.int32), Bernoulli(perfect=False),
                   _probabilities(edges, self.prior_id))
        return head + words_to_bytes(enc)

    @staticmethod
    def peek_shape(payload: bytes) -> tuple[int, int]:
        payload = bytes(payload[:7])
        if len(payload) < 3:
            raise BitstreamError("truncated structure layer header")
        h, pos = decode_varint(payload, 1, "structure height")
        w, _ = decode_varint(payload, pos, "structure width")
        return h, w

    @classmethod
    def describe(cls, payload: bytes) -> dict:
        h, w = cls.peek_shape(payload)
        prior = PRIOR_IDS.get(payload[0], f"unknown ({payload[0]})")
        return {"map": f"{w}x{h}", "prior": prior or "none"}

    def decode(self, payload: bytes, max_shape: tuple[int, int] | None = None) -> np.ndarray:
        """Decode an edge map; ``max_shape`` bounds (h, w) before anything is allocated."""
        payload = bytes(payload)
        if len(payload) < 3:
            raise BitstreamError("truncated structure layer header")
        prior_id = payload[0]
        if prior_id not in PRIOR_IDS:
            raise BitstreamError(f"unknown structure prior id {prior_id}")
        h, pos = decode_varint(payload, 1, "structure height")
        w, pos = decode_varint(payload, pos, "structure width")
        limit = max_shape or (MAX_SIDE, MAX_SIDE)
        if not (1 <= h <= min(limit[0], MAX_SIDE) and 1 <= w <= min(limit[1], MAX_SIDE)):
            raise BitstreamError(f"absurd structure map size {h}x{w} (at most {limit[0]}x{limit[1]})")
        if pos == len(payload):
            return np.zeros((h, w), dtype=bool)
        try:
            dec = new_decoder(payload[pos:])
            prior = load_prior(prior_id)
            z0, z1 = prior[:, 0].tolist(), prior[:, 1].tolist()
            n0, n1 = [0] * N_CONTEXTS, [0] * N_CONTEXTS
            stride = w + 4
            grid = [0] * ((h + 2) * stride)  # two zero rows above, two zero columns each side
            offs = [dy * stride + dx for dy, dx in TEMPLATE]
            o0, o1, o2, o3, o4, o5, o6, o7 = offs
            model = Bernoulli
            for y in range(h):
                base = (y + 2) * stride + 2
                for i in range(base, base + w):
                    c = (grid[i + o0] | grid[i + o1] << 1 | grid[i + o2] << 2 | grid[i + o3] << 3
                         | grid[i + o4] << 4 | grid[i + o5] << 5 | grid[i + o6] << 6 | grid[i + o7] << 7)
                    z, o = z0[c] + n0[c], z1[c] + n1[c]
                    if dec.decode(model(o / (z + o), perfect=False)):
                        grid[i] = 1
                        n1[c] += 1
                    else:
                        n0[c] += 1
        except BitstreamError:
            raise
        except Exception as exc:  # constriction errors on corrupt data
            raise BitstreamError(f"corrupt structure layer: {exc}") from None
        out = np.asarray(grid, dtype=bool).reshape(h + 2, stride)[2:, 2:2 + w]
        return np.ascontiguousarray(out)
