"""Honesty of the numbers the benchmark and the decoder stage report.

* ``bytes`` in the bench rows is the length of the whole container ``encode`` returned -- the very
  file ``semcomp encode`` writes, header and CRC included -- and ``bpp == 8 * bytes / (H * W)``;
* PSNR is over all three channels (checked with errors that differ per channel), in
  ``metrics.psnr`` and in the bench rows, and it scores what the receiver decodes from the bytes;
* ``DecoderStage(max_pixels=N)`` accepts exactly N pixels, rejects N + 1, and 0 means no limit.

Deliberate faults these tests must catch (checked by hand when written): a bench reporting
``len(container) - 4`` (no CRC) as ``bytes``; a bpp over a different pixel count; a PSNR over one
channel (or over luma); ``>=`` instead of ``>`` in the max_pixels check. Overlaps with
test_metrics.py / test_pipeline_stages.py are avoided: those check PSNR with equal per-channel
errors and max_pixels far from the boundary.
"""
from __future__ import annotations

import binascii
import csv
import json
import math
from types import SimpleNamespace

import numpy as np
import pytest

from semcomp_core import codecs
from semcomp_core.bench.runner import BenchRunner
from semcomp_core.bitstream import unpack
from semcomp_core.cli.main import main
from semcomp_core.errors import UsageError
from semcomp_core.imageio import load_image, save_png
from semcomp_core.metrics import psnr
from semcomp_core.pipeline import DecoderStage, EncoderStage

H, W = 181, 243  # odd, non-square: H*W differs from every plausible mix-up (padded, swapped, 8-aligned)


@pytest.fixture(scope="module")
def frame(sample_paths) -> np.ndarray:
    img = load_image(sample_paths[1])
    return np.ascontiguousarray(img[37:37 + H, 101:101 + W])


def _recording(codec):
    """Make ``codec.encode`` keep every container it returns (in ``codec.returned``)."""
    codec.returned = []
    encode = codec.encode

    def recorded(image):
        data = encode(image)
        codec.returned.append(bytes(data))
        return data

    codec.encode = recorded
    return codec


