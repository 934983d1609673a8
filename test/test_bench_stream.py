"""Benchmarks of streams: ``semcomp bench --sequence`` and ``--bag`` run codecs as streams (inter
frames, rate control) and report kbps, key frames and flicker; video anchors go through the same runner."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from semcomp_core.bench.runner import BenchRunner
from semcomp_core.cli.main import main
from semcomp_core import codecs
from semcomp_core.imageio import load_image, save_png
from semcomp_core.paths import SAMPLES_DIR

N = 8


def panning(n: int = N, h: int = 96, w: int = 128) -> list[np.ndarray]:
    image = load_image(SAMPLES_DIR / "images" / "0016E5_07959.png")[::2, ::2]
    return [np.ascontiguousarray(image[40:40 + h, 3 * i:3 * i + w]) for i in range(n)]


@pytest.fixture(scope="module")
def sequence_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sequence")
    for i, im in enumerate(panning()):
        save_png(root / f"frame_{i:04d}.png", im)
    return root


def run(argv) -> int:
    return main([str(a) for a in argv])


def summary(out: Path) -> dict:
    return {r["codec"]: r for r in json.loads((out / "summary.json").read_text())["codecs"]}


def test_sequence_bench_runs_codecs_as_streams(sequence_dir, tmp_path):
    out = tmp_path / "out"
    assert run(["bench", "--data", sequence_dir, "--sequence", "--fps", 10, "--segmenter", "none",
                "--codecs", "semantic-gan:gop=4,semantic-gan,jpeg:quality=5", "--out", out, "--quiet"]) == 0
    s = summary(out)
    stream, intra, jpeg = s["semantic-gan:level=1:gop=4"], s["semantic-gan:level=1"], s["jpeg:quality=5"]
    assert (stream["key_frames"], intra["key_frames"], jpeg["key_frames"]) == (2, N, N)
    assert stream["bytes"] < 0.75 * intra["bytes"]
    # kbps = 8 x all bytes / (frames / fps)
    rows = json.loads((out / "per_image.json").read_text())
    total = sum(r["bytes"] for r in rows if r["codec"] == "semantic-gan:level=1:gop=4")
    assert stream["kbps"] == pytest.approx(8 * total / (N / 10) / 1e3)
    assert [r["key"] for r in rows if r["codec"] == "semantic-gan:level=1:gop=4"] == [1, 0, 0, 0, 1, 0, 0, 0]
    # flicker: without a segmenter over all pixels; a panning camera changes every frame
    assert stream["flicker_original"] > 1.0
    assert stream["flicker"] is not None and jpeg["flicker"] is not None
    assert (out / "rate_distortion.png").stat().st_size > 0


def test_without_sequence_every_frame_is_coded_alone(sequence_dir, tmp_path):
    out = tmp_path / "out"
    assert run(["bench", "--data", sequence_dir, "--segmenter", "none", "--codecs", "semantic-gan:gop=4",
                "--out", out, "--quiet"]) == 0
    row = summary(out)["semantic-gan:level=1:gop=4"]
    assert "key_frames" not in row and row["kbps"] is None


def test_flicker_is_zero_for_a_static_stream_and_measured_on_stable_pixels(tmp_path):
    frame = panning(1)[0]
    runner = BenchRunner([codecs.create("semantic-gan:gop=30"), codecs.create("jpeg:quality=30")], tmp_path,
                         stream=True, fps=10)
    for i in range(4):
        runner.run_frame(f"f{i}", frame)
    rows = {r["codec"]: r for r in runner.finish()}
    assert rows["semantic-gan:level=1:gop=30"]["flicker"] == 0.0
    assert rows["semantic-gan:level=1:gop=30"]["flicker_original"] == 0.0
    assert rows["semantic-gan:level=1:gop=30"]["kbps"] == pytest.approx(
        8 * rows["semantic-gan:level=1:gop=30"]["bytes"] * 10 / 1e3)


def test_flicker_counts_only_pixels_whose_class_stayed(tmp_path):
    """With a segmenter, pixels whose class changed between original frames are left out."""
    a = np.zeros((32, 32, 3), np.uint8)
    b = a.copy()
    b[:, :16] = 200                                           # left half changes (and its class)

    class Halves:
        num_classes = 2

        def __call__(self, image):
            return (image[:, :, 0] > 100).astype(np.uint8)

    runner = BenchRunner([codecs.create("webp:quality=100")], tmp_path, stream=True, fps=10,
                         segmenter=Halves(), num_classes=2)
    runner.run_frame("a", a)
    runner.run_frame("b", b)
    row = runner.finish()[0]
    assert row["flicker_original"] == 0.0                   # the stable right half did not change
    assert row["flicker"] < 2.0


def test_bench_rejects_bad_stream_options(sequence_dir, tmp_path, capsys):
    assert run(["bench", "--data", sequence_dir, "--sequence", "--fps", 0, "--codecs", "jpeg",
                "--out", tmp_path / "a", "--quiet"]) != 0
    assert "--fps" in capsys.readouterr().err
    assert run(["bench", "--data", sequence_dir, "--sequence", "--codecs", "h264:bogus=3",
                "--out", tmp_path / "b", "--quiet"]) != 0
    assert "bogus" in capsys.readouterr().err


@pytest.mark.skipif("h264" not in codecs.available(), reason="video anchors need PyAV")
def test_video_anchors_run_as_streams_with_inter_frames(sequence_dir, tmp_path):
    out = tmp_path / "out"
    assert run(["bench", "--data", sequence_dir, "--sequence", "--fps", 10, "--segmenter", "none",
                "--codecs", "h264:qp=40,hevc:qp=40,av1:crf=50", "--out", out, "--quiet"]) == 0
    for label, row in summary(out).items():
        assert row["key_frames"] == 1, label                  # one key frame, inter frames after it
        assert row["psnr"] > 20, label
        assert "PyAV" in row["implementation"]


def test_bag_bench_runs_stateful_codecs_in_message_order(tmp_path):
    pytest.importorskip("rosbags")
    cv2 = pytest.importorskip("cv2")
    from semcomp_core.rosbag import make_bag, run_bag_bench

    video = tmp_path / "street.avi"
    h, w = panning(1)[0].shape[:2]
    vw = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (w, h))
    for im in panning():
        vw.write(np.ascontiguousarray(im[:, :, ::-1]))
    vw.release()
    bag = tmp_path / "bag"
    assert make_bag(bag, video=video) == N
    rows = run_bag_bench(bag, "/camera/image_raw", [codecs.create("semantic-gan:gop=30"), codecs.create("semantic-gan")],
                         tmp_path / "out", progress=False)
    by = {r["codec"]: r for r in rows}
    stream, intra = by["semantic-gan:level=1:gop=30"], by["semantic-gan:level=1"]
    assert stream["key_frames"] == 1 and intra["key_frames"] == N
    assert stream["bytes"] < 0.75 * intra["bytes"]
    assert stream["kbps"] == pytest.approx(8 * stream["bytes"] * 10 / 1e3, rel=1e-6)   # 10 Hz stamps


def test_a_budget_too_low_is_reported(sequence_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert run(["bench", "--data", sequence_dir, "--sequence", "--fps", 10, "--segmenter", "none",
                "--codecs", "semantic-gan:gop=100:kbps=0.5", "--out", out, "--quiet"]) == 0
    row = summary(out)["semantic-gan:level=1:gop=100:kbps=0.5"]
    assert row["skipped_frames"] > 0
    assert "repeats of the previous frame" in capsys.readouterr().err
