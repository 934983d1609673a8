"""semantic-gan codec with tiny locally-built models: layers, levels, determinism, strict decoding."""
import zlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from semcomp_core import codecs  # noqa: E402
from semcomp_core.bitstream import CodecId, LayerId, pack, unpack  # noqa: E402
from semcomp_core.codecs.semantic import map_factor_from_shape  # noqa: E402
from semcomp_core.codecs.semantic_levels import LEVELS  # noqa: E402
from semcomp_core.errors import BitstreamError, UsageError  # noqa: E402
from semcomp_core.layers import SegMapLayer  # noqa: E402
from semcomp_core.models import DDRNetSeg, SPADEGenerator, save_model  # noqa: E402


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    save_model(DDRNetSeg.tiny(num_classes=11).eval(), root / "seg")
    save_model(SPADEGenerator.tiny(num_classes=11).eval(), root / "gen")
    return f"segmenter={root / 'seg'}:roi=none:decoder={root / 'gen'}"  # random weights: all uncertain



def test_roundtrip_every_level(sample_image, tiny_models):
    sizes = []
    for level in range(len(LEVELS)):
        c = codecs.create(f"semantic-gan:level={level}:{tiny_models}")
        data = c.encode(sample_image)
        cont = unpack(data)
        assert cont.codec_id == CodecId.SEMANTIC_GAN
        assert [lid for lid, _ in cont.layers] == [LayerId.DECODER_PARAMS, LayerId.SEGMAP, LayerId.COLORMAP]
        out = codecs.create(f"semantic-gan:{tiny_models}").decode(data)
        assert out.shape == sample_image.shape and out.dtype == np.uint8
        sizes.append(len(data))
    assert sizes[0] < sizes[-1]
    assert max(sizes) < 1000


def test_level_names_and_quality_param(tiny_models):
    c = codecs.create(f"semantic-gan:level=xs:{tiny_models}")
    assert c.config["level"] == 0 and c.quality_param == "level"
    with pytest.raises(UsageError):
        codecs.create(f"semantic-gan:level=9:{tiny_models}")


def test_decoding_is_deterministic_per_seed(sample_image, tiny_models):
    data = codecs.create(f"semantic-gan:{tiny_models}").encode(sample_image[:96, :128])
    a = codecs.create(f"semantic-gan:{tiny_models}").decode(data)
    b = codecs.create(f"semantic-gan:{tiny_models}").decode(data)
    data5 = codecs.create(f"semantic-gan:seed=5:{tiny_models}").encode(sample_image[:96, :128])
    c = codecs.create(f"semantic-gan:{tiny_models}").decode(data5)
    assert np.array_equal(a, b)
    assert data5 != data and len(data5) == len(data)   # the seed travels in the container
    assert not np.array_equal(a, c)


def test_receiver_renders_the_encoders_seed_whatever_its_own_config(sample_image, tiny_models):
    """semcomp decode, the bench and decoder_node all go through codecs.decoder_for: same pixels."""
    from semcomp_core.bench.runner import BenchRunner
    from semcomp_core.layers import DecoderParamsLayer
    from semcomp_core.pipeline import DecoderStage

    enc = codecs.create(f"semantic-gan:seed=5:{tiny_models}")
    data = enc.encode(sample_image[:96, :128])
    assert DecoderParamsLayer().decode(unpack(data).layer(LayerId.DECODER_PARAMS)).seed == 5
    dec_opts = "decoder=" + tiny_models.split("decoder=")[1]  # the receiver's own choice
    via_receiver = codecs.decode(data, receiver=dec_opts)
    via_bench = BenchRunner.receive(enc, data)
    via_stage = DecoderStage(decoder_options=dec_opts).decode(data, None).image
    via_other_instance = codecs.create(f"semantic-gan:seed=9:{tiny_models}").decode(data)
    for other in (via_bench, via_stage, via_other_instance):
        assert np.array_equal(via_receiver, other)


def test_wire_label_has_no_local_paths(tiny_models):
    c = codecs.create(f"semantic-gan:seed=5:{tiny_models}")
    assert c.wire_label() == "semantic-gan:level=1:seed=5:roi=none"
    assert "decoder=" in c.label()
    assert c.receiver_config() == {"decoder": tiny_models.split("decoder=")[1], "backend": "torch", "temporal": "hold",
                                  "render_pixels": 480 * 360, "renderer": "gan", "ldm": "default", "steps": 20,
                                  "strength": 0.0, "sdedit_from": "gan", "eta": 0.0, "guidance": 8.0,
                                  "detail": "start"}
    with pytest.raises(UsageError, match="not a receiver option"):
        codecs.decode(b"", receiver="seed=3")


