"""The per-frame logic of the ROS 2 nodes, free of ROS.

The rclpy nodes in ``semcomp_ros`` only wire topics, parameters, QoS and
timers to these classes, so everything that happens to a frame is testable
without ROS (``test/test_pipeline_stages.py``, ``test/test_stream_stages.py``):

* :class:`EncoderStage` -- Image message / RGB array -> semcomp bitstream, frames
  coded in order through a stream session (key and inter frames, ``gop``,
  ``kbps`` rate control; :func:`stream_options` is the rule for those two); codec
  changes validated at once and built in the background (:func:`codec_param_resets`
  is the node's codec-switch rule);
* :class:`DecoderStage` -- bitstream -> RGB array through one stream session per
  codec (lost frames counted, recovery at the next key frame), for any codec;
* :class:`BenchmarkStage` -- pairs originals and reconstructions by stamp,
  scores rate, fidelity and latency, streams a CSV;
* :class:`DiagnosticReport` -- what each stage publishes on ``/diagnostics``.

Messages are handled by duck typing (:mod:`semcomp_core.image_messages`);
headers pass through untouched.
"""
from .benchmark_stage import BenchmarkStage
from .decoder_stage import DecodedFrame, DecoderStage, check_device, raw_codec_class
from .encoder_stage import (CODEC_PARAM_DEFAULTS, EncodedFrame, EncoderStage, build_and_warm_up, build_codec,
                            codec_param_resets, model_options, resolve_codec, roi_options, stream_options, stream_settings, validate_codec,
                            warm_up, wire_format)
from .stats import LEVELS, Counters, DiagnosticReport, RateMeter, RollingWindow

__all__ = ["BenchmarkStage", "CODEC_PARAM_DEFAULTS", "Counters", "DecodedFrame", "DecoderStage", "DiagnosticReport",
           "EncodedFrame", "EncoderStage", "LEVELS", "RateMeter", "RollingWindow", "build_and_warm_up", "build_codec",
           "check_device", "codec_param_resets", "raw_codec_class", "resolve_codec", "stream_options",
           "model_options", "roi_options", "stream_settings", "validate_codec", "warm_up", "wire_format"]
