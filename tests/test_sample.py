"""The bundled sample character is drawn by our code: checks that it is a proper test input."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from zrealism_core import InputError
from zrealism_core.imaging.sample import DEFAULT_BACKGROUND, sample_character, write_sample


def test_transparent_sample_has_antialiased_alpha_and_white_eyes():
    s = sample_character(256)
    assert s.shape == (256, 256, 4) and s.dtype == np.float32
    assert 0.0 <= s.min() and s.max() <= 1.0
    a = s[..., 3]
    assert a[0, 0] == 0.0 and 0.15 < (a > 0.5).mean() < 0.45
    assert ((a > 0) & (a < 1)).sum() > 200  # anti-aliased edges
    solid = a >= 1.0
    rgb = s[..., :3]
    white = solid & (rgb.min(axis=2) > 0.99)
    black = solid & (rgb.max(axis=2) < 0.1)
    assert white.sum() > 100  # eye whites / collar: white inside the character
    assert black.sum() > 0.05 * solid.sum()  # black line art
    # flat colours: a few colours cover most of the character
    q = (rgb[solid] * 255).astype(np.int32) // 8
    _, counts = np.unique(q, axis=0, return_counts=True)
    assert np.sort(counts)[::-1][:16].sum() > 0.8 * solid.sum()  # the rest: anti-aliased inner lines


def test_flat_variant_is_the_composite():
    s = sample_character(128)
    flat = sample_character(128, "flat")
    expect = s[..., :3] * s[..., 3:] + np.float32(DEFAULT_BACKGROUND) * (1 - s[..., 3:])
    np.testing.assert_allclose(flat, expect, atol=1e-6)
    red = sample_character(128, (1.0, 0.0, 0.0))
    assert np.allclose(red[0, 0], (1, 0, 0))


def test_deterministic_and_written_as_rgba_png(tmp_path):
    np.testing.assert_array_equal(sample_character(128), sample_character(128))
    p = write_sample(tmp_path / "sample.png", 128)
    with Image.open(p) as img:
        assert img.mode == "RGBA" and img.size == (128, 128)


@pytest.mark.parametrize("kwargs", [{"size": 8}, {"size": 100000}, {"size": 64, "background": "blue"}, {"size": 64, "background": (2, 0, 0)}])
def test_bad_arguments(kwargs):
    with pytest.raises(InputError):
        sample_character(**kwargs)
