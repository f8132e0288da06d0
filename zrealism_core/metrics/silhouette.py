"""Silhouette fidelity: region similarity J (IoU) and boundary F-measure, as in the DAVIS
video-segmentation benchmark (Perazzi et al., CVPR 2016; davis2017-evaluation `db_eval_iou`,
`db_eval_boundary`). Texture and colour play no part, so it survives the anime -> photo gap.
"""
from __future__ import annotations

import math
from typing import Dict

import cv2
import numpy as np

from .calibration import BOUNDARY_TOLERANCE_FRACTION


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """|A and B| / |A or B| of two boolean masks; two empty masks agree perfectly (DAVIS convention)."""
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    union = np.count_nonzero(a | b)
    if union == 0:
        return 1.0
    return float(np.count_nonzero(a & b) / union)


def boundary(mask: np.ndarray) -> np.ndarray:
    """One-pixel inner boundary of a boolean mask (pixels of the mask with a 4-neighbour outside it).

    Pixels on the image border count as boundary only where the mask continues past the frame
    is unknown, so the frame itself is treated as outside (a cut-off character has an edge there).
    """
    m = np.asarray(mask, dtype=np.uint8)
    padded = np.pad(m, 1, mode="constant")
    eroded = cv2.erode(padded, cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3)))[1:-1, 1:-1]
    return (m > 0) & (eroded == 0)


def boundary_tolerance(shape: tuple) -> int:
    """DAVIS tolerance in pixels: ceil(0.008 * diagonal)."""
    return int(math.ceil(BOUNDARY_TOLERANCE_FRACTION * math.hypot(shape[0], shape[1])))


def boundary_f(a: np.ndarray, b: np.ndarray, tolerance: int | None = None) -> Dict[str, float]:
    """Boundary precision, recall and F-measure of mask `b` against mask `a` with a pixel tolerance."""
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    tol = boundary_tolerance(a.shape) if tolerance is None else int(tolerance)
    ba, bb = boundary(a), boundary(b)
    na, nb = np.count_nonzero(ba), np.count_nonzero(bb)
    if na == 0 and nb == 0:
        return {"precision": 1.0, "recall": 1.0, "f": 1.0}
    if na == 0 or nb == 0:
        return {"precision": 0.0, "recall": 0.0, "f": 0.0}
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * tol + 1, 2 * tol + 1))
    near_a = cv2.dilate(ba.astype(np.uint8), kernel) > 0
    near_b = cv2.dilate(bb.astype(np.uint8), kernel) > 0
    precision = np.count_nonzero(bb & near_a) / nb
    recall = np.count_nonzero(ba & near_b) / na
    f = 0.0 if precision + recall == 0 else 2.0 * precision * recall / (precision + recall)
    return {"precision": float(precision), "recall": float(recall), "f": float(f)}


def silhouette_score(source_mask: np.ndarray, result_mask: np.ndarray) -> Dict[str, float]:
    """DAVIS J&F: mean of IoU (J) and boundary F. Returns score plus its parts."""
    j = iou(source_mask, result_mask)
    bf = boundary_f(source_mask, result_mask)
    return {
        "score": float(0.5 * (j + bf["f"])),
        "iou": j,
        "boundary_f": bf["f"],
        "boundary_precision": bf["precision"],
        "boundary_recall": bf["recall"],
        "boundary_tolerance_px": boundary_tolerance(np.shape(source_mask)),
    }
