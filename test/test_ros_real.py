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

from semcomp_core.codecs import decode  # noqa: E402
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
    switch("codec", "semantic-gan", "semcomp/semantic-gan:level=2", 3)
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
    assert bits.format == "semcomp/semantic-gan:level=0:seed=5" and "/" not in bits.format[len("semcomp/"):]
    recon = probe.wait_recon(300)
    image = np.frombuffer(bytes(recon.data), np.uint8).reshape(96, 128, 3)
    assert np.array_equal(image, decode(bytes(bits.data)))
    seed0 = build_codec("semantic-gan:level=xs").encode(rgb)
    assert not np.array_equal(image, decode(seed0))
