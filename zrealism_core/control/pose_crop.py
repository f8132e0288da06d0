"""Pose-crop geometry: OpenPose on the character's square crop, and keypoints read back from a pose map."""
from __future__ import annotations

import logging
from typing import Any, List, Optional, Tuple

import numpy as np

from ..imaging.images import ImageLike, to_rgb, to_uint8

log = logging.getLogger("zrealism")



# OpenPose's body colours (controlnet-aux util.draw_bodypose): keypoint i is a full-colour dot, limbs are 0.6x as bright.
_BODY_COLOURS = np.array([
    [255, 0, 0], [255, 85, 0], [255, 170, 0], [255, 255, 0], [170, 255, 0], [85, 255, 0], [0, 255, 0], [0, 255, 85],
    [0, 255, 170], [0, 255, 255], [0, 170, 255], [0, 85, 255], [0, 0, 255], [85, 0, 255], [170, 0, 255],
    [255, 0, 255], [255, 0, 170], [255, 0, 85]], dtype=np.float32)


def keypoints_from_pose_map(pose: ImageLike) -> List[Optional[Tuple[float, float]]]:
    """The 18 body keypoints (x, y in pixels, None = absent) read back from an OpenPose map's coloured
    dots, so a map the sampler already made need not be detected again (the largest dot per colour)."""
    import cv2

    rgb = to_rgb(pose, name="pose map") * 255.0
    bright = rgb.max(axis=2) > 200.0  # limbs are drawn at 0.6 x 255 = 153 at most
    out: List[Optional[Tuple[float, float]]] = []
    for colour in _BODY_COLOURS:
        hit = (bright & (np.abs(rgb - colour).max(axis=2) < 40.0)).astype(np.uint8)
        n, _, stats, centres = cv2.connectedComponentsWithStats(hit, connectivity=8)
        if n <= 1:
            out.append(None)
            continue
        best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        out.append((float(centres[best][0]), float(centres[best][1])))
    return out


def pose_map_is_empty(pose: np.ndarray) -> bool:
    """True when a pose map has no skeleton (OpenPose found nobody)."""
    return float(np.asarray(pose).max(initial=0.0)) < 1.0 / 255.0


def character_box(mask: Any, shape_hw: Tuple[int, int], pad: float = 0.1) -> Optional[Tuple[int, int, int]]:
    """(x0, y0, side) of the square crop around the character: the mask's bounding box padded by
    `pad` of its size on every side and squared about its centre (it may reach past the frame).
    None when the mask is empty."""
    from ..imaging.images import to_mask

    m = to_mask(mask)
    if m.shape != tuple(shape_hw):  # e.g. the source-size mask of an image rounded to multiples of 8
        m = resize_map(m, tuple(shape_hw), "linear")
    m = m > 0.5
    if not m.any():
        log.info("pose: the mask is empty, detecting on the whole image")
        return None
    ys, xs = np.nonzero(m)
    x0, x1, y0, y1 = int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1
    side = int(np.ceil(max(x1 - x0, y1 - y0) * (1.0 + 2.0 * pad)))
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    return int(round(cx - side / 2.0)), int(round(cy - side / 2.0)), max(side, 1)


def detect_on_crop(detector: Any, rgb: np.ndarray, box: Tuple[int, int, int], res: int,
                    include_hand: bool, include_face: bool) -> list:
    """OpenPose on the square crop `box` (white outside the frame: the prepared background), resized to
    res x res; keypoints come back as fractions of the full image."""
    import cv2
    from controlnet_aux.open_pose import BodyResult, Keypoint, PoseResult

    h, w = rgb.shape[:2]
    x0, y0, side = box
    img8 = to_uint8(rgb)
    top, left = max(0, -y0), max(0, -x0)
    bottom, right = max(0, y0 + side - h), max(0, x0 + side - w)
    crop = img8[max(0, y0):min(h, y0 + side), max(0, x0):min(w, x0 + side)]
    crop = cv2.copyMakeBorder(crop, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(255, 255, 255))
    interp = cv2.INTER_AREA if side > res else cv2.INTER_CUBIC
    crop = np.ascontiguousarray(cv2.resize(crop, (res, res), interpolation=interp))
    poses = detector.detect_poses(crop, include_hand, include_face)

    def back(k: Any) -> Any:
        if k is None or k.x < 0 or k.y < 0:  # controlnet-aux marks a missing hand/face point with -1
            return k
        return Keypoint(x=(x0 + k.x * side) / w, y=(y0 + k.y * side) / h)

    def back_all(points: Any) -> Any:
        return None if points is None else [back(k) for k in points]

    return [PoseResult(BodyResult(keypoints=back_all(p.body.keypoints), total_score=p.body.total_score,
                                  total_parts=p.body.total_parts), back_all(p.left_hand), back_all(p.right_hand),
                       back_all(p.face)) for p in poses]


def resize_map(arr: np.ndarray, size_hw: Tuple[int, int], mode: str) -> np.ndarray:
    import cv2

    h, w = size_hw
    if arr.shape[:2] == (h, w):
        return arr.astype(np.float32)
    interp = cv2.INTER_LINEAR if mode == "linear" else cv2.INTER_NEAREST
    out = cv2.resize(np.ascontiguousarray(arr, dtype=np.float32), (w, h), interpolation=interp)
    return out.astype(np.float32)
