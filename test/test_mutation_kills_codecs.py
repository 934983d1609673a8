"""Behaviour of semcomp_core.codecs that mutation testing found unpinned (docs/testing/mutation.md):
the codec registry's id table, Param's side check, build()'s quality rule, CodecSpec labels and the
.bpg header reader (BPG spec: magic, two bytes, then ue7(32) width and height).
"""
from __future__ import annotations

import pytest

from semcomp_core import codecs
from semcomp_core.codecs import Codec, CodecSpec, Param, build, codec_class_for_id, register_codec
from semcomp_core.codecs.bpg import bpg_size
from semcomp_core.errors import BitstreamError, RegistryError, UsageError
from semcomp_core.registry import Registry


# --------------------------------------------------------------------------- registry / params

@pytest.fixture
def empty_registry(monkeypatch):
    monkeypatch.setattr(codecs, "CODECS", Registry("codec"))
    monkeypatch.setattr(codecs, "_BY_ID", {})


def _codec_class(name: str, ids: tuple[int, ...]) -> type[Codec]:
    class Dummy(Codec):
        codec_ids = ids

        def encode_layers(self, image):  # pragma: no cover - never called
            raise NotImplementedError

        def decode_container(self, container):  # pragma: no cover - never called
            raise NotImplementedError

    Dummy.name = name
    return Dummy


def test_register_codec_fills_the_name_registry_and_the_id_table(empty_registry):
    a = _codec_class("dummy-a", (200, 201))
    assert register_codec(a) is a
    assert codecs.CODECS.get("dummy-a") is a
    assert codec_class_for_id(200) is a and codec_class_for_id(201) is a
    with pytest.raises(BitstreamError, match="no codec in this build decodes codec id 202"):
        codec_class_for_id(202)
    with pytest.raises(RegistryError, match="codec id 201 of 'dummy-b' already belongs to 'dummy-a'"):
        register_codec(_codec_class("dummy-b", (202, 201)))
    assert "dummy-b" not in codecs.CODECS  # nothing registered by the rejected class


def test_param_side_must_be_encoder_or_receiver():
    assert Param(int, 1, "x").side == "encoder"
    assert Param(str, "", "weights", side="receiver", local=True).side == "receiver"
    with pytest.raises(ValueError, match="Param side must be 'encoder' or 'receiver', got 'sender'"):
        Param(int, 1, "x", side="sender")


def test_build_quality_rule():
    """quality None, empty or negative: the codec's default; 0 is a real quality; text is validated."""
    assert build("bpg", quality=0).config["q"] == 0
    assert build("bpg", quality=-1).config["q"] == 51
    assert build("bpg", quality="-3").config["q"] == 51
    assert build("bpg:q=30", quality=" ").config["q"] == 30
    assert build("webp", quality=0).config["quality"] == 0
    with pytest.raises(UsageError, match="^quality must be an integer, got 'abc'$"):
        build("jpeg", quality="abc")


def test_codec_spec_label_is_the_parseable_text_form():
    assert CodecSpec("bpg").label() == "bpg"
    assert CodecSpec("bpg", {"q": "45", "impl": "x265"}).label() == "bpg:q=45:impl=x265"


# --------------------------------------------------------------------------- .bpg header

