"""Behaviour of semcomp_core.metrics that mutation testing found unpinned (docs/testing/mutation.md).

Each test states a documented property: the confusion-matrix shape and dtype, nan rules without
warnings, the dataset-level accumulator, the segmentation cache, the recon-vs-orig rule for
out-of-range original labels, preservation's None rule, LPIPS's offline file lookup, and the
small-image MS-SSIM path matching the library's SSIM.
"""
from __future__ import annotations

import logging
import os
import sys
import types
import warnings

import numpy as np
import pytest

from semcomp_core.metrics import (
    ConfusionAccumulator,
    SegmentationCache,
    SemanticPreservation,
    iou_per_class,
    lpips_available,
    lpips_distance,
    mean_iou,
    pixel_accuracy,
)
from semcomp_core.metrics import lpips_metric
from semcomp_core.metrics.image_quality import _ms_ssim_torch


# --------------------------------------------------------------------------- IoU / accuracy

def test_confusion_matrix_shape_is_checked_with_a_clear_error():
    for bad in (np.zeros((3, 5)), np.zeros((3, 2)), np.zeros((2, 3, 4)), np.zeros(4)):
        with pytest.raises(ValueError, match=r"must be \(K, K \+ 1\) or \(K, K\)"):
            iou_per_class(bad)
        with pytest.raises(ValueError, match=r"must be \(K, K \+ 1\)"):
            pixel_accuracy(bad)


def test_absent_classes_are_nan_without_runtime_warnings():
    conf = np.zeros((3, 4), np.int64)
    conf[0, 0] = 5
    conf[0, 3] = 5  # out-of-range predictions: misses of class 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the benchmark's logs stay clean
        iou = iou_per_class(conf)
        assert iou[0] == pytest.approx(0.5) and np.isnan(iou[1]) and np.isnan(iou[2])
        assert mean_iou(conf) == pytest.approx(0.5)
        assert np.isnan(mean_iou(np.zeros((3, 4))))
        assert np.isnan(pixel_accuracy(np.zeros((3, 4))))


def test_pixel_accuracy_of_a_single_pixel():
    conf = np.zeros((2, 3), np.int64)
    conf[1, 1] = 1
    assert pixel_accuracy(conf) == 1.0
    conf[1, 1], conf[1, 2] = 0, 1  # one out-of-range prediction: wrong
    assert pixel_accuracy(conf) == 0.0


# --------------------------------------------------------------------------- accumulator

def test_accumulator_matrix_is_int64_counts_and_reset_zeroes_it():
    acc = ConfusionAccumulator(3)
    assert acc.matrix.dtype == np.int64 and acc.matrix.shape == (3, 4) and acc.count == 0
    t = np.array([[0, 1], [2, 2]])
    acc.update(t, t)
    acc.update(t, t)
    assert acc.count == 2
    assert acc.matrix.dtype == np.int64 and acc.matrix.sum() == 8
    acc.reset()
    assert acc.count == 0 and acc.matrix.sum() == 0 and acc.matrix.dtype == np.int64
    assert np.isnan(acc.miou())


def test_accumulator_uses_its_own_ignore_index():
    acc = ConfusionAccumulator(11, ignore_index=11)  # CamVid: void is 11
    target = np.array([[0, 11], [11, 3]])
    acc.update(target, target)
    assert acc.matrix.sum() == 2 and acc.miou() == 1.0
    keep_all = ConfusionAccumulator(2, ignore_index=None)
    keep_all.update(np.array([0, 1]), np.array([1, 1]))
    assert keep_all.matrix.sum() == 2 and keep_all.pixel_accuracy() == 0.5


# --------------------------------------------------------------------------- segmentation cache

