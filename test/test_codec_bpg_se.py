"""bpg-se: BPG base picture + seg map, enhanced by a network at the receiver (tiny networks built here)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("pillow_heif")

from semcomp_core import codecs  # noqa: E402
from semcomp_core.bitstream import CodecId, LayerId, pack, truncate, unpack  # noqa: E402
from semcomp_core.errors import BitstreamError, ModelMismatchError  # noqa: E402
from semcomp_core.layers import EnhanceParams, EnhanceParamsLayer  # noqa: E402
from semcomp_core.models import save_model  # noqa: E402
from semcomp_core.models.enhancer import Enhancer  # noqa: E402

CAMVID = ["Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car", "Pedestrian",
          "Bicyclist"]


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    root = tmp_path_factory.mktemp("bpgse")
    torch.manual_seed(0)
    identity = Enhancer.tiny(11, CAMVID)                 # zero output layer: the base picture unchanged
    save_model(identity, root / "identity")
    active = Enhancer.tiny(11, CAMVID)
    with torch.no_grad():
        for p in active.out.parameters():
            p.normal_(0, 0.05)
    save_model(active, root / "active")
    other = Enhancer.tiny(11, [f"c{i}" for i in range(11)])
    save_model(other, root / "other")
    return root


@pytest.fixture(scope="module")
def small(sample_image):
    return np.ascontiguousarray(sample_image[::3, ::3])          # 160x120


def _codec(nets, which="active", **kw):
    return codecs.create("bpg-se", enhancer=str(nets / which), **kw)


def test_layers_order_and_the_base_is_bpgs_own_payload(nets, small):
    data = _codec(nets, q=45).encode(small)
    c = unpack(data)
    assert c.codec_id == CodecId.BPG_SE
    assert c.layer_ids == [LayerId.IMAGE, LayerId.ENHANCE_PARAMS, LayerId.SEGMAP]
    bpg = unpack(codecs.create("bpg", q=45, impl="x265").encode(small))
    assert c.layer(LayerId.IMAGE) == bpg.layer(LayerId.IMAGE)      # the very bytes bpg sends
    assert EnhanceParamsLayer().decode(c.layer(LayerId.ENHANCE_PARAMS)).q == 45
    assert len(data) > len(codecs.create("bpg", q=45, impl="x265").encode(small))   # the map is paid for


def test_round_trip_applies_the_network_and_is_deterministic(nets, small):
    data = _codec(nets, q=45).encode(small)
    base = codecs.create("bpg", q=45, impl="x265")
    plain = base.decode(base.encode(small))
    ident = codecs.decode(data, receiver={"enhancer": str(nets / "identity")})
    assert np.array_equal(ident, plain)                             # zero residual = BPG picture
    out = codecs.decode(data, receiver={"enhancer": str(nets / "active")})
    assert out.shape == small.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - plain).mean() > 0.5             # the network really ran
    assert np.array_equal(out, codecs.decode(data, receiver={"enhancer": str(nets / "active")}))


def test_labels_change_the_result(nets, small):
    """The seg map reaches the network: the same base with another map enhances differently."""
    codec = _codec(nets, q=45)
    base = codec.decode(truncate(codec.encode(small), keep_layers=1))
    labels = np.zeros((8, 10), np.uint8)
    a = codec.enhance(base, labels, 16, 45)
    b = codec.enhance(base, labels + 3, 16, 45)
    none = codec.enhance(base, None, 16, 45)
    assert not np.array_equal(a, b) and not np.array_equal(a, none)
    assert not np.array_equal(codec.enhance(base, labels, 16, 51), a)   # and so does q


def test_every_cut_decodes(nets, small):
    codec = _codec(nets, q=47)
    data = codec.encode(small)
    base = codecs.create("bpg", q=47, impl="x265")
    plain = base.decode(base.encode(small))
    after_image = truncate(data, keep_layers=1)
    assert np.array_equal(codec.decode(after_image), plain)        # cut after the base: plain BPG
    no_map = codec.decode(truncate(data, keep_layers=2))           # enhanced without labels
    assert no_map.shape == small.shape and not np.array_equal(no_map, plain)


def test_scale_8_sends_a_finer_map(nets, small):
    coarse = unpack(_codec(nets, q=45, scale=16).encode(small)).layer(LayerId.SEGMAP)
    fine_data = _codec(nets, q=45, scale=8).encode(small)
    assert len(unpack(fine_data).layer(LayerId.SEGMAP)) > len(coarse)
    assert codecs.decode(fine_data, receiver={"enhancer": str(nets / "active")}).shape == small.shape


def test_label_table_mismatch_is_refused(nets, small):
    data = _codec(nets, q=45).encode(small)
    with pytest.raises(ModelMismatchError, match="label table"):
        codecs.decode(data, receiver={"enhancer": str(nets / "other")})


def test_enhance_params_layer_is_strict():
    layer = EnhanceParamsLayer()
    assert layer.decode(layer.encode(EnhanceParams(0xBEEF, 51))) == EnhanceParams(0xBEEF, 51)
    for bad in (b"", b"\x00\x01", b"\x00\x01\x02\x03", b"\x00\x01\x34"):   # short, long, q = 52
        with pytest.raises(BitstreamError):
            layer.decode(bad)
    with pytest.raises(ValueError):
        layer.encode(EnhanceParams(1, 52))


def test_bad_containers_are_bitstream_errors(nets, small):
    codec = _codec(nets, q=45)
    c = unpack(codec.encode(small))
    image, params, seg = (p for _, p in c.layers)
    cases = [
        [(LayerId.IMAGE, image), (LayerId.SEGMAP, seg)],                              # params missing
        [(LayerId.IMAGE, image), (LayerId.ENHANCE_PARAMS, params)],                   # map missing (not cut)
        [(LayerId.IMAGE, image), (LayerId.ENHANCE_PARAMS, params), (LayerId.SEGMAP, seg), (LayerId.SEGMAP, seg)],
        [(LayerId.IMAGE, image), (LayerId.ENHANCE_PARAMS, params), (LayerId.COLORMAP, b"\x00")],
        [(LayerId.ENHANCE_PARAMS, params), (LayerId.SEGMAP, seg)],                    # no base picture
    ]
    for layers in cases:
        with pytest.raises(BitstreamError):
            codec.decode(pack(CodecId.BPG_SE, c.height, c.width, layers))
    wrong_map = codecs.create("bpg-se", enhancer=str(nets / "active"), q=45).encode(small[:64, :64])
    layers = [(LayerId.IMAGE, image), (LayerId.ENHANCE_PARAMS, params),
              (LayerId.SEGMAP, unpack(wrong_map).layer(LayerId.SEGMAP))]
    with pytest.raises(BitstreamError, match="seg-map"):
        codec.decode(pack(CodecId.BPG_SE, c.height, c.width, layers))


def test_mutated_containers_decode_or_raise(nets, small):
    from test_fuzz_containers import fuzz_codec

    codec = _codec(nets, q=45)
    seen = fuzz_codec(codec, codec.encode(small), 200, seed=5)
    assert seen["rejected"] > 50 and seen["decoded"] > 0


def test_onnx_export_matches_torch(nets, small, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("SEMCOMP_CACHE", str(tmp_path / "cache"))
    data = _codec(nets, q=45).encode(small)
    a = codecs.decode(data, receiver={"enhancer": str(nets / "active")})
    b = codecs.decode(data, receiver={"enhancer": str(nets / "active"), "backend": "onnxruntime"})
    assert np.abs(a.astype(int) - b).max() <= 1
