"""Edge fidelity: Pearson correlation of smoothed |LoG| maps (Marr-Hildreth).

This is the well-founded form of the original "Laplacian Edge Fidelity". Correlation pooling
ignores global gain/contrast, so photo texture does not count against the drawing's line art, and
a shifted, flipped or unrelated output loses most of the score (see calibration.py, proxy data).
The gradient-magnitude correlation (Sobel on a Gaussian-smoothed image) is reported alongside.
canny_thresholds: the Canny thresholds one image's gradients call for (the canny hint and edge_f share them).
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import cv2
import numpy as np

from ..errors import EmptyHintError
from .calibration import EDGE_GRAD_SIGMA, EDGE_LOG_SIGMA, scale_for

MIN_GRADIENT = 8.0  # |Sobel x| + |Sobel y| on 0..255: below this everywhere the image is flat


def luma(rgb: np.ndarray) -> np.ndarray:
    """Rec.601 luma in 0..255 (float32), the gray that cv2 uses."""
    rgb = np.asarray(rgb, dtype=np.float32)
    return (rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114) * 255.0


def log_map(gray: np.ndarray, sigma: float) -> np.ndarray:
    """|Laplacian of Gaussian| of a 0..255 gray image (float32)."""
    smooth = cv2.GaussianBlur(gray.astype(np.float32), (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
    return np.abs(cv2.Laplacian(smooth, cv2.CV_32F, ksize=3, borderType=cv2.BORDER_REPLICATE))


def grad_map(gray: np.ndarray, sigma: float) -> np.ndarray:
    """Gradient magnitude (Sobel) of a Gaussian-smoothed 0..255 gray image (float32)."""
    smooth = cv2.GaussianBlur(gray.astype(np.float32), (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
    gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REPLICATE)
    gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REPLICATE)
    return cv2.magnitude(gx, gy)


def pearson(x: np.ndarray, y: np.ndarray, region: Optional[np.ndarray] = None, stride: int = 1) -> float:
    """Pearson r of two maps over `region` (bool). Two constant maps: 1 if equal else 0.

    `stride` subsamples the maps; for maps smoothed at sigma >= 1.5*stride this loses nothing
    measurable (the Gaussian has removed what the coarser grid cannot hold) and is 4x cheaper."""
    if stride > 1:
        x, y = x[::stride, ::stride], y[::stride, ::stride]
        region = None if region is None else region[::stride, ::stride]
    if region is not None:
        x, y = x[region], y[region]
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.size == 0:
        return 1.0
    xc, yc = x - x.mean(), y - y.mean()
    # Element-wise sums, not BLAS dot: on a busy 2-core box OpenBLAS threading costs ~10x more.
    sxx, syy = float(np.sum(xc * xc)), float(np.sum(yc * yc))
    if sxx <= 1e-12 or syy <= 1e-12:
        # No structure in one map: only "both structureless and equal" is a match.
        return 1.0 if (sxx <= 1e-12 and syy <= 1e-12 and np.allclose(x, y)) else 0.0
    return float(np.clip(np.sum(xc * yc) / np.sqrt(sxx * syy), -1.0, 1.0))


def edge_region(mask: Optional[np.ndarray], shape: tuple) -> Optional[np.ndarray]:
    """Where edges are compared: the character (union of both masks) grown by ~2 LoG sigmas so
    the outline itself counts, without the flat white background (white matches white and would
    inflate every correlation)."""
    if mask is None:
        return None
    m = np.asarray(mask, dtype=bool)
    if not m.any() or m.all():
        return None
    r = max(1, int(round(2.0 * EDGE_LOG_SIGMA * scale_for(shape))))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    return cv2.dilate(m.astype(np.uint8), kernel) > 0


def edge_fidelity(source: np.ndarray, result: np.ndarray, region_mask: Optional[np.ndarray] = None) -> Dict[str, object]:
    """Edge score = max(0, r_LoG); also the gradient correlation and the |LoG| maps (for the panel)."""
    scale = scale_for(source.shape)
    sigma = EDGE_LOG_SIGMA * scale
    ys, yr = luma(source), luma(result)
    ls, lr = log_map(ys, sigma), log_map(yr, sigma)
    region = edge_region(region_mask, source.shape)
    r_log = pearson(ls, lr, region, stride=max(1, int(sigma // 1.5)))
    g_sigma = EDGE_GRAD_SIGMA * scale
    r_grad = pearson(grad_map(ys, g_sigma), grad_map(yr, g_sigma), region, stride=max(1, int(g_sigma // 1.5)))
    return {
        "score": max(0.0, r_log),
        "log_correlation": r_log,
        "gradient_correlation": r_grad,
        "log_sigma_px": float(sigma),
        "source_map": ls,
        "result_map": lr,
    }


def canny_thresholds(gray8: np.ndarray) -> Tuple[float, float]:
    """(low, high) Canny thresholds from the gradient statistics of a uint8 gray image."""
    gx = cv2.Sobel(gray8, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray8, cv2.CV_32F, 0, 1, ksize=3)
    mag = np.abs(gx) + np.abs(gy)  # Canny's own L1 gradient measure
    moving = mag[mag >= MIN_GRADIENT]
    if moving.size == 0:
        raise EmptyHintError(
            "the image has no edges (it is flat), so no canny hint can be computed; the detail ControlNet is "
            "switched off. Connect your own detail_map, or use the tile hint."
        )
    top = float(np.percentile(moving, 99.5))
    hist_in = np.clip(moving / max(top, 1e-6) * 255.0, 0, 255).astype(np.uint8)
    otsu, _ = cv2.threshold(hist_in.reshape(1, -1), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    high = max(MIN_GRADIENT * 2, float(otsu) / 255.0 * top)
    return high / 2.0, high
