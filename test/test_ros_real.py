"""The three nodes on a real rclpy (ROS 2 wheels from PyPI: ``pip install -e '.[ros]'``), over DDS.

Each test starts the real EncoderNode / DecoderNode / BenchmarkNode classes in this process on a
fresh rclpy context, spun by a SingleThreadedExecutor in a thread (what ``rclpy.spin`` in the
nodes' ``main`` uses), plus a probe node that publishes camera frames and listens. Parameters
are set through the nodes' ``set_parameters`` services, one parameter per call, as
``ros2 param set`` does. Traffic stays on localhost in a random ROS domain (test/conftest.py).
Skipped where rclpy cannot be imported.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from array import array

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="needs rclpy: pip install -e '.[ros]' (ROS 2 wheels) or a sourced ROS 2")
pytest.importorskip("sensor_msgs.msg", reason="needs sensor_msgs (pip install -e '.[ros]')")
pytest.importorskip("diagnostic_msgs.msg", reason="needs diagnostic_msgs (pip install -e '.[ros]')")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rcl_interfaces.srv import SetParameters  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402

from semcomp_core.codecs import CODECS, decode  # noqa: E402
from semcomp_core.pipeline import build_codec  # noqa: E402

pytestmark = pytest.mark.rclpy

RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
TIMEOUT = 20.0


def wait_for(predicate, timeout=TIMEOUT, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Probe:
    """A test node: publishes frames, collects what the semcomp nodes publish, calls services."""

    def __init__(self, ros, camera, qos=RELIABLE):
        self.node = Node(f"semcomp_probe_{uuid.uuid4().hex[:8]}", context=ros.context)
        self.ros = ros
        self.camera = camera
        self.lock = threading.Lock()
        self.bitstreams, self.recons, self.diagnostics = [], [], []
        self.image_pub = self.node.create_publisher(Image, camera, qos)
        self.bits_pub = self.node.create_publisher(CompressedImage, camera + "/semcomp", qos)
        self.recon_pub = self.node.create_publisher(Image, camera + "/semcomp/reconstructed", qos)
        self.node.create_subscription(CompressedImage, camera + "/semcomp", self._keep(self.bitstreams), qos)
        self.node.create_subscription(Image, camera + "/semcomp/reconstructed", self._keep(self.recons), qos)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._keep(self.diagnostics), 10)
        ros.executor.add_node(self.node)

    def _keep(self, store):
        def callback(msg):
            with self.lock:
                store.append(msg)
        return callback

    def messages(self, store):
        with self.lock:
            return list(store)

    # -- publishing ----------------------------------------------------------------------
    @staticmethod
    def image(rgb, sec, nanosec=0, frame_id="front", encoding="rgb8"):
        msg = Image()
        msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id = sec, nanosec, frame_id
        msg.height, msg.width = rgb.shape[:2]
        msg.encoding, msg.is_bigendian, msg.step = encoding, 0, rgb.shape[1] * 3
        msg.data = array("B", np.ascontiguousarray(rgb).tobytes())
        return msg

    def wait_connected(self, publisher, n=1):
        wait_for(lambda: publisher.get_subscription_count() >= n, what=f"{n} subscriber(s) of {publisher.topic_name}")

    def send_and_wait_bitstream(self, rgb, sec, frame_id="front"):
        """Publish one frame, return the bitstream message with its stamp."""
        self.image_pub.publish(self.image(rgb, sec, 0, frame_id))
        return wait_for(lambda: next((m for m in self.messages(self.bitstreams) if m.header.stamp.sec == sec), None),
                        what=f"bitstream of frame {sec}")

    def wait_recon(self, sec):
        return wait_for(lambda: next((m for m in self.messages(self.recons) if m.header.stamp.sec == sec), None),
                        what=f"reconstruction of frame {sec}")

    def diag_values(self, status_name, predicate=lambda v: True):
        """The latest diagnostics of ``status_name`` whose values satisfy ``predicate``."""
        def find():
            for arr in reversed(self.messages(self.diagnostics)):
                for st in arr.status:
                    values = {kv.key: kv.value for kv in st.values}
                    if st.name == status_name and predicate(values):
                        return st, values
            return None
        return wait_for(find, what=f"diagnostics of {status_name}")

    # -- parameters through the service, one per call (as `ros2 param set`) -------------------
    def set_param(self, node_name, name, value):
        client = self.node.create_client(SetParameters, f"/{node_name}/set_parameters")
        try:
            assert client.wait_for_service(timeout_sec=TIMEOUT)
            request = SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()])
            future = client.call_async(request)
            wait_for(future.done, what=f"set {name} on {node_name}")
            (result,) = future.result().results
            return result
        finally:
            self.node.destroy_client(client)


class Ros:
    """A fresh rclpy context, one SingleThreadedExecutor spinning in a thread, and cleanup."""

    def __init__(self):
        self.context = Context()
        rclpy.init(context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.nodes = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self):
        while not self._stop.is_set() and self.context.ok():
            self.executor.spin_once(timeout_sec=0.02)

    def start(self, node_class, **params):
        node = node_class(context=self.context,
                          parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
        self.nodes.append(node)
        self.executor.add_node(node)
        return node

    def close(self):
        self._stop.set()
        self.thread.join(5)
        for node in self.nodes:
            node.close()
            node.destroy_node()
        self.executor.shutdown()
        rclpy.shutdown(context=self.context)


@pytest.fixture
def ros():
    r = Ros()
    yield r
    r.close()


@pytest.fixture
def camera():
    return f"/semcomp_test_{uuid.uuid4().hex[:8]}/image_raw"


@pytest.fixture(scope="module")
def rgb(sample_image):
    return np.ascontiguousarray(sample_image[:96, :128])


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """The nodes' networks on one thread: on a 2-core machine shared with other jobs, two OpenMP
    threads spin against each other (a 96x64 segmentation then takes ~1 s instead of ~20 ms)."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def nodes():
    from semcomp_ros import benchmark_node, decoder_node, encoder_node
    return encoder_node.EncoderNode, decoder_node.DecoderNode, benchmark_node.BenchmarkNode


