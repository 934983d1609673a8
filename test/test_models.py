"""Models: tiny configs build fast, forward shapes, JSON+safetensors round trip, no pickles."""
import json
import time

import pytest

torch = pytest.importorskip("torch")

from semcomp_core.errors import UsageError  # noqa: E402
from semcomp_core.models import (MODELS, DDRNetSeg, MultiScaleDiscriminator, SPADEGenerator,  # noqa: E402
                                 UNetSeg, load_model, remove_spectral_norm, save_model)
from semcomp_core.models.complexity import count_macs, count_params  # noqa: E402


def test_tiny_configs_build_in_milliseconds():
    t = time.perf_counter()
    seg, gen, disc = DDRNetSeg.tiny(), SPADEGenerator.tiny(), MultiScaleDiscriminator.tiny()
    ev = UNetSeg.tiny()
    assert time.perf_counter() - t < 1.0
    assert count_params(seg) < 150_000 and count_params(gen) < 20_000 and count_params(ev) < 20_000


def test_unet_eval_segmenter_outputs_half_resolution_logits():
    m = UNetSeg.tiny(num_classes=5).eval()
    out, aux = m(torch.rand(2, 3, 45, 61) * 255, with_aux=True)  # odd sizes: skips are resized to match
    assert out.shape == (2, 5, 23, 31) and aux.shape[:2] == (2, 5)
    assert m.config["input_scale"] == 0.5


def test_segmenter_outputs_one_eighth_logits():
    m = DDRNetSeg.tiny(num_classes=5).eval()
    out, aux = m(torch.rand(2, 3, 64, 96) * 255, with_aux=True)
    assert out.shape == (2, 5, 8, 12) and aux.shape == (2, 5, 8, 12)


def test_generator_shapes_and_range():
    g = SPADEGenerator.tiny(num_classes=4).eval()
    oh = torch.zeros(1, 4, 48, 64)
    oh[:, 1] = 1
    out = g(oh, torch.zeros(1, 3, 48, 64), torch.randn(1, 2, 6, 8))
    assert out.shape == (1, 3, 48, 64) and out.abs().max() <= 1


def test_discriminator_returns_features_per_scale():
    d = MultiScaleDiscriminator.tiny(num_classes=4)
    res = d(torch.zeros(1, 3, 64, 64), torch.zeros(1, 7, 64, 64))
    assert len(res) == 2 and all(len(f) == 3 for f, _ in res)
    remove_spectral_norm(d)
    assert not any("parametrizations" in n for n, _ in d.named_parameters())


@pytest.mark.parametrize("cls", [DDRNetSeg, UNetSeg, SPADEGenerator])
def test_save_load_roundtrip(tmp_path, cls):
    m = cls.tiny(num_classes=6).eval()
    save_model(m, tmp_path / "m", card="# card\n")
    doc = json.loads((tmp_path / "m" / "config.json").read_text())
    assert doc["model"] == m.registry_name and doc["config"]["num_classes"] == 6
    raw = (tmp_path / "m" / "model.safetensors").read_bytes()
    assert b"pickle" not in raw[:2000] and not raw.startswith(b"PK")  # safetensors, not a torch zip/pickle
    back = load_model(tmp_path / "m")
    for (k, a), (_, b) in zip(m.state_dict().items(), back.state_dict().items()):
        assert torch.equal(a, b), k
    assert (tmp_path / "m" / "MODEL_CARD.md").read_text() == "# card\n"


def test_fp16_weights_load_into_fp32(tmp_path):
    m = SPADEGenerator.tiny()
    save_model(m, tmp_path / "h", fp16=True)
    back = load_model(tmp_path / "h")
    assert next(back.parameters()).dtype == torch.float32


def test_load_errors_are_usage_errors(tmp_path):
    with pytest.raises(UsageError):
        load_model(tmp_path / "missing")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("{}")
    with pytest.raises(UsageError):
        load_model(tmp_path / "bad")


def test_registry_and_macs():
    assert {"ddrnet-seg", "unet-seg", "spade-generator", "multiscale-discriminator"} <= set(MODELS.names())
    g = SPADEGenerator.tiny()
    small = count_macs(g, torch.zeros(1, 11, 32, 32), torch.zeros(1, 3, 32, 32))
    big = count_macs(g, torch.zeros(1, 11, 64, 64), torch.zeros(1, 3, 64, 64))
    assert big == pytest.approx(4 * small, rel=0.05)
