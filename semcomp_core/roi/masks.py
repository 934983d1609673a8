"""Region-of-interest masks on the seg-map grid, and their pixel footprint.

Four sources, combined by union (codec parameter ``roi=classes+uncertain+user``):

* **classes** -- cells whose label is in a class set (``roi_classes=Pedestrian+Bicyclist+...``; ','
  works too outside ``bench --codecs`` lists, where ',' separates codecs),
  (the coded margin around them gives the blend its room); the receiver derives this mask from the seg map it decodes, so it costs
  only the rule (:class:`~semcomp_core.layers.roi.RoiMaskRule`);
* **uncertain** -- regions (at least 2x2 cells: a morphological opening, so not the thin band of
  doubt along every class boundary) where the segmenter's calibrated confidence (max softmax
  probability after temperature scaling, ``models.confidence``) is below ``roi_conf``: what the
  segmenter cannot read is sent as pixels instead of being hallucinated;
* **user** -- a mask image (``roi_mask=PATH``: any single-channel or RGB image of the frame's size,
  nonzero = ROI) or boxes (``roi_boxes=x0,y0,x1,y1;...`` in frame pixels, end exclusive);
* **full** -- the whole frame: a classic base layer under the semantic ones (the SCMC signal
  layer), coded at what the budget leaves; its mask is the rule "every class" (3-5 bytes).

A cell is in a user mask when any of its pixels is. Masks that are not derivable from the map are
sent explicitly (coded like a seg map).

Pixel footprint: the cells upsampled to pixels (nearest) form the ROI proper; the encoder codes
the pixels of the ROI dilated by one cell (``margin``), so the receiver can ramp its blending
weight from 1 at the ROI's edge to 0 one cell further out over real pixels (:func:`alpha`): no
seam between coded and generated pixels.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UsageError

SOURCES = ("classes", "uncertain", "user", "full")


def with_user_source(cls, params: dict, mask_path: str, boxes: str) -> dict:
    """Codec parameters with a user ROI (``roi_mask`` / ``roi_boxes``) added and ``user`` among the
    ``roi`` sources (CLI ``--roi-mask`` / ``--roi-boxes``, node parameters). UsageError for a codec without
    selective coding."""
    if "roi" not in cls.params:
        raise UsageError(f"codec {cls.name!r} has no region-of-interest coding (semantic codecs have)")
    out = dict(params)
    sources = list(parse_sources(out.get("roi", cls.params["roi"].default)))
    if "user" not in sources:
        sources.append("user")
    out["roi"] = "+".join(sources)
    if mask_path:
        out["roi_mask"] = mask_path
    if boxes:
        out["roi_boxes"] = boxes
    return out


def parse_sources(text: str) -> tuple[str, ...]:
    """``none`` / ``''`` -> (); else '+'-separated names of :data:`SOURCES`."""
    text = (text or "").strip().lower()
    if text in ("", "none", "off"):
        return ()
    parts = tuple(p.strip() for p in text.split("+"))
    bad = [p for p in parts if p not in SOURCES]
    if bad:
        raise UsageError(f"roi={text!r}: unknown source {bad[0]!r} (none, or '+'-joined: {', '.join(SOURCES)})")
    return tuple(dict.fromkeys(parts))


def class_ids(text: str, class_names: list[str] | None, num_classes: int) -> list[int]:
    """The classes named (or numbered) in a '+'- or ','-separated list, in the order given (the ROI's
    priority), without repeats; UsageError on unknown names."""
    names = [n.lower() for n in (class_names or [])]
    out: list[int] = []
    for item in (t.strip() for t in text.replace("+", ",").split(",")):
        if not item:
            continue
        if item.isdecimal() and item.isascii() and int(item) < num_classes:
            c = int(item)
        elif item.lower() in names:
            c = names.index(item.lower())
        else:
            known = ", ".join(class_names or [str(i) for i in range(num_classes)])
            raise UsageError(f"roi_classes: unknown class {item!r} (the segmenter's classes: {known})")
        if c not in out:
            out.append(c)
    return out


#: the default ``roi_classes`` and the names they go by in other label tables (CamVid, Cityscapes, ...)
DEFAULT_CLASSES = "Pedestrian+Bicyclist+SignSymbol"
SYNONYMS = {"pedestrian": ("pedestrian", "person", "people"), "bicyclist": ("bicyclist", "rider", "cyclist"),
            "signsymbol": ("signsymbol", "traffic sign", "sign")}


def default_class_ids(class_names: list[str] | None) -> list[int]:
    """The default ROI classes found in a label table (by their usual names; none for an unnamed table)."""
    names = [n.lower() for n in (class_names or [])]
    out = []
    for item in DEFAULT_CLASSES.lower().split("+"):
        for alias in SYNONYMS[item]:
            if alias in names and names.index(alias) not in out:
                out.append(names.index(alias))
                break
    return out


def class_set(text: str, class_names: list[str] | None, num_classes: int) -> int:
    """Bit set of the classes named (or numbered) in a comma-separated list; UsageError on unknown names."""
    bits = 0
    for c in class_ids(text, class_names, num_classes):
        bits |= 1 << c
    return bits


def dilate(cells: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation of a bool cell map by a (2r+1) x (2r+1) square."""
    if radius <= 0 or not cells.any():
        return cells.copy()
    import cv2

    k = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    return cv2.dilate(cells.astype(np.uint8), k).astype(bool)


