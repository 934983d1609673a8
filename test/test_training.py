"""Training entry points on a tiny generated CamVid tree: pack, segmenter, decoder, resume."""
import json

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("torch")

from semcomp_core.cli.main import main  # noqa: E402
from semcomp_core.models import load_model  # noqa: E402


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    root = tmp_path_factory.mktemp("camvid")
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        (root / split).mkdir()
        (root / f"{split}annot").mkdir()
        for i in range(4):
            lab = np.zeros((48, 64), np.uint8)
            lab[24:] = 3
            lab[:, 40:] = int(rng.integers(0, 11))
            img = (np.stack([lab * 20, 255 - lab * 20, lab * 5], -1) + rng.integers(0, 20, (48, 64, 3))).astype(np.uint8)
            Image.fromarray(img).save(root / split / f"f{i}.png")
            Image.fromarray(lab).save(root / f"{split}annot" / f"f{i}.png")
    out = {}
    for split in ("train", "val"):
        out[split] = root / f"{split}.npz"
        assert main(["train", "pack", "--dataset", "camvid", "--data", str(root), "--split", split,
                     "-o", str(out[split])]) == 0
    return out


def test_pack_contents(packed):
    with np.load(packed["train"]) as z:
        assert z["images"].shape == (4, 48, 64, 3) and z["labels"].shape == (4, 48, 64)
        assert json.loads(str(z["meta"]))["classes"][3] == "Road"


def test_segmenter_trains_saves_and_resumes(packed, tmp_path, capsys):
    args = ["train", "segmenter", "--train", str(packed["train"]), "--val", str(packed["val"]), "--out",
            str(tmp_path / "seg"), "--tiny", "--batch", "2", "--crop", "32", "--quiet"]
    assert main(args + ["--epochs", "1"]) == 0
    assert main(args + ["--epochs", "2", "--resume"]) == 0
    log = [json.loads(line) for line in (tmp_path / "seg" / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2] and log[1]["step"] == 2 * log[0]["step"]
    assert 0.0 <= log[-1]["val_miou"] <= 1.0
    model = load_model(tmp_path / "seg" / "model")
    assert model.num_classes == 11
    assert "Validation mIoU" in (tmp_path / "seg" / "model" / "MODEL_CARD.md").read_text()


def test_decoder_trains_and_resumes(packed, tmp_path):
    seg = tmp_path / "seg"
    assert main(["train", "segmenter", "--train", str(packed["train"]), "--out", str(seg), "--tiny",
                 "--epochs", "1", "--batch", "2", "--crop", "32", "--quiet"]) == 0
    args = ["train", "decoder", "--train", str(packed["train"]), "--segmenter", str(seg / "model"),
            "--out", str(tmp_path / "gan"), "--tiny", "--batch", "2", "--crop", "32", "--save-every", "2",
            "--quiet"]
    assert main(args + ["--steps", "2"]) == 0
    assert main(args + ["--steps", "4", "--resume", "--labels", "predicted"]) == 0
    gen = load_model(tmp_path / "gan" / "model")
    assert gen.registry_name == "spade-generator"
    card = (tmp_path / "gan" / "model" / "MODEL_CARD.md").read_text()
    assert "Steps: 4" in card


def test_bad_training_input(tmp_path):
    assert main(["train", "decoder", "--train", str(tmp_path / "none.npz"), "--out", str(tmp_path)]) == 2
