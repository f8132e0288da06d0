"""Subject masks from flat backgrounds: the region of near-background colour connected to the border.

Used by prep (to cut the character out) and by the evaluator (to find the character on a
white-background result when no mask is given). Connectivity to the border is what keeps white
eyes, shirts and highlights *inside* the character as subject.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .colour import rgb_to_lab_fast


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

    Fast path for megapixel images, on OpenCV's 8-bit LAB (steps of ~0.4 L and 1 a/b unit): the
    cube inscribed in the tolerance sphere is inside for sure and the cube around it bounds it, so
    only the pixels between the two cubes (few, on a flat background) need the exact distance."""
    import cv2

    arr = np.asarray(rgb)
    u8 = arr if arr.dtype == np.uint8 else cv2.convertScaleAbs(np.ascontiguousarray(arr, dtype=np.float32), alpha=255.0)
    lab8 = cv2.cvtColor(np.ascontiguousarray(u8), cv2.COLOR_RGB2Lab)
    ref = np.asarray(reference_lab, dtype=np.float64).reshape(3)
    unit = np.array([100.0 / 255.0, 1.0, 1.0])  # LAB units per 8-bit step, per channel
    ref8 = (ref + np.array([0.0, 128.0, 128.0])) / unit
    tol = max(float(tolerance), 0.0)

    def cube(half: float) -> np.ndarray:
        lo = np.ceil(ref8 - half / unit - 1e-9)
        hi = np.floor(ref8 + half / unit + 1e-9)
        return cv2.inRange(lab8, tuple(float(v) for v in lo), tuple(float(v) for v in hi))

    outer = cube(tol)
    inner = cube(tol / np.sqrt(3.0))
    near = inner.astype(bool)
    shell_mask = cv2.bitwise_xor(outer, inner)
    if cv2.countNonZero(shell_mask) > shell_mask.size // 8:
        # Many pixels near the tolerance (a reference far from most colours): one dense pass is cheaper.
        lab = cv2.transform(lab8.astype(np.float32), np.array(
            [[unit[0], 0, 0, 0], [0, 1, 0, -128.0], [0, 0, 1, -128.0]], np.float32))
        return lab_distance_sq(lab, ref) <= tol * tol
    shell = np.flatnonzero(shell_mask)
    if shell.size:
        d = (lab8.reshape(-1, 3)[shell].astype(np.float64) - ref8) * unit
        near.reshape(-1)[shell[(d * d).sum(axis=1) <= tol * tol]] = True
    return near


def border_connected(near: np.ndarray, max_fills: int = 256) -> np.ndarray:
    """The pixels of boolean `near` whose 4-connected region touches the image border.

    Flood fill from the border (one fill per border region: usually one or a few, and only the
    background is visited); with more than `max_fills` border regions (a noisy border), connected-
    component labelling of the rest is cheaper."""
    import cv2

    img = np.ascontiguousarray(near, dtype=np.uint8)  # 1 = near; filled regions become 2
    h, w = img.shape
    bys = np.concatenate([np.zeros(w, np.intp), np.full(w, h - 1), np.arange(h), np.arange(h)])
    bxs = np.concatenate([np.arange(w), np.arange(w), np.zeros(h, np.intp), np.full(h, w - 1)])
    for _ in range(max_fills):
        seeds = np.flatnonzero(img[bys, bxs] == 1)
        if seeds.size == 0:
            return img == 2
        i = seeds[0]
        cv2.floodFill(img, None, (int(bxs[i]), int(bys[i])), 2, 0, 0, 4)
    rest = img == 1
    n, labels = cv2.connectedComponents(rest.view(np.uint8), connectivity=4)
    keep = np.zeros(n, dtype=bool)
    keep[labels[bys, bxs]] = True
    keep[0] = False  # label 0 is "not in rest"
    return (img == 2) | keep[labels]


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
