"""CamVid, SegNet version (11 classes, 360x480).

Layout::

    root/{train,val,test}/*.png          images
    root/{train,val,test}annot/*.png     labels, same file names, values 0..10, 11 = void
    root/{split}.txt                     optional "image label" pairs

The list files of the original SegNet release carry an absolute prefix
(``/SegNet/CamVid/train/0001TP_006690.png``); only the last two path
components are used, relative to ``root``. Without a list file, images and
labels are paired by file name. A missing ``{split}annot`` folder gives
unlabelled samples.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import UsageError
from .base import Sample, SegDataset, make_lut, make_palette

CLASSES = ("Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol",
           "Fence", "Car", "Pedestrian", "Bicyclist")
PALETTE = make_palette([
    (128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222),
    (128, 128, 0), (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192),
])
VOID = 11


def _last_two(entry: str) -> str:
    """``/SegNet/CamVid/val/x.png`` -> ``val/x.png``."""
    parts = [p for p in entry.replace("\\", "/").split("/") if p]
    return "/".join(parts[-2:])


class CamVid(SegDataset):
    """CamVid (SegNet split): 367 train, 101 val, 233 test images."""

    name = "camvid"
    layout = "root/{split}/*.png + root/{split}annot/*.png [+ root/{split}.txt]"
    splits = {"train": "train", "val": "val", "test": "test"}
    classes = CLASSES
    palette = PALETTE
    lut = make_lut({v: v for v in range(VOID)})  # 11 (void) and anything else -> 255

    def _find_samples(self) -> list[Sample]:
        listing = self.root / f"{self.split}.txt"
        if listing.is_file():
            return self._from_listing(listing)
        return self._pair_by_stem(self.root / self.split, self.root / f"{self.split}annot", (".png",))

    def _from_listing(self, listing: Path) -> list[Sample]:
        samples = []
        for lineno, line in enumerate(listing.read_text().splitlines(), 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) > 2:
                raise UsageError(f"{listing}:{lineno}: expected 'image [label]', got {line.strip()!r}")
            img = self.root / _last_two(fields[0])
            label = self.root / _last_two(fields[1]) if len(fields) == 2 else None
            if not img.is_file():
                raise UsageError(f"{listing}:{lineno}: image not found: {img}")
            if label is not None and not label.is_file():
                raise UsageError(f"{listing}:{lineno}: label not found: {label}")
            samples.append(Sample(img.stem, img, label))
        return samples
