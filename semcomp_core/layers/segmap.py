"""Segmentation-map layer: a label map coded losslessly with a context model.

Model
-----
Pixels are visited in raster order. For each pixel the causal neighbours
W (left), N (up), NW, NE, WW and NN give

* a *candidate list*: the distinct labels among (W, N, NE, NW) in that order,
  followed by every other label ordered by how often it has occurred so far
  in this map (ties by label value);
* a *context*: the equality pattern of (W, N, NW, NE) (one of the 15 set
  partitions of four items) plus two flags, WW == W and NN == N
  (60 contexts, and one for the first pixel).

The coded symbol is the *rank* of the true label in the candidate list. Rank
statistics do not depend on which classes a dataset has, so one prior serves
every label set. Each context keeps adaptive counts over ranks, initialised
from a prior learned on training label maps (``data/priors/segmap_ranks_<name>.json``,
identified by a fixed prior id in the payload) and incremented by one per
coded symbol. Probabilities go to constriction's range coder.

Missing neighbours at the borders are replaced: on the first row N, NW, NE
take W's value; on the first column W and NW take N's value; on the last
column NE takes N's value.

Payload
-------
::

    byte 0     prior id (0 = no prior, uniform start; 1 = camvid-v1)
    byte 1     alphabet size K minus 1 (labels are 0..K-1, K <= 256)
    varint     map height h (1..16384)
    varint     map width  w (1..16384)
    rest       range-coded ranks (constriction RangeEncoder words,
               little-endian, trailing zero bytes trimmed)
"""
from __future__ import annotations

import functools
import json

import numpy as np

from ..bitstream import LayerId, decode_varint, encode_varint
from ..errors import BitstreamError
from ..paths import data_path
from .base import Layer, register_layer
from .entropy import Categorical, RangeEncoder, new_decoder, words_to_bytes
from .scale import check_map

PRIOR_IDS = {0: None, 1: "camvid-v1"}
DEFAULT_PRIOR_ID = 1
MAX_MAP_SIDE = 16384
N_CONTEXTS = 61
START_CONTEXT = 60
_UNIFORM_INIT = 0.4


def _partition_table() -> dict[tuple[int, int, int, int], int]:
    table: dict[tuple[int, int, int, int], int] = {}
    import itertools
    for combo in itertools.product(range(4), repeat=4):
        seen: dict[int, int] = {}
        canon = tuple(seen.setdefault(v, len(seen)) for v in combo)
        if canon not in table:
            table[canon] = len(table)
    assert len(table) == 15
    return table


_PARTITIONS = _partition_table()


def _context(m: list[int], y: int, x: int, w: int) -> tuple[int, tuple[int, ...]]:
    """(context index, candidate labels) for pixel (y, x) of the flat map ``m``."""
    i = y * w + x
    if y == 0 and x == 0:
        return START_CONTEXT, ()
    if y == 0:
        wv = m[i - 1]
        nv = nw = ne = wv
        nn = nv
    else:
        nv = m[i - w]
        ne = m[i - w + 1] if x < w - 1 else nv
        nn = m[i - 2 * w] if y > 1 else nv
        if x == 0:
            wv = nw = nv
        else:
            wv = m[i - 1]
            nw = m[i - w - 1]
    ww = m[i - 2] if x > 1 else wv
    # canonical set partition of (W, N, NW, NE)
    seen: dict[int, int] = {wv: 0}
    p1 = seen.setdefault(nv, len(seen))
    p2 = seen.setdefault(nw, len(seen))
    p3 = seen.setdefault(ne, len(seen))
    canon = (0, p1, p2, p3)
    ctx = _PARTITIONS[canon] * 4 + (2 if ww == wv else 0) + (1 if nn == nv else 0)
    cands = [wv]
    for v in (nv, ne, nw):
        if v not in cands:
            cands.append(v)
    return ctx, tuple(cands)


def _rank_order(cands: tuple[int, ...], freq: list[int], k: int) -> list[int]:
    rest = sorted((c for c in range(k) if c not in cands), key=lambda c: (-freq[c], c))
    return list(cands) + rest


@functools.lru_cache(maxsize=8)
def load_prior(prior_id: int) -> np.ndarray | None:
    """Prior pseudo-counts, shape (N_CONTEXTS, R), or None for prior id 0."""
    if prior_id not in PRIOR_IDS:
        raise BitstreamError(f"unknown seg-map prior id {prior_id}")
    name = PRIOR_IDS[prior_id]
    if name is None:
        return None
    text = data_path("priors", f"segmap_ranks_{name}.json").read_text()
    doc = json.loads(text)
    table = np.asarray(doc["probabilities"], dtype=np.float64) * float(doc["strength"])
    if table.shape[0] != N_CONTEXTS:
        raise RuntimeError(f"prior {name} has {table.shape[0]} contexts, expected {N_CONTEXTS}")
    return table


def _initial_counts(prior_id: int, k: int) -> np.ndarray:
    prior = load_prior(prior_id)
    if prior is None:
        return np.full((N_CONTEXTS, k), _UNIFORM_INIT)
    r = prior.shape[1]
    if k <= r:
        return prior[:, :k].copy()
    tail = np.repeat(prior[:, -1:], k - r, axis=1)
    return np.concatenate([prior, tail], axis=1)