def test_decoder_trained_on_another_label_table_is_refused(sample_image, tiny_models, tmp_path):
    from semcomp_core.errors import ModelMismatchError

    names = [f"class{i}" for i in range(11)]
    gen = SPADEGenerator(**dict(SPADEGenerator.tiny(num_classes=11).config, class_names=names)).eval()
    save_model(gen, tmp_path / "other")
    data = codecs.create(f"semantic-gan:{tiny_models}").encode(sample_image[:64, :96])
    with pytest.raises(ModelMismatchError, match="label table"):
        codecs.decode(data, receiver=f"decoder={tmp_path / 'other'}")
    from semcomp_core.pipeline import DecoderStage
    stage = DecoderStage(decoder_options=f"decoder={tmp_path / 'other'}")
    assert stage.decode(data, None) is None and stage.counters["mismatch"] == 1


def test_version_1_containers_still_decode_with_seed_0(sample_image, tiny_models):
    from semcomp_core.bitstream.container import Container

    c = codecs.create(f"semantic-gan:{tiny_models}")
    v2 = unpack(c.encode(sample_image[:64, :96]))
    v1 = Container(v2.codec_id, v2.height, v2.width, tuple(x for x in v2.layers if x[0] != LayerId.DECODER_PARAMS),
                   version=1)
    assert np.array_equal(c.reconstruct(v1), c.reconstruct(v2))
    v2_missing = Container(v1.codec_id, v1.height, v1.width, v1.layers, version=2)
    with pytest.raises(BitstreamError, match="missing layer"):
        c.reconstruct(v2_missing)


def test_odd_frame_sizes(sample_image, tiny_models):
    crop = sample_image[:67, :101]
    c = codecs.create(f"semantic-gan:{tiny_models}")
    assert c.decode(c.encode(crop)).shape == (67, 101, 3)


def test_map_factor_recovery():
    assert map_factor_from_shape(45, 60, 360, 480) == 8
    assert map_factor_from_shape(23, 30, 360, 480) == 16
    with pytest.raises(BitstreamError):
        map_factor_from_shape(44, 60, 360, 480)


def test_class_count_mismatch_is_a_bitstream_error(sample_image, tiny_models):
    data = codecs.create(f"semantic-gan:{tiny_models}").encode(sample_image)
    cont = unpack(data)
    bad_seg = SegMapLayer(num_classes=30).encode(np.full((45, 60), 25, np.uint8))
    forged = pack(CodecId.SEMANTIC_GAN, 360, 480, [(LayerId.DECODER_PARAMS, cont.layer(LayerId.DECODER_PARAMS)),
                                                    (LayerId.SEGMAP, bad_seg), (LayerId.COLORMAP, cont.layer(2))])
    with pytest.raises(BitstreamError, match="classes"):
        codecs.create(f"semantic-gan:{tiny_models}").decode(forged)


def test_mutated_semantic_containers(sample_image, tiny_models):
    c = codecs.create(f"semantic-gan:{tiny_models}")
    data = c.encode(sample_image[:64, :96])
    rng = np.random.default_rng(3)
    for _ in range(150):
        body = bytearray(data[:-4])
        i = int(rng.integers(4, len(body)))
        body[i] = int(rng.integers(256))
        forged = bytes(body) + zlib.crc32(body).to_bytes(4, "big")
        try:
            out = c.decode(forged)
        except BitstreamError:
            continue
        cont = unpack(forged)
        assert out.shape == (cont.height, cont.width, 3)


def test_missing_weights_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="weights not found"):
        codecs.create(f"semantic-gan:segmenter={tmp_path}:decoder={tmp_path}")