def _ue7(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def _header(width_bytes: bytes, height_bytes: bytes = b"") -> bytes:
    return b"BPG\xfb" + b"\x00\x00" + width_bytes + height_bytes


def test_bpg_size_reads_ue7_width_and_height():
    assert _ue7(300) == b"\x82\x2c"
    assert bpg_size(_header(_ue7(300), _ue7(1))) == (300, 1)
    assert bpg_size(_header(_ue7(1), _ue7(300))) == (1, 300)
    assert bpg_size(_header(_ue7(2**32 - 1), _ue7(16384))) == (2**32 - 1, 16384)
    assert bpg_size(_header(_ue7(129), _ue7(2)) + b"trailing picture data") == (129, 2)


@pytest.mark.parametrize("data, message", [
    (b"BPG\xfa\x00\x00\x01\x01", r"^not a BPG file \(wrong magic\)$"),
    (b"BPG\xfb\x00", r"^truncated BPG header$"),
    (b"BPG\xfb\x00\x00", r"^truncated BPG header: picture_width$"),
    (b"BPG\xfb\x00\x00\x82", r"^truncated BPG header: picture_width$"),
    (b"BPG\xfb\x00\x00\x05", r"^truncated BPG header: picture_height$"),
    (b"BPG\xfb\x00\x00\x90\x80\x80\x80\x00\x01", r"^BPG header: picture_width does not fit 32 bits$"),
    (b"BPG\xfb\x00\x00\x80\x80\x80\x80\x80\x01\x01", r"^BPG header: picture_width longer than 5 bytes$"),
    (b"BPG\xfb\x00\x00\x00\x05", r"^BPG header: empty picture 0x5$"),
    (b"BPG\xfb\x00\x00\x05\x00", r"^BPG header: empty picture 5x0$"),
])
def test_bpg_size_rejects_bad_headers_with_a_named_error(data, message):
    with pytest.raises(BitstreamError, match=message):
        bpg_size(data)


# -- survivors of the second run (codecs/spec, base, __init__, classic): behaviour the CLI tests
#    pinned only through subprocesses, which mutmut cannot attribute --------------------------------
def test_spec_syntax_messages_and_sweeps():
    from semcomp_core.codecs import parse_spec, parse_spec_list
    from semcomp_core.errors import UsageError

    with pytest.raises(UsageError, match="empty codec name"):
        parse_spec("  ")
    with pytest.raises(UsageError, match="missing codec name in ':q=3'"):
        parse_spec(":q=3")
    with pytest.raises(UsageError, match=r"bad codec option 'q' in 'bpg:q' \(expected KEY=VALUE\)"):
        parse_spec("bpg:q")
    with pytest.raises(UsageError, match="bad codec option 'q='"):
        parse_spec("bpg:q=")
    with pytest.raises(UsageError, match="bad codec option '=3'"):
        parse_spec("bpg:=3")
    assert parse_spec("x:k=a=b")[0].params == {"k": "a=b"}           # the first '=' splits
    assert parse_spec("jpeg:quality=5..7")[0].params == {"quality": "5..7"}   # no sweeps unless allowed
    with pytest.raises(UsageError, match="empty value in list for 'q': '1||2'"):
        parse_spec("bpg:q=1||2", allow_sweeps=True)
    vals = lambda text: [s.params["q"] for s in parse_spec(f"bpg:q={text}", allow_sweeps=True)]  # noqa: E731
    assert vals("3..5") == ["3", "4", "5"]
    assert vals("1..7/3") == ["1", "4", "7"]
    assert vals("2..2/1") == ["2"]
    with pytest.raises(UsageError, match="need a <= b and a positive step"):
        vals("5..3")
    with pytest.raises(UsageError, match="bad range for 'q': '1..2..3'"):
        vals("1..2..3")
    with pytest.raises(UsageError, match="bad range"):
        vals("1..4/2/1")
    with pytest.raises(UsageError, match="range for 'q' has 1001 values"):
        vals("0..1000")
    assert len(vals("1..1000")) == 1000
    with pytest.raises(UsageError, match="^no codecs given$"):
        parse_spec_list(" , ,")


def test_bool_params_and_coercion_messages():
    from semcomp_core.codecs import Param
    from semcomp_core.errors import UsageError

    p = Param(bool, False, "a switch")
    for text, want in (("1", True), ("TRUE", True), ("Yes", True), ("true", True), ("0", False), ("False", False),
                       ("no", False), ("NO", False)):
        assert p.coerce("x", text) is want
    with pytest.raises(UsageError, match=r"parameter x='maybe' is not a valid bool"):
        p.coerce("x", "maybe")
    with pytest.raises(UsageError, match=r"parameter q=7 outside \[0, 5\]"):
        Param(int, 0, "", low=0, high=5).coerce("q", "7")
    with pytest.raises(UsageError, match=r"parameter m='c' not one of \['a', 'b'\]"):
        Param(str, "a", "", choices=("a", "b")).coerce("m", "c")


def test_unknown_parameter_lists_the_known_ones():
    from semcomp_core import codecs
    from semcomp_core.errors import UsageError

    with pytest.raises(UsageError, match=r"codec 'jpeg' has no parameter 'q' \(parameters: quality\)"):
        codecs.create("jpeg:q=3")


def test_build_options_quality_and_device(monkeypatch):
    from semcomp_core import codecs
    from semcomp_core.codecs import CODECS
    from semcomp_core.errors import UsageError

    c = codecs.build("bpg:q=30", options=":q=40:", quality=None)
    assert c.config["q"] == 40                                    # options win over the spec, ':' trimmed
    assert codecs.build("bpg:q=30", quality="45", options="q=40").config["q"] == 45
    assert codecs.build("bpg", quality=-1).config["q"] == 51      # negative: the codec default
    assert codecs.build("jpeg", device="cuda:1").device == "cuda:1"
    with pytest.raises(UsageError, match="unknown codec 'nope'"):
        codecs.build("nope")

    class NoQuality(Codec):  # a codec without a quality knob, registered for this test only
        name, codec_ids, params = "test-noquality", (), {}

        def encode_layers(self, image):
            raise NotImplementedError

        def decode_container(self, container):
            raise NotImplementedError
    monkeypatch.setitem(CODECS._items, "test-noquality", NoQuality)
    with pytest.raises(UsageError, match="^codec 'test-noquality' has no quality parameter$"):
        codecs.build("test-noquality", quality=3)
    with pytest.raises(UsageError, match=r"has no parameter 'foo' \(parameters: none\)"):
        codecs.build("test-noquality", options="foo=1")


def test_receiver_options_parse_and_trim():
    from semcomp_core.codecs import parse_receiver_options

    assert parse_receiver_options(":decoder=/m:backend=torch:") == {"decoder": "/m", "backend": "torch"}
    assert parse_receiver_options("  ") == {} and parse_receiver_options(None) == {}
    assert parse_receiver_options({"decoder": "x"}) == {"decoder": "x"}


def test_reconstruct_checks_codec_id_and_output_shape():
    import numpy as np

    from semcomp_core.bitstream import Container
    from semcomp_core.codecs import create
    from semcomp_core.errors import BitstreamError

    jpeg = create("jpeg")
    with pytest.raises(BitstreamError, match="codec id 2 cannot be decoded by codec 'jpeg'"):
        jpeg.reconstruct(Container(2, 4, 4, ()))
    data = jpeg.encode(np.zeros((8, 8, 3), np.uint8))
    c = jpeg.__class__.__new__(jpeg.__class__)
    c.__dict__.update(jpeg.__dict__)
    c.decode_container = lambda container: np.zeros((8, 8, 3), np.float32)        # right shape, wrong dtype
    with pytest.raises(BitstreamError, match=r"decoded image has shape \(8, 8, 3\), header says 8x8"):
        c.decode(data)
    c.decode_container = lambda container: np.zeros((8, 7, 3), np.uint8)          # wrong shape, right dtype
    with pytest.raises(BitstreamError, match="header says 8x8"):
        c.decode(data)


def test_classic_encoders_use_their_documented_settings():
    import io

    import numpy as np
    from PIL import Image

    from semcomp_core.bitstream import LayerId, unpack
    from semcomp_core.codecs import create

    rng = np.random.default_rng(0)
    img = (rng.random((64, 64, 3)) * 255).astype(np.uint8)
    jpg = unpack(create("jpeg:quality=30").encode(img)).layer(LayerId.IMAGE)
    with Image.open(io.BytesIO(jpg)) as im:
        assert im.format == "JPEG" and im.layers == 3
        # 4:2:0 subsampling: the chroma sampling factors of the first component are 2x2
        assert im.layer[0][1:3] == (2, 2)
    plain = io.BytesIO()
    Image.fromarray(img).save(plain, "JPEG", quality=30, subsampling=2)
    assert len(jpg) < plain.getbuffer().nbytes                    # optimised Huffman tables
    webp = unpack(create("webp:quality=20").encode(img)).layer(LayerId.IMAGE)
    ref6, ref0 = io.BytesIO(), io.BytesIO()
    Image.fromarray(img).save(ref6, "WEBP", quality=20, method=6)
    Image.fromarray(img).save(ref0, "WEBP", quality=20, method=0)
    assert webp == ref6.getvalue() and webp != ref0.getvalue()


def test_pillow_payload_decoding_is_strict():
    import numpy as np

    from semcomp_core.bitstream import CodecId, LayerId, pack, unpack
    from semcomp_core.codecs import create, decode
    from semcomp_core.errors import BitstreamError

    img = np.zeros((16, 24, 3), np.uint8)
    img[:, :, 2] = 200
    data = create("jpeg:quality=90").encode(img)
    out = decode(data)
    assert out.dtype == np.uint8 and out.shape == (16, 24, 3) and out[..., 2].mean() > 150
    payload = unpack(data).layer(LayerId.IMAGE)
    with pytest.raises(BitstreamError, match="JPEG payload is 24x16, header says 16x24"):
        decode(pack(CodecId.JPEG, 24, 16, [(LayerId.IMAGE, payload)]))
    webp = unpack(create("webp").encode(img)).layer(LayerId.IMAGE)
    with pytest.raises(BitstreamError, match="corrupt JPEG payload"):
        decode(pack(CodecId.JPEG, 16, 24, [(LayerId.IMAGE, webp)]))   # another format under the JPEG id
