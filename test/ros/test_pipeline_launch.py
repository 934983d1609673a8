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
launch_testing: encoder and decoder nodes with jpeg, one frame through, a corrupt one survived.

Runs with ``colcon test --packages-select semcomp_ros`` (or ``launch_test`` /
``python -m pytest test/ros``) in a sourced ROS 2 environment; skipped
elsewhere. Uses the installed executables when the package is in the ament
index, otherwise ``python -m semcomp_ros.<node>`` from this source tree.
"""

from array import array
import os
from pathlib import Path
import sys
import time
import unittest

import pytest

_ROS = 'needs ROS 2: source /opt/ros/<distro>/setup.bash'
rclpy = pytest.importorskip('rclpy', reason=f'rclpy missing; {_ROS}')
launch = pytest.importorskip('launch', reason=f'launch missing; {_ROS}')
pytest.importorskip('launch.actions', reason=f'launch missing; {_ROS}')
launch_ros_actions = pytest.importorskip('launch_ros.actions', reason=f'no launch_ros; {_ROS}')
launch_testing = pytest.importorskip('launch_testing', reason=f'launch_testing missing; {_ROS}')
pytest.importorskip('launch_testing.actions', reason=f'launch_testing missing; {_ROS}')
pytest.importorskip('launch_testing.asserts', reason=f'launch_testing missing; {_ROS}')
ament_packages = pytest.importorskip('ament_index_python.packages', reason=_ROS)
rclpy_qos = pytest.importorskip('rclpy.qos', reason=_ROS)
sensor_msgs = pytest.importorskip('sensor_msgs.msg', reason=f'sensor_msgs missing; {_ROS}')
Image = sensor_msgs.Image
CompressedImage = sensor_msgs.CompressedImage

PACKAGE = 'semcomp_ros'
CAMERA = '/semcomp_test/image_raw'
BITSTREAM = CAMERA + '/semcomp'
RECONSTRUCTED = BITSTREAM + '/reconstructed'
SOURCE_ROOT = Path(__file__).resolve().parents[2]
PARAMS = {
    'encoder_node': {'input_topic': CAMERA, 'codec': 'jpeg', 'quality': 50,
                     'qos_profile': 'reliable', 'diagnostics_period': 0.5},
    'decoder_node': {'input_topic': BITSTREAM, 'qos_profile': 'reliable',
                     'warn_throttle_s': 0.0, 'diagnostics_period': 0.5},
}


def _installed():
    try:
        ament_packages.get_package_share_directory(PACKAGE)
        return True
    except ament_packages.PackageNotFoundError:
        return False


def _node_action(executable):
    params = PARAMS[executable]
    env = {'PYTHONUNBUFFERED': '1'}
    if _installed():
        return launch_ros_actions.Node(
            package=PACKAGE, executable=executable, name=executable, output='screen',
            parameters=[params], additional_env=env)
    cmd = [sys.executable, '-m', f'{PACKAGE}.{executable}', '--ros-args',
           '-r', f'__node:={executable}']
    for key, value in params.items():
        cmd += ['-p', f'{key}:={value}']
    return launch.actions.ExecuteProcess(
        cmd=cmd, cwd=str(SOURCE_ROOT), name=executable, output='screen',
        additional_env=dict(env, PYTHONPATH=os.pathsep.join(
            [str(SOURCE_ROOT), os.environ.get('PYTHONPATH', '')])))


@pytest.mark.launch_test
@pytest.mark.ros
def generate_test_description():
    """Start encoder and decoder (jpeg, reliable QoS) and signal readiness."""
    encoder = _node_action('encoder_node')
    decoder = _node_action('decoder_node')
    return launch.LaunchDescription([
        encoder, decoder, launch_testing.actions.ReadyToTest(),
    ]), {'encoder': encoder, 'decoder': decoder}


def _image(sec, nanosec, frame_id='test_camera', height=48, width=64):
    msg = Image()
    msg.header.stamp.sec = sec
    msg.header.stamp.nanosec = nanosec
    msg.header.frame_id = frame_id
    msg.height, msg.width = height, width
    msg.encoding = 'rgb8'
    msg.step = width * 3
    pixels = bytes((x * 4) % 256 for _ in range(height) for x in range(width) for _ in range(3))
    msg.data = array('B', pixels)
    return msg


class TestPipeline(unittest.TestCase):
    """Talk to the running nodes through a client node."""

    @classmethod
    def setUpClass(cls):
        rclpy.init()
        cls.node = rclpy.create_node('semcomp_pipeline_test')
        cls.qos = rclpy_qos.QoSProfile(depth=10, reliability=rclpy_qos.ReliabilityPolicy.RELIABLE)
        cls.received = []
        cls.node.create_subscription(Image, RECONSTRUCTED, cls.received.append, cls.qos)
        cls.image_pub = cls.node.create_publisher(Image, CAMERA, cls.qos)
        cls.bits_pub = cls.node.create_publisher(CompressedImage, BITSTREAM, cls.qos)

    @classmethod
    def tearDownClass(cls):
        cls.node.destroy_node()
        rclpy.shutdown()

    def _round_trip(self, sec, nanosec, timeout=60.0):
        """Publish a frame until its reconstruction comes back; return it (or None)."""
        msg = _image(sec, nanosec)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.image_pub.publish(msg)
            deadline = time.monotonic() + 0.5
            while time.monotonic() < deadline:
                rclpy.spin_once(self.node, timeout_sec=0.05)
                for out in self.received:
                    if (out.header.stamp.sec, out.header.stamp.nanosec) == (sec, nanosec):
                        return out
        return None

    def test_frame_comes_back_with_the_same_header(self):
        out = self._round_trip(42, 123456789)
        self.assertIsNotNone(out, f'no reconstruction on {RECONSTRUCTED}')
        self.assertEqual(out.header.frame_id, 'test_camera')
        self.assertEqual((out.height, out.width, out.encoding), (48, 64, 'rgb8'))
        self.assertEqual(len(out.data), 48 * 64 * 3)

    def test_corrupt_bitstream_keeps_the_decoder_running(self, proc_output, decoder):
        self.assertIsNotNone(self._round_trip(50, 1), 'pipeline not up')
        bad = CompressedImage()
        bad.header.stamp.sec = 7
        bad.header.frame_id = 'test_camera'
        bad.format = 'semcomp/jpeg'
        bad.data = array('B', b'not a semcomp container' * 4)
        for _ in range(3):
            self.bits_pub.publish(bad)
            rclpy.spin_once(self.node, timeout_sec=0.1)
        proc_output.assertWaitFor('corrupt bitstream', process=decoder, timeout=20)
        self.assertIsNotNone(self._round_trip(51, 2), 'decoder stopped after a corrupt frame')


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):
    """Both nodes exit cleanly on launch shutdown (SIGINT)."""

    def test_exit_codes(self, proc_info):
        launch_testing.asserts.assertExitCodes(proc_info)
