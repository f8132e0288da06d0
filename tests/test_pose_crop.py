"""Pose on the character: with a mask, OpenPose runs on the padded, squared crop of the character and
the skeleton is drawn back at full size; without one, the whole image (unchanged).

The tiny OpenPose files have the real architecture and random weights, so they find nobody; the
loaded Body estimator is swapped for tiny_annotators.SilhouetteBody, which reports keypoints from the
picture it is given (the character's extent), and records the detection images' shapes.
"""
from __future__ import annotations

import numpy as np
import pytest

from zrealism_core.control import maps as control_maps
from zrealism_core.control import pose_crop
from zrealism_core.imaging.sample import sample_character
from zrealism_core.models import annotators
from zrealism_core.models import detectors
from zrealism_core.testing.tiny_annotators import SilhouetteBody, write_openpose_files


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    monkeypatch.delenv(annotators.ENV_VAR, raising=False)


@pytest.fixture(scope="module")
def body_only(tmp_path_factory):
    root = tmp_path_factory.mktemp("openpose")
    paths = write_openpose_files(root)
    paths["hand_pose_model.pth"].unlink()
    paths["facenet.pth"].unlink()
    return root


@pytest.fixture()
def stub(body_only):
    detectors.unload_detectors()
    control_maps.pose_map(np.ones((64, 64, 3), np.float32), annotator_dirs=[body_only], resolution=64)
    (detector,) = [d for k, d in detectors._cache.items() if k[0] == "openpose"]
    detector.body_estimation = SilhouetteBody(detector.body_estimation)
    yield detector.body_estimation
    detectors.unload_detectors()


def _scene(h: int, w: int, y: int, x: int, size: int, flat: bool = False):
    """The sample character (size px) on white at (y, x) of an h x w frame, and its mask."""
    char = sample_character(size)
    a = char[..., 3:]
    img = np.ones((h, w, 3), np.float32)
    mask = np.zeros((h, w), np.float32)
    img[y:y + size, x:x + size] = char[..., :3] * a + (1 - a)
    mask[y:y + size, x:x + size] = char[..., 3]
    return img, mask


def _figure(h: int, w: int, cx: int, top: int, height: int):
    """A synthetic stick-ish figure: head disc, trunk, arms and legs as thick dark strokes."""
    import cv2

    img = np.ones((h, w, 3), np.float32)
    u = height / 8.0
    ink = (0.2, 0.25, 0.5)
    cv2.circle(img, (cx, int(top + u)), int(u), ink, -1)
    cv2.line(img, (cx, int(top + 2 * u)), (cx, int(top + 5 * u)), ink, max(2, int(u * 0.6)))
    cv2.line(img, (int(cx - 2 * u), int(top + 3.5 * u)), (int(cx + 2 * u), int(top + 2.4 * u)), ink, max(2, int(u * 0.4)))
    for side in (-1, 1):
        cv2.line(img, (cx, int(top + 5 * u)), (int(cx + side * 1.2 * u), int(top + 8 * u)), ink, max(2, int(u * 0.5)))
    mask = (img.min(axis=2) < 0.9).astype(np.float32)
    return img, mask


def _lit_box(pose: np.ndarray):
    ys, xs = np.nonzero(pose.max(axis=2) > 0.1)
    return xs.min(), xs.max(), ys.min(), ys.max()


def _padded_box(mask: np.ndarray):
    x0, y0, side = pose_crop.character_box(mask, mask.shape)
    return x0, x0 + side, y0, y0 + side


