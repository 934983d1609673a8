"""``semcomp train vae`` and ``semcomp train ldm`` on a tiny pack with tiny models: outputs, resume, errors."""
import json
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("accelerate")

from semcomp_core.errors import UsageError  # noqa: E402
from semcomp_core.models import load_model, read_config  # noqa: E402


@pytest.fixture(scope="module")
def pack(tmp_path_factory):
    """Six 64x96 frames with CamVid's label table (the sample frames, downscaled)."""
    from PIL import Image

    from semcomp_core.datasets.camvid import CLASSES
    from semcomp_core.imageio import list_images, load_image, load_label
    from semcomp_core.paths import SAMPLES_DIR

    root = tmp_path_factory.mktemp("pack")
    imgs, labs = [], []
    for path in list_images(SAMPLES_DIR / "images")[:3]:
        img = load_image(path)
        lab = load_label(SAMPLES_DIR / "labels" / path.name)
        for flip in (False, True):
            im = np.asarray(Image.fromarray(img).resize((96, 64), Image.Resampling.BOX))
            lb = np.asarray(Image.fromarray(lab).resize((96, 64), Image.Resampling.NEAREST))
            imgs.append(im[:, ::-1] if flip else im)
            labs.append(lb[:, ::-1] if flip else lb)
    out = root / "tiny.npz"
    np.savez(out, images=np.stack(imgs), labels=np.stack(labs), names=np.array([str(i) for i in range(6)]),
             meta=np.array(json.dumps({"classes": list(CLASSES)})))
    return out


