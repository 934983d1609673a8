"""Selective coding in the semantic codec (issue 9): ROI layer from classes / uncertainty / user masks,
the byte budget and its split, the classic fallback, streams, bad input, the generator's optional layers."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from semcomp_core.bench.runner import roi_split
from semcomp_core.bitstream import CodecId, LayerId, pack, unpack
from semcomp_core.codecs import build
from semcomp_core.errors import BitstreamError, UsageError
from semcomp_core.imageio import load_image
from semcomp_core.layers.roi import FULL_FRAME, RoiData, RoiLayer, RoiMaskRule
from semcomp_core.metrics import psnr
from semcomp_core.paths import data_path

SAMPLES = sorted((data_path("samples") / "images").glob("*.png"))


@pytest.fixture(scope="module")
def frame():
    return load_image(SAMPLES[0])


def _layers(data: bytes) -> dict[int, bytes]:
    return {int(lid): payload for lid, payload in unpack(data).layers}


def test_default_selective_coding_stays_within_the_auto_budget(frame):
    """Default: pixels only where the segmenter cannot read the frame (roi=uncertain), within the auto
    budget of 0.009 bits per pixel (194 bytes at 480x360, 590 at 1024x512); an ROI is sent exactly when
    uncertain regions were found and fitted."""
    import cv2

    codec = build("semantic-gan")
    assert codec.config["roi"] == "uncertain" and codec.level.name == "s"
    for image, budget in ((frame, 194), (cv2.resize(frame[60:300], (1024, 512), interpolation=cv2.INTER_CUBIC), 590)):
        data = codec.encode(image)
        rep = codec.last_roi
        assert rep.budget == budget and len(data) <= budget
        sent = LayerId.ROI in _layers(data)
        assert sent == (rep.sources["uncertain"] > 0 and not rep.dropped and not rep.fallback)
        if not sent:
            assert data == build("semantic-gan:roi=none").encode(image)


def test_class_roi_is_a_rule_within_budget_and_sharpens_the_region(frame):
    codec = build("semantic-gan:roi=classes:roi_classes=Car+Pedestrian+Bicyclist:budget=900")
    data = codec.encode(frame)
    assert len(data) <= 900
    roi = RoiLayer().decode(_layers(data)[LayerId.ROI], frame=frame.shape[:2])
    assert isinstance(roi.mask, RoiMaskRule)
    assert set(roi.mask.class_ids()) == {8, 9, 10}
    rep = codec.last_roi
    assert rep.roi_bytes == len(_layers(data)[LayerId.ROI]) and rep.budget == 900
    assert rep.semantic_bytes + rep.roi_bytes <= 900 and not rep.fallback and not rep.dropped
    with_roi = codec.decode(data)
    without = build("semantic-gan").decode(build("semantic-gan").encode(frame))
    from semcomp_core.roi import masks, selective

    labels, factor, thumb, seed = codec.read_layers(unpack(data))
    inside = masks.cells_to_pixels(selective.roi_cells(roi, labels), factor, *frame.shape[:2])
    assert 0.01 < inside.mean() < 0.5
    # inside the ROI the frame is far closer to the original than the generated one
    assert psnr(frame[inside], with_roi[inside]) > psnr(frame[inside], without[inside]) + 4.0
    # outside the coded box the frame is the generator's: conditioned on the ROI (the shipped decoder has
    # the roi optional layer), so not the unconditioned rendering, but close to it
    assert "roi" in codec.generator.config.get("optional_layers", [])
    top, left, h, w = roi.box
    outside = np.ones(frame.shape[:2], bool)
    outside[top:top + h, left:left + w] = False
    plain = codec.render(labels, factor, thumb, *frame.shape[:2], seed)
    diff = np.abs(with_roi[outside].astype(int) - plain[outside].astype(int))
    assert 0 < diff.mean() < 8


def test_user_boxes_are_an_explicit_mask_covering_the_box(frame):
    codec = build("semantic-gan:level=m:roi=user:roi_boxes=96,96,192,200:budget=900")
    data = codec.encode(frame)
    roi = RoiLayer().decode(_layers(data)[LayerId.ROI], frame=frame.shape[:2])
    assert isinstance(roi.mask, np.ndarray)
    f = 8
    assert roi.mask[96 // f:200 // f, 96 // f:192 // f].all()
    assert roi.mask.sum() == (200 // f - 96 // f) * (192 // f - 96 // f)
    out = codec.decode(data)
    assert psnr(frame[100:196, 100:188], out[100:196, 100:188]) > 24


def test_tight_budget_drops_the_roi_and_counts_it(frame):
    codec = build("semantic-gan:roi=user:roi_boxes=0,0,480,360:fallback=1:budget=240")
    data = codec.encode(frame)
    assert LayerId.ROI not in _layers(data) and codec.last_roi.dropped and codec.selective.dropped == 1


def test_fallback_codes_the_whole_frame_classically_at_the_budget(frame):
    codec = build("semantic-gan:roi=uncertain:roi_conf=1:fallback=0.5:budget=800")
    data = codec.encode(frame)
    layers = unpack(data).layers
    assert [lid for lid, _ in layers] == [LayerId.ROI]
    assert layers[0][1][0] & FULL_FRAME
    assert len(data) <= 800 and codec.last_roi.fallback
    assert roi_split(data) == (len(layers[0][1]), 1)
    out = build("semantic-gan").decode(data)          # any receiver decodes it, no model needed
    bpg = build("bpg:q=51")
    ref = bpg.decode(bpg.encode(frame))
    # never worse than the classic codec: at ~its bytes, about its quality
    assert psnr(frame, out) > psnr(frame, ref) - 1.5


def test_budget_below_the_semantic_layers_is_a_usage_error(frame):
    with pytest.raises(UsageError, match="smaller than the semantic layers"):
        build("semantic-gan:roi=classes:budget=50").encode(frame)


@pytest.mark.parametrize("spec,match", [
    ("semantic-gan:roi=faces", "unknown source"),
    ("semantic-gan:roi=user", "roi_mask"),
    ("semantic-gan:roi_boxes=1,1,5,5", "does not include 'user'"),
])
def test_bad_roi_settings(spec, match):
    with pytest.raises(UsageError, match=match):
        build(spec)


def test_unknown_roi_class_and_bad_user_masks(frame, tmp_path):
    with pytest.raises(UsageError, match="unknown class 'Horse'"):
        build("semantic-gan:roi=classes:roi_classes=Car+Horse").encode(frame)
    from PIL import Image

    Image.fromarray(np.zeros((10, 20), np.uint8)).save(tmp_path / "m.png")
    with pytest.raises(UsageError, match="20x10, the frame is 480x360"):
        build(f"semantic-gan:roi=user:roi_mask={tmp_path / 'm.png'}").encode(frame)
    with pytest.raises(UsageError, match="outside"):
        build("semantic-gan:roi=user:roi_boxes=0,0,999,10").encode(frame)


def test_empty_user_mask_sends_no_roi(frame, tmp_path):
    np.save(tmp_path / "m.npy", np.zeros(frame.shape[:2], np.uint8))
    codec = build(f"semantic-gan:roi=user:roi_mask={tmp_path / 'm.npy'}:budget=900")
    assert LayerId.ROI not in _layers(codec.encode(frame)) and codec.last_roi.cells == 0


def test_decoder_is_strict_about_roi_layers(frame):
    codec = build("semantic-gan:roi=classes:roi_classes=Car:budget=900")
    c = unpack(codec.encode(frame))
    roi = dict(c.layers)[LayerId.ROI]
    twice = pack(c.codec_id, c.height, c.width, list(c.layers) + [(LayerId.ROI, roi)])
    with pytest.raises(BitstreamError, match="more than one ROI"):
        codec.decode(twice)
    alone = pack(c.codec_id, c.height, c.width, [(LayerId.ROI, roi)])       # a masked ROI without its map
    with pytest.raises(BitstreamError, match="missing layer"):
        codec.decode(alone)
    fb = build("semantic-gan:roi=uncertain:roi_conf=1:fallback=0.5:budget=800")
    full = unpack(fb.encode(frame)).layers[0][1]
    mixed = pack(c.codec_id, c.height, c.width, [lid_pl for lid_pl in c.layers if lid_pl[0] != LayerId.ROI]
                 + [(LayerId.ROI, full)])
    with pytest.raises(BitstreamError, match="only the full-frame ROI layer may appear"):
        codec.decode(mixed)
    extra = pack(c.codec_id, c.height, c.width, [(LayerId.ROI, full), (LayerId.DECODER_PARAMS, b"\0\0\0")])
    with pytest.raises(BitstreamError, match="only the full-frame ROI"):
        codec.decode(extra)


def test_inter_frame_with_an_unchanged_map_keeps_its_roi():
    """An inter frame whose map did not change carries no seg-map layer, only frame info (and maybe a
    colour delta) and its ROI: the ROI is placed on the reference's map."""
    image = load_image(SAMPLES[0])
    codec = build("semantic-gan:gop=10:roi=user:roi_boxes=100,100,200,200:budget=700")
    enc, dec = codec.open_encoder(15), codec.open_decoder()
    dec.decode(enc.encode(image, 0))
    data = enc.encode(image, 66_666_666)                  # the same frame again
    ids = [lid for lid, _ in unpack(data).layers]
    assert LayerId.SEGMAP_INTER not in ids and LayerId.ROI in ids and not enc.last.key
    out = dec.decode(data)
    assert psnr(image[104:196, 104:196], out[104:196, 104:196]) > 24


