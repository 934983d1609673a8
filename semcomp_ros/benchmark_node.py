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
benchmark_node: score a running semcomp pipeline live.

Subscribes the original images (``original_topic``), the reconstructions
(``<original_topic>/semcomp/reconstructed``) and the bitstreams
(``<original_topic>/semcomp``, for bytes and bpp), pairs frames by header
stamp and computes rate, PSNR, MS-SSIM, optional semantic agreement
(``segmenter``: none, auto, eval, default, a model folder or
package.module:factory) and latency: ``latency_ms`` = reconstruction receipt -
original receipt and the per-stage ``encode_stage_ms`` / ``decode_stage_ms``,
all on this node's clock (meaningful for bag replay too), plus
``stamp_latency_ms`` = receipt - header stamp when ``stamp_latency`` is true
(live cameras with synchronised clocks). Segmenter and CSV failures are
counted and warned about; the node keeps running. Publishes
diagnostic_msgs/DiagnosticArray on /diagnostics every ``diagnostics_period``
seconds (bitrate, fps, latency p50/p95, dropped/corrupt/late counts) and
writes ``csv_path`` plus a summary CSV on shutdown. All the per-frame work is in
``semcomp_core.pipeline.BenchmarkStage``.
"""

from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from semcomp_core.models.segment import open_segmenter
from semcomp_core.pipeline import BenchmarkStage
from sensor_msgs.msg import CompressedImage, Image

from .node_runtime import create_diagnostics_publisher, diagnostic_array, hardware_id, run_node
from .params import BENCHMARK_PARAMS, declare_all, validate_changes
from .qos import create_image_subscription


class BenchmarkNode(Node):
    """Wire BenchmarkStage to three subscriptions, a diagnostics timer and shutdown."""

    NODE_NAME = 'benchmark_node'

    def __init__(self, **kwargs):
        super().__init__(self.NODE_NAME, **kwargs)
        self.params = declare_all(self, BENCHMARK_PARAMS)
        p = self.params
        # none/'' -> None; auto -> the shipped evaluation U-Net if installed; UsageError (exit 2)
        # for a spec that cannot be loaded
        segmenter = open_segmenter(p['segmenter'], p['device'], auto='eval')
        if segmenter is not None:
            self.get_logger().info(
                f'semantic metric with segmenter {p["segmenter"]!r} '
                f'({segmenter.num_classes} classes) on {p["device"]}')
        self.stage = BenchmarkStage(
            p['csv_path'] or None, max_pending=p['max_pending'], quality_every=p['quality_every'],
            compute_ms_ssim=p['compute_ms_ssim'], segmenter=segmenter,
            num_classes=None if segmenter is None else segmenter.num_classes,
            stamp_latency=p['stamp_latency'])
        self.hardware_id = hardware_id(p['original_topic'])
        base = p['original_topic'].rstrip('/')
        recon_topic = p['reconstructed_topic'] or base + '/semcomp/reconstructed'
        bits_topic = p['bitstream_topic'] or base + '/semcomp'
        qos = (p['qos_profile'], p['qos_depth'])
        self.subscriptions_ = [
            create_image_subscription(self, Image, p['original_topic'], self._on_original, *qos),
            create_image_subscription(self, Image, recon_topic, self._on_reconstruction, *qos),
        ]
        if bits_topic != 'none':
            self.subscriptions_.append(create_image_subscription(
                self, CompressedImage, bits_topic, self._on_bitstream, *qos))
        self._bad_seen = 0
        self.diagnostics = create_diagnostics_publisher(self)
        self.timer = self.create_timer(p['diagnostics_period'], self._publish_diagnostics)
        self.add_on_set_parameters_callback(self._on_parameters)
        if self.stage.csv_path:
            self.get_logger().info(f'per-frame CSV will be written to {self.stage.csv_path}')

    def _now_ns(self):
        return self.get_clock().now().nanoseconds

    def _on_original(self, msg):
        self.stage.add_original_msg(msg, self._now_ns())
        self._warn_if_bad()

    def _on_reconstruction(self, msg):
        self.stage.add_reconstruction_msg(msg, self._now_ns())
        self._warn_if_bad()

    def _on_bitstream(self, msg):
        self.stage.add_bitstream_msg(msg, self._now_ns())
        self._warn_if_bad()

    def _warn_if_bad(self):
        bad = self.stage.bad_frames()
        if bad != self._bad_seen:
            self._bad_seen = bad
            self.get_logger().warning(
                self.stage.last_error, throttle_duration_sec=self.params['warn_throttle_s'])

    def _on_parameters(self, params):
        try:
            changes = validate_changes(BENCHMARK_PARAMS, params)
        except ValueError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        if 'quality_every' in changes:
            self.stage.quality_every = changes['quality_every']
        if 'compute_ms_ssim' in changes:
            self.stage.compute_ms_ssim = changes['compute_ms_ssim']
        self.params = dict(self.params, **changes)
        return SetParametersResult(successful=True)

    def _publish_diagnostics(self):
        self.diagnostics.publish(diagnostic_array(
            self, [self.stage.diagnostics('benchmark')], self.hardware_id))

    def close(self):
        """Write the CSV files (called once on shutdown)."""
        path = self.stage.close()
        if path is None and self.stage.counters['csv_errors']:
            self.get_logger().error(self.stage.last_error)
        elif path is not None:
            paired = self.stage.counters['paired']
            self.get_logger().info(
                f'wrote {path} ({paired} frame pairs) and {self.stage.summary_path}')


def main(args=None):
    """Run the benchmark node."""
    return run_node(BenchmarkNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
