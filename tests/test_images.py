"""Input conversion: every supported format to float32 0..1, every unusable one to a clear InputError."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from zrealism_core import InputError
from zrealism_core.imaging.images import load_image, save_image, split_rgb_alpha, to_float_array, to_mask, to_rgb


def test_dtypes_and_shapes():
    assert to_float_array(np.full((2, 3), 255, np.uint8)).shape == (2, 3, 1)
    np.testing.assert_allclose(to_float_array(np.full((2, 2, 3), 65535, np.uint16)), 1.0)
    np.testing.assert_allclose(to_float_array(np.ones((2, 2), bool)), 1.0)
    assert to_float_array(np.zeros((2, 2, 2), np.uint8)).shape == (2, 2, 4)  # gray + alpha -> RGBA
    rgb, alpha = split_rgb_alpha(np.zeros((3, 3, 4), np.float32))
    assert rgb.shape == (3, 3, 3) and alpha.shape == (3, 3)
    np.testing.assert_allclose(to_rgb(np.zeros((3, 3, 4), np.float32)), 1.0)  # transparent -> white


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGB", "RGBA", "I;16", "CMYK"])
def test_pil_modes(mode):
    img = Image.new("RGB", (5, 4), (200, 100, 50)).convert(mode)
    arr = to_float_array(img)
    assert arr.shape[:2] == (4, 5) and arr.dtype == np.float32 and 0 <= arr.min() and arr.max() <= 1


def test_palette_transparency_becomes_alpha():
    img = Image.new("P", (4, 4), 1)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    img.info["transparency"] = 0
    img.putpixel((0, 0), 0)
    rgb, alpha = split_rgb_alpha(img)
    assert alpha is not None and alpha[0, 0] == 0 and alpha[1, 1] == 1


@pytest.mark.parametrize(
    "value,words",
    [
        (np.zeros((0, 4, 3)), "empty"),
        (np.full((2, 2, 3), np.nan, np.float32), "NaN"),
        (np.full((2, 2, 3), -np.inf, np.float32), "NaN"),
        (np.full((2, 2, 3), 1.5, np.float32), "outside 0..1"),
        (np.full((2, 2, 3), 300, np.int32), "outside 0..255"),
        (np.zeros((2, 2, 6)), "channels"),
        (np.zeros((2, 2, 3, 1)), "H,W or H,W,C"),
        (None, "missing"),
        ([1, 2, 3], "PIL image or a numpy array"),
        (Image.new("RGB", (0, 0)), "empty"),
    ],
)
def test_bad_values(value, words):
    with pytest.raises(InputError, match=words):
        to_float_array(value)


def test_masks():
    m = to_mask(np.full((4, 5), 255, np.uint8), (4, 5))
    assert m.shape == (4, 5) and m.max() == 1.0
    with pytest.raises(InputError, match="resize the mask"):
        to_mask(np.ones((4, 4)), (4, 5))


def test_load_and_save(tmp_path):
    img = np.random.default_rng(0).random((6, 7, 3)).astype(np.float32)
    p = save_image(img, tmp_path / "a" / "b.png")
    back = load_image(p)
    assert back.shape == (6, 7, 3) and np.abs(back - img).max() <= 0.5 / 255 + 1e-6
    assert not list(tmp_path.rglob("*.part"))
    with pytest.raises(InputError, match="not found"):
        load_image(tmp_path / "missing.png")
    (tmp_path / "junk.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="not an image"):
        load_image(tmp_path / "junk.png")
