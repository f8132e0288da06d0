"""Fidelity and realism scores for a photoreal result against its 2D source drawing.

`evaluate(source, result)` scores one still, `evaluate_video(source, frames)` a clip (per-frame
scores plus temporal consistency). Every score is in 0..1 with 1 = perfect, and is computed on the
character: the prep-stage mask when given, otherwise the near-white background connected to the
border is detected and left out. The metrics live in `zrealism_core.metrics` (one module per
family, all anchors in metrics/calibration.py); this module handles input and masks, report.py the report.

Gating components (their geometric mean is `overall`, so one failure shows):
silhouette, edge, color, texture_realism (+ temporal for clips). palette and the LAB colour
moments are reported, not gated.

`report.control` (control fidelity, metrics/control_fidelity.py; reported, not part of `overall`):
edge_f always; depth_corr when the depth detector's files are found; pose_pck when OpenPose's are
(None when not computed, with a note). The sampler's depth_map / pose_map can be passed as the
source's maps so they are not detected again.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import cv2
import numpy as np

from ..errors import InputError
from ..imaging.images import split_rgb_alpha, to_mask
from ..imaging.masks import white_background_subject_mask
from ..metrics.calibration import MASK_ERODE_PX, scale_for
from ..metrics.colour_fidelity import color_fidelity, moments_diagnostic, palette_fidelity, region_lab
from ..metrics.edges import edge_fidelity
from ..metrics.silhouette import silhouette_score
from ..metrics.temporal import temporal_consistency
from ..metrics.texture import texture_realism
from .report import CONTROL_NAMES, GATING, SCORE_NAMES, FidelityReport, _clean, geometric_mean


# ---------------------------------------------------------------- inputs and masks

def _load_rgb(image: Any, name: str, notes: List[str]):
    rgb, alpha = split_rgb_alpha(image, name=name)
    if alpha is not None:
        rgb = rgb * alpha[:, :, None] + (1.0 - alpha[:, :, None])  # composite onto white, like prep
    if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]):
        notes.append(f"{name} is grayscale: colour scores compare it as gray")
    return np.ascontiguousarray(rgb, dtype=np.float32), alpha


def _fit(arr: np.ndarray, shape: tuple, interpolation: int) -> np.ndarray:
    return cv2.resize(arr, (shape[1], shape[0]), interpolation=interpolation)


def _resize_to(img: np.ndarray, shape: tuple, name: str, notes: List[str]) -> np.ndarray:
    if img.shape[:2] == tuple(shape[:2]):
        return img
    h, w = img.shape[:2]
    note = f"{name}: {w}x{h} but the source is {shape[1]}x{shape[0]}; resized to the source size"
    if abs(w / h - shape[1] / shape[0]) > 0.01:
        note += " (aspect ratio differs: silhouette and edge scores include the distortion)"
    notes.append(note)
    down = h * w > shape[0] * shape[1]
    return np.clip(_fit(img, shape, cv2.INTER_AREA if down else cv2.INTER_LINEAR), 0.0, 1.0)


def _subject_mask(rgb: np.ndarray, given: Any, alpha: Optional[np.ndarray], name: str, notes: List[str]) -> np.ndarray:
    """Boolean character mask: given mask > alpha channel > detected white background."""
    shape = rgb.shape[:2]
    if given is not None:
        m = to_mask(given, name=f"{name} mask")
        if m.shape != shape:
            notes.append(f"{name} mask is {m.shape[1]}x{m.shape[0]}: resized to {shape[1]}x{shape[0]}")
            m = _fit(m, shape, cv2.INTER_LINEAR)
        mb = m > 0.5
        if mb.any():
            return mb
        notes.append(f"{name} mask is empty (no pixel > 0.5): detected the character instead")
    if alpha is not None and (alpha < 0.5).any() and (alpha > 0.5).any():
        return _fit(alpha, shape, cv2.INTER_LINEAR) > 0.5 if alpha.shape != shape else alpha > 0.5
    m = white_background_subject_mask(rgb) > 0.5
    if not m.any():
        notes.append(f"{name} is entirely near-white: no character found, whole image used")
        return np.ones(shape, dtype=bool)
    if m.all():
        notes.append(f"{name} has no white background connected to the border: whole frame taken as character")
    return m


def _erode(mask: np.ndarray, radius: float) -> np.ndarray:
    r = int(round(radius))
    if r <= 0:
        return mask
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    # Pad with "inside" so a character touching the frame is not eroded from the frame edge.
    padded = np.pad(mask.astype(np.uint8), r, mode="edge")
    return cv2.erode(padded, k)[r:-r, r:-r] > 0


def _region(src_mask: np.ndarray, res_mask: np.ndarray, notes: List[str]) -> np.ndarray:
    """Pixels compared by per-pixel metrics: eroded intersection of both characters."""
    both = src_mask & res_mask
    region = _erode(both, MASK_ERODE_PX * scale_for(src_mask.shape))
    if region.any():
        return region
    if both.any():
        return both
    notes.append("source and result characters do not overlap: colour compared over the source character")
    return src_mask if src_mask.any() else np.ones_like(src_mask)


# ---------------------------------------------------------------- scoring

class _Source:
    """Source-side data shared by every frame of a clip."""

    def __init__(self, source: Any, mask: Any, notes: List[str]):
        self.rgb, alpha = _load_rgb(source, "source", notes)
        self.mask = _subject_mask(self.rgb, mask, alpha, "source", notes)


def _score_frame(src: _Source, result: Any, result_mask: Any, name: str, notes: List[str], keep_maps: bool):
    res, alpha = _load_rgb(result, name, notes)
    res = _resize_to(res, src.rgb.shape, name, notes)
    if alpha is not None and alpha.shape != src.rgb.shape[:2]:
        alpha = _fit(alpha, src.rgb.shape, cv2.INTER_LINEAR)
    res_mask = _subject_mask(res, result_mask, alpha, name, notes)
    region = _region(src.mask, res_mask, notes)

    sil = silhouette_score(src.mask, res_mask)
    edge = edge_fidelity(src.rgb, res, src.mask | res_mask)
    col = color_fidelity(src.rgb, res, region)
    lab_s, lab_r = region_lab(src.rgb, region), region_lab(res, region)
    pal = palette_fidelity(src.rgb, res, region, lab_s, lab_r)
    mom = moments_diagnostic(src.rgb, res, region, lab_s, lab_r)
    tex = texture_realism(res, _erode(res_mask, MASK_ERODE_PX * scale_for(res_mask.shape)) if res_mask.any() else None)
    for n in tex.pop("notes"):
        notes.append(f"{name}: {n}")
    scores = {
        "silhouette": _clean(sil["score"]),
        "edge": _clean(edge["score"]),
        "color": _clean(col["score"]),
        "palette": _clean(pal["score"]),
        "texture_realism": _clean(tex["score"]),
    }
    diag = {
        "silhouette": sil,
        "edge": {k: v for k, v in edge.items() if not k.endswith("_map")},
        "color": {k: v for k, v in col.items() if k != "map"},
        "palette": pal,
        "color_moments": mom,
        "texture": tex,
        "mask": {
            "source_fraction": float(src.mask.mean()),
            "result_fraction": float(res_mask.mean()),
            "compared_fraction": float(region.mean()),
        },
    }
    artifacts = {}
    if keep_maps:
        artifacts = {
            "source": src.rgb, "result": res, "source_mask": src.mask, "result_mask": res_mask,
            "region": region, "source_edges": edge["source_map"], "result_edges": edge["result_map"],
            "delta_e": col["map"],
        }
    return scores, diag, artifacts, res, res_mask


def evaluate(source: Any, result: Any, mask: Any = None, *, result_mask: Any = None, depth_map: Any = None,
             pose_map: Any = None, annotator_dirs: Optional[Sequence[Any]] = None, control: bool = True) -> "FidelityReport":
    """Score one result image against its source drawing.

    source, result: PIL images or arrays (H,W / H,W,C; uint8, uint16 or float 0..1). A result of
    another size is resized to the source (noted in the report). mask: the source character mask
    (1 = character, e.g. from prep); result_mask: the result's, detected when omitted.
    depth_map / pose_map: the source's control maps (e.g. the sampler's outputs), used for
    report.control instead of detecting them again; annotator_dirs: where the detectors' files are
    (as for the sampler; ZREALISM_ANNOTATORS is searched too). control=False skips report.control.
    """
    notes: List[str] = []
    src = _Source(source, mask, notes)
    scores, diag, artifacts, res, res_mask = _score_frame(src, result, result_mask, "result", notes, keep_maps=True)
    scores["overall"] = _clean(geometric_mean([scores[k] for k in GATING]))
    ordered = {k: scores[k] for k in SCORE_NAMES if k in scores}
    report = FidelityReport(scores=ordered, diagnostics=diag, notes=notes, frames=1, artifacts=artifacts)
    if control:
        _control(report, src, res, res_mask, depth_map, pose_map, annotator_dirs, notes)
    report.notes = _dedupe(notes)
    return report


def _control(report: "FidelityReport", src: "_Source", res: np.ndarray, res_mask: np.ndarray, depth_map: Any,
             pose_map: Any, annotator_dirs: Optional[Sequence[Any]], notes: List[str]) -> None:
    """Fill report.control (and its diagnostics / panel maps) for one result frame."""
    from ..control import maps as control_maps
    from ..control.pose_crop import keypoints_from_pose_map
    from ..errors import ModelFileError
    from ..imaging.images import to_rgb
    from ..metrics.control_fidelity import depth_correlation, edge_f, pck

    region = src.mask | res_mask
    grow = max(1, int(round(3 * scale_for(region.shape))))  # the outline's own edges count
    region = cv2.dilate(region.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1,) * 2)) > 0
    ef = edge_f(src.rgb, res, region)
    control: Dict[str, Optional[float]] = {k: None for k in CONTROL_NAMES}
    control["edge_f"] = _clean(ef["f"])
    diag: Dict[str, Any] = {"edge_f": {k: v for k, v in ef.items() if not k.endswith("_edges")}}
    report.artifacts["control_source_edges"] = ef["source_edges"]
    report.artifacts["control_result_edges"] = ef["result_edges"]
    shape = src.rgb.shape[:2]

    def source_map(given: Any, name: str) -> Optional[np.ndarray]:
        if given is None:
            return None
        m = to_rgb(given, name=name)
        if m.shape[:2] != shape:
            m = _fit(m, shape, cv2.INTER_LINEAR)
        return m

    src_depth = source_map(depth_map, "depth map")
    if control_maps.available_depth_method(annotator_dirs) is None:
        notes.append("depth_corr not computed: no depth detector files found (see docs/control-maps.md)")
    else:
        if src_depth is None:
            src_depth = control_maps.depth_map(src.rgb, annotator_dirs=annotator_dirs)
        res_depth = control_maps.depth_map(res, annotator_dirs=annotator_dirs)
        control["depth_corr"] = _clean(depth_correlation(src_depth, res_depth, src.mask))
    try:
        if pose_map is not None:
            src_points = keypoints_from_pose_map(source_map(pose_map, "pose map"))
        else:
            people = control_maps.pose_keypoints(src.rgb, annotator_dirs=annotator_dirs, mask=src.mask)
            src_points = people[0] if people else []
        res_people = control_maps.pose_keypoints(res, annotator_dirs=annotator_dirs, mask=res_mask)
    except ModelFileError:
        notes.append("pose_pck not computed: OpenPose's body_pose_model.pth was not found")
    else:
        if pck(src_points, []) is None:
            notes.append("pose_pck not computed: OpenPose found fewer than two keypoints on the source")
        else:  # the result's person that matches best (a result where nobody is found scores 0)
            control["pose_pck"] = _clean(max((pck(src_points, p) or 0.0 for p in res_people), default=0.0))
        diag["pose"] = {"source_keypoints": sum(p is not None for p in src_points), "result_people": len(res_people)}
    report.control = control
    report.diagnostics["control"] = diag


def _frames_list(frames: Any) -> list:
    if frames is None:
        raise InputError("frames are missing: pass a list of images or a [T,H,W,C] array.")
    if isinstance(frames, np.ndarray) and frames.ndim == 4:
        return [frames[i] for i in range(frames.shape[0])]
    if isinstance(frames, (list, tuple)):
        return list(frames)
    return [frames]


def evaluate_video(source: Any, frames: Any, mask: Any = None, *, result_masks: Any = None, depth_map: Any = None,
                   pose_map: Any = None, annotator_dirs: Optional[Sequence[Any]] = None,
                   control: bool = True) -> "FidelityReport":
    """Score the frames of a clip against one source: per-frame scores (means reported, worst
    frame in diagnostics) plus `temporal` (flow-warping error and luminance flicker).
    report.control is measured on the worst frame (see evaluate() for depth_map / pose_map).

    `source` may also be a sequence with one source per frame, and `mask` (the source character mask)
    follows the same rule as the sources: one mask for every source, or a sequence with one per source.
    A one-frame clip has no temporal information: temporal is then 1.0 (neutral, not gated) and a note says so.
    """
    items = _frames_list(frames)
    if not items:
        raise InputError("the clip has no frames: pass at least one image.")
    sources = list(source) if isinstance(source, (list, tuple)) else [source]
    if len(sources) not in (1, len(items)):
        raise InputError(f"{len(sources)} sources for {len(items)} frames: pass one source, or one per frame.")
    if isinstance(result_masks, np.ndarray) and result_masks.ndim == 3 and result_masks.shape[0] == len(items) > 1:
        masks = [result_masks[i] for i in range(len(items))]  # [T,H,W] batch of masks
    elif isinstance(result_masks, (list, tuple)):
        masks = list(result_masks)
    else:
        masks = [result_masks]
    if len(masks) not in (1, len(items)):
        raise InputError(f"{len(masks)} result masks for {len(items)} frames: pass one mask, or one per frame.")

    src_masks = list(mask) if isinstance(mask, (list, tuple)) else [mask]
    if len(src_masks) not in (1, len(sources)):
        raise InputError(f"{len(src_masks)} source masks for {len(sources)} sources: pass one mask, or one per source.")

    notes: List[str] = []
    src_cache = [_Source(s, src_masks[0] if len(src_masks) == 1 else src_masks[j], notes) for j, s in enumerate(sources)]
    per_frame, diags, rgbs, regions = [], [], [], []
    worst, worst_key, worst_artifacts = 0, (2.0, 2.0), {}
    for i, frame in enumerate(items):
        s = src_cache[0] if len(src_cache) == 1 else src_cache[i]
        rm = masks[0] if len(masks) == 1 else masks[i]
        scores, diag, artifacts, res, res_mask = _score_frame(s, frame, rm, f"frame {i}", notes, keep_maps=True)
        scores["overall"] = _clean(geometric_mean([scores[k] for k in GATING]))
        per_frame.append({k: scores[k] for k in SCORE_NAMES if k in scores})
        diags.append(diag)
        rgbs.append(res)
        regions.append(_grow(res_mask))
        # Worst frame: lowest overall, ties (e.g. all 0) broken by the mean gating score.
        key = (scores["overall"], float(np.mean([scores[k] for k in GATING])))
        if key < worst_key:
            worst, worst_key, worst_artifacts = i, key, artifacts

    agg = {k: _clean(np.mean([f[k] for f in per_frame])) for k in GATING + ("palette",)}
    diagnostics: Dict[str, Any] = {"worst_frame": worst, "worst_frame_diagnostics": diags[worst]}
    if len(rgbs) >= 2:
        temp = temporal_consistency(rgbs, regions)
        agg["temporal"] = _clean(temp["score"])
        diagnostics["temporal"] = temp
    else:
        agg["temporal"] = 1.0
        diagnostics["temporal"] = {"measured": False}
        notes.append("one-frame clip: no temporal information, temporal set to 1.0 and not gated")
    gating = list(GATING) + (["temporal"] if len(rgbs) >= 2 else [])
    agg["overall"] = _clean(geometric_mean([agg[k] for k in gating]))
    diagnostics["min_per_frame"] = {k: min(f[k] for f in per_frame) for k in per_frame[0]}
    ordered = {k: agg[k] for k in SCORE_NAMES if k in agg}
    worst_artifacts["frame_index"] = worst
    report = FidelityReport(
        scores=ordered, diagnostics=diagnostics, notes=notes, per_frame=per_frame,
        frames=len(items), gating=gating, artifacts=worst_artifacts,
    )
    if control:
        s = src_cache[0] if len(src_cache) == 1 else src_cache[worst]
        _control(report, s, worst_artifacts["result"], worst_artifacts["result_mask"], depth_map, pose_map,
                 annotator_dirs, notes)
        notes.append(f"control fidelity measured on the worst frame ({worst})")
    report.notes = _dedupe(notes)
    return report


def _grow(mask: np.ndarray) -> Optional[np.ndarray]:
    """Temporal comparison region: the character plus a margin (motion moves the outline)."""
    if mask.all() or not mask.any():
        return None
    r = max(1, int(round(8 * scale_for(mask.shape))))
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    return cv2.dilate(mask.astype(np.uint8), k) > 0


def _dedupe(notes: List[str]) -> List[str]:
    """Unique notes in order; per-frame notes that differ only in the frame number become one
    ("frames 0, 1, 5: ...") so a 16-frame clip does not repeat itself."""
    import re

    groups: Dict[str, List[int]] = {}
    order: List[str] = []
    for n in notes:
        m = re.match(r"frame (\d+)(.*)$", n, flags=re.S)
        key = "\x00" + m.group(2) if m else n
        if key not in groups:
            groups[key] = []
            order.append(key)
        if m:
            groups[key].append(int(m.group(1)))
    out = []
    for key in order:
        if key.startswith("\x00"):
            idx = sorted(set(groups[key]))
            label = f"frame {idx[0]}" if len(idx) == 1 else "frames " + ", ".join(str(i) for i in idx)
            out.append(label + key[1:])
        else:
            out.append(key)
    return out
