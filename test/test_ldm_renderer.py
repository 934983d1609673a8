"""The diffusion renderer (diffusers AutoencoderKL + UNet2DConditionModel, DDIM SDEdit) with tiny models built here."""
import json
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from semcomp_core import codecs  # noqa: E402
from semcomp_core.errors import UsageError  # noqa: E402
from semcomp_core.models import DDRNetSeg, SPADEGenerator, load_model, save_model  # noqa: E402
from semcomp_core.models.ldm import LatentUnet, LatentVae, cond_channels, latent_conditioning  # noqa: E402
from semcomp_core.renderers.ldm import LdmRenderer  # noqa: E402


def make_ldm(root, seed=0, embed_dim=0, clip=False):
    """A tiny renderer folder: vae/, unet/ (and clip/)."""
    torch.manual_seed(seed)
    save_model(LatentVae.tiny().eval(), root / "vae")
    unet = LatentUnet.tiny(num_classes=11, embed_dim=embed_dim, max_strength=0.9)
    with torch.no_grad():       # a young UNet predicts ~0: give it an output that depends on its inputs
        unet.unet.conv_out.weight.normal_(0, 0.3)
    save_model(unet.eval(), root / "unet")
    if clip:
        from semcomp_core.models.clip_tower import ClipTower

        tower = ClipTower.tiny()
        tower.fit_pq(torch.randn(300, tower.embed_dim) * 1.0)
        save_model(tower.eval(), root / "clip")
    return root


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("ldm")
    torch.manual_seed(0)
    save_model(DDRNetSeg.tiny(num_classes=11).eval(), root / "seg")
    save_model(SPADEGenerator.tiny(num_classes=11).eval(), root / "gen")
    make_ldm(root / "ldm")
    return root


@pytest.fixture(scope="module")
def frame(sample_image):
    return np.ascontiguousarray(sample_image[:96, :128])


def _spec(models, **kw):
    extra = "".join(f":{k}={v}" for k, v in kw.items())
    return f"semantic-gan:roi=none:segmenter={models / 'seg'}:decoder={models / 'gen'}:ldm={models / 'ldm'}{extra}"


def test_tiny_networks_shapes_and_save_load(tmp_path):
    vae = LatentVae.tiny().eval()
    x = torch.rand(1, 3, 48, 64) * 2 - 1
    z = vae.encode(x)
    assert z.shape == (1, 4, 12, 16)
    assert vae.decode(z).shape == (1, 3, 48, 64)
    unet = LatentUnet.tiny(embed_dim=8).eval()
    cond = torch.zeros(1, unet.cond_channels, 12, 16)
    out = unet(z, torch.tensor([10]), cond, torch.zeros(1, 8), torch.ones(1, 1))
    assert out.shape == z.shape
    save_model(unet, tmp_path / "u")
    back = load_model(tmp_path / "u")
    assert back.config == unet.config
    with torch.no_grad():
        assert torch.equal(back(z, torch.tensor([10]), cond, torch.zeros(1, 8), torch.ones(1, 1)),
                           unet(z, torch.tensor([10]), cond, torch.zeros(1, 8), torch.ones(1, 1)))


def test_latent_conditioning_layout():
    k = 11
    labels = torch.zeros(1, 16, 16, dtype=torch.long)
    labels[:, :, 8:] = 3
    onehot = torch.nn.functional.one_hot(labels, k).permute(0, 3, 1, 2).float()
    color = torch.full((1, 3, 16, 16), 0.5)
    c = latent_conditioning(onehot, color, None, k, [])
    assert c.shape == (1, cond_channels(k), 4, 4)
    assert torch.allclose(c[:, :k].sum(1), torch.ones(1, 4, 4))      # class fractions
    assert torch.all(c[:, 3, :, 2:] == 1) and torch.all(c[:, 0, :, :2] == 1)
    assert torch.all(c[:, k] == 1) and torch.all(c[:, k + 4] == 1)   # presences
    absent = latent_conditioning(None, color, None, k, [])
    assert torch.all(absent[:, :k + 1] == 0) and torch.all(absent[:, k + 1:k + 4] == 0.5)


def test_timesteps_follow_diffusers_img2img(models):
    r = LdmRenderer(str(models / "ldm"))
    for steps, strength in ((20, 0.7), (10, 0.3), (20, 0.9)):
        _, ts = r.timesteps(steps, strength)
        assert len(ts) == int(steps * strength)
        full = r.scheduler(steps).timesteps
        assert ts[0] == full[steps - int(steps * strength)]
    _, ts = r.timesteps(20, 0.7)
    assert int(ts[0]) < 0.7 * 1000 + 1


