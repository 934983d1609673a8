"""make_bag and run_bag_bench end to end on tiny bags (mcap and sqlite3), read back with rosbags."""
from __future__ import annotations

import csv
import json
import math
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rosbags", reason="rosbags (pip install rosbags) is needed for bag tests")
cv2 = pytest.importorskip("cv2", reason="opencv-python-headless is needed for video tests")

from rosbags.highlevel import AnyReader  # noqa: E402

from semcomp_core import codecs  # noqa: E402
from semcomp_core.errors import UsageError  # noqa: E402
from semcomp_core.imageio import save_png  # noqa: E402
from semcomp_core.rosbag import make_bag, output_topics, run_bag_bench, topic_token  # noqa: E402
from semcomp_core.rosbag.make_bag import DEFAULT_START_NS  # noqa: E402
from semcomp_core.image_messages import IMAGE_TYPE, as_bytes, image_to_rgb, make_header, typestore  # noqa: E402

TOPIC = "/camera/image_raw"
N = 5


def frames(n: int, h: int = 48, w: int = 64) -> list[np.ndarray]:
    """Smooth, distinct frames (red ramp across, green ramp down, blue constant), shifted over time."""
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 // (w - 1), y * 255 // (h - 1), np.full_like(x, 60)], axis=2).astype(np.uint8)
    return [np.roll(base, 3 * i, axis=1) for i in range(n)]


def write_video(path: Path, images: list[np.ndarray], fps: float = 10.0) -> Path:
    h, w = images[0].shape[:2]
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert vw.isOpened()
    for img in images:
        vw.write(np.ascontiguousarray(img[:, :, ::-1]))
    vw.release()
    return path


def read_bag(bag: Path) -> dict[str, list]:
    """topic -> [(log time, message)] in bag order."""
    out: dict[str, list] = {}
    with AnyReader([bag]) as reader:
        for conn in reader.connections:
            out.setdefault(conn.topic, [])
        for conn, t, raw in reader.messages(connections=reader.connections):
            out[conn.topic].append((t, conn.msgtype, reader.deserialize(raw, conn.msgtype)))
    return out


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> Path:
    """A Cityscapes-like tree: <split>/<city>/<frames>, plus a hidden file to ignore."""
    root = tmp_path_factory.mktemp("seq") / "leftImg8bit_sequence" / "val"
    for i, img in enumerate(frames(N)):
        city = "aachen" if i < 3 else "bochum"
        save_png(root / city / f"{city}_000000_{i:06d}_leftImg8bit.png", img)
    (root / ".hidden.png").write_bytes(b"not an image")
    return root


@pytest.fixture(scope="module", params=["mcap", "sqlite3"])
def camera_bag(request, image_folder, tmp_path_factory) -> tuple[Path, str]:
    bag = tmp_path_factory.mktemp("bags") / f"cam_{request.param}"
    assert make_bag(bag, images=image_folder, rate=20.0, frame_id="cam_left", storage=request.param) == N
    return bag, request.param


# -- make_bag -------------------------------------------------------------------------------
def test_make_bag_from_image_folder_stamps_order_and_pixels(camera_bag):
    bag, storage = camera_bag
    assert any(p.suffix == (".mcap" if storage == "mcap" else ".db3") for p in bag.iterdir())
    msgs = read_bag(bag)[TOPIC]
    assert len(msgs) == N
    stamps = [m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for _, _, m in msgs]
    assert stamps == [DEFAULT_START_NS + i * 50_000_000 for i in range(N)]  # 20 Hz
    assert [t for t, _, _ in msgs] == stamps
    for (_, msgtype, m), expected in zip(msgs, frames(N)):  # sorted across sub-folders, lossless
        assert msgtype == IMAGE_TYPE and m.encoding == "rgb8" and m.header.frame_id == "cam_left"
        np.testing.assert_array_equal(image_to_rgb(m), expected)


def test_make_bag_from_video_uses_its_frame_rate_and_limit(tmp_path):
    video = write_video(tmp_path / "street.avi", frames(N), fps=25.0)
    assert make_bag(tmp_path / "v", video=video) == N
    msgs = read_bag(tmp_path / "v")[TOPIC]
    assert len(msgs) == N
    assert msgs[1][0] - msgs[0][0] == 40_000_000  # 25 fps from the file
    first = image_to_rgb(msgs[0][2])
    assert first.shape == (48, 64, 3)
    error = np.abs(first.astype(int) - frames(1)[0]).mean(axis=(0, 1))
    assert (error < 8).all(), error  # MJPG is lossy, but the same picture in RGB order
    assert make_bag(tmp_path / "v3", video=video, rate=5, limit=3, topic="front/image", storage="sqlite3") == 3
    msgs = read_bag(tmp_path / "v3")["/front/image"]
    assert len(msgs) == 3 and msgs[2][0] - msgs[0][0] == 400_000_000