def common(camera, **extra):
    return dict(qos_profile="reliable", diagnostics_period=0.2, warn_throttle_s=0.0, **extra)


# -- encoder -> decoder ----------------------------------------------------------------------------
def test_stamps_and_frame_ids_pass_encoder_and_decoder(ros, camera, rgb, nodes):
    Encoder, Decoder, _ = nodes
    ros.start(Encoder, **common(camera, input_topic=camera, codec="jpeg", quality=80))
    ros.start(Decoder, **common(camera, input_topic=camera + "/semcomp"))
    probe = Probe(ros, camera)
    probe.wait_connected(probe.image_pub)
    probe.wait_connected(probe.bits_pub, 2)  # decoder and probe
    for i, frame_id in enumerate(["front", "left", "rear"]):
        probe.image_pub.publish(probe.image(rgb, 100 + i, 1000 * i + 7, frame_id))
    for i, frame_id in enumerate(["front", "left", "rear"]):
        bits = wait_for(lambda: next((m for m in probe.messages(probe.bitstreams)
                                      if m.header.stamp.sec == 100 + i), None), what="bitstream")
        recon = probe.wait_recon(100 + i)
        for msg in (bits, recon):
            assert (msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id) == (
                100 + i, 1000 * i + 7, frame_id)
        assert bits.format == "semcomp/jpeg:quality=80"
        assert (recon.height, recon.width, recon.encoding, recon.step) == (96, 128, "rgb8", 128 * 3)
        image = np.frombuffer(bytes(recon.data), np.uint8).reshape(96, 128, 3)
        assert np.abs(image.astype(int) - rgb).mean() < 8
        assert np.array_equal(image, decode(bytes(bits.data)))


def test_default_sensor_data_qos_connects_to_a_sensor_data_camera(ros, camera, rgb, nodes):
    Encoder, _, _ = nodes
    ros.start(Encoder, input_topic=camera, codec="jpeg")  # qos_profile sensor_data (best effort)
    probe = Probe(ros, camera, qos=qos_profile_sensor_data)
    probe.wait_connected(probe.image_pub)

    def got_one():
        probe.image_pub.publish(probe.image(rgb, 7))
        time.sleep(0.05)
        return probe.messages(probe.bitstreams)
    assert wait_for(got_one, what="a best-effort bitstream")[0].format.startswith("semcomp/jpeg")


# -- codec switching with single-parameter calls ------------------------------------------------------
def test_switching_codec_alone_works_whatever_quality_was(ros, camera, rgb, nodes):
    Encoder, Decoder, _ = nodes
    enc = ros.start(Encoder, **common(camera, input_topic=camera, codec="jpeg", quality=90))
    ros.start(Decoder, **common(camera, input_topic=camera + "/semcomp"))
    probe = Probe(ros, camera)
    probe.wait_connected(probe.image_pub)
    probe.wait_connected(probe.bits_pub, 2)
    assert probe.send_and_wait_bitstream(rgb, 1).format == "semcomp/jpeg:quality=90"

    def switch(name, value, expected_format, sec):
        result = probe.set_param("encoder_node", name, value)
        assert result.successful, result.reason
        assert enc.stage.wait(60)
        bits = probe.send_and_wait_bitstream(rgb, sec)
        assert bits.format.startswith(expected_format), bits.format
        recon = probe.wait_recon(sec)  # the decoder node decodes every codec from the header
        assert (recon.height, recon.width) == (96, 128)
        return bits

    switch("codec", "bpg", "semcomp/bpg:q=51", 2)  # q=90 would be rejected: quality was reset
    assert enc.get_parameter("quality").value == -1
    assert enc.get_parameter("codec_options").value == ""
    switch("codec", "semantic-gan", "semcomp/semantic-gan:level=1", 3)
    bad = probe.set_param("encoder_node", "quality", 90)  # no semantic-gan level 90
    assert not bad.successful and "level" in bad.reason
    switch("codec", "jpeg", "semcomp/jpeg:quality=10", 4)  # jpeg's default quality
    switch("quality", 90, "semcomp/jpeg:quality=90", 5)
    switch("codec", "bpg:q=45", "semcomp/bpg:q=45", 6)  # a full spec in one call
    assert enc.get_parameter("quality").value == -1
    switch("codec_options", "impl=x265", "semcomp/bpg:q=45", 7)
    assert enc.stage.codec.config["impl"] == "x265"
    assert enc.stage.counters["rebuild_failures"] == 0 and enc.stage.counters["rebuilds"] == 6


