"""Common base of the dataset loaders.

A :class:`SegDataset` is a sorted list of :class:`Sample` (image path, optional
label path) plus the class table of its dataset: ``classes`` (index = train
id), ``palette`` (one RGB colour per train id) and a 256-entry lookup table
that maps the raw values of the label files to train ids (``ignore_index``
255 for void/unused). Loading is lazy: nothing is read until ``dataset[i]``.

Subclasses set the class attributes and implement :meth:`_find_samples`.
Plain Python + numpy; no torch import.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Iterator, Sequence

import numpy as np

from .. import imageio
from ..errors import UsageError

IGNORE_INDEX = 255


@dataclass(frozen=True)
class Sample:
    """One image with its (optional) label file; ``name`` is a stable id (the file stem)."""

    name: str
    image_path: Path
    label_path: Path | None


def make_lut(pairs: dict[int, int] | Sequence[tuple[int, int]], default: int = IGNORE_INDEX) -> np.ndarray:
    """A read-only (256,) uint8 lookup table: ``raw -> train id``, ``default`` elsewhere."""
    lut = np.full(256, default, dtype=np.uint8)
    for raw, train in dict(pairs).items():
        if 0 <= raw <= 255:
            lut[raw] = train if 0 <= train <= 255 else IGNORE_INDEX
    lut.setflags(write=False)
    return lut


def make_palette(colours: Sequence[Sequence[int]]) -> np.ndarray:
    """A read-only (N, 3) uint8 array of RGB colours."""
    pal = np.asarray(colours, dtype=np.uint8).reshape(-1, 3)
    pal.setflags(write=False)
    return pal


def bit_palette(n: int, offset: int = 0) -> np.ndarray:
    """Deterministic distinct colours: the PASCAL VOC bit-interleaved colour map, entries offset..offset+n-1."""
    idx = np.arange(offset, offset + n)
    pal = np.zeros((n, 3), dtype=np.int64)
    c = idx.copy()
    for shift in range(7, -1, -1):
        for ch in range(3):
            pal[:, ch] |= ((c >> ch) & 1) << shift
        c >>= 3
    return make_palette(pal)


def identity_lut(num_classes: int | None = None) -> np.ndarray:
    """Values kept as-is (or, with ``num_classes``, values >= num_classes -> 255)."""
    n = 256 if num_classes is None else min(int(num_classes), 256)
    return make_lut({v: v for v in range(n)})


def existing(*candidates: Path) -> Path | None:
    """The first candidate file that exists, else None."""
    for p in candidates:
        if p.is_file():
            return p
    return None


class SegDataset:
    """A semantic-segmentation dataset on disk.

    ``dataset[i]`` returns ``(image, label)``: image (H, W, 3) uint8 RGB, label
    (H, W) uint8 train ids (0..num_classes-1, ``ignore_index`` = 255) or None
    when the sample has no label file.
    """

    name: ClassVar[str] = ""
    #: human-readable layout, quoted in error messages
    layout: ClassVar[str] = ""
    #: accepted split names -> folder name used on disk
    splits: ClassVar[dict[str, str]] = {}
    classes: tuple[str, ...] = ()
    palette: np.ndarray = make_palette(np.zeros((0, 3)))
    ignore_index: int = IGNORE_INDEX
    #: raw label value -> train id
    lut: np.ndarray = identity_lut()

    def __init__(self, root: str | Path, split: str = "val", limit: int | None = None) -> None:
        self.root = Path(root).expanduser()
        if self.splits and split not in self.splits:
            raise UsageError(
                f"{self.name}: unknown split {split!r} (known: {', '.join(self.splits)})")
        self.split = split
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
            raise UsageError(f"{self.name}: limit must be a positive integer or None, got {limit!r}")
        if not self.root.is_dir():
            raise UsageError(f"{self.name} root not found: {self.root} (expected {self._expected})")
        samples = self._find_samples()
        if not samples:
            raise UsageError(f"{self.name}: no samples for split {split!r} under {self.root} "
                             f"(expected {self._expected})")
        seen: dict[str, Path] = {}
        for s in samples:
            if s.name in seen:
                raise UsageError(f"{self.name}: two samples named {s.name!r}: {seen[s.name]} and {s.image_path}")
            seen[s.name] = s.image_path
        self.samples: list[Sample] = samples[:limit] if limit is not None else samples

    # -- to implement ----------------------------------------------------------------
    def _find_samples(self) -> list[Sample]:
        """All samples of ``self.split``, in a stable (sorted) order."""
        raise NotImplementedError

    # -- helpers for subclasses ------------------------------------------------------
    @property
    def _expected(self) -> str:
        return self.layout.replace("{split}", self.split_dir)

    @property
    def split_dir(self) -> str:
        """The on-disk folder name of ``self.split``."""
        return self.splits.get(self.split, self.split)

    def _require_dir(self, path: Path) -> Path:
        if not path.is_dir():
            raise UsageError(f"{self.name}: folder not found: {path} (expected {self._expected})")
        return path

    def _pair_by_stem(self, images: Path, labels: Path, suffixes: tuple[str, ...],
                      label_names: tuple[str, ...] = ("{stem}.png",)) -> list[Sample]:
        """Files in ``images`` with one of ``suffixes`` (sorted), each paired with the first
        existing ``labels / name.format(stem=...)``. No ``labels`` folder: unlabelled samples;
        a folder with a label missing: UsageError."""
        self._require_dir(images)
        has_labels = labels.is_dir()
        samples = []
        for img in sorted(p for p in images.iterdir() if p.suffix.lower() in suffixes and p.is_file()):
            label = None
            if has_labels:
                candidates = [labels / n.format(stem=img.stem) for n in label_names]
                label = existing(*candidates)
                if label is None:
                    raise self._missing_label(img, candidates[-1])
            samples.append(Sample(img.stem, img, label))
        return samples

    def _missing_label(self, image: Path, label: Path) -> UsageError:
        return UsageError(f"{self.name}: no label {label} for image {image} (expected {self._expected})")

    # -- public API ------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:
        return self.load_image(i), self.load_label(i)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        for i in range(len(self)):
            yield self[i]

    def load_image(self, i: int) -> np.ndarray:
        """Image ``i`` as (H, W, 3) uint8 RGB."""
        return imageio.load_image(self.samples[i].image_path)

    def load_label(self, i: int) -> np.ndarray | None:
        """Label ``i`` as (H, W) uint8 train ids, or None if the sample has no label."""
        path = self.samples[i].label_path
        if path is None:
            return None
        return self._apply(self._lut_for(path), imageio.load_label(path))

    def _lut_for(self, label_path: Path) -> np.ndarray:
        """The lookup table for one label file (Cityscapes: trainId files need none)."""
        return self.lut

    def to_train_ids(self, raw: np.ndarray) -> np.ndarray:
        """Map raw label-file values to train ids (values outside 0..255 are rejected)."""
        return self._apply(self.lut, raw)

    @staticmethod
    def _apply(lut: np.ndarray, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw)
        if raw.dtype != np.uint8:
            if not np.issubdtype(raw.dtype, np.integer):
                raise UsageError(f"label values must be integers, got dtype {raw.dtype}")
            if raw.size and (raw.min() < 0 or raw.max() > 255):
                raise UsageError(f"label values must lie in 0..255, got {raw.min()}..{raw.max()}")
            raw = raw.astype(np.uint8)
        return lut[raw]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={str(self.root)!r}, split={self.split!r}, n={len(self)})"
