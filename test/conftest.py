"""Shared fixtures. Markers: slow, gpu, ros, rclpy (see setup.cfg)."""
from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "semcomp_core" / "data" / "samples"
CAMVID = Path(os.environ.get("SEMCOMP_CAMVID", REPO.parent / "shared" / "data" / "camvid"))


def _isolate_ros_traffic() -> None:
    """DDS traffic of the real-rclpy tests stays on this machine and in a domain of its own.

    Set before any test imports rclpy (and inherited by nodes started as subprocesses):
    localhost-only discovery (ROS_AUTOMATIC_DISCOVERY_RANGE, Jazzy and later; ROS_LOCALHOST_ONLY
    for older distributions), no static peers, and a random ROS_DOMAIN_ID in 1..100 per test
    run (SEMCOMP_TEST_ROS_DOMAIN_ID fixes it), so parallel runs on one machine do not see each
    other. ROS logs go to a temporary folder unless ROS_LOG_DIR is set.
    """
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ["ROS_LOCALHOST_ONLY"] = "1"
    os.environ["ROS_STATIC_PEERS"] = ""
    os.environ["ROS_DOMAIN_ID"] = os.environ.get("SEMCOMP_TEST_ROS_DOMAIN_ID") or str(
        random.SystemRandom().randint(1, 100))
    os.environ.setdefault("ROS_LOG_DIR", tempfile.mkdtemp(prefix="semcomp-test-ros-log-"))


_isolate_ros_traffic()


def pytest_collection_modifyitems(config, items):
    try:
        import torch
        has_cuda = torch.cuda.is_available()
    except Exception:  # pragma: no cover
        has_cuda = False
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def sample_paths() -> list[Path]:
    return sorted((SAMPLES / "images").glob("*.png"))


@pytest.fixture(scope="session")
def sample_image(sample_paths) -> np.ndarray:
    from semcomp_core.imageio import load_image
    return load_image(sample_paths[0])


@pytest.fixture(scope="session")
def sample_label() -> np.ndarray:
    from semcomp_core.imageio import load_label
    return load_label(sorted((SAMPLES / "labels").glob("*.png"))[0])


@pytest.fixture(scope="session")
def camvid_root() -> Path:
    if not (CAMVID / "val").is_dir():
        pytest.skip(f"CamVid not found at {CAMVID} (set SEMCOMP_CAMVID)")
    return CAMVID
