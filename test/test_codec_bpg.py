"""The ``bpg`` codec: x265 HEVC-intra path, NAL payload format, bpgenc/bpgdec subprocess path."""
from __future__ import annotations

import csv
import io
import json
import random
import shutil
import stat
import sys
from pathlib import Path

import numpy as np
import pytest

from semcomp_core import codecs
from semcomp_core.bitstream import CodecId, LayerId, encode_varint, pack, unpack
from semcomp_core.codecs import bpg, hevc_nal
from semcomp_core.errors import BitstreamError, UsageError

pillow_heif = pytest.importorskip("pillow_heif")

# looked up before the autouse fixture hides PATH
REAL_BPGENC = shutil.which("bpgenc")
REAL_BPGDEC = shutil.which("bpgdec")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


@pytest.fixture(autouse=True)
def no_bpg_tools(monkeypatch, tmp_path):
    """Hide any installed bpgenc/bpgdec so ``impl=auto`` means x265 unless a test says otherwise."""
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv(bpg.ENV_BPGENC, raising=False)
    monkeypatch.delenv(bpg.ENV_BPGDEC, raising=False)


@pytest.fixture(scope="module")
def small(sample_image) -> np.ndarray:
    """A 96x64 crop of the sample frame, quick to code."""
    return np.ascontiguousarray(sample_image[100:164, 200:296])


@pytest.fixture(scope="module")
def small_stream(small) -> bytes:
    return codecs.create("bpg:q=40:impl=x265").encode(small)


def payload_of(data: bytes) -> bytes:
    return unpack(data).layer(LayerId.IMAGE)


def repack(payload: bytes, height: int, width: int) -> bytes:
    return pack(CodecId.HEVC_INTRA, height, width, [(LayerId.IMAGE, payload)])


# -- x265 path: round trips and rate -----------------------------------------------------------

def test_registered_with_both_codec_ids():
    assert "bpg" in codecs.available()
    assert codecs.codec_class_for_id(CodecId.BPG_FILE) is bpg.BpgCodec
    assert codecs.codec_class_for_id(CodecId.HEVC_INTRA) is bpg.BpgCodec
    codec = codecs.create("bpg")
    assert codec.config == {"q": 51, "impl": "auto", "chroma": "420", "m": 8}
    assert codec.quality_param == "q"
    assert codecs.create("bpg:q=45").label() == "bpg:q=45"


def test_round_trip_sample_frame(sample_image):
    data = codecs.create("bpg:q=51").encode(sample_image)
    assert unpack(data).codec_id == CodecId.HEVC_INTRA
    out = codecs.decode(data)
    assert out.shape == sample_image.shape and out.dtype == np.uint8
    assert 21.0 < psnr(out, sample_image) < 27.0
    better = codecs.decode(codecs.create("bpg:q=35").encode(sample_image))
    assert psnr(better, sample_image) > psnr(out, sample_image) + 5


@pytest.mark.parametrize("chroma", ["420", "444"])
@pytest.mark.parametrize("shape", [(67, 101), (13, 7), (1, 1)])
def test_odd_sizes_round_trip(sample_image, shape, chroma):
    crop = np.ascontiguousarray(sample_image[50:50 + shape[0], 60:60 + shape[1]])
    data = codecs.create(f"bpg:q=30:chroma={chroma}").encode(crop)
    out = codecs.decode(data)
    assert out.shape == crop.shape
    assert psnr(out, crop) > 28
    _, sps = bpg.check_payload(payload_of(data), *shape)
    assert sps.chroma_format_idc == (1 if chroma == "420" else 3)
    assert (sps.width, sps.height) == hevc_nal.output_size(shape[1], shape[0], sps.chroma_format_idc)


def test_bytes_decrease_with_q(sample_image):
    sizes = [len(codecs.create(f"bpg:q={q}").encode(sample_image)) for q in (35, 40, 45, 51)]
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == 4, sizes


