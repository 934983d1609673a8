"""The semantic stream coder (semcomp_core.stream.semantic) through the shipped semantic-gan codec.

Frames are 240x180 crops of the bundled CamVid frames, moving 2 pixels per
frame (a camera panning slowly), so the networks stay cheap.
"""
from __future__ import annotations

import numpy as np
import pytest

from semcomp_core import codecs
from semcomp_core.bitstream import LayerId, pack, unpack
from semcomp_core.errors import BitstreamError, UsageError
from semcomp_core.imageio import load_image
from semcomp_core.paths import SAMPLES_DIR
from semcomp_core.stream import ReferenceMissingError
from semcomp_core.stream.semantic import frame_header

H, W = 180, 240


@pytest.fixture(scope="module")
def frames():
    image = load_image(SAMPLES_DIR / "images" / "0016E5_07959.png")
    return [np.ascontiguousarray(image[60:60 + H, 2 * i:2 * i + W]) for i in range(24)]


@pytest.fixture(scope="module")
def other():
    image = load_image(SAMPLES_DIR / "images" / "0016E5_08157.png")
    return np.ascontiguousarray(image[::2, ::2][:H, :W])


def receiver():
    return codecs.receiver_instance(codecs.CODECS.get("semantic-gan")).open_decoder()


def encode_all(spec, images, fps=10, stamps=None):
    enc = codecs.create(spec).open_encoder(fps=fps)
    out = [enc.encode(im, None if stamps is None else stamps[i]) for i, im in enumerate(images)]
    return enc, out


def layer_ids(data):
    return [lid for lid, _ in unpack(data).layers]


def test_gop_1_stream_is_exactly_the_per_frame_containers(frames):
    codec = codecs.create("semantic-gan")
    enc = codec.open_encoder()
    for im in frames[:3]:
        assert enc.encode(im) == codec.encode(im)
        assert enc.last.key and LayerId.FRAME_INFO not in layer_ids(codec.encode(im))


def test_gop_sends_key_frames_every_n_and_inter_frames_between(frames):
    enc, data = encode_all("semantic-gan:gop=5", frames[:11])
    keys = [frame_header(unpack(d)).key for d in data]
    assert keys == [i % 5 == 0 for i in range(11)]
    assert (enc.key_frames, enc.inter_frames) == (3, 8)
    heads = [frame_header(unpack(d)) for d in data]
    assert [h.seq for h in heads] == list(range(11))
    assert len({h.stream_tag for h in heads}) == 1
    assert all(h.ref_seq == h.seq - 1 for h in heads if not h.key)
    for d, h in zip(data, heads):
        ids = layer_ids(d)
        assert (LayerId.DECODER_PARAMS in ids) == h.key and (LayerId.SEGMAP in ids) == h.key
    inter = [len(d) for d, h in zip(data, heads) if not h.key]
    key = [len(d) for d, h in zip(data, heads) if h.key]
    assert max(inter) < min(key) and np.mean(inter) < 0.6 * np.mean(key)


def test_stream_decoder_renders_every_frame_and_key_frames_alone(frames):
    _, data = encode_all("semantic-gan:gop=4", frames[:6])
    dec = receiver()
    out = [dec.decode(d) for d in data]
    assert all(o.shape == (H, W, 3) and o.dtype == np.uint8 for o in out)
    assert (dec.key_frames, dec.inter_frames, dec.lost) == (2, 4, 0)
    assert np.array_equal(out[4], codecs.decode(data[4]))   # a key frame decodes on its own, the same
    with pytest.raises(ReferenceMissingError):
        codecs.decode(data[1])                               # an inter frame does not


def test_inter_frames_follow_the_scene(frames):
    """Inter frames render what the encoder's maps say: the decoded map of the last frame equals the
    encoder's reference map, and the rendering differs from the first frame's."""
    enc, data = encode_all("semantic-gan:gop=30:stick=0", frames[::4])
    dec = receiver()
    out = [dec.decode(d) for d in data]
    assert np.array_equal(dec.ref.labels, enc.ref.labels)
    assert np.array_equal(dec.ref.q, enc.ref.q)
    assert np.abs(out[-1].astype(int) - out[0]).mean() > 1.0


def test_a_lost_frame_is_reported_and_the_stream_resumes_at_the_next_key_frame(frames):
    _, data = encode_all("semantic-gan:gop=5", frames[:11])
    dec = receiver()
    dec.decode(data[0])
    dec.decode(data[1])
    # data[2] is lost on the link
    for i in (3, 4):
        with pytest.raises(ReferenceMissingError, match="waiting for the next key frame"):
            dec.decode(data[i])
    assert dec.lost == 2 and dec.waiting_for_key
    out = dec.decode(data[5])                                 # key frame
    assert dec.recoveries == 1 and not dec.waiting_for_key
    assert np.array_equal(out, codecs.decode(data[5]))
    dec.decode(data[6])
    assert dec.inter_frames == 2


