"""The one check of a device name (codecs, pipeline stages, CLI and node parameters use it)."""
from __future__ import annotations

import re

from .errors import UsageError

#: ``cpu``, ``cuda`` or ``cuda:N`` (N a GPU index)
DEVICE_PATTERN = re.compile(r"^(cpu|cuda|cuda:\d+)$")


def check_device(device: str) -> str:
    """Return ``device`` if it is ``cpu``, ``cuda`` or ``cuda:N``; UsageError otherwise."""
    if not DEVICE_PATTERN.match(str(device)):
        raise UsageError(f"device must be cpu, cuda or cuda:N, got {device!r}")
    return str(device)
