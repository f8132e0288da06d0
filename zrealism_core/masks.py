"""Subject masks from flat backgrounds: the region of near-background colour connected to the border.

Used by prep (to cut the character out) and by the evaluator (to find the character on a
white-background result when no mask is given). Connectivity to the border is what keeps white
eyes, shirts and highlights *inside* the character as subject.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .color import rgb_to_lab_fast


def border_pixels(img: np.ndarray, width: int = 2) -> np.ndarray:
    """The pixels of a `width`-pixel frame around the image, as (N, C)."""
    w = max(1, min(width, img.shape[0] // 2, img.shape[1] // 2))
    parts = [img[:w].reshape(-1, img.shape[-1]), img[-w:].reshape(-1, img.shape[-1]),
             img[w:-w, :w].reshape(-1, img.shape[-1]), img[w:-w, -w:].reshape(-1, img.shape[-1])]
    return np.concatenate(parts, axis=0)


def dominant_border_lab(lab: np.ndarray) -> np.ndarray:
    """The most common border colour in LAB (mode of a coarse quantisation, then its mean)."""
    return dominant_colour(border_pixels(lab))


def border_reference_lab(rgb: np.ndarray) -> np.ndarray:
    """dominant_border_lab from RGB, converting only the border pixels (cheap on big images)."""
    return dominant_colour(rgb_to_lab_fast(border_pixels(np.asarray(rgb, dtype=np.float32))))


def dominant_colour(pixels: np.ndarray) -> np.ndarray:
    """Mean of the most common colour of (N, 3) LAB pixels, binned in steps of 4 units."""
    px = np.asarray(pixels, dtype=np.float64).reshape(-1, 3)
    q = np.round(px / 4.0).astype(np.int64)
    # One integer key per quantised colour (L, a, b each within +-200 after /4): a 1-D unique is
    # far faster than np.unique(axis=0).
    q -= q.min(axis=0)
    span = q.max(axis=0) + 1
    keys = (q[:, 0] * span[1] + q[:, 1]) * span[2] + q[:, 2]
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    best = np.argmax(counts)
    return px[inverse.reshape(-1) == best].mean(axis=0)


def lab_distance_sq(lab: np.ndarray, reference: Sequence[float]) -> np.ndarray:
    """Squared LAB distance (CIE76) of every pixel to one colour, float32 H,W (OpenCV, no temporaries)."""
    import cv2

    ref = [float(v) for v in np.asarray(reference, dtype=np.float64).reshape(3)]
    diff = cv2.subtract(np.ascontiguousarray(lab, dtype=np.float32), (ref[0], ref[1], ref[2], 0.0))
    diff = cv2.multiply(diff, diff)
    return cv2.transform(diff, np.ones((1, 3), np.float32))


def near_colour_u8(rgb: np.ndarray, reference_lab: Sequence[float], tolerance: float) -> np.ndarray:
    """Boolean H,W: pixels within `tolerance` LAB units (CIE76) of one LAB colour.

    Fast path for megapixel images: 8-bit OpenCV LAB, per-channel squared differences through a
    lookup table scaled so that tolerance^2 maps to 80, summed with saturation. Precision is about
    1% of the tolerance plus the 8-bit LAB steps (~0.5 unit)."""
    import cv2

    arr = np.asarray(rgb)
    u8 = arr if arr.dtype == np.uint8 else cv2.convertScaleAbs(np.ascontiguousarray(arr, dtype=np.float32), alpha=255.0)
    lab8 = cv2.cvtColor(np.ascontiguousarray(u8), cv2.COLOR_RGB2Lab)
    ref = np.asarray(reference_lab, dtype=np.float64).reshape(3)
    ref8 = (float(np.clip(round(ref[0] * 255.0 / 100.0), 0, 255)),
            float(np.clip(round(ref[1] + 128.0), 0, 255)), float(np.clip(round(ref[2] + 128.0), 0, 255)), 0.0)
    diff = cv2.absdiff(lab8, ref8)
    scale = 80.0 / max(float(tolerance) ** 2, 1e-6)
    v2 = np.arange(256, dtype=np.float64) ** 2
    weights = np.array([(100.0 / 255.0) ** 2, 1.0, 1.0])  # 8-bit L steps are 100/255 units
    lut = np.clip(np.round(v2[:, None] * weights[None, :] * scale), 0, 255).astype(np.uint8).reshape(1, 256, 3)
    ch = cv2.split(cv2.LUT(diff, lut))
    return cv2.add(cv2.add(ch[0], ch[1]), ch[2]) <= 80


def border_connected(near: np.ndarray) -> np.ndarray:
    """The pixels of boolean `near` whose 4-connected region touches the image border."""
    import cv2

    n, labels = cv2.connectedComponents(np.ascontiguousarray(near, dtype=np.uint8), connectivity=4)
    if n <= 1:
        return np.zeros(near.shape, dtype=bool)
    keep = np.zeros(n, dtype=bool)
    keep[border_pixels(labels[:, :, None], width=1).ravel()] = True
    keep[0] = False  # label 0 is "not near"
    return keep[labels]


def border_background_mask(
    rgb: np.ndarray,
    tolerance: float = 10.0,
    reference: Optional[Sequence[float]] = None,
    lab: Optional[np.ndarray] = None,
) -> np.ndarray:
    """Boolean H,W mask of the background: pixels within `tolerance` (LAB distance) of the
    reference colour (default: the dominant border colour) that are connected to the border."""
    if lab is None:
        # Fast path: LAB of the border only for the reference, then the 8-bit distance test.
        ref = border_reference_lab(rgb) if reference is None else np.asarray(reference, dtype=np.float64)
        return border_connected(near_colour_u8(rgb, ref, tolerance))
    ref = dominant_border_lab(lab) if reference is None else np.asarray(reference, dtype=np.float64)
    near = lab_distance_sq(lab, ref) <= float(tolerance) ** 2
    return border_connected(near)


def white_background_subject_mask(rgb: np.ndarray, tolerance: float = 6.0) -> np.ndarray:
    """float32 H,W subject mask (1 = character) for an image on a near-white background."""
    bg = border_background_mask(rgb, tolerance=tolerance, reference=(100.0, 0.0, 0.0))
    return (~bg).astype(np.float32)