def test_train_vae_then_ldm_resume_and_outputs(pack, tmp_path):
    from semcomp_core.training.ldm_trainer import LdmTrainConfig, train_ldm
    from semcomp_core.training.vae_trainer import VaeTrainConfig, train_vae

    vcfg = VaeTrainConfig(train=str(pack), out=str(tmp_path / "vae"), tiny=True, steps=4, batch=2, crop=32,
                          gan_start=2, save_every=2, threads=1)
    assert train_vae(vcfg, progress=False)["step"] == 4
    vae_dir = tmp_path / "vae" / "model"
    cfg = read_config(vae_dir)
    assert cfg["model"] == "ldm-vae" and cfg["config"]["scaling_factor"] != 1.0      # measured on the latents
    assert (vae_dir / "MODEL_CARD.md").read_text().startswith("# semcomp ldm-vae")
    log = [json.loads(line) for line in (tmp_path / "vae" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 4 and "adv" in log[-1]                              # the GAN phase ran
    lcfg = LdmTrainConfig(train=str(pack), out=str(tmp_path / "ldm"), vae=str(vae_dir), tiny=True, steps=3,
                          batch=2, crop=32, save_every=3, threads=1, max_strength=0.8)
    assert train_ldm(lcfg, progress=False)["step"] == 3
    unet = load_model(tmp_path / "ldm" / "model" / "unet")
    tower = load_model(tmp_path / "ldm" / "model" / "clip")
    assert unet.config["max_strength"] == 0.8 and unet.embed_dim == tower.embed_dim
    assert unet.config["class_names"][0] == "Sky"
    assert float(tower.codebook(8).abs().sum()) > 0                               # quantisers fitted
    assert "Product quantiser" in (tmp_path / "ldm" / "model" / "clip" / "MODEL_CARD.md").read_text()
    before = {k: v.clone() for k, v in unet.state_dict().items()}
    lcfg.resume, lcfg.steps = True, 5
    assert train_ldm(lcfg, progress=False)["step"] == 5
    log = [json.loads(line) for line in (tmp_path / "ldm" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log][-1] == 5 and all(np.isfinite(r["loss"]) for r in log)
    assert all("contrast" in r for r in log)                      # the tower's anti-collapse term ran
    after = load_model(tmp_path / "ldm" / "model" / "unet").state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    # the trained folder renders
    import shutil

    from semcomp_core.renderers.ldm import LdmRenderer

    shutil.copytree(vae_dir, tmp_path / "r" / "vae")
    shutil.copytree(tmp_path / "ldm" / "model" / "unet", tmp_path / "r" / "unet")
    r = LdmRenderer(str(tmp_path / "r"))
    onehot = torch.zeros(1, 11, 32, 32)
    onehot[:, 3] = 1
    out = r.render(onehot, torch.zeros(1, 3, 32, 32), None, None, np.full((32, 32, 3), 99, np.uint8), 32, 32, 1,
                   steps=4, strength=0.5)
    assert out.shape == (32, 32, 3)


def test_train_ldm_without_clip(pack, tmp_path):
    from semcomp_core.models import save_model
    from semcomp_core.models.ldm import LatentVae
    from semcomp_core.training.ldm_trainer import LdmTrainConfig, train_ldm

    save_model(LatentVae.tiny(), tmp_path / "vae")
    cfg = LdmTrainConfig(train=str(pack), out=str(tmp_path / "ldm"), vae=str(tmp_path / "vae"), tiny=True, steps=2,
                         batch=2, crop=32, save_every=2, threads=1, clip=False, prediction="epsilon")
    train_ldm(cfg, progress=False)
    assert not (tmp_path / "ldm" / "model" / "clip").exists()
    unet = load_model(tmp_path / "ldm" / "model" / "unet")
    assert unet.embed_dim == 0 and unet.config["prediction_type"] == "epsilon"


@pytest.mark.parametrize("kw, match", [({"crop": 40}, "crop"), ({"max_strength": 1.5}, "max-strength"),
                                       ({"prediction": "x"}, "prediction"), ({"vae": ""}, "--vae")])
def test_bad_ldm_arguments(pack, tmp_path, kw, match):
    from semcomp_core.training.ldm_trainer import LdmTrainConfig, train_ldm

    args = dict(train=str(pack), out=str(tmp_path / "o"), vae=str(tmp_path / "v"), tiny=True, steps=1)
    args.update(kw)
    with pytest.raises(UsageError, match=match):
        train_ldm(LdmTrainConfig(**args), progress=False)


def test_cli_train_vae_wiring_and_bad_input(pack, tmp_path):
    r = subprocess.run([sys.executable, "-m", "semcomp_core", "train", "vae", "--train", str(pack), "--out",
                        str(tmp_path / "v"), "--tiny", "--steps", "2", "--batch", "2", "--crop", "32", "--quiet",
                        "--threads", "1"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "v" / "model" / "config.json").exists()
    r = subprocess.run([sys.executable, "-m", "semcomp_core", "train", "vae", "--train", str(pack), "--out",
                        str(tmp_path / "v2"), "--tiny", "--steps", "2", "--crop", "30"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode != 0 and "crop" in r.stderr
    r = subprocess.run([sys.executable, "-m", "semcomp_core", "train", "vae", "--train", str(pack), "--out",
                        str(tmp_path / "v3"), "--tiny", "--mixed-precision", "fp16"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode != 0 and "CUDA" in r.stderr


def test_vae_decoder_only_fine_tuning_keeps_the_latent_space(pack, tmp_path):
    from semcomp_core.training.vae_trainer import VaeTrainConfig, train_vae

    base = dict(train=str(pack), out=str(tmp_path / "vae"), tiny=True, batch=2, crop=32, save_every=2, threads=1)
    train_vae(VaeTrainConfig(steps=2, gan_start=100, **base), progress=False)
    first = load_model(tmp_path / "vae" / "model")
    with pytest.raises(UsageError, match="no checkpoint"):
        train_vae(VaeTrainConfig(**dict(base, out=str(tmp_path / "none")), steps=2, decoder_only=True), progress=False)
    train_vae(VaeTrainConfig(steps=4, gan_start=0, decoder_only=True, **base), progress=False)
    second = load_model(tmp_path / "vae" / "model")
    a, b = first.state_dict(), second.state_dict()
    enc = [k for k in a if k.startswith(("vae.encoder.", "vae.quant_conv."))]
    dec = [k for k in a if k.startswith("vae.decoder.")]
    assert enc and all(torch.equal(a[k], b[k]) for k in enc)           # the latent space did not move
    assert any(not torch.equal(a[k], b[k]) for k in dec)               # the decoder learned
    assert second.scaling_factor == first.scaling_factor
    assert (tmp_path / "vae" / "checkpoint_decoder" / "trainer.json").exists()
    train_vae(VaeTrainConfig(steps=6, gan_start=0, decoder_only=True, **base), progress=False)     # resumes
    log = [json.loads(line) for line in (tmp_path / "vae" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 6


def test_mean_cosine_flags_a_collapsed_tower():
    from semcomp_core.training.ldm_trainer import mean_cosine

    assert mean_cosine(torch.ones(5, 8)) == pytest.approx(1.0)
    e = torch.eye(4)
    assert mean_cosine(e) == pytest.approx(0.0)


def test_view_contrast_prefers_matching_views():
    import numpy as np

    from semcomp_core.models.clip_tower import ClipTower
    from semcomp_core.training.ldm_trainer import view_contrast

    torch.manual_seed(0)
    tower = ClipTower.tiny()
    frames = torch.rand(4, 3, 40, 40) * 255
    emb = tower(frames)
    loss = view_contrast(tower, frames, emb, np.arange(4), np.random.default_rng(0))
    assert loss.requires_grad and float(loss) > 0
    # a constant (collapsed) embedding cannot tell the views apart: log(batch) exactly
    const = torch.ones(4, 16)

    class Const(torch.nn.Module):
        def forward(self, x):
            return torch.ones(x.shape[0], 16)
    assert float(view_contrast(Const(), frames, const, np.arange(4), np.random.default_rng(0))) == \
        pytest.approx(np.log(4), rel=1e-5)
