"""Segmentation metrics: confusion matrices, IoU, and semantic preservation.

Label maps are integer numpy arrays of equal shape, normally (H, W). Pixels
whose *target* equals ``ignore_index`` are skipped. A confusion matrix is a
(K, K + 1) int64 array: rows = target class, columns 0..K-1 = predicted class,
and the last column K counts predictions outside ``0..K-1``.

Out-of-range values:

* a *prediction* outside ``0..K-1`` (e.g. 255 for "unknown", or a class of a
  model with more classes) is a miss of the target class -- a false negative
  for it -- and a false positive for no class: it goes to the last column.
  Pixel accuracy counts it as wrong.
* a *target* outside ``0..K-1`` other than ``ignore_index`` raises
  ValueError -- usually a forgotten ``ignore_index`` (CamVid's void is 11).

mIoU, the one definition used everywhere (``semcomp bench``, the ROS
benchmark node, training validation): **dataset-level** -- confusion matrices
are summed over all frames first (:class:`ConfusionAccumulator`), then
``IoU_c = TP / (TP + FP + FN)`` per class, and the mean is taken over the
classes that occur in the target or the prediction (a class absent from both
is left out, not counted as 0 or 1). A per-frame value (one frame's matrix) is
reported only in per-frame rows, named ``frame_...`` where it could be
mistaken for the dataset value.
"""
from __future__ import annotations

import zlib
from collections import OrderedDict
from typing import Callable, Hashable

import numpy as np


def _as_labels(arr, what: str) -> np.ndarray:
    arr = np.asarray(arr)
    if not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_):
        raise ValueError(f"{what} must be an integer label map, got dtype {arr.dtype}")
    return arr


def _check_num_classes(num_classes: int) -> int:
    if int(num_classes) != num_classes or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    return int(num_classes)


def confusion_matrix(pred, target, num_classes: int, ignore_index: int | None = 255) -> np.ndarray:
    """(K, K + 1) int64 confusion matrix, rows = target, columns = pred (last: out-of-range predictions).

    One ``np.bincount`` over ``target * K + pred``; well under 0.1 s for a
    1024x2048 map. ``ignore_index=None`` keeps every pixel. See the module
    docstring for out-of-range values.
    """
    k = _check_num_classes(num_classes)
    pred = _as_labels(pred, "pred")
    target = _as_labels(target, "target")
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {pred.shape} and {target.shape}")
    t = target.ravel().astype(np.int64)
    p = pred.ravel().astype(np.int64)
    if ignore_index is not None:
        keep = t != ignore_index
        if not keep.all():
            t, p = t[keep], p[keep]
    if t.size:
        lo, hi = int(t.min()), int(t.max())
        if lo < 0 or hi >= k:
            bad = lo if lo < 0 else hi
            raise ValueError(
                f"target contains label {bad} outside 0..{k - 1} "
                f"(ignore_index={ignore_index}); pass the void label as ignore_index")
        wrong = (p < 0) | (p >= k)
        if wrong.any():
            p = np.where(wrong, k, p)
    counts = np.bincount(t * (k + 1) + p, minlength=k * (k + 1))
    return counts.reshape(k, k + 1).astype(np.int64, copy=False)


def _check_conf(conf) -> np.ndarray:
    """A (K, K + 1) matrix as float64 ((K, K) matrices without the out-of-range column are accepted)."""
    conf = np.asarray(conf)
    if conf.ndim != 2 or conf.shape[1] not in (conf.shape[0], conf.shape[0] + 1):
        raise ValueError(f"confusion matrix must be (K, K + 1) or (K, K), got shape {conf.shape}")
    return conf.astype(np.float64)


def iou_per_class(conf) -> np.ndarray:
    """IoU of every class, ``TP / (TP + FP + FN)``; nan where the class is
    absent from both target and prediction. Out-of-range predictions (last
    column) are false negatives of their target class only."""
    c = _check_conf(conf)
    k = c.shape[0]
    tp = np.diag(c[:, :k])
    union = c[:, :k].sum(axis=0) + c.sum(axis=1) - tp
    iou = np.full(k, np.nan)
    present = union > 0
    iou[present] = tp[present] / union[present]
    return iou


def mean_iou(conf) -> float:
    """Mean IoU over the classes that occur (nan-mean); nan if none does."""
    iou = iou_per_class(conf)
    return float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")


