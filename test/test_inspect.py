"""`semcomp inspect`: header and layer table of every codec's containers; strict on bad input."""
import json
from pathlib import Path

import pytest

from semcomp_core.bitstream import unpack
from semcomp_core.bitstream.inspect import describe
from semcomp_core.cli.main import main

GOLDEN = Path(__file__).resolve().parent / "data" / "golden"
CONTAINERS = sorted(GOLDEN.rglob("*.smc"))


@pytest.mark.parametrize("path", CONTAINERS, ids=[p.name for p in CONTAINERS])
def test_inspect_json_accounts_for_every_byte(path, capsys):
    data = path.read_bytes()
    assert main(["inspect", str(path), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    c = unpack(data)
    assert (d["height"], d["width"], d["codec_id"], d["format_version"]) == (c.height, c.width, c.codec_id, c.version)
    assert [x["id"] for x in d["layers"]] == [lid for lid, _ in c.layers]
    assert d["bytes"] == len(data) == d["framing_bytes"] + sum(x["bytes"] for x in d["layers"])
    assert sum(x["share"] for x in d["layers"]) == pytest.approx(1 - d["framing_bytes"] / len(data))
    assert d["bpp"] == pytest.approx(8 * len(data) / (c.height * c.width))


def test_inspect_reads_the_semantic_layer_headers(capsys):
    d = describe((GOLDEN / "semantic-gan_xs_seed7.smc").read_bytes())
    by_name = {x["name"]: x["header"] for x in d["layers"]}
    assert d["codec"] == "semantic-gan"
    assert by_name["decoder-params"]["seed"] == 7
    assert by_name["segmap"] == {"map": "30x23", "classes": 11, "prior": "camvid-v1"}
    assert by_name["colormap"] == {"thumbnail": "8x6", "quantiser": 16}
    assert main(["inspect", str(GOLDEN / "semantic-gan_xs_seed7.smc")]) == 0
    text = capsys.readouterr().out
    assert "codec semantic-gan" in text and "seed=7" in text and "map=30x23" in text


def test_inspect_bad_input_is_one_line_and_nonzero(tmp_path, capsys):
    bad = tmp_path / "x.smc"
    data = bytearray((GOLDEN / "jpeg_q10.smc").read_bytes())
    data[20] ^= 0xFF
    bad.write_bytes(bytes(data))
    assert main(["inspect", str(bad)]) == 1
    assert "corrupted" in capsys.readouterr().err
    assert main(["inspect", str(tmp_path / "missing.smc")]) == 2


@pytest.mark.parametrize("codec,first", [("h264", "sps"), ("hevc", "vps"), ("av1", "temporal-delimiter")])
def test_inspect_lists_the_units_of_video_anchor_packets(codec, first, sample_image, tmp_path, capsys):
    """The video codecs send their encoders' own packets (not containers): inspect lists their units."""
    from semcomp_core import codecs

    enc = codecs.create(codec).open_encoder(fps=10)
    key, inter = enc.encode(sample_image), enc.encode(sample_image)
    path = tmp_path / f"key.{codec}"
    path.write_bytes(key)
    assert main(["inspect", str(path), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["codec"] == codec and d["bytes"] == len(key) and d["units"][0]["name"] == first
    assert d["framing_bytes"] + sum(u["bytes"] for u in d["units"]) == len(key)
    assert any("slice" in u["name"] or u["name"] == "frame" for u in d["units"])
    path.write_bytes(inter)
    assert main(["inspect", str(path)]) == 0
    assert f"{codec} packet" in capsys.readouterr().out
    path.write_bytes(key[:len(key) // 2] if codec == "av1" else b"\x00\x00\x01\x80junk")
    assert main(["inspect", str(path)]) == 1
    assert "bad bitstream" in capsys.readouterr().err


def test_cut_keeps_whole_layers_and_inspect_says_what_was_lost(tmp_path, capsys):
    src = GOLDEN / "semantic-gan_m_structure.smc"
    out = tmp_path / "cut.smc"
    assert main(["cut", str(src), "-o", str(out), "--after", "colormap"]) == 0
    capsys.readouterr()
    c = unpack(out.read_bytes())
    assert c.truncated and [lid for lid, _ in c.layers] == [6, 1, 2]
    assert main(["inspect", str(out)]) == 0
    assert "lost: structure" in capsys.readouterr().out
    assert main(["cut", str(src), "-o", str(out), "--max-bytes", "150"]) == 0
    assert len(out.read_bytes()) <= 150
    assert main(["cut", str(src), "-o", str(out), "--max-bytes", "5"]) == 1
    assert main(["cut", str(src), "-o", str(out), "--after", "nonsense"]) == 2