def test_rejected_values_leave_the_running_codec(ros, camera, rgb, nodes):
    Encoder, _, _ = nodes
    enc = ros.start(Encoder, **common(camera, input_topic=camera, codec="jpeg", quality=90))
    probe = Probe(ros, camera)
    probe.wait_connected(probe.image_pub)
    for name, value, needle in [("codec", "nope", "nope"),
                                ("quality", 500, ""),  # outside the declared range -1..100 (rclpy)
                                ("quality", 96, "quality=96"),  # in range, but not jpeg's 1..95
                                ("codec_options", "colour=blue", "colour"),
                                ("codec", "bpg:q=99", "q=99"),
                                ("device", "gpu", "gpu")]:
        result = probe.set_param("encoder_node", name, value)
        assert not result.successful, (name, value)
        assert needle in result.reason, result.reason
    assert enc.get_parameter("codec").value == "jpeg" and enc.get_parameter("quality").value == 90
    assert enc.stage.pending is None and enc.stage.counters["rebuilds"] == 0
    assert probe.send_and_wait_bitstream(rgb, 1).format == "semcomp/jpeg:quality=90"


def test_executor_keeps_spinning_while_a_slow_codec_builds(ros, camera, rgb, nodes):
    Encoder, _, _ = nodes
    enc = ros.start(Encoder, **common(camera, input_topic=camera, codec="jpeg", quality=30))
    building = threading.Event()

    def slow_builder(*key):  # stands in for loading large models
        building.set()
        time.sleep(2.0)
        return build_codec(*key)

    enc.stage.builder = slow_builder
    probe = Probe(ros, camera)
    ticks = []
    probe.node.create_timer(0.05, lambda: ticks.append(time.monotonic()))
    probe.wait_connected(probe.image_pub)
    t0 = time.monotonic()
    result = probe.set_param("encoder_node", "codec", "webp")
    answered = time.monotonic() - t0
    assert result.successful and answered < 1.0, answered  # validated, not built, in the callback
    assert building.wait(5)
    n_ticks = len(ticks)
    bits = probe.send_and_wait_bitstream(rgb, 1)  # encoded while the build runs ...
    assert bits.format == "semcomp/jpeg:quality=30"  # ... with the old codec
    assert enc.stage.pending is not None
    time.sleep(0.5)
    assert len(ticks) >= n_ticks + 5  # the executor kept running timers meanwhile
    assert enc.stage.wait(10)
    assert probe.send_and_wait_bitstream(rgb, 2).format.startswith("semcomp/webp")
    _, values = probe.diag_values("encoder_node: encoder", lambda v: v["codec_rebuilds"] == "1")
    assert values["codec_pending"] == "-"


def test_failed_build_keeps_old_codec_and_is_reported(ros, camera, rgb, nodes):
    Encoder, _, _ = nodes
    enc = ros.start(Encoder, **common(camera, input_topic=camera, codec="jpeg", quality=30))
    probe = Probe(ros, camera)
    probe.wait_connected(probe.image_pub)
    # valid settings, but the model folder does not exist: only the build can find out
    result = probe.set_param("encoder_node", "codec", "semantic-gan:segmenter=/no/such/model")
    assert result.successful
    assert enc.stage.wait(30)
    assert probe.send_and_wait_bitstream(rgb, 1).format == "semcomp/jpeg:quality=30"
    st, values = probe.diag_values("encoder_node: encoder", lambda v: v["codec_rebuild_failures"] == "1")
    assert values["codec"] == "jpeg:quality=30"