def iter_ranks(m: np.ndarray, k: int):
    """Yield (context, rank) for every pixel of ``m`` in raster order (for fitting priors)."""
    h, w = m.shape
    flat = m.reshape(-1).tolist()
    freq = [0] * k
    for y in range(h):
        for x in range(w):
            ctx, cands = _context(flat, y, x, w)
            s = flat[y * w + x]
            if s in cands:
                r = cands.index(s)
            else:
                r = _rank_order(cands, freq, k).index(s)
            freq[s] += 1
            yield ctx, r


@register_layer
class SegMapLayer(Layer):
    """Lossless label-map layer (see module docstring)."""

    layer_id = LayerId.SEGMAP
    name = "segmap"

    def __init__(self, num_classes: int | None = None, prior_id: int = DEFAULT_PRIOR_ID) -> None:
        if num_classes is not None and not 1 <= num_classes <= 256:
            raise ValueError(f"num_classes must be 1..256, got {num_classes}")
        if prior_id not in PRIOR_IDS:
            raise ValueError(f"unknown prior id {prior_id}")
        self.num_classes = num_classes
        self.prior_id = prior_id

    def encode(self, labels: np.ndarray) -> bytes:
        labels = check_map(labels, MAX_MAP_SIDE, "label map")
        h, w = labels.shape
        if labels.min() < 0 or labels.max() > 255:
            raise ValueError("labels must lie in 0..255")
        k = self.num_classes or int(labels.max()) + 1
        if int(labels.max()) >= k:
            raise ValueError(f"label {int(labels.max())} outside 0..{k - 1}")
        head = bytes([self.prior_id, k - 1]) + encode_varint(h) + encode_varint(w)
        if k == 1:
            return head
        counts = _initial_counts(self.prior_id, k)
        flat = labels.astype(np.int64).reshape(-1).tolist()
        freq = [0] * k
        ranks = np.empty(h * w, dtype=np.int32)
        probs = np.empty((h * w, k), dtype=np.float64)
        i = 0
        for y in range(h):
            for x in range(w):
                ctx, cands = _context(flat, y, x, w)
                s = flat[i]
                r = cands.index(s) if s in cands else _rank_order(cands, freq, k).index(s)
                row = counts[ctx]
                probs[i] = row
                row[r] += 1.0
                ranks[i] = r
                freq[s] += 1
                i += 1
        enc = RangeEncoder()
        enc.encode(ranks, Categorical(perfect=False), probs)
        return head + words_to_bytes(enc)

    @classmethod
    def describe(cls, payload: bytes) -> dict:
        h, w = cls.peek_shape(payload)
        prior = PRIOR_IDS.get(payload[0], f"unknown ({payload[0]})")
        return {"map": f"{w}x{h}", "classes": payload[1] + 1, "prior": prior or "none"}

    @staticmethod
    def peek_shape(payload: bytes) -> tuple[int, int]:
        """(h, w) from the payload header, without decoding anything; BitstreamError if malformed."""
        payload = bytes(payload[:8])
        if len(payload) < 4:
            raise BitstreamError("truncated seg-map layer header")
        h, pos = decode_varint(payload, 2, "seg-map height")
        w, _ = decode_varint(payload, pos, "seg-map width")
        return h, w

    def decode(self, payload: bytes, max_shape: tuple[int, int] | None = None) -> np.ndarray:
        """Decode a label map; ``max_shape`` bounds (h, w) before anything is allocated."""
        payload = bytes(payload)
        if len(payload) < 4:
            raise BitstreamError("truncated seg-map layer header")
        prior_id, k = payload[0], payload[1] + 1
        if prior_id not in PRIOR_IDS:
            raise BitstreamError(f"unknown seg-map prior id {prior_id}")
        h, pos = decode_varint(payload, 2, "seg-map height")
        w, pos = decode_varint(payload, pos, "seg-map width")
        limit = max_shape or (MAX_MAP_SIDE, MAX_MAP_SIDE)
        if not (1 <= h <= limit[0] and 1 <= w <= limit[1]):
            raise BitstreamError(f"absurd seg-map size {h}x{w} (at most {limit[0]}x{limit[1]})")
        if k == 1:
            if pos != len(payload):
                raise BitstreamError("seg-map layer with one label carries extra bytes")
            return np.zeros((h, w), dtype=np.uint8)
        try:
            dec = new_decoder(payload[pos:])
            counts = _initial_counts(prior_id, k)
            flat = [0] * (h * w)
            freq = [0] * k
            i = 0
            for y in range(h):
                for x in range(w):
                    ctx, cands = _context(flat, y, x, w)
                    row = counts[ctx]
                    r = int(dec.decode(Categorical(row, perfect=False)))
                    row[r] += 1.0
                    s = cands[r] if r < len(cands) else _rank_order(cands, freq, k)[r]
                    flat[i] = s
                    freq[s] += 1
                    i += 1
        except BitstreamError:
            raise
        except Exception as exc:  # constriction errors on corrupt data
            raise BitstreamError(f"corrupt seg-map layer: {exc}") from None
        return np.asarray(flat, dtype=np.uint8).reshape(h, w)
