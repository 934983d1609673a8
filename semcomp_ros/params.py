# Copyright 2024 semcomp maintainers
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""
Parameters of the semcomp nodes: one table per node, declared with descriptors.

The tables (:data:`ENCODER_PARAMS`, :data:`DECODER_PARAMS`,
:data:`BENCHMARK_PARAMS`) are plain data, importable without ROS, so tests
can check ``config/semcomp.yaml`` and the launch files against them.
:func:`declare_all` declares them on an rclpy node with a
``ParameterDescriptor`` each (description, integer/floating-point range,
allowed values listed in the description and ``additional_constraints``,
``read_only`` for what needs a restart: topics, QoS, timers, the warning
throttle -- rclpy does not allow a log call site to change its throttle).

Stream settings of ``encoder_node`` (``gop``, ``kbps``), in one sentence: for
the codecs that declare them (semantic-gan, h264, hevc, av1) they win over the
same key in ``codec`` and ``codec_options`` -- ``kbps`` only when > 0, its
"unset" value -- and the intra codecs (jpeg, webp, bpg) ignore them
(``semcomp_core.pipeline.stream_options``).

Defaults live in ``config/semcomp.yaml`` too (``/<node>: ros__parameters:``);
the values here are the fallback when no parameter file is given.
"""

from dataclasses import dataclass
import os
import re
from typing import Any, Callable, Optional, Sequence, Tuple, Union

from semcomp_core.devices import DEVICE_PATTERN

QOS_PROFILES = ('sensor_data', 'reliable', 'system_default')


def codec_names():
    """Return the codec names this installation provides."""
    from semcomp_core.codecs import available

    return available()


def quality_help():
    """Describe, per codec, which parameter ``quality`` sets and its range."""
    from semcomp_core.codecs import CODECS

    parts = []
    for name, cls in CODECS.items():
        if cls.quality_param is None:
            parts.append(f'{name}: no quality knob')
            continue
        p = cls.params[cls.quality_param]
        parts.append(f'{name}: {cls.quality_param} {p.low:g}..{p.high:g} (default {p.default})')
    return '; '.join(parts)


@dataclass(frozen=True)
class ParamSpec:
    """One node parameter: name, default, description and constraints."""

    name: str
    default: Any
    description: str
    int_range: Optional[Tuple[int, int]] = None
    float_range: Optional[Tuple[float, float]] = None
    choices: Union[Sequence[str], Callable[[], Sequence[str]], None] = None
    pattern: Optional[str] = None
    read_only: bool = False
    #: extra check ``check(value)`` raising ValueError (e.g. the codec spec's name)
    check: Optional[Callable[[Any], None]] = None
    #: text for the descriptor's additional_constraints (when there are no choices)
    constraints: Optional[Callable[[], str]] = None

    def allowed(self):
        """Return the allowed values (None: any value of the right type)."""
        return list(self.choices()) if callable(self.choices) else self.choices

    def full_description(self):
        """Return the description with the allowed values appended."""
        allowed = self.allowed()
        text = self.description
        if '{quality_help}' in text:
            text = text.replace('{quality_help}', quality_help())
        if allowed is not None:
            text += ' Allowed: ' + ', '.join(allowed) + '.'
        elif self.constraints is not None:
            text += ' Allowed: ' + self.constraints() + '.'
        if self.read_only:
            text += ' Read-only: set it at start-up.'
        return text

    def validate(self, value):
        """Return ``value`` if it satisfies the constraints; raise ValueError otherwise."""
        expected = type(self.default)
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ValueError(f'{self.name} must be of type {expected.__name__}, got {value!r}')
        for bounds in (self.int_range, self.float_range):
            if bounds and not bounds[0] <= value <= bounds[1]:
                raise ValueError(f'{self.name}={value} outside {bounds[0]}..{bounds[1]}')
        allowed = self.allowed()
        if allowed is not None and value not in allowed:
            raise ValueError(f'{self.name}={value!r} not one of {", ".join(allowed)}')
        if self.pattern and not re.match(self.pattern, value):
            raise ValueError(f'{self.name}={value!r} does not match {self.pattern}')
        if self.check is not None:
            self.check(value)
        return value


def _check_receiver_options(value):
    from semcomp_core.codecs import parse_receiver_options

    parse_receiver_options(value)  # UsageError (a ValueError) naming the bad key


def check_codec_spec(value):
    """Raise ValueError unless ``value`` is ``NAME[:K=V...]`` with a known codec NAME."""
    name = str(value).split(':', 1)[0].strip()
    names = codec_names()
    if name not in names:
        raise ValueError(f'codec={value!r}: {name!r} not one of {", ".join(names)}')


_COMMON = (
    ParamSpec('qos_profile', 'sensor_data',
              'QoS of image subscriptions and publications: sensor_data = best effort, '
              'keep last qos_depth, volatile (rclpy qos_profile_sensor_data); reliable = '
              'reliable, keep last qos_depth, volatile; system_default = the RMW default. '
              'A best-effort publisher and a reliable subscriber never connect: use the '
              'same profile on every node of a pipeline, or the qos_overrides.* parameters.',
              choices=QOS_PROFILES, read_only=True),
    ParamSpec('qos_depth', 5, 'History depth (keep last N) of image topics.',
              int_range=(1, 1000), read_only=True),
    ParamSpec('diagnostics_period', 1.0,
              'Seconds between diagnostic_msgs/DiagnosticArray messages on /diagnostics.',
              float_range=(0.1, 60.0), read_only=True),
    ParamSpec('warn_throttle_s', 5.0,
              'At most one warning per this many seconds about frames that cannot be handled '
              '(they are always counted in the diagnostics).',
              float_range=(0.0, 3600.0), read_only=True),
)

ENGINE_CACHE = ParamSpec(
    'engine_cache_dir', '',
    'Where ONNX exports and TensorRT engines are cached (SEMCOMP_CACHE for this process; engines '
    'are keyed by ONNX sha256, TensorRT version, GPU, precision and profile, and rebuilt when stale); '
    'empty: $SEMCOMP_CACHE or ~/.cache/semcomp. Read at start.', read_only=True)

ENCODER_PARAMS = (
    ParamSpec('input_topic', '/camera/image_raw',
              'sensor_msgs/Image topic to compress (rgb8, bgr8, rgba8, bgra8, mono8; 16-bit '
              'mono16/rgb16/bgr16/rgba16/bgra16 are converted to 8 bit by keeping the high byte).',
              read_only=True),
    ParamSpec('output_topic', '',
              'sensor_msgs/CompressedImage topic of the bitstream; empty: <input_topic>/semcomp.',
              read_only=True),
    ParamSpec('codec', 'semantic-gan',
              'Codec run on every frame: a name or a full spec NAME[:KEY=VALUE...] as in '
              'semcomp --codec, e.g. bpg:q=45 or jpeg:quality=20. The CompressedImage format is '
              'semcomp/<codec label>. Switching codecs: setting codec alone (one '
              '"ros2 param set" call) also resets quality to -1 and codec_options to "" -- they '
              'belong to the previous codec -- so "ros2 param set /encoder_node codec bpg:q=45" '
              'works whatever quality was; a call that sets quality or codec_options too keeps '
              'what it sets. A change is checked at once (a bad value is rejected and nothing '
              'changes), then built in the background: frames keep using the running codec '
              'until the new one is loaded; a failed build keeps the running codec and counts '
              'codec_rebuild_failures in /diagnostics.',
              check=check_codec_spec,
              constraints=lambda: 'NAME[:KEY=VALUE...], NAME one of: ' + ', '.join(codec_names())),
    ParamSpec('quality', -1,
              'Value of the codec quality knob; -1 keeps the codec default (or the value in '
              'the codec spec). Wins over the same key in codec and codec_options. Reset to -1 '
              'when codec changes alone. Per codec: {quality_help}.',
              int_range=(-1, 100)),
    ParamSpec('codec_options', '',
              'Extra codec parameters as KEY=VALUE[:KEY=VALUE...] (as in semcomp --codecs), '
              'e.g. impl=x265 for bpg; they win over the same keys in the codec spec. Empty: '
              'none. Reset to "" when codec changes alone.'),
    ParamSpec('gop', 30,
              'Stream key-frame interval: a key frame every gop frames (1: every frame a key '
              'frame), for the codecs with inter frames (semantic-gan, h264, hevc, av1). A lost '
              'message leaves the decoder showing nothing until the next key frame, so gop '
              'bounds the recovery: 30 = 3 s at 10 fps. Wins over a gop in codec or '
              'codec_options. The intra codecs (jpeg, webp, bpg) ignore it (/diagnostics: gop '
              'n/a). A change restarts the stream with a key frame (the codec is rebuilt in the '
              'background).',
              int_range=(1, 100000)),
    ParamSpec('kbps', 0.0,
              'Bitrate budget in kbit/s (a float, e.g. 20.0) for the codecs with rate control: '
              'semantic-gan picks its operating point per frame and, when nothing fits, sends '
              '"repeat the previous frame" (frames_skipped); h264/hevc/av1 run their bitrate '
              'mode (whole kbit/s; not together with qp or crf). 0: off (the quality settings '
              'decide, or a kbps in codec/codec_options); > 0 wins over a kbps there. '
              '/diagnostics reports bitrate_window_kbps over the last 50 frames against '
              'kbps_target and warns when it is more than 10 % over. A change restarts the '
              'stream with a key frame.',
              float_range=(0.0, 1e6)),
    ParamSpec('roi_mask', '',
              'Region of interest given by the user (semantic codecs): a mask image of the camera '
              "frame's size whose nonzero pixels are sent as HEVC intra pixels instead of being "
              "generated; adds 'user' to the codec's roi sources. Empty: none. A frame of another "
              'size is refused (frames_rejected, a throttled warning). No ":" in the path.'),
    ParamSpec('roi_boxes', '',
              'Region of interest as boxes "x0,y0,x1,y1;..." in frame pixels (end exclusive), as '
              'roi_mask. /diagnostics counts roi_frames, fallback_frames (frames the segmenter '
              'could not read, coded classically at the budget) and roi_dropped.'),
    ParamSpec('backend', '',
              'Where the codec runs its networks (semantic codecs): torch, onnxruntime (exported to '
              'ONNX once and cached under engine_cache_dir) or tensorrt (needs TensorRT and device '
              'cuda); empty: the codec default (torch); a backend in codec/codec_options wins. '
              'Codecs without networks ignore it. A backend that is not installed is refused with '
              'one line naming it, never replaced by another.',
              choices=('', 'torch', 'onnxruntime', 'tensorrt')),
    ParamSpec('model_dir', '',
              'Folder of the networks, one model folder each (segmenter/ here, decoder/ for '
              'decoder_node), as semcomp_core/data/weights; empty: the shipped weights. A '
              'segmenter= in codec/codec_options wins. Checked when set.'),
    ENGINE_CACHE,
    ParamSpec('device', 'cpu', 'Where the codec runs: cpu, cuda or cuda:N.',
              pattern=DEVICE_PATTERN.pattern),
) + _COMMON

DECODER_PARAMS = (
    ParamSpec('input_topic', '/camera/image_raw/semcomp',
              'sensor_msgs/CompressedImage bitstream topic (format semcomp/<codec>).',
              read_only=True),
    ParamSpec('output_topic', '',
              'sensor_msgs/Image (rgb8) topic of reconstructions; empty: '
              '<input_topic>/reconstructed.',
              read_only=True),
    ParamSpec('device', 'cpu', 'Where decoding runs: cpu, cuda or cuda:N.',
              pattern=DEVICE_PATTERN.pattern),
    ParamSpec('decoder_options', '',
              'Receiver-side codec parameters as KEY=VALUE[:KEY=VALUE...], e.g. '
              'decoder=/models/gan (the semantic-gan generator weights this receiver runs; '
              'default: the shipped ones). Everything the encoder chose (level, seed, ...) comes '
              'from the bitstream. Checked when set (unknown keys are rejected); a model that '
              'cannot be loaded is counted per frame (frames_failed). Empty: none. Changing it '
              '(or device, backend) drops the stream state: inter frames are refused '
              '(frames_lost) until the next key frame.',
              check=_check_receiver_options),
    ParamSpec('backend', '',
              'Where the receiver runs its networks: torch, onnxruntime (exported to ONNX once and '
              'cached) or tensorrt (needs TensorRT and device cuda); empty: the codec default '
              '(torch). A backend named in decoder_options wins. The networks are loaded and run '
              'once at start (warm-up), so the first frame has no loading spike.',
              choices=('', 'torch', 'onnxruntime', 'tensorrt')),
    ParamSpec('renderer', '',
              'What draws frames of the semantic codecs: gan (the SPADE generator, one network call) or '
              'ldm (latent diffusion, SDEdit + DDIM: steps/strength/sdedit_from/guidance in '
              'decoder_options); empty: each codec\'s default (semantic-gan: gan, clip: ldm). The '
              'bitstream does not change. A renderer named in decoder_options wins; unknown names '
              'are rejected when set.',
              choices=('', 'gan', 'ldm')),
    ParamSpec('model_dir', '',
              'Folder of the networks (decoder/ = the generator this receiver runs), as '
              'semcomp_core/data/weights; empty: the shipped weights. A decoder= in decoder_options '
              'wins. Read at start.', read_only=True),
    ENGINE_CACHE,
    ParamSpec('max_pixels', 0,
              'Reject bitstreams announcing more pixels than this before decoding (0: no limit '
              'beyond the container maximum of 16384 x 16384).',
              int_range=(0, 16384 * 16384)),
) + _COMMON

BENCHMARK_PARAMS = (
    ParamSpec('original_topic', '/camera/image_raw',
              'sensor_msgs/Image topic of the original frames.', read_only=True),
    ParamSpec('reconstructed_topic', '',
              'sensor_msgs/Image topic of the reconstructions; empty: '
              '<original_topic>/semcomp/reconstructed.', read_only=True),
    ParamSpec('bitstream_topic', '',
              'sensor_msgs/CompressedImage bitstream topic, for bytes and bits per pixel; empty: '
              '<original_topic>/semcomp; "none": do not subscribe.', read_only=True),
    ParamSpec('csv_path', 'semcomp_benchmark.csv',
              'Per-frame CSV written on shutdown (streamed to <csv_path>.part while running), '
              'plus <stem>_summary.csv. Empty: no CSV.', read_only=True),
    ParamSpec('max_pending', 16,
              'Frames kept while waiting for their partner (pairing by header stamp); older ones '
              'are counted as dropped.', int_range=(1, 1000), read_only=True),
    ParamSpec('quality_every', 1,
              'Compute PSNR / MS-SSIM / semantic metrics on every N-th pair (rate and latency on '
              'all), so a slow machine keeps up.', int_range=(1, 1000)),
    ParamSpec('compute_ms_ssim', True, 'Compute MS-SSIM (costlier than PSNR).'),
    ParamSpec('segmenter', '',
              'Segmenter for the semantic metric (frame_miou_recon_vs_orig per frame, '
              'dataset-level miou_recon_vs_orig in the summary and diagnostics): empty or none '
              '(no semantic metric); auto (the shipped evaluation segmenter when installed); '
              'eval (the shipped independent evaluation U-Net, never used to train the decoder); '
              'default (the shipped encoder segmenter of semantic-gan); a model folder '
              '(config.json + model.safetensors); or package.module:factory where '
              'factory(device) returns (callable image -> label map, number of classes). '
              'A segmenter that fails on a frame is counted (segmenter_errors); scoring goes on.',
              read_only=True),
    ParamSpec('device', 'cpu', 'Where the segmenter runs: cpu, cuda or cuda:N.',
              pattern=DEVICE_PATTERN.pattern, read_only=True),
    ParamSpec('stamp_latency', True,
              'Also report stamp_latency_ms = receipt - header stamp (the ros2 topic delay '
              'convention; needs the camera clock synchronised with this machine). latency_ms '
              '(reconstruction receipt - original receipt, one clock) and the per-stage '
              'encode_stage_ms / decode_stage_ms are always reported. Off for bag replay, '
              'where stamps are recorded times.', read_only=True),
) + _COMMON

NODE_PARAMS = {
    'encoder_node': ENCODER_PARAMS,
    'decoder_node': DECODER_PARAMS,
    'benchmark_node': BENCHMARK_PARAMS,
}


def _descriptor(spec):
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

    desc = ParameterDescriptor(description=spec.full_description(), read_only=spec.read_only)
    if spec.int_range:
        low, high = spec.int_range
        desc.integer_range = [IntegerRange(from_value=low, to_value=high, step=1)]
    if spec.float_range:
        desc.floating_point_range = [FloatingPointRange(
            from_value=float(spec.float_range[0]), to_value=float(spec.float_range[1]), step=0.0)]
    allowed = spec.allowed()
    if allowed is not None:
        desc.additional_constraints = 'one of: ' + ', '.join(allowed)
    elif spec.constraints is not None:
        desc.additional_constraints = spec.constraints()
    elif spec.pattern:
        desc.additional_constraints = 'matches ' + spec.pattern
    return desc


def declare_all(node, specs):
    """Declare ``specs`` on ``node``; return ``{name: value}`` after validation.

    Raises ValueError naming the parameter when a value (from a parameter file
    or the command line) breaks its constraints.
    """
    values = {}
    for spec in specs:
        param = node.declare_parameter(spec.name, spec.default, _descriptor(spec))
        values[spec.name] = spec.validate(param.value)
    return values


def validate_changes(specs, params):
    """Check ``rclpy.Parameter`` changes against ``specs``; return ``{name: value}``.

    Raises ValueError for an unknown or invalid value.
    """
    by_name = {s.name: s for s in specs}
    out = {}
    for p in params:
        spec = by_name.get(p.name)
        if spec is None:  # e.g. qos_overrides.*, use_sim_time: not ours to check
            continue
        out[p.name] = spec.validate(p.value)
    return out


def use_engine_cache(folder: str) -> None:
    """engine_cache_dir: where this process caches ONNX exports and TensorRT engines."""
    if folder:
        os.environ['SEMCOMP_CACHE'] = str(folder)


def receiver_model_options(options: str, model_dir: str) -> str:
    """Receiver options with decoder=<model_dir>/decoder added unless they name a decoder (ValueError /
    UsageError when model_dir has no decoder/config.json), and enhancer=<model_dir>/bpg_se and
    gc_decoder=<model_dir>/gc_decoder and ldm=<model_dir>/ldm (the diffusion renderer: vae/ + unet/) where
    those folders exist and the options do not name them."""
    from pathlib import Path

    options = str(options or '').strip(':')
    if not model_dir:
        return options
    named = {item.split('=', 1)[0].strip() for item in options.split(':') if item}
    extra = []
    for key, sub, required in (('decoder', 'decoder', True), ('enhancer', 'bpg_se', False),
                               ('gc_decoder', 'gc_decoder', False), ('ldm', 'ldm', False)):
        folder = Path(model_dir) / sub
        if key in named:
            continue
        marker = folder / 'unet' / 'config.json' if key == 'ldm' else folder / 'config.json'
        if marker.is_file():
            extra.append(f'{key}={folder}')
        elif required:
            from semcomp_core.errors import UsageError
            raise UsageError(f'model_dir {model_dir}: no {sub}/config.json (a model folder per network, '
                             f'as in semcomp_core/data/weights)')
    return ':'.join(filter(None, [options] + extra))
