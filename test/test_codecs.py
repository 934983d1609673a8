"""Codec contract, registry, specs and the classic baselines."""
import numpy as np
import pytest

from semcomp_core import codecs
from semcomp_core.bitstream import CodecId, LayerId, bits_per_pixel, pack, unpack
from semcomp_core.codecs.base import Codec
from semcomp_core.errors import BitstreamError, RegistryError, UsageError
from semcomp_core.metrics import psnr


def test_registry_lists_baselines_and_rejects_duplicates():
    assert {"jpeg", "webp", "bpg"} <= set(codecs.available())
    with pytest.raises(RegistryError):
        codecs.register_codec(codecs.CODECS.get("jpeg"))


def test_codec_ids_are_fixed_numbers():
    assert (CodecId.JPEG, CodecId.WEBP, CodecId.BPG_FILE, CodecId.HEVC_INTRA, CodecId.SEMANTIC_GAN) == (1, 2, 3, 4, 16)
    assert (LayerId.SEGMAP, LayerId.COLORMAP, LayerId.IMAGE) == (1, 2, 16)


@pytest.mark.parametrize("spec", ["jpeg:quality=20", "webp:quality=20"])
def test_classic_roundtrip(sample_image, spec):
    codec = codecs.create(spec)
    data = codec.encode(sample_image)
    out = codecs.decode(data)
    assert out.shape == sample_image.shape and out.dtype == np.uint8
    assert psnr(sample_image, out) > 25
    c = unpack(data)
    assert (c.height, c.width) == sample_image.shape[:2]
    assert bits_per_pixel(len(data), *sample_image.shape[:2]) == 8 * len(data) / (360 * 480)


def test_quality_changes_bytes(sample_image):
    a = len(codecs.create("jpeg:quality=5").encode(sample_image))
    b = len(codecs.create("jpeg:quality=60").encode(sample_image))
    assert a < b


def test_odd_sizes_and_gray_input(sample_image):
    crop = sample_image[:67, :101]
    for name in ("jpeg", "webp"):
        assert codecs.decode(codecs.create(name).encode(crop)).shape == (67, 101, 3)
    gray = sample_image[:, :, 0]
    assert codecs.decode(codecs.create("jpeg").encode(gray)).shape == (360, 480, 3)


def test_payload_size_must_match_header(sample_image):
    data = codecs.create("jpeg").encode(sample_image)
    payload = unpack(data).layer(LayerId.IMAGE)
    lying = pack(CodecId.JPEG, 100, 100, [(LayerId.IMAGE, payload)])
    with pytest.raises(BitstreamError, match="header says"):
        codecs.decode(lying)


def test_wrong_codec_instance_refuses(sample_image):
    data = codecs.create("jpeg").encode(sample_image)
    with pytest.raises(BitstreamError):
        codecs.create("webp").decode(data)


def test_params_are_validated():
    with pytest.raises(UsageError, match="outside"):
        codecs.create("jpeg:quality=0")
    with pytest.raises(UsageError, match="no parameter"):
        codecs.create("jpeg:q=10")
    with pytest.raises(UsageError):
        codecs.create("jpeg:quality=abc")
    with pytest.raises(UsageError):
        codecs.create("jpeg", device="tpu")
    with pytest.raises(RegistryError):
        codecs.create("nope")


def test_spec_sweeps():
    specs = codecs.parse_spec_list("bpg:q=35..51/4,jpeg:quality=5|20,webp")
    labels = [s.label() for s in specs]
    assert labels == ["bpg:q=35", "bpg:q=39", "bpg:q=43", "bpg:q=47", "bpg:q=51",
                      "jpeg:quality=5", "jpeg:quality=20", "webp"]
    for bad in ("", "bpg:q", "bpg:q=51..35", "bpg:q=1..2/0", ":q=3", "bpg:q=1:q=2"):
        with pytest.raises(UsageError):
            codecs.parse_spec_list(bad)


def test_label_roundtrips_through_create():
    c = codecs.create("webp:quality=7")
    assert c.label() == "webp:quality=7"
    assert codecs.create(c.label()).config == c.config


def test_image_validation():
    with pytest.raises(UsageError):
        codecs.create("jpeg").encode(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(UsageError):
        codecs.create("jpeg").encode(np.zeros((4, 4, 3), np.float32))
    assert issubclass(codecs.CODECS.get("jpeg"), Codec)
