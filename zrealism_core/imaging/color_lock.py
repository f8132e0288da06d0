"""Colour lock: pull a generated result's colours back toward the source drawing's palette.

Reinhard-style statistics transfer in CIELAB: inside the character mask, each LAB channel of the
result is shifted and scaled so its mean and standard deviation match the source's (on the
source's own mask). Diffusion tends to drift hair/clothes hue and overall brightness; matching
the first two moments per channel fixes the drift without touching the structure. Used by the
engine after sampling and by the video code on every frame (so frames share one palette).
"""
from __future__ import annotations

from typing import Any, Tuple

import cv2
import numpy as np

from ..errors import InputError
from .images import to_mask, to_rgb

# Std ratios are clamped so a nearly flat channel (e.g. a grey shirt's a/b) cannot be blown up.
STD_RATIO_RANGE = (0.5, 2.0)


def _lab(rgb: np.ndarray) -> np.ndarray:
    # OpenCV's float LAB (L 0..100): ~20x faster than the float64 reference and within 0.7 units;
    # its round-trip error cancels below because only the change is converted back.
    return cv2.cvtColor(np.ascontiguousarray(rgb, dtype=np.float32), cv2.COLOR_RGB2Lab)


def _rgb(lab: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(lab, dtype=np.float32), cv2.COLOR_Lab2RGB)


def masked_lab_stats(lab: np.ndarray, weight: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Weighted mean and std (3,) of a LAB image over a soft mask."""
    w = weight.reshape(-1).astype(np.float64)
    total = w.sum()
    px = lab.reshape(-1, 3).astype(np.float64)
    mean = (px * w[:, None]).sum(axis=0) / total
    var = (((px - mean) ** 2) * w[:, None]).sum(axis=0) / total
    return mean, np.sqrt(np.maximum(var, 0.0))


def _resolve_mask(mask: Any, shape: Tuple[int, int], name: str) -> np.ndarray:
    if mask is None:
        return np.ones(shape, np.float32)
    m = to_mask(mask, name=name)
    if m.shape != shape:
        # The source drawing and the result may differ in size: the mask follows the image.
        m = cv2.resize(m, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    return np.clip(m, 0.0, 1.0)


def color_lock(result: Any, source: Any, mask: Any = None, strength: float = 1.0, source_mask: Any = None) -> np.ndarray:
    """The result (H,W,3 float32) with LAB mean/std matched to the source inside the mask.

    result, source: images (PIL or arrays, any size each). mask: H,W, 1 = character (resized to the
    result and, unless `source_mask` is given, to the source); None = whole image.
    strength: 0 returns the result unchanged, 1 matches fully; in between blends linearly.
    Pixels outside the mask are unchanged; soft mask values blend.
    """
    if isinstance(strength, bool) or not isinstance(strength, (int, float, np.integer, np.floating)) or not np.isfinite(strength) or not 0.0 <= strength <= 1.0:
        raise InputError(f"color lock strength must be a number from 0 to 1; got {strength!r}.")
    res = to_rgb(result, name="result")
    if strength == 0:
        return res.copy()
    src = to_rgb(source, name="source")
    m_res = _resolve_mask(mask, res.shape[:2], "mask")
    m_src = _resolve_mask(source_mask if source_mask is not None else mask, src.shape[:2], "source mask")
    if m_res.sum() < 1.0 or m_src.sum() < 1.0:
        raise InputError("color lock mask is empty: it must mark the character (1) in both images, or be omitted.")
    lab_r = _lab(res)
    mean_r, std_r = masked_lab_stats(lab_r, m_res)
    mean_s, std_s = masked_lab_stats(_lab(src), m_src)
    ratio = np.clip(std_s / np.maximum(std_r, 1e-6), *STD_RATIO_RANGE)
    target = (lab_r - mean_r.astype(np.float32)) * ratio.astype(np.float32) + mean_s.astype(np.float32)
    target[..., 0] = np.clip(target[..., 0], 0.0, 100.0)
    weight = (float(strength) * m_res)[:, :, None]
    new_lab = lab_r + weight * (target - lab_r)
    # Convert only the change back: out = res + (rgb(new) - rgb(old)), exact where weight is 0.
    out = res + (_rgb(new_lab) - _rgb(lab_r)) * (weight > 0)
    return np.clip(out, 0.0, 1.0).astype(np.float32)
