"""Colour fidelity on the character.

* color: mean CIEDE2000 (Luo, Cui & Rigg 2001) between spatially low-passed source and result
  (the S-CIELAB idea, Zhang & Wandell 1996): flat anime fills vs photo shading differ at fine
  scales that the eye integrates away; what remains is the colour the viewer sees.
* palette: dominant colours by k-means in LAB, matched one-to-one with the Hungarian method on
  the CIEDE2000 cost; alignment-free, so it checks hair/eye/outfit colours even after a pose drift.
* moments: LAB colour moments (Stricker & Orengo 1995) as an interpretable diagnostic:
  brightness shift, colour cast, contrast change. Not a gate (they overlap good and bad outputs).
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from ..imaging.colour import ciede2000, rgb_to_lab
from .calibration import (
    COLOR_DE_BAD,
    COLOR_DE_GOOD,
    COLOR_LOWPASS_SIGMA,
    COLOR_WORK_SIZE,
    MOMENTS_TAU,
    PALETTE_DE_BAD,
    PALETTE_DE_GOOD,
    PALETTE_K,
    PALETTE_WORK_SIZE,
    REFERENCE_SIZE,
    exp_score,
    ramp,
)


def downsample(img: np.ndarray, min_side: int) -> np.ndarray:
    """Area-downsample so that min(H, W) <= min_side (never upsample)."""
    h, w = img.shape[:2]
    f = min_side / float(min(h, w))
    if f >= 1.0:
        return img
    size = (max(1, int(round(w * f))), max(1, int(round(h * f))))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


def _region_at(region: Optional[np.ndarray], shape: tuple) -> np.ndarray:
    if region is None:
        return np.ones(shape[:2], dtype=bool)
    r = np.asarray(region, dtype=np.float32)
    if r.shape != tuple(shape[:2]):
        r = cv2.resize(r, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
    out = r > 0.5
    return out if out.any() else np.ones(shape[:2], dtype=bool)


def delta_e_map(source: np.ndarray, result: np.ndarray, region: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
    """(low-passed CIEDE2000 map, region) at the colour working size; the map is 0 outside the region
    (only the character's pixels are converted and compared)."""
    s = downsample(source.astype(np.float32), COLOR_WORK_SIZE)
    r = downsample(result.astype(np.float32), COLOR_WORK_SIZE)
    # sigma is 3 px at 512 px, expressed at the working resolution.
    f = min(s.shape[:2]) / float(min(source.shape[:2]))
    sigma = COLOR_LOWPASS_SIGMA * min(source.shape[:2]) / float(REFERENCE_SIZE) * f
    s = cv2.GaussianBlur(s, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
    r = cv2.GaussianBlur(r, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
    m = _region_at(region, s.shape)
    de = np.zeros(s.shape[:2], dtype=np.float32)
    de[m] = ciede2000(rgb_to_lab(s[m]), rgb_to_lab(r[m]))
    return de, m


def color_fidelity(source: np.ndarray, result: np.ndarray, region: Optional[np.ndarray] = None) -> Dict[str, object]:
    de, m = delta_e_map(source, result, region)
    vals = de[m].astype(np.float64)
    mean = float(vals.mean())
    return {
        "score": ramp(mean, COLOR_DE_GOOD, COLOR_DE_BAD),
        "delta_e_mean": mean,
        "delta_e_p95": float(np.percentile(vals, 95)),
        "map": de,
    }


# ---------------------------------------------------------------- palette

def nearest_centre(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Index of the nearest centre per row (no BLAS: thread overhead dominates at this size)."""
    d = (c**2).sum(axis=1)[None, :] - 2.0 * (x[:, 0:1] * c[:, 0] + x[:, 1:2] * c[:, 1] + x[:, 2:3] * c[:, 2])
    return d.argmin(axis=1)


def kmeans_lab(pixels: np.ndarray, k: int, iterations: int = 30, seed: int = 0, max_fit: int = 4096) -> Tuple[np.ndarray, np.ndarray]:
    """Deterministic k-means (k-means++ seeding from a fixed RNG; Lloyd iterations until the labels
    stop changing or no centre moves by 0.05 LAB units).

    Fitted on an evenly strided subsample of at most `max_fit` pixels (plenty for 6 dominant
    colours), then every pixel is assigned for the weights. Returns (centres k',3, weights k')."""
    x_all = np.asarray(pixels, dtype=np.float64)
    if len(x_all) == 0:
        raise ValueError("no pixels to cluster")
    step = max(1, int(np.ceil(len(x_all) / float(max_fit))))
    x = x_all[::step]
    # Distinct colours (at 0.01 LAB units): a flat image cannot have k different clusters.
    q = np.round(x * 100.0).astype(np.int64)
    key = (q[:, 0] * 1_000_003 + q[:, 1]) * 1_000_033 + q[:, 2]
    k = int(min(k, len(np.unique(key))))
    if k <= 1:
        return x_all.mean(axis=0, keepdims=True), np.ones(1)
    rng = np.random.default_rng(seed)
    first = int(rng.integers(len(x)))
    centres = [x[first]]
    d2 = ((x - x[first]) ** 2).sum(axis=1)
    for _ in range(1, k):
        total = d2.sum()
        idx = int(rng.choice(len(x), p=d2 / total)) if total > 0 else int(rng.integers(len(x)))
        centres.append(x[idx])
        d2 = np.minimum(d2, ((x - x[idx]) ** 2).sum(axis=1))
    c = np.array(centres)
    labels = None
    for _ in range(iterations):
        new = nearest_centre(x, c)
        if labels is not None and np.array_equal(new, labels):
            break
        labels = new
        counts = np.bincount(labels, minlength=k)
        nz = counts > 0
        old = c.copy()
        for j in range(3):
            col = np.bincount(labels, weights=x[:, j], minlength=k)
            c[nz, j] = col[nz] / counts[nz]
        if np.abs(c - old).max() < 0.05:  # no centre moved by a visible amount (LAB units)
            break
    counts = np.bincount(nearest_centre(x_all, c), minlength=k).astype(np.float64)
    keep = counts > 0
    return c[keep], counts[keep] / counts.sum()


def region_lab(rgb: np.ndarray, region: Optional[np.ndarray] = None) -> np.ndarray:
    """LAB pixels (N,3) of the character at the palette working size (global statistics only)."""
    small = downsample(rgb.astype(np.float32), PALETTE_WORK_SIZE)
    m = _region_at(region, small.shape)
    return rgb_to_lab(small[m])


def palette(rgb: np.ndarray, region: Optional[np.ndarray] = None, k: int = PALETTE_K, lab: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Dominant LAB colours and their weights of the character."""
    return kmeans_lab(region_lab(rgb, region) if lab is None else lab, k)


def palette_distance(pal_a: Tuple[np.ndarray, np.ndarray], pal_b: Tuple[np.ndarray, np.ndarray]) -> float:
    """Weighted CIEDE2000 between Hungarian-matched palette entries:
    sum 1/2 (w_a + w_b) dE00(c_a, c_b), normalised by the matched weight."""
    (ca, wa), (cb, wb) = pal_a, pal_b
    cost = ciede2000(ca[:, None, :], cb[None, :, :])
    rows, cols = linear_sum_assignment(cost)
    w = 0.5 * (wa[rows] + wb[cols])
    return float((w * cost[rows, cols]).sum() / max(w.sum(), 1e-12))


def palette_fidelity(
    source: np.ndarray, result: np.ndarray, region: Optional[np.ndarray] = None,
    source_lab: Optional[np.ndarray] = None, result_lab: Optional[np.ndarray] = None,
) -> Dict[str, object]:
    ps, pr = palette(source, region, lab=source_lab), palette(result, region, lab=result_lab)
    d = palette_distance(ps, pr)
    return {
        "score": ramp(d, PALETTE_DE_GOOD, PALETTE_DE_BAD),
        "delta_e": d,
        "source_palette_lab": np.round(ps[0], 2).tolist(),
        "source_palette_weights": np.round(ps[1], 4).tolist(),
        "result_palette_lab": np.round(pr[0], 2).tolist(),
        "result_palette_weights": np.round(pr[1], 4).tolist(),
    }


# ---------------------------------------------------------------- colour moments

def lab_moments(rgb: np.ndarray, region: Optional[np.ndarray] = None, lab: Optional[np.ndarray] = None) -> np.ndarray:
    """3x3 array: rows L, a, b; columns mean, std, signed cube root of the 3rd central moment.
    Global statistics: the palette working size (128 px) holds enough samples."""
    px = (region_lab(rgb, region) if lab is None else lab).astype(np.float64)
    mean = px.mean(axis=0)
    c = px - mean
    std = np.sqrt((c**2).mean(axis=0))
    skew = np.cbrt((c**3).mean(axis=0))
    return np.stack([mean, std, skew], axis=1)


def moments_diagnostic(
    source: np.ndarray, result: np.ndarray, region: Optional[np.ndarray] = None,
    source_lab: Optional[np.ndarray] = None, result_lab: Optional[np.ndarray] = None,
) -> Dict[str, float]:
    ms, mr = lab_moments(source, region, source_lab), lab_moments(result, region, result_lab)
    d = float(np.abs(ms - mr).sum())
    return {
        "score": exp_score(d, MOMENTS_TAU),
        "distance": d,
        "brightness_shift_L": float(mr[0, 0] - ms[0, 0]),
        "cast_a": float(mr[1, 0] - ms[1, 0]),
        "cast_b": float(mr[2, 0] - ms[2, 0]),
        # Differences rather than ratios: always finite, even for a flat source.
        "contrast_change_L": float(mr[0, 1] - ms[0, 1]),
        "chroma_spread_change": float(np.hypot(mr[1, 1], mr[2, 1]) - np.hypot(ms[1, 1], ms[2, 1])),
        "skew_L_shift": float(mr[0, 2] - ms[0, 2]),
    }
