"""The per-frame logic of the ROS 2 nodes, free of ROS.

The rclpy nodes in ``semcomp_ros`` only wire topics, parameters, QoS and
timers to these classes, so everything that happens to a frame is testable
without ROS (``test/test_pipeline_stages.py``):

* :class:`EncoderStage` -- Image message / RGB array -> semcomp container;
* :class:`DecoderStage` -- container -> RGB array, for any codec id;
* :class:`BenchmarkStage` -- pairs originals and reconstructions by stamp,
  scores rate, fidelity and latency, streams a CSV;
* :class:`DiagnosticReport` -- what each stage publishes on ``/diagnostics``.

Messages are handled by duck typing (:mod:`semcomp_core.rosbag.messages`);
headers pass through untouched.
"""
from .benchmark_stage import BenchmarkStage
from .decoder_stage import DecodedFrame, DecoderStage, check_device
from .encoder_stage import EncodedFrame, EncoderStage, build_codec
from .stats import LEVELS, Counters, DiagnosticReport, RateMeter, RollingWindow

__all__ = ["BenchmarkStage", "Counters", "DecodedFrame", "DecoderStage", "DiagnosticReport", "EncodedFrame",
           "EncoderStage", "LEVELS", "RateMeter", "RollingWindow", "build_codec", "check_device"]