def test_streams_carry_roi_in_inter_frames_and_restart_after_a_fallback(frame):
    frames = [load_image(p) for p in SAMPLES[:3]]
    codec = build("semantic-gan:gop=10:roi=classes:roi_classes=Car:budget=900")
    enc, dec = codec.open_encoder(15), codec.open_decoder()
    keys = []
    for i, im in enumerate(frames):
        data = enc.encode(im, i * 66_666_666)
        keys.append(enc.last.key)
        assert len(data) <= 900
        out = dec.decode(data)
        assert out.shape == im.shape
        assert enc.last.details["roi"]["roi_bytes"] == roi_split(data)[0] > 0
    assert keys[0] and not keys[1]
    fb = build("semantic-gan:gop=10:roi=uncertain:roi_conf=1:fallback=0.5:budget=800")
    enc, dec = fb.open_encoder(15), fb.open_decoder()
    for i, im in enumerate(frames[:2]):
        data = enc.encode(im, i * 66_666_666)
        assert enc.last.key and roi_split(data)[1] == 1       # every fallback frame stands alone
        assert dec.decode(data).shape == im.shape


def test_cli_encode_roi_options_and_errors(frame, tmp_path):
    exe = [sys.executable, "-m", "semcomp_core"]
    out = tmp_path / "a.smc"
    r = subprocess.run(exe + ["encode", str(SAMPLES[0]), "-o", str(out), "--codec", "semantic-gan:level=m:budget=900",
                              "--roi-boxes", "96,96,192,200"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)["roi"]
    assert rep["sources"]["user"] == 156 and rep["roi_bytes"] == roi_split(out.read_bytes())[0] > 0
    r = subprocess.run(exe + ["encode", str(SAMPLES[0]), "-o", str(out), "--codec", "bpg", "--roi-boxes", "1,1,5,5"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "region-of-interest" in r.stderr
    r = subprocess.run(exe + ["encode", str(SAMPLES[0]), "-o", str(out), "--roi-mask", str(tmp_path / "none.png")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "roi_mask" in r.stderr


# -- the generator's optional layers -------------------------------------------------------------

def test_optional_layer_generator_renders_as_before_until_trained():
    import torch

    from semcomp_core.models.generator import SPADEGenerator, with_optional_layers

    torch.manual_seed(0)
    g = SPADEGenerator.tiny().eval()
    g2 = with_optional_layers(g, ["roi"]).eval()
    assert g2.config["optional_layers"] == ["roi"] and g2.layer_channels == 4
    oh = torch.zeros(1, 11, 32, 48)
    oh[:, 3] = 1
    col = torch.rand(1, 3, 32, 48) * 2 - 1
    n = torch.randn(1, 2, 4, 6)
    layers = torch.rand(1, 4, 32, 48)
    with torch.no_grad():
        assert torch.equal(g(oh, col, n), g2(oh, col, n))
        assert torch.equal(g(oh, col, n), g2(oh, col, n, layers))      # new channels start at zero
        for p in g2.parameters():
            p.add_(0.01)
        assert not torch.equal(g2(oh, col, n, layers), g2(oh, col, n))  # ... and are wired in
    with pytest.raises(ValueError, match="unknown optional layer"):
        SPADEGenerator.tiny(optional_layers=["clip"]).layer_channels  # noqa: B018


def test_optional_layer_input_places_values_and_presence():
    from semcomp_core.codecs.semantic import optional_layer_input

    pix = np.full((10, 12, 3), 255, np.uint8)
    pres = np.zeros((10, 12), np.float32)
    pres[2:5, 3:6] = 1.0
    x = optional_layer_input({"optional_layers": ["roi"]}, 16, 16, {"roi": (pix, pres)})
    assert tuple(x.shape) == (1, 4, 16, 16)
    assert float(x[0, 3].sum()) == 9.0
    assert float(x[0, 0, 2, 3]) == 1.0 and float(x[0, 0, 0, 0]) == 0.0   # values only where present
    assert tuple(optional_layer_input({}, 16, 16, {}).shape) == (1, 1, 16, 16)
    assert float(optional_layer_input({"optional_layers": ["roi"]}, 8, 8, {}).abs().sum()) == 0.0


def test_condition_sampler_layer_dropout():
    from semcomp_core.codecs.semantic_levels import LEVELS
    from semcomp_core.training.gan_trainer import ConditionSampler

    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (2, 64, 96, 3), dtype=np.uint8)
    labels = rng.integers(0, 11, (2, 64, 96)).astype(np.uint8)
    s = ConditionSampler(images, labels, 11, LEVELS[:2], seed=1, optional_layers=["roi"], layer_dropout=0.5)
    *_, layers = s.sample(16, 32)
    assert tuple(layers.shape) == (16, 4, 32, 32)
    presence = layers[:, 3]
    assert float(presence.min()) >= 0.0 and float(presence.max()) <= 1.0
    present = (presence.flatten(1).amax(1) > 0).sum().item()
    assert 0 < present < 16
    none = ConditionSampler(images, labels, 11, LEVELS[:2], seed=1, optional_layers=["roi"], layer_dropout=1.0)
    assert float(none.sample(4, 32)[-1].abs().sum()) == 0.0


def test_roi_layer_round_trips_through_containers(frame):
    from semcomp_core.roi.picture import encode_picture

    hevc = encode_picture(frame[:64, :64].copy(), 40)
    d = RoiData(RoiMaskRule(1 << 9, 1), (0, 0, 64, 64), 0, hevc)
    data = pack(CodecId.SEMANTIC_GAN, 360, 480, [(LayerId.ROI, RoiLayer().encode(d))])
    back = RoiLayer().decode(unpack(data).layers[0][1], frame=(360, 480))
    assert back.mask == d.mask and back.box == d.box and back.hevc == hevc


def test_optional_layer_generator_exports_with_the_layers_input(tmp_path):
    import onnx
    import torch

    from semcomp_core.inference.export import export_onnx
    from semcomp_core.models.generator import SPADEGenerator, with_optional_layers

    torch.manual_seed(1)
    g = with_optional_layers(SPADEGenerator.tiny(), ["roi"])
    with torch.no_grad():
        for p in g.parameters():
            p.add_(0.02 * torch.randn_like(p))       # the ROI channels carry weight: parity means something
    g.eval()
    path = tmp_path / "generator.onnx"
    export_onnx("generator", g, path)                # raises ExportError if onnxruntime disagrees with torch
    names = [i.name for i in onnx.load(str(path)).graph.input]
    assert names == ["onehot", "color", "noise", "layers"]


def test_bench_reports_the_byte_split_and_fallbacks(frame, tmp_path):
    from semcomp_core.bench.runner import BenchRunner

    codecs_ = [build("semantic-gan:roi=classes:roi_classes=Car:budget=700"),
               build("semantic-gan:roi=uncertain:roi_conf=1:fallback=0.5:budget=700"), build("bpg:q=51")]
    runner = BenchRunner(codecs_, tmp_path, warmup=False)
    rows = runner.run_frame("f0", frame)
    summary = {s["codec"]: s for s in runner.finish()}
    roi, fb, bpg = (summary[c.label()] for c in codecs_)
    assert rows[0].row["roi_bytes"] == roi_split(rows[0].data)[0] > 0 and rows[0].row["fallback"] == 0
    assert roi["roi_frames"] == 1 and roi["fallback_frames"] == 0
    assert roi["roi_share"] == pytest.approx(rows[0].row["roi_bytes"] / len(rows[0].data))
    assert fb["fallback_frames"] == 1 and fb["roi_frames"] == 0 and rows[1].row["fallback"] == 1
    assert "roi_share" not in bpg and rows[2].row["roi_bytes"] == 0


def test_streams_without_a_budget_send_only_user_regions_and_fallbacks(frame):
    """gop > 1 and neither budget= nor kbps=: the automatic regions would fill every inter frame, so
    they are not sent; the user's regions and the classic fallback still are."""
    auto = build("semantic-gan:gop=10:roi=uncertain+classes:roi_classes=Car+Building:roi_conf=0.99:fallback=1")
    enc = auto.open_encoder(15)
    for i in range(2):
        data = enc.encode(frame, i * 66_666_666)
        assert roi_split(data) == (0, 0) and enc.last.details["roi"]["sources"]["uncertain"] > 0
    import cv2

    big = cv2.resize(frame[60:300], (1024, 512), interpolation=cv2.INTER_CUBIC)   # auto budget 590 bytes
    user = build("semantic-gan:gop=10:roi=user+uncertain:roi_boxes=96,96,224,224:roi_conf=0.99:fallback=1")
    enc = user.open_encoder(15)
    assert roi_split(enc.encode(big, 0))[0] > 0
    mask = RoiLayer().decode(unpack(enc.encode(big, 66_666_666)).find(LayerId.ROI)).mask
    assert mask.sum() == 4 * 4 and mask[3:7, 3:7].all()        # the user's box only (32-pixel cells)
    fb = build("semantic-gan:gop=10:roi=uncertain:roi_conf=1:fallback=0.5")
    enc = fb.open_encoder(15)
    data = enc.encode(frame, 0)
    assert roi_split(data)[1] == 1 and len(data) <= 194
