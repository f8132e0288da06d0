"""Colour science: CIEDE2000 against Sharma, Wu & Dalal (2005); LAB conversions."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from zrealism_core.imaging.colour import ciede2000, delta_e_rgb, lab_to_rgb, rgb_to_lab, rgb_to_lab_fast


SHARMA_2005 = Path(__file__).parent / "data" / "ciede2000_sharma2005.txt"


def test_ciede2000_matches_sharma_2005():
    rows = np.loadtxt(SHARMA_2005)
    assert rows.shape == (34, 7)
    got = ciede2000(rows[:, 0:3], rows[:, 3:6])
    np.testing.assert_allclose(got, rows[:, 6], atol=1e-4)
    # symmetric
    np.testing.assert_allclose(ciede2000(rows[:, 3:6], rows[:, 0:3]), rows[:, 6], atol=1e-4)


def test_known_lab_values():
    np.testing.assert_allclose(rgb_to_lab(np.array([1.0, 1.0, 1.0])), [100, 0, 0], atol=1e-3)
    np.testing.assert_allclose(rgb_to_lab(np.array([0.0, 0.0, 0.0])), [0, 0, 0], atol=1e-3)
    # sRGB red in CIELAB (D65): L 53.24, a 80.09, b 67.20
    np.testing.assert_allclose(rgb_to_lab(np.array([1.0, 0.0, 0.0])), [53.24, 80.09, 67.20], atol=0.02)
    assert float(delta_e_rgb(np.array([0.2, 0.4, 0.6]), np.array([0.2, 0.4, 0.6]))) == 0.0


def test_lab_round_trip():
    rgb = np.random.default_rng(0).random((4000, 3)).astype(np.float32)
    back = lab_to_rgb(rgb_to_lab(rgb))
    np.testing.assert_allclose(back, rgb, atol=1e-4)
    grid = np.stack(np.meshgrid(*[np.linspace(0, 1, 9)] * 3), axis=-1).reshape(-1, 3)
    np.testing.assert_allclose(lab_to_rgb(rgb_to_lab(grid)), grid, atol=1e-4)


def test_fast_lab_is_close_to_exact():
    rgb = (np.random.default_rng(1).integers(0, 256, (64, 64, 3)) / 255.0).astype(np.float32)
    fast, exact = rgb_to_lab_fast(rgb), rgb_to_lab(rgb)
    assert fast.shape == exact.shape and fast.dtype == np.float32
    assert np.abs(fast - exact).max() < 2.5 and np.abs(fast - exact).mean() < 0.6
    np.testing.assert_allclose(rgb_to_lab_fast(np.array([[1.0, 1.0, 1.0]])), [[100, 0, 0]], atol=0.01)
