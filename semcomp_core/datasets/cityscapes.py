"""Cityscapes (fine annotations, 19 train classes).

Layout::

    root/leftImg8bit/{split}/{city}/{city}_{seq}_{frame}_leftImg8bit.png
    root/gtFine/{split}/{city}/{city}_{seq}_{frame}_gtFine_labelIds.png
    root/gtFine/{split}/{city}/{city}_{seq}_{frame}_gtFine_labelTrainIds.png   (optional)

Labels are mapped labelId -> trainId with the label table of
``cityscapesscripts.helpers.labels``; a ``_labelTrainIds.png`` file (made by
``csCreateTrainIdLabelImgs``) is used directly when present. The ``test``
split has no public labels, so its samples are unlabelled, as are those of
the video sequences (``sequence=True``: ``root/leftImg8bit_sequence/{split}/...``).
A missing ``gtFine/{split}`` folder also gives unlabelled samples.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from cityscapesscripts.helpers.labels import labels as _CS_LABELS

from .base import Sample, SegDataset, existing, identity_lut, make_lut, make_palette

_TRAIN = sorted((lab.trainId, lab) for lab in _CS_LABELS if 0 <= lab.trainId < 255)
CLASSES = tuple(lab.name for _, lab in _TRAIN)
PALETTE = make_palette([lab.color for _, lab in _TRAIN])
LABEL_TO_TRAIN = make_lut({lab.id: lab.trainId for lab in _CS_LABELS})
TRAIN_TO_TRAIN = identity_lut(len(CLASSES))

_IMG_SUFFIX = "_leftImg8bit.png"


class Cityscapes(SegDataset):
    """Cityscapes: 2975 train, 500 val, 1525 test images (``sequence=True``: all video frames)."""

    name = "cityscapes"
    layout = ("root/leftImg8bit/{split}/{city}/*_leftImg8bit.png + "
              "root/gtFine/{split}/{city}/*_gtFine_labelIds.png")
    splits = {"train": "train", "val": "val", "test": "test"}
    classes = CLASSES
    palette = PALETTE
    lut = LABEL_TO_TRAIN

    def __init__(self, root: str | Path, split: str = "val", limit: int | None = None,
                 sequence: bool = False) -> None:
        self.sequence = bool(sequence)
        super().__init__(root, split, limit)

    def _find_samples(self) -> list[Sample]:
        image_root = "leftImg8bit_sequence" if self.sequence else "leftImg8bit"
        images = self._require_dir(self.root / image_root / self.split)
        labelled = not self.sequence and self.split != "test"
        gt = self.root / "gtFine" / self.split
        labelled = labelled and gt.is_dir()
        samples = []
        for img in sorted(images.glob(f"*/*{_IMG_SUFFIX}")):
            stem = img.name[: -len(_IMG_SUFFIX)]
            label = None
            if labelled:
                base = gt / img.parent.name / stem
                label = existing(Path(f"{base}_gtFine_labelTrainIds.png"), Path(f"{base}_gtFine_labelIds.png"))
                if label is None:
                    raise self._missing_label(img, Path(f"{base}_gtFine_labelIds.png"))
            samples.append(Sample(stem, img, label))
        return samples

    def _lut_for(self, label_path: Path) -> np.ndarray:
        return TRAIN_TO_TRAIN if label_path.name.endswith("_labelTrainIds.png") else LABEL_TO_TRAIN
