"""The benchmark node's per-frame logic, without ROS.

``BenchmarkStage`` receives three streams -- original images, reconstructions
and (optionally) the bitstreams between them -- and pairs them by header stamp
(integer nanoseconds). For every original/reconstruction pair it computes:

* rate: container ``bytes`` and ``bpp`` (when the bitstream was seen);
* fidelity: ``psnr`` (identical frames: ``inf`` in the per-frame CSV, counted as
  :data:`~semcomp_core.metrics.image_quality.PSNR_CAP_DB` in means and percentiles),
  ``ms_ssim`` (on every ``quality_every``-th pair, so a slow CPU can keep up);
* semantics, when a segmenter is given: ``frame_miou_recon_vs_orig`` per frame,
  and in the summary and diagnostics the dataset-level ``miou_recon_vs_orig``
  from the summed confusion matrices (``SemanticPreservation.summary()``, as
  ``semcomp bench`` computes it -- not a mean of per-frame mIoUs);
* latency, all with this process's clock (``recv_ns`` arguments):

  - ``latency_ms`` = reconstruction receipt - original receipt: encoder, two
    transports and decoder, measured on one clock; meaningful live and when a
    bag is replayed (its recorded stamps are in the past);
  - ``encode_stage_ms`` = bitstream receipt - original receipt and
    ``decode_stage_ms`` = reconstruction receipt - bitstream receipt (per stage);
  - with ``stamp_latency=True`` (live cameras whose clock is synchronised with
    this machine) also ``stamp_latency_ms`` = reconstruction receipt - header
    stamp (the ``ros2 topic delay`` convention), ``original_latency_ms`` and
    ``bitstream_latency_ms`` likewise. Replay turns it off: it is wall clock
    minus recorded time there.

Memory is bounded: at most ``max_pending`` unpaired stamps are kept (the
oldest is evicted first and counted as ``dropped`` if its reconstruction never
came, ``unmatched`` if its original never came); live statistics use rolling
windows. Rows are streamed to ``<csv_path>.part`` as they come; :meth:`close`
(called on node shutdown) renames it to ``csv_path`` and writes
``<stem>_summary.csv`` with whole-run means and p50/p95 read back from it.

Bad input is counted, never raised: a reconstruction whose size differs from
its original (``size_mismatch``), an image that cannot be read (``rejected``),
a bitstream that does not parse (``corrupt``), a segmenter that fails on a
frame (``segmenter_errors``; the frame is scored without semantics), a CSV
that cannot be written (``csv_errors``; scoring goes on). A bitstream that
arrives after its frame was scored is counted as ``late_bitstreams`` (that
frame's row has no bytes/bpp).
"""
from __future__ import annotations

import csv
import math
import os
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..bitstream import bits_per_pixel, unpack
from ..errors import BitstreamError
from ..metrics import PSNR_CAP_DB, SemanticPreservation, ms_ssim, psnr, psnr_for_mean
from ..image_messages import FORMAT_PREFIX, as_bytes, frame_id, image_to_rgb, stamp_ns
from .stats import Counters, DiagnosticReport, RateMeter, RollingWindow, fmt

FIELDS = ["stamp", "frame_id", "codec", "height", "width", "bytes", "bpp", "psnr", "ms_ssim",
          "latency_ms", "encode_stage_ms", "decode_stage_ms", "stamp_latency_ms", "original_latency_ms",
          "bitstream_latency_ms", "frame_miou_recon_vs_orig"]
#: columns summarised as mean, p50 and p95 in the summary CSV (per-frame mIoU is not: the summary's
#: ``miou_recon_vs_orig`` is dataset-level)
SUMMARY_COLUMNS = ["bytes", "bpp", "psnr", "ms_ssim", "latency_ms", "encode_stage_ms", "decode_stage_ms",
                   "stamp_latency_ms", "original_latency_ms", "bitstream_latency_ms"]


@dataclass
class _Pending:
    """What has arrived so far for one stamp."""

    frame_id: str = ""
    image: np.ndarray | None = None
    orig_ns: int | None = None
    recon: np.ndarray | None = None
    recon_ns: int | None = None
    n_bytes: int | None = None
    bits_ns: int | None = None
    codec: str = ""