def test_ldm_renderer_decodes_deterministically_per_seed(models, frame):
    data = codecs.create(_spec(models)).encode(frame)
    data7 = codecs.create(_spec(models, seed=7)).encode(frame)
    dec = codecs.create(_spec(models, renderer="ldm", steps=6))
    a, b = dec.decode(data), dec.decode(data)
    assert a.shape == frame.shape and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, dec.decode(data7))          # another seed: another noise
    gan = codecs.create(_spec(models)).decode(data)
    assert not np.array_equal(a, gan)
    assert "renderer: ldm" in dec.implementation


def test_bitstream_is_the_same_whatever_the_renderer(models, frame):
    a = codecs.create(_spec(models)).encode(frame)
    b = codecs.create(_spec(models, renderer="ldm")).encode(frame)
    assert a == b


def test_strength_and_start_picture_matter(models, frame):
    data = codecs.create(_spec(models)).encode(frame)
    outs = {}
    for kw in ({"strength": 0.2}, {"strength": 0.8}, {"sdedit_from": "colormap"}, {"sdedit_from": "colormap", "strength": 0.3},
               {"guidance": 2.0}, {"eta": 1.0}, {"detail": "vae"}):
        outs[json.dumps(kw)] = codecs.create(_spec(models, renderer="ldm", steps=5, **kw)).decode(data)
    vals = list(outs.values())
    for i in range(len(vals)):
        for j in range(i + 1, len(vals)):
            assert not np.array_equal(vals[i], vals[j])


@pytest.mark.parametrize("kw, match", [
    ({"renderer": "vqgan"}, "renderer"), ({"steps": 0}, "steps"), ({"steps": 51}, "steps"),
    ({"strength": -0.1}, "strength"), ({"strength": 1.5}, "strength"), ({"sdedit_from": "noise"}, "sdedit_from"),
    ({"guidance": 0.5}, "guidance"), ({"detail": "noise"}, "detail"),
])
def test_bad_renderer_options_are_clear_errors(models, kw, match):
    with pytest.raises(UsageError, match=match):
        codecs.create(_spec(models, **kw))


def test_apply_edit_restores_the_start_where_nothing_changed():
    from semcomp_core.renderers.ldm import apply_edit

    rng = np.random.default_rng(0)
    start = rng.integers(0, 256, (8, 10, 3), dtype=np.uint8)
    recon = rng.integers(0, 256, (8, 10, 3), dtype=np.uint8)        # the VAE's (lossy) decode of the start
    assert np.array_equal(apply_edit(start, recon, recon), start)   # no edit: the start, exactly
    edited = recon.copy()
    edited[2:4, 3:6] = np.clip(edited[2:4, 3:6].astype(int) + 40, 0, 255)
    out = apply_edit(start, edited, recon)
    want = np.clip(start.astype(int) + edited.astype(int) - recon.astype(int), 0, 255)
    assert np.array_equal(out, want) and out.dtype == np.uint8
    assert not np.array_equal(out[2:4, 3:6], start[2:4, 3:6]) and np.array_equal(out[5:], start[5:])


def test_detail_start_keeps_more_of_the_start_pictures_texture(models, frame):
    """detail=start applies the diffusion's edit to the GAN frame; detail=vae returns the VAE's decode: at a
    small strength the first stays nearer the GAN frame it refines."""
    data = codecs.create(_spec(models)).encode(frame)
    gan = codecs.create(_spec(models)).decode(data).astype(float)
    near = {d: np.abs(codecs.create(_spec(models, renderer="ldm", steps=10, strength=0.1, detail=d))
                      .decode(data).astype(float) - gan).mean() for d in ("start", "vae")}
    assert near["start"] < near["vae"]


def test_default_strength_follows_the_start_picture(models):
    assert codecs.create(_spec(models, renderer="ldm")).strength() == 0.5
    assert codecs.create(_spec(models, renderer="ldm", sdedit_from="colormap")).strength() == 0.7
    assert codecs.create(_spec(models, renderer="ldm", sdedit_from="gan")).strength(has_segmap=False) == 0.7
    assert codecs.create(_spec(models, renderer="ldm", strength=0.45)).strength() == 0.45


def test_strength_above_what_the_unet_was_trained_for_is_refused(models, frame):
    data = codecs.create(_spec(models)).encode(frame)
    with pytest.raises(UsageError, match="trained up to 0.9"):
        codecs.create(_spec(models, renderer="ldm", strength=0.95)).decode(data)


def test_missing_renderer_weights_are_a_clear_error(models, tmp_path):
    with pytest.raises(UsageError, match="diffusion renderer weights not found"):
        codecs.create(f"semantic-gan:segmenter={models / 'seg'}:decoder={models / 'gen'}:renderer=ldm:"
                      f"ldm={tmp_path / 'none'}")
    # a GAN receiver does not need them
    codecs.create(f"semantic-gan:segmenter={models / 'seg'}:decoder={models / 'gen'}:ldm={tmp_path / 'none'}")