def test_huge_claims_are_refused_before_decoding(tiny_models):
    import time

    from semcomp_core.layers import ColorMapLayer, DecoderParams, DecoderParamsLayer

    col = ColorMapLayer().encode(np.zeros((6, 8, 3), np.uint8))
    codec = codecs.create(f"semantic-gan:{tiny_models}")
    par = (LayerId.DECODER_PARAMS, DecoderParamsLayer().encode(DecoderParams(codec.label_table(codec.generator))))
    # a frame over the render limit
    seg = SegMapLayer(num_classes=11).encode(np.zeros((1024, 1024), np.uint8))
    with pytest.raises(BitstreamError, match="larger than"):
        codec.decode(pack(CodecId.SEMANTIC_GAN, 16384, 16384, [par, (LayerId.SEGMAP, seg), (LayerId.COLORMAP, col)]))
    # a map claiming full resolution (factor 1) of a large frame: refused from its header alone
    forged = bytes([1, 10, 0x80, 0x20, 0x80, 0x20]) + b"\x00" * 8  # seg-map header: 4096 x 4096
    t = time.perf_counter()
    with pytest.raises(BitstreamError, match="does not fit"):
        codec.decode(pack(CodecId.SEMANTIC_GAN, 4096, 4096, [par, (LayerId.SEGMAP, forged), (LayerId.COLORMAP, col)]))
    assert time.perf_counter() - t < 1.0


def test_conditioning_one_class_per_pixel_and_smooth_contours():
    from semcomp_core.codecs.semantic import conditioning

    k, f = 4, 8
    small = (np.add.outer(np.arange(12), np.arange(16)) > 13).astype(np.uint8)  # diagonal boundary
    small[0, 0] = k  # "no class" (beyond the alphabet): all-zero one-hot
    H, W = 12 * f - 3, 16 * f - 5  # not multiples of 8 or f
    onehot, color = conditioning(small, f, np.zeros((3, 4, 3), np.uint8), H, W, k)
    assert onehot.shape == (1, k, 96, 128) and color.shape == (1, 3, 96, 128)
    per_pixel = onehot[0].sum(0)
    assert set(per_pixel.unique().tolist()) <= {0.0, 1.0} and per_pixel[0, 0] == 0 and per_pixel[50, 50] == 1
    lab = onehot[0].argmax(0)[: H, : W].numpy()
    # first column of class 1 in every row: nearest upsampling would jump by f every f rows
    first = np.array([np.argmax(row == 1) for row in lab[f:H - f]])
    assert np.abs(np.diff(first)).max() <= f // 2
    assert onehot.is_contiguous(memory_format=torch.channels_last)  # what the generator runs in


def test_large_frames_are_segmented_at_the_working_resolution():
    """A frame 2.5x larger than the training frames is segmented at about 480x360 pixels, so its map
    agrees with the map of the original-size frame far better than a full-resolution segmentation."""
    from PIL import Image

    from semcomp_core.codecs.semantic import working_resolution
    from semcomp_core.imageio import load_image
    from semcomp_core.paths import SAMPLES_DIR

    image = load_image(SAMPLES_DIR / "images" / "0016E5_08107.png")
    big = np.asarray(Image.fromarray(image).resize((1200, 900), Image.BICUBIC))
    assert working_resolution(big, 480 * 360).shape == (360, 480, 3)
    assert working_resolution(image, 480 * 360) is image
    assert working_resolution(big, 0) is big
    reference = codecs.create("semantic-gan").segment(image, 8)                   # 45 x 60 cells
    work = codecs.create("semantic-gan").segment(big, 20)
    full = codecs.create("semantic-gan:seg_pixels=0").segment(big, 20)
    assert work.shape == full.shape == reference.shape
    assert (work == reference).mean() > (full == reference).mean() + 0.05
    assert (work == reference).mean() > 0.9


def test_large_frames_are_painted_at_the_working_resolution_and_upscaled():
    """The receiver paints a 1200x900 frame at about 480x360 pixels and upscales it: the result is
    the upscaled painting of the same map (not a full-size painting), at the frame's size."""
    from PIL import Image

    from semcomp_core.imageio import load_image
    from semcomp_core.paths import SAMPLES_DIR

    image = load_image(SAMPLES_DIR / "images" / "0016E5_08107.png")
    big = np.asarray(Image.fromarray(image).resize((1200, 900), Image.BICUBIC))
    data = codecs.create("semantic-gan").encode(big)
    cls = codecs.CODECS.get("semantic-gan")
    small = codecs.receiver_instance(cls).decode(data)
    full = codecs.receiver_instance(cls, receiver={"render_pixels": 0}).decode(data)
    assert small.shape == full.shape == (900, 1200, 3)
    # an upscaled painting is smooth: far less high-frequency energy than a full-size painting
    def detail(x):
        return np.abs(np.diff(x.astype(np.int16), axis=1)).mean()
    assert detail(small) < 0.8 * detail(full)
    assert codecs.decode(data, receiver="render_pixels=0").shape == (900, 1200, 3)