def test_a_corrupt_frame_invalidates_what_depends_on_it(frames):
    _, data = encode_all("semantic-gan:gop=8", frames[:4])
    dec = receiver()
    dec.decode(data[0])
    bad = bytearray(data[1])
    bad[len(bad) // 2] ^= 0x40
    with pytest.raises(BitstreamError):
        dec.decode(bytes(bad))
    with pytest.raises(ReferenceMissingError):
        dec.decode(data[2])                                   # its reference never arrived intact


def test_inter_frames_of_another_stream_are_refused(frames):
    _, a = encode_all("semantic-gan:gop=8", frames[:3])
    _, b = encode_all("semantic-gan:gop=8", frames[:3])
    tags = {frame_header(unpack(a[0])).stream_tag, frame_header(unpack(b[0])).stream_tag}
    dec = receiver()
    dec.decode(a[0])
    if len(tags) == 2:                                        # tags are random: 1 in 256 collide
        with pytest.raises(ReferenceMissingError):
            dec.decode(b[1])
    dec.decode(b[0])                                          # a key frame starts the other stream
    dec.decode(b[1])


def test_resize_request_and_scene_cut_make_key_frames(frames, other):
    enc = codecs.create("semantic-gan:gop=100").open_encoder()
    enc.encode(frames[0])
    enc.encode(frames[1])
    assert not enc.last.key
    enc.encode(np.ascontiguousarray(frames[2][:120, :160]))
    assert enc.last.key and enc.last.reason == "resize"
    enc.encode(np.ascontiguousarray(frames[3][:120, :160]))
    assert not enc.last.key
    enc.request_key_frame()
    enc.encode(np.ascontiguousarray(frames[4][:120, :160]))
    assert enc.last.key and enc.last.reason == "request"
    enc.encode(np.ascontiguousarray(other[:120, :160]))
    assert enc.last.key and enc.last.reason == "scene-cut"
    never = codecs.create("semantic-gan:gop=100:scenecut=0").open_encoder()
    never.encode(np.ascontiguousarray(frames[4][:120, :160]))
    never.encode(np.ascontiguousarray(other[:120, :160]))
    assert not never.last.key


def test_a_size_change_without_key_frame_is_refused(frames):
    _, data = encode_all("semantic-gan:gop=8", frames[:2])
    c = unpack(data[1])
    forged = pack(c.codec_id, c.height + 8, c.width, list(c.layers))
    dec = receiver()
    dec.decode(data[0])
    with pytest.raises(BitstreamError, match="reference"):
        dec.decode(forged)


@pytest.mark.parametrize("extra", [LayerId.DECODER_PARAMS, LayerId.SEGMAP, LayerId.FRAME_INFO])
def test_inter_frames_with_foreign_or_duplicate_layers_are_refused(frames, extra):
    _, data = encode_all("semantic-gan:gop=8", frames[:2])
    key, inter = unpack(data[0]), unpack(data[1])
    forged = pack(inter.codec_id, inter.height, inter.width, list(inter.layers) + [(extra, key.layer(extra))])
    dec = receiver()
    dec.decode(data[0])
    with pytest.raises(BitstreamError, match="inter frame with layers"):
        dec.decode(forged)


def test_a_static_scene_costs_only_framing_and_never_flickers(frames):
    enc, data = encode_all("semantic-gan:gop=30", [frames[0]] * 6)
    assert all(len(d) <= 24 for d in data[1:]), [len(d) for d in data]
    assert layer_ids(data[1]) == [LayerId.FRAME_INFO]
    dec = receiver()
    out = [dec.decode(d) for d in data]
    assert dec.rendered == 1
    assert all(np.array_equal(o, out[0]) for o in out)


def test_stick_trades_map_changes_for_bytes(frames):
    sizes = {}
    for stick in (0, 3):
        enc, data = encode_all(f"semantic-gan:gop=30:stick={stick}", frames[:10])
        sizes[stick] = sum(len(d) for d in data[1:])
    assert sizes[3] < sizes[0]


def test_rate_control_holds_the_bitrate(frames):
    """Over 240 frames (the moving crops, back and forth) the bytes sent stay within 5% of the
    budget, for a budget around the inter-frame cost and one far below it (a budget above what the
    richest level needs cannot be spent: the stream then stays below it, at level xl)."""
    images = (frames + frames[::-1]) * 5
    for kbps in (3.0, 8.0):
        enc, data = encode_all(f"semantic-gan:gop=30:kbps={kbps}", images, fps=10)
        sent_kbps = sum(len(d) for d in data) * 8 / (len(data) / 10) / 1e3
        assert abs(sent_kbps / kbps - 1) < 0.05, (kbps, sent_kbps)
        assert enc.rate.bitrate_kbps == pytest.approx(sent_kbps, rel=1e-6)
    rich = codecs.create("semantic-gan:gop=30:kbps=50").open_encoder(fps=10)
    for im in images[:30]:
        rich.encode(im)
    assert rich.last.details["level"] == "xl" and rich.rate.bitrate_kbps < 50


def test_rate_control_reads_the_frame_rate_from_the_stamps(frames):
    images = (frames + frames[::-1]) * 3
    stamps = [1_700_000_000_000_000_000 + i * 200_000_000 for i in range(len(images))]   # 5 fps
    enc = codecs.create("semantic-gan:gop=30:kbps=3").open_encoder()
    data = [enc.encode(im, s) for im, s in zip(images, stamps)]
    sent_kbps = sum(len(d) for d in data) * 8 / (len(data) / 5) / 1e3
    assert abs(sent_kbps / 3 - 1) < 0.08, sent_kbps
    enc.encode(images[0], stamps[-1])                        # a duplicated stamp
    enc.encode(images[1], stamps[-2])                        # and one out of order
    assert enc.rate.stamp_anomalies == 2


def test_frames_never_exceed_the_cap(frames, other):
    images = frames[:8] + [other] + frames[8:12]
    enc, data = encode_all("semantic-gan:gop=30:max_bytes=90", images)
    assert max(len(d) for d in data) <= 90
    dec = receiver()
    for d in data:
        assert dec.decode(d).shape == (H, W, 3)
    with pytest.raises(UsageError, match="max_bytes=20"):
        encode_all("semantic-gan:gop=30:max_bytes=20", frames[:1])


def test_a_budget_below_the_smallest_level_skips_frames_and_says_so(frames):
    enc, data = encode_all("semantic-gan:gop=1000:kbps=1.5", frames, fps=10)
    assert enc.skipped > 0
    assert sum(len(d) for d in data) * 8 / (len(data) / 10) / 1e3 < 1.5 * 1.3
    dec = receiver()
    assert all(dec.decode(d).shape == (H, W, 3) for d in data)


def test_map_grid_follows_the_frame_size():
    """A 1024x512 frame costs about what a 480x360 frame costs at the same level, not 3x."""
    image = load_image(SAMPLES_DIR / "images" / "0016E5_08007.png")
    from PIL import Image

    big = np.asarray(Image.fromarray(image).resize((1024, 512), Image.BICUBIC))
    codec = codecs.create("semantic-gan:level=m:roi=none")   # the semantic layers alone (no ROI pixels)
    small_bytes, big_bytes = len(codec.encode(image)), len(codec.encode(big))
    assert big_bytes < 1.5 * small_bytes, (small_bytes, big_bytes)
    from semcomp_core.layers import SegMapLayer

    assert SegMapLayer.peek_shape(unpack(codec.encode(big)).layer(LayerId.SEGMAP)) == (32, 64)
    assert codecs.decode(codec.encode(big)).shape == (512, 1024, 3)


def test_temporal_hold_keeps_pixels_away_from_map_changes():
    """Where no map cell changed (and the colours did not), the receiver keeps the previous pixels;
    near a change the new rendering is blended in; with temporal=off every frame is rendered anew."""
    from semcomp_core.stream.semantic import hold_unchanged

    prev = np.full((64, 64, 3), 10, np.uint8)
    new = np.full((64, 64, 3), 200, np.uint8)
    changed = np.zeros((8, 8), bool)
    changed[0, 0] = True
    out = hold_unchanged(prev, new, changed, 8)
    assert (out[:8, :8] == 200).all()                        # the changed cell: new rendering
    assert (out[40:, 40:] == 10).all()                       # far away: held
    assert 10 < out[8, 20, 0] < 200 or out[8, 12, 0] > 10    # a blend in between, no seam
    assert hold_unchanged(prev, new, np.zeros((8, 8), bool), 8) is prev


def test_receiver_holds_steady_regions_in_a_stream(frames, monkeypatch):
    import semcomp_core.stream.semantic as stream_semantic

    monkeypatch.setattr(stream_semantic, "COLOR_DEADZONE", 1000.0)   # colours never move: maps alone change
    images = [frames[0]] * 3 + [frames[8]]
    _, data = encode_all("semantic-gan:gop=30:stick=0", images)
    outs = {}
    for mode in ("hold", "off"):
        dec = codecs.receiver_instance(codecs.CODECS.get("semantic-gan"), receiver={"temporal": mode}).open_decoder()
        outs[mode] = [dec.decode(d) for d in data]
        assert dec.hold == (mode == "hold")
    assert layer_ids(data[3]) == [LayerId.FRAME_INFO, LayerId.SEGMAP_INTER]
    held = np.abs(outs["hold"][3].astype(int) - outs["hold"][2]).mean()
    fresh = np.abs(outs["off"][3].astype(int) - outs["off"][2]).mean()
    assert held < fresh
