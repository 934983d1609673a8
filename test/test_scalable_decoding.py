"""Scalable decoding (format 4): a container cut after any complete layer renders a full-size frame
from the layers that arrived; a cut anywhere else is a clean BitstreamError."""
import numpy as np
import pytest

from semcomp_core import codecs
from semcomp_core.bitstream import LayerId, unpack
from semcomp_core.bitstream.container import layer_ends
from semcomp_core.bitstream.inspect import describe, format_description
from semcomp_core.errors import BitstreamError
from semcomp_core.metrics import psnr

FULL = "semantic-gan:structure=m:roi=user:roi_boxes=160,120,320,300:budget=900"


def _cuts(data: bytes) -> list[int]:
    """Byte counts right after each complete layer (the container module's own cut points)."""
    return layer_ends(data)


@pytest.fixture(scope="module")
def layered(sample_image):
    codec = codecs.create(FULL)
    return codec, codec.encode(sample_image)


def test_layers_are_ordered_semantic_structure_signal(layered):
    _, data = layered
    assert unpack(data).layer_ids == [LayerId.DECODER_PARAMS, LayerId.SEGMAP, LayerId.COLORMAP, LayerId.STRUCTURE,
                                      LayerId.ROI]


def test_every_cut_after_a_layer_decodes_to_a_full_frame_and_more_layers_get_closer(layered, sample_image):
    codec, data = layered
    cuts = _cuts(data)
    assert cuts[-1] == len(data)
    outs = []
    for n in cuts:
        out = codec.decode(data[:n])
        assert out.shape == sample_image.shape and out.dtype == np.uint8
        outs.append(out)
    assert (outs[0] == 128).all()                        # decoder parameters only: no semantics, a grey frame
    # seg map alone (colours assumed from the classes) is a picture, and worse than with the colour map
    assert outs[1].std() > 10
    assert psnr(sample_image, outs[2]) > psnr(sample_image, outs[1])
    # the signal layer (ROI pixels) brings the frame closest to the original
    assert psnr(sample_image, outs[4]) > psnr(sample_image, outs[3]) + 0.3


def test_every_other_cut_is_a_clean_bitstream_error(layered):
    codec, data = layered
    cuts = set(_cuts(data))
    for n in range(len(data)):
        if n in cuts:
            continue
        with pytest.raises(BitstreamError):
            codec.decode(data[:n])


def test_structure_changes_the_rendering(layered, sample_image):
    """The shipped decoder is conditioned on the structure layer: the same map and colours render
    differently with it, and its edges land closer to the original's."""
    from semcomp_core.metrics.edges import edge_f_score

    codec, data = layered
    cuts = _cuts(data)
    without, with_structure = codec.decode(data[:cuts[2]]), codec.decode(data[:cuts[3]])
    assert "structure" in codec.generator.config.get("optional_layers", [])
    assert np.abs(with_structure.astype(int) - without.astype(int)).mean() > 1.0
    assert edge_f_score(sample_image, with_structure).f > edge_f_score(sample_image, without).f


def test_inspect_names_what_a_cut_lost(layered):
    _, data = layered
    cut = data[:_cuts(data)[2]]
    d = describe(cut)
    assert d["truncated"] and d["declared_layers"] == ["decoder-params", "segmap", "colormap", "structure", "roi"]
    assert [x["name"] for x in d["layers"]] == ["decoder-params", "segmap", "colormap"]
    text = format_description(d)
    assert "cut after 3 of 5 layers" in text and "lost: structure, roi" in text
    assert not describe(data)["truncated"]


