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
``format = "semcomp/<codec label>"`` and the input header copied unchanged.
Every codec -- the jpeg/webp/bpg baselines and the semantic codecs -- runs
through this same node. ``codec``, ``quality``, ``codec_options`` and
``device`` can be changed at run time (``ros2 param set``); the codec is
rebuilt once per change, never per frame. Frames that cannot be encoded give
a throttled warning and a counter on /diagnostics; the node keeps running.
"""

from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from semcomp_core.pipeline import EncoderStage
from sensor_msgs.msg import CompressedImage, Image

from .node_runtime import as_uint8_array, create_diagnostics_publisher, diagnostic_array, run_node
from .params import declare_all, ENCODER_PARAMS, validate_changes
from .qos import create_image_publisher, create_image_subscription

_CODEC_KEYS = ('codec', 'quality', 'device', 'codec_options')


class EncoderNode(Node):
    """Wire EncoderStage to topics, parameters, QoS and a diagnostics timer."""

    NODE_NAME = 'encoder_node'

    def __init__(self, **kwargs):
        super().__init__(self.NODE_NAME, **kwargs)
        self.params = declare_all(self, ENCODER_PARAMS)
        p = self.params
        self.stage = EncoderStage(p['codec'], p['quality'], p['device'], p['codec_options'])
        self.get_logger().info(
            f'codec {self.stage.label} ({self.stage.codec.implementation}) on {p["device"]}')
        output = p['output_topic'] or p['input_topic'].rstrip('/') + '/semcomp'
        self.publisher = create_image_publisher(
            self, CompressedImage, output, p['qos_profile'], p['qos_depth'])
        self.subscription = create_image_subscription(
            self, Image, p['input_topic'], self._on_image, p['qos_profile'], p['qos_depth'])
        self.diagnostics = create_diagnostics_publisher(self)
        self.timer = self.create_timer(p['diagnostics_period'], self._publish_diagnostics)
        self.add_on_set_parameters_callback(self._on_parameters)

    def _on_image(self, msg):
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

    def _on_parameters(self, params):
        try:
            changes = validate_changes(ENCODER_PARAMS, params)
            merged = dict(self.params, **changes)
            if any(k in changes for k in _CODEC_KEYS):
                if self.stage.configure(merged['codec'], merged['quality'], merged['device'],
                                        merged['codec_options']):
                    self.get_logger().info(f'codec now {self.stage.label}')
        except ValueError as exc:  # includes UsageError from the codec
            return SetParametersResult(successful=False, reason=str(exc))
        self.params = merged
        return SetParametersResult(successful=True)

    def _publish_diagnostics(self):
        self.diagnostics.publish(diagnostic_array(
            self, [self.stage.diagnostics('encoder')], self.params['device']))

    def close(self):
        """Nothing to flush; present for the shared main loop."""


def main(args=None):
    """Run the encoder node."""
    return run_node(EncoderNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
