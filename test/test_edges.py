"""Edge preservation metric (metrics/edges.py) and its bench column."""
from __future__ import annotations

import numpy as np
import pytest

from semcomp_core.imageio import load_image
from semcomp_core.metrics import edge_f_score, edge_map
from semcomp_core.paths import data_path


@pytest.fixture(scope="module")
def frame():
    return load_image(sorted((data_path("samples") / "images").glob("*.png"))[0])


def test_identical_frames_score_one(frame):
    s = edge_f_score(frame, frame)
    assert (s.precision, s.recall, s.f) == (1.0, 1.0, 1.0) and s.edges_original == s.edges_reconstruction > 1000


def test_blur_loses_edges_monotonically(frame):
    import cv2

    scores = [edge_f_score(frame, cv2.GaussianBlur(frame, (0, 0), sigmaX=s)).f for s in (0.5, 1.5, 3.0, 6.0)]
    assert scores == sorted(scores, reverse=True) and scores[0] > 0.8 and scores[-1] < 0.3


def test_mask_scores_only_the_edges_inside_it(frame):
    damaged = frame.copy()
    damaged[:, 240:] = 128                                   # the right half loses every edge
    left = np.zeros(frame.shape[:2], bool)
    left[:, :236] = True
    inside = edge_f_score(frame, damaged, mask=left)
    whole = edge_f_score(frame, damaged)
    assert inside.f > 0.95 > 0.8 > whole.f
    assert inside.edges_original < whole.edges_original
    assert edge_f_score(frame, damaged, mask=~left).recall < 0.1


def test_one_pixel_shift_is_within_tolerance_but_ten_are_not(frame):
    near = np.roll(frame, 1, axis=1)
    far = np.roll(frame, (10, 10), axis=(0, 1))   # horizontal edges survive a shift along x alone
    assert edge_f_score(frame, near).f > 0.9
    assert edge_f_score(frame, far).f < 0.5


def test_flat_frames_and_bad_input():
    flat = np.full((40, 60, 3), 128, np.uint8)
    lines = flat.copy()
    lines[20, :] = 255
    assert not edge_map(flat).any() and edge_map(lines).any()
    s = edge_f_score(flat, flat)
    assert (s.precision, s.recall, s.f) == (1.0, 1.0, 1.0)
    lost = edge_f_score(lines, flat)                   # every edge of the original gone
    assert lost.recall == 0.0 and lost.f == 0.0
    invented = edge_f_score(flat, lines)               # edges that were never there
    assert invented.precision == 0.0 and invented.recall == 1.0 and invented.f == 0.0
    with pytest.raises(ValueError, match="shapes differ"):
        edge_f_score(flat, flat[:, :50])
    with pytest.raises(ValueError, match="uint8"):
        edge_map(flat.astype(np.float32))


def test_bench_reports_edge_f(frame, tmp_path):
    from semcomp_core.bench.runner import BenchRunner
    from semcomp_core.codecs import build

    runner = BenchRunner([build("jpeg:quality=90"), build("jpeg:quality=2")], tmp_path, warmup=False)
    good, bad = runner.run_frame("f0", frame)
    assert good.row["edge_f"] == pytest.approx(edge_f_score(frame, good.reconstruction).f)
    assert good.row["edge_f"] > bad.row["edge_f"]
    summary = runner.finish()
    assert summary[0]["edge_f"] == pytest.approx(good.row["edge_f"])
