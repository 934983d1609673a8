"""The robustness suite (issue 9): camera-style transforms and ``semcomp robustness``."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from semcomp_core.bench.camera_transforms import TRANSFORMS, frame_rng, parse_transforms
from semcomp_core.errors import UsageError
from semcomp_core.metrics.segmentation import ConfusionAccumulator

PHOTOMETRIC = ["identity", "color-cast-warm", "color-cast-cool", "dark-gamma", "blur", "noise", "jpeg-q30",
               "vignetting"]
GEOMETRIC = ["cityscapes-1024x512", "cityscapes-2048x1024", "narrow-fov"]


def _frame(h: int = 72, w: int = 96, seed: int = 1):
    """A textured frame and a blocky label map with ignore (255) blocks spread over the whole frame."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 11, (h // 8 + 1, w // 8 + 1)).astype(np.uint8)
    blocks[::3, ::3] = 255
    label = np.kron(blocks, np.ones((8, 8), np.uint8))[:h, :w]
    base = np.where(label == 255, 30, label.astype(np.int32) * 20 + 20)
    image = np.clip(base[:, :, None] + rng.integers(-20, 21, (h, w, 3)), 0, 255).astype(np.uint8)
    return image, label


def test_registry_names_and_every_transform_is_listed():
    assert list(TRANSFORMS) == ["identity", "cityscapes-1024x512", "cityscapes-2048x1024", "narrow-fov",
                                "color-cast-warm", "color-cast-cool", "dark-gamma", "blur", "noise", "jpeg-q30",
                                "vignetting"]
    assert sorted(PHOTOMETRIC + GEOMETRIC) == sorted(TRANSFORMS)
    for name, t in TRANSFORMS.items():
        d = t.describe()
        assert d["name"] == name and json.dumps(d)


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_transform_deterministic_and_well_formed(name):
    image, label = _frame()
    before = image.copy(), label.copy()
    a_img, a_lab = TRANSFORMS[name](image, label, np.random.default_rng(5))
    b_img, b_lab = TRANSFORMS[name](image, label, np.random.default_rng(5))
    np.testing.assert_array_equal(a_img, b_img)
    np.testing.assert_array_equal(a_lab, b_lab)
    np.testing.assert_array_equal(image, before[0])      # inputs untouched
    np.testing.assert_array_equal(label, before[1])
    assert a_img.dtype == np.uint8 and a_img.ndim == 3 and a_img.shape[2] == 3 and a_img.flags.c_contiguous
    assert a_lab.dtype == np.uint8 and a_lab.shape == a_img.shape[:2]
    assert set(np.unique(a_lab)) <= set(np.unique(label))  # nearest neighbour: no new values
    assert 255 in a_lab                                    # ignore survives
    img_only, none = TRANSFORMS[name](image, None, np.random.default_rng(5))
    assert none is None
    np.testing.assert_array_equal(img_only, a_img)


@pytest.mark.parametrize("name,size", [("cityscapes-1024x512", (512, 1024)), ("cityscapes-2048x1024", (1024, 2048))])
def test_cityscapes_sizes_crop_a_central_band_and_resample_labels_nearest(name, size):
    image, label = _frame(360, 480)
    out, lab = TRANSFORMS[name](image, label, None)
    assert out.shape == (*size, 3) and lab.shape == size
    # the 2:1 band of a 480x360 frame is rows 60..299: each output pixel takes one label of that band
    band = label[60:300]
    # pixel-centre aligned like the bicubic image: source = floor((x + 0.5) * in / out)
    ys = np.minimum(((np.arange(size[0]) + 0.5) * 240 / size[0]).astype(int), 239)
    xs = np.minimum(((np.arange(size[1]) + 0.5) * 480 / size[1]).astype(int), 479)
    np.testing.assert_array_equal(lab, band[ys][:, xs])


def test_narrow_fov_keeps_size_and_zooms_in():
    image, label = _frame(360, 480)
    out, lab = TRANSFORMS["narrow-fov"](image, label, None)
    assert out.shape == image.shape and lab.shape == label.shape
    # central pixel unchanged, the corner now shows what was 15 % in from the corner
    assert lab[180, 240] == label[180, 240]
    assert lab[0, 0] == label[54, 72]


@pytest.mark.parametrize("name", PHOTOMETRIC)
def test_photometric_transforms_keep_the_label(name):
    image, label = _frame()
    _, lab = TRANSFORMS[name](image, label, np.random.default_rng(0))
    np.testing.assert_array_equal(lab, label)


def _rb(img):
    f = img.astype(np.float64)
    return f[..., 0].mean() / f[..., 2].mean()


