"""The CLIP layer (product-quantised open_clip image embedding) and the ``clip`` codec, on a tiny open_clip
tower built here (no weights can be downloaded)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")

from semcomp_core import codecs  # noqa: E402
from semcomp_core.bitstream import CodecId, LayerId, pack, unpack  # noqa: E402
from semcomp_core.errors import BitstreamError, ModelMismatchError, UsageError  # noqa: E402
from semcomp_core.layers.clip import ClipLayer, quantiser_tag  # noqa: E402
from semcomp_core.models import DDRNetSeg, SPADEGenerator, load_model, save_model  # noqa: E402
from semcomp_core.models.clip_tower import ClipTower, tiny_kwargs  # noqa: E402

from test_ldm_renderer import make_ldm  # noqa: E402


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("clip")
    torch.manual_seed(0)
    save_model(DDRNetSeg.tiny(num_classes=11).eval(), root / "seg")
    save_model(SPADEGenerator.tiny(num_classes=11).eval(), root / "gen")
    make_ldm(root / "ldm", embed_dim=16, clip=True)
    make_ldm(root / "other", seed=1, embed_dim=16, clip=True)    # other codebooks
    return root


@pytest.fixture(scope="module")
def frame(sample_image):
    return np.ascontiguousarray(sample_image[:96, :128])


def _spec(models, **kw):
    kw.setdefault("bytes", 8)
    extra = "".join(f":{k}={v}" for k, v in kw.items())
    return (f"clip:segmenter={models / 'seg'}:decoder={models / 'gen'}:ldm={models / 'ldm'}:"
            f"clip={models / 'ldm' / 'clip'}:steps=4{extra}")


def test_tower_embeds_and_product_quantises():
    tower = ClipTower.tiny().eval()
    x = torch.rand(6, 3, 40, 56) * 255
    with torch.no_grad():
        e = tower(x)
    assert e.shape == (6, 16)
    assert torch.allclose(e.norm(dim=-1), torch.full((6,), 4.0), atol=1e-4)       # sqrt(dim)
    errors = tower.fit_pq(torch.randn(400, 16))
    assert errors[4] > errors[8] > errors[16] >= 0           # more bytes, less quantisation error
    assert errors[16] < 0.05
    codes = tower.quantise(e, 8)
    assert codes.shape == (6, 8) and codes.dtype == torch.uint8
    back = tower.dequantise(codes, 8)
    assert back.shape == e.shape
    with pytest.raises(ValueError):
        tower.quantise(e, 5)


def test_tower_config_and_codebooks_survive_save_load(tmp_path):
    tower = ClipTower.tiny().eval()
    tower.fit_pq(torch.randn(300, 16))
    save_model(tower, tmp_path / "t")
    back = load_model(tmp_path / "t")
    assert back.config == tower.config
    assert torch.equal(back.codebook(8), tower.codebook(8))
    x = torch.rand(2, 3, 32, 32) * 255
    with torch.no_grad():
        assert torch.allclose(back(x), tower(x))


def test_pretrained_path_loads_a_local_open_clip_checkpoint(tmp_path):
    """The users' path: open_clip.create_model(name, pretrained=<checkpoint file>) -- here a tiny CLIP
    saved by the test stands in for downloaded weights."""
    kw = tiny_kwargs(16, 16)
    torch.manual_seed(3)
    src = open_clip.create_model("ViT-B-32", pretrained=None, **kw).eval()
    ckpt = tmp_path / "tiny_clip.pt"
    torch.save({"state_dict": src.state_dict()}, ckpt)
    tower = ClipTower(model_name="ViT-B-32", pretrained=str(ckpt), model_kwargs=kw, image_size=32, embed_dim=16,
                      pq_bytes=(4,)).eval()
    fresh = ClipTower(model_name="ViT-B-32", pretrained=None, model_kwargs=kw, image_size=32, embed_dim=16,
                      pq_bytes=(4,)).eval()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        want = src.visual((x * 255 - tower.mean) / tower.std)
        got = tower.visual((x * 255 - tower.mean) / tower.std)
        other = fresh.visual((x * 255 - tower.mean) / tower.std)
    assert torch.allclose(got, want, atol=1e-5)
    assert not torch.allclose(other, want, atol=1e-3)


def test_clip_layer_round_trip_and_strict_parsing():
    tags = {4: 0x1234, 8: 0xBEEF}
    layer = ClipLayer(tags)
    codes = np.arange(8, dtype=np.uint8) * 30
    payload = layer.encode(codes)
    assert len(payload) == 10 and payload[:2] == b"\xbe\xef"
    assert np.array_equal(layer.decode(payload), codes)
    with pytest.raises(ModelMismatchError):
        layer.decode(b"\x00\x01" + codes.tobytes())
    with pytest.raises(BitstreamError):
        layer.decode(payload + b"\x00")             # 9 code bytes: no such quantiser
    with pytest.raises(BitstreamError):
        layer.decode(b"\x12")
    with pytest.raises(ValueError):
        layer.encode(np.zeros(5, np.uint8))
    assert quantiser_tag(np.ones((2, 3))) == quantiser_tag(np.ones((2, 3)))
    assert quantiser_tag(np.ones((2, 3))) != quantiser_tag(np.full((2, 3), 1.001))


def test_clip_codec_round_trip(models, frame):
    for nbytes in (4, 8, 16):
        c = codecs.create(_spec(models, bytes=nbytes))
        data = c.encode(frame)
        cont = unpack(data)
        assert cont.codec_id == CodecId.CLIP
        assert cont.layer_ids == [LayerId.DECODER_PARAMS, LayerId.CLIP, LayerId.COLORMAP]
        assert len(cont.layer(LayerId.CLIP)) == nbytes + 2
        out = codecs.decode(data, receiver={"ldm": str(models / "ldm"), "steps": "4"})
        assert out.shape == frame.shape and out.dtype == np.uint8
        assert np.array_equal(out, codecs.decode(data, receiver={"ldm": str(models / "ldm"), "steps": "4"}))


def test_the_embedding_conditions_the_frame(models, frame, sample_image):
    other = np.ascontiguousarray(sample_image[-96:, -128:][::-1])
    a = unpack(codecs.create(_spec(models, bytes=16)).encode(frame))
    b = unpack(codecs.create(_spec(models, bytes=16)).encode(other))
    assert a.layer(LayerId.CLIP) != b.layer(LayerId.CLIP)
    # same colour map, other embedding: another frame
    mixed = pack(CodecId.CLIP, a.height, a.width, [(LayerId.DECODER_PARAMS, a.layer(LayerId.DECODER_PARAMS)),
                                                   (LayerId.CLIP, b.layer(LayerId.CLIP)),
                                                   (LayerId.COLORMAP, a.layer(LayerId.COLORMAP))])
    dec = codecs.create(_spec(models))
    assert not np.array_equal(dec.decode(pack(a.codec_id, a.height, a.width, a.layers)), dec.decode(mixed))


def test_clip_codec_with_seg_map_and_gan_renderer(models, frame):
    data = codecs.create(_spec(models, segmap="on")).encode(frame)
    ids = unpack(data).layer_ids
    assert LayerId.SEGMAP in ids and LayerId.CLIP in ids
    out = codecs.create(_spec(models, renderer="gan")).decode(data)
    assert out.shape == frame.shape
    plain = codecs.create(_spec(models)).encode(frame)
    with pytest.raises(UsageError, match="renderer gan cannot render"):
        codecs.create(_spec(models, renderer="gan")).decode(plain)


def test_other_codebooks_are_refused(models, frame):
    data = codecs.create(_spec(models)).encode(frame)
    with pytest.raises(ModelMismatchError):
        codecs.decode(data, receiver={"ldm": str(models / "other")})


def test_bad_clip_options_and_containers(models, frame):
    with pytest.raises(UsageError, match="quantises to"):
        codecs.create(_spec(models, bytes=5)).encode(frame)
    with pytest.raises(UsageError):
        codecs.create(_spec(models, roi="uncertain"))
    with pytest.raises(UsageError, match="CLIP tower not found"):
        codecs.create(f"clip:ldm={models / 'ldm'}:clip={models / 'nothing'}").encode(frame)
    c = unpack(codecs.create(_spec(models)).encode(frame))
    no_clip = pack(CodecId.CLIP, c.height, c.width, [(lid, p) for lid, p in c.layers if lid != LayerId.CLIP])
    with pytest.raises(BitstreamError, match="without its CLIP layer"):
        codecs.create(_spec(models)).decode(no_clip)
    extra = pack(CodecId.CLIP, c.height, c.width, list(c.layers) + [(LayerId.STRUCTURE, b"\x00")])
    with pytest.raises(BitstreamError, match="do not belong"):
        codecs.create(_spec(models)).decode(extra)
    twice = pack(CodecId.CLIP, c.height, c.width, list(c.layers) + [(LayerId.CLIP, c.layer(LayerId.CLIP))])
    with pytest.raises(BitstreamError, match="more than one"):
        codecs.create(_spec(models)).decode(twice)


def test_a_renderer_without_clip_conditioning_refuses_clip_containers(models, frame, tmp_path):
    make_ldm(tmp_path / "noclip", embed_dim=0, clip=False)
    data = codecs.create(_spec(models)).encode(frame)
    with pytest.raises(UsageError, match="no clip/ tower"):
        codecs.decode(data, receiver={"ldm": str(tmp_path / "noclip")})


def test_export_covers_the_clip_tower(models, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    import json

    from semcomp_core.cli.main import main

    assert main(["export", "--codec", _spec(models), "--out", str(tmp_path)]) == 0
    rows = {r["network"]: r for r in map(json.loads, capsys.readouterr().out.strip().splitlines())}
    assert {"clip-tower", "ldm-unet", "vae-decoder"} <= set(rows)
    assert rows["clip-tower"]["max_abs_error"] < 2e-3