# -- bad input is counted, the nodes keep running ------------------------------------------------------
def test_corrupt_and_wrong_size_messages_are_counted(ros, camera, rgb, nodes):
    Encoder, Decoder, _ = nodes
    ros.start(Encoder, **common(camera, input_topic=camera, codec="jpeg"))
    ros.start(Decoder, **common(camera, input_topic=camera + "/semcomp"))
    probe = Probe(ros, camera)
    probe.wait_connected(probe.image_pub)
    probe.wait_connected(probe.bits_pub, 2)
    short = probe.image(rgb, 1)
    short.data = short.data[:-30]  # fewer bytes than step * height
    probe.image_pub.publish(short)
    probe.image_pub.publish(probe.image(rgb[:, :, 0].copy(), 2, encoding="rgb8"))  # step/size mismatch
    bad = CompressedImage()
    bad.header.stamp.sec, bad.format, bad.data = 3, "semcomp/jpeg", array("B", b"SC" + bytes(40))
    probe.bits_pub.publish(bad)
    foreign = CompressedImage()
    foreign.header.stamp.sec, foreign.format, foreign.data = 4, "jpeg", array("B", b"\xff\xd8")
    probe.bits_pub.publish(foreign)
    _, enc_values = probe.diag_values("encoder_node: encoder", lambda v: v["frames_rejected"] == "2")
    st, dec_values = probe.diag_values("decoder_node: decoder",
                                       lambda v: v["frames_corrupt"] == "1" and v["frames_rejected"] == "1")
    assert st.hardware_id == f"{socket.gethostname()}:{camera}/semcomp"
    # still running
    probe.send_and_wait_bitstream(rgb, 5)
    assert probe.wait_recon(5).header.stamp.sec == 5
    assert enc_values["frames_encoded"] == "0"


def test_decoder_options_are_validated_and_live(ros, camera, rgb, nodes):
    Encoder, Decoder, _ = nodes
    ros.start(Encoder, **common(camera, input_topic=camera, codec="jpeg"))
    dec = ros.start(Decoder, **common(camera, input_topic=camera + "/semcomp"))
    probe = Probe(ros, camera)
    probe.wait_connected(probe.image_pub)
    probe.wait_connected(probe.bits_pub, 2)
    bad = probe.set_param("decoder_node", "decoder_options", "colour=blue")
    assert not bad.successful and "colour" in bad.reason
    assert probe.set_param("decoder_node", "decoder_options", "decoder=default").successful
    assert dec.stage.decoder_options == "decoder=default"
    probe.send_and_wait_bitstream(rgb, 1)
    assert probe.wait_recon(1).width == 128


# -- benchmark ------------------------------------------------------------------------------------
def test_benchmark_node_scores_pipeline_and_counts_mismatches(ros, camera, rgb, nodes, tmp_path):
    Encoder, Decoder, Benchmark = nodes
    ros.start(Encoder, **common(camera, input_topic=camera, codec="jpeg", quality=60))
    ros.start(Decoder, **common(camera, input_topic=camera + "/semcomp"))
    csv_path = tmp_path / "bench.csv"
    bench = ros.start(Benchmark, **common(camera, original_topic=camera, csv_path=str(csv_path)))
    probe = Probe(ros, camera)
    probe.wait_connected(probe.image_pub, 2)  # encoder and benchmark
    probe.wait_connected(probe.recon_pub, 2)  # benchmark and probe
    for i in range(3):
        probe.image_pub.publish(probe.image(rgb, 10 + i))
        probe.wait_recon(10 + i)
    wait_for(lambda: bench.stage.counters["paired"] == 3, what="3 pairs")
    # a reconstruction of the wrong size for a new stamp
    probe.recon_pub.publish(probe.image(rgb[:48, :64], 50))
    probe.image_pub.publish(probe.image(rgb, 50))
    st, values = probe.diag_values("benchmark_node: benchmark", lambda v: v["frames_size_mismatch"] == "1")
    assert st.hardware_id == f"{socket.gethostname()}:{camera}"
    assert values["codec"] == "jpeg:quality=60" and float(values["latency_ms_p50"]) > 0
    assert float(values["psnr_mean_db"]) > 20
    bench.close()
    rows = csv_path.read_text().splitlines()
    assert len(rows) == 4 and rows[1].startswith("10.000000000,front,jpeg:quality=60")
    header = rows[0].split(",")
    assert {"latency_ms", "encode_stage_ms", "decode_stage_ms", "stamp_latency_ms"} <= set(header)


def test_benchmark_node_refuses_an_unknown_segmenter(ros, camera, nodes):
    _, _, Benchmark = nodes
    from semcomp_core.errors import UsageError
    with pytest.raises(UsageError, match="no segmenter"):
        ros.start(Benchmark, original_topic=camera, csv_path="", segmenter="/no/such/segmenter")


