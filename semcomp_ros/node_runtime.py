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
What the three semcomp nodes share: diagnostics publishing and the main loop.

* :func:`diagnostic_array` turns the stages' ROS-free
  ``semcomp_core.pipeline.DiagnosticReport`` objects into a
  ``diagnostic_msgs/DiagnosticArray``, with :func:`hardware_id` (host name and
  camera topic) naming what they are about;
* :func:`run_node` is the body of every ``main()``: init, build the node
  (a node that cannot start -- bad parameter value or type, unknown codec --
  ends the process with exit code 2 and one fatal log line),
  spin until Ctrl-C or launch shutdown, then ``close()`` the node (the
  benchmark writes its CSV there) and shut down cleanly with exit code 0.
"""

from array import array
import socket

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
import rclpy
from rclpy.logging import get_logger

try:
    from rclpy.executors import ExternalShutdownException
except ImportError:  # pragma: no cover - rclpy before Humble
    class ExternalShutdownException(Exception):
        """Stand-in where rclpy does not define it."""

DIAGNOSTICS_TOPIC = '/diagnostics'


def as_uint8_array(data):
    """Return bytes as the ``array('B')`` rclpy uses for ``uint8[]`` fields (one copy)."""
    out = array('B')
    out.frombytes(data)
    return out


def hardware_id(topic):
    """Return the diagnostics ``hardware_id``: host and camera topic, e.g. ``car7:/cam/front``."""
    return f'{socket.gethostname()}:{topic}'


def diagnostic_array(node, reports, hardware_id=''):
    """Return a DiagnosticArray stamped now with one status per report."""
    msg = DiagnosticArray()
    msg.header.stamp = node.get_clock().now().to_msg()
    for report in reports:
        status = DiagnosticStatus()
        status.level = getattr(DiagnosticStatus, report.level)
        status.name = f'{node.get_name()}: {report.name}'
        status.message = report.message
        status.hardware_id = hardware_id
        status.values = [KeyValue(key=k, value=v) for k, v in report.values.items()]
        msg.status.append(status)
    return msg


def create_diagnostics_publisher(node):
    """Return a publisher on /diagnostics (reliable, depth 10 as diagnostic_updater uses)."""
    return node.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, 10)


def run_node(node_class, args=None):
    """Run ``node_class()`` until shutdown; return the process exit code."""
    rclpy.init(args=args)
    node = None
    try:
        try:
            node = node_class()
        except Exception as exc:  # noqa: B902 - bad parameter values or types, unknown codec
            get_logger(node_class.NODE_NAME).fatal(f'cannot start: {type(exc).__name__}: {exc}')
            return 2
        _spin_until_shutdown(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.close()
            node.destroy_node()
        _shutdown()
    return 0


def _spin_until_shutdown(node):
    """Spin ``node``; a shutdown racing the executor is a normal end, not an error.

    On SIGINT rclpy's signal handler shuts the context down; if that lands while the
    executor builds its wait set, rclpy raises RCLError ("the given context is not
    valid") instead of KeyboardInterrupt. Anything raised after the context stopped
    being ok is therefore treated as shutdown; while it is ok, errors propagate.
    """
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        raise
    except Exception:  # noqa: B902 - RCLError and friends when shutdown races the wait set
        if node.context.ok():
            raise


def _shutdown():
    if hasattr(rclpy, 'try_shutdown'):
        rclpy.try_shutdown()
    elif rclpy.ok():
        rclpy.shutdown()