def pixel_accuracy(conf) -> float:
    """Fraction of counted pixels predicted correctly; nan for an empty matrix."""
    c = _check_conf(conf)
    total = c.sum()
    return float(np.trace(c[:, : c.shape[0]]) / total) if total > 0 else float("nan")


class ConfusionAccumulator:
    """Sum of confusion matrices over many label maps (dataset-level mIoU)."""

    def __init__(self, num_classes: int, ignore_index: int | None = 255):
        self.num_classes = _check_num_classes(num_classes)
        self.ignore_index = ignore_index
        self._matrix = np.zeros((self.num_classes, self.num_classes + 1), dtype=np.int64)
        self.count = 0

    def update(self, pred, target) -> np.ndarray:
        """Add one pair of label maps; returns that pair's confusion matrix."""
        conf = confusion_matrix(pred, target, self.num_classes, self.ignore_index)
        self._matrix += conf
        self.count += 1
        return conf

    def reset(self) -> None:
        self._matrix[:] = 0
        self.count = 0

    @property
    def matrix(self) -> np.ndarray:
        """A copy of the accumulated (K, K + 1) int64 matrix."""
        return self._matrix.copy()

    def miou(self) -> float:
        return mean_iou(self._matrix)

    def pixel_accuracy(self) -> float:
        return pixel_accuracy(self._matrix)

    def iou_per_class(self) -> np.ndarray:
        return iou_per_class(self._matrix)


Segmenter = Callable[[np.ndarray], np.ndarray]


class SegmentationCache:
    """Segmentations of original images, keyed by a caller-chosen key.

    Holds at most ``max_entries`` maps (least recently used dropped first;
    ``None`` = unbounded), stored as uint8 when the labels fit. Each entry also
    remembers a CRC-32 of its image, and asking for a key with a different
    image raises ValueError instead of returning a stale segmentation.
    ``calls`` counts segmenter invocations. Share one cache between several
    :class:`SemanticPreservation` objects (see :meth:`SemanticPreservation.spawn`).
    """

    def __init__(self, segmenter: Segmenter, max_entries: int | None = 128):
        self.segmenter = segmenter
        self.max_entries = max_entries
        self.calls = 0
        self._entries: OrderedDict[Hashable, tuple[int, tuple, np.ndarray]] = OrderedDict()

    def segment(self, image: np.ndarray) -> np.ndarray:
        """Run the segmenter (uncached) and check its output."""
        self.calls += 1
        labels = np.asarray(self.segmenter(image))
        if labels.shape != tuple(image.shape[:2]):
            raise ValueError(f"segmenter returned shape {labels.shape} for an image of shape {image.shape}")
        return _as_labels(labels, "segmenter output")

    def get(self, image: np.ndarray, key: Hashable | None = None) -> np.ndarray:
        """Segmentation of ``image``; cached under ``key`` unless key is None."""
        if key is None:
            return self.segment(image)
        image = np.ascontiguousarray(image)
        crc = zlib.crc32(image.data)
        hit = self._entries.get(key)
        if hit is not None:
            if hit[0] != crc or hit[1] != image.shape:
                raise ValueError(f"key {key!r} was cached for a different image")
            self._entries.move_to_end(key)
            return hit[2]
        labels = self.segment(image)
        if labels.size and labels.min() >= 0 and labels.max() <= 255:
            labels = labels.astype(np.uint8)
        else:
            labels = labels.copy()
        labels.flags.writeable = False
        self._entries[key] = (crc, image.shape, labels)
        if self.max_entries is not None:
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return labels

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()


