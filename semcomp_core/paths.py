"""Where the package's bundled files live (sample frames, priors, shipped weights)."""
from __future__ import annotations

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
SAMPLES_DIR = DATA_DIR / "samples"
WEIGHTS_DIR = DATA_DIR / "weights"


def data_path(*parts: str) -> Path:
    return DATA_DIR.joinpath(*parts)
