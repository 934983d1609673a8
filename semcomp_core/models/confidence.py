"""Per-pixel confidence of a segmenter, and its calibration (temperature scaling).

* :func:`confidence` -- ``(K, h, w)`` logits (numpy or torch, a leading batch axis of 1 allowed)
  -> ``(h, w)`` float32 in [0, 1], from the softmax of ``logits / temperature``:

  - ``maxprob``: p1, the probability of the arg-max class. After temperature scaling this is
    the one whose *value* estimates the probability that the label is right (what
    :func:`fit_temperature` calibrates; the ECE in ``calibration.json`` measures it);
  - ``margin``: p1 - p2 (0 for a tie between the two best classes, 1 for a certain pixel); a
    ranking score, never above ``maxprob``, so as a probability it reads low;
  - ``entropy``: 1 - H(p) / log K (1 for a certain pixel, 0 for a uniform softmax).

* :func:`fit_temperature` -- the temperature T minimising the negative log-likelihood of the
  labels under softmax(logits / T), on pixels with a valid label (``0 <= label < K``; void 255
  skipped), from at most ``pixels_per_image`` random pixels per frame (fixed seed): memory is
  bounded whatever the number of frames. The NLL is convex in 1/T; a safeguarded Newton search
  on 1/T finds the minimum, T within [0.01, 100].
* :func:`reliability` / :class:`ReliabilityAccumulator` -- a reliability diagram (equal-width
  bins on [0, 1]: count, accuracy, mean confidence), the expected calibration error
  ``ECE = sum_b n_b / N * |accuracy_b - confidence_b|``, the Brier score of the confidence as a
  predictor of correctness ``mean((confidence - correct)^2)``, and the share of pixels below
  fixed confidence thresholds with their accuracy (what an ROI selection would send as pixels).
* :class:`Calibration` -- what ``semcomp calibrate`` writes to ``calibration.json``; the
  shipped segmenter has one beside its weights (:func:`load_calibration`).

``calibration.json`` keys: ``format`` (1), ``temperature`` (full resolution), ``kind`` (the
confidence kind the top-level numbers describe), ``ece_before`` / ``ece_after`` and
``brier_before`` / ``brier_after`` (at T = 1 / at ``temperature``), ``accuracy`` (pixel accuracy),
``bins`` (the reliability diagram after scaling: ``lo``, ``hi``, ``count``, ``accuracy``,
``confidence``), ``grid`` (the same on the codec's coarse grid: ``factor``, ``temperature``,
``ece_before``, ``ece_after``, ``brier_before``, ``brier_after``, ``accuracy``, ``bins``; or null)
and ``details`` (every kind before/after with the low-confidence shares, the cross-validation
folds, what data and model it was fitted on).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ..errors import UsageError

KINDS = ("maxprob", "margin", "entropy")
#: confidence thresholds of the low-confidence shares (ROI selection)
THRESHOLDS = (0.5, 0.7, 0.9)
#: bounds of a fitted temperature
T_MIN, T_MAX = 0.01, 100.0
CALIBRATION_FILE = "calibration.json"
FORMAT = 1


# -- confidence ------------------------------------------------------------------------------

def _as_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor, on any device
        x = x.detach().float().cpu().numpy()
    return np.asarray(x)


def _logits_khw(logits) -> np.ndarray:
    z = _as_numpy(logits)
    if z.ndim == 4 and z.shape[0] == 1:
        z = z[0]
    if z.ndim != 3 or z.shape[0] < 1:
        raise ValueError(f"logits must be (K, h, w) or (1, K, h, w), got shape {z.shape}")
    return z


def _check_temperature(temperature: float) -> float:
    t = float(temperature)
    if not (math.isfinite(t) and t > 0):
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    return t


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown confidence kind {kind!r} (known: {', '.join(KINDS)})")
    return kind


def softmax(z: np.ndarray, temperature: float = 1.0, axis: int = 0) -> np.ndarray:
    """Softmax of ``z / temperature`` along ``axis`` (float32, numerically stable)."""
    s = np.asarray(z, dtype=np.float32) / np.float32(_check_temperature(temperature))
    s = s - s.max(axis=axis, keepdims=True)
    np.exp(s, out=s)
    s /= s.sum(axis=axis, keepdims=True)
    return s


def confidences_from_probs(p: np.ndarray, kinds: Sequence[str] = KINDS) -> dict[str, np.ndarray]:
    """``{kind: confidence}`` from softmax probabilities ``p`` with the classes on axis 0."""
    k = p.shape[0]
    out: dict[str, np.ndarray] = {}
    for kind in kinds:
        _check_kind(kind)
        if kind == "maxprob":
            c = p.max(axis=0)
        elif kind == "margin":
            if k == 1:
                c = np.ones(p.shape[1:], np.float32)
            else:
                top2 = np.partition(p, k - 2, axis=0)[k - 2:]
                c = top2[1] - top2[0]
        else:  # entropy
            if k == 1:
                c = np.ones(p.shape[1:], np.float32)
            else:
                h = -(p * np.log(np.maximum(p, 1e-30))).sum(axis=0)
                c = 1.0 - h / math.log(k)
        out[kind] = np.clip(c, 0.0, 1.0).astype(np.float32, copy=False)
    return out


def confidence(logits, kind: str = "margin", temperature: float = 1.0) -> np.ndarray:
    """Per-pixel confidence (h, w) float32 in [0, 1] from logits (K, h, w) or (1, K, h, w)
    (numpy or torch), after dividing them by ``temperature``. ``kind``: ``margin`` (p1 - p2),
    ``entropy`` (1 - H / log K) or ``maxprob`` (p1) -- see the module docstring."""
    _check_kind(kind)
    return confidences_from_probs(softmax(_logits_khw(logits), temperature), (kind,))[kind]


# -- temperature fitting ---------------------------------------------------------------------

def sample_pixels(logits, labels, pixels: int | None = 20000, rng: np.random.Generator | None = None,
                  ignore_index: int = 255) -> tuple[np.ndarray, np.ndarray]:
    """``(z (n, K) float32, y (n,) int64)``: the logits and labels of at most ``pixels`` random
    pixels with a valid label (0 <= label < K; ``ignore_index`` and larger values skipped).
    ``pixels=None`` keeps every valid pixel."""
    z = _logits_khw(logits)
    y = np.asarray(_as_numpy(labels))
    if y.shape != z.shape[1:]:
        raise ValueError(f"labels {y.shape} do not match logits {z.shape[1:]}")
    k = z.shape[0]
    y = y.ravel().astype(np.int64)
    idx = np.flatnonzero((y >= 0) & (y < k) & (y != ignore_index))
    if pixels is not None and idx.size > pixels:
        rng = rng if rng is not None else np.random.default_rng(0)
        idx = np.sort(rng.choice(idx, size=pixels, replace=False))
    zz = z.reshape(k, -1)[:, idx].T.astype(np.float32)
    return np.ascontiguousarray(zz), y[idx]


def _nll_grad_hess(z: np.ndarray, y: np.ndarray, beta: float, chunk: int = 1 << 19) -> tuple[float, float, float]:
    """Mean NLL of softmax(beta * z) and its first and second derivatives with respect to beta."""
    n = len(y)
    nll = g = h = 0.0
    for s in range(0, n, chunk):
        zc = z[s:s + chunk].astype(np.float64)
        yc = y[s:s + chunk]
        a = beta * zc
        m = a.max(axis=1, keepdims=True)
        e = np.exp(a - m)
        tot = e.sum(axis=1)
        p = e / tot[:, None]
        zy = zc[np.arange(len(yc)), yc]
        ez = (p * zc).sum(axis=1)
        ez2 = (p * zc * zc).sum(axis=1)
        nll += float((np.log(tot) + m[:, 0] - beta * zy).sum())
        g += float((ez - zy).sum())
        h += float((ez2 - ez * ez).sum())
    return nll / n, g / n, h / n


def temperature_from_samples(z: np.ndarray, y: np.ndarray, t_min: float = T_MIN, t_max: float = T_MAX) -> float:
    """The temperature in [t_min, t_max] minimising the mean NLL of labels ``y`` (n,) under
    softmax(z / T), ``z`` (n, K). Safeguarded Newton on beta = 1/T (the NLL is convex in beta)."""
    z = np.asarray(z, dtype=np.float32)
    y = np.asarray(y, dtype=np.int64)
    if z.ndim != 2 or y.shape != (z.shape[0],):
        raise ValueError(f"expected z (n, K) and y (n,), got {z.shape} and {y.shape}")
    if len(y) == 0:
        raise ValueError("no labelled pixels to fit a temperature on")
    if y.min() < 0 or y.max() >= z.shape[1]:
        raise ValueError("labels must lie in 0..K-1")
    lo, hi = 1.0 / t_max, 1.0 / t_min
    if _nll_grad_hess(z, y, lo)[1] >= 0:
        return float(t_max)
    if _nll_grad_hess(z, y, hi)[1] <= 0:
        return float(t_min)
    beta = min(max(1.0, lo), hi)
    for _ in range(100):
        _, g, h = _nll_grad_hess(z, y, beta)
        if g > 0:
            hi = beta
        else:
            lo = beta
        step = beta - g / h if h > 0 else None
        new = step if step is not None and lo < step < hi else math.sqrt(lo * hi)
        if abs(new - beta) <= 1e-9 * beta or hi / lo < 1 + 1e-9:
            beta = new
            break
        beta = new
    return float(1.0 / beta)


def fit_temperature(logits_iter: Iterable, labels_iter: Iterable, pixels_per_image: int | None = 20000,
                    seed: int = 0, ignore_index: int = 255) -> float:
    """Temperature T minimising the NLL of the labels under softmax(logits / T).

    ``logits_iter`` yields (K, h, w) or (1, K, h, w) logits (numpy or torch), ``labels_iter`` the
    matching (h, w) label maps (``ignore_index`` skipped). At most ``pixels_per_image`` random
    pixels per frame are kept (seeded by ``seed``), so memory stays bounded.
    """
    rng = np.random.default_rng(seed)
    zs, ys = [], []
    for logits, labels in zip(logits_iter, labels_iter, strict=True):
        z, y = sample_pixels(logits, labels, pixels_per_image, rng, ignore_index)
        zs.append(z)
        ys.append(y)
    if not zs:
        raise ValueError("no frames to fit a temperature on")
    return temperature_from_samples(np.concatenate(zs), np.concatenate(ys))


# -- reliability -----------------------------------------------------------------------------

class ReliabilityAccumulator:
    """Reliability statistics summed over frames: ``update(conf, correct)`` then :meth:`result`."""

    def __init__(self, bins: int = 15, thresholds: Sequence[float] = THRESHOLDS) -> None:
        if int(bins) != bins or bins < 1:
            raise ValueError(f"bins must be a positive integer, got {bins!r}")
        self.bins = int(bins)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.count = np.zeros(self.bins, np.int64)
        self.conf_sum = np.zeros(self.bins, np.float64)
        self.correct_sum = np.zeros(self.bins, np.int64)
        self.sq_sum = 0.0
        self.below_count = np.zeros(len(self.thresholds), np.int64)
        self.below_correct = np.zeros(len(self.thresholds), np.int64)

    def update(self, conf, correct) -> None:
        c = np.asarray(_as_numpy(conf), dtype=np.float64).ravel()
        ok = np.asarray(_as_numpy(correct)).ravel().astype(bool)
        if c.shape != ok.shape:
            raise ValueError(f"conf and correct differ in size: {c.size} and {ok.size}")
        if c.size and (np.isnan(c).any() or c.min() < 0 or c.max() > 1):
            raise ValueError("confidences must lie in [0, 1]")
        b = np.minimum((c * self.bins).astype(np.int64), self.bins - 1)
        self.count += np.bincount(b, minlength=self.bins)
        self.conf_sum += np.bincount(b, weights=c, minlength=self.bins)
        self.correct_sum += np.bincount(b[ok], minlength=self.bins)
        self.sq_sum += float(((c - ok) ** 2).sum())
        for i, t in enumerate(self.thresholds):
            low = c < t
            self.below_count[i] += int(low.sum())
            self.below_correct[i] += int((low & ok).sum())

    def result(self) -> dict[str, Any]:
        n = int(self.count.sum())
        bins = []
        ece = 0.0
        for i in range(self.bins):
            cnt = int(self.count[i])
            acc = float(self.correct_sum[i] / cnt) if cnt else None
            mc = float(self.conf_sum[i] / cnt) if cnt else None
            if cnt:
                ece += cnt / n * abs(acc - mc)
            bins.append({"lo": i / self.bins, "hi": (i + 1) / self.bins, "count": cnt, "accuracy": acc,
                         "confidence": mc})
        total_correct = int(self.correct_sum.sum())
        below = []
        for i, t in enumerate(self.thresholds):
            cb, kb = int(self.below_count[i]), int(self.below_correct[i])
            above = n - cb
            below.append({"threshold": t, "fraction": cb / n if n else None,
                          "accuracy": kb / cb if cb else None,
                          "accuracy_above": (total_correct - kb) / above if above else None})
        return {"count": n, "ece": ece if n else None, "brier": self.sq_sum / n if n else None,
                "accuracy": total_correct / n if n else None,
                "mean_confidence": float(self.conf_sum.sum() / n) if n else None,
                "bins": bins, "below": below}


def reliability(conf, correct, bins: int = 15, thresholds: Sequence[float] = THRESHOLDS) -> dict[str, Any]:
    """Reliability of confidences ``conf`` (any shape, in [0, 1]) against ``correct`` (bool, same size).

    Returns ``count``, ``ece``, ``brier`` (mean squared difference of confidence and
    correctness), ``accuracy``, ``mean_confidence``, ``bins`` (``bins`` equal-width bins on [0, 1],
    the last one closed: ``lo``, ``hi``, ``count``, ``accuracy``, ``confidence`` -- None where
    empty) and ``below`` (per threshold t: ``fraction`` of values < t, their ``accuracy``, and
    ``accuracy_above`` of the others).
    """
    acc = ReliabilityAccumulator(bins, thresholds)
    acc.update(conf, correct)
    return acc.result()


# -- calibration files -----------------------------------------------------------------------

@dataclass
class Calibration:
    """Temperature scaling of a segmenter and the reliability it was measured with (see the module
    docstring for the JSON keys). ``grid``: the same on the codec's coarse grid, or None."""

    temperature: float
    kind: str = "maxprob"
    ece_before: float | None = None
    ece_after: float | None = None
    brier_before: float | None = None
    brier_after: float | None = None
    accuracy: float | None = None
    bins: list = field(default_factory=list)
    grid: dict | None = None
    details: dict = field(default_factory=dict)
    format: int = FORMAT

    def __post_init__(self) -> None:
        _check_temperature(self.temperature)
        _check_kind(self.kind)
        if self.grid is not None:
            _check_temperature(self.grid.get("temperature", 0))

    @property
    def grid_temperature(self) -> float:
        """The temperature fitted on the grid (the full-resolution one when there is none)."""
        return float(self.grid["temperature"]) if self.grid else float(self.temperature)

    def confidence(self, logits, grid: bool = False, kind: str | None = None) -> np.ndarray:
        """:func:`confidence` with this calibration's temperature (the grid's with ``grid``) and kind."""
        return confidence(logits, kind or self.kind, self.grid_temperature if grid else self.temperature)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> "Calibration":
        if not isinstance(doc, dict) or doc.get("format") != FORMAT or "temperature" not in doc:
            raise ValueError(f"not a calibration document of format {FORMAT}")
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in doc.items() if k in names})

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Calibration":
        path = Path(path)
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise UsageError(f"cannot read calibration {path}: {exc}") from None


def load_calibration(model_dir: str | Path) -> Calibration | None:
    """The :class:`Calibration` saved beside a model (``model_dir/calibration.json``), or None
    when there is none; UsageError when the file is unreadable. ``default``: the shipped segmenter."""
    if str(model_dir) == "default":
        from .segment import default_segmenter_dir

        model_dir = default_segmenter_dir()
    path = Path(model_dir) / CALIBRATION_FILE
    if not path.is_file():
        return None
    return Calibration.load(path)


__all__ = ["KINDS", "THRESHOLDS", "Calibration", "ReliabilityAccumulator", "confidence", "confidences_from_probs",
           "fit_temperature", "load_calibration", "reliability", "sample_pixels", "softmax",
           "temperature_from_samples"]