class SemanticPreservation:
    """Runs a segmenter on originals and reconstructions and accumulates three confusion matrices:
    seg(original) vs ground truth, seg(reconstruction) vs ground truth, seg(reconstruction) vs seg(original).

    ``preservation = miou_recon_vs_gt / miou_orig_vs_gt``: 1.0 when the codec
    keeps everything the segmenter relies on. The ground-truth matrices only
    include images updated with a ground truth, so both sides of the ratio
    cover the same pixels. In recon-vs-orig, seg(original) is the target:
    every pixel counts except those where seg(original) is ``ignore_index`` or
    outside ``0..K-1``.

    Pass ``key=`` to :meth:`update` to segment each original only once (see
    :class:`SegmentationCache`); to score several codecs on the same images,
    use one object per codec made with :meth:`spawn`, which share the cache.
    """

    def __init__(self, segmenter: Segmenter, num_classes: int, ignore_index: int | None = 255,
                 cache: SegmentationCache | None = None):
        self.num_classes = _check_num_classes(num_classes)
        self.ignore_index = ignore_index
        self.cache = cache if cache is not None else SegmentationCache(segmenter)
        self.orig_vs_gt = ConfusionAccumulator(num_classes, ignore_index)
        self.recon_vs_gt = ConfusionAccumulator(num_classes, ignore_index)
        self.recon_vs_orig = ConfusionAccumulator(num_classes, ignore_index)

    def spawn(self) -> "SemanticPreservation":
        """A fresh accumulator with the same segmenter, classes and cache."""
        return SemanticPreservation(self.cache.segmenter, self.num_classes, self.ignore_index, cache=self.cache)

    def reset(self) -> None:
        """Zero the matrices; the cache is kept."""
        for acc in (self.orig_vs_gt, self.recon_vs_gt, self.recon_vs_orig):
            acc.reset()

    def update(self, original: np.ndarray, reconstruction: np.ndarray, ground_truth=None,
               key: Hashable | None = None) -> dict:
        """Score one image; returns its own numbers (mIoUs as floats, nan if no class occurs).

        Keys: ``miou_recon_vs_orig``, ``pixel_accuracy_recon_vs_orig``, and with
        a ground truth also ``miou_orig_vs_gt``, ``miou_recon_vs_gt`` and
        ``preservation`` (None when ``miou_orig_vs_gt`` is 0 or nan).
        """
        original = np.asarray(original)
        reconstruction = np.asarray(reconstruction)
        if original.shape != reconstruction.shape:
            raise ValueError(f"original and reconstruction shapes differ: {original.shape} vs {reconstruction.shape}")
        seg_orig = self.cache.get(original, key)
        seg_recon = self.cache.segment(reconstruction)

        reference = seg_orig.astype(np.int64)
        invalid = (reference < 0) | (reference >= self.num_classes)
        if invalid.any():
            fill = self.ignore_index if self.ignore_index is not None else -1
            reference = np.where(invalid, fill, reference)
            ignore = fill
        else:
            ignore = self.ignore_index
        conf_ro = confusion_matrix(seg_recon, reference, self.num_classes, ignore)
        self.recon_vs_orig._matrix += conf_ro
        self.recon_vs_orig.count += 1
        out = {"miou_recon_vs_orig": mean_iou(conf_ro), "pixel_accuracy_recon_vs_orig": pixel_accuracy(conf_ro)}

        if ground_truth is not None:
            gt = np.asarray(ground_truth)
            if gt.shape != tuple(original.shape[:2]):
                raise ValueError(f"ground truth shape {gt.shape} does not match image shape {original.shape}")
            m_orig = mean_iou(self.orig_vs_gt.update(seg_orig, gt))
            m_recon = mean_iou(self.recon_vs_gt.update(seg_recon, gt))
            out.update(miou_orig_vs_gt=m_orig, miou_recon_vs_gt=m_recon,
                       preservation=_ratio(m_recon, m_orig))
        return out

    def summary(self) -> dict:
        """Dataset-level numbers from the summed matrices (None where nothing was accumulated)."""
        has_gt = self.orig_vs_gt.count > 0
        m_orig = self.orig_vs_gt.miou() if has_gt else None
        m_recon = self.recon_vs_gt.miou() if has_gt else None
        has_any = self.recon_vs_orig.count > 0
        return {
            "num_images": self.recon_vs_orig.count,
            "num_images_with_gt": self.orig_vs_gt.count,
            "miou_orig_vs_gt": m_orig,
            "miou_recon_vs_gt": m_recon,
            "miou_recon_vs_orig": self.recon_vs_orig.miou() if has_any else None,
            "pixel_accuracy_recon_vs_orig": self.recon_vs_orig.pixel_accuracy() if has_any else None,
            "preservation": _ratio(m_recon, m_orig) if has_gt else None,
        }


def _ratio(num: float | None, den: float | None) -> float | None:
    if num is None or den is None or not np.isfinite(den) or den == 0 or not np.isfinite(num):
        return None
    return float(num / den)
