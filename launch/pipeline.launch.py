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
Launch the semcomp pipeline: encoder, optionally decoder and benchmark.

    ros2 launch semcomp_ros pipeline.launch.py codec:=bpg quality:=40
    ros2 launch semcomp_ros pipeline.launch.py gop:=30 kbps:=12
    ros2 launch semcomp_ros pipeline.launch.py camera_topic:=/cam/front start_benchmark:=true

Parameters come from ``params_file`` (default: the installed
config/semcomp.yaml); arguments left empty (the default for all but the
start_* switches) keep the file's values, arguments given override them on
every node they concern. Topics follow the camera topic: when
``camera_topic`` is given, the encoder reads it, the decoder reads
``<camera_topic>/semcomp`` and the benchmark compares ``<camera_topic>`` with
``<camera_topic>/semcomp/reconstructed``; when it is empty, every node keeps
the topics of the parameter file.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

PACKAGE = 'semcomp_ros'


def _default_params_file():
    return os.path.join(get_package_share_directory(PACKAGE), 'config', 'semcomp.yaml')


def _given(values):
    """Keep only the overrides the user gave (empty launch arguments keep the file's values)."""
    return {k: v for k, v in values.items() if v != ''}


def _flag(text):
    return text.strip().lower() in ('true', '1', 'yes', 'on')


def _nodes(context):
    def arg(name):
        return LaunchConfiguration(name).perform(context)

    camera = arg('camera_topic').rstrip('/')
    bitstream = camera + '/semcomp' if camera else ''
    params_file = arg('params_file')
    quality = int(arg('quality')) if arg('quality') else ''
    gop = int(arg('gop')) if arg('gop') else ''
    kbps = float(arg('kbps')) if arg('kbps') else ''
    stamp_latency = _flag(arg('stamp_latency')) if arg('stamp_latency') else ''
    common = {'qos_profile': arg('qos_profile')}
    nodes = [Node(
        package=PACKAGE, executable='encoder_node', name='encoder_node', output='screen',
        parameters=[params_file, _given(dict(common, **{
            'input_topic': camera, 'codec': arg('codec'), 'quality': quality,
            'gop': gop, 'kbps': kbps, 'device': arg('device'),
            'roi_mask': arg('roi_mask'), 'roi_boxes': arg('roi_boxes')}))],
    )]
    if _flag(arg('start_decoder')):
        nodes.append(Node(
            package=PACKAGE, executable='decoder_node', name='decoder_node', output='screen',
            parameters=[params_file, _given(dict(common, **{
                'input_topic': bitstream, 'device': arg('device'),
                'decoder_options': arg('decoder_options')}))],
        ))
    if _flag(arg('start_benchmark')):
        nodes.append(Node(
            package=PACKAGE, executable='benchmark_node', name='benchmark_node', output='screen',
            parameters=[params_file, _given(dict(common, **{
                'original_topic': camera, 'csv_path': arg('csv_path'),
                'segmenter': arg('segmenter'), 'stamp_latency': stamp_latency}))],
        ))
    return nodes


def generate_launch_description():
    """Declare the arguments and start the nodes they ask for."""
    return LaunchDescription([
        DeclareLaunchArgument(
            'camera_topic', default_value='',
            description='sensor_msgs/Image topic to compress; the bitstream goes to '
                        '<camera_topic>/semcomp, reconstructions to '
                        '<camera_topic>/semcomp/reconstructed. Empty keeps the topics of '
                        'params_file (/camera/image_raw by default).'),
        DeclareLaunchArgument(
            'codec', default_value='',
            description='Codec name or spec NAME[:K=V...] (jpeg, webp, bpg:q=45, semantic-gan, '
                        '...: see `semcomp codecs`); empty keeps params_file (semantic-gan by '
                        'default).'),
        DeclareLaunchArgument(
            'quality', default_value='',
            description='Codec quality knob (jpeg/webp quality, bpg q); -1 = codec default; '
                        'empty keeps params_file.'),
        DeclareLaunchArgument(
            'gop', default_value='',
            description='Streams: key frame every N frames (semantic-gan, h264, hevc, av1); '
                        'empty keeps params_file (30).'),
        DeclareLaunchArgument(
            'kbps', default_value='',
            description='Streams: bitrate budget in kbit/s (0 = off); empty keeps params_file.'),
        DeclareLaunchArgument(
            'roi_mask', default_value='',
            description='Region of interest sent as pixels: a mask image of the camera frame size '
                        '(semantic codecs); empty keeps params_file (none).'),
        DeclareLaunchArgument(
            'roi_boxes', default_value='',
            description='Region of interest as boxes "x0,y0,x1,y1;..." in frame pixels; empty keeps '
                        'params_file (none).'),
        DeclareLaunchArgument(
            'device', default_value='',
            description='cpu, cuda or cuda:N for encoder and decoder; empty keeps params_file.'),
        DeclareLaunchArgument(
            'params_file', default_value=_default_params_file(),
            description='YAML parameter file (/encoder_node:, /decoder_node:, /benchmark_node: '
                        'with ros__parameters).'),
        DeclareLaunchArgument(
            'start_decoder', default_value='true',
            description='Start decoder_node (true/false).'),
        DeclareLaunchArgument(
            'start_benchmark', default_value='false',
            description='Start benchmark_node, which publishes /diagnostics and writes a CSV '
                        'on shutdown (true/false).'),
        DeclareLaunchArgument(
            'qos_profile', default_value='',
            description='sensor_data, reliable or system_default on all nodes; empty keeps '
                        'params_file (sensor_data).'),
        DeclareLaunchArgument(
            'csv_path', default_value='',
            description='Benchmark CSV path; empty keeps params_file (semcomp_benchmark.csv).'),
        DeclareLaunchArgument(
            'decoder_options', default_value='',
            description='Receiver-side codec parameters of decoder_node, e.g. '
                        'decoder=/models/gan; empty keeps params_file.'),
        DeclareLaunchArgument(
            'segmenter', default_value='',
            description='Benchmark segmenter for the semantic metric: none, auto, eval, default, '
                        'a model folder or package.module:factory; empty keeps params_file.'),
        DeclareLaunchArgument(
            'stamp_latency', default_value='',
            description='Benchmark also reports receipt - header stamp (true/false; needs '
                        'synchronised clocks, false for bag replay); empty keeps params_file.'),
        OpaqueFunction(function=_nodes),
    ])
