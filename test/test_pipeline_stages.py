"""The ROS-free node logic: encoder, decoder and benchmark stages."""
from __future__ import annotations

import csv
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

from semcomp_core.errors import UsageError
from semcomp_core.pipeline import (BenchmarkStage, DecoderStage, EncoderStage, RateMeter, build_codec,
                                   codec_param_resets, validate_codec)
from semcomp_core.metrics import PSNR_CAP_DB

S = 1_000_000_000  # ns per second


def header(stamp_ns: int, frame: str = "cam") -> SimpleNamespace:
    sec, ns = divmod(stamp_ns, S)
    return SimpleNamespace(stamp=SimpleNamespace(sec=sec, nanosec=ns), frame_id=frame)


def image_msg(rgb: np.ndarray, stamp_ns: int, encoding: str = "rgb8") -> SimpleNamespace:
    h, w = rgb.shape[:2]
    return SimpleNamespace(header=header(stamp_ns), height=h, width=w, encoding=encoding, is_bigendian=0,
                           step=w * 3, data=rgb.tobytes())


@pytest.fixture(scope="module")
def frame(sample_image) -> np.ndarray:
    return np.ascontiguousarray(sample_image[:48, :64])


# -- encoder --------------------------------------------------------------------------------
def test_encoder_builds_codec_once_and_only_on_change(frame):
    stage = EncoderStage("jpeg", quality=30)
    codec = stage.codec
    for i in range(3):
        assert stage.encode(frame, header(i)) is not None
    assert stage.codec is codec
    assert stage.configure("jpeg", 30) is False and stage.codec is codec
    assert stage.configure("jpeg", 60) is True and stage.codec is not codec
    assert stage.format == "semcomp/jpeg:quality=60"
    assert stage.configure("webp", -1) is True
    assert stage.format.startswith("semcomp/webp")


def test_bad_reconfiguration_keeps_running_codec(frame):
    stage = EncoderStage("jpeg", quality=20)
    codec = stage.codec
    with pytest.raises(UsageError):
        stage.configure("no-such-codec")
    with pytest.raises(UsageError):
        stage.configure("jpeg", quality=99)  # jpeg quality is 1..95
    with pytest.raises(UsageError):
        stage.configure("jpeg", device="tpu")
    assert stage.codec is codec and stage.format == "semcomp/jpeg:quality=20"
    assert stage.encode(frame, header(1)) is not None


def test_quality_parameter_wins_over_options():
    assert build_codec("jpeg", None, "cpu", "quality=33").label() == "jpeg:quality=33"
    assert build_codec("jpeg", 44, "cpu", "quality=33").label() == "jpeg:quality=44"
    with pytest.raises(UsageError):
        build_codec("jpeg", None, "cpu", "colour=blue")


def test_encoder_counts_bad_frames_and_keeps_going(frame):
    stage = EncoderStage("jpeg")
    bad = image_msg(frame, 5 * S, encoding="bayer_rggb8")
    assert stage.encode_msg(bad) is None
    assert "bayer_rggb8" in stage.last_error and "5.000000000" in stage.last_error
    short = image_msg(frame, 6 * S)
    short.data = short.data[:-3]
    assert stage.encode_msg(short) is None
    assert stage.encode(np.zeros((4, 4), np.uint8), header(7)) is None
    good = stage.encode_msg(image_msg(frame, 8 * S))
    assert good is not None and good.header.stamp.sec == 8
    assert {k: stage.counters[k] for k in ("received", "encoded", "rejected", "errors", "rebuilds",
                                           "rebuild_failures", "key_frames", "inter_frames")} == {
        "received": 4, "encoded": 1, "rejected": 3, "errors": 0, "rebuilds": 0, "rebuild_failures": 0,
        "key_frames": 1, "inter_frames": 0}
    report = stage.diagnostics()
    assert report.level == "WARN" and report.values["frames_rejected"] == "3"
    assert stage.diagnostics().level == "OK"  # nothing new since the last report


