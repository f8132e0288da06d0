"""Temporal consistency of a generated clip.

* Warping error (Lai et al., ECCV 2018, "Learning Blind Video Temporal Consistency";
  reference code fast_blind_video_consistency/evaluate_WarpError.py): frame t+1 is warped back to
  frame t with the optical flow t -> t+1, and the mean squared RGB difference is taken over the
  non-occluded pixels,  E = mean_t sum_p M_t(p) |V_t(p) - V^_{t+1}(p)|^2 / sum_p M_t(p)
  (squared RGB distance in 0..1 units, as evaluate_WarpError.py computes it).
  Occlusion mask (Ruder, Dosovitskiy & Brox 2016, as in Lai's `detect_occlusion`): forward-backward
  inconsistency |F + B~|^2 > 0.01 (|F|^2 + |B~|^2) + 0.5, or a motion boundary
  |grad u|^2 + |grad v|^2 > 0.01 |F|^2 + 0.002. Consistent motion costs nothing; flicker and
  texture "boiling" do.
* Flow: OpenCV DIS (Kroeger et al. 2016) with fixed presets (calibration.FLOW_PRESET for the
  forward flow that warps, OCCLUSION_FLOW_PRESET for the backward flow of the consistency test);
  values depend on the flow method, so they must not change between runs being compared.
* Global luminance flicker: mean |m[t+1] - 2 m[t] + m[t-1]| of per-frame mean luma (0..255); the
  second difference ignores steady fades.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np

from .calibration import FLICKER_TAU, FLOW_PRESET, OCCLUSION_FLOW_PRESET, WARP_ERROR_TAU, exp_score

_PRESETS = {
    "ULTRAFAST": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "FAST": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "MEDIUM": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


def _gray_u8(rgb: np.ndarray) -> np.ndarray:
    u8 = cv2.convertScaleAbs(np.asarray(rgb, dtype=np.float32), alpha=255.0)  # saturating, rounded
    return cv2.cvtColor(u8, cv2.COLOR_RGB2GRAY) if u8.ndim == 3 else u8


def dis_flow(a: np.ndarray, b: np.ndarray, preset: str = FLOW_PRESET) -> np.ndarray:
    """Dense flow F (H,W,2, float32) from RGB/gray frame a to b: a(p) ~ b(p + F(p))."""
    ga = a if a.dtype == np.uint8 and a.ndim == 2 else _gray_u8(a)
    gb = b if b.dtype == np.uint8 and b.ndim == 2 else _gray_u8(b)
    dis = cv2.DISOpticalFlow_create(_PRESETS[preset])
    return dis.calc(ga, gb, None)


_GRIDS: Dict[tuple, tuple] = {}


def _grid(shape: tuple) -> tuple:
    key = tuple(shape[:2])
    if key not in _GRIDS:
        h, w = key
        _GRIDS.clear()  # keep one size only
        _GRIDS[key] = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return _GRIDS[key]


def _maps(flow: np.ndarray) -> tuple:
    gx, gy = _grid(flow.shape)
    return gx + flow[..., 0], gy + flow[..., 1]


def warp(img: np.ndarray, flow: np.ndarray, maps: Optional[tuple] = None) -> np.ndarray:
    """Backward warp: out(p) = img(p + flow(p)) (bilinear, border replicated)."""
    mx, my = _maps(flow) if maps is None else maps
    return cv2.remap(img, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def occlusion_mask(fw: np.ndarray, bw: np.ndarray, maps: Optional[tuple] = None) -> np.ndarray:
    """True where pixel p of frame t has no reliable correspondence in t+1 (Ruder et al. 2016)."""
    mx, my = _maps(fw) if maps is None else maps
    bw_at = warp(bw, fw, (mx, my))
    # Per-channel planes: numpy reductions over a length-2 last axis are slow.
    u, v = cv2.split(fw)
    bu, bv = cv2.split(bw_at)
    fw2 = u * u + v * v
    su, sv = u + bu, v + bv
    inconsistent = su * su + sv * sv > 0.01 * (fw2 + bu * bu + bv * bv) + 0.5
    # Motion boundary: central differences (as np.gradient) via cv2, float32.
    grad2 = np.zeros(fw.shape[:2], dtype=np.float32)
    for ch in (u, v):
        gx = cv2.Sobel(ch, cv2.CV_32F, 1, 0, ksize=1, scale=0.5, borderType=cv2.BORDER_REPLICATE)
        gy = cv2.Sobel(ch, cv2.CV_32F, 0, 1, ksize=1, scale=0.5, borderType=cv2.BORDER_REPLICATE)
        grad2 += gx * gx + gy * gy
    boundary = grad2 > 0.01 * fw2 + 0.002
    h, w = fw.shape[:2]
    outside = (mx < 0) | (mx > w - 1) | (my < 0) | (my > h - 1)
    return inconsistent | boundary | outside


def pair_warp_error(a: np.ndarray, b: np.ndarray, region: Optional[np.ndarray] = None,
                    grays: Optional[tuple] = None) -> Dict[str, float]:
    """Warping error of one frame pair (RGB float 0..1) over `region` (bool, frame a) minus occlusions.

    Forward flow (used to warp) with FLOW_PRESET; backward flow (used only for the
    forward-backward occlusion test, tolerance ~0.7 px) with the cheaper OCCLUSION_FLOW_PRESET."""
    ga, gb = grays if grays is not None else (_gray_u8(a), _gray_u8(b))
    fw = dis_flow(ga, gb, FLOW_PRESET)
    bw = dis_flow(gb, ga, OCCLUSION_FLOW_PRESET)
    maps = _maps(fw)
    valid = ~occlusion_mask(fw, bw, maps)
    if region is not None and region.any():
        valid &= region
    n = int(np.count_nonzero(valid))
    mean_flow = float(cv2.magnitude(*cv2.split(fw)).mean())
    if n == 0:
        return {"error": 0.0, "valid_fraction": 0.0, "mean_flow_px": mean_flow}
    diff = cv2.subtract(np.asarray(a, np.float32), warp(np.asarray(b, np.float32), fw, maps))
    sq = cv2.multiply(diff, diff)
    per_px = cv2.transform(sq, np.ones((1, 3), np.float32))  # sum over RGB (Lai's code), H,W
    err = float(per_px[valid].sum(dtype=np.float64) / n)  # averaged over non-occluded pixels
    return {"error": err, "valid_fraction": n / float(valid.size), "mean_flow_px": mean_flow}


def luminance_flicker(frames: Sequence[np.ndarray]) -> float:
    """Mean absolute second difference of per-frame mean luma (0..255); 0 for < 3 frames."""
    if len(frames) < 3:
        return 0.0
    m = np.array([float((np.asarray(f, np.float64) @ np.array([0.299, 0.587, 0.114])).mean() * 255.0) for f in frames])
    return float(np.abs(m[2:] - 2.0 * m[1:-1] + m[:-2]).mean())


def temporal_consistency(frames: Sequence[np.ndarray], regions: Optional[List[Optional[np.ndarray]]] = None) -> Dict[str, object]:
    """Temporal score of a clip (>= 2 frames): sqrt(exp(-E_warp/tau) * exp(-flicker/tau_f))."""
    if len(frames) < 2:
        raise ValueError("temporal consistency needs at least two frames")
    grays = [_gray_u8(f) for f in frames]
    pairs = []
    for t in range(len(frames) - 1):
        reg = None if regions is None else regions[t]
        pairs.append(pair_warp_error(frames[t], frames[t + 1], reg, (grays[t], grays[t + 1])))
    e = float(np.mean([p["error"] for p in pairs]))
    flick = luminance_flicker(frames)
    s_warp, s_flick = exp_score(e, WARP_ERROR_TAU), exp_score(flick, FLICKER_TAU)
    return {
        "score": float(np.sqrt(s_warp * s_flick)),
        "warp_error": e,
        "warp_score": s_warp,
        "luminance_flicker": flick,
        "flicker_score": s_flick,
        "pair_warp_errors": [round(p["error"], 8) for p in pairs],
        "valid_fraction": float(np.mean([p["valid_fraction"] for p in pairs])),
        "flow_preset": FLOW_PRESET,
        "occlusion_flow_preset": OCCLUSION_FLOW_PRESET,
    }
