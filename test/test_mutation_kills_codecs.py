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
    with pytest.raises(UsageError, match="parameter quality='abc' is not a valid int"):
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