def _seg(image: np.ndarray) -> np.ndarray:
    return (image[..., 0] // 64).astype(np.int64)  # labels 0..3


def _img(seed: int, shape=(6, 8)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)


def test_cache_counts_calls_evicts_least_recently_used_and_returns_read_only_uint8():
    cache = SegmentationCache(_seg, max_entries=2)
    assert cache.calls == 0 and len(cache) == 0
    a, b, c = _img(1), _img(2), _img(3)
    la = cache.get(a, "a")
    assert cache.calls == 1 and la.dtype == np.uint8 and not la.flags.writeable
    np.testing.assert_array_equal(la, _seg(a))
    cache.get(b, "b")
    cache.get(a, "a")  # hit: a becomes the most recently used
    assert cache.calls == 2
    cache.get(c, "c")  # evicts b, the least recently used
    assert len(cache) == 2 and cache.calls == 3
    cache.get(a, "a")
    assert cache.calls == 3
    cache.get(b, "b")
    assert cache.calls == 4
    cache.segment(a)  # uncached
    cache.get(a)  # key None: uncached
    assert cache.calls == 6
    cache.clear()
    assert len(cache) == 0


def test_cache_unbounded_and_wide_labels():
    cache = SegmentationCache(lambda im: np.full(im.shape[:2], 300, np.int64), max_entries=None)
    for i in range(5):
        out = cache.get(_img(i), i)
    assert len(cache) == 5
    assert out.dtype == np.int64 and int(out.max()) == 300 and not out.flags.writeable
    labels_0 = SegmentationCache(lambda im: np.zeros(im.shape[:2], np.int64)).get(_img(0), "k")
    assert labels_0.dtype == np.uint8 and not labels_0.any()  # label 0 and 255 still fit in uint8
    labels_255 = SegmentationCache(lambda im: np.full(im.shape[:2], 255, np.int64)).get(_img(0), "k")
    assert labels_255.dtype == np.uint8 and int(labels_255.min()) == 255


def test_cache_rejects_wrong_segmenter_output_and_stale_keys():
    cache = SegmentationCache(lambda im: np.zeros((2, 2), np.int64))
    with pytest.raises(ValueError, match="segmenter returned shape"):
        cache.segment(_img(0))
    with pytest.raises(ValueError, match="segmenter output must be an integer label map"):
        SegmentationCache(lambda im: np.zeros(im.shape[:2], np.float32)).segment(_img(0))
    cache = SegmentationCache(_seg)
    cache.get(_img(0), "k")
    with pytest.raises(ValueError, match="cached for a different image"):
        cache.get(_img(1), "k")


# --------------------------------------------------------------------------- semantic preservation

def test_spawn_shares_cache_classes_and_ignore_index():
    sp = SemanticPreservation(_seg, num_classes=4, ignore_index=3)
    child = sp.spawn()
    assert child.cache is sp.cache and child.num_classes == 4 and child.ignore_index == 3
    a = _img(0)
    child.update(a, a, key="a")
    sp.update(a, a, key="a")
    assert sp.cache.calls == 3  # the original once, each reconstruction once
    for acc in (child.orig_vs_gt, child.recon_vs_gt, child.recon_vs_orig):
        assert acc.num_classes == 4 and acc.ignore_index == 3


def test_recon_vs_orig_skips_pixels_whose_original_label_is_out_of_range():
    """seg(original) is the target: its ignore_index and out-of-range labels are not counted."""
    orig = np.zeros((2, 4, 3), np.uint8)
    orig[0, :, 0] = [0, 70, 140, 250]  # labels 0, 1, 2, 3; class 3 is outside K=3
    recon = orig.copy()
    recon[0, 3, 0] = 0  # the out-of-range pixel changes: must not count
    for ignore in (255, None):
        sp = SemanticPreservation(_seg, num_classes=3, ignore_index=ignore)
        out = sp.update(orig, recon)
        assert out["pixel_accuracy_recon_vs_orig"] == 1.0 and out["miou_recon_vs_orig"] == 1.0
        assert sp.recon_vs_orig.matrix.sum() == 7
        sp.update(orig, recon)
        assert sp.recon_vs_orig.matrix.sum() == 14  # accumulated, not replaced
        s = sp.summary()
        assert s["num_images"] == 2 and s["pixel_accuracy_recon_vs_orig"] == 1.0
    # label 0 is a class like any other (not "invalid")
    sp = SemanticPreservation(lambda im: np.zeros(im.shape[:2], np.int64), num_classes=3)
    assert sp.update(orig, recon)["pixel_accuracy_recon_vs_orig"] == 1.0
    assert sp.recon_vs_orig.matrix.sum() == 8


def test_shape_mismatches_raise_clear_errors():
    sp = SemanticPreservation(_seg, num_classes=4)
    with pytest.raises(ValueError, match="shapes differ"):
        sp.update(_img(0), _img(0, (6, 9)))
    with pytest.raises(ValueError, match="ground truth shape"):
        sp.update(_img(0), _img(0), ground_truth=np.zeros((3, 3), np.int64))


def test_preservation_numbers_and_none_rule():
    a = _img(5)
    gt = _seg(a)
    sp = SemanticPreservation(_seg, num_classes=4)
    out = sp.update(a, a, ground_truth=gt)
    assert out["miou_orig_vs_gt"] == 1.0 and out["miou_recon_vs_gt"] == 1.0 and out["preservation"] == 1.0
    s = sp.summary()
    assert s["num_images_with_gt"] == 1 and s["preservation"] == 1.0 and s["miou_recon_vs_gt"] == 1.0
    # the original's segmentation gets nothing right: miou_orig_vs_gt == 0 -> preservation None
    wrong = SemanticPreservation(lambda im: np.full(im.shape[:2], 3, np.int64), num_classes=4)
    gt0 = np.zeros(a.shape[:2], np.int64)
    out = wrong.update(a, a, ground_truth=gt0)
    assert out["miou_orig_vs_gt"] == 0.0 and out["preservation"] is None
    assert wrong.summary()["preservation"] is None
    # no scored pixel at all (all ground truth ignored): nan mIoUs, preservation None
    empty = SemanticPreservation(_seg, num_classes=4)
    out = empty.update(a, a, ground_truth=np.full(a.shape[:2], 255))
    assert np.isnan(out["miou_orig_vs_gt"]) and out["preservation"] is None
    # without any ground truth the summary has no ground-truth numbers
    no_gt = SemanticPreservation(_seg, num_classes=4)
    no_gt.update(a, a)
    s = no_gt.summary()
    assert s["num_images_with_gt"] == 0 and s["miou_recon_vs_gt"] is None and s["preservation"] is None


# --------------------------------------------------------------------------- LPIPS file lookup

@pytest.fixture
def lpips_env(monkeypatch, tmp_path):
    """Fresh model cache, no lpips env vars, torch hub in tmp_path."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.delenv(lpips_metric.ENV_BACKBONE, raising=False)
    monkeypatch.delenv(lpips_metric.ENV_WEIGHTS, raising=False)
    lpips_metric.reset_lpips_cache()
    yield tmp_path
    lpips_metric.reset_lpips_cache()


def _fake_lpips(torch, tmp_path, calls: list, accept_verbose: bool = True):
    """A stand-in lpips package (layer naming as lpips: sliceK.N = alexnet().features[N]) installed in
    tmp_path/lpips_pkg, with its linear weights at the packaged path weights/v0.1/alex.pth."""
    nn = torch.nn
    pkg = tmp_path / "lpips_pkg"
    (pkg / "weights" / "v0.1").mkdir(parents=True)
    torch.save({"weight": torch.ones(1, 4, 1, 1)}, pkg / "weights" / "v0.1" / "alex.pth")

    class Backbone(nn.Module):
        def __init__(self):
            super().__init__()
            self.slice1 = nn.Sequential()
            self.slice1.add_module("0", nn.Conv2d(3, 4, 3))

    class LPIPS(nn.Module):
        def __init__(self, **kwargs):
            if not accept_verbose and "verbose" in kwargs:
                raise TypeError("unexpected keyword argument 'verbose'")
            super().__init__()
            calls.append(kwargs)
            self.net = Backbone()
            self.lin = nn.Conv2d(4, 1, 1, bias=False)
            self.lin.load_state_dict(torch.load(kwargs["model_path"], weights_only=True))
            self.seen = []

        def forward(self, x, y):
            self.seen.append((float(x.min()), float(x.max())))
            d = self.lin((self.net.slice1(x) - self.net.slice1(y)) ** 2)
            return d.mean(dim=(1, 2, 3), keepdim=True)

    mod = types.ModuleType("lpips")
    mod.LPIPS = LPIPS
    mod.__file__ = str(pkg / "__init__.py")
    return mod


def _backbone(torch, bare: bool = False, out_channels: int = 4):
    w = torch.randn(out_channels, 3, 3, 3, generator=torch.Generator().manual_seed(0))
    prefix = "" if bare else "features."
    return {prefix + "0.weight": w, prefix + "0.bias": torch.zeros(out_channels)}


def test_lpips_default_files_and_constructor_arguments(lpips_env, monkeypatch):
    import torch

    calls: list = []
    monkeypatch.setitem(sys.modules, "lpips", _fake_lpips(torch, lpips_env, calls))
    ckpt = os.path.join(torch.hub.get_dir(), "checkpoints")
    os.makedirs(ckpt)
    torch.save(_backbone(torch), os.path.join(ckpt, lpips_metric.BACKBONE_FILE))
    assert lpips_available()
    assert calls == [dict(verbose=False, pretrained=True, net="alex", version="0.1", pnet_rand=True,
                          model_path=str(lpips_env / "lpips_pkg" / "weights" / "v0.1" / "alex.pth"))]
    model = lpips_metric._get_model()
    assert not any(p.requires_grad for p in model.parameters()) and not model.training
    assert torch.equal(model.net.slice1[0].weight, _backbone(torch)["features.0.weight"])

    black, white = np.zeros((32, 40, 3), np.uint8), np.full((32, 40, 3), 255, np.uint8)
    assert lpips_distance(black, white) > 0  # a 32-pixel side is enough (MIN_SIDE)
    assert model.seen[-1] == (-1.0, -1.0)  # lpips takes images scaled to [-1, 1]
    lpips_distance(white, black)
    assert model.seen[-1] == (1.0, 1.0)
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        lpips_distance(black[..., 0], black[..., 0])
    with pytest.raises(ValueError, match="same shape"):
        lpips_distance(black, white[:, :39])


def test_lpips_any_alexnet_checkpoint_first_in_name_order(lpips_env, monkeypatch):
    import torch

    calls: list = []
    monkeypatch.setitem(sys.modules, "lpips", _fake_lpips(torch, lpips_env, calls, accept_verbose=False))
    ckpt = os.path.join(torch.hub.get_dir(), "checkpoints")
    os.makedirs(ckpt)
    torch.save({"state_dict": _backbone(torch, bare=True)}, os.path.join(ckpt, "alexnet-a.pth"))
    torch.save(_backbone(torch, out_channels=2), os.path.join(ckpt, "alexnet-b.pth"))  # unusable
    assert lpips_available()  # alexnet-a.pth (a bare features dict inside "state_dict"), old lpips API
    assert len(calls) == 1 and "verbose" not in calls[0]


def test_lpips_unavailable_reasons_are_logged(lpips_env, monkeypatch, caplog):
    import torch

    calls: list = []
    monkeypatch.setitem(sys.modules, "lpips", _fake_lpips(torch, lpips_env, calls))
    ckpt = os.path.join(torch.hub.get_dir(), "checkpoints")

    def reason() -> str:
        lpips_metric.reset_lpips_cache()
        caplog.clear()
        with caplog.at_level(logging.INFO, logger=lpips_metric.__name__):
            assert lpips_available() is False
        return " ".join(r.getMessage() for r in caplog.records)

    msg = reason()
    assert f"no AlexNet checkpoint in {ckpt}" in msg and lpips_metric.ENV_BACKBONE in msg
    monkeypatch.setenv(lpips_metric.ENV_BACKBONE, str(lpips_env / "missing.pth"))
    assert f"{lpips_metric.ENV_BACKBONE}={lpips_env / 'missing.pth'} is not a file" in reason()
    torch.save(_backbone(torch), lpips_env / "alexnet.pth")
    monkeypatch.setenv(lpips_metric.ENV_BACKBONE, str(lpips_env / "alexnet.pth"))
    monkeypatch.setenv(lpips_metric.ENV_WEIGHTS, str(lpips_env / "lin-missing.pth"))
    assert f"LPIPS linear weights not found at {lpips_env / 'lin-missing.pth'}" in reason()
    monkeypatch.delenv(lpips_metric.ENV_WEIGHTS)
    torch.save({"1.weight": torch.zeros(1)}, lpips_env / "alexnet.pth")
    assert "lacks '0.weight'" in reason()
    monkeypatch.setitem(sys.modules, "lpips", None)
    assert "the 'lpips' package is not importable" in reason()
    assert len(calls) == 1  # only the broken backbone got as far as building a model


# --------------------------------------------------------------------------- MS-SSIM

def test_single_scale_path_matches_library_ssim_on_dark_images():
    """Dark, low-contrast images make the stabilising constants C1 = (0.01 * 255)**2 and
    C2 = (0.03 * 255)**2 dominate: the small-image path must still equal pytorch_msssim.ssim."""
    import torch
    from pytorch_msssim import ssim as lib_ssim

    rng = np.random.default_rng(0)
    a = rng.integers(0, 4, (1, 3, 24, 24)).astype(np.float32)
    b = np.clip(a + rng.integers(-1, 2, a.shape), 0, 255).astype(np.float32)
    x, y = torch.from_numpy(a), torch.from_numpy(b)
    ours = float(_ms_ssim_torch(x, y, 1, 11))
    assert ours == pytest.approx(float(lib_ssim(x, y, data_range=255)), abs=1e-6)
    ours2 = float(_ms_ssim_torch(x, y, 2, 7))
    assert 0.0 < ours2 < 1.0


# --------------------------------------------------------------------------- argument checks

def test_confusion_matrix_target_range_and_argument_errors():
    from semcomp_core.metrics import confusion_matrix

    with pytest.raises(ValueError, match=r"target contains label 3 outside 0\.\.2 \(ignore_index=255\)"):
        confusion_matrix(np.zeros(2, np.int64), np.array([0, 3]), 3)
    with pytest.raises(ValueError, match=r"target contains label -1 outside 0\.\.2"):
        confusion_matrix(np.zeros(2, np.int64), np.array([-1, 5]), 3, ignore_index=None)
    with pytest.raises(ValueError, match="^pred must be an integer label map"):
        confusion_matrix(np.zeros(2, np.float32), np.zeros(2, np.int64), 3)
    with pytest.raises(ValueError, match="^target must be an integer label map"):
        confusion_matrix(np.zeros(2, np.int64), np.zeros(2, np.float32), 3)
    with pytest.raises(ValueError, match="pred and target must have the same shape"):
        confusion_matrix(np.zeros(2, np.int64), np.zeros(3, np.int64), 3)
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match="num_classes must be a positive integer"):
            ConfusionAccumulator(bad)


def test_fresh_summary_reports_nothing():
    s = SemanticPreservation(_seg, num_classes=4).summary()
    assert s == {"num_images": 0, "num_images_with_gt": 0, "miou_orig_vs_gt": None, "miou_recon_vs_gt": None,
                 "miou_recon_vs_orig": None, "pixel_accuracy_recon_vs_orig": None, "preservation": None}


def test_recon_vs_orig_skips_an_in_range_ignore_index():
    orig = np.zeros((1, 4, 3), np.uint8)
    orig[0, :, 0] = [0, 70, 140, 200]  # labels 0..3, all < K = 4; 3 is the ignore index
    recon = orig.copy()
    recon[0, 3, 0] = 0
    sp = SemanticPreservation(_seg, num_classes=4, ignore_index=3)
    assert sp.update(orig, recon)["pixel_accuracy_recon_vs_orig"] == 1.0
    assert sp.recon_vs_orig.matrix.sum() == 3


def test_cache_default_size_and_labels_above_255():
    cache = SegmentationCache(lambda im: np.full(im.shape[:2], int(im[0, 0, 0]) + 200, np.int64))
    assert cache.max_entries == 128
    img = np.zeros((1, 1, 3), np.uint8)
    for i in range(129):
        img = np.full((1, 1, 3), i % 256, np.uint8)
        cache.get(img, i)
    assert len(cache) == 128
    big = cache.get(np.full((1, 1, 3), 56, np.uint8), "256")
    assert int(big[0, 0]) == 256  # not wrapped into uint8


def test_pixel_metrics_accept_grayscale_and_single_pixels_and_reject_other_ranks():
    from semcomp_core.metrics import ms_ssim, psnr

    g = np.arange(64, dtype=np.uint8).reshape(8, 8)
    assert psnr(g, g + 1) == pytest.approx(10 * np.log10(255.0**2))
    assert 0.0 < ms_ssim(g, g // 2) < 1.0 and ms_ssim(g, g) == pytest.approx(1.0)
    one = np.zeros((1, 1, 3), np.uint8)
    assert psnr(one, one + 255) == pytest.approx(0.0) and ms_ssim(one, one) == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"non-empty \(H, W\) or \(H, W, C\) arrays"):
        psnr(np.zeros((2, 2, 2, 2)), np.zeros((2, 2, 2, 2)))
    with pytest.raises(ValueError, match=r"non-empty \(H, W\) or \(H, W, C\) arrays"):
        psnr(np.zeros((0, 2)), np.zeros((0, 2)))
    with pytest.raises(ValueError, match="images must have the same shape"):
        ms_ssim(g, g[:7])