@pytest.mark.parametrize("kwargs, message", [
    ({}, "exactly one source"),
    ({"images": "IMG", "video": "VID"}, "exactly one source"),
    ({"images": "missing_dir"}, "not a directory"),
    ({"images": "EMPTY"}, "no images"),
    ({"video": "missing.avi"}, "no such video"),
    ({"video": "JUNK"}, "cannot open video"),
    ({"images": "IMG", "rate": 0}, "positive"),
    ({"images": "IMG", "rate": math.nan}, "positive"),
    ({"images": "IMG", "rate": "fast"}, "number of Hz"),
    ({"images": "IMG", "storage": "rosbag1"}, "mcap, sqlite3"),
    ({"images": "IMG", "topic": "/camera/2bad"}, "invalid topic"),
    ({"images": "IMG", "limit": 0}, "limit"),
])
def test_make_bag_rejects_bad_input(tmp_path, image_folder, kwargs, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "junk.avi").write_bytes(b"junk" * 100)
    subst = {"IMG": image_folder, "VID": tmp_path / "junk.avi", "EMPTY": tmp_path / "empty",
             "JUNK": tmp_path / "junk.avi"}
    kwargs = {k: subst.get(v, tmp_path / v if k in ("images", "video") else v) if isinstance(v, str) else v
              for k, v in kwargs.items()}
    with pytest.raises(UsageError, match=message):
        make_bag(tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


def test_make_bag_refuses_existing_output(tmp_path, image_folder):
    (tmp_path / "out").mkdir()
    with pytest.raises(UsageError, match="exists"):
        make_bag(tmp_path / "out", images=image_folder)


# -- run_bag_bench --------------------------------------------------------------------------
def test_bag_bench_end_to_end(camera_bag, tmp_path):
    bag, storage = camera_bag
    codec = codecs.create("jpeg", quality=40)
    rows = run_bag_bench(bag, TOPIC, [codec], tmp_path / "out", progress=False)
    assert [r["codec"] for r in rows] == ["jpeg:quality=40"] and rows[0]["frames"] == N
    assert rows[0]["encode_p95_ms"] >= rows[0]["encode_p50_ms"] > 0
    out_bag = tmp_path / "out" / "bag"
    assert any(p.suffix == (".mcap" if storage == "mcap" else ".db3") for p in out_bag.iterdir())
    inp = read_bag(bag)[TOPIC]
    out = read_bag(out_bag)
    bits_topic, recon_topic = f"{TOPIC}/semcomp", f"{TOPIC}/semcomp/reconstructed"
    assert set(out) == {bits_topic, recon_topic}
    assert len(out[bits_topic]) == len(out[recon_topic]) == len(inp) == N
    for (t_in, _, m_in), (t_b, type_b, bits), (t_r, type_r, recon) in zip(inp, out[bits_topic], out[recon_topic]):
        assert (type_b, type_r) == ("sensor_msgs/msg/CompressedImage", IMAGE_TYPE)
        assert t_in == t_b == t_r
        assert bits.format == "semcomp/jpeg:quality=40"
        expected = (m_in.header.stamp.sec, m_in.header.stamp.nanosec, "cam_left")
        for h in (bits.header, recon.header):
            assert (h.stamp.sec, h.stamp.nanosec, h.frame_id) == expected
        assert (recon.encoding, recon.height, recon.width) == ("rgb8", 48, 64)
        # the bitstream in the bag decodes to the reconstruction in the bag
        np.testing.assert_array_equal(codecs.decode(as_bytes(bits.data)), image_to_rgb(recon))
    for name in ("per_image.csv", "per_image.json", "summary.csv", "summary.json", "rate_distortion.png"):
        assert (tmp_path / "out" / name).stat().st_size > 0, name
    meta = json.loads((tmp_path / "out" / "summary.json").read_text())["meta"]
    assert meta["bag"] == str(bag) and meta["topic"] == TOPIC and meta["messages"] == N and meta["frames"] == N
    with open(tmp_path / "out" / "per_image.csv", newline="") as f:
        per_image = list(csv.DictReader(f))
    assert len(per_image) == N and per_image[1]["frame_id"] == "cam_left"
    assert per_image[1]["stamp"] == f"{DEFAULT_START_NS // 10**9}.050000000"


def test_bag_bench_two_codecs_suffixed_topics_and_storage_override(camera_bag, tmp_path):
    bag, storage = camera_bag
    other = "sqlite3" if storage == "mcap" else "mcap"
    chosen = [codecs.create("jpeg"), codecs.create("webp")]
    rows = run_bag_bench(bag, TOPIC, chosen, tmp_path / "o", storage=other, limit=3, progress=False)
    assert [r["frames"] for r in rows] == [3, 3]
    out_bag = tmp_path / "o" / "bag"
    assert any(p.suffix == (".mcap" if other == "mcap" else ".db3") for p in out_bag.iterdir())
    out = read_bag(out_bag)
    topics = output_topics(TOPIC, [c.label() for c in chosen])
    assert set(out) == {t for pair in topics.values() for t in pair}
    for label, (bits_topic, recon_topic) in topics.items():
        assert bits_topic == f"{TOPIC}/semcomp/{topic_token(label)}"
        assert recon_topic == bits_topic + "/reconstructed"
        assert len(out[bits_topic]) == len(out[recon_topic]) == 3
        assert {m.format for _, _, m in out[bits_topic]} == {f"semcomp/{label}"}


def test_topic_token_rule():
    assert topic_token("bpg:q=45") == "bpg_q45"
    assert topic_token("semantic-gan:lambda=0.5") == "semantic_gan_lambda0_5"
    assert topic_token("3d") == "c3d"
    tops = output_topics("/cam/", ["a-b", "a_b"])
    assert tops["a-b"][0] == "/cam/semcomp/a_b" and tops["a_b"][0] == "/cam/semcomp/a_b_2"


def test_bag_bench_errors_name_the_problem(camera_bag, tmp_path):
    bag, _ = camera_bag
    jpeg = [codecs.create("jpeg")]
    with pytest.raises(UsageError, match=r"not in .*image topics there: /camera/image_raw \(sensor_msgs/msg/Image, 5"):
        run_bag_bench(bag, "/camera/nope", jpeg, tmp_path / "a", progress=False)
    with pytest.raises(UsageError, match="no such bag"):
        run_bag_bench(tmp_path / "missing", TOPIC, jpeg, tmp_path / "b", progress=False)
    (tmp_path / "c" / "bag").mkdir(parents=True)
    with pytest.raises(UsageError, match="exists already"):
        run_bag_bench(bag, TOPIC, jpeg, tmp_path / "c", progress=False)


def test_bag_bench_rejects_non_image_topic(tmp_path):
    from rosbags.rosbag2 import StoragePlugin, Writer

    ts = typestore()
    string_cls = ts.types["std_msgs/msg/String"]
    with Writer(tmp_path / "mixed", version=8, storage_plugin=StoragePlugin.MCAP) as writer:
        conn = writer.add_connection("/chatter", "std_msgs/msg/String", typestore=ts)
        writer.write(conn, 1, ts.serialize_cdr(string_cls(data="hi"), "std_msgs/msg/String"))
    with pytest.raises(UsageError, match="has type std_msgs/msg/String.*image topics there: none"):
        run_bag_bench(tmp_path / "mixed", "/chatter", [codecs.create("jpeg")], tmp_path / "o", progress=False)
    assert make_header(5, "x").frame_id == "x"


def test_bag_bench_memory_stays_flat_as_the_bag_grows(tmp_path):
    """Peak traced memory for 40 frames is about that for 10 (frames big enough to fill mcap chunks)."""
    codec = codecs.create("jpeg")
    peaks = {}
    for n in (3, 10, 40):  # the 3-frame run pays for imports and the plotting backend
        video = write_video(tmp_path / f"v{n}.avi", frames(n, h=192, w=256))
        make_bag(tmp_path / f"b{n}", video=video)
        tracemalloc.start()
        run_bag_bench(tmp_path / f"b{n}", TOPIC, [codec], tmp_path / f"o{n}", progress=False)
        peaks[n] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert len(read_bag(tmp_path / "o40" / "bag")[f"{TOPIC}/semcomp"]) == 40
    assert peaks[40] < 1.25 * peaks[10], peaks


def test_bag_bench_reads_compressed_camera_topics(tmp_path):
    """Bags recorded with compressed_image_transport (jpeg in CompressedImage) work as input too."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    from semcomp_core.image_messages import COMPRESSED_IMAGE_TYPE, make_compressed_image

    ts = typestore()
    topic = "/camera/image_raw/compressed"
    with Writer(tmp_path / "jpeg_bag", version=8, storage_plugin=StoragePlugin.MCAP) as writer:
        conn = writer.add_connection(topic, COMPRESSED_IMAGE_TYPE, typestore=ts)
        for i, img in enumerate(frames(3)):
            ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img[:, :, ::-1]))
            msg = make_compressed_image(ts.types[COMPRESSED_IMAGE_TYPE], make_header(i * 10**8, "cam", ts),
                                        "rgb8; jpeg compressed bgr8", buf.tobytes())
            writer.write(conn, i * 10**8, ts.serialize_cdr(msg, COMPRESSED_IMAGE_TYPE))
    rows = run_bag_bench(tmp_path / "jpeg_bag", topic, [codecs.create("webp")], tmp_path / "o", progress=False)
    assert rows[0]["frames"] == 3
    out = read_bag(tmp_path / "o" / "bag")
    assert len(out[topic + "/semcomp"]) == len(out[topic + "/semcomp/reconstructed"]) == 3
    recon = image_to_rgb(out[topic + "/semcomp/reconstructed"][0][2])
    assert np.abs(recon.astype(int) - frames(1)[0]).mean(axis=(0, 1)).max() < 12  # decoded in RGB order
