"""The shipped weights: present, small, loadable offline, and the default codec works right after install."""
import json

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("torch")

from semcomp_core.cli.main import DEFAULT_CODEC, main  # noqa: E402
from semcomp_core.models import load_model  # noqa: E402
from semcomp_core.paths import WEIGHTS_DIR  # noqa: E402


ROLES = ("segmenter", "decoder", "eval_segmenter", "bpg_se", "gc_encoder", "gc_decoder", "ldm/vae", "ldm/unet",
         "ldm/clip")


def test_weights_are_safetensors_with_config_and_card():
    total = 0
    for role in ROLES:
        folder = WEIGHTS_DIR / role
        assert (folder / "config.json").exists() and (folder / "MODEL_CARD.md").exists()
        total += (folder / "model.safetensors").stat().st_size
        assert not list(folder.glob("*.pt")) and not list(folder.glob("*.pth")) and not list(folder.glob("*.bin"))
    assert {p.name for p in WEIGHTS_DIR.iterdir() if p.is_dir()} == {r.split("/")[0] for r in ROLES}
    assert {p.name for p in (WEIGHTS_DIR / "ldm").iterdir()} == {"vae", "unet", "clip"}   # nothing unaccounted for
    assert total <= 60 * 1024 * 1024                                           # the repository's weight budget


@pytest.mark.parametrize("spec", ["bpg-se:q=47", "gc:level=1"])
def test_other_codecs_round_trip_with_shipped_weights(spec, sample_image):
    from semcomp_core import codecs

    data = codecs.create(spec).encode(sample_image)
    out = codecs.decode(data)
    assert out.shape == sample_image.shape and out.std() > 10
    assert np.array_equal(out, codecs.decode(data))                            # deterministic
    if spec.startswith("gc"):
        enc, dec = load_model(WEIGHTS_DIR / "gc_encoder"), load_model(WEIGHTS_DIR / "gc_decoder")
        assert [t.tolist() for t in enc.prior()] == [t.tolist() for t in dec.prior()]


def test_shipped_models_load_and_have_matching_classes():
    seg = load_model(WEIGHTS_DIR / "segmenter")
    gen = load_model(WEIGHTS_DIR / "decoder")
    assert seg.num_classes == gen.num_classes == 11
    assert seg.config["class_names"] == gen.config["class_names"]
    ev = load_model(WEIGHTS_DIR / "eval_segmenter")
    assert ev.registry_name == "unet-seg" != seg.registry_name  # the evaluation segmenter is independent
    assert ev.config["class_names"] == seg.config["class_names"]


def test_default_codec_roundtrip_offline(tmp_path, sample_paths, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert DEFAULT_CODEC == "semantic-gan"
    smc, png = tmp_path / "f.smc", tmp_path / "f.png"
    assert main(["encode", str(sample_paths[2]), "-o", str(smc)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["codec"].startswith("semantic-gan") and info["bytes"] == smc.stat().st_size
    assert info["bytes"] < 300
    assert main(["decode", str(smc), "-o", str(png)]) == 0
    with Image.open(png) as im:
        arr = np.asarray(im)
    assert arr.shape == (360, 480, 3)
    assert arr.std() > 10  # a picture, not a flat fill


def test_model_info_reports_every_shipped_network(capsys):
    assert main(["model-info", "--sizes", "64x96,128x192"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["model"] for r in rows} == set(ROLES)
    for role in ("segmenter", "decoder", "eval_segmenter"):
        small, big = (r for r in rows if r["model"] == role)
        assert small["params_M"] == big["params_M"] > 0
        assert big["GMACs"] == pytest.approx(4 * small["GMACs"], rel=0.15)
    assert main(["model-info", "--sizes", "64x96", "--eval-segmenter", "none"]) == 0
    assert "eval_segmenter" not in capsys.readouterr().out


def test_decode_with_the_diffusion_renderer_on_shipped_weights(tmp_path, sample_paths, capsys, monkeypatch):
    """The acceptance path: `semcomp decode X.smc --renderer ldm` with the shipped weights, deterministic."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    smc = tmp_path / "f.smc"
    assert main(["encode", str(sample_paths[1]), "-o", str(smc)]) == 0
    capsys.readouterr()
    outs = []
    for name in ("a.png", "b.png"):
        assert main(["decode", str(smc), "-o", str(tmp_path / name), "--renderer", "ldm"]) == 0
        assert "renderer: ldm shipped" in json.loads(capsys.readouterr().out)["implementation"]
        outs.append(np.asarray(Image.open(tmp_path / name)))
    assert np.array_equal(outs[0], outs[1]) and outs[0].std() > 10
    assert main(["decode", str(smc), "-o", str(tmp_path / "g.png")]) == 0
    assert not np.array_equal(np.asarray(Image.open(tmp_path / "g.png")), outs[0])       # the GAN's frame


def test_clip_codec_round_trips_with_shipped_weights(sample_image):
    from semcomp_core import codecs
    from semcomp_core.bitstream import LayerId, unpack

    for nbytes in (32, 64, 128):
        data = codecs.create(f"clip:bytes={nbytes}").encode(sample_image)
        assert len(unpack(data).layer(LayerId.CLIP)) == nbytes + 2
    out = codecs.decode(data, receiver={"steps": "8"})
    assert out.shape == sample_image.shape and out.std() > 10
    assert np.array_equal(out, codecs.decode(data, receiver={"steps": "8"}))
