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
decoder_node: semcomp bitstream (sensor_msgs/CompressedImage) -> sensor_msgs/Image rgb8.

Subscribes ``input_topic`` (default ``/camera/image_raw/semcomp``), publishes
the reconstruction on ``<input_topic>/reconstructed`` (or ``output_topic``)
with the header of the bitstream message -- the camera's original stamp and
frame_id. The codec is found from the container header (the video codecs,
whose bytes are raw codec packets: from the message format), so one decoder
serves every codec; ``decoder_options`` (live-settable) holds the receiver's
own codec parameters, e.g. ``decoder=/models/gan``. Corrupt or foreign
messages give a throttled warning and a counter on /diagnostics; the node
keeps running.

Frames are decoded as streams (``semcomp_core.pipeline.DecoderStage``, one
session per codec). After a lost, corrupt or reordered message the inter
frames that follow lack their reference: they are not published, counted
(``frames_lost``, with a throttled warning) until the next key frame, which
``recoveries`` counts. Changing ``device``, ``decoder_options`` or ``backend``
drops the stream state the same way (inter frames are refused until the next
key frame). /diagnostics also reports key/inter frames and
``waiting_for_key_frame``.
"""

from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from semcomp_core.pipeline import DecoderStage
from sensor_msgs.msg import CompressedImage, Image

from .node_runtime import (as_uint8_array, create_diagnostics_publisher, diagnostic_array,
                           hardware_id, run_node)
from .params import declare_all, DECODER_PARAMS, receiver_model_options, use_engine_cache, validate_changes
from .qos import create_image_publisher, create_image_subscription


class DecoderNode(Node):
    """Wire DecoderStage to topics, parameters, QoS and a diagnostics timer."""

    NODE_NAME = 'decoder_node'

    def __init__(self, **kwargs):
        super().__init__(self.NODE_NAME, **kwargs)
        self.params = declare_all(self, DECODER_PARAMS)
        p = self.params
        use_engine_cache(p['engine_cache_dir'])
        self.stage = DecoderStage(p['device'], max_pixels=p['max_pixels'],
                                  decoder_options=self._receiver_options(p['decoder_options']),
                                  backend=p['backend'], renderer=p['renderer'])
        for implementation in self.stage.warm_up():  # networks loaded before the first frame
            self.get_logger().info(f'warmed up: {implementation}')
        self.hardware_id = hardware_id(p['input_topic'])
        output = p['output_topic'] or p['input_topic'].rstrip('/') + '/reconstructed'
        self.publisher = create_image_publisher(
            self, Image, output, p['qos_profile'], p['qos_depth'])
        self.subscription = create_image_subscription(
            self, CompressedImage, p['input_topic'], self._on_bitstream,
            p['qos_profile'], p['qos_depth'])
        self.diagnostics = create_diagnostics_publisher(self)
        self.timer = self.create_timer(p['diagnostics_period'], self._publish_diagnostics)
        self.add_on_set_parameters_callback(self._on_parameters)

    def _receiver_options(self, options):
        """decoder_options with decoder=<model_dir>/decoder added (decoder_options naming one wins)."""
        return receiver_model_options(options, self.params['model_dir'])

    def _on_bitstream(self, msg):
        frame = self.stage.decode_msg(msg)
        if frame is None:
            self.get_logger().warning(
                self.stage.last_error, throttle_duration_sec=self.params['warn_throttle_s'])
            return
        height, width = frame.image.shape[:2]
        out = Image()
        out.header = msg.header
        out.height = height
        out.width = width
        out.encoding = 'rgb8'
        out.is_bigendian = 0
        out.step = width * 3
        out.data = as_uint8_array(frame.image.reshape(-1))
        self.publisher.publish(out)

    def _on_parameters(self, params):
        try:
            changes = validate_changes(DECODER_PARAMS, params)
            dropped = self.stage.configure(
                device=changes.get('device'), max_pixels=changes.get('max_pixels'),
                decoder_options=(self._receiver_options(changes['decoder_options'])
                                 if 'decoder_options' in changes else None),
                backend=changes.get('backend'), renderer=changes.get('renderer'))
        except ValueError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        if dropped:
            self.get_logger().info(
                'receiver settings changed: stream state dropped, inter frames are refused until '
                'the next key frame')
        self.params = dict(self.params, **changes)
        return SetParametersResult(successful=True)

    def _publish_diagnostics(self):
        self.diagnostics.publish(diagnostic_array(
            self, [self.stage.diagnostics('decoder')], self.hardware_id))

    def close(self):
        """Nothing to flush; present for the shared main loop."""


def main(args=None):
    """Run the decoder node."""
    return run_node(DecoderNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
