"""COCO-Stuff 164k (stuffthingmaps, 171 classes: 80 things + 91 stuff).

Layout::

    root/images/{train2017,val2017}/*.jpg
    root/annotations/{train2017,val2017}/*.png    values 0..181 (COCO-Stuff id - 1), 255 = unlabeled

Split ``"train"``/``"train2017"`` and ``"val"``/``"val2017"`` are accepted.
The 182-id space has 11 thing ids that COCO never used (raw 11, 25, 28, 29,
44, 65, 67, 68, 70, 82, 90); they map to 255 and the remaining 171 ids to
contiguous train ids 0..170 (the usual 164k protocol, as in mmsegmentation).
A ``{stem}_labelTrainIds.png`` (already 0..170, from mmsegmentation's
converter) is used directly when present.

COCO-Stuff has no official per-class palette; :data:`PALETTE` is the
deterministic PASCAL-VOC bit colour map (entries 1..171, all distinct).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import Sample, SegDataset, bit_palette, identity_lut, make_lut

#: raw values (0-based 182-id space) of the thing ids COCO does not use
UNUSED_RAW = (11, 25, 28, 29, 44, 65, 67, 68, 70, 82, 90)

CLASSES = (
    # things (80)
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat",
    "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack",
    "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball",
    "kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket",
    "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair",
    "couch", "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse",
    "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink",
    "refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier",
    "toothbrush",
    # stuff (91)
    "banner", "blanket", "branch", "bridge", "building-other", "bush", "cabinet", "cage",
    "cardboard", "carpet", "ceiling-other", "ceiling-tile", "cloth", "clothes", "clouds",
    "counter", "cupboard", "curtain", "desk-stuff", "dirt", "door-stuff", "fence",
    "floor-marble", "floor-other", "floor-stone", "floor-tile", "floor-wood", "flower",
    "fog", "food-other", "fruit", "furniture-other", "grass", "gravel", "ground-other",
    "hill", "house", "leaves", "light", "mat", "metal", "mirror-stuff", "moss", "mountain",
    "mud", "napkin", "net", "paper", "pavement", "pillow", "plant-other", "plastic",
    "platform", "playingfield", "railing", "railroad", "river", "road", "rock", "roof",
    "rug", "salad", "sand", "sea", "shelf", "sky-other", "skyscraper", "snow",
    "solid-other", "stairs", "stone", "straw", "structural-other", "table", "tent",
    "textile-other", "towel", "tree", "vegetable", "wall-brick", "wall-concrete",
    "wall-other", "wall-panel", "wall-stone", "wall-tile", "wall-wood", "water-other",
    "waterdrops", "window-blind", "window-other", "wood",
)

_KEPT_RAW = [raw for raw in range(182) if raw not in UNUSED_RAW]
assert len(_KEPT_RAW) == len(CLASSES) == 171
RAW_TO_TRAIN = make_lut({raw: train for train, raw in enumerate(_KEPT_RAW)})
TRAIN_TO_TRAIN = identity_lut(len(CLASSES))
PALETTE = bit_palette(len(CLASSES), offset=1)


class COCOStuff(SegDataset):
    """COCO-Stuff 164k: 118k train2017, 5k val2017 images."""

    name = "cocostuff"
    layout = "root/images/{train2017,val2017}/*.jpg + root/annotations/{train2017,val2017}/*.png"
    splits = {"train": "train2017", "train2017": "train2017", "val": "val2017", "val2017": "val2017"}
    classes = CLASSES
    palette = PALETTE
    lut = RAW_TO_TRAIN

    def _find_samples(self) -> list[Sample]:
        return self._pair_by_stem(self.root / "images" / self.split_dir,
                                  self.root / "annotations" / self.split_dir, (".jpg", ".jpeg", ".png"),
                                  ("{stem}_labelTrainIds.png", "{stem}.png"))

    def _lut_for(self, label_path: Path) -> np.ndarray:
        return TRAIN_TO_TRAIN if label_path.name.endswith("_labelTrainIds.png") else RAW_TO_TRAIN
