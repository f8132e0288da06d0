"""Colour lock: LAB mean/std transfer toward the source inside the mask."""
from __future__ import annotations

import numpy as np
import pytest

from zrealism_core import InputError
from zrealism_core.imaging.colour import rgb_to_lab
from zrealism_core.imaging.color_lock import color_lock, masked_lab_stats
from zrealism_core.imaging.sample import sample_character


@pytest.fixture(scope="module")
def pair():
    s = sample_character(128)
    source = s[..., :3] * s[..., 3:] + (1 - s[..., 3:])
    mask = s[..., 3]
    # a "result" whose colours drifted: warmer, darker and flatter
    drift = np.clip(source * np.float32([1.0, 0.85, 0.7]) * 0.8 + 0.1, 0, 1).astype(np.float32)
    return source.astype(np.float32), drift, mask


def stats(img, mask):
    return masked_lab_stats(rgb_to_lab(img), mask)


def test_strength_zero_is_identity(pair):
    source, drift, mask = pair
    np.testing.assert_array_equal(color_lock(drift, source, mask, strength=0.0), drift)


def test_full_strength_matches_source_statistics(pair):
    source, drift, mask = pair
    out = color_lock(drift, source, mask)
    assert out.shape == drift.shape and out.dtype == np.float32
    m_src, s_src = stats(source, mask)
    m_drift, _ = stats(drift, mask)
    m_out, s_out = stats(out, mask)
    assert np.abs(m_out - m_src).max() < 1.5 < np.abs(m_drift - m_src).max()
    assert np.all(np.abs(s_out - s_src) < 0.1 * s_src + 1.0)
    # outside the mask nothing changes
    np.testing.assert_array_equal(out[mask == 0], drift[mask == 0])


def test_partial_strength_moves_part_way(pair):
    source, drift, mask = pair
    m_src = stats(source, mask)[0]
    dist = [np.linalg.norm(stats(color_lock(drift, source, mask, strength=k), mask)[0] - m_src) for k in (0.0, 0.5, 1.0)]
    assert dist[0] > dist[1] > dist[2]


def test_self_lock_is_near_identity_and_sizes_may_differ(pair):
    source, drift, mask = pair
    assert np.abs(color_lock(source, source, mask) - source).max() < 2e-3
    import cv2

    big = cv2.resize(drift, (256, 256))
    out = color_lock(big, source, mask)  # mask follows each image's size
    assert out.shape == (256, 256, 3)
    out_nomask = color_lock(drift, source)
    assert out_nomask.shape == drift.shape


def test_bad_input(pair):
    source, drift, mask = pair
    for bad in (-0.1, 1.5, float("nan"), "1"):
        with pytest.raises(InputError, match="strength"):
            color_lock(drift, source, mask, strength=bad)
    with pytest.raises(InputError, match="empty"):
        color_lock(drift, source, np.zeros_like(mask))
    with pytest.raises(InputError, match="NaN"):
        color_lock(np.full_like(drift, np.nan), source, mask)
