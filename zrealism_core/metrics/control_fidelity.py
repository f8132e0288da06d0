"""Control fidelity: were the ControlNets obeyed? (ControlNet++, Li et al., ECCV 2024: re-extract the
condition from the output and compare it with the input's.)

- edge_f: boundary F-score between the source's line art and the result's edges. One operator
  makes both maps (the canny hint's: Canny at thresholds from each image's own gradient statistics,
  after a light Gaussian at the metric scale so photo micro-texture does not count; a photo's softer
  contours are still found), so identity scores 1.0. Matching uses the silhouette
  boundary's DAVIS tolerance t (6 px at 512): an edge pixel at distance d from the other map earns
  1 - (d / (t + 1))^2 (1 on the spot, 0 beyond t), so the score falls smoothly with displacement
  instead of jumping at t. Weight-free, always computed.
- depth_corr: Pearson correlation of the source's and the result's depth maps inside the character
  mask (invariant to the depth detector's arbitrary scale and shift), clipped at 0.
- pose_pck: PCK@0.1: the fraction of the source's body keypoints that the result has within
  0.1 x the larger side of the source keypoints' bounding box.
Reported, not part of `overall` (not calibrated on real outputs yet).
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import cv2
import numpy as np

from .calibration import scale_for
from .edges import luma, pearson
from .silhouette import boundary_tolerance

EDGE_BLUR_SIGMA = 1.0  # px at 512: removes pixel-level texture, keeps stroke and contour edges
PCK_ALPHA = 0.1

Keypoints = Sequence[Optional[Tuple[float, float]]]  # (x, y) in pixels per body part, None = not found


def edge_maps(source: np.ndarray, result: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(source edges, result edges) as bool maps, one operator for both (see the module doc)."""
    from ..errors import EmptyHintError
    from .edges import canny_thresholds

    sigma = EDGE_BLUR_SIGMA * scale_for(source.shape)

    def gray8(rgb: np.ndarray) -> np.ndarray:
        g = cv2.GaussianBlur(luma(rgb), (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
        return (np.clip(g, 0, 255) + 0.5).astype(np.uint8)

    def edges(gray: np.ndarray) -> np.ndarray:
        try:
            low, high = canny_thresholds(gray)
        except EmptyHintError:  # a flat image has no edges
            return np.zeros(gray.shape, dtype=bool)
        return cv2.Canny(gray, low, high, L2gradient=False) > 0

    return edges(gray8(source)), edges(gray8(result))


def _credit(edges: np.ndarray, other: np.ndarray, tol: int) -> float:
    """Mean matching credit of the pixels of `edges` against the map `other`."""
    dist = cv2.distanceTransform((~other).astype(np.uint8), cv2.DIST_L2, 5)
    d = dist[edges]
    return float(np.mean(np.clip(1.0 - (d / (tol + 1.0)) ** 2, 0.0, 1.0)))


def edge_f(source: np.ndarray, result: np.ndarray, region: Optional[np.ndarray] = None) -> Dict[str, object]:
    """Boundary F of the result's edges against the source's line art, inside `region` (bool) when given."""
    src, res = edge_maps(source, result)
    if region is not None and region.any():
        src, res = src & region, res & region
    tol = boundary_tolerance(source.shape[:2])
    ns, nr = int(np.count_nonzero(src)), int(np.count_nonzero(res))
    if ns == 0 and nr == 0:
        precision = recall = 1.0
    elif ns == 0 or nr == 0:
        precision = recall = 0.0
    else:
        precision, recall = _credit(res, src, tol), _credit(src, res, tol)
    f = 0.0 if precision + recall == 0 else 2.0 * precision * recall / (precision + recall)
    return {"f": float(f), "precision": precision, "recall": recall, "tolerance_px": tol,
            "source_edges": src, "result_edges": res}


def depth_correlation(source_depth: np.ndarray, result_depth: np.ndarray, mask: Optional[np.ndarray] = None) -> float:
    """Scale- and shift-invariant agreement of two depth maps (H,W or H,W,3) inside `mask`: max(0, Pearson r)."""
    a = np.asarray(source_depth, dtype=np.float32)
    b = np.asarray(result_depth, dtype=np.float32)
    a = a.mean(axis=2) if a.ndim == 3 else a
    b = b.mean(axis=2) if b.ndim == 3 else b
    if b.shape != a.shape:
        b = cv2.resize(b, (a.shape[1], a.shape[0]), interpolation=cv2.INTER_LINEAR)
    region = None if mask is None or not np.asarray(mask).any() else np.asarray(mask, dtype=bool)
    return max(0.0, pearson(a, b, region))


def pck(source: Keypoints, result: Keypoints, alpha: float = PCK_ALPHA) -> Optional[float]:
    """PCK@alpha of the result's keypoints against the source's; None when the source has fewer than two."""
    found = [(i, p) for i, p in enumerate(source) if p is not None]
    if len(found) < 2:
        return None
    xs = [p[0] for _, p in found]
    ys = [p[1] for _, p in found]
    reach = alpha * max(max(xs) - min(xs), max(ys) - min(ys), 1e-6)
    hits = 0
    for i, (x, y) in found:
        q = result[i] if i < len(result) else None
        if q is not None and np.hypot(q[0] - x, q[1] - y) <= reach:
            hits += 1
    return hits / len(found)


def edge_overlay(result: np.ndarray, source_edges: np.ndarray, result_edges: np.ndarray) -> np.ndarray:
    """Dimmed result with the source's line art in red and the result's edges in cyan (white = both)."""
    grow = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))  # 1-px edges stay visible in a small tile
    s = cv2.dilate(source_edges.astype(np.uint8), grow) > 0
    r = cv2.dilate(result_edges.astype(np.uint8), grow) > 0
    gray = np.asarray(result, dtype=np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    out = np.repeat((0.25 * gray)[..., None], 3, axis=2)
    out[s, 0] = 1.0
    out[r, 1] = 1.0
    out[r, 2] = 1.0
    return out
