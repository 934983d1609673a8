"""gc: learned latent + learned prior (constriction) + GAN decoder, no semantics (tiny networks built here)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from semcomp_core import codecs  # noqa: E402
from semcomp_core.bitstream import CodecId, LayerId, pack, unpack  # noqa: E402
from semcomp_core.codecs.gc import LEVEL_CHANNELS  # noqa: E402
from semcomp_core.errors import BitstreamError, ModelMismatchError  # noqa: E402
from semcomp_core.layers import LatentLayer  # noqa: E402
from semcomp_core.layers.latent import R, model_tag  # noqa: E402
from semcomp_core.models import save_model  # noqa: E402
from semcomp_core.models.gc import GcDecoder, GcEncoder, channel_mask, rate_bits  # noqa: E402


def _pair(root, name, seed, channels=12):
    torch.manual_seed(seed)
    enc = GcEncoder(channels, widths=(4, 4, 4, 8), blocks=1)
    dec = GcDecoder(channels, widths=(8, 4, 4, 4), blocks=1)
    with torch.no_grad():
        enc.net[-1].weight.mul_(40)                       # a young latent would round to nothing
        dec.prior_log_scale.uniform_(-1, 2)
        dec.prior_mean.uniform_(-0.5, 0.5)
    enc.copy_prior(dec)
    save_model(enc, root / name / "enc")
    save_model(dec, root / name / "dec")
    return root / name


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    root = tmp_path_factory.mktemp("gc")
    return _pair(root, "a", 0), _pair(root, "b", 1)


@pytest.fixture(scope="module")
def small(sample_image):
    return np.ascontiguousarray(sample_image[::3, ::3])          # 160x120 -> latent 8x10


def _codec(pair, **kw):
    return codecs.create("gc", gc_encoder=str(pair / "enc"), gc_decoder=str(pair / "dec"), **kw)


def test_round_trip_is_deterministic_and_levels_order_bytes(nets, small):
    a, _ = nets
    sizes = []
    for level in range(len(LEVEL_CHANNELS)):
        data = _codec(a, level=level).encode(small)
        c = unpack(data)
        assert c.codec_id == CodecId.GC and c.layer_ids == [LayerId.LATENT]
        assert LatentLayer.peek(c.layer(LayerId.LATENT))[0] == LEVEL_CHANNELS[level]
        out = codecs.decode(data, receiver={"gc_decoder": str(a / "dec")})
        assert out.shape == small.shape and out.dtype == np.uint8
        assert np.array_equal(out, codecs.decode(data, receiver={"gc_decoder": str(a / "dec")}))
        sizes.append(len(data))
    assert sizes == sorted(sizes) and sizes[-1] > sizes[0]


def test_decoded_symbols_are_what_the_encoder_quantised(nets, small):
    a, _ = nets
    codec = _codec(a, level=4)
    x = codec.encoder_input(small)
    with torch.no_grad():
        latent = codec.encoder(x)[0].numpy()
    mean, layer = codec.prior(codec.decoder)
    want = np.clip(np.rint(latent - mean[:, None, None]), -R, R).astype(np.int32)
    got = layer.decode(unpack(codec.encode(small)).layer(LayerId.LATENT), want.shape[1:])
    assert np.array_equal(got, want) and np.abs(want).max() > 0


def test_receiver_with_another_prior_refuses(nets, small):
    a, b = nets
    data = _codec(a).encode(small)
    with pytest.raises(ModelMismatchError, match="model tag"):
        codecs.decode(data, receiver={"gc_decoder": str(b / "dec")})


def test_latent_layer_round_trip_and_strictness():
    scales = [0.3, 1.0, 4.0, 20.0]
    layer = LatentLayer(scales)
    rng = np.random.default_rng(0)
    sym = np.rint(rng.normal(0, 1, (4, 5, 7)) * np.array(scales)[:, None, None]).astype(np.int32)
    sym[3, 0, 0] = 500                                         # beyond the support: clipped to R
    payload = layer.encode(sym)
    got = layer.decode(payload, (5, 7))
    want = np.clip(sym, -R, R)
    assert np.array_equal(got, want)
    assert layer.decode(layer.encode(sym[:2]), (5, 7)).shape == (2, 5, 7)   # fewer channels sent
    for bad in (b"", b"\x01\x00", bytes([0]) + payload[1:], bytes([5]) + payload[1:], payload + b"\x07" * 8):
        with pytest.raises(BitstreamError):
            layer.decode(bad, (5, 7))
    with pytest.raises(BitstreamError, match="model tag"):
        LatentLayer([0.3, 1.0, 4.0, 21.0]).decode(payload, (5, 7))
    assert model_tag(scales) == model_tag([0.30001, 1.0, 4.0, 20.0])   # coding scales are rounded
    with pytest.raises(ValueError):
        layer.encode(np.zeros((5, 2, 2), np.int32))


def test_bad_containers_are_bitstream_errors(nets, small):
    a, _ = nets
    codec = _codec(a)
    c = unpack(codec.encode(small))
    lat = c.layer(LayerId.LATENT)
    for layers in ([], [(LayerId.LATENT, lat), (LayerId.LATENT, lat)], [(LayerId.SEGMAP, lat)]):
        with pytest.raises(BitstreamError):
            codec.decode(pack(CodecId.GC, c.height, c.width, layers))
    with pytest.raises(BitstreamError):                           # symbols for another frame size
        codec.decode(pack(CodecId.GC, c.height * 2, c.width, [(LayerId.LATENT, lat)]))


def test_mutated_containers_decode_or_raise(nets, small):
    from test_fuzz_containers import fuzz_codec

    a, _ = nets
    codec = _codec(a, level=2)
    seen = fuzz_codec(codec, codec.encode(small), 300, seed=7)
    assert seen["rejected"] > 50 and seen["decoded"] > 0


def test_large_frames_are_coded_at_the_working_size(nets, sample_image):
    a, _ = nets
    big = np.ascontiguousarray(np.repeat(np.repeat(sample_image[::2, ::2], 3, 0), 3, 1))   # 540x720
    codec = _codec(a)
    data = codec.encode(big)
    c = unpack(data)
    assert (c.height, c.width) == (540, 720) and codec.coded_size(540, 720) == (360, 480)
    assert LatentLayer.peek(c.layer(LayerId.LATENT))[0] == LEVEL_CHANNELS[1]
    out = codecs.decode(data, receiver={"gc_decoder": str(a / "dec")})
    assert out.shape == big.shape


def test_rate_model_and_channel_mask():
    mask = channel_mask((2, 4, 1, 1), torch.tensor([1, 3]))
    assert mask[:, :, 0, 0].tolist() == [[1, 0, 0, 0], [1, 1, 1, 0]]
    mean, scale = torch.zeros(1), torch.ones(1)
    near = rate_bits(torch.zeros(1, 1, 1, 1), mean, scale)
    far = rate_bits(torch.full((1, 1, 1, 1), 4.0), mean, scale)
    assert 0.5 < float(near) < 2.0 and float(far) > 8.0
    # the discretised masses of a channel sum to one: the rate is a real code length
    grid = torch.arange(-30, 31).float().view(1, 1, 1, -1)
    assert abs(float((2.0 ** -rate_bits(grid, mean, torch.full((1,), 3.0))).sum()) - 1.0) < 1e-4


def test_onnx_export_matches_torch(nets, small, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("SEMCOMP_CACHE", str(tmp_path / "cache"))
    a, _ = nets
    data = _codec(a, level=3).encode(small)
    ref = codecs.decode(data, receiver={"gc_decoder": str(a / "dec")})
    ort = codecs.decode(data, receiver={"gc_decoder": str(a / "dec"), "backend": "onnxruntime"})
    assert np.abs(ref.astype(int) - ort).max() <= 1
    ort_data = _codec(a, level=3, backend="onnxruntime").encode(small)
    assert abs(len(ort_data) - len(data)) <= 4          # rounding ties may differ, the rate does not