def _expected_psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR by hand: 10 log10(255^2 / MSE), MSE over every pixel of every channel."""
    d = a.astype(np.float64) - b.astype(np.float64)
    return 10 * math.log10(255.0**2 / float((d * d).sum() / d.size))


# ---------------------------------------------------------------------------- bench rows
@pytest.fixture(scope="module")
def bench(frame, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    coded = [_recording(codecs.create(spec)) for spec in ("jpeg:quality=20", "webp:quality=30")]
    runner = BenchRunner(coded, out, warmup=False)   # every encode call is then a scored one
    frames = {"crop": frame, "crop_flipped": np.ascontiguousarray(frame[::-1, ::-1])}
    outcomes = [o for name, img in frames.items() for o in runner.run_frame(name, img)]
    summary = runner.finish()
    return SimpleNamespace(out=out, codecs=coded, frames=frames, outcomes=outcomes, summary=summary)


def test_bytes_column_is_the_container_encode_returned(bench):
    # outcomes come frame by frame, codec by codec
    returned = [c.returned[i] for i in range(len(bench.frames)) for c in bench.codecs]
    assert len(returned) == len(bench.outcomes) == 4
    for data, o in zip(returned, bench.outcomes):
        assert o.data == data
        assert o.row["bytes"] == len(data), (o.row["codec"], o.row["bytes"], len(data))
        # the counted bytes are the whole container: magic first, the last layer's check over the rest last
        assert data[:2] == b"SC" and binascii.crc_hqx(data[:-2], 0xFFFF) == int.from_bytes(data[-2:], "big")
        assert not unpack(data).truncated
    for c, s in zip(bench.codecs, bench.summary):
        assert s["codec"] == c.label() and s["frames"] == 2
        assert s["bytes"] == pytest.approx(np.mean([len(d) for d in c.returned]), abs=1e-9)


def test_written_per_image_files_carry_the_same_bytes(bench):
    expected = [(o.row["image"], o.row["codec"], len(o.data)) for o in bench.outcomes]
    with open(bench.out / "per_image.csv", newline="") as f:
        from_csv = [(r["image"], r["codec"], int(r["bytes"])) for r in csv.DictReader(f)]
    from_json = [(r["image"], r["codec"], r["bytes"])
                 for r in json.loads((bench.out / "per_image.json").read_text())]
    assert from_csv == from_json == expected


def test_bpp_is_8_bytes_over_pixels(bench):
    for o in bench.outcomes:
        r = o.row
        assert (r["height"], r["width"]) == (H, W)
        assert r["bpp"] == pytest.approx(8 * len(o.data) / (H * W), rel=1e-12)
    for s in bench.summary:
        rows = [o.row for o in bench.outcomes if o.row["codec"] == s["codec"]]
        assert s["bpp"] == pytest.approx(np.mean([8 * r["bytes"] / (H * W) for r in rows]), rel=1e-12)


def test_bench_psnr_is_over_all_channels_of_what_the_receiver_decodes(bench):
    for o in bench.outcomes:
        image = bench.frames[o.row["image"]]
        np.testing.assert_array_equal(o.reconstruction, codecs.decode(o.data))
        d = image.astype(np.float64) - o.reconstruction.astype(np.float64)
        per_channel = (d * d).mean(axis=(0, 1))
        # lossy 4:2:0 coding: the channel errors really differ, so a one-channel PSNR would show
        assert per_channel.max() > 1.1 * per_channel.min(), per_channel
        assert o.row["psnr"] == pytest.approx(_expected_psnr(image, o.reconstruction), abs=1e-9)
        for mse in per_channel:
            assert abs(o.row["psnr"] - 10 * math.log10(255.0**2 / mse)) > 0.05


def test_bytes_match_the_file_semcomp_encode_writes(frame, tmp_path, sample_paths, capsys):
    png = tmp_path / "crop.png"
    save_png(png, frame)
    cases = [("jpeg:quality=20", png, frame), ("semantic-gan", sample_paths[0], load_image(sample_paths[0]))]
    for spec, path, image in cases:
        smc = tmp_path / f"{spec.replace(':', '_')}.smc"
        assert main(["encode", str(path), "-o", str(smc), "--codec", spec]) == 0
        printed = json.loads(capsys.readouterr().out)
        on_disk = smc.read_bytes()
        runner = BenchRunner([codecs.create(spec)], tmp_path / f"bench_{spec.replace(':', '_')}")
        (o,) = runner.run_frame(path.stem, image)
        runner.close()
        assert o.data == on_disk, spec  # deterministic encoders: the bench counted the same container
        assert o.row["bytes"] == len(on_disk) == printed["bytes"] == smc.stat().st_size
        assert printed["bpp"] == pytest.approx(o.row["bpp"], rel=1e-12)
        c = unpack(on_disk)
        assert (c.height, c.width) == image.shape[:2] == (o.row["height"], o.row["width"])


# ---------------------------------------------------------------------------- metrics.psnr
def test_psnr_error_in_one_channel_only_is_averaged_over_all_channels():
    rng = np.random.default_rng(8)
    a = rng.integers(20, 236, size=(17, 23, 3), dtype=np.uint8)
    b = a.copy()
    b[..., 2] += 6  # blue only: per-channel MSE (0, 0, 36), overall 12
    assert psnr(a, b) == pytest.approx(10 * math.log10(255.0**2 / 12.0), abs=1e-9)
    assert psnr(a, b) == pytest.approx(_expected_psnr(a, b), abs=1e-12)
    assert psnr(b, a) == pytest.approx(psnr(a, b), abs=1e-12)
    # an R-only or luma-only PSNR would say inf or 10 log10(255^2 / (0.114 * 6)^2): both wrong
    assert math.isfinite(psnr(a, b)) and psnr(a, b) < 40


def test_psnr_unequal_errors_in_every_channel():
    rng = np.random.default_rng(9)
    a = rng.integers(20, 236, size=(19, 31, 3), dtype=np.uint8)
    b = a.astype(np.int16)
    b[..., 0] -= 1
    b[..., 1] += 2
    b[..., 2] -= 4
    b = b.astype(np.uint8)  # per-channel MSE (1, 4, 16): overall 7
    assert psnr(a, b) == pytest.approx(10 * math.log10(255.0**2 / 7.0), abs=1e-9)
    for mse in (1.0, 4.0, 16.0):  # any single-channel PSNR would give one of these
        assert psnr(a, b) != pytest.approx(10 * math.log10(255.0**2 / mse), abs=0.1)
    # errors in only some pixels of one channel: the mean runs over all H*W*3 samples
    c = a.copy()
    c[:5, :, 1] = 255 - c[:5, :, 1]
    assert psnr(a, c) == pytest.approx(_expected_psnr(a, c), abs=1e-12)


# ---------------------------------------------------------------------------- max_pixels
@pytest.fixture(scope="module")
def container(frame):
    enc = EncoderStage("jpeg", quality=40).encode(frame, _header(0))
    return enc.data, enc.format


def _header(i: int):
    return SimpleNamespace(stamp=SimpleNamespace(sec=i, nanosec=0), frame_id="cam")


@pytest.mark.parametrize("limit, accepted", [(H * W, True), (H * W - 1, False), (H * W + 1, True),
                                             (0, True), (1, False)])
def test_max_pixels_boundary_from_the_constructor(container, limit, accepted):
    data, fmt = container
    stage = DecoderStage(max_pixels=limit)
    out = stage.decode(data, _header(1), fmt)
    c = stage.counters
    if accepted:
        assert out is not None and out.image.shape == (H, W, 3), stage.last_error
        assert (c["decoded"], c["rejected"]) == (1, 0)
    else:
        assert out is None
        assert (c["decoded"], c["rejected"], c["corrupt"], c["errors"]) == (0, 1, 0, 0)
        assert "max_pixels" in stage.last_error and f"{W}x{H}" in stage.last_error


def test_max_pixels_boundary_through_configure(container):
    data, fmt = container
    stage = DecoderStage()
    results = []
    for i, limit in enumerate((H * W, H * W - 1, 0, H * W - 1, H * W)):
        stage.configure(max_pixels=limit)
        results.append(stage.decode(data, _header(i), fmt) is not None)
    assert results == [True, False, True, False, True]
    assert (stage.counters["decoded"], stage.counters["rejected"], stage.counters["received"]) == (3, 2, 5)
    with pytest.raises(UsageError) as err:
        stage.configure(max_pixels=-1)
    assert "max_pixels" in str(err.value)
    assert stage.max_pixels == H * W  # a refused setting changes nothing


def test_decoder_stage_refuses_a_negative_max_pixels_at_construction():
    from semcomp_core.errors import UsageError
    from semcomp_core.pipeline import DecoderStage

    with pytest.raises(UsageError, match="max_pixels"):
        DecoderStage(max_pixels=-1)


def test_warm_up_call_is_not_scored_and_changes_no_number(frame, tmp_path):
    """The default warm-up encodes/decodes the first frame once untimed: rows are those of a cold run."""
    rows = {}
    for warm in (True, False):
        codec = _recording(codecs.create("jpeg:quality=20"))
        runner = BenchRunner([codec], tmp_path / str(warm), warmup=warm)
        out = runner.run_frame("f", frame)
        runner.close()
        assert len(codec.returned) == (2 if warm else 1) and len(out) == 1
        rows[warm] = {k: out[0].row[k] for k in ("bytes", "bpp", "psnr", "ms_ssim")}
    assert rows[True] == rows[False]


def test_edge_columns_are_one_score(bench):
    """edge_f is the F of the reported edge precision and recall, row by row and in the summary means."""
    for o in bench.outcomes:
        p, r = o.row["edge_precision"], o.row["edge_recall"]
        assert 0 <= p <= 1 and 0 <= r <= 1
        assert o.row["edge_f"] == pytest.approx(2 * p * r / (p + r) if p + r else 0.0)
    for s in bench.summary:
        assert {"edge_f", "edge_precision", "edge_recall"} <= set(s)