def test_slice_qp_is_q(small, tmp_path):
    """x265's own per-frame log shows the I slice coded at exactly QP q."""
    for q in (30, 51):
        log = tmp_path / f"x265-{q}.csv"
        params = bpg.x265_params(q, "420", 8, small.shape[1], small.shape[0])
        params.update({"x265:csv": str(log), "x265:csv-log-level": "1"})
        pillow_heif.from_bytes("RGB", (small.shape[1], small.shape[0]), small.tobytes()).save(
            io.BytesIO(), quality=50, enc_params=params, tile_size=0)
        rows = list(csv.reader(log.open()))
        qp_column = [c.strip() for c in rows[0]].index("QP")
        assert [float(r[qp_column]) for r in rows[1:]] == [q]


def test_counted_bytes_are_nal_units_not_heif(sample_image):
    heif = bpg.x265_encode_heif(sample_image, 51, "420", 8)
    data = codecs.create("bpg:q=51").encode(sample_image)
    payload = payload_of(data)
    assert len(payload) < len(heif) - 200
    framing = 2 + 1 + 1 + len(encode_varint(360)) + len(encode_varint(480)) + 1 + 1 \
        + len(encode_varint(len(payload))) + (2 if len(payload) < 4096 else 4)
    assert len(data) == len(payload) + framing
    nals = hevc_nal.unpack_nals(payload)
    assert [hevc_nal.nal_type(n) for n in nals][:3] == [32, 33, 34]
    assert len(payload) == sum(len(n) + len(encode_varint(len(n))) for n in nals)
    # the slice data is sent unchanged
    item = hevc_nal.extract_heif_hevc(heif)
    assert nals[3:] == hevc_nal.split_length_prefixed(item.data, 4)


@pytest.mark.parametrize("shape", [(360, 480), (67, 101)])
def test_same_pixels_as_libheif_decoding_its_own_file(sample_image, shape):
    """The rebuilt HEIF (hvcC from the SPS, no clap) decodes bit-exactly like libheif's file."""
    image = np.ascontiguousarray(sample_image[:shape[0], :shape[1]])
    heif = bpg.x265_encode_heif(image, 45, "420", 8)
    reference = np.asarray(pillow_heif.open_heif(io.BytesIO(heif)))
    payload = bpg.heif_to_payload(heif, *shape)
    np.testing.assert_array_equal(bpg.x265_decode(payload, *shape), reference)
    nals, sps = bpg.check_payload(payload, *shape)
    assert hevc_nal.build_hvcc(sps, nals[:3])[:23] == hevc_nal.extract_heif_hevc(heif).hvcc[:23]


def test_encode_and_decode_are_deterministic(small, small_stream):
    assert codecs.create("bpg:q=40:impl=x265").encode(small) == small_stream
    np.testing.assert_array_equal(codecs.decode(small_stream), codecs.decode(small_stream))


def test_implementation_names_x265_and_versions():
    text = codecs.create("bpg").implementation
    assert text.startswith("x265 ") and "libheif" in text and "pillow-heif" in text
    assert text.endswith("HEVC payload counted")


def test_bad_parameters_are_usage_errors():
    for spec in ("bpg:q=52", "bpg:q=-1", "bpg:chroma=422", "bpg:impl=ffmpeg", "bpg:m=0", "bpg:qp=3"):
        with pytest.raises(UsageError):
            codecs.create(spec)


# -- hostile HEVC payloads --------------------------------------------------------------------

