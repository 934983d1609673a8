"""Per-pixel confidence of the segmenter and its calibration (semcomp_core.models.confidence,
``semcomp calibrate``)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from semcomp_core.models.confidence import (KINDS, Calibration, confidence, fit_temperature, load_calibration,
                                            reliability, softmax, temperature_from_samples)


def _logits(k=5, h=7, w=9, scale=3.0, seed=0):
    return np.random.default_rng(seed).normal(0, scale, (k, h, w)).astype(np.float32)


# -- confidence ------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_confidence_shape_range_and_inputs(kind):
    import torch

    z = _logits()
    c = confidence(z, kind)
    assert c.shape == (7, 9) and c.dtype == np.float32
    assert (c >= 0).all() and (c <= 1).all()
    np.testing.assert_allclose(confidence(torch.from_numpy(z)[None], kind), c, atol=1e-6)  # torch, (1, K, h, w)
    np.testing.assert_allclose(confidence(z[None], kind), c, atol=1e-6)


def test_margin_entropy_maxprob_values():
    tie = np.array([3.0, 3.0, -1.0, 0.0])[:, None, None]
    sure = np.array([40.0, 0.0, 0.0, 0.0])[:, None, None]
    flat = np.zeros((4, 1, 1))
    assert confidence(tie, "margin")[0, 0] == pytest.approx(0.0, abs=1e-7)
    assert confidence(sure, "margin")[0, 0] == pytest.approx(1.0, abs=1e-6)
    assert confidence(sure, "entropy")[0, 0] == pytest.approx(1.0, abs=1e-6)
    assert confidence(sure, "maxprob")[0, 0] == pytest.approx(1.0, abs=1e-6)
    assert confidence(flat, "entropy")[0, 0] == pytest.approx(0.0, abs=1e-6)
    assert confidence(flat, "maxprob")[0, 0] == pytest.approx(0.25, abs=1e-6)
    z = _logits()
    p = softmax(z)
    s = np.sort(p, axis=0)
    np.testing.assert_allclose(confidence(z, "maxprob"), s[-1], atol=1e-6)
    np.testing.assert_allclose(confidence(z, "margin"), s[-1] - s[-2], atol=1e-6)
    h = -(p * np.log(p)).sum(0)
    np.testing.assert_allclose(confidence(z, "entropy"), 1 - h / np.log(5), atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_higher_temperature_lowers_confidence(kind):
    z = _logits(scale=2.0)
    prev = confidence(z, kind, 0.5)
    for t in (1.0, 1.5, 3.0, 10.0):
        c = confidence(z, kind, t)
        assert (c <= prev + 1e-6).all()
        prev = c
    assert prev.mean() < confidence(z, kind, 0.5).mean()


def test_bad_arguments():
    with pytest.raises(ValueError):
        confidence(_logits(), "nope")
    with pytest.raises(ValueError):
        confidence(_logits(), "margin", temperature=0)
    with pytest.raises(ValueError):
        confidence(np.zeros((3, 4)), "margin")


# -- temperature -----------------------------------------------------------------------------

def _sampled_labels(z, t_true, seed):
    p = softmax(z, t_true)
    u = np.random.default_rng(seed).random(p.shape[1:])
    return np.minimum((u[None] > p.cumsum(0)).sum(0), z.shape[0] - 1)


@pytest.mark.parametrize("t_true", [0.6, 1.0, 2.5])
def test_fit_temperature_recovers_a_known_temperature(t_true):
    frames = [_logits(k=6, h=60, w=80, scale=3.0, seed=s) for s in range(4)]
    labels = [_sampled_labels(z, t_true, 100 + i) for i, z in enumerate(frames)]
    labels[0][:5] = 255   # void is skipped
    t = fit_temperature(frames, labels, pixels_per_image=3000, seed=1)
    assert t == pytest.approx(t_true, rel=0.1)
    assert fit_temperature(frames, labels, pixels_per_image=3000, seed=1) == t   # deterministic


def test_temperature_bounds_and_errors():
    z = np.array([[5.0, 0.0], [0.0, 5.0]] * 50, np.float32)
    assert temperature_from_samples(z, np.array([0, 1] * 50)) == pytest.approx(0.01)     # all right: sharpen
    assert temperature_from_samples(z, np.array([1, 0] * 50)) > 1                          # all wrong: soften
    with pytest.raises(ValueError):
        temperature_from_samples(z[:0], np.zeros(0, np.int64))


# -- reliability -----------------------------------------------------------------------------

def test_reliability_by_hand():
    r = reliability(np.array([0.1, 0.3, 0.8, 0.9]), np.array([False, True, True, True]), bins=2)
    # bin [0, .5): conf 0.2, acc 0.5; bin [.5, 1]: conf 0.85, acc 1 -> ECE = .5 * .3 + .5 * .15
    assert r["ece"] == pytest.approx(0.225)
    assert r["brier"] == pytest.approx((0.01 + 0.49 + 0.04 + 0.01) / 4)
    assert r["accuracy"] == 0.75 and r["count"] == 4
    assert [b["count"] for b in r["bins"]] == [2, 2]
    assert r["bins"][0]["accuracy"] == 0.5 and r["bins"][1]["confidence"] == pytest.approx(0.85)
    below = {x["threshold"]: x for x in r["below"]}
    assert below[0.5]["fraction"] == 0.5 and below[0.5]["accuracy"] == 0.5 and below[0.5]["accuracy_above"] == 1
    assert below[0.9]["fraction"] == 0.75 and below[0.9]["accuracy"] == pytest.approx(2 / 3)
    one = reliability(np.array([1.0, 0.0]), np.array([True, False]), bins=15)   # 1.0 falls in the last bin
    assert one["ece"] == 0 and one["bins"][-1]["count"] == 1 and one["brier"] == 0
    with pytest.raises(ValueError):
        reliability(np.array([1.5]), np.array([True]))


# -- calibration files -----------------------------------------------------------------------

def test_shipped_calibration_loads_and_is_sane():
    from semcomp_core.models.segment import default_segmenter_dir

    if not (default_segmenter_dir() / "config.json").exists():
        pytest.skip("shipped segmenter not installed")
    cal = load_calibration("default")
    assert cal is not None and cal == load_calibration(default_segmenter_dir())
    assert 0.3 < cal.temperature < 3 and 0.3 < cal.grid_temperature < 3
    assert cal.kind in KINDS and cal.grid["factor"] == 8
    for v in (cal.ece_before, cal.ece_after, cal.grid["ece_before"], cal.grid["ece_after"]):
        assert 0 <= v < 0.2
    assert cal.ece_after <= cal.ece_before and 0.5 < cal.accuracy <= 1
    assert sum(b["count"] for b in cal.bins) == cal.details["data"]["pixels"]
    assert cal.details["data"]["split"] == "val" and cal.details["crossval"]["blocks"]
    c = cal.confidence(_logits(k=11), grid=True)
    assert c.shape == (7, 9) and (c >= 0).all() and (c <= 1).all()


def test_calibration_round_trip_and_missing(tmp_path):
    assert load_calibration(tmp_path) is None
    cal = Calibration(temperature=1.5, kind="margin", ece_before=0.1, ece_after=0.05,
                      grid={"factor": 8, "temperature": 2.0})
    cal.save(tmp_path / "calibration.json")
    back = load_calibration(tmp_path)
    assert back == cal and back.grid_temperature == 2.0
    np.testing.assert_allclose(back.confidence(_logits()), confidence(_logits(), "margin", 1.5))
    (tmp_path / "calibration.json").write_text("{}")
    from semcomp_core.errors import UsageError
    with pytest.raises(UsageError):
        load_calibration(tmp_path)


# -- the CLI on a tiny CamVid-format tree ----------------------------------------------------

@pytest.fixture
def camvid_tree(tmp_path):
    root = tmp_path / "camvid"
    (root / "val").mkdir(parents=True)
    (root / "valannot").mkdir()
    rng = np.random.default_rng(3)
    for i in range(2):
        image = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
        raw = np.zeros((48, 64), np.uint8)
        raw[:16] = 0            # sky
        raw[16:32] = 1          # building
        raw[32:] = 3            # road
        raw[:, :9] = 11         # void (CamVid 11): a void-majority grid column
        Image.fromarray(image).save(root / "val" / f"f{i}.png")
        Image.fromarray(raw).save(root / "valannot" / f"f{i}.png")
    return root


def test_cli_calibrate_writes_json_and_plot(camvid_tree, tmp_path, capsys):
    from semcomp_core.cli.main import main
    from semcomp_core.models.segment import default_segmenter_dir

    if not (default_segmenter_dir() / "config.json").exists():
        pytest.skip("shipped segmenter not installed")
    out = tmp_path / "cal"
    rc = main(["calibrate", "--data", str(camvid_tree), "--dataset", "camvid", "--split", "val", "--grid", "8",
               "--pixels", "500", "--out", str(out), "--quiet"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "ECE T=1" in printed and "conf<0.5" in printed and "grid 1/8" in printed and "1-1" in printed
    doc = json.loads((out / "calibration.json").read_text())
    for key in ("format", "temperature", "kind", "ece_before", "ece_after", "brier_before", "brier_after",
                "accuracy", "bins", "grid", "details"):
        assert key in doc
    for key in ("factor", "temperature", "ece_before", "ece_after", "brier_before", "brier_after", "accuracy", "bins"):
        assert key in doc["grid"]
    d = doc["details"]
    assert d["data"]["frames"] == 2 and d["data"]["pixels"] == 2 * 48 * 55
    assert d["data"]["cells"] == 2 * 6 * 7        # the first of 8 grid columns is void-majority
    assert doc["grid"]["factor"] == 8 and doc["kind"] == "maxprob" and doc["temperature"] > 0
    assert set(d["kinds"]["pixels"]) == set(KINDS)
    assert [b["eval_frames"] for b in d["crossval"]["blocks"]] == [[1, 1], [2, 2]]
    assert sum(b["count"] for b in doc["bins"]) == d["data"]["pixels"]
    assert Calibration.load(out / "calibration.json").temperature == doc["temperature"]
    assert (out / "reliability.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("argv, message", [
    (["--grid", "6"], "--grid must be one of 4, 8, 16, 32, 64"),
    (["--grid", "x"], "invalid int value"),
    (["--folds", "1"], "--folds"),
])
def test_cli_calibrate_usage_errors(camvid_tree, tmp_path, capsys, argv, message):
    from semcomp_core.cli.main import main

    out = tmp_path / "o"
    rc = main(["calibrate", "--data", str(camvid_tree), "--out", str(out), *argv])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("semcomp: error:") and message in err[0]
    assert not out.exists()