class BenchmarkStage:
    """Pair original and reconstructed frames by stamp and score them."""

    def __init__(self, csv_path: str | os.PathLike | None = None, *, max_pending: int = 16,
                 quality_every: int = 1, compute_ms_ssim: bool = True,
                 segmenter: Callable[[np.ndarray], np.ndarray] | None = None, num_classes: int | None = None,
                 stamp_latency: bool = True, window: int = 1000) -> None:
        if max_pending < 1:
            raise ValueError(f"max_pending must be >= 1, got {max_pending}")
        self.csv_path = Path(csv_path) if csv_path else None
        self.max_pending = int(max_pending)
        self.quality_every = max(1, int(quality_every))
        self.compute_ms_ssim = bool(compute_ms_ssim)
        self.stamp_latency = bool(stamp_latency)
        if segmenter is not None and num_classes is None:
            num_classes = getattr(segmenter, "num_classes", None)
        self.semantic = SemanticPreservation(segmenter, num_classes) if segmenter is not None else None
        self.counters = Counters("originals", "reconstructions", "bitstreams", "paired", "dropped", "unmatched",
                                 "size_mismatch", "rejected", "corrupt", "duplicate_stamps", "late_bitstreams",
                                 "segmenter_errors", "csv_errors")
        self.windows = {k: RollingWindow(window) for k in SUMMARY_COLUMNS}
        self.pair_rate = RateMeter()
        self.bit_rate = RateMeter()
        self.last_error = ""
        self.codec = ""
        self._pending: OrderedDict[int, _Pending] = OrderedDict()
        self._done: deque[int] = deque(maxlen=4 * self.max_pending)
        self._csv_file = None
        self._csv = None
        self._written = False
        self.closed = False

    # -- inputs --------------------------------------------------------------------------
    def add_original_msg(self, msg: Any, recv_ns: int | None = None) -> dict | None:
        """An original sensor_msgs/Image; returns the scored row if it completed a pair."""
        return self._add_image_msg(msg, recv_ns, original=True)

    def add_reconstruction_msg(self, msg: Any, recv_ns: int | None = None) -> dict | None:
        """A reconstructed sensor_msgs/Image; returns the scored row if it completed a pair."""
        return self._add_image_msg(msg, recv_ns, original=False)

    def add_bitstream_msg(self, msg: Any, recv_ns: int | None = None) -> None:
        """A bitstream sensor_msgs/CompressedImage (only its size and format are used)."""
        self.add_bitstream(msg.header, as_bytes(msg.data), str(msg.format), recv_ns)

    def _add_image_msg(self, msg: Any, recv_ns: int | None, original: bool) -> dict | None:
        recv_ns = time.time_ns() if recv_ns is None else recv_ns
        try:
            image = image_to_rgb(msg)
        except ValueError as exc:
            self.counters.bump("originals" if original else "reconstructions")
            self._warn("rejected", f"{'original' if original else 'reconstructed'} image unusable: {exc}")
            return None
        if original:
            return self.add_original(msg.header, image, recv_ns)
        return self.add_reconstruction(msg.header, image, recv_ns)

    def add_original(self, header: Any, image: np.ndarray, recv_ns: int | None = None) -> dict | None:
        """An original (H, W, 3) RGB frame received at ``recv_ns`` (default: now)."""
        self.counters.bump("originals")
        entry = self._entry(header)
        if entry is None:
            return None
        if entry.image is not None:
            self._warn("duplicate_stamps", f"two originals with stamp {stamp_ns(header)}")
        entry.image, entry.orig_ns = image, time.time_ns() if recv_ns is None else recv_ns
        return self._maybe_score(stamp_ns(header), entry)

    def add_reconstruction(self, header: Any, image: np.ndarray, recv_ns: int | None = None) -> dict | None:
        """A reconstructed (H, W, 3) RGB frame received at ``recv_ns`` (default: now)."""
        self.counters.bump("reconstructions")
        entry = self._entry(header)
        if entry is None:
            return None
        entry.recon, entry.recon_ns = image, time.time_ns() if recv_ns is None else recv_ns
        return self._maybe_score(stamp_ns(header), entry)

    def add_bitstream(self, header: Any, data: bytes, fmt_text: str = "", recv_ns: int | None = None) -> None:
        """A bitstream: its size counts as the frame's rate (a semcomp container is checked; the raw
        packets of the video anchors, format ``semcomp/h264...``, are counted as they are)."""
        from .decoder_stage import raw_codec_class

        self.counters.bump("bitstreams")
        recv_ns = time.time_ns() if recv_ns is None else recv_ns
        if raw_codec_class(fmt_text) is None:
            try:
                unpack(data)
            except BitstreamError as exc:
                self._warn("corrupt", f"corrupt bitstream with stamp {stamp_ns(header)}: {exc}")
                return
        self.bit_rate.add(len(data))
        entry = self._entry(header)
        if entry is None:  # its frame was scored already (the row has no bytes/bpp)
            self.counters.bump("late_bitstreams")
            return
        entry.n_bytes, entry.bits_ns = len(data), recv_ns
        if fmt_text.startswith(FORMAT_PREFIX):
            entry.codec = self.codec = fmt_text[len(FORMAT_PREFIX):]

    # -- pairing -------------------------------------------------------------------------
    def _entry(self, header: Any) -> _Pending | None:
        """The pending record for this stamp (None for a stamp already scored)."""
        key = stamp_ns(header)
        if key in self._done:
            return None
        entry = self._pending.get(key)
        if entry is None:
            while len(self._pending) >= self.max_pending:
                self._evict()
            entry = self._pending[key] = _Pending(frame_id=frame_id(header))
        return entry

    def _evict(self) -> None:
        key, old = self._pending.popitem(last=False)
        if old.image is not None:
            self._warn("dropped", f"no reconstruction for stamp {key} (buffer of {self.max_pending} full)")
        else:
            self._warn("unmatched", f"no original for stamp {key} (buffer of {self.max_pending} full)")

    def _maybe_score(self, key: int, entry: _Pending) -> dict | None:
        if entry.image is None or entry.recon is None:
            return None
        del self._pending[key]
        self._done.append(key)
        if entry.image.shape != entry.recon.shape:
            self._warn("size_mismatch", f"stamp {key}: reconstruction {entry.recon.shape[:2]} "
                                        f"vs original {entry.image.shape[:2]}")
            return None
        row = self._score(key, entry)
        self.counters.bump("paired")
        self.pair_rate.add()
        for k in SUMMARY_COLUMNS:
            value = row.get(k)
            self.windows[k].add(psnr_for_mean(value) if k == "psnr" and value is not None else value)
        self._write(row)
        return row

    def _score(self, key: int, e: _Pending) -> dict:
        h, w = e.image.shape[:2]
        sec, ns = divmod(key, 1_000_000_000)
        row: dict[str, Any] = {"stamp": f"{sec}.{ns:09d}", "frame_id": e.frame_id, "codec": e.codec or self.codec,
                               "height": h, "width": w}
        if e.n_bytes is not None:
            row["bytes"] = e.n_bytes
            row["bpp"] = bits_per_pixel(e.n_bytes, h, w)
        if self.counters["paired"] % self.quality_every == 0:
            row["psnr"] = psnr(e.image, e.recon)  # inf for identical frames, capped in means
            if self.compute_ms_ssim:
                row["ms_ssim"] = ms_ssim(e.image, e.recon)
            if self.semantic is not None:
                try:
                    value = self.semantic.update(e.image, e.recon)["miou_recon_vs_orig"]
                    row["frame_miou_recon_vs_orig"] = value if math.isfinite(value) else None
                except Exception as exc:  # noqa: BLE001 -- a segmenter failure must not stop scoring
                    self._warn("segmenter_errors", f"segmenter failed on stamp {key}: {type(exc).__name__}: {exc}")
        row["latency_ms"] = (e.recon_ns - e.orig_ns) / 1e6
        if e.bits_ns is not None:
            row["encode_stage_ms"] = (e.bits_ns - e.orig_ns) / 1e6
            row["decode_stage_ms"] = (e.recon_ns - e.bits_ns) / 1e6
        if self.stamp_latency:
            row["stamp_latency_ms"] = (e.recon_ns - key) / 1e6
            row["original_latency_ms"] = (e.orig_ns - key) / 1e6
            if e.bits_ns is not None:
                row["bitstream_latency_ms"] = (e.bits_ns - key) / 1e6
        return row

    BAD = ("dropped", "unmatched", "size_mismatch", "rejected", "corrupt", "duplicate_stamps", "late_bitstreams",
                                 "segmenter_errors", "csv_errors")

    def bad_frames(self) -> int:
        """Total of the counters of lost or unusable frames (grows when ``last_error`` changes)."""
        return sum(self.counters[k] for k in self.BAD)

    def _warn(self, counter: str, reason: str) -> None:
        self.counters.bump(counter)
        self.last_error = reason

    # -- CSV -----------------------------------------------------------------------------
    @property
    def part_path(self) -> Path | None:
        return self.csv_path.with_name(self.csv_path.name + ".part") if self.csv_path else None

    def _write(self, row: dict) -> None:
        if self.csv_path is None:
            return
        try:
            if self._csv is None:
                self._open_csv()
            self._csv.writerow(row)
            self._csv_file.flush()
        except OSError as exc:  # full disk, read-only folder, ...: count it, keep scoring
            self._warn("csv_errors", f"cannot write {self.part_path}: {exc}")

    def _open_csv(self) -> None:
        self.csv_path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.part_path, "w", newline="")
        writer = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
        try:
            writer.writeheader()
        except OSError:
            f.close()
            raise
        self._csv_file, self._csv = f, writer

    @property
    def summary_path(self) -> Path | None:
        return self.csv_path.with_name(self.csv_path.stem + "_summary.csv") if self.csv_path else None

    def close(self) -> Path | None:
        """Finish: count still-unpaired originals as dropped, write the CSV and its summary.

        Returns the per-frame CSV path (None without ``csv_path`` or when it could not be
        written: counted in ``csv_errors``, reason in ``last_error``; never raises OSError).
        Idempotent.
        """
        if self.closed:
            return self.csv_path if self._written else None
        self.closed = True
        while self._pending:
            self._evict()
        if self.csv_path is None:
            return None
        try:
            if self._csv is None:
                self._open_csv()
            self._csv_file.close()
            os.replace(self.part_path, self.csv_path)
            summary = self.summary(from_csv=True)
            with open(self.summary_path, "w", newline="") as f:
                wr = csv.DictWriter(f, fieldnames=list(summary))
                wr.writeheader()
                wr.writerow(summary)
        except OSError as exc:
            self._warn("csv_errors", f"cannot write {self.csv_path} or its summary: {exc}")
            return None
        self._written = True
        return self.csv_path

    # -- summaries -----------------------------------------------------------------------
    def summary(self, from_csv: bool = False) -> dict:
        """Counters plus mean/p50/p95 per metric: whole run from the CSV after :meth:`close`,
        otherwise over the rolling window. PSNR of identical frames counts as PSNR_CAP_DB.
        With a segmenter, ``miou_recon_vs_orig`` and ``pixel_accuracy_recon_vs_orig`` are
        dataset-level (summed confusion matrices of every scored frame)."""
        out: dict[str, Any] = {"codec": self.codec}
        out.update({f"frames_{k}": v for k, v in self.counters.items()})
        columns = self._read_columns() if from_csv else {
            k: w.array() for k, w in self.windows.items()}
        for k in SUMMARY_COLUMNS:
            vals = columns.get(k, np.zeros(0))
            out[f"{k}_mean"] = float(vals.mean()) if vals.size else None
            out[f"{k}_p50"] = float(np.percentile(vals, 50)) if vals.size else None
            out[f"{k}_p95"] = float(np.percentile(vals, 95)) if vals.size else None
        out["psnr_cap_db"] = PSNR_CAP_DB
        sem = self.semantic.summary() if self.semantic is not None else {}
        out["semantic_frames"] = sem.get("num_images", 0)
        out["miou_recon_vs_orig"] = sem.get("miou_recon_vs_orig")
        out["pixel_accuracy_recon_vs_orig"] = sem.get("pixel_accuracy_recon_vs_orig")
        return out

    def _read_columns(self) -> dict[str, np.ndarray]:
        cols: dict[str, list[float]] = {k: [] for k in SUMMARY_COLUMNS}
        with open(self.csv_path, newline="") as f:
            for row in csv.DictReader(f):
                for k in SUMMARY_COLUMNS:
                    if row.get(k):
                        value = float(row[k])
                        cols[k].append(psnr_for_mean(value) if k == "psnr" else value)
        return {k: np.asarray(v, dtype=float) for k, v in cols.items()}

    def diagnostics(self, name: str = "semcomp benchmark") -> DiagnosticReport:
        """Live numbers: bitrate, fps, latency p50/p95, dropped/corrupt counters."""
        fps, _ = self.pair_rate.rates()
        _, bytes_per_s = self.bit_rate.rates()
        c = self.counters
        level, message = c.status(tuple(self.BAD), "lost or unusable", self.last_error, "paired",
                                  "waiting for original/reconstruction pairs", f"{c['paired']} frame pairs scored")
        w = self.windows
        return DiagnosticReport(name, level, message, {
            "codec": self.codec or "-",
            "fps": fmt(fps),
            "bitrate_kbps": fmt(bytes_per_s * 8 / 1e3),
            "bpp_mean": fmt(w["bpp"].mean(), 4),
            "psnr_mean_db": fmt(w["psnr"].mean()),
            "ms_ssim_mean": fmt(w["ms_ssim"].mean(), 4),
            "miou_recon_vs_orig": fmt(self.semantic.summary()["miou_recon_vs_orig"], 4)
            if self.semantic is not None else "-",
            "latency_ms_p50": fmt(w["latency_ms"].percentile(50)),
            "latency_ms_p95": fmt(w["latency_ms"].percentile(95)),
            "encode_stage_ms_p50": fmt(w["encode_stage_ms"].percentile(50)),
            "decode_stage_ms_p50": fmt(w["decode_stage_ms"].percentile(50)),
            "stamp_latency_ms_p50": fmt(w["stamp_latency_ms"].percentile(50)),
            "frames_paired": str(c["paired"]),
            "frames_dropped": str(c["dropped"]),
            "frames_unmatched": str(c["unmatched"]),
            "frames_corrupt": str(c["corrupt"]),
            "frames_rejected": str(c["rejected"]),
            "frames_size_mismatch": str(c["size_mismatch"]),
            "late_bitstreams": str(c["late_bitstreams"]),
            "segmenter_errors": str(c["segmenter_errors"]),
            "csv_errors": str(c["csv_errors"]),
            "pending": str(len(self._pending)),
        })