def test_photometric_directions():
    image, _ = _frame(120, 160)
    t = TRANSFORMS
    assert _rb(t["color-cast-warm"](image, None)[0]) > _rb(image) * 1.3
    assert _rb(t["color-cast-cool"](image, None)[0]) < _rb(image) / 1.3
    assert t["dark-gamma"](image, None)[0].mean() < image.mean() * 0.6
    assert t["dark-gamma"](np.full((4, 4, 3), 128, np.uint8), None)[0][0, 0, 0] == 45

    def hf(img):  # energy of the discrete Laplacian
        g = img.astype(np.float64).mean(2)
        return np.mean((4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:]) ** 2)
    assert hf(t["blur"](image, None)[0]) < hf(image) * 0.2
    flat = np.full((200, 200, 3), 128, np.uint8)
    noisy = t["noise"](flat, None, np.random.default_rng(0))[0]
    assert abs(noisy.astype(np.float64).std() - 8.0) < 0.3 and abs(noisy.mean() - 128) < 0.2
    j = t["jpeg-q30"](image, None)[0]
    assert j.shape == image.shape and not np.array_equal(j, image)
    v = t["vignetting"](np.full((90, 120, 3), 200, np.uint8), None)[0]
    assert v[45, 60, 0] >= 199 and v[0, 0, 0] == 120 and v[0, 119, 0] == 120


def test_noise_depends_on_the_seed_only():
    image, _ = _frame()
    a = TRANSFORMS["noise"](image, None, frame_rng(0, "noise", "f1"))[0]
    assert np.array_equal(a, TRANSFORMS["noise"](image, None, frame_rng(0, "noise", "f1"))[0])
    assert not np.array_equal(a, TRANSFORMS["noise"](image, None, frame_rng(1, "noise", "f1"))[0])
    assert not np.array_equal(a, TRANSFORMS["noise"](image, None, frame_rng(0, "noise", "f2"))[0])


def test_parse_transforms():
    assert parse_transforms("all") == list(TRANSFORMS)
    assert parse_transforms("blur, identity") == ["blur", "identity"]
    with pytest.raises(UsageError, match="unknown transform 'fisheye'; valid: all, identity, cityscapes-1024x512"):
        parse_transforms("identity,fisheye")
    with pytest.raises(UsageError, match="twice"):
        parse_transforms("blur,blur")


# -- the runner on a tiny CamVid-format tree ----------------------------------------------

@pytest.fixture
def camvid_tree(tmp_path):
    root = tmp_path / "camvid"
    (root / "val").mkdir(parents=True)
    (root / "valannot").mkdir()
    frames = []
    for i in range(3):
        image, label = _frame(72, 96, seed=10 + i)
        raw = np.where(label == 255, 11, label).astype(np.uint8)   # CamVid void = 11
        Image.fromarray(image).save(root / "val" / f"f{i}.png")
        Image.fromarray(raw).save(root / "valannot" / f"f{i}.png")
        frames.append((f"f{i}", image, label))
    return root, frames


