"""Subject masks from flat backgrounds: the region of near-background colour connected to the border.

Used by prep (to cut the character out) and by the evaluator (to find the character on a
white-background result when no mask is given). Connectivity to the border is what keeps white
eyes, shirts and highlights *inside* the character as subject.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from scipy import ndimage

from .color import rgb_to_lab


def border_pixels(img: np.ndarray, width: int = 2) -> np.ndarray:
    """The pixels of a `width`-pixel frame around the image, as (N, C)."""
    w = max(1, min(width, img.shape[0] // 2, img.shape[1] // 2))
    parts = [img[:w].reshape(-1, img.shape[-1]), img[-w:].reshape(-1, img.shape[-1]),
             img[w:-w, :w].reshape(-1, img.shape[-1]), img[w:-w, -w:].reshape(-1, img.shape[-1])]
    return np.concatenate(parts, axis=0)


def dominant_border_lab(lab: np.ndarray) -> np.ndarray:
    """The most common border colour in LAB (mode of a coarse quantisation, then its mean)."""
    px = border_pixels(lab).astype(np.float64)
    q = np.round(px / 4.0).astype(np.int64)
    keys, inverse, counts = np.unique(q, axis=0, return_inverse=True, return_counts=True)
    best = np.argmax(counts)
    return px[inverse.reshape(-1) == best].mean(axis=0)


def border_background_mask(
    rgb: np.ndarray,
    tolerance: float = 10.0,
    reference: Optional[Sequence[float]] = None,
    lab: Optional[np.ndarray] = None,
) -> np.ndarray:
    """Boolean H,W mask of the background: pixels within `tolerance` (LAB distance) of the
    reference colour (default: the dominant border colour) that are connected to the border."""
    if lab is None:
        lab = rgb_to_lab(rgb)
    ref = dominant_border_lab(lab) if reference is None else np.asarray(reference, dtype=np.float64)
    dist = np.sqrt(((lab - ref.astype(np.float32)) ** 2).sum(axis=-1))
    near = dist <= tolerance
    labels, n = ndimage.label(near)
    if n == 0:
        return np.zeros(near.shape, dtype=bool)
    edge_labels = np.unique(border_pixels(labels[:, :, None], width=1).ravel())
    edge_labels = edge_labels[edge_labels > 0]
    return np.isin(labels, edge_labels)


def white_background_subject_mask(rgb: np.ndarray, tolerance: float = 6.0) -> np.ndarray:
    """float32 H,W subject mask (1 = character) for an image on a near-white background."""
    bg = border_background_mask(rgb, tolerance=tolerance, reference=(100.0, 0.0, 0.0))
    return (~bg).astype(np.float32)
