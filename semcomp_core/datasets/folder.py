"""Any folder of images, with optional label PNGs of the same stems.

``FolderDataset(root, labels=None, num_classes=None)``: every image directly
in ``root`` (suffixes of :data:`semcomp_core.imageio.IMAGE_SUFFIXES`, sorted,
not recursive). With ``labels``, each image ``x.jpg`` needs ``labels/x.png``;
label values are used as they are. ``classes`` is empty unless
``num_classes`` is given (then ``"class0".."class{N-1}"`` with a
deterministic palette). ``split`` is accepted and ignored.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import UsageError
from ..imageio import IMAGE_SUFFIXES
from .base import Sample, SegDataset, bit_palette


class FolderDataset(SegDataset):
    """Images of one folder (e.g. frames exported from a robot log)."""

    name = "folder"
    layout = f"root/*{{{','.join(IMAGE_SUFFIXES)}}} [+ labels/<stem>.png]"

    def __init__(self, root: str | Path, split: str = "val", limit: int | None = None,
                 labels: str | Path | None = None, num_classes: int | None = None) -> None:
        self.labels = Path(labels).expanduser() if labels is not None else None
        if num_classes is not None:
            if not isinstance(num_classes, int) or isinstance(num_classes, bool) or not 1 <= num_classes <= 255:
                raise UsageError(f"folder: num_classes must be an integer in 1..255, got {num_classes!r}")
            self.classes = tuple(f"class{i}" for i in range(num_classes))
            self.palette = bit_palette(num_classes)
        if self.labels is not None and not self.labels.is_dir():
            raise UsageError(f"folder: labels folder not found: {self.labels} (expected <stem>.png per image)")
        super().__init__(root, split, limit)

    def _find_samples(self) -> list[Sample]:
        images = sorted(p for p in self.root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if self.labels is None:
            return [Sample(p.stem, p, None) for p in images]
        samples = []
        for img in images:
            label = self.labels / f"{img.stem}.png"
            if not label.is_file():
                raise self._missing_label(img, label)
            samples.append(Sample(img.stem, img, label))
        return samples