def opening(cells: np.ndarray, size: int = 2) -> np.ndarray:
    """Morphological opening by a size x size square: only regions at least that many cells wide stay."""
    if not cells.any():
        return cells.copy()
    import cv2

    k = np.ones((size, size), np.uint8)
    return cv2.morphologyEx(cells.astype(np.uint8), cv2.MORPH_OPEN, k).astype(bool)


def components(cells: np.ndarray) -> list[np.ndarray]:
    """The 8-connected regions of a bool cell map, each as a bool map (in label order)."""
    if not cells.any():
        return []
    import cv2

    n, lab = cv2.connectedComponents(cells.astype(np.uint8), connectivity=8)
    return [lab == i for i in range(1, n)]


def rule_cells(labels: np.ndarray, classes: int, dilation: int) -> np.ndarray:
    """The cells a class rule selects on a decoded map (what both ends compute)."""
    ids = [c for c in range(classes.bit_length()) if classes >> c & 1]
    return dilate(np.isin(labels, ids), dilation)


def uncertain_cells(confidence: np.ndarray, threshold: float) -> np.ndarray:
    return np.asarray(confidence) < threshold


def load_user_mask(path: str | Path, height: int, width: int) -> np.ndarray:
    """A mask image of the frame's size as (H, W) bool (nonzero = ROI); UsageError when unreadable or
    of the wrong size."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        if path.suffix.lower() == ".npy":
            arr = np.load(path, allow_pickle=False)
        else:
            with Image.open(path) as im:
                # palette images by their colours; RGB(A) by their colour channels (any nonzero one counts)
                arr = np.asarray(im.convert("RGBA") if im.mode in ("P", "PA") else im)
                if arr.ndim == 3 and arr.shape[2] in (2, 4):
                    arr = arr[..., :-1]
    except (OSError, ValueError, EOFError, UnidentifiedImageError) as exc:
        raise UsageError(f"roi_mask: cannot read {path}: {exc}") from None
    if not isinstance(arr, np.ndarray):
        raise UsageError(f"roi_mask: {path} does not hold one array")
    if arr.ndim == 3 and arr.shape[2] in (1, 3, 4):
        arr = arr.max(axis=2)
    if arr.ndim != 2 or arr.dtype.kind not in "biuf":
        raise UsageError(f"roi_mask: {path} is not a single-channel mask (shape {arr.shape}, dtype {arr.dtype})")
    if arr.shape != (height, width):
        raise UsageError(f"roi_mask: {path} is {arr.shape[1]}x{arr.shape[0]}, the frame is {width}x{height}")
    return arr != 0


def parse_boxes(text: str, height: int, width: int) -> np.ndarray:
    """``x0,y0,x1,y1;...`` (pixels, end exclusive; boxes separated by ';' or '+') -> (H, W) bool;
    UsageError on malformed or outside boxes."""
    mask = np.zeros((height, width), bool)
    for part in (p.strip() for p in text.replace(" ", "").replace("+", ";").split(";")):
        if not part:
            continue
        try:
            x0, y0, x1, y1 = (int(v) for v in part.split(","))
        except ValueError:
            raise UsageError(f"roi_boxes: {part!r} is not x0,y0,x1,y1 (integers)") from None
        if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
            raise UsageError(f"roi_boxes: box {part!r} is empty or outside the {width}x{height} frame")
        mask[y0:y1, x0:x1] = True
    return mask


def pixels_to_cells(mask: np.ndarray, factor: int, shape: tuple[int, int]) -> np.ndarray:
    """A cell is set when any pixel of it is (cells of ``factor`` pixels; the map's ``shape``)."""
    h, w = shape
    H, W = mask.shape
    pad = np.zeros((h * factor, w * factor), bool)
    pad[:H, :W] = mask
    return pad.reshape(h, factor, w, factor).any(axis=(1, 3))


def cells_to_pixels(cells: np.ndarray, factor: int, height: int, width: int) -> np.ndarray:
    return np.repeat(np.repeat(cells, factor, 0), factor, 1)[:height, :width]


def coded_box(cells: np.ndarray, factor: int, height: int, width: int, margin: int = 1):
    """(top, left, h, w) in pixels of the ROI cells dilated by ``margin`` cells, inside the frame;
    None for an empty mask."""
    grown = dilate(cells, margin)
    if not grown.any():
        return None
    ys, xs = np.nonzero(grown)
    top, left = int(ys.min()) * factor, int(xs.min()) * factor
    bottom, right = min(height, (int(ys.max()) + 1) * factor), min(width, (int(xs.max()) + 1) * factor)
    return top, left, bottom - top, right - left


def alpha(cells: np.ndarray, factor: int, height: int, width: int, box=None) -> np.ndarray:
    """(H, W) float32 blending weight of the coded pixels: 1 on the ROI's pixels, falling linearly to 0
    over the one-cell margin around it. With ``box`` (top, left, h, w; cell-aligned at top/left, as
    :func:`coded_box` makes it) only the box's (h, w) weights, from the cells inside it."""
    import cv2

    if box is not None:
        top, left, h, w = box
        cells = cells[top // factor:-(-(top + h) // factor), left // factor:-(-(left + w) // factor)]
        height, width = h, w
    inside = cells_to_pixels(cells, factor, height, width)
    if not inside.any():
        return np.zeros((height, width), np.float32)
    dist = cv2.distanceTransform((~inside).astype(np.uint8), cv2.DIST_L2, 5)
    return np.clip(1.0 - dist / max(1.0, 0.9 * factor), 0.0, 1.0).astype(np.float32)
