"""The benchmark engine shared by ``semcomp bench`` (image folders, datasets, bags) and ``semcomp demo``.

For every frame and every codec configuration it encodes, decodes, times both
stages and scores the reconstruction. Per-image rows are streamed to
``per_image.csv`` and ``per_image.json`` as they come (memory does not grow
with the number of frames beyond a few numbers per frame for percentiles);
:meth:`BenchRunner.finish` writes ``summary.csv``, ``summary.json`` and the
rate-distortion plots.

Rate is honest: ``bytes`` is the whole container, ``bpp = 8 * bytes / (H * W)``.

Timings: before its first frame, every codec encodes and decodes that frame once
untimed (``warmup``), so model loading and ONNX export do not land in the
first frame's latency; every frame is then timed.

Means count every frame: a reconstruction identical to its original (infinite
PSNR) is reported and averaged at ``PSNR_CAP_DB`` (100 dB), flagged in the
``lossless`` column and counted in ``lossless_frames``. mIoU columns of the
summary are dataset-level (summed confusion matrices; see
:mod:`semcomp_core.metrics.segmentation`); per-image rows hold that image's own
value.

What is scored is what a receiver renders: every container is decoded through
:func:`semcomp_core.codecs.decoder_for` -- the path ``semcomp decode`` and
``decoder_node`` use -- with the configuration's receiver-side options (e.g.
``decoder=DIR``), never by the encoding instance itself (codecs without
containers, the video anchors, by their receiver instance,
:func:`semcomp_core.codecs.receiver_instance`).

Streams (``stream=True``: ``semcomp bench --sequence`` and ``--bag``): frames
are one camera's, in order. Every codec then codes them through its stream
sessions (:meth:`Codec.open_encoder` on the sender's instance,
:meth:`Codec.open_decoder` on the receiver's): stateful codecs send inter
frames, per-frame codecs are unchanged. Rows gain ``key`` (1 for key frames)
and the summary gains ``key_frames``, ``kbps`` -- 8 x all bytes / the stream's
duration (frames x the frame interval: ``fps``, else the median stamp
interval) -- and ``flicker``: the mean absolute difference (0..255) between
consecutive reconstructions over the pixels whose class did not change in the
*original* frames (the segmenter's labels of frames t-1 and t agree; all
pixels without a segmenter), next to ``flicker_original``, the same figure
of the original frames. The same mask for every codec keeps the figures
comparable.
"""
from __future__ import annotations

import csv
import json
import math
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..bitstream import bits_per_pixel, unpack
from ..codecs import Codec, decoder_for, receiver_instance
from ..errors import UsageError
from ..imageio import save_png
from ..metrics import SemanticPreservation, edge_f_score, ms_ssim, psnr, psnr_for_mean, texture

PER_IMAGE_FIELDS = ["image", "codec", "implementation", "height", "width", "bytes", "bpp", "psnr", "lossless",
                    "ms_ssim", "edge_f", "edge_precision", "edge_recall", "texture", "texture_original",
                    "encode_ms", "decode_ms", "roi_bytes", "fallback", "structure_bytes",
                    "miou_recon_vs_orig", "miou_orig_vs_gt", "miou_recon_vs_gt",
                    "eval_miou_recon_vs_orig", "eval_miou_orig_vs_gt", "eval_miou_recon_vs_gt"]
_SEM_ROW = ("miou_recon_vs_orig", "miou_orig_vs_gt", "miou_recon_vs_gt")
_SEM_SUMMARY = ("miou_orig_vs_gt", "miou_recon_vs_gt", "miou_recon_vs_orig", "preservation")
SUMMARY_METRICS = ["bytes", "bpp", "psnr", "ms_ssim", "edge_f", "edge_precision", "edge_recall", "texture",
                   "texture_original", "encode_ms", "decode_ms"]


@dataclass
class FrameOutcome:
    """What one codec did to one frame: the reported row, the bitstream and the reconstruction."""

    row: dict
    data: bytes
    reconstruction: np.ndarray


@dataclass
class _CodecStats:
    codec: Codec
    label: str
    values: dict = field(default_factory=lambda: {m: array("d") for m in SUMMARY_METRICS})
    semantic: SemanticPreservation | None = None
    eval_semantic: SemanticPreservation | None = None
    lossless: int = 0
    warmed: bool = False
    implementation: str = ""
    encoder: object = None
    decoder: object = None
    previous: np.ndarray | None = None
    flicker_sum: float = 0.0
    flicker_n: int = 0
    key_frames: int = 0
    total_bytes: int = 0
    roi_bytes: int = 0
    structure_bytes: int = 0
    roi_frames: int = 0
    fallback_frames: int = 0
    roi_dropped_before: int = 0       # the codec's own counter when this run started


