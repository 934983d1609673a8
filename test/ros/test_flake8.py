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

"""Ament lint: flake8 (ROS 2 style) over the ROS-facing files of the package."""

from pathlib import Path

import pytest

ament_flake8 = pytest.importorskip(
    'ament_flake8.main', reason='ament_flake8 not installed (ROS 2 ament_lint packages)')

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
# semcomp_core follows the project's own style (see the repository's CI); the ROS
# layer -- nodes, launch files and ROS tests -- follows the ament one.
ROS_PATHS = [str(PACKAGE_ROOT / p) for p in ('semcomp_ros', 'launch', 'test/ros')]


@pytest.mark.flake8
@pytest.mark.linter
def test_flake8():
    rc, errors = ament_flake8.main_with_errors(argv=ROS_PATHS)
    assert rc == 0, \
        'Found %d code style errors / warnings:\n' % len(errors) + '\n'.join(errors)
