"""The stream coder of the semantic codecs: key/inter frames, references, rate control.

One mechanism for every semantic codec (today ``semantic-gan``; a diffusion
renderer reads the same layers). The codec supplies the networks and the
renderer (:class:`SemanticSource`); this module decides what each frame sends.

A key frame is the codec's intra container plus a frame-info layer
(``gop`` > 1 only; ``gop=1`` streams are exactly the per-frame containers).
An inter frame carries:

* the frame-info layer (key/inter, stream tag, sequence number, reference);
* the map as a ``segmap-inter`` layer coded against the reference map (with
  the global shift the encoder estimated), or nothing when the map equals the
  reference map; an intra ``segmap`` never (a key frame is cheaper);
* the colour map as a ``colormap-delta`` against the reference's coefficients
  (dead zone: coefficients move only when they drift by 1.25 steps), an
  intra ``colormap`` when the rate controller changed the thumbnail size or
  quantiser, or nothing when no coefficient moved;
* no decoder parameters (the key frame's seed and label table hold for the stream).

Encoder temporal stability (``stick``): a map cell keeps its predicted label
unless another class beats it by more than ``stick`` in the segmenter's logits,
so segmentation noise neither flickers nor costs bytes. A scene cut (more than
``scenecut`` of the cells changed) makes the frame a key frame.

Receiver: :class:`SemanticDecoderSession` holds the last decoded frame of the
stream (map, colour coefficients, seed, rendering). A frame whose map, colours
and seed equal the reference's is not rendered again: the previous rendering
is returned, so a static scene does not flicker at all. When only some map
cells changed (and the colours did not), the receiver's temporal hold
(``temporal=hold``, the default receiver option; ``off`` renders every frame
anew) keeps the previous pixels away from the changes and blends the new
rendering in around them (:func:`hold_unchanged`): regions whose labels did
not change do not flicker. The noise is the seed's, the same for the whole
stream.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..bitstream import Container, LayerId, pack, unpack
from ..errors import BitstreamError, UsageError
from ..layers import (ColorMapDeltaLayer, ColorMapLayer, DecoderParams, DecoderParamsLayer, FrameHeader,
                      FrameInfoLayer, SegMapInterLayer, SegMapLayer, map_shape, thumbnail)
from ..layers.colormap import dequantise, quantise
from ..layers.colormap_delta import delta_quantise
from ..layers.frame_info import SEQ_MODULO
from ..layers.segmap_inter import estimate_shift, predict
from .keyframes import KeyFramePolicy
from .rate import RateController
from .session import DecoderSession, EncoderSession, FrameInfo, ReferenceMissingError

_INTER_LAYERS = {int(LayerId.FRAME_INFO), int(LayerId.SEGMAP_INTER), int(LayerId.COLORMAP_DELTA),
                 int(LayerId.COLORMAP), int(LayerId.STRUCTURE), int(LayerId.ROI)}
#: layers the reference does not depend on: a frame that lost only these still updates it exactly as the
#: sender's copy (a link that drops the tail keeps the stream going)
_TAIL_LAYERS = {int(LayerId.STRUCTURE), int(LayerId.ROI)}
#: dead zone of the colour-map deltas (coefficients move after 0.5 + DEADZONE quantiser steps)
COLOR_DEADZONE = 0.75


@dataclass
class Reference:
    """What the receiver holds after a frame (the encoder keeps the same copy)."""

    tag: int
    seq: int
    height: int
    width: int
    labels: np.ndarray
    factor: int
    q: np.ndarray
    qi: int
    seed: int
    image: np.ndarray | None = None
    edges: np.ndarray | None = None     # the frame's structure layer (not predicted: sent every frame)


def _same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))


def frame_header(container: Container) -> FrameHeader | None:
    """The container's frame-info header, or None for a stand-alone (intra) container."""
    payload = container.find(LayerId.FRAME_INFO)
    return None if payload is None else FrameInfoLayer().decode(payload)


