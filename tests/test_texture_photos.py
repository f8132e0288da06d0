"""texture_realism on every photograph that ships with scikit-image (issue 22): the photo ranks above
its blurred copy and above its cartoonised copy, and an in-distribution photo scores >= 0.5.

The photos, the crop and the two degradations are zrealism_core/testing/photos.py (the same code as
`python -m benchmarks.texture_table`); which photo fitted the model, chose the anchors or is held
out is in zrealism_core/metrics/calibration.py.
"""
from __future__ import annotations

import numpy as np
import pytest

from zrealism_core.metrics import calibration, texture
from zrealism_core.testing import photos

ALL_PHOTOS = sorted(photos.PHOTOS) + sorted(photos.EXTRA_PHOTOS)


def test_every_skimage_loader_is_a_photo_skipped_or_a_download():
    from skimage import data

    listed = set(photos.SKIPPED) | set(photos.NEEDS_DOWNLOAD) | {n for n in photos.PHOTOS if not n.startswith("motorcycle_")}
    assert listed == set(data.__all__), listed ^ set(data.__all__)
    assert not (set(photos.PHOTOS) & set(photos.SKIPPED)) and not (set(photos.PHOTOS) & set(photos.NEEDS_DOWNLOAD))


def test_calibration_roles_are_disjoint_and_cover_every_photo():
    fit, anchor, held = set(texture.PRISTINE_IMAGES), set(calibration.TEXTURE_ANCHOR_PHOTOS), set(calibration.TEXTURE_HELD_OUT_PHOTOS)
    assert not (fit & anchor) and not (fit & held) and not (anchor & held)
    assert fit | anchor | held == set(ALL_PHOTOS)
    assert set(calibration.TEXTURE_OOD_PHOTOS) <= held


def test_out_of_distribution_is_the_upscale_rule_not_a_score():
    """OOD = the 512 crop is scaled up 2x or more from the photo's own pixels (see calibration.py)."""
    rule = {n for n in ALL_PHOTOS if photos.effective_upscale(n) >= 2.0}
    assert rule == set(calibration.TEXTURE_OOD_PHOTOS)
    assert photos.pixel_replication(photos.load_raw("moon")) == 1.0  # shipped as a 2x nearest-neighbour upscale


def test_the_degradations_are_what_they_say():
    img = photos.photo("coffee")
    assert img.shape == (512, 512, 3) and img.dtype == np.float32
    cartoon = photos.cartoonised(img)
    assert cartoon.shape == img.shape and len(np.unique(cartoon.reshape(-1, 3), axis=0)) <= 8
    small = photos.photo("text")  # 172 x 448: scaled up to 512 first
    assert small.shape == (512, 512, 3)
    blur = photos.blurred(img)
    assert float(np.abs(np.diff(blur, axis=1)).mean()) < 0.5 * float(np.abs(np.diff(img, axis=1)).mean())


@pytest.mark.parametrize("name", ALL_PHOTOS)
def test_photo_scores_above_its_blur_and_its_cartoon(name):
    img = photos.photo(name)
    s_photo = texture.texture_realism(img)["score"]
    s_blur = texture.texture_realism(photos.blurred(img))["score"]
    s_cartoon = texture.texture_realism(photos.cartoonised(img))["score"]
    assert s_photo > s_blur, (name, s_photo, s_blur)
    assert s_photo > s_cartoon, (name, s_photo, s_cartoon)
    if name not in calibration.TEXTURE_OOD_PHOTOS:
        assert s_photo >= 0.5, (name, s_photo)