@pytest.mark.parametrize("scene", [
    ("sample small in a wide frame", lambda: _scene(600, 900, 320, 560, 200)),
    ("sample at the edge", lambda: _scene(400, 400, 250, 0, 150)),
    ("synthetic figure", lambda: _figure(480, 640, 180, 60, 300)),
    ("synthetic figure, tall frame", lambda: _figure(900, 300, 200, 500, 360)),
], ids=lambda s: s[0])
def test_crop_skeleton_lies_inside_the_padded_mask_box_and_keypoints_inside_the_mask(stub, body_only, scene):
    img, mask = scene[1]()
    out = control_maps.pose_map(img, annotator_dirs=[body_only], resolution=128, mask=mask)
    assert out.shape == img.shape and out.dtype == np.float32
    assert stub.calls[-1][:2] == (128, 128)  # the detector saw the square crop at detect_resolution
    bx0, bx1, by0, by1 = _padded_box(mask)
    x0, x1, y0, y1 = _lit_box(out)
    assert bx0 - 1 <= x0 and x1 <= bx1 + 1 and by0 - 1 <= y0 and y1 <= by1 + 1
    # the keypoints themselves land on the character (dilated by the stick width for the thin figure)
    import cv2

    grown = cv2.dilate((mask > 0.5).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    (person,) = control_maps.pose_keypoints(img, annotator_dirs=[body_only], resolution=128, mask=mask)
    points = [p for p in person if p is not None]
    assert len(points) == 7
    inside = [grown[min(int(y), mask.shape[0] - 1), min(int(x), mask.shape[1] - 1)] for x, y in points]
    assert all(inside), (points, inside)


def test_whole_image_path_is_unchanged_without_a_mask(stub, body_only):
    img, mask = _scene(300, 500, 60, 200, 200)
    detector = [d for k, d in detectors._cache.items() if k[0] == "openpose"][0]
    want = detector(
        (img * 255 + 0.5).astype(np.uint8), detect_resolution=128, image_resolution=128,
        include_body=True, include_hand=False, include_face=False, output_type="np")
    want = pose_crop.resize_map(np.asarray(want, np.float32) / 255.0, img.shape[:2], "linear")
    got = control_maps.pose_map(img, annotator_dirs=[body_only], resolution=128)
    assert np.array_equal(got, np.clip(want, 0, 1))
    assert stub.calls[-1][:2] == (128, 192)  # controlnet-aux's whole-image canvas, not a crop
    empty = control_maps.pose_map(img, annotator_dirs=[body_only], resolution=128, mask=np.zeros(img.shape[:2]))
    assert np.array_equal(empty, got)  # an empty mask falls back to the whole image


def test_crop_gives_a_small_character_the_detectors_resolution(stub, body_only):
    img, mask = _scene(1024, 1024, 700, 100, 200)
    control_maps.pose_map(img, annotator_dirs=[body_only], resolution=256)
    whole = stub.calls[-1]
    control_maps.pose_map(img, annotator_dirs=[body_only], resolution=256, mask=mask)
    crop = stub.calls[-1]
    # the character covers 200/1024 of the whole-image view but ~1/1.2 of the crop
    assert whole[:2] == (256, 256) and crop[:2] == (256, 256)
    x0, y0, side = pose_crop.character_box(mask, mask.shape)
    assert 200 <= side <= 200 * 1.2 + 2


def test_character_box_pads_ten_percent_and_squares():
    mask = np.zeros((100, 200))
    mask[20:60, 50:150] = 1  # 100 wide, 40 tall
    x0, y0, side = pose_crop.character_box(mask, mask.shape)
    assert side == 120 and (x0, y0) == (40, -20)
    assert pose_crop.character_box(np.zeros((10, 10)), (10, 10)) is None


def test_keypoints_read_back_from_a_drawn_pose_map(stub, body_only):
    img, mask = _figure(480, 640, 300, 60, 320)
    (person,) = control_maps.pose_keypoints(img, annotator_dirs=[body_only], resolution=128, mask=mask)
    drawn = control_maps.pose_map(img, annotator_dirs=[body_only], resolution=128, mask=mask)
    back = pose_crop.keypoints_from_pose_map(drawn)
    for p, q in zip(person, back):
        assert (p is None) == (q is None)
        if p is not None:
            assert np.hypot(p[0] - q[0], p[1] - q[1]) < 1.5


def test_empty_pose_map_is_detected():
    assert pose_crop.pose_map_is_empty(np.zeros((8, 8, 3), np.float32))
    assert not pose_crop.pose_map_is_empty(np.eye(8, dtype=np.float32)[..., None].repeat(3, 2))
