"""Bjøntegaard deltas on curves whose answer is known."""
import numpy as np
import pytest

from semcomp_core.metrics.bd import bd_quality, bd_rate

RATE = np.array([400.0, 600, 900, 1400, 2200])
PSNR = 20 + 4 * np.log10(RATE / 400) + 0.3 * np.log10(RATE / 400) ** 2


def test_same_curve_is_zero():
    assert abs(bd_rate(RATE, PSNR, RATE, PSNR)) < 1e-9 and abs(bd_quality(RATE, PSNR, RATE, PSNR)) < 1e-9


def test_a_codec_needing_20_percent_fewer_bytes():
    assert bd_rate(RATE, PSNR, RATE * 0.8, PSNR) == pytest.approx(-20.0, abs=0.01)
    assert bd_rate(RATE * 0.8, PSNR, RATE, PSNR) == pytest.approx(25.0, abs=0.01)


def test_a_codec_half_a_db_better():
    assert bd_quality(RATE, PSNR, RATE, PSNR + 0.5) == pytest.approx(0.5, abs=1e-6)
    assert bd_rate(RATE, PSNR, RATE, PSNR + 0.5) < 0


def test_bad_curves_are_refused():
    with pytest.raises(ValueError):
        bd_rate(RATE[:3], PSNR[:3], RATE, PSNR)
    with pytest.raises(ValueError):
        bd_quality(RATE, PSNR, RATE * 100, PSNR)       # no overlap in rate
    with pytest.raises(ValueError):
        bd_rate(RATE, PSNR, RATE, PSNR + 100)          # no overlap in quality
    with pytest.raises(ValueError):
        bd_rate(-RATE, PSNR, RATE, PSNR)