def _mutate(rng: random.Random, payload: bytes) -> bytes:
    p = bytearray(payload)
    kind = rng.randrange(6)
    if kind == 0:                                   # bit flips anywhere
        for _ in range(rng.randint(1, 4)):
            p[rng.randrange(len(p))] ^= 1 << rng.randrange(8)
    elif kind == 1:                                 # bit flip in the parameter sets
        p[rng.randrange(80)] ^= 1 << rng.randrange(8)
    elif kind == 2:                                 # random byte
        p[rng.randrange(len(p))] = rng.randrange(256)
    elif kind == 3:                                 # truncation
        del p[rng.randrange(len(p)):]
    elif kind == 4:                                 # insertion
        at = rng.randrange(len(p))
        p[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
    else:                                           # deletion
        at = rng.randrange(len(p))
        del p[at:at + rng.randint(1, 8)]
    return bytes(p)


def test_mutated_payloads_raise_only_bitstream_error(small_stream):
    payload = payload_of(small_stream)
    rng = random.Random(1234)
    outcomes = {"ok": 0, "error": 0}
    for _ in range(400):
        data = repack(_mutate(rng, payload), 64, 96)
        try:
            out = codecs.decode(data)
        except BitstreamError:
            outcomes["error"] += 1
        else:
            assert out.shape == (64, 96, 3) and out.dtype == np.uint8
            outcomes["ok"] += 1
    assert outcomes["error"] > 100 and outcomes["ok"] > 10, outcomes


@pytest.mark.parametrize("height,width", [(361, 480), (360, 482), (100, 100), (720, 960)])
def test_sps_size_must_match_header(sample_image, height, width):
    payload = payload_of(codecs.create("bpg:q=51").encode(sample_image))
    with pytest.raises(BitstreamError, match="SPS picture is 480x360"):
        codecs.decode(repack(payload, height, width))


def test_large_hidden_padding_rejected(sample_image):
    """An SPS that crops a big coded picture down to the header size is refused before decoding."""
    nals = hevc_nal.unpack_nals(payload_of(codecs.create("bpg:q=51").encode(sample_image)))
    nals[1] = hevc_nal.set_conformance_window(nals[1], right=40, bottom=0)   # 480 -> 400 wide
    assert hevc_nal.parse_sps(nals[1]).width == 400
    with pytest.raises(BitstreamError, match="pads"):
        codecs.decode(repack(hevc_nal.pack_nals(nals), 360, 400))


def _nal_list_cases(nals: list[bytes]) -> dict[str, bytes]:
    vps, sps, pps, *rest = nals
    aud = bytes([35 << 1, 1, 0x50])
    return {
        "empty": b"",
        "no vps": hevc_nal.pack_nals([sps, pps, *rest]),
        "swapped": hevc_nal.pack_nals([vps, pps, sps, *rest]),
        "two pps": hevc_nal.pack_nals([vps, sps, pps, pps, *rest]),
        "no slice": hevc_nal.pack_nals([vps, sps, pps]),
        "access unit delimiter": hevc_nal.pack_nals([vps, sps, pps, aud, *rest]),
        "layer id": hevc_nal.pack_nals([vps, sps, pps, bytes([rest[0][0], rest[0][1] | 8]) + rest[0][2:]]),
        "tiny nal": hevc_nal.pack_nals([vps, sps, pps, rest[0][:2]]),
        "length past end": hevc_nal.pack_nals(nals) + encode_varint(500) + b"\x28\x01",
        "non-minimal varint": b"\x98\x00" + hevc_nal.pack_nals(nals)[1:],
    }


def test_malformed_nal_lists_rejected(small_stream):
    nals = hevc_nal.unpack_nals(payload_of(small_stream))
    for name, payload in _nal_list_cases(nals).items():
        with pytest.raises(BitstreamError):
            codecs.decode(repack(payload, 64, 96))
            pytest.fail(f"case {name!r} decoded")


def test_sps_parser_and_writer_agree(small_stream):
    sps_nal = hevc_nal.unpack_nals(payload_of(small_stream))[1]
    sps = hevc_nal.parse_sps(sps_nal)
    assert (sps.width, sps.height, sps.bit_depth_luma, sps.chroma_format_idc) == (96, 64, 8, 1)
    again = hevc_nal.set_conformance_window(sps_nal, *sps.conf_window[1::2])
    assert again == sps_nal
    cropped = hevc_nal.parse_sps(hevc_nal.set_conformance_window(sps_nal, 3, 5))
    assert (cropped.width, cropped.height) == (sps.pic_width - 6, sps.pic_height - 10)
    assert cropped.general_ptl == sps.general_ptl


def test_emulation_prevention_round_trip():
    rbsp = bytes([0, 0, 0, 0, 0, 1, 0, 0, 2, 0, 0, 3, 0, 0, 4, 0x80])
    nal = hevc_nal.rbsp_to_nal(b"\x42\x01", rbsp)
    assert b"\x00\x00\x00" not in nal[2:] and b"\x00\x00\x01" not in nal[2:]
    assert hevc_nal.nal_to_rbsp(nal) == rbsp


# -- bpgenc / bpgdec subprocess path (fake tools) ------------------------------------------------

FAKE_BPGENC = """#!{python}
import json, os, sys
from PIL import Image
log = os.environ.get("FAKE_BPG_LOG")
if log:
    with open(log, "a") as f:
        f.write(json.dumps(["bpgenc"] + sys.argv[1:]) + "\\n")
if sys.argv[1:] == ["-h"]:
    print("BPG Image Encoder version 0.9.8")
    sys.exit(1)
mode = os.environ.get("FAKE_BPG_MODE", "")
if mode == "fail":
    sys.stderr.write("fake bpgenc: out of cheese\\n")
    sys.exit(1)
args = sys.argv[1:]
out, src = args[args.index("-o") + 1], args[-1]
png = open(src, "rb").read()
w, h = Image.open(src).size
if mode == "wrongsize":
    w += 2

def ue7(v):
    groups = [v & 0x7F]
    while v > 0x7F:
        v >>= 7
        groups.append(0x80 | (v & 0x7F))
    return bytes(reversed(groups))

with open(out, "wb") as f:
    f.write(b"BPG\\xfb" + bytes([0x00, 0x00]) + ue7(w) + ue7(h) + ue7(len(png)) + png)
"""

FAKE_BPGDEC = """#!{python}
import io, json, os, sys
from PIL import Image
log = os.environ.get("FAKE_BPG_LOG")
if log:
    with open(log, "a") as f:
        f.write(json.dumps(["bpgdec"] + sys.argv[1:]) + "\\n")
if os.environ.get("FAKE_BPG_MODE") == "faildec":
    sys.stderr.write("fake bpgdec: bad data\\n")
    sys.exit(1)
args = sys.argv[1:]
out, src = args[args.index("-o") + 1], args[-1]
data = open(src, "rb").read()
Image.open(io.BytesIO(data[data.index(b"\\x89PNG"):])).save(out)
"""


def _script(path: Path, text: str) -> Path:
    path.write_text(text.replace("{python}", sys.executable))
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@pytest.fixture
def fake_tools(tmp_path, monkeypatch):
    """Fake bpgenc/bpgdec configured through the environment; returns the argument log path."""
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv(bpg.ENV_BPGENC, str(_script(tmp_path / "bpgenc", FAKE_BPGENC)))
    monkeypatch.setenv(bpg.ENV_BPGDEC, str(_script(tmp_path / "bpgdec", FAKE_BPGDEC)))
    monkeypatch.setenv("FAKE_BPG_LOG", str(log))
    return log


def _calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_fake_bpgenc_round_trip(fake_tools, small):
    codec = codecs.create("bpg:q=37:chroma=444:m=5")
    assert codec.implementation == f"bpgenc 0.9.8 ({bpg.find_tool('bpgenc', bpg.ENV_BPGENC)[0]})"
    data = codec.encode(small)
    container = unpack(data)
    assert container.codec_id == CodecId.BPG_FILE
    assert container.layer(LayerId.IMAGE)[:4] == b"BPG\xfb"
    np.testing.assert_array_equal(codecs.decode(data), small)       # the fake is lossless
    enc = [c for c in _calls(fake_tools) if c[0] == "bpgenc" and c[1:] != ["-h"]]
    dec = [c for c in _calls(fake_tools) if c[0] == "bpgdec"]
    assert len(enc) == 1 and len(dec) == 1
    args = enc[0][1:]
    assert args[args.index("-q") + 1] == "37" and args[args.index("-f") + 1] == "444"
    assert args[args.index("-m") + 1] == "5" and args[-1].endswith(".png")
    assert dec[0][1] == "-o" and dec[0][-1].endswith(".bpg")


def test_bpgenc_on_path_is_used_by_auto(tmp_path, monkeypatch, small):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    _script(bindir / "bpgenc", FAKE_BPGENC)
    monkeypatch.setenv("PATH", str(bindir))
    assert unpack(codecs.create("bpg").encode(small)).codec_id == CodecId.BPG_FILE
    assert unpack(codecs.create("bpg:impl=x265").encode(small)).codec_id == CodecId.HEVC_INTRA


def test_bpgenc_failure_is_a_clear_usage_error(fake_tools, monkeypatch, small):
    monkeypatch.setenv("FAKE_BPG_MODE", "fail")
    with pytest.raises(UsageError, match=r"exit status 1: fake bpgenc: out of cheese"):
        codecs.create("bpg").encode(small)


def test_shell_bpgenc_exit_code_reported(tmp_path, monkeypatch, small):
    tool = _script(tmp_path / "bpgenc.sh", "#!/bin/sh\necho 'no such option' >&2\nexit 3\n")
    monkeypatch.setenv(bpg.ENV_BPGENC, str(tool))
    with pytest.raises(UsageError, match=r"bpgenc.sh failed with exit status 3: no such option"):
        codecs.create("bpg:impl=bpgenc").encode(small)


def test_bpgenc_wrong_size_output_rejected(fake_tools, monkeypatch, small):
    monkeypatch.setenv("FAKE_BPG_MODE", "wrongsize")
    with pytest.raises(UsageError, match="98x64 picture for a 96x64 image"):
        codecs.create("bpg").encode(small)


def test_missing_bpgenc_is_usage_error(tmp_path, monkeypatch, small):
    with pytest.raises(UsageError, match="bpgenc not found"):
        codecs.create("bpg:impl=bpgenc").encode(small)
    monkeypatch.setenv(bpg.ENV_BPGENC, str(tmp_path / "does-not-exist"))
    with pytest.raises(UsageError, match="SEMCOMP_BPGENC"):
        codecs.create("bpg").encode(small)      # a configured but broken tool is not skipped


def test_bpgdec_rejection_is_bitstream_error(fake_tools, monkeypatch, small):
    data = codecs.create("bpg").encode(small)
    monkeypatch.setenv("FAKE_BPG_MODE", "faildec")
    with pytest.raises(BitstreamError, match="exit status 1: fake bpgdec: bad data"):
        codecs.decode(data)


def test_bpg_payload_checked_before_bpgdec_runs(fake_tools, small):
    payload = payload_of(codecs.create("bpg").encode(small))
    for height, width, bad in ((64, 97, payload), (64, 96, b"BPG\xfb\x00"), (64, 96, b"GIF89a" + payload),
                               (64, 96, payload[:6] + b"\xff" * 6)):
        with pytest.raises(BitstreamError):
            codecs.decode(pack(CodecId.BPG_FILE, height, width, [(LayerId.IMAGE, bad)]))
    assert not [c for c in _calls(fake_tools) if c[0] == "bpgdec"]


def test_missing_bpgdec_is_bitstream_error(fake_tools, monkeypatch, small):
    data = codecs.create("bpg").encode(small)
    monkeypatch.delenv(bpg.ENV_BPGDEC)
    with pytest.raises(BitstreamError, match="bpgdec not found"):
        codecs.decode(data)


@pytest.mark.skipif(REAL_BPGENC is None or REAL_BPGDEC is None, reason="bpgenc/bpgdec not installed")
def test_real_bpgenc_round_trip(monkeypatch, sample_image):
    monkeypatch.setenv(bpg.ENV_BPGENC, REAL_BPGENC)
    monkeypatch.setenv(bpg.ENV_BPGDEC, REAL_BPGDEC)
    data = codecs.create("bpg:q=45").encode(sample_image)
    assert unpack(data).codec_id == CodecId.BPG_FILE
    out = codecs.decode(data)
    assert out.shape == sample_image.shape and psnr(out, sample_image) > 22
