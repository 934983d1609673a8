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

"""Ament lint: PEP 257 docstrings in the ROS-facing files of the package."""

from pathlib import Path

import pytest

ament_pep257 = pytest.importorskip(
    'ament_pep257.main', reason='ament_pep257 not installed (ROS 2 ament_lint packages)')

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
ROS_PATHS = [str(PACKAGE_ROOT / p) for p in ('semcomp_ros', 'launch', 'test/ros')]


@pytest.mark.linter
@pytest.mark.pep257
def test_pep257():
    rc = ament_pep257.main(argv=ROS_PATHS)
    assert rc == 0, 'Found code style errors / warnings'
