"""Selective coding (SSGC-style): which cells go as pixels, the byte budget split, the classic fallback.

One :class:`SelectiveCoder` per semantic codec instance, used by the per-frame encoder
(``encode_layers``) and by the stream sessions alike; :func:`blend` / :func:`read_roi` are the
receiver's half.

Per frame (sender):

1. the ROI cells = union of the configured sources (``masks``): class rule, low calibrated
   confidence (< ``roi_conf``), user mask/boxes;
2. **fallback**: when the uncertain cells cover more than ``fallback`` of the frame, the frame cannot
   be read: it is coded whole as one HEVC intra picture at the budget (a full-frame ROI layer, no
   semantic layers) -- on such frames semcomp is the classic codec at the same bytes;
3. otherwise the ROI's box (cells + one-cell margin) is coded at the finest QP (from ``roi_q``, at
   most ``ROI_Q_MAX``) and downscale (at most 2x) whose layer fits ``budget`` minus the semantic
   container's bytes; regions of lower priority are left out until it fits (user regions first, then
   the class rule's, then the least confident); if nothing fits, the ROI is dropped for this frame
   (counted, the frame stays semantic).

In a stream (``gop`` > 1) with neither ``budget=`` nor ``kbps=``, the automatic regions (classes,
uncertain) are not sent -- an auto budget would fill every lean inter frame with pixels -- but the
user's regions and the fallback are.

``budget`` (bytes per frame, everything on the link included) 0 = auto: ``AUTO_BPP`` bits per pixel
(see BENCHMARKS.md "Selective coding" for the measurement behind it), never below the semantic
layers' own size. A budget set explicitly that the semantic layers alone exceed is a UsageError, and
so is one too small for a fallback frame; an auto budget (or a stream's rate-control limit) keeps
such frames semantic instead (counted as dropped).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from ..bitstream.container import check_bytes
from ..errors import BitstreamError, UsageError
from ..layers.roi import MAX_RULE_CLASS, RoiData, RoiLayer, RoiMaskRule
from . import masks
from .picture import decode_box, encode_at_budget, fill_outside

log = logging.getLogger(__name__)

#: auto budget in bits per pixel (0 = budget param given explicitly)
AUTO_BPP = 0.009
def framing(room: int) -> int:
    """Container bytes a layer adds besides its payload when ``room`` bytes are left for both: table
    entry (id byte + length varint, <= 3 bytes under 2 MiB) and its check (``check_bytes``)."""
    return 1 + 3 + check_bytes(room - 6)
#: dilation (cells) of the class rule
CLASS_DILATION = 0
#: the coarsest ROI coding: QP and downscale (2**shift); coarser pixels are no better than generated ones
ROI_Q_MAX = 47
ROI_MAX_SHIFT = 1
#: below this many bytes for the ROI layer nothing useful fits (header + parameter sets + a slice)
MIN_ROI_BYTES = 40


@dataclass
class RoiReport:
    """What the sender did with one frame (``FrameInfo.details['roi']``, bench columns)."""

    sources: dict = field(default_factory=dict)   # cells per source
    cells: int = 0
    area: float = 0.0          # share of the frame's pixels in the coded region
    uncertain: float = 0.0     # share of the frame in uncertain cells
    budget: int = 0
    semantic_bytes: int = 0
    roi_bytes: int = 0
    q: int | None = None
    shift: int | None = None
    fallback: bool = False
    dropped: bool = False
    regions: list = field(default_factory=list)   # [regions sent, regions found] (priority order)

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


class SelectiveCoder:
    def __init__(self, codec) -> None:
        cfg = codec.config
        self.codec = codec
        self.sources = masks.parse_sources(cfg["roi"])
        self.threshold = float(cfg["roi_conf"])
        self.q_best = int(cfg["roi_q"])
        self.budget = int(cfg["budget"])
        self.fallback_share = float(cfg["fallback"])
        self.user_path = cfg["roi_mask"]
        self.user_boxes = cfg["roi_boxes"]
        if "user" in self.sources and not (self.user_path or self.user_boxes):
            raise UsageError("roi=...user needs roi_mask=PATH or roi_boxes=x0,y0,x1,y1;...")
        if (self.user_path or self.user_boxes) and "user" not in self.sources:
            raise UsageError("roi_mask / roi_boxes given but roi does not include 'user' (e.g. roi=user)")
        self._classes: int | None = None
        self._order: dict[int, int] = {}
        self._user_cache: tuple | None = None
        self._user_regions = 0
        self._calibration = None
        self.frames = 0
        self.fallbacks = 0
        self.dropped = 0

    @property
    def enabled(self) -> bool:
        return bool(self.sources)

    @property
    def classes(self) -> int:
        """Bit set of ``roi_classes`` (checked against the segmenter's class table on first use)."""
        if self._classes is None:
            seg = self.codec.segmenter
            text, names = self.codec.config["roi_classes"], seg.config.get("class_names")
            if text == masks.DEFAULT_CLASSES:      # the default adapts to the segmenter's label table
                ids = masks.default_class_ids(names)
                if not ids:
                    log.warning("roi=classes: none of the default ROI classes (%s) is in the segmenter's label "
                                "table; set roi_classes", text)
            else:
                ids = masks.class_ids(text, names, seg.num_classes)
            self._order = {c: rank for rank, c in enumerate(ids)}
            self._classes = sum(1 << c for c in ids)
        return self._classes

    def calibration(self):
        if self._calibration is None:
            from ..models.confidence import Calibration, load_calibration

            self._calibration = load_calibration(self.codec._seg_path) or Calibration(temperature=1.0)
        return self._calibration

    # -- sender ----------------------------------------------------------------------------
    def cells(self, image: np.ndarray, labels: np.ndarray, grid_logits: np.ndarray, factor: int):
        """(components, rule-or-None, uncertain cells, per-source counts). ``components``: the ROI as
        connected cell regions in priority order -- the user's first, then the class rule's (in
        ``roi_classes`` order, smaller first), then the uncertain ones (least confident first);
        ``rule`` when the whole mask is exactly the class rule (the receiver derives it)."""
        H, W = image.shape[:2]
        shape = labels.shape
        counts, rule, ranked = {}, None, []
        uncertain = np.zeros(shape, bool)
        if "user" in self.sources:
            u = masks.pixels_to_cells(self.user_pixels(H, W), factor, shape)
            counts["user"] = int(u.sum())
            ranked += [((0, 0, int(c.sum())), c) for c in masks.components(u)]
        self._user_regions = len(ranked)          # they sort first
        if "classes" in self.sources and self.classes:
            c = masks.rule_cells(labels, self.classes, CLASS_DILATION)
            counts["classes"] = int(c.sum())
            for comp in masks.components(c):
                first = min((self._order.get(int(v), 99) for v in np.unique(labels[comp])), default=99)
                ranked.append(((1, first, int(comp.sum())), comp))
            rule = RoiMaskRule(self.classes, CLASS_DILATION) if self.classes < 1 << (MAX_RULE_CLASS + 1) else None
        if "uncertain" in self.sources:
            conf = self.calibration().confidence(grid_logits, grid=True)
            # regions the segmenter cannot read, not the thin band of doubt along every class boundary
            uncertain = masks.opening(masks.uncertain_cells(conf, self.threshold))
            counts["uncertain"] = int(uncertain.sum())
            ranked += [((2, float(conf[c].mean()), 0), c) for c in masks.components(uncertain)]
        if counts.get("uncertain") or counts.get("user"):
            rule = None                 # not derivable from the map: the mask goes explicitly
        if "full" in self.sources:      # the whole frame: one region, every other source inside it
            every = np.ones(shape, bool)
            counts["full"] = int(every.sum())
            k = self.codec.segmenter.num_classes
            all_classes = (1 << k) - 1
            rule = RoiMaskRule(all_classes, 0) if k <= MAX_RULE_CLASS + 1 and not counts.get("uncertain") \
                and not counts.get("user") else None
            ranked = [((0, 0, 0), every)]
            self._user_regions = 0
        return [c for _, c in sorted(ranked, key=lambda kc: kc[0])], rule, uncertain, counts

    def user_pixels(self, H: int, W: int) -> np.ndarray:
        """The user's mask and boxes as (H, W) bool; the mask file is read again only when it changes."""
        import os

        stamp = os.stat(self.user_path).st_mtime_ns if self.user_path and os.path.exists(self.user_path) else None
        key = (H, W, stamp)
        if self._user_cache is None or self._user_cache[0] != key:
            px = np.zeros((H, W), bool)
            if self.user_path:
                px |= masks.load_user_mask(self.user_path, H, W)
            if self.user_boxes:
                px |= masks.parse_boxes(self.user_boxes, H, W)
            self._user_cache = (key, px)
        return self._user_cache[1]

    def budget_for(self, H: int, W: int, semantic_bytes: int, cap: int | None = None) -> int:
        if cap is not None:          # stream rate control sets the frame's limit: no error, the loop adapts
            return min(cap, self.budget or max(semantic_bytes, round(AUTO_BPP * H * W / 8)))
        if self.budget:
            if semantic_bytes > self.budget:
                raise UsageError(f"budget={self.budget} bytes is smaller than the semantic layers alone "
                                 f"({semantic_bytes} bytes for this {W}x{H} frame at level "
                                 f"{self.codec.level.name}): raise budget or lower the level")
            return self.budget
        return max(semantic_bytes, round(AUTO_BPP * H * W / 8))

    def encode(self, image: np.ndarray, labels: np.ndarray, grid_logits: np.ndarray, factor: int,
               semantic_bytes: int, fallback_overhead: int, cap: int | None = None, stream: bool = False):
        """Decide the frame. Returns ``(mode, payload, report)``: mode ``"semantic"`` (payload None: no
        ROI), ``"roi"`` (payload = ROI layer to add) or ``"fallback"`` (payload = full-frame ROI layer
        that replaces the semantic layers; ``fallback_overhead`` = container bytes around it).

        The ROI is coded no coarser than QP ``ROI_Q_MAX`` at half resolution: when all of it does not fit
        the budget that way, its lowest-priority regions are left out (halving the list of regions until
        the rest fits); when not even the first region fits, the ROI is dropped for this frame."""
        H, W = image.shape[:2]
        self.frames += 1
        comps, rule, uncertain, counts = self.cells(image, labels, grid_logits, factor)
        budget = self.budget_for(H, W, semantic_bytes, cap)
        if stream and not self.budget and cap is None:
            # a stream without budget= or kbps=: an auto budget would fill every lean inter frame with
            # pixels (about doubling the stream): only the user's regions and the fallback stay
            comps = comps[:self._user_regions]
            rule = None
        cells = np.zeros(labels.shape, bool)
        for c in comps:
            cells |= c
        rep = RoiReport(sources=counts, cells=int(cells.sum()), budget=budget, semantic_bytes=semantic_bytes)
        rep.uncertain = float(masks.cells_to_pixels(uncertain, factor, H, W).mean())
        if rep.uncertain > self.fallback_share:
            # an explicit budget too small for the fallback is the user's error; an auto or rate-control
            # budget just keeps the frame semantic (counted as dropped)
            return self._fallback(image, budget, fallback_overhead, rep, strict=cap is None and self.budget > 0)
        if not comps:
            return "semantic", None, rep
        layer = RoiLayer()
        allowance = budget - semantic_bytes - framing(budget - semantic_bytes)
        n = len(comps) if allowance >= MIN_ROI_BYTES else 0
        while n:
            sel = np.zeros(labels.shape, bool)
            for c in comps[:n]:
                sel |= c
            mask = rule if (rule is not None and n == len(comps)) else sel
            box = masks.coded_box(sel, factor, H, W)
            top, left, h, w = box
            grown = masks.cells_to_pixels(masks.dilate(sel, 1), factor, H, W)
            pixels = fill_outside(image[top:top + h, left:left + w], grown[top:top + h, left:left + w])

            def size_of(hevc, shift, mask=mask, box=box):
                return len(layer.encode(RoiData(mask, box, shift, hevc)))

            got = encode_at_budget(pixels, allowance, size_of, self.q_best,
                                   max_shift=ROI_MAX_SHIFT, q_max=max(self.q_best, ROI_Q_MAX))
            if got is not None:
                hevc, rep.shift, rep.q = got
                payload = layer.encode(RoiData(mask, box, rep.shift, hevc))
                rep.roi_bytes, rep.area, rep.cells = len(payload), float(grown.mean()), int(sel.sum())
                rep.regions = [n, len(comps)]
                return "roi", payload, rep
            n //= 2
        self.dropped += 1
        rep.dropped = True
        log.info("ROI of %d cells does not fit the %d-byte budget (%d bytes of semantics): sent without it",
                 rep.cells, budget, semantic_bytes)
        return "semantic", None, rep

    def _fallback(self, image, budget, overhead, rep, strict: bool = True):
        H, W = image.shape[:2]
        box = (0, 0, H, W)
        layer = RoiLayer()

        def size_of(hevc, shift):
            return len(layer.encode(RoiData(None, box, shift, hevc)))

        got = encode_at_budget(image, budget - overhead - framing(budget - overhead), size_of, self.q_best)
        if got is None and not strict:       # the frame stays semantic
            self.dropped += 1
            rep.dropped = True
            return "semantic", None, rep
        if got is None:
            raise UsageError(f"budget={budget} bytes is too small to code this {W}x{H} frame classically "
                             f"(the fallback for frames the segmenter cannot read)")
        hevc, rep.shift, rep.q = got
        payload = layer.encode(RoiData(None, box, rep.shift, hevc))
        rep.fallback, rep.area, rep.roi_bytes = True, 1.0, len(payload)
        self.fallbacks += 1
        log.warning("frame %dx%d: %.0f%% of it uncertain (> %.0f%%): coded classically (%d bytes)",
                    W, H, 100 * rep.uncertain, 100 * self.fallback_share, len(payload))
        return "fallback", payload, rep


# -- receiver ------------------------------------------------------------------------------------

def read_roi(payload: bytes, H: int, W: int, labels: np.ndarray | None, factor: int | None) -> RoiData:
    """Parse a container's ROI layer against the frame and (for a masked ROI) the decoded seg map."""
    d = RoiLayer().decode(payload, frame=(H, W), map_shape=None if labels is None else labels.shape)
    if d.mask is not None and labels is None:
        raise BitstreamError("ROI layer with a mask but no seg map to place it on")
    if d.mask is None and labels is not None:
        raise BitstreamError("full-frame (fallback) ROI layer beside semantic layers")
    return d


def roi_cells(d: RoiData, labels: np.ndarray) -> np.ndarray:
    if isinstance(d.mask, RoiMaskRule):
        return masks.rule_cells(labels, d.mask.classes, d.mask.dilation)
    return np.asarray(d.mask, bool)


def decoded_box(d: RoiData, labels: np.ndarray, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """(pixels (h, w, 3) uint8, weight (h, w) float32) of a masked ROI layer's box: the decoded picture
    at frame resolution and its blending weight (1 on the ROI's cells, a linear ramp to 0 over the
    one-cell margin). Only the box is touched; mask cells outside it carry no pixels and are ignored."""
    return decode_box(d.hevc, d.box, d.shift), masks.alpha(roi_cells(d, labels), factor, 0, 0, box=d.box)


def blend(rendered: np.ndarray, box: tuple[int, int, int, int], pixels: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """The generated frame with the box's decoded pixels blended in by ``weight`` (:func:`decoded_box`)."""
    top, left, h, w = box
    out = rendered.copy()
    region = out[top:top + h, left:left + w].astype(np.float32)
    a = weight[..., None]
    out[top:top + h, left:left + w] = np.clip(np.rint(a * pixels + (1.0 - a) * region), 0, 255).astype(np.uint8)
    return out


def full_frame(box: tuple[int, int, int, int], pixels: np.ndarray, weight: np.ndarray, H: int, W: int):
    """The box's pixels and weight placed in (H, W) frames of zeros (a generator's ROI conditioning)."""
    top, left, h, w = box
    pix, a = np.zeros((H, W, 3), np.uint8), np.zeros((H, W), np.float32)
    pix[top:top + h, left:left + w], a[top:top + h, left:left + w] = pixels, weight
    return pix, a


__all__ = ["SelectiveCoder", "RoiReport", "read_roi", "blend", "roi_cells", "decoded_box", "full_frame"]
