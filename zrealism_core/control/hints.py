"""Weight-free hints for the optional detail ControlNet: tile, canny and line art.

    detail_hint(image, "tile" | "canny" | "lineart") -> H,W,3 float32 in 0..1

- tile: the prepared image itself (what the tile ControlNet was trained on: the picture, to keep
  its colours and layout).
- canny: cv2.Canny edges (white on black). The two thresholds come from the image's own gradient
  statistics: the high one is Otsu's split of the gradient-magnitude histogram (edge vs flat),
  the low one half of it (Canny's recommended 2:1 ratio), so flat art and busy art both work
  without tuning.
- lineart: the drawing's dark strokes as thin, anti-aliased white lines on black (the line-art
  ControlNets' convention). A stroke is a pixel darker than its surroundings (morphological
  black-hat against a disc wider than a typical stroke, Otsu-thresholded); the strokes are thinned
  to their centre lines (scikit-image's skeletonize), then anti-aliased with a small Gaussian.

An image from which no hint can be computed (no edges, no dark strokes) raises EmptyHintError,
which the engine turns into a note and switches the detail net off.
`hint_for_file(name)` is what `detail_hint="auto"` picks from the ControlNet's file name.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Tuple

import cv2
import numpy as np

from ..errors import EmptyHintError, InputError
from ..imaging.images import ImageLike, to_rgb
from ..metrics.edges import canny_thresholds

HINT_KINDS = ("tile", "canny", "lineart")
DETAIL_HINTS = ("auto",) + HINT_KINDS

# File-name words -> hint, checked in this order (control_v11f1e_sd15_tile, control_v11p_sd15_canny,
# control_v11p_sd15_lineart, control_v11p_sd15s2_lineart_anime, control_v11p_sd15_softedge).
_NAME_HINTS = (("tile", "tile"), ("canny", "canny"), ("lineart", "lineart"), ("softedge", "lineart"),
               ("scribble", "lineart"))

_MIN_STROKE_CONTRAST = 0.08  # a stroke is at least this much darker (0..1) than what is around it
_LINE_SIGMA = 0.7  # anti-aliasing of the thinned lines, pixels


def hint_for_file(name: Any) -> Optional[str]:
    """The hint a detail ControlNet file was trained on, from its name; None when the name says nothing."""
    if not name:
        return None
    low = Path(str(name)).name.lower()
    for word, kind in _NAME_HINTS:
        if word in low:
            return kind
    return None


def resolve_kind(kind: str, controlnet_name: Any = None) -> str:
    """`auto` -> the file name's hint (tile when the name says nothing: it needs no edges)."""
    if kind not in DETAIL_HINTS:
        raise InputError(f"detail hint {kind!r} is unknown; use one of {', '.join(DETAIL_HINTS)}.")
    if kind != "auto":
        return kind
    return hint_for_file(controlnet_name) or "tile"


def detail_hint(image: ImageLike, kind: str) -> np.ndarray:
    """The detail ControlNet's hint for `image` (H,W,3 float32 0..1, the input's size). See the module doc."""
    if kind not in HINT_KINDS:
        raise InputError(f"detail hint {kind!r} is unknown; use one of {', '.join(HINT_KINDS)} (auto is resolved by the engine).")
    rgb = to_rgb(image, name="image")
    if kind == "tile":
        return np.ascontiguousarray(rgb, dtype=np.float32)
    gray = _luma(rgb)
    out = canny_edges(gray) if kind == "canny" else line_art(gray)
    return np.ascontiguousarray(np.repeat(out[:, :, None], 3, axis=2), dtype=np.float32)


def _luma(rgb: np.ndarray) -> np.ndarray:
    return (rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114).astype(np.float32)


def canny_edges(gray: np.ndarray) -> np.ndarray:
    """Canny edges of a 0..1 gray image as a 0/1 float32 map."""
    gray8 = (np.clip(gray, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    low, high = canny_thresholds(gray8)
    edges = cv2.Canny(gray8, low, high, L2gradient=False)
    if not edges.any():
        raise EmptyHintError("no edge is strong enough for a canny hint; the detail ControlNet is switched off.")
    return (edges > 0).astype(np.float32)


def stroke_mask(gray: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(mask of the dark strokes, their contrast 0..1) of a 0..1 gray image."""
    h, w = gray.shape
    r = max(2, int(round(0.012 * min(h, w))))  # wider than a stroke (~0.9% of the side in typical art)
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    contrast = cv2.morphologyEx(gray.astype(np.float32), cv2.MORPH_BLACKHAT, disc, borderType=cv2.BORDER_REPLICATE)
    dark = contrast[contrast >= _MIN_STROKE_CONTRAST]
    if dark.size == 0:
        raise EmptyHintError(
            "the image has no dark strokes, so no line-art hint can be computed; the detail ControlNet is switched "
            "off. Connect your own detail_map, or use the tile hint."
        )
    u8 = (np.clip(dark, 0, 1) * 255).astype(np.uint8).reshape(1, -1)
    otsu, _ = cv2.threshold(u8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    level = max(_MIN_STROKE_CONTRAST, float(otsu) / 255.0 * 0.5)  # half of Otsu's split keeps the strokes' soft rims
    return contrast >= level, contrast


def line_art(gray: np.ndarray) -> np.ndarray:
    """The dark strokes of a 0..1 gray image as thin anti-aliased white lines on black (float32 0..1)."""
    from skimage.morphology import skeletonize

    mask, contrast = stroke_mask(gray)
    centre = skeletonize(mask)
    if not centre.any():
        raise EmptyHintError("no stroke survived thinning; the detail ControlNet is switched off.")
    strength = np.clip(contrast / max(float(np.percentile(contrast[mask], 90)), 1e-6), 0.0, 1.0)
    lines = centre.astype(np.float32) * np.maximum(strength, 0.75)  # faint strokes a little dimmer, all visible
    soft = cv2.GaussianBlur(lines, (0, 0), _LINE_SIGMA, borderType=cv2.BORDER_CONSTANT)
    peak = 1.0 / (np.sqrt(2.0 * np.pi) * _LINE_SIGMA)  # the blurred height of a straight 1-px line
    return np.clip(soft / peak, 0.0, 1.0).astype(np.float32)


def hint_f_score(hint: np.ndarray, strokes: np.ndarray, tolerance: Optional[int] = None) -> dict:
    """How well a hint (H,W[,3], lit > 0.5) recovers a stroke mask: precision = lit pixels within
    `tolerance` of a stroke, recall = stroke centre-line pixels within `tolerance` of a lit pixel
    (the silhouette boundary's DAVIS tolerance by default)."""
    from skimage.morphology import skeletonize

    from ..metrics.silhouette import boundary_tolerance

    lit = (hint.max(axis=2) if hint.ndim == 3 else hint) > 0.5
    strokes = np.asarray(strokes, dtype=bool)
    tol = boundary_tolerance(strokes.shape) if tolerance is None else int(tolerance)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * tol + 1, 2 * tol + 1))
    centre = skeletonize(strokes)
    if not lit.any() or not centre.any():
        return {"precision": 0.0, "recall": 0.0, "f": 0.0}
    near_strokes = cv2.dilate(strokes.astype(np.uint8), kernel) > 0
    near_lit = cv2.dilate(lit.astype(np.uint8), kernel) > 0
    precision = float(np.count_nonzero(lit & near_strokes) / np.count_nonzero(lit))
    recall = float(np.count_nonzero(centre & near_lit) / np.count_nonzero(centre))
    f = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return {"precision": precision, "recall": recall, "f": float(f)}
