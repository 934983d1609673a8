"""Golden bitstreams: an accidental wire-format change fails here; a deliberate one bumps the version.

test/data/golden/ (written by scripts/make_golden.py) holds, for fixed inputs from a bundled frame:

* ``*.bin`` -- the exact payloads the layer encoders write (seg map with and without the CamVid
  prior, colour map at two sizes, decoder parameters). Any change to what an encoder writes for the
  same input -- context order in the seg-map coder, colour-map slopes, the quantiser -- fails
  :func:`test_layer_encoders_write_the_golden_bytes`. If the change is deliberate: bump ``VERSION``
  in semcomp_core/bitstream/container.py, then run scripts/make_golden.py.
* ``*.smc`` -- whole containers of every codec, with ``*.png`` their reference decodes: today's
  decoders must still read them (and ``v1/`` holds a format-1 container this build still reads).
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from semcomp_core import codecs
from semcomp_core.bitstream import READABLE_VERSIONS, VERSION, LayerId, unpack
from semcomp_core.imageio import load_image
from semcomp_core.layers import SegMapLayer
from semcomp_core.metrics import psnr

GOLDEN = Path(__file__).resolve().parent / "data" / "golden"
MANIFEST = json.loads((GOLDEN / "manifest.json").read_text())
_spec = importlib.util.spec_from_file_location("make_golden", GOLDEN.parents[2] / "scripts" / "make_golden.py")
make_golden = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_golden)
BUMP = ("wire format changed: if deliberate, bump VERSION in semcomp_core/bitstream/container.py "
        "and run scripts/make_golden.py")


@pytest.fixture(scope="module")
def inputs():
    return make_golden.fixed_inputs()


def test_goldens_are_of_the_current_format_version():
    assert MANIFEST["format_version"] == VERSION, (
        f"VERSION is {VERSION} but the goldens are of version {MANIFEST['format_version']}: "
        "run scripts/make_golden.py (keep the old ones this build still reads)")
    for name, digest in MANIFEST["sha256"].items():
        data = (GOLDEN / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, f"{name} was modified"
        if name.endswith(".smc"):
            assert data[2] in READABLE_VERSIONS
            old = {"v1/": 1, "v2/": 2, "v3/": 3}
            assert data[2] == next((v for k, v in old.items() if name.startswith(k)), VERSION)


def test_layer_encoders_write_the_golden_bytes(inputs):
    payloads = make_golden.layer_payloads(inputs)
    assert set(f"{k}.bin" for k in payloads) == {n for n in MANIFEST["sha256"] if n.endswith(".bin")}
    for name, data in payloads.items():
        assert data == (GOLDEN / f"{name}.bin").read_bytes(), f"{name}: {BUMP}"


@pytest.mark.parametrize("name", sorted(n for n in MANIFEST["sha256"] if n.endswith(".smc")
                                         and not n.startswith("stream/")))
def test_golden_containers_decode_to_their_reference(name):
    data = (GOLDEN / name).read_bytes()
    ref = load_image(GOLDEN / (Path(name).stem + ".png"))
    out = codecs.decode(data)
    assert out.shape == ref.shape
    # classic decoders are exact; the GAN decoder may differ by float noise across CPUs
    assert psnr(out, ref) >= 45.0, f"{name} no longer decodes to its reference"


def test_semantic_gan_encoder_writes_the_golden_container(inputs):
    """The whole default encoder on the bundled frame. The segmenter is a float network, so its
    arg-max may flip a cell on another CPU: labels must agree on >= 99.5% of the cells, and where
    they agree exactly the bytes must be identical."""
    golden = unpack((GOLDEN / "semantic-gan_m.smc").read_bytes())
    now = unpack(codecs.create("semantic-gan:level=m:roi=none").encode(inputs["image"]))
    assert [lid for lid, _ in now.layers] == [lid for lid, _ in golden.layers]
    for lid in (LayerId.DECODER_PARAMS, LayerId.COLORMAP):
        assert now.layer(lid) == golden.layer(lid), f"layer {lid}: {BUMP}"
    a = SegMapLayer().decode(now.layer(LayerId.SEGMAP))
    b = SegMapLayer().decode(golden.layer(LayerId.SEGMAP))
    assert a.shape == b.shape and (a == b).mean() >= 0.995
    if np.array_equal(a, b):
        assert now.layer(LayerId.SEGMAP) == golden.layer(LayerId.SEGMAP), f"seg map: {BUMP}"


@pytest.mark.parametrize("spec,stem", sorted((k, v) for k, v in make_golden.CONTAINERS.items()
                                              if not k.startswith("semantic")))
def test_classic_codecs_write_the_golden_framing(inputs, spec, stem):
    """Classic payloads come from third-party libraries (their bytes may change with a library
    update); the container around them, the codec id and the layer list must not."""
    golden = unpack((GOLDEN / f"{stem}.smc").read_bytes())
    now = unpack(codecs.create(spec).encode(inputs["image"]))
    assert (now.version, now.codec_id, now.height, now.width) == (golden.version, golden.codec_id,
                                                                 golden.height, golden.width)
    assert [lid for lid, _ in now.layers] == [lid for lid, _ in golden.layers]


def test_version_1_container_decodes_like_seed_0():
    v1 = (GOLDEN / "v1" / "semantic-gan_m.smc").read_bytes()
    v2 = (GOLDEN / "semantic-gan_m.smc").read_bytes()
    assert unpack(v1).version == 1
    assert np.array_equal(codecs.decode(v1), codecs.decode(v2))


@pytest.mark.parametrize("version", [2, 3])
def test_older_containers_decode_like_the_current_version(version):
    old = (GOLDEN / f"v{version}" / "semantic-gan_m.smc").read_bytes()
    assert unpack(old).version == version
    now = (GOLDEN / "semantic-gan_m.smc").read_bytes()
    assert len(old) < len(now)           # one CRC-32 instead of a check per layer
    assert np.array_equal(codecs.decode(old), codecs.decode(now))


def test_golden_stream_decodes_in_a_stream_decoder_only():
    """The two-frame stream (key + inter): a stream decoder renders both references; the inter
    frame alone is refused (no reference), never rendered from nothing."""
    from semcomp_core.stream import ReferenceMissingError

    frames = [(GOLDEN / "stream" / f"frame{i}.smc").read_bytes() for i in range(2)]
    heads = [unpack(f) for f in frames]
    assert [lid for lid, _ in heads[1].layers][0] == LayerId.FRAME_INFO
    dec = codecs.receiver_instance(codecs.CODECS.get("semantic-gan")).open_decoder()
    for i, data in enumerate(frames):
        out = dec.decode(data)
        assert psnr(out, load_image(GOLDEN / "stream" / f"frame{i}.png")) >= 45.0
    assert (dec.key_frames, dec.inter_frames) == (1, 1)
    with pytest.raises(ReferenceMissingError):
        codecs.decode(frames[1])
    fresh = codecs.receiver_instance(codecs.CODECS.get("semantic-gan")).open_decoder()
    with pytest.raises(ReferenceMissingError):
        fresh.decode(frames[1])
    assert fresh.lost == 1
