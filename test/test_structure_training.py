"""Training the generator on the structure layer: sampler, presence channel, structure-consistency loss."""
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")


def test_layer_offsets_follow_the_fixed_order():
    from semcomp_core.models.generator import SPADEGenerator

    g = SPADEGenerator.tiny(optional_layers=["structure", "roi"])
    assert g.optional_layers == ["roi", "structure"] and g.layer_channels == 4 + 2
    assert (g.layer_offset("roi"), g.layer_offset("structure")) == (0, 4)
    assert SPADEGenerator.tiny(optional_layers=["structure"]).layer_offset("structure") == 0


def test_sampler_gives_the_structure_channel_as_the_receiver_builds_it():
    from semcomp_core.codecs.semantic_levels import LEVELS
    from semcomp_core.structure import extract_structure, structure_input
    from semcomp_core.training.gan_trainer import ConditionSampler

    rng = np.random.default_rng(0)
    images = np.zeros((2, 64, 64, 3), np.uint8)
    images[:, :, 32:] = 255                                  # one vertical edge in the middle
    labels = rng.integers(0, 11, (2, 64, 64)).astype(np.uint8)
    s = ConditionSampler(images, labels, 11, LEVELS[:2], seed=3, optional_layers=["roi", "structure"],
                         layer_dropout=0.5)
    *_, layers = s.sample(24, 64)
    assert tuple(layers.shape) == (24, 6, 64, 64)
    presence = layers[:, 5].flatten(1)
    on = presence.amax(1) > 0
    assert 0 < int(on.sum()) < 24 and bool((presence[on] == 1).all())
    values = layers[:, 4]
    assert float(values[~on].abs().sum()) == 0.0             # absent: zeros, as the receiver sends
    want, _ = structure_input(extract_structure(images[0], "m"), 64, 64)
    cols = values[on].mean((0, 1))                            # the line's column profile (flips keep it central)
    assert int(cols.argmax()) in range(28, 36) and int(want[:, :, 0].mean(0).argmax()) in range(28, 36)
    assert float(cols.max()) > 0 and float(cols[:20].max()) == -1.0     # a line, and nothing far from it


def test_structure_consistency_rewards_the_original_lines_only_where_given():
    from semcomp_core.training.losses import structure_consistency

    real = -torch.ones(2, 3, 32, 32)
    real[:, :, :, 16:] = 1.0                                  # a sharp vertical edge
    flat = (torch.rand(2, 3, 32, 32) * 0.1).requires_grad_(True)       # no lines, a little texture
    given = torch.ones(2, 1, 32, 32)
    assert float(structure_consistency(real, real, given)) == pytest.approx(0.0, abs=1e-3)
    loss = structure_consistency(flat, real, given)
    assert float(loss.detach()) > 0.01
    loss.backward()
    assert float(flat.grad.abs().sum()) > 0
    assert float(structure_consistency(flat, real, torch.zeros(2, 1, 32, 32))) == 0.0
    # with the line channel: only pixels near a sent line count; texture elsewhere is free
    lines = -torch.ones(2, 1, 32, 32)
    lines[:, :, :, 16] = 1.0
    textured = real.clone()
    textured[:, :, :, :8] += torch.rand(2, 3, 32, 8)             # far from the line: ignored
    assert float(structure_consistency(textured, real, given, lines, reach=2)) == pytest.approx(0.0, abs=1e-3)
    assert float(structure_consistency(textured, real, given, lines)) > 0.01   # reach 0: the whole crop
    assert float(structure_consistency(flat.detach(), real, given, lines, 2)) > float(
        structure_consistency(flat.detach(), real, given))          # the line's missing contrast dominates


def test_tiny_decoder_trains_with_the_structure_layer(tmp_path):
    from PIL import Image

    from semcomp_core.cli.main import main
    from semcomp_core.models import load_model

    root = tmp_path / "camvid"
    rng = np.random.default_rng(0)
    for split in ("train",):
        (root / split).mkdir(parents=True)
        (root / f"{split}annot").mkdir()
        for i in range(3):
            lab = np.zeros((48, 64), np.uint8)
            lab[24:] = 3
            img = (np.stack([lab * 20, 255 - lab * 20, lab * 5], -1) + rng.integers(0, 20, (48, 64, 3)))
            Image.fromarray(img.astype(np.uint8)).save(root / split / f"f{i}.png")
            Image.fromarray(lab).save(root / f"{split}annot" / f"f{i}.png")
    pack = tmp_path / "train.npz"
    assert main(["train", "pack", "--dataset", "camvid", "--data", str(root), "--split", "train", "-o", str(pack)]) == 0
    out = tmp_path / "gan"
    assert main(["train", "decoder", "--train", str(pack), "--out", str(out), "--tiny", "--batch", "2", "--crop", "32",
                 "--steps", "3", "--quiet", "--optional-layers", "roi,structure", "--layer-dropout", "0",
                 "--w-edge", "5"]) == 0
    gen = load_model(out / "model")
    assert gen.config["optional_layers"] == ["roi", "structure"]
    log = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert all(r["edge"] > 0 for r in log)
    assert "structure consistency x5.0 (reach whole crop)" in (out / "model" / "MODEL_CARD.md").read_text()