@pytest.mark.parametrize("spec", ["jpeg:quality=20", "webp:quality=20"])
def test_single_layer_codecs_decode_whole_or_refuse(spec, sample_image):
    codec = codecs.create(spec)
    data = codec.encode(sample_image)
    assert codec.decode(data).shape == sample_image.shape
    for n in (len(data) - 1, len(data) // 2, 12):
        with pytest.raises(BitstreamError):
            codec.decode(data[:n])


def test_a_truncated_stream_frame_is_shown_but_is_no_reference(sample_paths):
    from semcomp_core.imageio import load_image
    from semcomp_core.stream import ReferenceMissingError

    frames = [load_image(p) for p in sample_paths[:2]]
    enc = codecs.create("semantic-gan:gop=30:structure=s:roi=none").open_encoder(fps=10)
    key, inter, inter2 = enc.encode(frames[0]), enc.encode(frames[1]), enc.encode(frames[1])
    assert LayerId.STRUCTURE in unpack(inter).layer_ids
    dec = codecs.receiver_instance(codecs.CODECS.get("semantic-gan")).open_decoder()
    full = dec.decode(key)
    cut = inter[:_cuts(inter)[0]]                        # only the frame header of the inter frame arrived
    assert unpack(cut).layer_ids == [LayerId.FRAME_INFO]
    held = dec.decode(cut)
    assert np.array_equal(held, full)                    # nothing new: the reference's frame is shown again
    with pytest.raises(ReferenceMissingError):           # the receiver's copy is not the sender's any more
        dec.decode(inter2)
    fresh = codecs.receiver_instance(codecs.CODECS.get("semantic-gan")).open_decoder()
    cut_key = key[:_cuts(key)[2]]                        # a key frame without its colour map or structure
    assert fresh.decode(cut_key).shape == frames[0].shape
    with pytest.raises(ReferenceMissingError):
        fresh.decode(inter)
    # a cut that lost only the structure layer leaves the reference intact: the stream goes on
    tail = codecs.receiver_instance(codecs.CODECS.get("semantic-gan")).open_decoder()
    tail.decode(key[:_cuts(key)[-2]])
    assert unpack(key[:_cuts(key)[-2]]).declared[-1] == LayerId.STRUCTURE
    whole = codecs.receiver_instance(codecs.CODECS.get("semantic-gan")).open_decoder()
    whole.decode(key)
    assert np.array_equal(tail.decode(inter[:_cuts(inter)[-2]]), whole.decode(inter[:_cuts(inter)[-2]]))
    assert tail.decode(inter2).shape == frames[1].shape


def test_full_frame_signal_layer_is_a_classic_base_layer(sample_image):
    """roi=full: the whole frame as HEVC pixels at what the budget leaves, its mask the 'every class'
    rule; cut before it, the same container is the semantic frame."""
    from semcomp_core.layers import RoiLayer, RoiMaskRule

    codec = codecs.create("semantic-gan:roi=full:budget=700")
    data = codec.encode(sample_image)
    assert len(data) <= 700
    c = unpack(data)
    assert c.layer_ids == [LayerId.DECODER_PARAMS, LayerId.SEGMAP, LayerId.COLORMAP, LayerId.ROI]
    roi = RoiLayer().decode(c.layer(LayerId.ROI), frame=(c.height, c.width))
    assert roi.mask == RoiMaskRule((1 << 11) - 1, 0) and roi.box == (0, 0, 360, 480)
    semantic = codec.decode(data[:_cuts(data)[2]])
    full = codec.decode(data)
    assert psnr(sample_image, full) > psnr(sample_image, semantic) + 3.0
    with pytest.raises(Exception, match="unknown source"):
        codecs.create("semantic-gan:roi=everything")


def test_a_classic_fallback_frame_cut_before_its_picture_decodes_grey():
    """A stream's classic-fallback frame is frame info + the full-frame ROI: cut after the frame info it
    still decodes (to mid-grey: nothing of the picture arrived), and the stream waits for a key frame."""
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)      # unreadable: the fallback triggers
    enc = codecs.create("semantic-gan:gop=30:roi=uncertain:roi_conf=1:fallback=0.5:budget=450").open_encoder()
    data = enc.encode(noise)
    c = unpack(data)
    assert c.layer_ids == [LayerId.FRAME_INFO, LayerId.ROI]
    dec = codecs.receiver_instance(codecs.CODECS.get("semantic-gan")).open_decoder()
    out = dec.decode(data[:_cuts(data)[0]])
    assert out.shape == noise.shape and (out == 128).all()
    assert codecs.decode(data[:_cuts(data)[0]]).shape == noise.shape      # stand-alone decoding too
    assert dec.decode(data).shape == noise.shape


GOLDEN = __import__("pathlib").Path(__file__).resolve().parent / "data" / "golden"


@pytest.mark.parametrize("name", sorted(p.name for p in GOLDEN.glob("*.smc")))
def test_every_golden_container_decodes_at_every_cut(name):
    """Every codec's container (format 4): each cut after a complete layer decodes to the full frame
    size, each other cut raises BitstreamError."""
    data = (GOLDEN / name).read_bytes()
    c = unpack(data)
    cuts = set(_cuts(data))
    for n in sorted(cuts):
        assert codecs.decode(data[:n]).shape == (c.height, c.width, 3), (name, n)
    for n in range(0, len(data), max(1, len(data) // 60)):
        if n not in cuts:
            with pytest.raises(BitstreamError):
                codecs.decode(data[:n])