def test_renderer_label_table_is_checked(models, frame, tmp_path):
    root = tmp_path / "ldm19"
    save_model(LatentVae.tiny().eval(), root / "vae")
    save_model(LatentUnet.tiny(num_classes=19).eval(), root / "unet")
    data = codecs.create(_spec(models)).encode(frame)
    from semcomp_core.errors import ModelMismatchError

    with pytest.raises(ModelMismatchError):
        codecs.create(f"semantic-gan:segmenter={models / 'seg'}:decoder={models / 'gen'}:renderer=ldm:"
                      f"ldm={root}").decode(data)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "semcomp_core", *args], capture_output=True, text=True, timeout=600)


def test_cli_decode_with_renderer(models, frame, tmp_path):
    from semcomp_core.imageio import load_image, save_png

    save_png(tmp_path / "f.png", frame)
    smc = tmp_path / "f.smc"
    r = _cli("encode", str(tmp_path / "f.png"), "-o", str(smc), "--codec", _spec(models))
    assert r.returncode == 0, r.stderr
    opts = f"decoder={models / 'gen'}:ldm={models / 'ldm'}"
    outs = []
    for name in ("a.png", "b.png"):
        r = _cli("decode", str(smc), "-o", str(tmp_path / name), "--renderer", "ldm", "--steps", "5",
                 "--decoder-options", opts)
        assert r.returncode == 0, r.stderr
        assert "renderer: ldm" in json.loads(r.stdout)["implementation"]
        outs.append(load_image(tmp_path / name))
    assert np.array_equal(outs[0], outs[1])
    r = _cli("decode", str(smc), "-o", str(tmp_path / "v.png"), "--renderer", "ldm", "--steps", "5", "--detail", "vae",
             "--decoder-options", opts)
    assert r.returncode == 0, r.stderr
    assert "detail vae" in json.loads(r.stdout)["implementation"]
    assert not np.array_equal(load_image(tmp_path / "v.png"), outs[0])
    r = _cli("decode", str(smc), "-o", str(tmp_path / "c.png"), "--renderer", "ldm", "--strength", "2",
             "--decoder-options", opts)
    assert r.returncode != 0 and "strength" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = _cli("decode", str(smc), "-o", str(tmp_path / "c.png"), "--renderer", "diffusion")
    assert r.returncode != 0 and "renderer" in r.stderr


def test_cli_renderer_on_a_classic_container_is_refused(tmp_path, frame):
    from semcomp_core.imageio import save_png

    save_png(tmp_path / "f.png", frame)
    r = _cli("encode", str(tmp_path / "f.png"), "-o", str(tmp_path / "f.smc"), "--codec", "jpeg")
    assert r.returncode == 0, r.stderr
    r = _cli("decode", str(tmp_path / "f.smc"), "-o", str(tmp_path / "o.png"), "--renderer", "ldm")
    assert r.returncode != 0 and "no renderer choice" in r.stderr


def test_decoder_stage_takes_the_renderer(models, frame):
    from semcomp_core.pipeline.decoder_stage import DecoderStage

    opts = f"decoder={models / 'gen'}:ldm={models / 'ldm'}:steps=4"
    stage = DecoderStage(decoder_options=opts, renderer="ldm")
    assert stage._receiver["renderer"] == "ldm"
    with pytest.raises(UsageError, match="renderer"):
        stage.configure(renderer="vqgan")
    assert stage._receiver["renderer"] == "ldm"
    data = codecs.create(_spec(models)).encode(frame)
    via_stage = codecs.decode(data, receiver=stage._receiver)
    direct = codecs.create(_spec(models, renderer="ldm", steps=4)).decode(data)
    assert np.array_equal(via_stage, direct)
    assert stage.diagnostics("decoder") is not None


def test_onnxruntime_backend_matches_torch(models, frame):
    pytest.importorskip("onnxruntime")
    data = codecs.create(_spec(models)).encode(frame)
    a = codecs.create(_spec(models, renderer="ldm", steps=4)).decode(data)
    b = codecs.create(_spec(models, renderer="ldm", steps=4, backend="onnxruntime")).decode(data)
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 3


def test_export_covers_the_diffusion_networks_with_parity(models, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from semcomp_core.cli.main import main

    assert main(["export", "--codec", _spec(models, renderer="ldm"), "--out", str(tmp_path)]) == 0
    rows = {r["network"]: r for r in map(json.loads, capsys.readouterr().out.strip().splitlines())}
    assert {"vae-encoder", "vae-decoder", "ldm-unet"} <= set(rows)
    for kind in ("vae-encoder", "vae-decoder", "ldm-unet"):
        assert rows[kind]["max_abs_error"] < 2e-3 and "bundled_frame" in rows[kind]["checked"]
        side = json.loads((tmp_path / f"{kind}.json").read_text())
        assert side["kind"] == kind
