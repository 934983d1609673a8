"""Tests of semcomp_core.metrics: PSNR, MS-SSIM, confusion/IoU, semantic preservation, LPIPS (offline)."""
from __future__ import annotations

import logging
import math
import subprocess
import sys
import time
import types
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semcomp_core.metrics import (
    ConfusionAccumulator,
    SemanticPreservation,
    bits_per_pixel,
    confusion_matrix,
    iou_per_class,
    lpips_available,
    lpips_distance,
    mean_iou,
    ms_ssim,
    pixel_accuracy,
    psnr,
)
from semcomp_core.metrics import lpips_metric
from semcomp_core.metrics.image_quality import _ms_ssim_torch, ms_ssim_plan


def _noisy(img: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(img.astype(np.float64) + rng.normal(0.0, sigma, img.shape), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- PSNR

def test_psnr_hand_computed():
    a = np.full((6, 5, 3), 100, np.uint8)
    b = a + 1  # every sample off by one: MSE = 1
    assert psnr(a, b) == pytest.approx(10 * math.log10(255.0**2), abs=1e-9)
    assert psnr(a, b) == pytest.approx(48.1308, abs=1e-4)
    c = a.copy()
    c[:3] += 2  # half the samples off by 2: MSE = 2
    assert psnr(a, c) == pytest.approx(10 * math.log10(255.0**2 / 2), abs=1e-9)
    assert psnr(a, b, max_val=1.0) == pytest.approx(0.0, abs=1e-12)


def test_psnr_identical_is_inf_and_no_uint8_wraparound():
    a = np.zeros((4, 4, 3), np.uint8)
    assert psnr(a, a) == float("inf")
    b = np.full_like(a, 255)
    assert psnr(a, b) == pytest.approx(0.0, abs=1e-12)  # 0 - 255 must not wrap to 1


def test_shape_mismatch_raises():
    a = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ValueError):
        psnr(a, np.zeros((8, 9, 3), np.uint8))
    with pytest.raises(ValueError):
        ms_ssim(a, np.zeros((9, 8, 3), np.uint8))


# --------------------------------------------------------------------------- MS-SSIM

def test_ms_ssim_sample_identical_noisy_monotone(sample_image):
    assert sample_image.shape == (360, 480, 3)
    assert ms_ssim(sample_image, sample_image) == pytest.approx(1.0, abs=1e-5)
    scores = [ms_ssim(sample_image, _noisy(sample_image, s)) for s in (3, 12, 40)]
    assert all(0.0 < v < 1.0 for v in scores)
    assert scores[0] > scores[1] > scores[2]


@pytest.mark.parametrize("shape", [(30, 40), (80, 100), (8, 8)])
def test_ms_ssim_small_images_monotone(sample_image, shape):
    h, w = shape
    img = np.ascontiguousarray(sample_image[100:100 + h, 200:200 + w])
    assert ms_ssim(img, img) == pytest.approx(1.0, abs=1e-5)
    scores = [ms_ssim(img, _noisy(img, s, seed=1)) for s in (2, 10, 30, 80)]
    assert all(0.0 <= v < 1.0 for v in scores)
    assert scores == sorted(scores, reverse=True) and scores[0] > scores[-1]


def test_ms_ssim_never_raises_or_warns_for_any_small_size():
    rng = np.random.default_rng(3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pytorch_msssim warns when it skips smoothing
        for side in (1, 2, 3, 7, 8, 10, 11, 12, 20, 21, 33, 41, 81):
            a = rng.integers(0, 256, (side, side + 3, 3), dtype=np.uint8)
            b = rng.integers(0, 256, (side, side + 3, 3), dtype=np.uint8)
            assert ms_ssim(a, a) == pytest.approx(1.0, abs=1e-5), side
            v = ms_ssim(a, b)
            assert 0.0 <= v < 0.9, side


def test_ms_ssim_plan_rule():
    assert ms_ssim_plan(360, 480) == (5, 11)
    assert ms_ssim_plan(161, 1000) == (5, 11)
    assert ms_ssim_plan(160, 1000) == (4, 11)
    assert ms_ssim_plan(80, 100) == (3, 11)
    assert ms_ssim_plan(30, 40) == (2, 11)
    assert ms_ssim_plan(21, 21) == (2, 11)
    assert ms_ssim_plan(20, 20) == (1, 11)
    assert ms_ssim_plan(11, 11) == (1, 11)
    assert ms_ssim_plan(8, 8) == (1, 7)
    assert ms_ssim_plan(10, 50) == (1, 9)
    assert ms_ssim_plan(1, 1) == (1, 1)


def test_small_image_path_is_the_library_algorithm(sample_image):
    """Our fewer-scales loop, run with 5 scales, reproduces pytorch_msssim.ms_ssim."""
    import torch
    from pytorch_msssim import ms_ssim as lib_ms_ssim
    from pytorch_msssim import ssim as lib_ssim

    noisy = _noisy(sample_image, 15)

    def t(img):
        return torch.from_numpy(np.ascontiguousarray(img.astype(np.float32).transpose(2, 0, 1)[None]))

    ours5 = float(_ms_ssim_torch(t(sample_image), t(noisy), 5, 11))
    assert ours5 == pytest.approx(float(lib_ms_ssim(t(sample_image), t(noisy), data_range=255)), abs=1e-4)
    assert ms_ssim(sample_image, noisy) == pytest.approx(ours5, abs=1e-4)
    ours1 = float(_ms_ssim_torch(t(sample_image), t(noisy), 1, 11))  # one scale = SSIM
    assert ours1 == pytest.approx(float(lib_ssim(t(sample_image), t(noisy), data_range=255)), abs=1e-4)


# --------------------------------------------------------------------------- confusion / IoU

def _brute_confusion(pred, target, k, ignore):
    conf = np.zeros((k, k + 1), np.int64)
    for p, t in zip(pred.ravel().tolist(), target.ravel().tolist()):
        if t == ignore:
            continue
        if not 0 <= p < k:
            p = k  # documented: an out-of-range prediction is a miss, credited to no class
        conf[t, p] += 1
    return conf


def test_out_of_range_predictions_are_misses_not_another_class():
    target = np.array([0, 0, 1, 1])
    conf = confusion_matrix(np.array([0, 255, 1, 1]), target, 3)
    iou = iou_per_class(conf)
    assert iou[0] == pytest.approx(0.5) and iou[1] == 1.0   # class 1 gets no false positive
    assert np.isnan(iou[2])                                  # class 2 never occurs: left out of the mean
    assert mean_iou(conf) == pytest.approx(0.75)
    assert pixel_accuracy(conf) == pytest.approx(0.75)
    # a (K, K) matrix (no out-of-range column) is still understood: it simply has no misses to count
    assert mean_iou(conf[:, :3]) == pytest.approx(1.0)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_confusion_matrix_matches_brute_force(data):
    k = data.draw(st.integers(1, 6))
    h = data.draw(st.integers(1, 9))
    w = data.draw(st.integers(1, 9))
    n = h * w
    target = np.array(data.draw(st.lists(st.sampled_from(list(range(k)) + [255]), min_size=n, max_size=n)),
                      np.int64).reshape(h, w)
    pred = np.array(data.draw(st.lists(st.sampled_from(list(range(-2, k + 2)) + [255]), min_size=n, max_size=n)),
                    np.int64).reshape(h, w)
    conf = confusion_matrix(pred, target.astype(np.uint8), k)
    assert conf.dtype == np.int64 and conf.shape == (k, k + 1)
    np.testing.assert_array_equal(conf, _brute_confusion(pred, target, k, 255))
    assert conf.sum() == int((target != 255).sum())


def test_ignore_pixels_skipped_and_bad_predictions_wrong():
    target = np.array([[0, 1, 255], [1, 255, 0]], np.uint8)
    pred = np.array([[0, 1, 1], [1, 0, 255]], np.int64)
    conf = confusion_matrix(pred, target, 2)
    np.testing.assert_array_equal(conf, [[1, 0, 1], [0, 2, 0]])  # pred 255 on a class-0 pixel: a miss
    assert pixel_accuracy(conf) == pytest.approx(3 / 4)
    # ignore_index=None keeps every pixel, so 255 is then an out-of-range target
    with pytest.raises(ValueError, match="ignore_index"):
        confusion_matrix(pred, target, 2, ignore_index=None)


def test_target_outside_classes_raises_unless_ignored(sample_label):
    assert sample_label.max() == 11  # CamVid: 0..10 plus void 11
    seg = np.zeros_like(sample_label)
    with pytest.raises(ValueError, match="11"):
        confusion_matrix(seg, sample_label, 11)
    conf = confusion_matrix(seg, sample_label, 11, ignore_index=11)
    assert conf.sum() == int((sample_label != 11).sum())
    assert conf[:, 0].sum() == conf.sum()


def test_miou_hand_example():
    target = np.array([0, 0, 1, 1])
    pred = np.array([0, 1, 1, 1])
    conf = confusion_matrix(pred, target, 3)
    iou = iou_per_class(conf)
    assert iou[0] == pytest.approx(1 / 2)  # TP 1, FN 1
    assert iou[1] == pytest.approx(2 / 3)  # TP 2, FP 1
    assert math.isnan(iou[2])  # absent from both
    assert mean_iou(conf) == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert pixel_accuracy(conf) == pytest.approx(3 / 4)
    conf_fp = confusion_matrix(np.array([2, 0, 1, 1]), target, 3)
    assert iou_per_class(conf_fp)[2] == 0.0  # predicted but never true -> 0, not nan
    assert math.isnan(mean_iou(np.zeros((3, 3), np.int64)))


def test_accumulator_sums_images():
    rng = np.random.default_rng(5)
    maps = [(rng.integers(0, 4, (7, 9)), rng.integers(0, 4, (7, 9))) for _ in range(3)]
    acc = ConfusionAccumulator(4)
    for p, t in maps:
        acc.update(p, t)
    whole = confusion_matrix(np.concatenate([p for p, _ in maps]), np.concatenate([t for _, t in maps]), 4)
    np.testing.assert_array_equal(acc.matrix, whole)
    assert acc.miou() == pytest.approx(mean_iou(whole))
    assert acc.pixel_accuracy() == pytest.approx(pixel_accuracy(whole))
    np.testing.assert_allclose(acc.iou_per_class(), iou_per_class(whole))
    acc.reset()
    assert acc.matrix.sum() == 0


def test_confusion_matrix_fast_on_large_maps():
    rng = np.random.default_rng(0)
    target = rng.integers(0, 19, (1024, 2048), dtype=np.uint8)
    target[:10] = 255
    pred = rng.integers(0, 20, (1024, 2048), dtype=np.int64)
    t0 = time.perf_counter()
    conf = confusion_matrix(pred, target, 19)
    assert time.perf_counter() - t0 < 2.0
    assert conf.sum() == 1014 * 2048


# --------------------------------------------------------------------------- semantic preservation

class BrightnessSegmenter:
    """Fake segmenter: 3 classes by mean brightness; counts its calls."""

    def __init__(self):
        self.calls = 0

    def __call__(self, image):
        self.calls += 1
        return np.digitize(image.mean(axis=2), [85.0, 170.0]).astype(np.int64)


@pytest.fixture
def gt_and_segmenter(sample_image):
    seg = BrightnessSegmenter()
    gt = seg(sample_image).astype(np.uint8)
    seg.calls = 0
    gt[::7, ::5] = (gt[::7, ::5] + 1) % 3  # the segmenter is not perfect on the original
    gt[:20] = 255  # void
    return gt, seg


def test_preservation_is_one_for_lossless_and_lower_when_degraded(sample_image, gt_and_segmenter):
    gt, seg = gt_and_segmenter
    lossless = SemanticPreservation(seg, 3)
    per = lossless.update(sample_image, sample_image.copy(), gt, key="img")
    assert per["miou_recon_vs_orig"] == 1.0 and per["preservation"] == pytest.approx(1.0)
    assert 0.5 < per["miou_orig_vs_gt"] < 1.0
    s = lossless.summary()
    assert s["preservation"] == pytest.approx(1.0) and s["miou_recon_vs_orig"] == 1.0

    degraded = _noisy(sample_image, 60, seed=2)
    lossy = SemanticPreservation(seg, 3)
    per = lossy.update(sample_image, degraded, gt, key="img")
    assert per["miou_recon_vs_orig"] < 0.9
    assert per["preservation"] < 0.95
    s = lossy.summary()
    assert s["preservation"] == pytest.approx(s["miou_recon_vs_gt"] / s["miou_orig_vs_gt"])
    assert s["preservation"] < 0.95 and s["num_images"] == 1


def test_original_segmented_once_per_key(sample_image, gt_and_segmenter):
    gt, seg = gt_and_segmenter
    small = np.ascontiguousarray(sample_image[:64, :96])
    sp = SemanticPreservation(seg, 3)
    for sigma in (5, 20, 40):
        sp.update(sample_image, _noisy(sample_image, sigma), gt, key="img1")
    assert seg.calls == 1 + 3  # the original once, every reconstruction once
    sp.update(small, small, key="img2")
    assert seg.calls == 1 + 3 + 2
    other_codec = sp.spawn()  # fresh matrices, shared cache
    other_codec.update(sample_image, sample_image, gt, key="img1")
    assert seg.calls == 1 + 3 + 2 + 1
    assert other_codec.summary()["num_images"] == 1 and sp.summary()["num_images"] == 4
    sp.update(small, small)  # no key: no caching
    sp.update(small, small)
    assert seg.calls == 7 + 4
    with pytest.raises(ValueError, match="different image"):
        sp.update(_noisy(sample_image, 5), sample_image, key="img1")


def test_preservation_without_ground_truth_and_empty(sample_image):
    seg = BrightnessSegmenter()
    sp = SemanticPreservation(seg, 3)
    assert sp.summary()["miou_recon_vs_orig"] is None
    per = sp.update(sample_image, _noisy(sample_image, 30))
    assert "preservation" not in per and 0 < per["miou_recon_vs_orig"] < 1
    s = sp.summary()
    assert s["preservation"] is None and s["miou_orig_vs_gt"] is None
    assert s["miou_recon_vs_orig"] == pytest.approx(per["miou_recon_vs_orig"])


# --------------------------------------------------------------------------- LPIPS (offline only)

@pytest.fixture
def lpips_clean(monkeypatch, tmp_path):
    """No network, no real lpips package, an empty torch hub, and a fresh model cache."""
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.delenv(lpips_metric.ENV_BACKBONE, raising=False)
    monkeypatch.delenv(lpips_metric.ENV_WEIGHTS, raising=False)
    monkeypatch.setitem(sys.modules, "lpips", None)  # "not installed"
    lpips_metric.reset_lpips_cache()
    yield
    lpips_metric.reset_lpips_cache()


def test_lpips_absent_returns_none_and_logs_once(lpips_clean, caplog):
    a = np.zeros((40, 40, 3), np.uint8)
    with caplog.at_level(logging.INFO, logger=lpips_metric.__name__):
        assert lpips_distance(a, a) is None
        assert lpips_distance(a, a + 1) is None
        assert lpips_available() is False
    records = [r for r in caplog.records if r.name == lpips_metric.__name__]
    assert len(records) == 1 and records[0].levelno == logging.INFO
    with pytest.raises(ValueError):
        lpips_distance(a, np.zeros((40, 41, 3), np.uint8))


def _fake_lpips_module(torch, constructed: list):
    """A stand-in for the lpips package with the same layer naming (sliceK.N = features[N])."""
    nn = torch.nn

    class Backbone(nn.Module):
        def __init__(self):
            super().__init__()
            self.slice1 = nn.Sequential()
            self.slice1.add_module("0", nn.Conv2d(3, 4, 3))
            self.slice1.add_module("1", nn.ReLU())
            self.slice2 = nn.Sequential()
            self.slice2.add_module("2", nn.Conv2d(4, 4, 3))

    class LPIPS(nn.Module):
        def __init__(self, pretrained=True, net="alex", version="0.1", pnet_rand=False,
                     model_path=None, verbose=True):
            super().__init__()
            assert pnet_rand, "must not ask torchvision for pretrained (downloadable) weights"
            constructed.append(model_path)
            self.net = Backbone()
            self.lin = nn.Conv2d(4, 1, 1, bias=False)
            self.lin.load_state_dict(torch.load(model_path, weights_only=True))

        def forward(self, x, y):
            fx = self.net.slice2(self.net.slice1(x))
            fy = self.net.slice2(self.net.slice1(y))
            return self.lin((fx - fy) ** 2).mean(dim=(1, 2, 3), keepdim=True)

    mod = types.ModuleType("lpips")
    mod.LPIPS = LPIPS
    mod.__file__ = "/nonexistent/lpips/__init__.py"
    return mod


def test_lpips_with_fake_package_and_local_backbone(lpips_clean, monkeypatch, tmp_path, caplog):
    import torch

    constructed: list = []
    monkeypatch.setitem(sys.modules, "lpips", _fake_lpips_module(torch, constructed))
    # lpips present but no backbone on disk: unavailable, and the model is never constructed
    assert lpips_available() is False and constructed == []

    gen = torch.Generator().manual_seed(0)
    backbone = {
        "features.0.weight": torch.randn(4, 3, 3, 3, generator=gen), "features.0.bias": torch.zeros(4),
        "features.2.weight": torch.randn(4, 4, 3, 3, generator=gen), "features.2.bias": torch.zeros(4),
        "classifier.1.weight": torch.zeros(2, 2),  # extra keys of a full torchvision checkpoint are ignored
    }
    torch.save(backbone, tmp_path / "alexnet.pth")
    torch.save({"weight": torch.ones(1, 4, 1, 1)}, tmp_path / "lin.pth")
    monkeypatch.setenv(lpips_metric.ENV_BACKBONE, str(tmp_path / "alexnet.pth"))
    monkeypatch.setenv(lpips_metric.ENV_WEIGHTS, str(tmp_path / "lin.pth"))
    lpips_metric.reset_lpips_cache()

    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
    assert lpips_distance(a, a) == 0.0
    d_small, d_big = lpips_distance(a, _noisy(a, 5)), lpips_distance(a, _noisy(a, 50))
    assert 0.0 < d_small < d_big
    assert lpips_available() and constructed == [str(tmp_path / "lin.pth")]  # built once, cached
    model = lpips_metric._get_model()
    assert torch.equal(model.net.slice2[0].weight, backbone["features.2.weight"])
    assert lpips_distance(a[:20], a[:20]) is None  # below MIN_SIDE

    # a checkpoint with the wrong shapes is reported (WARNING) and gives None, never an exception
    torch.save({k: v[:2] for k, v in backbone.items()}, tmp_path / "alexnet.pth")
    lpips_metric.reset_lpips_cache()
    with caplog.at_level(logging.INFO, logger=lpips_metric.__name__):
        assert lpips_distance(a, a) is None
    assert any(r.levelno == logging.WARNING and "shape" in r.getMessage() for r in caplog.records)


# --------------------------------------------------------------------------- package

def test_import_does_not_import_torch():
    code = ("import sys, semcomp_core.metrics as m; "
            "assert 'torch' not in sys.modules, 'torch imported'; "
            "assert 'pytorch_msssim' not in sys.modules; print(len(m.__all__))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip()) >= 11


def test_bits_per_pixel_reexported():
    assert bits_per_pixel(1000, 100, 80) == pytest.approx(1.0)


def test_texture_is_a_no_reference_detail_figure(sample_image):
    from semcomp_core.metrics import texture

    flat = np.full((40, 50, 3), 77, np.uint8)
    assert texture(flat) == 0.0
    assert texture(np.zeros((2, 2, 3), np.uint8)) == 0.0
    checker = ((np.indices((8, 8)).sum(0) % 2) * 255).astype(np.uint8)
    # hand-computed: every interior pixel's Laplacian is +-4*255
    assert texture(checker) == pytest.approx(4 * 255)
    import cv2

    blurred = cv2.GaussianBlur(sample_image, (9, 9), 3)
    assert texture(sample_image) > 2 * texture(blurred) > 0
    assert texture(sample_image[..., 0]) > 0            # grey pictures work too