def drop_isolated_changes(labels: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """``labels`` with every changed cell (label != prediction) that has no changed 8-neighbour of the
    same new label set back to the prediction: a lone flipped cell is segmentation noise, costs a
    symbol's worth of bytes and flickers."""
    changed = labels != pred
    if not changed.any():
        return labels
    h, w = labels.shape
    lab = np.pad(np.where(changed, labels.astype(np.int16), -1), 1, constant_values=-1)
    support = np.zeros((h, w), bool)
    for oy in range(3):
        for ox in range(3):
            if (oy, ox) != (1, 1):
                support |= lab[oy:oy + h, ox:ox + w] == labels
    return np.where(changed & ~support, pred, labels).astype(np.uint8)


class SemanticEncoderSession(EncoderSession):
    """The sender of a semantic stream (see module doc). ``codec`` is a semantic codec instance."""

    def __init__(self, codec: Any, fps: float | None = None) -> None:
        super().__init__(codec, fps)
        cfg = codec.config
        self.policy = KeyFramePolicy(cfg["gop"], cfg["scenecut"])
        self.stream = cfg["gop"] > 1
        self.stick = float(cfg["stick"])
        self.max_bytes = int(cfg["max_bytes"])
        self.rate = RateController(cfg["kbps"], float(cfg["fps"]), self.max_bytes,
                                   default_fps=float(fps or 0.0)) if cfg["kbps"] else None
        self.points = codec.rate_points()
        self.point = codec.level_point()
        self.tag = secrets.randbelow(256)
        self.ref: Reference | None = None
        self.skipped = 0

    # -- one frame -------------------------------------------------------------------------
    def _encode(self, image, stamp_ns, force_key):
        from ..imageio import as_rgb

        image = as_rgb(image)
        H, W = image.shape[:2]
        resized = self.ref is not None and (H, W) != (self.ref.height, self.ref.width)
        reason = self.policy.reason(has_reference=self.ref is not None, forced=force_key, resized=resized)
        logits = self.codec.segment_logits(image)
        allowance = self.rate.allowance(stamp_ns) if self.rate else None
        limit = allowance if allowance is not None else (self.max_bytes or None)
        if self.rate:
            order = list(range(min(self.point + 1, len(self.points) - 1), -1, -1))
        else:
            order = list(range(self.point, -1, -1)) if self.max_bytes else [self.point]
        built = None
        for p in order:
            built = self._build(p, image, logits, reason, limit)
            if limit is None or len(built[0]) <= limit:
                break
        data, info, ref = built
        if limit is not None and len(data) > limit:
            if self.ref is not None and not info.key and not resized:
                data, info, ref = self._skip_frame()  # nothing affordable: repeat the reference
            if self.max_bytes and len(data) > self.max_bytes:
                raise UsageError(f"frame of {len(data)} bytes at the smallest operating point exceeds "
                                 f"max_bytes={self.max_bytes} (a key frame of this {W}x{H} stream needs at "
                                 f"least that much)")
        if self.rate:
            self.rate.spent(len(data))
        self.point = info.details.get("point", self.point)
        self.policy.sent(info.key)
        self.ref = ref              # None after a classic-fallback frame: the next frame is a key frame
        return data, info

    def _seq(self) -> int:
        return self.frames % SEQ_MODULO

    def _frame_info(self, key: bool) -> list[tuple[int, bytes]]:
        if not self.stream:
            return []
        head = FrameHeader(key, self.tag, self._seq(), 0 if key else 1)
        return [(LayerId.FRAME_INFO, FrameInfoLayer().encode(head))]

    def _skip_frame(self) -> tuple[bytes, FrameInfo, Reference]:
        ref = self.ref
        self.skipped += 1
        data = pack(self.codec.codec_ids[0], ref.height, ref.width, self._frame_info(False))
        new = Reference(self.tag, self._seq(), ref.height, ref.width, ref.labels, ref.factor, ref.q, ref.qi, ref.seed)
        return data, FrameInfo(key=False, reason="", details={"point": self.point, "skip": True}), new

    def _build(self, p: int, image: np.ndarray, logits, reason: str,
               limit: int | None = None) -> tuple[bytes, FrameInfo, Reference | None]:
        codec, ref = self.codec, self.ref
        lv = self.points[p]
        H, W = image.shape[:2]
        factor = codec.grid_factor(lv, H, W)
        labels, grid_logits = codec.grid_labels(logits, map_shape(H, W, factor))
        key = bool(reason)
        details: dict[str, Any] = {"point": p, "level": lv.name, "factor": factor}
        if not key:
            if labels.shape == ref.labels.shape:
                shift = estimate_shift(labels, ref.labels)
            else:
                shift = (0, 0)
            pred = predict(ref.labels, *labels.shape, *shift)
            if self.stick > 0:
                keep = np.take_along_axis(grid_logits, pred[None].astype(np.int64), 0)[0] \
                    >= grid_logits.max(0) - self.stick
                labels = np.where(keep, pred, labels).astype(np.uint8)
            labels = drop_isolated_changes(labels, pred)
            changed = float(np.mean(labels != pred))
            details["changed"] = changed
            if self.policy.scene_cut(changed):
                key, reason = True, "scene-cut"
        tw, th = min(lv.thumb[0], W), min(lv.thumb[1], H)
        thumb = thumbnail(image, tw, th)
        k = codec.num_classes
        seed = codec.config["seed"]
        head = self._frame_info(key)
        if key:
            q = quantise(thumb, lv.color_qi)
            params = DecoderParamsLayer().encode(DecoderParams(codec.encoder_label_table(), seed))
            layers = [
                (LayerId.DECODER_PARAMS, params), (LayerId.SEGMAP, SegMapLayer(num_classes=k).encode(labels)),
                (LayerId.COLORMAP, ColorMapLayer.encode_quantised(q, lv.color_qi))]
        else:
            layers = []
            if not (shift == (0, 0) and np.array_equal(labels, ref.labels)):
                layers.append((LayerId.SEGMAP_INTER, SegMapInterLayer(num_classes=k).encode((labels, ref.labels, shift))))
            if ref.q.shape == (3, th, tw) and ref.qi == lv.color_qi:
                q = delta_quantise(thumb, ref.q, lv.color_qi, COLOR_DEADZONE)
                if not np.array_equal(q, ref.q):
                    layers.append((LayerId.COLORMAP_DELTA, ColorMapDeltaLayer().encode((q, ref.q, lv.color_qi))))
            else:
                q = quantise(thumb, lv.color_qi)
                layers.append((LayerId.COLORMAP, ColorMapLayer.encode_quantised(q, lv.color_qi)))
        layers += codec.structure_layers(image)
        layers = codec.select(image, labels, grid_logits, factor, layers, head, cap=limit, stream=self.stream)
        new = Reference(self.tag, self._seq(), H, W, labels, factor, q, lv.color_qi, seed)
        if codec.last_roi is not None:
            details["roi"] = codec.last_roi.as_dict()
            if codec.last_roi.fallback:              # a classic picture: decodable alone, no reference after it
                key, reason, new = True, reason or "fallback", None
                layers = self._frame_info(True) + layers[len(head):]
        data = pack(codec.codec_ids[0], H, W, layers)
        details["layers"] = {LayerId(lid).name.lower(): len(pl) for lid, pl in layers}
        return data, FrameInfo(key=key, reason=reason, details=details), new


def hold_unchanged(previous: np.ndarray, rendered: np.ndarray, changed_cells: np.ndarray, factor: int) -> np.ndarray:
    """Temporal hold: pixels far from every map cell whose label changed keep the previous frame's
    pixels; within ``2 * factor`` pixels of a change the new rendering is blended in linearly, so the
    changed regions join the held ones without a seam. (Only used when the colour map is unchanged.)"""
    import cv2

    if not changed_cells.any():
        return previous
    H, W = rendered.shape[:2]
    ys = np.minimum(np.arange(H) // factor, changed_cells.shape[0] - 1)
    xs = np.minimum(np.arange(W) // factor, changed_cells.shape[1] - 1)
    steady = (~changed_cells[ys[:, None], xs[None, :]]).astype(np.uint8)
    dist = cv2.distanceTransform(steady, cv2.DIST_L2, 3)
    keep = np.clip(dist / (2.0 * factor), 0.0, 1.0)[:, :, None]
    out = keep * previous.astype(np.float32) + (1.0 - keep) * rendered.astype(np.float32)
    return np.rint(out).astype(np.uint8)


class SemanticDecoderSession(DecoderSession):
    """The receiver of a semantic stream: holds the reference, refuses inter frames without it."""

    stateful = True

    def __init__(self, codec: Any) -> None:
        super().__init__(codec)
        self.ref: Reference | None = None
        self.rendered = 0
        self.hold = codec.config.get("temporal", "hold") == "hold"

    def reset(self) -> None:
        self.ref = None

    def _decode(self, data):
        container = unpack(data)
        codec = self.codec
        if container.codec_id not in codec.codec_ids:
            raise BitstreamError(f"codec id {container.codec_id} cannot be decoded by codec {codec.name!r}")
        head = frame_header(container)
        H, W = container.height, container.width
        fallback = codec.fallback_picture(container, allowed=(LayerId.ROI, LayerId.FRAME_INFO))
        if fallback is not None:
            if head is not None and not head.key:
                raise BitstreamError("classic-fallback frame flagged as an inter frame")
            self.ref = None                              # the next frame of the stream is a key frame
            return fallback, True
        if container.truncated and (not set(container.declared[len(container.layers):]) <= _TAIL_LAYERS
                                    or (head is None or head.key) and container.find(LayerId.SEGMAP) is None):
            return self._truncated(container, head)      # (a classic-fallback frame cut before its picture too)
        if head is None or head.key:
            labels, factor, (q, qi), seed = codec.read_key_layers(container)
            tag, seq = (head.stream_tag, head.seq) if head else (-1, -1)
            new = Reference(tag, seq, H, W, labels, factor, q, qi, seed)
        else:
            new = self._inter(container, head)
        new.edges = codec.read_structure(container)
        prev = self.ref
        if (prev is not None and prev.image is not None and (H, W) == (prev.height, prev.width)
                and new.seed == prev.seed and np.array_equal(new.labels, prev.labels)
                and new.qi == prev.qi and np.array_equal(new.q, prev.q) and _same(new.edges, prev.edges)):
            new.image = prev.image                       # nothing changed: no new rendering, no flicker
        else:
            new.image = codec.render(new.labels, new.factor, dequantise(new.q, new.qi), H, W, new.seed,
                                     structure=new.edges)
            self.rendered += 1
            if (self.hold and prev is not None and prev.image is not None and head is not None and not head.key
                    and new.labels.shape == prev.labels.shape and new.qi == prev.qi and np.array_equal(new.q, prev.q)
                    and _same(new.edges, prev.edges)):
                new.image = hold_unchanged(prev.image, new.image, prev.labels != new.labels, new.factor)
        self.ref = new
        roi = codec.read_roi(container, new.labels, new.factor)
        out = new.image.copy() if roi is None else codec.paint_roi(new.image, roi, new.labels, new.factor)
        return out, head is None or head.key

    def _truncated(self, container: Container, head: FrameHeader | None):
        """A frame cut inside its semantic layers (format 4; a cut that lost only structure or ROI layers
        decodes as usual): rendered from what arrived -- an inter frame on top of the reference's
        layers -- but it is no reference: the sender's copy holds the whole frame, so the stream waits
        for its next key frame (inter frames until then raise ReferenceMissingError)."""
        codec = self.codec
        key = head is None or head.key
        if not key:
            new = self._inter(container, head)
            if container.layer_ids == [LayerId.FRAME_INFO] and self.ref.image is not None:
                out = self.ref.image.copy()              # nothing of this frame arrived but its header
            else:
                out = codec.render(new.labels, new.factor, dequantise(new.q, new.qi), container.height,
                                   container.width, new.seed, structure=codec.read_structure(container))
        else:
            out = codec.decode_container(container)
        self.ref = None
        return out, key

    def _inter(self, container: Container, head: FrameHeader) -> Reference:
        ref = self.ref
        if ref is None or ref.tag != head.stream_tag or ref.seq != head.ref_seq:
            have = "no reference" if ref is None else f"frame {ref.seq} of stream {ref.tag}"
            raise ReferenceMissingError(
                f"inter frame {head.seq} of stream {head.stream_tag} references frame {head.ref_seq}, the "
                f"receiver holds {have} (a frame was lost or reordered); waiting for the next key frame")
        H, W = container.height, container.width
        if (H, W) != (ref.height, ref.width):
            raise BitstreamError(f"inter frame of {W}x{H} on a {ref.width}x{ref.height} reference")
        ids = container.layer_ids
        bad = sorted(set(ids) - _INTER_LAYERS)
        if bad or len(ids) != len(set(ids)):
            raise BitstreamError(f"inter frame with layers {ids}: only one each of frame-info, segmap-inter, "
                                 f"colormap-delta or colormap may appear")
        seg = container.find(LayerId.SEGMAP_INTER)
        labels, factor = ref.labels, ref.factor
        if seg is not None:
            _, k, h, w, _, _ = SegMapInterLayer.peek(seg)
            factor = self.codec.map_factor(h, w, H, W)
            if k != self.codec.decoder_classes():
                raise BitstreamError(f"inter seg-map has {k} classes, the decoder {self.codec.decoder_classes()}")
            labels = SegMapInterLayer(k).decode(seg, ref.labels, max_shape=(H, W))
        col = container.find(LayerId.COLORMAP_DELTA)
        q, qi = ref.q, ref.qi
        if col is not None:
            q = ColorMapDeltaLayer().decode(col, ref.q, ref.qi)
        intra_col = container.find(LayerId.COLORMAP)
        if intra_col is not None:
            if col is not None:
                raise BitstreamError("inter frame with both an intra and a delta colour map")
            q, qi = ColorMapLayer.decode_quantised(intra_col)
        return Reference(ref.tag, head.seq, H, W, labels, factor, q, qi, ref.seed)