class _Brightness:
    """A cheap deterministic segmenter: class = mean brightness // 24 (0..10)."""

    num_classes = 11
    path = "brightness"

    def __init__(self, step: int = 24):
        self.step = step

    def __call__(self, image):
        return np.minimum(image.astype(np.int32).mean(2) // self.step, 10).astype(np.uint8)


def test_run_robustness_rows_files_and_identity_miou(camvid_tree, tmp_path):
    from semcomp_core.bench.robustness import ROW_FIELDS, format_rows, run_robustness

    root, frames = camvid_tree
    seg, ev = _Brightness(24), _Brightness(30)
    names = ["identity", "cityscapes-1024x512", "color-cast-warm", "noise"]
    out = tmp_path / "rob"
    rows = run_robustness(root, "val", names, "jpeg:quality=10,bpg:q=51", out, segmenter=seg, eval_segmenter=ev)
    assert [(r["transform"], r["codec"]) for r in rows] == [
        (n, c) for n in names for c in ("none", "jpeg:quality=10", "bpg:q=51")]
    with open(out / "robustness.csv") as f:
        csv_rows = list(csv.DictReader(f))
    assert len(csv_rows) == len(rows) and list(csv_rows[0]) == ROW_FIELDS
    doc = json.loads((out / "robustness.json").read_text())
    assert len(doc["rows"]) == len(rows) and [t["name"] for t in doc["meta"]["transforms"]] == names
    for n in names:
        assert (out / n / "summary.csv").exists() and (out / n / "per_image.csv").exists()

    # identity: the segmenters on the originals, dataset-level, computed directly
    for model, key in ((seg, "miou_seg_vs_gt"), (ev, "eval_miou_vs_gt")):
        acc = ConfusionAccumulator(11)
        for _, image, label in frames:
            acc.update(model(image), label)
        for r in rows[:3]:
            assert r[key] == pytest.approx(acc.miou(), abs=1e-12)
    by = {(r["transform"], r["codec"]): r for r in rows}
    for r in rows:
        assert r["frames"] == 3 and r["frames_with_gt"] == 3
        assert 0 <= r["miou_seg_vs_gt"] <= 1 and 0 <= r["eval_miou_vs_gt"] <= 1
        if r["codec"] == "none":
            assert r["bytes"] is None and r["miou_recon_vs_gt"] is None
        else:
            assert r["bytes"] > 0 and r["psnr"] > 10 and 0 <= r["miou_recon_vs_gt"] <= 1
            assert r["miou_seg_vs_gt"] == by[(r["transform"], "none")]["miou_seg_vs_gt"]
    assert (by[("cityscapes-1024x512", "none")]["height"], by[("cityscapes-1024x512", "none")]["width"]) == (512, 1024)
    assert by[("identity", "none")]["width"] == 96
    # working resolution (the semantic codec's 480x360 pixels): a 96x72 frame is segmented as it is,
    # a 1024x512 one area-downscaled first, its labels nearest-upsampled back
    assert by[("identity", "none")]["miou_seg_work_vs_gt"] == by[("identity", "none")]["miou_seg_vs_gt"]
    import cv2
    from semcomp_core.codecs.semantic import working_resolution
    acc = ConfusionAccumulator(11)
    for name, image, label in frames:
        big, big_label = TRANSFORMS["cityscapes-1024x512"](image, label, None)
        work = working_resolution(big, 480 * 360)
        assert work.shape[:2] == (294, 588)
        acc.update(cv2.resize(seg(work), (1024, 512), interpolation=cv2.INTER_NEAREST_EXACT), big_label)
    for c in ("none", "bpg:q=51"):
        assert by[("cityscapes-1024x512", c)]["miou_seg_work_vs_gt"] == pytest.approx(acc.miou(), abs=1e-12)
    # reconstructions: at 1024x512 scored at the working resolution; small frames: the full-resolution value
    from semcomp_core.bench.runner import BenchRunner
    from semcomp_core.cli.bench_cmd import _codecs_from
    jpeg = _codecs_from("jpeg:quality=10", "cpu")[0]
    acc = ConfusionAccumulator(11)
    for name, image, label in frames:
        big, big_label = TRANSFORMS["cityscapes-1024x512"](image, label, None)
        recon = BenchRunner.receive(jpeg, jpeg.encode(big))
        work = working_resolution(recon, 480 * 360)
        acc.update(cv2.resize(seg(work), (1024, 512), interpolation=cv2.INTER_NEAREST_EXACT), big_label)
    assert by[("cityscapes-1024x512", "jpeg:quality=10")]["miou_recon_work_vs_gt"] == pytest.approx(acc.miou(),
                                                                                                    abs=1e-12)
    for c in ("jpeg:quality=10", "bpg:q=51"):
        r = by[("identity", c)]
        assert r["miou_recon_work_vs_gt"] == pytest.approx(r["miou_recon_vs_gt"], abs=1e-12)
        assert r["eval_miou_recon_work_vs_gt"] == pytest.approx(r["eval_miou_recon_vs_gt"], abs=1e-12)
        assert by[("identity", "none")]["miou_recon_work_vs_gt"] is None
    assert by[("cityscapes-1024x512", "none")]["eval_miou_work_vs_gt"] is not None
    assert json.loads((out / "robustness.json").read_text())["meta"]["work_pixels"] == 480 * 360
    # the transform changed what the segmenter sees (warm cast: brighter red, darker blue)
    assert by[("color-cast-warm", "none")]["miou_seg_vs_gt"] != by[("identity", "none")]["miou_seg_vs_gt"]
    table = format_rows(rows)
    assert "cityscapes-1024x512" in table and "1024x512" in table and "mIoU(seg)" in table

    # re-runnable: the same numbers again (noise is seeded per frame)
    again = run_robustness(root, "val", ["noise"], "none", tmp_path / "rob2", segmenter=seg, eval_segmenter=ev)
    assert again[0]["miou_seg_vs_gt"] == by[("noise", "none")]["miou_seg_vs_gt"]


def test_cli_robustness_with_the_shipped_segmenter(camvid_tree, tmp_path, capsys):
    from semcomp_core.cli.main import main
    from semcomp_core.models.segment import open_segmenter

    seg = open_segmenter("auto", auto="default")
    if seg is None:
        pytest.skip("shipped segmenter weights not installed")
    root, frames = camvid_tree
    out = tmp_path / "cli"
    rc = main(["robustness", "--data", str(root), "--dataset", "camvid", "--transforms", "identity,blur",
               "--codecs", "none", "--eval-segmenter", "none", "--limit", "2", "--out", str(out), "--quiet"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "identity" in printed and "blur" in printed and "mIoU(seg)" in printed
    rows = json.loads((out / "robustness.json").read_text())["rows"]
    assert [(r["transform"], r["codec"], r["frames"]) for r in rows] == [("identity", "none", 2), ("blur", "none", 2)]
    acc = ConfusionAccumulator(seg.num_classes)
    for _, image, label in frames[:2]:
        acc.update(seg(image), label)
    assert rows[0]["miou_seg_vs_gt"] == pytest.approx(acc.miou(), abs=1e-12)
    assert rows[0]["eval_miou_vs_gt"] is None
    assert rows[0]["miou_seg_work_vs_gt"] == rows[0]["miou_seg_vs_gt"]   # 96x72: no downscaling


def test_cli_unknown_transform_is_a_usage_error(tmp_path, capsys):
    from semcomp_core.cli.main import main

    rc = main(["robustness", "--data", str(tmp_path), "--transforms", "identity,fisheye", "--out", str(tmp_path / "o")])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("semcomp: error: unknown transform 'fisheye'; valid: all, identity,")
    assert "dark-gamma" in err[0] and not (tmp_path / "o").exists()