def _finite(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


class BenchRunner:
    """Run codecs over frames and stream the results to ``out_dir``.

    ``segmenter``: optional callable image -> (H, W) label map with
    ``num_classes`` classes; when given, semantic preservation is measured
    (and against ground truth when frames come with labels). ``eval_segmenter``:
    a second, independent segmenter (same classes) scored the same way into
    ``eval_*`` columns -- the honest number for codecs whose decoder was trained
    against ``segmenter``.
    """

    def __init__(self, codecs: list[Codec], out_dir: str | Path, *, save_recon: bool = False,
                 segmenter: Callable[[np.ndarray], np.ndarray] | None = None, num_classes: int | None = None,
                 extra_fields: list[str] | None = None,
                 eval_segmenter: Callable[[np.ndarray], np.ndarray] | None = None, warmup: bool = True,
                 stream: bool = False, fps: float | None = None) -> None:
        labels = [c.label() for c in codecs]
        dup = {x for x in labels if labels.count(x) > 1}
        if dup:
            raise ValueError(f"codec configuration listed twice: {sorted(dup)}")
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.warmup = warmup
        self.save_recon = save_recon
        self.stats = [_CodecStats(c, c.label()) for c in codecs]
        for st in self.stats:
            st.roi_dropped_before = getattr(getattr(st.codec, "selective", None), "dropped", 0)
        if segmenter is not None:
            base = SemanticPreservation(segmenter, num_classes)
            for i, st in enumerate(self.stats):
                st.semantic = base if i == 0 else base.spawn()
        if eval_segmenter is not None:
            k = getattr(eval_segmenter, "num_classes", num_classes)
            if num_classes is not None and k != num_classes:
                raise UsageError(f"evaluation segmenter has {k} classes, the segmenter {num_classes}")
            base = SemanticPreservation(eval_segmenter, k)
            for i, st in enumerate(self.stats):
                st.eval_semantic = base if i == 0 else base.spawn()
        self.stream = stream
        self.fps = fps
        self._stamps = array("q")
        self._previous: tuple[np.ndarray, np.ndarray | None] | None = None
        self._orig_flicker = [0.0, 0]
        self.fields = PER_IMAGE_FIELDS + (["key"] if stream else []) + list(extra_fields or [])
        self._csv_file = open(self.out_dir / "per_image.csv", "w", newline="")
        self._csv = csv.DictWriter(self._csv_file, fieldnames=self.fields, extrasaction="ignore")
        self._csv.writeheader()
        self._json_file = open(self.out_dir / "per_image.json", "w")
        self._json_file.write("[")
        self._rows = 0
        self.frames = 0

    # -- per frame ----------------------------------------------------------------------
    def run_frame(self, name: str, image: np.ndarray, label: np.ndarray | None = None,
                  extra: dict | None = None, stamp_ns: int | None = None) -> list[FrameOutcome]:
        """Encode/decode ``image`` with every codec; returns one outcome per codec.
        In stream mode frames must come in order; ``stamp_ns`` is the frame's capture time."""
        outcomes = []
        h, w = image.shape[:2]
        if stamp_ns is not None:
            self._stamps.append(int(stamp_ns))
        mask = self._stable_mask(name, image) if self.stream else None
        for st in self.stats:
            if self.warmup and not st.warmed:  # model loading / ONNX export stay out of the timings
                self.receive(st.codec, st.codec.encode(image))
                st.warmed = True
            if self.stream and st.encoder is None:
                st.encoder = st.codec.open_encoder(self.fps)
                st.decoder = self.receiver(st.codec).open_decoder()
            t0 = time.perf_counter()
            data = st.encoder.encode(image, stamp_ns) if self.stream else st.codec.encode(image)
            t1 = time.perf_counter()
            recon = st.decoder.decode(data) if self.stream else self.receive(st.codec, data)
            t2 = time.perf_counter()
            p = psnr(image, recon)
            row = {"image": name, "codec": st.label, "implementation": self.implementation(st),
                   "height": h, "width": w, "bytes": len(data), "bpp": bits_per_pixel(len(data), h, w),
                   "psnr": psnr_for_mean(p), "lossless": int(math.isinf(p)), "ms_ssim": ms_ssim(image, recon),
                   "encode_ms": (t1 - t0) * 1e3, "decode_ms": (t2 - t1) * 1e3}
            edges = edge_f_score(image, recon)
            row.update(texture=texture(recon), texture_original=texture(image))
            row.update(edge_f=edges.f, edge_precision=edges.precision, edge_recall=edges.recall)
            row["roi_bytes"], row["fallback"], row["structure_bytes"] = layer_split(data)
            st.roi_bytes += row["roi_bytes"]
            st.structure_bytes += row["structure_bytes"]
            st.roi_frames += bool(row["roi_bytes"]) and not row["fallback"]
            st.fallback_frames += row["fallback"]
            if self.stream:
                row["key"] = int(st.encoder.last.key)
                st.key_frames += row["key"]
                self._flicker(st, recon, mask)
            st.total_bytes += len(data)
            for prefix, acc in (("", st.semantic), ("eval_", st.eval_semantic)):
                if acc is not None:
                    sem = acc.update(image, recon, label, key=name)
                    row.update({prefix + k: _finite(sem[k]) for k in _SEM_ROW if k in sem})
            st.lossless += row["lossless"]
            if extra:
                row.update(extra)
            for m in SUMMARY_METRICS:
                if row[m] is not None:
                    st.values[m].append(row[m])
            self._write_row(row)
            if self.save_recon:
                save_png(self.out_dir / _safe(st.label) / f"{name}.png", recon)
            outcomes.append(FrameOutcome(row, data, recon))
        self.frames += 1
        return outcomes

    # -- streams ----------------------------------------------------------------------------
    def _stable_mask(self, name: str, image: np.ndarray) -> np.ndarray | None:
        """Pixels whose class did not change since the previous original frame (None for the first
        frame or after a size change); also accumulates the originals' own flicker."""
        st0 = self.stats[0]
        labels = st0.semantic.cache.get(image, name) if st0.semantic is not None else None
        prev, self._previous = self._previous, (image, labels)
        if prev is None or prev[0].shape != image.shape:
            return None
        mask = np.ones(image.shape[:2], bool) if labels is None else (labels == prev[1])
        if mask.any():
            diff = np.abs(image.astype(np.int16) - prev[0].astype(np.int16)).mean(axis=2)
            self._orig_flicker[0] += float(diff[mask].mean())
            self._orig_flicker[1] += 1
        return mask

    @staticmethod
    def _flicker(st: "_CodecStats", recon: np.ndarray, mask: np.ndarray | None) -> None:
        prev, st.previous = st.previous, recon
        if mask is None or prev is None or prev.shape != recon.shape or not mask.any():
            return
        diff = np.abs(recon.astype(np.int16) - prev.astype(np.int16)).mean(axis=2)
        st.flicker_sum += float(diff[mask].mean())
        st.flicker_n += 1

    def frame_interval_s(self) -> float | None:
        """Seconds per frame of the stream: 1/fps when given, else the median stamp interval."""
        if self.fps:
            return 1.0 / self.fps
        if len(self._stamps) >= 2:
            d = np.diff(np.sort(np.frombuffer(self._stamps, dtype=np.int64)))
            d = d[d > 0]
            if d.size:
                return float(np.median(d)) / 1e9
        return None

    def receiver(self, codec: Codec) -> Codec:
        """The receiver instance a receiver configured like ``codec``'s receiver-side options runs."""
        return receiver_instance(type(codec), codec.device, codec.receiver_config())

    def implementation(self, st: "_CodecStats") -> str:
        """What ran on both sides: the encoding instance and the receiver's (one text when they agree).
        Worked out once per codec, after its first frame (when its networks are loaded)."""
        if not st.implementation:
            enc = st.codec.implementation
            dec = self.receiver(st.codec).implementation
            st.implementation = enc if enc == dec else f"sender: {enc} | receiver: {dec}"
        return st.implementation

    @staticmethod
    def receive(codec: Codec, data: bytes) -> np.ndarray:
        """Decode ``data`` exactly as a receiver configured like ``codec``'s receiver-side options would
        (:func:`decoder_for` on the parsed container; codecs without containers by their receiver instance)."""
        if not codec.codec_ids:
            return receiver_instance(type(codec), codec.device, codec.receiver_config()).decode(data)
        container = unpack(data)
        return decoder_for(container, codec.device, codec.receiver_config()).reconstruct(container)

    def _write_row(self, row: dict) -> None:
        self._csv.writerow(row)
        self._json_file.write(("," if self._rows else "") + "\n" + json.dumps(row))
        self._rows += 1

    # -- end ------------------------------------------------------------------------------
    def summary(self) -> list[dict]:
        out = []
        for st in self.stats:
            s = {"codec": st.label, "name": st.codec.name, "implementation": st.implementation or st.codec.implementation,
                 "frames": len(st.values["bytes"]), "lossless_frames": st.lossless}
            for m in SUMMARY_METRICS:
                vals = np.frombuffer(st.values[m], dtype=np.float64) if len(st.values[m]) else np.zeros(0)
                s[m] = float(vals.mean()) if vals.size else None
                if m.endswith("_ms") and vals.size:
                    s[m.replace("_ms", "_p50_ms")] = float(np.percentile(vals, 50))
                    s[m.replace("_ms", "_p95_ms")] = float(np.percentile(vals, 95))
            interval = self.frame_interval_s()
            duration = interval * s["frames"] if interval else None
            s["kbps"] = 8 * st.total_bytes / duration / 1e3 if duration else None
            selective = getattr(st.codec, "selective", None)
            if st.roi_bytes or (selective is not None and selective.enabled):  # the byte split, the fallbacks
                s["roi_frames"], s["fallback_frames"] = st.roi_frames, st.fallback_frames
                s["roi_dropped"] = selective.dropped - st.roi_dropped_before if selective is not None else 0
                s["roi_share"] = st.roi_bytes / st.total_bytes if st.total_bytes else None
                s["roi_bytes"] = st.roi_bytes / max(1, len(st.values["bytes"]))
            if st.structure_bytes:
                s["structure_bytes"] = st.structure_bytes / max(1, len(st.values["bytes"]))
            if self.stream:
                s["key_frames"] = st.key_frames
                s["flicker"] = st.flicker_sum / st.flicker_n if st.flicker_n else None
                s["flicker_original"] = (self._orig_flicker[0] / self._orig_flicker[1]
                                         if self._orig_flicker[1] else None)
                if hasattr(st.encoder, "skipped"):            # stream coders that may repeat frames
                    s["skipped_frames"] = st.encoder.skipped
            for prefix, acc in (("", st.semantic), ("eval_", st.eval_semantic)):
                if acc is not None:
                    sem = acc.summary()
                    s.update({prefix + k: sem[k] for k in _SEM_SUMMARY})
            out.append(s)
        return out

    def finish(self, meta: dict | None = None) -> list[dict]:
        """Close the per-image files; write summary CSV/JSON and plots. Returns the summary rows."""
        from .report import plot_rate_distortion

        self._json_file.write("\n]\n")
        self._json_file.close()
        self._csv_file.close()
        rows = self.summary()
        keys: list[str] = []
        for r in rows:
            keys += [k for k in r if k not in keys]
        with open(self.out_dir / "summary.csv", "w", newline="") as f:
            wr = csv.DictWriter(f, fieldnames=keys)
            wr.writeheader()
            wr.writerows(rows)
        doc = {"meta": meta or {}, "frames": self.frames, "codecs": rows}
        (self.out_dir / "summary.json").write_text(json.dumps(doc, indent=2) + "\n")
        if self.frames:
            plot_rate_distortion(rows, self.out_dir / "rate_distortion.png")
        return rows

    def close(self) -> None:
        for f in (self._json_file, self._csv_file):
            if not f.closed:
                f.close()


def layer_split(data: bytes) -> tuple[int, int, int]:
    """(bytes of the ROI layer, 1 if it is the classic full-frame fallback, bytes of the structure layer)
    of a container; zeros for what it lacks (video packets included)."""
    from ..bitstream import LayerId, unpack
    from ..errors import BitstreamError
    from ..layers.roi import FULL_FRAME

    try:
        c = unpack(data)
    except BitstreamError:
        return 0, 0, 0
    roi, structure = c.find(LayerId.ROI), c.find(LayerId.STRUCTURE)
    return (len(roi) if roi else 0, int(bool(roi and roi[0] & FULL_FRAME)), len(structure or b""))


def roi_split(data: bytes) -> tuple[int, int]:
    """(bytes of the ROI layer, 1 if it is the classic full-frame fallback) of a container."""
    return layer_split(data)[:2]


def _safe(label: str) -> str:
    """A folder name for a codec label (``bpg:q=45`` -> ``bpg_q45``; plain names unchanged)."""
    return label.replace(":", "_").replace("=", "")
