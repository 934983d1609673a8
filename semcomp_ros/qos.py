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
QoS for image topics: sensor data by default, overridable, always logged.

The ``qos_profile`` parameter picks the base profile (``sensor_data``,
``reliable``, ``system_default``) and ``qos_depth`` its history depth. Each
publisher and subscription is also created with
``QoSOverridingOptions.with_default_policies()`` where rclpy has it, so single
policies can be overridden per topic at start-up, e.g.
``qos_overrides./camera/image_raw.subscription.reliability: reliable``.
The profile chosen is logged once per endpoint.
"""

import rclpy.qos
from rclpy.qos import QoSProfile

try:  # Galactic and later
    from rclpy.qos_overriding_options import QoSOverridingOptions
except ImportError:  # pragma: no cover - older rclpy
    QoSOverridingOptions = None


def image_qos(profile, depth):
    """Return the QoSProfile named ``profile`` with history depth ``depth``."""
    if profile == 'sensor_data':
        base = rclpy.qos.qos_profile_sensor_data
    elif profile == 'reliable':
        base = QoSProfile(depth=depth,
                          reliability=rclpy.qos.ReliabilityPolicy.RELIABLE,
                          durability=rclpy.qos.DurabilityPolicy.VOLATILE)
    elif profile == 'system_default':
        base = rclpy.qos.qos_profile_system_default
    else:
        raise ValueError(f'unknown QoS profile {profile!r}')
    return QoSProfile(history=rclpy.qos.HistoryPolicy.KEEP_LAST, depth=depth,
                      reliability=base.reliability, durability=base.durability)


def describe(qos):
    """Return a one-line text of the policies that decide compatibility."""
    def name(policy):
        return getattr(policy, 'name', str(policy)).lower()

    return (f'{name(qos.reliability)}, {name(qos.durability)}, '
            f'{name(qos.history)} {qos.depth}')


def _overriding_kwargs():
    if QoSOverridingOptions is None:
        return {}
    return {'qos_overriding_options': QoSOverridingOptions.with_default_policies()}


def create_image_subscription(node, msg_type, topic, callback, profile, depth):
    """Subscribe with the chosen profile (overridable) and log it."""
    qos = image_qos(profile, depth)
    sub = node.create_subscription(msg_type, topic, callback, qos, **_overriding_kwargs())
    node.get_logger().info(
        f'subscribing to {getattr(sub, "topic_name", topic)} with QoS {profile} '
        f'({describe(qos)}; qos_overrides.* parameters apply on top)')
    return sub


def create_image_publisher(node, msg_type, topic, profile, depth):
    """Publish with the chosen profile (overridable) and log it."""
    qos = image_qos(profile, depth)
    pub = node.create_publisher(msg_type, topic, qos, **_overriding_kwargs())
    node.get_logger().info(
        f'publishing on {getattr(pub, "topic_name", topic)} with QoS {profile} '
        f'({describe(qos)}; qos_overrides.* parameters apply on top)')
    return pub
