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
encoder_node: sensor_msgs/Image -> semcomp bitstream in sensor_msgs/CompressedImage.

Subscribes ``input_topic`` (default ``/camera/image_raw``), publishes on
``<input_topic>/semcomp`` (or ``output_topic``) with
``format = "semcomp/<codec wire label>"`` and the input header copied
unchanged. Every codec -- the jpeg/webp/bpg baselines, the semantic codecs
and the h264/hevc/av1 anchors -- runs through this same node. Frames that
cannot be encoded give a throttled warning and a counter on /diagnostics; the
node keeps running.

Frames are coded as a stream (``semcomp_core.pipeline.EncoderStage``): the
header stamp is the capture time, ``gop`` sets the key-frame interval and
``kbps`` the bitrate budget of the codecs that have them (they win over a
gop/kbps in ``codec``/``codec_options``, kbps only when > 0; jpeg, webp and
bpg ignore both). Key frames are sent at start, after every parameter change
(the new codec's stream starts with one) and when a new subscriber of the
bitstream topic appears (a receiver joined: it can decode from the next
frame on). /diagnostics reports the bitrate over the last frames against
``kbps``, key/inter frames and why key frames were sent, skipped frames,
duplicated or out-of-order stamps and resolution changes.

Run-time changes of ``codec``, ``quality``, ``codec_options``, ``gop``,
``kbps`` and ``device`` (``ros2 param set``), in three steps:

1. pre-set: a call that changes ``codec`` without setting ``quality`` or
   ``codec_options`` also resets those two to ``-1`` / ``""`` (logged), as they
   belong to the previous codec (``semcomp_core.pipeline.codec_param_resets``);
2. on-set (validation): the merged settings are checked against the codec's
   declared parameters -- cheap, no model is loaded; a bad value is rejected
   and nothing changes;
3. post-set: ``EncoderStage.request`` builds the codec in a background thread;
   frames keep using the running codec until the new one is ready, a failed
   build keeps it (``codec_rebuild_failures`` on /diagnostics).

On rclpy without pre-/post-set callbacks (Humble) the reset is applied to the
codec at once and mirrored into the parameters by a one-shot timer, and the
background build starts from the on-set callback.
"""

from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter
from semcomp_core.pipeline import (codec_param_resets, EncoderStage, model_options, roi_options,
                                   stream_settings, warm_up)
from sensor_msgs.msg import CompressedImage, Image

from .node_runtime import (as_uint8_array, create_diagnostics_publisher, diagnostic_array,
                           hardware_id, run_node)
from .params import declare_all, ENCODER_PARAMS, use_engine_cache, validate_changes
from .qos import create_image_publisher, create_image_subscription

_CODEC_KEYS = ('codec', 'quality', 'device', 'codec_options', 'gop', 'kbps', 'roi_mask', 'roi_boxes',
               'backend', 'model_dir')


def _options(p):
    """codec_options with the user ROI, backend and model_dir parameters folded in (UsageError for a
    codec without ROI coding, a model_dir without a segmenter)."""
    options = roi_options(p['codec'], p['codec_options'], p['roi_mask'], p['roi_boxes'])
    return model_options(p['codec'], options, p['backend'], p['model_dir'])


class EncoderNode(Node):
    """Wire EncoderStage to topics, parameters, QoS and a diagnostics timer."""

    NODE_NAME = 'encoder_node'

    def __init__(self, **kwargs):
        super().__init__(self.NODE_NAME, **kwargs)
        self.params = declare_all(self, ENCODER_PARAMS)
        p = self.params
        use_engine_cache(p['engine_cache_dir'])
        self.stage = EncoderStage(p['codec'], p['quality'], p['device'], _options(p),
                                  gop=p['gop'], kbps=p['kbps'], log=self._stage_log)
        warm_up(self.stage.codec)  # models in memory before the first frame
        streams = stream_settings(self.stage.codec)
        self.get_logger().info(
            f'codec {self.stage.label} ({self.stage.codec.implementation}) on {p["device"]}; '
            f'gop {streams["gop"]}, kbps {streams["kbps_target"]}')
        self._subscribers = 0
        self.hardware_id = hardware_id(p['input_topic'])
        output = p['output_topic'] or p['input_topic'].rstrip('/') + '/semcomp'
        self.publisher = create_image_publisher(
            self, CompressedImage, output, p['qos_profile'], p['qos_depth'])
        self.subscription = create_image_subscription(
            self, Image, p['input_topic'], self._on_image, p['qos_profile'], p['qos_depth'])
        self.diagnostics = create_diagnostics_publisher(self)
        self.timer = self.create_timer(p['diagnostics_period'], self._publish_diagnostics)
        self._sync_timer = None
        self._has_pre_set = hasattr(self, 'add_pre_set_parameters_callback')
        self._has_post_set = hasattr(self, 'add_post_set_parameters_callback')
        if self._has_pre_set:
            self.add_pre_set_parameters_callback(self._pre_set_parameters)
        self.add_on_set_parameters_callback(self._on_parameters)
        if self._has_post_set:
            self.add_post_set_parameters_callback(self._post_set_parameters)

    def _stage_log(self, level, text):
        logger = self.get_logger()
        (logger.error if level == 'error' else logger.info)(text)

    def _watch_receivers(self):
        """A new subscriber of the bitstream: ask for a key frame, so it can decode at once."""
        count = getattr(self.publisher, 'get_subscription_count', None)
        if count is None:
            return
        n = count()
        if n > self._subscribers:
            self.stage.request_key_frame()
        self._subscribers = n

    def _on_image(self, msg):
        self._watch_receivers()
        frame = self.stage.encode_msg(msg)
        if frame is None:
            self.get_logger().warning(
                self.stage.last_error, throttle_duration_sec=self.params['warn_throttle_s'])
            return
        out = CompressedImage()
        out.header = msg.header
        out.format = frame.format
        out.data = as_uint8_array(frame.data)
        self.publisher.publish(out)

    # -- parameters ---------------------------------------------------------------------
    def _resets(self, changes):
        resets = codec_param_resets(self.params, changes)
        if resets:
            self.get_logger().info(
                f'codec {self.params["codec"]!r} -> {changes["codec"]!r} without quality/'
                f'codec_options: resetting {", ".join(f"{k}={v!r}" for k, v in resets.items())} '
                f'(they belonged to the previous codec)')
        return resets

    def _pre_set_parameters(self, params):
        changes = {p.name: p.value for p in params}
        resets = self._resets(changes)
        return list(params) + [Parameter(k, value=v) for k, v in resets.items()]

    def _on_parameters(self, params):
        resets = {}
        try:
            changes = validate_changes(ENCODER_PARAMS, params)
            if not self._has_pre_set:
                resets = self._resets(changes)
                changes.update(resets)
            merged = dict(self.params, **changes)
            if any(k in changes for k in _CODEC_KEYS):
                self.stage.validate(merged['codec'], merged['quality'], merged['device'],
                                    _options(merged), gop=merged['gop'],
                                    kbps=merged['kbps'])
        except ValueError as exc:  # includes UsageError from the codec
            self.stage.reject_settings(str(exc))  # settings_rejected on /diagnostics
            return SetParametersResult(successful=False, reason=str(exc))
        if not self._has_post_set:
            self._apply(merged, changes)
            if resets:
                self._mirror(resets)
        return SetParametersResult(successful=True)

    def _post_set_parameters(self, params):
        changes = {p.name: p.value for p in params
                   if p.name in {s.name for s in ENCODER_PARAMS}}
        self._apply(dict(self.params, **changes), changes)

    def _apply(self, merged, changes):
        self.params = merged
        if any(k in changes for k in _CODEC_KEYS):
            try:
                if self.stage.request(merged['codec'], merged['quality'], merged['device'],
                                      _options(merged), gop=merged['gop'],
                                      kbps=merged['kbps']):
                    self.get_logger().info(
                        f'building codec {merged["codec"]} (quality {merged["quality"]}, '
                        f'options {merged["codec_options"]!r}, gop {merged["gop"]}, kbps '
                        f'{merged["kbps"]:g}, {merged["device"]}) in the background; still '
                        f'encoding with {self.stage.label}; the new stream starts with a '
                        'key frame')
            except ValueError as exc:  # validated already; never expected
                self.get_logger().error(f'codec change not applied: {exc}')

    def _mirror(self, resets):
        """Humble: make the parameters show the reset values (one-shot timer, after this call)."""
        def sync():
            self._sync_timer.cancel()
            self.destroy_timer(self._sync_timer)
            self.set_parameters([Parameter(k, value=v) for k, v in resets.items()])

        self._sync_timer = self.create_timer(0.0, sync)

    def _publish_diagnostics(self):
        self.diagnostics.publish(diagnostic_array(
            self, [self.stage.diagnostics('encoder')], self.hardware_id))

    def close(self):
        """Wait briefly for a background codec build (never long); end the stream."""
        self.stage.wait(timeout=1.0)
        self.stage.close()


def main(args=None):
    """Run the encoder node."""
    return run_node(EncoderNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
