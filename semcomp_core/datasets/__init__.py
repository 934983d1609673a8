"""Dataset loaders for the published layouts of the common segmentation sets.

* :data:`DATASETS` -- name -> :class:`SegDataset` subclass (duplicates rejected):
  ``camvid``, ``cityscapes``, ``ade20k``, ``cocostuff``, ``folder``
* :func:`open_dataset` -- ``open_dataset("cityscapes", "/data/cityscapes", "val", limit=10)``

Each dataset yields ``(image, label)``: (H, W, 3) uint8 RGB and (H, W) uint8
train ids (255 = ignore) or None. Nothing here imports torch.
"""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..registry import Registry
from .ade20k import ADE20K
from .base import IGNORE_INDEX, Sample, SegDataset
from .camvid import CamVid
from .cityscapes import Cityscapes
from .cocostuff import COCOStuff
from .folder import FolderDataset

DATASETS: Registry[type[SegDataset]] = Registry("dataset")
for _cls in (CamVid, Cityscapes, ADE20K, COCOStuff, FolderDataset):
    DATASETS.register(_cls.name, _cls)
del _cls


def open_dataset(name: str, root: str | Path, split: str = "val", **kw: Any) -> SegDataset:
    """Open dataset ``name`` at ``root``; unknown names/options raise UsageError."""
    cls = DATASETS.get(name)
    try:
        inspect.signature(cls).bind(root, split=split, **kw)
    except TypeError as exc:
        raise UsageError(f"dataset {name!r}: {exc}") from None
    return cls(root, split=split, **kw)


__all__ = ["DATASETS", "IGNORE_INDEX", "Sample", "SegDataset", "open_dataset",
           "CamVid", "Cityscapes", "ADE20K", "COCOStuff", "FolderDataset"]