# -- the console scripts as processes -------------------------------------------------------------------
def test_node_processes_start_serve_and_exit_cleanly(ros, camera, rgb):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    bad = subprocess.run([sys.executable, "-m", "semcomp_ros.encoder_node", "--ros-args", "-p", "codec:=nope"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "cannot start" in bad.stderr and "nope" in bad.stderr
    proc = subprocess.Popen([sys.executable, "-m", "semcomp_ros.decoder_node", "--ros-args",
                             "-p", f"input_topic:={camera}/semcomp", "-p", "qos_profile:=reliable"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        probe = Probe(ros, camera)
        probe.wait_connected(probe.bits_pub, 2)
        msg = CompressedImage()
        msg.header.stamp.sec, msg.header.frame_id = 42, "front"
        codec = build_codec("jpeg", 70)
        msg.format, msg.data = "semcomp/" + codec.label(), array("B", codec.encode(rgb))
        probe.bits_pub.publish(msg)
        assert probe.wait_recon(42).header.frame_id == "front"
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out


def test_decoder_node_renders_what_the_encoder_chose_and_format_has_no_paths(ros, camera, rgb, nodes):
    """Seed and level travel in the container: decoder_node (default receiver config) renders the same
    pixels as `semcomp decode`/the bench; the format string never carries a local path."""
    from semcomp_core.paths import WEIGHTS_DIR

    Encoder, Decoder, _ = nodes
    ros.start(Encoder, **common(camera, input_topic=camera, codec="semantic-gan:level=xs:seed=5",
                                codec_options=f"segmenter={WEIGHTS_DIR / 'segmenter'}"))
    ros.start(Decoder, **common(camera, input_topic=camera + "/semcomp"))
    probe = Probe(ros, camera)
    probe.wait_connected(probe.image_pub)
    probe.wait_connected(probe.bits_pub, 2)
    bits = probe.send_and_wait_bitstream(rgb, 300)
    # gop=30 (the node's default stream setting) is an encoder choice and travels in the format too
    assert bits.format == "semcomp/semantic-gan:level=0:seed=5:gop=30" and "/" not in bits.format[len("semcomp/"):]
    recon = probe.wait_recon(300)
    image = np.frombuffer(bytes(recon.data), np.uint8).reshape(96, 128, 3)
    assert np.array_equal(image, decode(bytes(bits.data)))
    seed0 = build_codec("semantic-gan:level=xs").encode(rgb)
    assert not np.array_equal(image, decode(seed0))


# -- streams: gop, kbps, loss, stamps, sizes (issue 10) ------------------------------------------------
#: 96x64 pans read as largely uncertain: the stream tests run without selective coding (its
#: fallback would make every frame a classic key frame); test_user_roi_... covers it over DDS
SEM = "semantic-gan:roi=none"
S = 1_000_000_000
FRAME_NS = 100_000_000  # 10 fps


@pytest.fixture(scope="module")
def pan(sample_image):
    """96x64 frames of a camera pan (content changes every frame; small, so semantic-gan is cheap)."""
    def frame(i, h=64, w=96):
        x, y = (i * 5) % (sample_image.shape[1] - w), (i * 2) % (sample_image.shape[0] - h)
        return np.ascontiguousarray(sample_image[y:y + h, x:x + w])
    return frame


def stamp_of(msg):
    return msg.header.stamp.sec * S + msg.header.stamp.nanosec


def wait_stamp(probe, store, stamp_ns, frame_id=None):
    return wait_for(lambda: next((m for m in probe.messages(store) if stamp_of(m) == stamp_ns
                                  and (frame_id is None or m.header.frame_id == frame_id)), None),
                    what=f"message stamped {stamp_ns} ({frame_id})")


def send_frame(probe, rgb, stamp_ns, frame_id="front"):
    """Publish one frame, return its bitstream (one frame at a time: no queue ever drops one)."""
    sec, nanosec = divmod(stamp_ns, S)
    probe.image_pub.publish(probe.image(rgb, sec, nanosec, frame_id))
    return wait_stamp(probe, probe.bitstreams, stamp_ns, frame_id)


def stream_pipeline(ros, camera, nodes, decoder=True, **encoder_params):
    """Encoder (and decoder) nodes plus a probe, connected, every subscriber of the bitstream known to
    the encoder (so no receiver-joined key frame lands mid-test)."""
    Encoder, Decoder, _ = nodes
    enc = ros.start(Encoder, **common(camera, input_topic=camera, **encoder_params))
    dec = ros.start(Decoder, **common(camera, input_topic=camera + "/semcomp")) if decoder else None
    probe = Probe(ros, camera)
    probe.wait_connected(probe.image_pub)
    probe.wait_connected(enc.publisher, 2 if decoder else 1)
    return enc, dec, probe


def test_semantic_stream_keeps_stamps_and_frame_ids_through_key_and_inter_frames(ros, camera, pan, nodes):
    enc, dec, probe = stream_pipeline(ros, camera, nodes, codec=SEM, gop=5)
    sent = []
    for i in range(8):
        stamp, frame_id = 200 * S + i * FRAME_NS + 7, f"cam{i % 3}"
        bits = send_frame(probe, pan(i), stamp, frame_id)
        recon = wait_stamp(probe, probe.recons, stamp, frame_id)  # decoded in order, header unchanged
        assert (recon.height, recon.width, recon.encoding) == (64, 96, "rgb8")
        sent.append(bits)
    assert sent[0].format == "semcomp/semantic-gan:level=1:gop=5:roi=none"
    assert sum(len(b.data) for b in sent[1:5]) < 4 * len(sent[0].data)  # inter frames are smaller
    _, enc_values = probe.diag_values("encoder_node: encoder", lambda v: v["frames_encoded"] == "8")
    assert (enc_values["key_frames"], enc_values["inter_frames"]) == ("2", "6")
    assert enc_values["key_frame_reasons"] == "gop:1 start:1" and enc_values["gop"] == "5"
    st, dec_values = probe.diag_values("decoder_node: decoder", lambda v: v["frames_decoded"] == "8")
    assert (dec_values["key_frames"], dec_values["inter_frames"], dec_values["frames_lost"]) == ("2", "6", "0")
    assert dec_values["streams"] == "semantic-gan" and dec_values["waiting_for_key_frame"] == "no"


def test_stream_survives_a_dropped_message(ros, camera, pan, nodes):
    """The test plays the encoder (an EncoderStage in this process) and loses frame 1 on the link."""
    from semcomp_core.pipeline import EncoderStage

    _, Decoder, _ = nodes
    dec = ros.start(Decoder, **common(camera, input_topic=camera + "/semcomp"))
    probe = Probe(ros, camera)
    probe.wait_connected(probe.bits_pub, 2)
    stage = EncoderStage(SEM, gop=4)
    messages = []
    for i in range(8):
        msg = CompressedImage()
        msg.header.stamp.sec, msg.header.frame_id = 300 + i, "front"
        frame = stage.encode(pan(i), msg.header)
        msg.format, msg.data = frame.format, array("B", frame.data)
        messages.append((frame.key, msg))
    assert [key for key, _ in messages] == [True, False, False, False, True, False, False, False]
    probe.bits_pub.publish(messages[0][1])
    probe.wait_recon(300)
    for i in (2, 3):  # frame 1 never arrives
        probe.bits_pub.publish(messages[i][1])
    st, values = probe.diag_values("decoder_node: decoder", lambda v: v["frames_lost"] == "2")
    assert values["waiting_for_key_frame"] == "semantic-gan" and values["recoveries"] == "0"
    assert dec.stage.waiting_for_key == ["semantic-gan"]
    for i in range(4, 8):
        probe.bits_pub.publish(messages[i][1])
    probe.wait_recon(307)
    assert sorted(m.header.stamp.sec for m in probe.messages(probe.recons)) == [300, 304, 305, 306, 307]
    st, values = probe.diag_values("decoder_node: decoder", lambda v: v["frames_decoded"] == "5")
    assert (values["frames_lost"], values["recoveries"], values["waiting_for_key_frame"]) == ("2", "1", "no")
    warned = [st for arr in probe.messages(probe.diagnostics) for st in arr.status
              if st.name == "decoder_node: decoder" and "not shown" in st.message]
    assert warned and warned[0].level == b"\x01"  # WARN while frames were lost


def test_live_gop_and_kbps_changes_and_rejected_values(ros, camera, pan, nodes):
    enc, dec, probe = stream_pipeline(ros, camera, nodes, codec=SEM, gop=30)
    send_frame(probe, pan(0), 10 * S)
    send_frame(probe, pan(1), 10 * S + FRAME_NS)

    def change(name, value, sec):
        result = probe.set_param("encoder_node", name, value)
        assert result.successful, result.reason
        assert enc.stage.wait(60)
        bits = send_frame(probe, pan(sec), sec * S)
        assert probe.wait_recon(sec)
        return bits

    bits = change("gop", 7, 11)
    assert bits.format == "semcomp/semantic-gan:level=1:gop=7:roi=none"
    _, values = probe.diag_values("encoder_node: encoder", lambda v: v["frames_encoded"] == "3")
    assert values["gop"] == "7" and values["key_frame_reasons"] == "start:2"  # the new stream's key frame
    bits = change("kbps", 20.0, 12)
    assert bits.format == "semcomp/semantic-gan:level=1:gop=7:kbps=20.0:roi=none"
    _, values = probe.diag_values("encoder_node: encoder", lambda v: v["frames_encoded"] == "4")
    assert values["kbps_target"] == "20" and values["last_key_reason"] == "start"
    for name, value, needle in [("gop", 0, "gop"), ("gop", 100001, "gop"), ("kbps", -5.0, "kbps"),
                                ("kbps", 2e6, "kbps"), ("kbps", -5, "")]:  # an integer: wrong type
        result = probe.set_param("encoder_node", name, value)
        assert not result.successful and result.reason, (name, value)
        assert needle in result.reason, result.reason
    assert (enc.get_parameter("gop").value, enc.get_parameter("kbps").value) == (7, 20.0)
    assert enc.stage.pending is None and enc.stage.counters["rebuilds"] == 2
    assert enc.stage.codec.config["gop"] == 7 and enc.stage.codec.config["kbps"] == 20.0
    change("codec", "jpeg", 13)  # intra codecs ignore both; the diagnostics say so
    _, values = probe.diag_values("encoder_node: encoder", lambda v: v["frames_encoded"] == "5")
    assert (values["gop"], values["kbps_target"]) == ("n/a (intra codec)", "n/a (no rate control)")
    if "h264" in CODECS:  # the video anchors: raw packets, decoded by their format over DDS
        bits = change("codec", "h264", 14)
        assert bits.format.startswith("semcomp/h264") and "gop=7" in bits.format
        assert enc.stage.codec.config["kbps"] == 20
        bad = probe.set_param("encoder_node", "codec_options", "bitrate=5")
        assert not bad.successful and "no parameter 'bitrate'" in bad.reason
        bad = probe.set_param("encoder_node", "codec", "h264:crf=20")  # crf and kbps: two rate controls
        assert not bad.successful and "not both" in bad.reason
        assert enc.stage.label.startswith("h264")
        _, values = probe.diag_values("encoder_node: encoder",
                                      lambda v: "not both" in v["last_settings_rejection"])
        assert values["settings_rejected"] == "2"  # out-of-range/wrong-type values: rclpy refuses them first


def test_rate_control_holds_its_budget_over_dds(ros, camera, pan, nodes):
    """50 frames at 12 kbps, 10 fps stamps. The codec's own +-5 % claim is over hundreds of frames; over
    this short window its discrete operating points keep it a few percent under: +-15 %."""
    enc, _, probe = stream_pipeline(ros, camera, nodes, decoder=False, codec=SEM, gop=30, kbps=12.0)
    sizes = [len(send_frame(probe, pan(i), 400 * S + i * FRAME_NS).data) for i in range(50)]
    st, values = probe.diag_values("encoder_node: encoder", lambda v: v["frames_encoded"] == "50")
    window = float(values["bitrate_window_kbps"])
    assert window == pytest.approx(12.0, rel=0.15), values
    assert window == pytest.approx(sum(sizes[1:]) * 8 / 1e3 / 4.9, rel=1e-3)  # what crossed the link
    assert values["kbps_target"] == "12" and values["bitrate_window_frames"] == "50"
    assert st.level == b"\x00", st.message  # OK: not over budget, nothing skipped


def test_duplicated_and_out_of_order_stamps_are_counted_and_the_stream_goes_on(ros, camera, pan, nodes):
    enc, dec, probe = stream_pipeline(ros, camera, nodes, codec=SEM, gop=10, kbps=12.0)
    offsets = [0, 1, 1, 3, 2, 4]  # a duplicate, then one older than the newest
    for i, k in enumerate(offsets):
        send_frame(probe, pan(i), 500 * S + k * FRAME_NS, f"f{i}")
        wait_stamp(probe, probe.recons, 500 * S + k * FRAME_NS, f"f{i}")  # every frame decodes
    _, values = probe.diag_values("encoder_node: encoder", lambda v: v["frames_encoded"] == "6")
    assert values["stamp_anomalies"] == "2" and "older than" in values["last_stamp_anomaly"]
    assert enc.stage.session.rate.stamp_anomalies == 2  # no budget for them either
    _, dec_values = probe.diag_values("decoder_node: decoder", lambda v: v["frames_decoded"] == "6")
    assert dec_values["frames_lost"] == "0"
    send_frame(probe, pan(6), 501 * S)
    assert probe.wait_recon(501)


def test_resolution_change_mid_stream_sends_a_key_frame(ros, camera, pan, nodes):
    enc, dec, probe = stream_pipeline(ros, camera, nodes, codec=SEM, gop=30)
    for i in range(5):
        h, w = (64, 96) if i < 3 else (96, 128)
        send_frame(probe, pan(i, h, w), 600 * S + i * FRAME_NS)
        recon = wait_stamp(probe, probe.recons, 600 * S + i * FRAME_NS)
        assert (recon.height, recon.width) == (h, w)
    _, values = probe.diag_values("encoder_node: encoder", lambda v: v["frames_encoded"] == "5")
    assert values["resolution_changes"] == "1" and values["key_frame_reasons"] == "resize:1 start:1"
    assert (values["key_frames"], values["inter_frames"]) == ("2", "3")
    _, dec_values = probe.diag_values("decoder_node: decoder", lambda v: v["frames_decoded"] == "5")
    assert dec_values["frames_lost"] == "0" and dec_values["key_frames"] == "2"


def test_a_receiver_joining_mid_stream_gets_a_key_frame_at_once(ros, camera, pan, nodes):
    _, Decoder, _ = nodes
    enc, _, probe = stream_pipeline(ros, camera, nodes, decoder=False, codec=SEM, gop=30)
    for i in range(3):
        send_frame(probe, pan(i), 700 * S + i * FRAME_NS)
    ros.start(Decoder, **common(camera, input_topic=camera + "/semcomp"))
    probe.wait_connected(enc.publisher, 2)
    send_frame(probe, pan(3), 700 * S + 3 * FRAME_NS)  # a key frame, though gop=30 is far off
    recon = wait_stamp(probe, probe.recons, 700 * S + 3 * FRAME_NS)
    assert (recon.height, recon.width) == (64, 96)
    _, values = probe.diag_values("encoder_node: encoder", lambda v: v["frames_encoded"] == "4")
    assert values["key_frame_reasons"] == "request:1 start:1" and values["key_frame_requests"] == "2"
    _, dec_values = probe.diag_values("decoder_node: decoder", lambda v: v["frames_decoded"] == "1")
    assert dec_values["frames_lost"] == "0"


def test_user_roi_parameters_send_pixels_and_count_them(ros, camera, pan, nodes, tmp_path):
    """roi_boxes / roi_mask: the boxed pixels travel as an ROI layer (over DDS, decoded by the decoder node);
    a mask of the wrong size is refused per frame and counted; a codec without ROI coding refuses them."""
    from semcomp_core.bench.runner import roi_split

    enc, dec, probe = stream_pipeline(ros, camera, nodes, codec=SEM, gop=30,
                                      codec_options="budget=600", roi_boxes="8,8,56,40")
    bits = send_frame(probe, pan(0), 20 * S)
    assert roi_split(bytes(bits.data))[0] > 0
    assert probe.wait_recon(20)
    _, values = probe.diag_values("encoder_node: encoder", lambda v: v["frames_encoded"] == "1")
    assert values["roi_frames"] == "1" and values["fallback_frames"] == "0"
    from PIL import Image

    Image.fromarray(np.full((10, 10), 255, np.uint8)).save(tmp_path / "small.png")
    result = probe.set_param("encoder_node", "roi_mask", str(tmp_path / "small.png"))
    assert result.successful, result.reason
    assert enc.stage.wait(60)
    sec, nanosec = divmod(21 * S, S)
    probe.image_pub.publish(probe.image(pan(1), sec, nanosec, "front"))
    probe.diag_values("encoder_node: encoder", lambda v: v["frames_rejected"] == "1")
    assert "roi_mask" in enc.stage.last_error and "10x10, the frame is 96x64" in enc.stage.last_error
    bad = probe.set_param("encoder_node", "codec", "bpg")
    assert not bad.successful and "region-of-interest" in bad.reason


def test_model_dir_backend_and_engine_cache_parameters(ros, camera, pan, nodes, tmp_path, monkeypatch):
    """model_dir picks the networks (segmenter/ for the encoder, decoder/ for the decoder), backend where
    they run, engine_cache_dir where exports are cached; a model_dir without the network is refused."""
    import shutil

    from semcomp_core.paths import WEIGHTS_DIR

    monkeypatch.setenv("SEMCOMP_CACHE", str(tmp_path / "elsewhere"))
    models = tmp_path / "models"
    for name in ("segmenter", "decoder"):
        shutil.copytree(WEIGHTS_DIR / name, models / name)
    Encoder, Decoder, _ = nodes
    enc = ros.start(Encoder, **common(camera, input_topic=camera, codec=SEM, gop=5, model_dir=str(models),
                                      engine_cache_dir=str(tmp_path / "cache")))
    dec = ros.start(Decoder, **common(camera, input_topic=camera + "/semcomp", model_dir=str(models)))
    assert os.environ["SEMCOMP_CACHE"] == str(tmp_path / "cache")
    assert enc.stage.codec.config["segmenter"] == str(models / "segmenter")
    assert dec.stage.decoder_options == f"decoder={models / 'decoder'}"
    probe = Probe(ros, camera)
    probe.wait_connected(probe.image_pub)
    probe.wait_connected(enc.publisher, 2)
    bits = send_frame(probe, pan(0), 30 * S)
    assert "models" not in bits.format                     # local paths never go on the wire
    assert probe.wait_recon(30)
    bad = probe.set_param("encoder_node", "model_dir", str(tmp_path))
    assert not bad.successful and "segmenter/config.json" in bad.reason
    bad = probe.set_param("encoder_node", "backend", "cuda-magic")
    assert not bad.successful
    assert probe.set_param("encoder_node", "backend", "onnxruntime").successful
    assert enc.stage.wait(120)
    assert enc.stage.codec.config["backend"] == "onnxruntime"
    send_frame(probe, pan(1), 31 * S)
    assert "onnxruntime" in enc.stage.codec.implementation
    assert any((tmp_path / "cache").rglob("segmenter.onnx"))   # exported into engine_cache_dir
