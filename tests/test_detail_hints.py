"""Weight-free detail hints (tile, canny, lineart) against the strokes the bundled sample's generator drew."""
from __future__ import annotations

import numpy as np
import pytest

from zrealism_core.control import maps as control_maps
from zrealism_core.errors import EmptyHintError
from zrealism_core.control.hints import hint_f_score, hint_for_file, resolve_kind
from zrealism_core.errors import InputError
from zrealism_core.imaging.sample import sample_character, sample_strokes


@pytest.mark.parametrize("size", [256, 512])
@pytest.mark.parametrize("kind", ["canny", "lineart"])
def test_canny_and_lineart_recover_the_drawn_strokes(kind, size):
    img = sample_character(size, background=(1.0, 1.0, 1.0))  # as White Background Prep hands it on
    hint = control_maps.detail_hint(img, kind)
    assert hint.shape == (size, size, 3) and hint.dtype == np.float32
    assert hint.min() >= 0.0 and hint.max() <= 1.0
    score = hint_f_score(hint, sample_strokes(size))
    assert score["f"] >= 0.8, score
    # and not by lighting everything: a blank hint and an all-white hint both fail the same check
    assert hint_f_score(np.ones_like(hint), sample_strokes(size))["precision"] < 0.5


def test_lineart_is_thin_antialiased_white_on_black():
    img = sample_character(512, background=(1.0, 1.0, 1.0))
    line = control_maps.detail_hint(img, "lineart")
    strokes = sample_strokes(512)
    lit = line[..., 0] > 0.5
    assert lit.mean() < 0.6 * strokes.mean()  # thinner than the drawn strokes (centre lines)
    soft = (line[..., 0] > 0.02) & (line[..., 0] < 0.98)
    assert soft.sum() > lit.sum()  # grey rims: anti-aliased, not a hard binary mask
    assert line[0:5, 0:5].max() == 0.0  # black background
    assert np.array_equal(line[..., 0], line[..., 2])


def test_tile_is_the_input():
    img = sample_character(128, background="flat")
    assert np.array_equal(control_maps.detail_hint(img, "tile"), img)
    u8 = (img * 255).astype(np.uint8)
    assert np.allclose(control_maps.detail_hint(u8, "tile"), u8 / 255.0)


def test_a_flat_image_has_no_hint():
    flat = np.full((64, 64, 3), 0.7, np.float32)
    for kind in ("canny", "lineart"):
        with pytest.raises(EmptyHintError) as info:
            control_maps.detail_hint(flat, kind)
        assert "switched off" in str(info.value)
    with pytest.raises(InputError):
        control_maps.detail_hint(flat, "auto")  # auto is resolved against the ControlNet's name first


@pytest.mark.parametrize("name,kind", [
    ("control_v11f1e_sd15_tile.pth", "tile"), ("control_v11f1e_sd15_tile_fp16.safetensors", "tile"),
    ("control_v11p_sd15_canny.pth", "canny"), ("control_v11p_sd15_lineart_fp16.safetensors", "lineart"),
    ("control_v11p_sd15s2_lineart_anime.pth", "lineart"), ("control_v11p_sd15_softedge.pth", "lineart"),
    ("/models/controlnet/sub/My_Canny_Net.safetensors", "canny"), ("something_else.safetensors", None),
])
def test_auto_picks_the_hint_from_the_file_name(name, kind):
    assert hint_for_file(name) == kind
    assert resolve_kind("auto", name) == (kind or "tile")
    assert resolve_kind("canny", name) == "canny"
    with pytest.raises(InputError):
        resolve_kind("sketch", name)
