"""Shared fixtures. Markers: slow, gpu, ros (see setup.cfg)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "semcomp_core" / "data" / "samples"
CAMVID = Path(os.environ.get("SEMCOMP_CAMVID", REPO.parent / "shared" / "data" / "camvid"))


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
