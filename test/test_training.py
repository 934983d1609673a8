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


def test_unet_evaluation_segmenter_trains(packed, tmp_path):
    out = tmp_path / "ev"
    assert main(["train", "segmenter", "--arch", "unet", "--input-scale", "0.5", "--train", str(packed["train"]),
                 "--val", str(packed["val"]), "--out", str(out), "--tiny", "--batch", "2", "--crop", "32",
                 "--epochs", "1", "--seed", "7", "--quiet"]) == 0
    model = load_model(out / "model")
    assert model.registry_name == "unet-seg" and model.config["input_scale"] == 0.5
    assert "U-Net" in (out / "model" / "MODEL_CARD.md").read_text()


def test_ship_writes_fp16_copy_with_card(packed, tmp_path, capsys):
    import torch

    from semcomp_core.models import UNetSeg, save_model

    src = save_model(UNetSeg.tiny(num_classes=11).eval(), tmp_path / "src", card="# unet\n",
                     extra={"metrics": {"val_miou": 0.5}})
    assert main(["train", "ship", str(src), "--out", str(tmp_path / "dest")]) == 0
    back = load_model(tmp_path / "dest")
    assert back.registry_name == "unet-seg"
    from safetensors.torch import load_file
    assert load_file(str(tmp_path / "dest" / "model.safetensors"))["head.weight"].dtype == torch.float16
    assert json.loads((tmp_path / "dest" / "config.json").read_text())["extra"]["metrics"]["val_miou"] == 0.5
    assert "fp16" in (tmp_path / "dest" / "MODEL_CARD.md").read_text()
    assert main(["train", "ship", str(tmp_path / "nothing"), "--out", str(tmp_path / "d2")]) == 2
    assert not (tmp_path / "d2").exists()


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


def test_gc_trains_resumes_and_saves_a_codec_pair(packed, tmp_path, sample_image):
    from semcomp_core import codecs

    args = ["train", "gc", "--train", str(packed["train"]), "--out", str(tmp_path / "gc"), "--tiny", "--batch", "2",
            "--crop", "32", "--save-every", "2", "--gan-start", "2", "--quiet"]
    assert main(args + ["--steps", "2"]) == 0
    assert main(args + ["--steps", "4", "--resume"]) == 0
    log = [json.loads(x) for x in (tmp_path / "gc" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 4 and "rate" in log[-1] and "adv" in log[-1] and "bpp_full" in log[-1]
    enc, dec = load_model(tmp_path / "gc" / "model" / "encoder"), load_model(tmp_path / "gc" / "model" / "decoder")
    assert [t.tolist() for t in enc.prior()] == [t.tolist() for t in dec.prior()]   # both sides code alike
    assert "4 steps" in (tmp_path / "gc" / "model" / "decoder" / "MODEL_CARD.md").read_text()
    codec = codecs.create("gc", gc_encoder=str(tmp_path / "gc" / "model" / "encoder"),
                          gc_decoder=str(tmp_path / "gc" / "model" / "decoder"))
    small = np.ascontiguousarray(sample_image[::4, ::4])
    assert codec.decode(codec.encode(small)).shape == small.shape


def test_bpg_se_trains_on_its_own_base_layers_and_resumes(packed, tmp_path):
    pytest.importorskip("pillow_heif")
    out = tmp_path / "bse"
    args = ["train", "bpg-se", "--train", str(packed["train"]), "--out", str(out), "--tiny", "--batch", "2",
            "--crop", "32", "--qs", "45,51", "--factors", "16", "--save-every", "2", "--perception-start", "2",
            "--quiet"]
    assert main(args + ["--steps", "2"]) == 0
    with np.load(out / "base_cache.npz") as z:
        assert z["base"].shape == (2, 4, 48, 64, 3) and z["labels_16"].shape == (4, 3, 4)
        assert (z["bytes"][0] > z["bytes"][1]).all()                  # q=45 costs more than q=51
    stamp = (out / "base_cache.npz").stat().st_mtime_ns
    assert main(args + ["--steps", "4", "--resume"]) == 0
    assert (out / "base_cache.npz").stat().st_mtime_ns == stamp      # made once, reused
    log = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 4 and "psnr_gain" in log[-1] and "adv" in log[-1]
    net = load_model(out / "model")
    assert net.registry_name == "bpg-se-enhancer" and net.num_classes == 11
    assert main(args[:-1] + ["--qs", "45..x"]) == 2