def test_encoder_diagnostics_report_rate_and_latency(frame):
    stage = EncoderStage("jpeg")
    for i in range(4):
        stage.encode(frame, header(i))
    report = stage.diagnostics("encoder")
    assert report.name == "encoder" and report.level == "OK"
    assert report.values["frames_encoded"] == "4"
    assert float(report.values["encode_ms_p95"]) >= float(report.values["encode_ms_p50"]) > 0
    assert float(report.values["bytes_mean"]) > 0


# -- decoder --------------------------------------------------------------------------------
def test_decoder_round_trip_keeps_header_object(frame):
    enc = EncoderStage("webp", quality=80).encode(frame, header(3 * S, "left"))
    dec = DecoderStage()
    out = dec.decode(enc.data, enc.header, enc.format)
    assert out is not None and out.header is enc.header
    assert out.image.shape == frame.shape and out.image.flags.c_contiguous
    assert out.n_bytes == len(enc.data)


def test_decoder_counts_corrupt_foreign_and_oversized_frames(frame):
    enc = EncoderStage("jpeg").encode(frame, header(1))
    dec = DecoderStage(max_pixels=64 * 48)
    flipped = bytearray(enc.data)
    flipped[len(flipped) // 2] ^= 0xFF
    assert dec.decode(bytes(flipped), header(1), enc.format) is None
    assert "check of layer 0" in dec.last_error
    assert dec.decode(enc.data[:10], header(2), enc.format) is None
    assert dec.decode(b"", header(3), enc.format) is None
    assert dec.decode(enc.data, header(4), "jpeg") is None  # a camera jpeg, not a semcomp stream
    assert "expected semcomp/" in dec.last_error
    dec.configure(max_pixels=100)
    assert dec.decode(enc.data, header(5), enc.format) is None
    assert "max_pixels" in dec.last_error
    dec.configure(max_pixels=0)
    assert dec.decode(enc.data, header(6), enc.format) is not None
    c = dec.counters
    assert (c["corrupt"], c["rejected"], c["decoded"], c["received"]) == (3, 2, 1, 6)
    report = dec.diagnostics()
    assert report.level == "WARN" and report.values["frames_corrupt"] == "3"
    with pytest.raises(UsageError):
        dec.configure(device="gpu0")
    assert dec.device == "cpu"


def test_decoder_renders_and_counts_truncated_containers(frame):
    """A container cut after a complete layer (a link that dropped the tail) is decoded and counted."""
    from semcomp_core.bitstream import truncate

    enc = EncoderStage("semantic-gan", options="roi=none:structure=s").encode(frame, header(1))
    dec = DecoderStage()
    cut = truncate(enc.data, keep_layers=3)               # decoder params, seg map, colour map
    out = dec.decode(cut, header(1), enc.format)
    assert out is not None and out.image.shape == frame.shape and out.n_bytes == len(cut) < len(enc.data)
    assert dec.decode(enc.data, header(2), enc.format) is not None
    assert dec.decode(enc.data[:len(cut) + 1], header(3), enc.format) is None     # cut inside a layer
    c = dec.counters
    assert (c["truncated"], c["decoded"], c["corrupt"]) == (1, 2, 1)
    assert dec.diagnostics().values["frames_truncated"] == "1"


def test_decoder_msg_interface_reads_compressed_image_fields(frame):
    enc = EncoderStage("jpeg").encode(frame, header(9 * S))
    msg = SimpleNamespace(header=enc.header, format=enc.format, data=np.frombuffer(enc.data, np.uint8))
    out = DecoderStage().decode_msg(msg)
    assert out is not None and out.header.stamp.sec == 9


# -- benchmark ------------------------------------------------------------------------------
def test_benchmark_pairs_by_stamp_in_any_order_and_measures_latency(frame, tmp_path):
    enc = EncoderStage("jpeg", quality=50)
    stage = BenchmarkStage(tmp_path / "b.csv")
    t = 100 * S
    e = enc.encode(frame, header(t))
    recon = DecoderStage().decode(e.data, e.header, e.format).image
    assert stage.add_reconstruction(header(t), recon, recv_ns=t + 30_000_000) is None  # recon first
    stage.add_bitstream(header(t), e.data, e.format, recv_ns=t + 15_000_000)
    row = stage.add_original(header(t), frame, recv_ns=t + 5_000_000)
    assert row is not None
    assert row["latency_ms"] == pytest.approx(25.0)  # reconstruction receipt - original receipt
    assert row["stamp_latency_ms"] == pytest.approx(30.0)  # reconstruction receipt - stamp
    assert row["original_latency_ms"] == pytest.approx(5.0)
    assert row["encode_stage_ms"] == pytest.approx(10.0)
    assert row["decode_stage_ms"] == pytest.approx(15.0)
    assert row["bytes"] == len(e.data) and row["bpp"] == pytest.approx(8 * len(e.data) / (48 * 64))
    assert 20 < row["psnr"] < 60 and 0 < row["ms_ssim"] <= 1
    assert row["codec"] == "jpeg:quality=50" and row["stamp"] == "100.000000000"
    assert stage.counters["paired"] == 1


def test_benchmark_buffers_are_bounded_and_losses_counted(frame):
    stage = BenchmarkStage(None, max_pending=3)
    for i in range(10):  # originals whose reconstructions never come
        stage.add_original(header(i * S), frame, recv_ns=i * S)
        assert len(stage._pending) <= 3
    assert stage.counters["dropped"] == 7
    for i in range(20, 25):  # reconstructions without originals
        stage.add_reconstruction(header(i * S), frame, recv_ns=i * S)
    assert stage.counters["unmatched"] == 2 and stage.counters["dropped"] == 10
    report = stage.diagnostics()
    assert report.level == "WARN" and report.values["frames_dropped"] == "10"
    stage.close()
    assert stage.counters["unmatched"] == 5 and len(stage._pending) == 0


def test_benchmark_counts_size_mismatch_and_corrupt_bitstreams(frame):
    stage = BenchmarkStage(None)
    stage.add_original(header(1), frame)
    assert stage.add_reconstruction(header(1), frame[:40]) is None
    assert stage.counters["size_mismatch"] == 1 and stage.counters["paired"] == 0
    stage.add_bitstream(header(2), b"SC\x01garbage", "semcomp/jpeg")
    assert stage.counters["corrupt"] == 1
    bad = image_msg(frame, 3, encoding="yuv422")
    assert stage.add_original_msg(bad) is None
    assert stage.counters["rejected"] == 1 and "yuv422" in stage.last_error
    assert stage.bad_frames() == 3


def test_benchmark_counts_video_anchor_packets_as_bytes_not_as_corrupt(frame):
    """The video anchors send raw codec packets (format semcomp/h264...): their size is the rate."""
    pytest.importorskip("av")
    stage = BenchmarkStage(None)
    data = EncoderStage("h264:qp=40", options="").encode(frame, header(7)).data
    assert data[:2] != b"SC"
    stage.add_bitstream(header(7), data, "semcomp/h264:qp=40")
    assert stage.counters["corrupt"] == 0
    stage.add_original(header(7), frame)
    row = stage.add_reconstruction(header(7), frame)
    assert row["bytes"] == len(data)
    stage.add_bitstream(header(8), data, "semcomp/jpeg")       # the same bytes claimed as a container
    assert stage.counters["corrupt"] == 1


def test_benchmark_late_partners_of_scored_frames_are_ignored(frame):
    stage = BenchmarkStage(None)
    stage.add_original(header(5), frame)
    assert stage.add_reconstruction(header(5), frame) is not None
    assert stage.add_reconstruction(header(5), frame) is None
    stage.close()
    assert stage.counters["unmatched"] == 0 and stage.counters["paired"] == 1


def test_benchmark_quality_every_skips_fidelity_but_not_rate(frame):
    stage = BenchmarkStage(None, quality_every=2, compute_ms_ssim=False)
    rows = []
    for i in range(4):
        stage.add_original(header(i), frame, recv_ns=i + 10)
        rows.append(stage.add_reconstruction(header(i), frame, recv_ns=i + 20))
    assert [("psnr" in r) for r in rows] == [True, False, True, False]
    assert all("ms_ssim" not in r for r in rows)
    assert all(r["latency_ms"] == pytest.approx(10 / 1e6) for r in rows)


def test_benchmark_semantic_metric_with_a_segmenter(frame):
    def segmenter(img):  # two classes by brightness
        return (img.mean(axis=2) > 127).astype(np.uint8)

    stage = BenchmarkStage(None, segmenter=segmenter, num_classes=2)
    stage.add_original(header(1), frame)
    row = stage.add_reconstruction(header(1), frame)
    assert row["frame_miou_recon_vs_orig"] == pytest.approx(1.0)
    assert "miou_recon_vs_orig" not in row


def test_benchmark_csv_is_written_on_close_with_summary(frame, tmp_path):
    path = tmp_path / "out" / "bench.csv"
    stage = BenchmarkStage(path)
    for i in range(5):
        stage.add_original(header(i * S), frame, recv_ns=i * S + 1_000_000)
        stage.add_bitstream(header(i * S), EncoderStage("jpeg").encode(frame, header(i)).data, "semcomp/jpeg",
                            recv_ns=i * S + 2_000_000)
        stage.add_reconstruction(header(i * S), frame, recv_ns=i * S + (i + 4) * 1_000_000)
    stage.add_original(header(99 * S), frame)  # never reconstructed
    assert not path.exists() and stage.part_path.exists()
    assert stage.close() == path
    assert path.exists() and not stage.part_path.exists()
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 5 and rows[0]["stamp"] == "0.000000000"
    assert [float(r["latency_ms"]) for r in rows] == pytest.approx([3, 4, 5, 6, 7])
    with open(stage.summary_path, newline="") as f:
        (summary,) = list(csv.DictReader(f))
    assert float(summary["latency_ms_p50"]) == pytest.approx(5.0)
    assert float(summary["latency_ms_p95"]) == pytest.approx(6.8)
    assert summary["frames_paired"] == "5" and summary["frames_dropped"] == "1"
    assert float(summary["bytes_mean"]) > 0
    assert stage.close() == path  # idempotent


def test_benchmark_without_frames_still_writes_header_only_csv(tmp_path):
    stage = BenchmarkStage(tmp_path / "empty.csv")
    stage.close()
    assert (tmp_path / "empty.csv").read_text().startswith("stamp,frame_id,codec")
    assert (tmp_path / "empty_summary.csv").exists()


def test_rate_meter_over_window():
    meter = RateMeter(window_s=2.0)
    for i in range(11):
        meter.add(1000, now_ns=i * S // 10)  # 10 Hz, 1000 bytes each
    fps, bytes_per_s = meter.rates(now_ns=S)
    assert fps == pytest.approx(10.0) and bytes_per_s == pytest.approx(10_000.0)
    assert meter.rates(now_ns=10 * S) == (0.0, 0.0)  # all events aged out


# -- codec switching (issue 8) --------------------------------------------------------------
def test_codec_param_resets_rule():
    current = {"codec": "jpeg", "quality": 90, "codec_options": "", "device": "cpu"}
    # codec alone: quality (and options when set) belonged to the previous codec
    assert codec_param_resets(current, {"codec": "bpg"}) == {"quality": -1}
    assert codec_param_resets(dict(current, codec_options="impl=x265"), {"codec": "bpg:q=45"}) == {
        "quality": -1, "codec_options": ""}
    # the same codec value, or a call that sets quality/options as well: nothing reset
    assert codec_param_resets(current, {"codec": "jpeg"}) == {}
    assert codec_param_resets(current, {"codec": "bpg", "quality": 40}) == {}
    assert codec_param_resets(current, {"codec": "bpg", "codec_options": "impl=x265"}) == {}
    assert codec_param_resets(current, {"quality": 30}) == {}
    assert codec_param_resets(dict(current, quality=-1), {"codec": "webp"}) == {}  # already defaults


def test_validate_codec_is_cheap_and_names_the_problem():
    assert validate_codec("bpg:q=45") == "bpg:q=45"
    assert validate_codec("bpg:q=45", 30, "cpu", "impl=x265") == "bpg:q=30:impl=x265"  # quality wins
    assert validate_codec("jpeg:quality=20", -1, "cpu", "quality=30") == "jpeg:quality=30"  # options win
    with pytest.raises(UsageError, match=r"q=90 outside \[0, 51\]"):
        validate_codec("bpg", 90)
    with pytest.raises(UsageError, match="nope"):
        validate_codec("nope")
    with pytest.raises(UsageError, match="colour"):
        validate_codec("jpeg", -1, "cpu", "colour=blue")
    with pytest.raises(UsageError, match="device"):
        validate_codec("jpeg", -1, "gpu")
    # semantic-gan settings are checked without loading a model: a missing model folder is only
    # found when building (in the background), a bad level at once
    with pytest.raises(UsageError, match="level"):
        validate_codec("semantic-gan:level=99")
    t0 = time.perf_counter()
    validate_codec("semantic-gan:segmenter=/no/such/folder")
    assert time.perf_counter() - t0 < 0.05


def test_spec_in_codec_and_quality_build_the_same_codec():
    assert build_codec("bpg:q=45").label().startswith("bpg:q=45")
    assert build_codec("bpg:q=45", 40).label().startswith("bpg:q=40")
    assert EncoderStage("jpeg:quality=20").format == "semcomp/jpeg:quality=20"


def test_background_rebuild_keeps_encoding_with_old_codec_until_ready(frame):
    gate = threading.Event()
    built = []

    def slow_builder(*key):
        gate.wait(5)
        built.append(key)
        return build_codec(*key)

    logs = []
    stage = EncoderStage("jpeg", quality=30, builder=slow_builder, log=lambda lvl, text: logs.append((lvl, text)))
    t0 = time.perf_counter()
    assert stage.request("webp", 50) is True
    assert time.perf_counter() - t0 < 0.1  # returns at once: the build runs in a thread
    assert stage.pending is not None
    # frames keep flowing with the running codec meanwhile
    for i in range(3):
        out = stage.encode(frame, header(i))
        assert out is not None and out.format == "semcomp/jpeg:quality=30"
    assert stage.diagnostics().values["codec_pending"].startswith("webp|50")
    gate.set()
    assert stage.wait(5)
    assert stage.encode(frame, header(9)).format == "semcomp/webp:quality=50"
    assert stage.counters["rebuilds"] == 1 and stage.pending is None
    assert logs and logs[-1][0] == "info" and "webp:quality=50" in logs[-1][1]


def test_background_requests_are_coalesced_to_the_latest(frame):
    gate, entered = threading.Event(), threading.Event()
    built = []

    def slow_builder(*key):
        entered.set()
        gate.wait(5)
        built.append(key[0])
        return build_codec(*key)

    stage = EncoderStage("jpeg", builder=slow_builder)
    stage.request("webp")
    assert entered.wait(5)   # the worker is busy with webp: what follows can only re-aim it
    stage.request("bpg", 40)
    stage.request("jpeg", 70)
    gate.set()
    assert stage.wait(5)
    assert stage.format == "semcomp/jpeg:quality=70"
    assert built[-1] == "jpeg" and "bpg" not in built  # the middle request was never built
    assert stage.request("jpeg", 70) is False  # already running


def test_failed_background_build_keeps_old_codec_and_is_counted(frame):
    def failing_builder(*key):
        raise RuntimeError("weights missing")

    logs = []
    stage = EncoderStage("jpeg", quality=30, builder=failing_builder, log=lambda lvl, text: logs.append((lvl, text)))
    assert stage.request("webp")
    assert stage.wait(5)
    assert stage.format == "semcomp/jpeg:quality=30"
    assert stage.encode(frame, header(1)) is not None
    assert stage.counters["rebuild_failures"] == 1 and "weights missing" in stage.last_rebuild_error
    assert logs[-1][0] == "error" and "still encoding with jpeg:quality=30" in logs[-1][1]
    report = stage.diagnostics()
    assert report.level == "WARN" and "rebuild" in report.message
    assert report.values["codec_rebuild_failures"] == "1"
    # invalid settings never reach the builder: refused at once, nothing changes
    with pytest.raises(UsageError):
        stage.request("jpeg", 99)
    assert stage.counters["rebuild_failures"] == 1 and stage.pending is None


def test_default_builder_warms_up_models_before_swapping(frame):
    stage = EncoderStage("jpeg")
    assert stage.request("semantic-gan:segmenter=/no/such/folder")
    assert stage.wait(30)
    # the folder is only opened by the warm-up encode: the failure is found in the background
    assert stage.counters["rebuild_failures"] == 1 and stage.format.startswith("semcomp/jpeg")


# -- benchmark: latency, semantic summary, errors (issue 8) ---------------------------------------
def test_benchmark_without_stamp_latency_reports_receipt_based_latency_only(frame):
    stage = BenchmarkStage(None, stamp_latency=False)
    t = 5 * S  # a replayed bag: stamps are hours before the receipt times
    stage.add_original(header(t), frame, recv_ns=t + 3600 * S)
    stage.add_bitstream(header(t), EncoderStage("jpeg").encode(frame, header(t)).data, "semcomp/jpeg",
                        recv_ns=t + 3600 * S + 4_000_000)
    row = stage.add_reconstruction(header(t), frame, recv_ns=t + 3600 * S + 10_000_000)
    assert row["latency_ms"] == pytest.approx(10.0)
    assert row["encode_stage_ms"] == pytest.approx(4.0) and row["decode_stage_ms"] == pytest.approx(6.0)
    assert "stamp_latency_ms" not in row and "original_latency_ms" not in row


def test_benchmark_late_bitstream_is_counted_and_reported(frame):
    stage = BenchmarkStage(None)
    data = EncoderStage("jpeg").encode(frame, header(5)).data
    stage.add_original(header(5), frame)
    assert stage.add_reconstruction(header(5), frame) is not None
    stage.add_bitstream(header(5), data, "semcomp/jpeg")  # after its frame was scored
    assert stage.counters["late_bitstreams"] == 1
    assert stage.diagnostics().values["late_bitstreams"] == "1"


def test_benchmark_miou_is_dataset_level_from_summed_confusion(frame, tmp_path):
    """Frame A: one pixel of class 1 lost (per-frame mIoU 0.5); frame B: perfect (1.0).
    The mean of per-frame mIoUs would be 0.75; summed matrices give the dataset value."""
    h, w = frame.shape[:2]
    seg_a = np.zeros((h, w), np.uint8)
    seg_a[0, 0] = 1
    seg_b = np.zeros((h, w), np.uint8)
    seg_b[:, : w // 2] = 1
    by_key = {}

    def segmenter(img):
        return by_key[int(img[0, 0, 0]), int(img[0, 0, 1])]

    orig_a, recon_a, orig_b = frame.copy(), frame.copy(), frame.copy()
    orig_a[0, 0, :2], recon_a[0, 0, :2], orig_b[0, 0, :2] = (1, 1), (2, 2), (3, 3)
    by_key[(1, 1)], by_key[(2, 2)], by_key[(3, 3)] = seg_a, np.zeros((h, w), np.uint8), seg_b
    stage = BenchmarkStage(tmp_path / "m.csv", segmenter=segmenter, num_classes=2, compute_ms_ssim=False)
    stage.add_original(header(1), orig_a)
    row_a = stage.add_reconstruction(header(1), recon_a)
    stage.add_original(header(2), orig_b)
    row_b = stage.add_reconstruction(header(2), orig_b)
    assert row_a["frame_miou_recon_vs_orig"] == pytest.approx(0.5, abs=1e-3)
    assert row_b["frame_miou_recon_vs_orig"] == pytest.approx(1.0)
    # class 0: (n - 1 + n/2) / (n + n/2) ; class 1: (n/2) / (n/2 + 1)
    n = h * w
    expected = ((n - 1 + n / 2) / (n + n / 2) + (n / 2) / (n / 2 + 1)) / 2
    assert stage.summary()["miou_recon_vs_orig"] == pytest.approx(expected)
    assert expected != pytest.approx(0.75)
    assert stage.diagnostics().values["miou_recon_vs_orig"] == f"{expected:.4f}"
    stage.close()
    header_line = stage.csv_path.read_text().splitlines()[0]
    assert "frame_miou_recon_vs_orig" in header_line.split(",")
    with open(stage.summary_path, newline="") as f:
        (summary,) = list(csv.DictReader(f))
    assert float(summary["miou_recon_vs_orig"]) == pytest.approx(expected)
    assert "frame_miou_recon_vs_orig_mean" not in summary


def test_benchmark_counts_lossless_frames_at_the_psnr_cap(frame, tmp_path):
    stage = BenchmarkStage(tmp_path / "p.csv", compute_ms_ssim=False)
    noisy = frame.copy()
    noisy[0, 0] ^= 0xFF
    stage.add_original(header(1), frame)
    lossy = stage.add_reconstruction(header(1), noisy)["psnr"]
    stage.add_original(header(2), frame)
    assert stage.add_reconstruction(header(2), frame)["psnr"] == float("inf")  # per frame: the truth
    expected = (min(lossy, PSNR_CAP_DB) + PSNR_CAP_DB) / 2
    assert PSNR_CAP_DB == 100.0
    assert stage.summary()["psnr_mean"] == pytest.approx(expected)  # live window
    stage.close()
    with open(stage.summary_path, newline="") as f:
        (summary,) = list(csv.DictReader(f))
    assert float(summary["psnr_mean"]) == pytest.approx(expected)  # whole run, from the CSV
    assert float(summary["psnr_cap_db"]) == PSNR_CAP_DB


def test_benchmark_survives_segmenter_and_csv_errors(frame, tmp_path):
    calls = []

    def flaky(img):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("CUDA out of memory")
        return np.zeros(img.shape[:2], np.uint8)

    blocker = tmp_path / "not_a_dir"
    blocker.write_text("")
    stage = BenchmarkStage(blocker / "bench.csv", segmenter=flaky, num_classes=2, compute_ms_ssim=False)
    stage.add_original(header(1), frame)
    row = stage.add_reconstruction(header(1), frame)
    assert row is not None and "psnr" in row and "frame_miou_recon_vs_orig" not in row
    assert stage.counters["segmenter_errors"] == 1
    assert stage.counters["csv_errors"] == 1 and "cannot write" in stage.last_error  # the CSV folder cannot be created
    stage.add_original(header(2), frame)
    row = stage.add_reconstruction(header(2), frame)
    assert row["frame_miou_recon_vs_orig"] == pytest.approx(1.0) and stage.counters["paired"] == 2
    report = stage.diagnostics()
    assert report.level == "WARN"
    assert (report.values["segmenter_errors"], report.values["csv_errors"]) == ("1", "2")
    assert stage.close() is None  # cannot write: counted, no exception
    assert stage.counters["csv_errors"] == 3


def test_format_string_is_the_wire_label_without_local_paths():
    from semcomp_core.models.segment import default_segmenter_dir

    folder = str(default_segmenter_dir())
    stage = EncoderStage(f"semantic-gan:level=1:segmenter={folder}")  # built lazily: no model loaded
    assert folder in stage.label  # local reports may name it ...
    assert stage.format == "semcomp/semantic-gan:level=1"  # ... the published format never does
