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
Replay a camera bag through the semcomp pipeline and benchmark it.

    ros2 launch semcomp_ros replay_benchmark.launch.py bag:=street_bag codec:=bpg rate:=0.5

Runs ``ros2 bag play <bag> --rate <rate>`` (remapping ``bag_topic`` to
``camera_topic`` when they differ) together with pipeline.launch.py with the
decoder and the benchmark node. QoS defaults to ``reliable`` here so that no
frame is lost between player and nodes (``ros2 bag play`` offers reliable
unless the bag says otherwise). When the player exits, the launch shuts down
after ``shutdown_delay`` seconds, so the benchmark node writes its CSV.

Latency: the bag's header stamps are recorded times, so "now - stamp" would
be wall clock minus recording time. The benchmark node therefore runs with
``stamp_latency:=false`` and reports ``latency_ms`` = reconstruction receipt -
original receipt (encoder + transports + decoder, measured on the benchmark
node's clock) and the per-stage ``encode_stage_ms`` / ``decode_stage_ms``.
The player runs without ``--clock`` and the nodes on wall time: playback
``rate`` changes how often frames come, not how latency is measured.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import (DeclareLaunchArgument, EmitEvent, ExecuteProcess,
                            IncludeLaunchDescription, OpaqueFunction, RegisterEventHandler,
                            TimerAction)
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration

PACKAGE = 'semcomp_ros'


def _flag(text):
    return text.strip().lower() in ('true', '1', 'yes', 'on')


def _player(context):
    def arg(name):
        return LaunchConfiguration(name).perform(context)

    cmd = ['ros2', 'bag', 'play', arg('bag'), '--rate', arg('rate')]
    bag_topic, camera_topic = arg('bag_topic'), arg('camera_topic')
    if bag_topic and bag_topic != camera_topic:
        cmd += ['--remap', f'{bag_topic}:={camera_topic}']
    if _flag(arg('loop')):
        cmd += ['--loop']
    play = ExecuteProcess(cmd=cmd, name='bag_play', output='screen')
    end = RegisterEventHandler(OnProcessExit(target_action=play, on_exit=[TimerAction(
        period=float(arg('shutdown_delay')),
        actions=[EmitEvent(event=Shutdown(reason='bag playback finished'))])]))
    # give the nodes time to start (and the codec to load) before the first frame
    return [end, TimerAction(period=float(arg('start_delay')), actions=[play])]


def generate_launch_description():
    """Declare the arguments, include the pipeline and play the bag."""
    pipeline = os.path.join(get_package_share_directory(PACKAGE), 'launch', 'pipeline.launch.py')
    passed = ('camera_topic', 'codec', 'quality', 'device', 'params_file', 'qos_profile',
              'csv_path', 'segmenter')
    return LaunchDescription([
        DeclareLaunchArgument('bag', description='rosbag2 folder to play (mcap or sqlite3).'),
        DeclareLaunchArgument('rate', default_value='1.0',
                              description='Playback rate passed to ros2 bag play --rate.'),
        DeclareLaunchArgument('bag_topic', default_value='/camera/image_raw',
                              description='Image topic in the bag; remapped to camera_topic.'),
        DeclareLaunchArgument('camera_topic', default_value='/camera/image_raw',
                              description='Topic the pipeline compresses.'),
        DeclareLaunchArgument('loop', default_value='false',
                              description='Play the bag in a loop (true/false).'),
        DeclareLaunchArgument('codec', default_value='',
                              description='Codec name or spec (e.g. bpg:q=45); empty keeps '
                                          'params_file.'),
        DeclareLaunchArgument('quality', default_value='',
                              description='Codec quality knob; empty keeps params_file.'),
        DeclareLaunchArgument('device', default_value='',
                              description='cpu, cuda or cuda:N; empty keeps params_file.'),
        DeclareLaunchArgument(
            'params_file',
            default_value=os.path.join(get_package_share_directory(PACKAGE), 'config',
                                       'semcomp.yaml'),
            description='YAML parameter file for the nodes.'),
        DeclareLaunchArgument('qos_profile', default_value='reliable',
                              description='QoS of all nodes: reliable (default here, no frame '
                                          'lost), sensor_data or system_default.'),
        DeclareLaunchArgument('csv_path', default_value='semcomp_benchmark.csv',
                              description='Benchmark CSV written on shutdown.'),
        DeclareLaunchArgument('segmenter', default_value='',
                              description='Benchmark segmenter (none, auto, eval, default, a '
                                          'model folder, package.module:factory); empty keeps '
                                          'params_file.'),
        DeclareLaunchArgument('start_delay', default_value='3.0',
                              description='Seconds to wait before playing the bag.'),
        DeclareLaunchArgument('shutdown_delay', default_value='2.0',
                              description='Seconds between the end of playback and shutdown.'),
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(pipeline),
            launch_arguments=dict(
                {name: LaunchConfiguration(name) for name in passed},
                start_decoder='true', start_benchmark='true',
                stamp_latency='false').items(),
        ),
        OpaqueFunction(function=_player),
    ])
