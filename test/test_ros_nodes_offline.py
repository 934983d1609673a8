"""The rclpy wiring of the three nodes, run against minimal stand-ins for rclpy and the message packages.

ROS 2 is not installable everywhere the tests run; test/test_ros_real.py covers the
real thing where rclpy imports (the "ros" extra installs it from PyPI). These tests
also cover the fallback for rclpy without pre-/post-set parameter callbacks (Humble). These stand-ins implement just the API surface the nodes
use, so typos, wrong field names and the parameter/QoS/diagnostics logic are
caught without ROS. Skipped when a real rclpy is importable (never shadow it).
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from array import array
from enum import Enum
from types import SimpleNamespace

import numpy as np
import pytest

if importlib.util.find_spec("rclpy") is not None:
    pytest.skip("a real rclpy is installed: test/test_ros_real.py covers the nodes", allow_module_level=True)


# -- stand-ins ----------------------------------------------------------------------------------
class Msg:
    """A message with keyword fields, like generated rclpy messages."""

    def __init__(self, **fields):
        self.__dict__.update(fields)


def header(sec=0, nanosec=0, frame_id=""):
    return Msg(stamp=Msg(sec=sec, nanosec=nanosec), frame_id=frame_id)


class Image(Msg):
    @classmethod
    def get_fields_and_field_types(cls):
        return {}

    def __init__(self, **fields):
        super().__init__(**{"header": header(), "height": 0, "width": 0, "encoding": "", "is_bigendian": 0,
                            "step": 0, "data": array("B"), **fields})


class CompressedImage(Image):
    def __init__(self, **fields):
        Msg.__init__(self, **{"header": header(), "format": "", "data": array("B"), **fields})


class DiagnosticStatus(Msg):
    OK, WARN, ERROR, STALE = b"\x00", b"\x01", b"\x02", b"\x03"


class DiagnosticArray(Msg):
    def __init__(self):
        super().__init__(header=header(), status=[])


class Policy(Enum):
    BEST_EFFORT = 1
    RELIABLE = 2
    VOLATILE = 3
    KEEP_LAST = 4
    SYSTEM_DEFAULT = 5


class QoSProfile(Msg):
    def __init__(self, depth=10, history=Policy.KEEP_LAST, reliability=Policy.RELIABLE,
                 durability=Policy.VOLATILE):
        super().__init__(depth=depth, history=history, reliability=reliability, durability=durability)


class Logger:
    def __init__(self):
        self.records = []

    def _log(self, level, msg, **kwargs):
        self.records.append((level, msg, kwargs))

    def info(self, msg, **kw):
        self._log("info", msg, **kw)

    def warning(self, msg, **kw):
        self._log("warning", msg, **kw)

    def fatal(self, msg, **kw):
        self._log("fatal", msg, **kw)


class Endpoint(Msg):
    def publish(self, msg):
        self.sent.append(msg)


class Node:
    """Just what the semcomp nodes call."""

    overrides: dict = {}

    def __init__(self, name, **kwargs):
        self.name, self.logger = name, Logger()
        self.publishers, self.subs, self.timers, self.param_callbacks = [], [], [], []
        self.descriptors = {}
        self.now_ns = 5_000_000_000

    def declare_parameter(self, name, default, descriptor):
        self.descriptors[name] = descriptor
        return SimpleNamespace(value=self.overrides.get(name, default))

    def create_publisher(self, msg_type, topic, qos, **kwargs):
        pub = Endpoint(msg_type=msg_type, topic_name=topic, qos=qos, kwargs=kwargs, sent=[])
        self.publishers.append(pub)
        return pub

    def create_subscription(self, msg_type, topic, callback, qos, **kwargs):
        sub = Endpoint(msg_type=msg_type, topic_name=topic, callback=callback, qos=qos, kwargs=kwargs)
        self.subs.append(sub)
        return sub

    def create_timer(self, period, callback):
        self.timers.append((period, callback))
        return SimpleNamespace(cancel=lambda: None)

    def destroy_timer(self, timer):
        pass

    def set_parameters(self, params):
        return [cb(params) for cb in self.param_callbacks]

    def add_on_set_parameters_callback(self, callback):
        self.param_callbacks.append(callback)

    def get_logger(self):
        return self.logger

    def get_name(self):
        return self.name

    def get_clock(self):
        node = self
        return SimpleNamespace(now=lambda: SimpleNamespace(nanoseconds=node.now_ns,
                                                           to_msg=lambda: Msg(sec=5, nanosec=0)))

    def destroy_node(self):
        self.destroyed = True

    # helpers for the tests
    def pub(self, topic):
        return next(p for p in self.publishers if p.topic_name == topic)

    def sub(self, topic):
        return next(s for s in self.subs if s.topic_name == topic)

    def set_params(self, **values):
        params = [SimpleNamespace(name=k, value=v) for k, v in values.items()]
        return self.param_callbacks[0](params)


@pytest.fixture
def ros(monkeypatch):
    """Install the stand-ins as rclpy & co and import the semcomp_ros node modules against them."""
    state = SimpleNamespace(spin=lambda node: None, shutdown_calls=0, fatal=Logger())

    def module(name, **attrs):
        mod = types.ModuleType(name)
        mod.__dict__.update(attrs)
        monkeypatch.setitem(sys.modules, name, mod)
        return mod

    class ExternalShutdownException(Exception):
        pass

    qos_mod = module("rclpy.qos", QoSProfile=QoSProfile, ReliabilityPolicy=Policy, DurabilityPolicy=Policy,
                     HistoryPolicy=Policy,
                     qos_profile_sensor_data=QoSProfile(5, reliability=Policy.BEST_EFFORT),
                     qos_profile_system_default=QoSProfile(reliability=Policy.SYSTEM_DEFAULT,
                                                           durability=Policy.SYSTEM_DEFAULT))
    module("rclpy.node", Node=Node)
    module("rclpy.parameter", Parameter=lambda name, value=None: SimpleNamespace(name=name, value=value))
    module("rclpy.executors", ExternalShutdownException=ExternalShutdownException)
    module("rclpy.logging", get_logger=lambda name: state.fatal)
    module("rclpy.qos_overriding_options",
           QoSOverridingOptions=SimpleNamespace(with_default_policies=lambda: "default-policies"))

    def try_shutdown():
        state.shutdown_calls += 1

    module("rclpy", init=lambda args=None: None, spin=lambda node: state.spin(node), try_shutdown=try_shutdown,
           qos=qos_mod)
    module("rcl_interfaces")
    module("rcl_interfaces.msg", SetParametersResult=Msg,
           ParameterDescriptor=lambda **kw: Msg(integer_range=[], floating_point_range=[],
                                                additional_constraints="", **kw),
           IntegerRange=Msg, FloatingPointRange=Msg)
    module("sensor_msgs")
    module("sensor_msgs.msg", Image=Image, CompressedImage=CompressedImage)
    module("diagnostic_msgs")
    module("diagnostic_msgs.msg", DiagnosticArray=DiagnosticArray, DiagnosticStatus=DiagnosticStatus,
           KeyValue=Msg)
    for name in [n for n in sys.modules if n.startswith("semcomp_ros.")]:
        monkeypatch.delitem(sys.modules, name)
    state.encoder = importlib.import_module("semcomp_ros.encoder_node")
    state.decoder = importlib.import_module("semcomp_ros.decoder_node")
    state.benchmark = importlib.import_module("semcomp_ros.benchmark_node")
    state.runtime = importlib.import_module("semcomp_ros.node_runtime")
    state.ExternalShutdownException = ExternalShutdownException
    yield state
    for name in [n for n in sys.modules if n.startswith("semcomp_ros.")]:
        monkeypatch.delitem(sys.modules, name)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Networks on one thread: on a 2-core machine shared with other jobs, two OpenMP threads spin
    against each other (a small segmentation then takes ~1 s instead of ~20 ms)."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make(node_class, **overrides):
    Node.overrides = overrides
    try:
        return node_class()
    finally:
        Node.overrides = {}


@pytest.fixture
def camera_msg(sample_image):
    rgb = np.ascontiguousarray(sample_image[:48, :64])
    msg = Image(header=header(12, 345, "front"), height=48, width=64, encoding="rgb8", step=64 * 3,
                data=array("B", rgb.tobytes()))
    return msg, rgb


# -- encoder --------------------------------------------------------------------------------------
def test_encoder_node_publishes_bitstream_with_unchanged_header(ros, camera_msg):
    msg, rgb = camera_msg
    node = make(ros.encoder.EncoderNode, input_topic="/cam/image", codec="jpeg", quality=30)
    sub, pub = node.sub("/cam/image"), node.pub("/cam/image/semcomp")
    assert sub.msg_type is Image and pub.msg_type is CompressedImage
    assert sub.qos.reliability is Policy.BEST_EFFORT and sub.qos.depth == 5  # sensor data by default
    assert sub.kwargs == {"qos_overriding_options": "default-policies"}
    assert any("QoS sensor_data (best_effort, volatile, keep_last 5" in m for _, m, _ in node.logger.records)
    sub.callback(msg)
    (out,) = pub.sent
    assert out.header is msg.header and out.format == "semcomp/jpeg:quality=30"
    assert isinstance(out.data, array) and out.data.typecode == "B"
    from semcomp_core.codecs import decode
    assert decode(out.data.tobytes()).shape == rgb.shape


def test_encoder_node_descriptors_and_live_parameter_changes(ros, camera_msg):
    msg, _ = camera_msg
    node = make(ros.encoder.EncoderNode, codec="jpeg")
    desc = node.descriptors["quality"]
    assert (desc.integer_range[0].from_value, desc.integer_range[0].to_value) == (-1, 100)
    assert "jpeg: quality 1..95" in desc.description
    assert "jpeg" in node.descriptors["codec"].additional_constraints
    assert node.descriptors["input_topic"].read_only and not node.descriptors["codec"].read_only
    codec = node.stage.codec
    assert node.set_params(quality=70).successful
    assert node.stage.wait(10)  # built in the background
    assert node.stage.label == "jpeg:quality=70" and node.stage.codec is not codec
    bad = node.set_params(codec="mp3")
    assert not bad.successful and "mp3" in bad.reason
    bad = node.set_params(quality=96)  # in the declared range, but not jpeg's 1..95
    assert not bad.successful and "quality" in bad.reason
    assert node.params["quality"] == 70 and node.stage.label == "jpeg:quality=70"
    assert node.set_params(codec="webp", quality=-1).successful
    assert node.stage.wait(10)
    node.sub("/camera/image_raw").callback(msg)
    assert node.pub("/camera/image_raw/semcomp").sent[-1].format.startswith("semcomp/webp")


def test_encoder_node_stream_parameters(ros, camera_msg):
    msg, _ = camera_msg
    node = make(ros.encoder.EncoderNode, codec="semantic-gan", gop=5)
    gop, kbps = node.descriptors["gop"], node.descriptors["kbps"]
    assert (gop.integer_range[0].from_value, gop.integer_range[0].to_value) == (1, 100000)
    assert (kbps.floating_point_range[0].from_value, kbps.floating_point_range[0].to_value) == (0.0, 1e6)
    assert not gop.read_only and not kbps.read_only and "recovery" in gop.description
    assert node.stage.codec.config["gop"] == 5
    assert not node.set_params(gop=0).successful and not node.set_params(kbps=-5.0).successful
    assert node.set_params(kbps=20.0).successful and node.stage.wait(60)
    assert node.stage.codec.config["kbps"] == 20.0 and node.stage.codec.config["gop"] == 5
    node.sub("/camera/image_raw").callback(msg)
    (out,) = node.pub("/camera/image_raw/semcomp").sent
    assert out.format == "semcomp/semantic-gan:level=1:gop=5:kbps=20.0"
    node.timers[0][1]()
    values = {kv.key: kv.value for kv in node.pub("/diagnostics").sent[0].status[0].values}
    assert (values["gop"], values["kbps_target"], values["key_frames"]) == ("5", "20", "1")


def test_encoder_node_codec_alone_resets_quality_without_pre_set_callbacks(ros, camera_msg):
    """rclpy without pre-/post-set callbacks (Humble): the reset applies at once, parameters follow."""
    msg, _ = camera_msg
    node = make(ros.encoder.EncoderNode, codec="jpeg", quality=90)
    assert node.set_params(codec="bpg").successful  # q=90 would be out of bpg's range
    assert node.params["quality"] == -1 and node.stage.wait(10)
    assert node.stage.format.startswith("semcomp/bpg:q=51")
    period, sync = node.timers[-1]
    assert period == 0.0
    sync()  # the one-shot timer mirrors the reset into the parameters
    assert node.params["quality"] == -1 and node.stage.format.startswith("semcomp/bpg:q=51")
    assert any("resetting quality=-1" in m for _, m, _ in node.logger.records)


def test_encoder_node_warns_throttled_counts_and_reports_bad_frames(ros, camera_msg):
    msg, _ = camera_msg
    node = make(ros.encoder.EncoderNode, codec="jpeg", warn_throttle_s=2.5)
    msg.encoding = "bayer_grbg8"
    node.sub("/camera/image_raw").callback(msg)
    assert not node.pub("/camera/image_raw/semcomp").sent
    level, text, kwargs = node.logger.records[-1]
    assert level == "warning" and "bayer_grbg8" in text and kwargs == {"throttle_duration_sec": 2.5}
    period, tick = node.timers[0]
    assert period == 1.0
    tick()
    (diag,) = node.pub("/diagnostics").sent
    (status,) = diag.status
    assert status.level == DiagnosticStatus.WARN and status.name == "encoder_node: encoder"
    assert {kv.key: kv.value for kv in status.values}["frames_rejected"] == "1"


# -- decoder ----------------------------------------------------------------------------------------
def test_decoder_node_reconstructs_with_original_header_and_survives_corruption(ros, camera_msg):
    msg, rgb = camera_msg
    enc = make(ros.encoder.EncoderNode, codec="jpeg", quality=60)
    enc.sub("/camera/image_raw").callback(msg)
    (bits,) = enc.pub("/camera/image_raw/semcomp").sent
    dec = make(ros.decoder.DecoderNode, qos_profile="reliable")
    sub = dec.sub("/camera/image_raw/semcomp")
    assert sub.qos.reliability is Policy.RELIABLE
    out_pub = dec.pub("/camera/image_raw/semcomp/reconstructed")
    sub.callback(CompressedImage(header=bits.header, format=bits.format, data=array("B", b"junk" * 9)))
    assert not out_pub.sent and "corrupt bitstream" in dec.logger.records[-1][1]
    sub.callback(bits)
    (out,) = out_pub.sent
    assert out.header is msg.header and (out.height, out.width, out.encoding, out.step) == (48, 64, "rgb8", 192)
    recon = np.frombuffer(out.data, np.uint8).reshape(48, 64, 3)
    assert np.abs(recon.astype(int) - rgb).mean() < 10
    dec.timers[0][1]()
    values = {kv.key: kv.value for kv in dec.pub("/diagnostics").sent[0].status[0].values}
    assert (values["frames_corrupt"], values["frames_decoded"]) == ("1", "1")
    assert not dec.set_params(device="quantum").successful and dec.set_params(max_pixels=10).successful


# -- benchmark --------------------------------------------------------------------------------------
def test_benchmark_node_pairs_reports_and_writes_csv_on_close(ros, camera_msg, tmp_path):
    msg, _ = camera_msg
    enc, dec = make(ros.encoder.EncoderNode, codec="jpeg"), make(ros.decoder.DecoderNode)
    enc.sub("/camera/image_raw").callback(msg)
    bits = enc.pub("/camera/image_raw/semcomp").sent[0]
    dec.sub("/camera/image_raw/semcomp").callback(bits)
    recon = dec.pub("/camera/image_raw/semcomp/reconstructed").sent[0]
    csv_path = tmp_path / "bench.csv"
    node = make(ros.benchmark.BenchmarkNode, csv_path=str(csv_path))
    assert {s.topic_name for s in node.subs} == {"/camera/image_raw", "/camera/image_raw/semcomp",
                                                 "/camera/image_raw/semcomp/reconstructed"}
    stamp_ns = 12 * 10**9 + 345
    node.now_ns = stamp_ns + 4_000_000
    node.sub("/camera/image_raw").callback(msg)
    node.now_ns = stamp_ns + 9_000_000
    node.sub("/camera/image_raw/semcomp").callback(bits)
    node.now_ns = stamp_ns + 20_000_000
    node.sub("/camera/image_raw/semcomp/reconstructed").callback(recon)
    assert node.stage.counters["paired"] == 1
    node.timers[0][1]()
    values = {kv.key: kv.value for kv in node.pub("/diagnostics").sent[0].status[0].values}
    assert values["latency_ms_p50"] == "16.00" and values["encode_stage_ms_p50"] == "5.00"
    assert values["stamp_latency_ms_p50"] == "20.00"
    assert node.pub("/diagnostics").sent[0].status[0].hardware_id.endswith(":/camera/image_raw")
    assert not csv_path.exists()
    node.close()
    lines = csv_path.read_text().splitlines()
    assert len(lines) == 2 and lines[1].startswith("12.000000345,front,jpeg")


def test_benchmark_node_can_skip_bitstream_topic(ros):
    node = make(ros.benchmark.BenchmarkNode, bitstream_topic="none", csv_path="")
    assert len(node.subs) == 2
    node.close()


# -- main loop ---------------------------------------------------------------------------------------
def test_run_node_exits_cleanly_on_interrupt_and_closes(ros, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    seen = []

    def interrupted(node):
        seen.append(node)
        raise KeyboardInterrupt

    ros.spin = interrupted
    assert ros.benchmark.main() == 0
    assert seen[0].destroyed and seen[0].stage.closed
    assert (tmp_path / "semcomp_benchmark.csv").exists()  # the default csv_path
    ros.spin = lambda node: (_ for _ in ()).throw(ros.ExternalShutdownException())
    assert ros.decoder.main() == 0
    assert ros.shutdown_calls == 2


def test_run_node_reports_bad_parameters_with_exit_code_2(ros):
    Node.overrides = {"codec": "mp3"}
    try:
        assert ros.encoder.main() == 2
    finally:
        Node.overrides = {}
    level, text, _ = ros.fatal.records[-1]
    assert level == "fatal" and "mp3" in text
