"""Heuristic analyzer: measure how much structure a drawing has and recommend sampler settings.

Features are measured on the character only (mask-aware) at a canonical size (the subject's
bounding box resampled to ANALYSIS_SIZE on its long side), so a drawing scanned at twice the
resolution gives the same numbers.

Principle of the mapping (see `recommend`): rich structure (many edges, line art, shading, a big
palette) is worth keeping, so it gets stronger ControlNet guidance held longer and a lower denoise;
flat, sparse art needs more denoise for realism to appear, and lighter depth control (a flat
drawing's depth estimate is weak). Every parameter is a clipped linear function of a few
features with fixed signs: monotone, bounded, deterministic.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Tuple

import cv2
import numpy as np

from .errors import InputError
from .settings import preset_report
from .imaging.images import split_rgb_alpha, to_mask
from .imaging.masks import border_connected, border_reference_lab, near_colour_u8
from .text.tokens import CLIP_MAX_TOKENS, count_tokens, join_fragments, split_fragments

ANALYSIS_SIZE = 384  # long side of the subject crop the features are measured on
MIN_SIDE = 8

# Ranges of the recommendations (also the README table).
RANGES = {
    "depth_scale": (0.3, 1.0),
    "pose_scale": (0.3, 1.0),
    "denoise": (0.35, 0.75),
    "steps": (20, 40),
    "cfg": (5.0, 9.0),
    "control_end": (0.6, 1.0),
    "detail_scale": (0.3, 0.7),
}
# A picture with this little line art (and not mostly flat) is a photo: no detail ControlNet (it would copy photo texture).
PHOTO_FLAT_FRACTION = 0.7
PHOTO_LINE_ART = 0.03

REALISM_FRAGMENTS = [
    "photorealistic",
    "live-action film still",
    "real person",
    "natural skin texture",
    "detailed eyes",
    "realistic hair",
    "sharp focus",
    "35mm photograph",
    "high detail",
    "plain white studio background",
]
NEGATIVE_FRAGMENTS = [
    "cartoon", "anime", "drawing", "illustration", "painting", "sketch", "cel shading", "flat colors",
    "3d render", "cgi", "doll", "plastic skin", "lowres", "blurry", "jpeg artifacts", "deformed",
    "bad anatomy", "extra fingers", "missing fingers", "extra limbs", "watermark", "text", "signature",
]


@dataclass
class RecommendedParams:
    """Sampler settings recommended for one drawing (the ZREALISM_PARAMS node type carries this)."""

    depth_scale: float = 0.7  # depth ControlNet conditioning scale
    pose_scale: float = 0.7  # OpenPose ControlNet conditioning scale
    denoise: float = 0.55  # img2img strength
    steps: int = 25
    cfg: float = 7.0
    control_end: float = 0.8  # fraction of the steps during which the ControlNets act
    detail_scale: float = 0.0  # the optional detail ControlNet's scale (0 = off; used when a detail net is loaded)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


@dataclass
class Analysis:
    features: Dict[str, float]
    params: RecommendedParams
    positive: str
    negative: str
    report: str
    mask_source: str = "auto"
    positive_tokens: int = 0
    negative_tokens: int = 0
    dropped: List[str] = field(default_factory=list)

    def to_dict(self) -> Dict[str, Any]:
        return {
            "features": dict(self.features),
            "params": self.params.to_dict(),
            "positive": self.positive,
            "negative": self.negative,
            "positive_tokens": self.positive_tokens,
            "negative_tokens": self.negative_tokens,
            "mask_source": self.mask_source,
        }


def analyze(image: Any, mask: Any = None, *, subject: str = "") -> Analysis:
    """Features, recommended parameters, prompts and a readable report for one drawing.

    image: PIL or numpy (any of prep's formats). mask: optional H,W, 1 = character; without it the
    alpha channel or a flat-background detection is used, else the whole image.
    subject: the user's subject phrase (e.g. "a young woman with red hair"), put first in the prompt.
    """
    rgb, alpha = split_rgb_alpha(image, name="image")
    h, w = rgb.shape[:2]
    if h < MIN_SIDE or w < MIN_SIDE:
        raise InputError(f"image is {w}x{h}; it must be at least {MIN_SIDE}x{MIN_SIDE} pixels to analyse.")
    if alpha is not None:
        rgb = rgb * alpha[:, :, None] + (1.0 - alpha[:, :, None])  # judge the drawing as seen on white
    m = to_mask(mask, (h, w), name="mask") if mask is not None else None

    # Stage 1: at most 512 px on the long side (mask detection and the frame-level features).
    s1 = min(1.0, 512.0 / max(h, w))
    if s1 < 1.0:
        size1 = (max(1, round(w * s1)), max(1, round(h * s1)))
        rgb = cv2.resize(rgb, size1, interpolation=cv2.INTER_AREA)
        if m is not None:
            m = cv2.resize(m, size1, interpolation=cv2.INTER_AREA)
        if alpha is not None:
            alpha = cv2.resize(alpha, size1, interpolation=cv2.INTER_AREA)
    if m is not None:
        source = "mask"
    elif alpha is not None and float(alpha.min()) < 1.0 - 0.5 / 255.0:
        m, source = alpha, "alpha"
    else:
        bg = border_connected(near_colour_u8(rgb, border_reference_lab(rgb), 12.0))
        m, source = (~bg).astype(np.float32), "auto"
    subj = m > 0.5
    if not subj.any():
        if source == "mask":
            raise InputError("mask is empty (no pixel marks the character); pass a mask with 1 on the character, or none.")
        m, subj, source = np.ones_like(m), np.ones(m.shape, bool), "whole image"

    features = _measure(rgb, m, subj)
    params = recommend(features)
    positive, negative, dropped = suggest_prompts(features, subject)
    pos_n, neg_n = count_tokens(positive), count_tokens(negative)
    report = _report(features, params, positive, negative, pos_n, neg_n, source, dropped)
    return Analysis(features, params, positive, negative, report, source, pos_n, neg_n, dropped)


# ---------------------------------------------------------------- features

def _measure(rgb: np.ndarray, m: np.ndarray, subj: np.ndarray) -> Dict[str, float]:
    h, w = subj.shape
    ys, xs = np.nonzero(subj)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    bbox_aspect = (y1 - y0) / float(x1 - x0)
    area = float(m.mean())
    # Stage 2: the subject's box (plus a margin) resampled to the canonical size.
    pad = 3
    y0, y1, x0, x1 = max(0, y0 - pad), min(h, y1 + pad), max(0, x0 - pad), min(w, x1 + pad)
    crop, cm = rgb[y0:y1, x0:x1], m[y0:y1, x0:x1]
    s = ANALYSIS_SIZE / float(max(crop.shape[:2]))
    size = (max(1, round(crop.shape[1] * s)), max(1, round(crop.shape[0] * s)))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    crop = np.clip(cv2.resize(crop, size, interpolation=interp), 0.0, 1.0)
    cm = cv2.resize(cm, size, interpolation=interp)
    sub = (cm > 0.5).astype(np.uint8)
    n_sub = max(1, int(sub.sum()))
    # Interior: away from the silhouette, whose edge against the background is not drawing detail.
    interior = cv2.erode(sub, np.ones((5, 5), np.uint8)).astype(bool)
    if interior.sum() < 16:
        interior = sub.astype(bool)
    n_int = max(1, int(interior.sum()))

    u8 = cv2.convertScaleAbs(crop, alpha=255.0)
    gray_u8 = cv2.cvtColor(u8, cv2.COLOR_RGB2GRAY)
    gray = gray_u8.astype(np.float32) / 255.0

    edges = cv2.Canny(gray_u8, 40, 120, L2gradient=True) > 0
    edge_density = edges[interior].sum() / n_int

    # Line art: dark strokes thinner than ~7 px at the canonical size (black-hat = closing - image).
    blackhat = cv2.morphologyEx(gray_u8, cv2.MORPH_BLACKHAT, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7)))
    lines = (blackhat > 60) & (gray_u8 < 110) & (sub > 0)
    line_art_ratio = lines.sum() / n_sub

    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    grad = cv2.magnitude(gx, gy) / 4.0  # a full black-white step reads 1
    gradient_energy = float(grad[interior].mean())
    laplacian_energy = float(np.abs(cv2.Laplacian(gray, cv2.CV_32F, ksize=1))[interior].mean() / 4.0)

    # Colour flatness: local std of the luminance in 5x5 windows, and the palette size.
    mean = cv2.boxFilter(gray, -1, (5, 5))
    sq = cv2.boxFilter(gray * gray, -1, (5, 5))
    local_std = np.sqrt(np.maximum(sq - mean * mean, 0.0))
    local_variance = float(local_std[interior].mean())
    flat_fraction = float((local_std[interior] < 0.02).mean())
    q = (u8[sub > 0] >> 5).astype(np.int32)  # 8 levels per channel -> 512 bins
    counts = np.sort(np.bincount(q[:, 0] * 64 + q[:, 1] * 8 + q[:, 2], minlength=512))[::-1]
    palette_size = int(np.searchsorted(np.cumsum(counts), 0.95 * counts.sum()) + 1)

    hsv = cv2.cvtColor(crop, cv2.COLOR_RGB2HSV)  # float input: S in 0..1
    saturation = float(hsv[..., 1][sub > 0].mean())
    lab = cv2.cvtColor(crop, cv2.COLOR_RGB2Lab)
    lum = lab[..., 0][sub > 0] / 100.0
    brightness = float(lum.mean())
    contrast = float(lum.std())

    f = {
        "edge_density": float(edge_density),
        "line_art_ratio": float(line_art_ratio),
        "gradient_energy": gradient_energy,
        "laplacian_energy": laplacian_energy,
        "palette_size": float(palette_size),
        "local_variance": local_variance,
        "flat_fraction": flat_fraction,
        "saturation": saturation,
        "brightness": brightness,
        "contrast": contrast,
        "subject_area": area,
        "bbox_aspect": float(bbox_aspect),
    }
    f.update(_scores(f))
    return {k: round(float(v), 4) for k, v in f.items()}


def _clip01(x: float) -> float:
    return float(min(1.0, max(0.0, x)))


def _scores(f: Dict[str, float]) -> Dict[str, float]:
    """Normalised 0..1 summaries the mapping uses (each increasing in its features)."""
    e = _clip01(f["edge_density"] / 0.20)
    l = _clip01(f["line_art_ratio"] / 0.15)
    g = _clip01(f["gradient_energy"] / 0.15)
    t = _clip01(1.0 - f["flat_fraction"])
    p = _clip01((math.log2(max(f["palette_size"], 1.0)) - 2.0) / 6.0)  # 4 colours -> 0, 256 -> 1
    structure = 0.35 * e + 0.25 * l + 0.15 * g + 0.15 * t + 0.10 * p
    shading = 0.5 * t + 0.3 * g + 0.2 * p
    body = _clip01((f["bbox_aspect"] - 1.0) / 1.5)  # tall box ~ full figure: pose is informative
    return {"structure_score": structure, "shading_score": shading, "figure_score": body}


# ---------------------------------------------------------------- mapping

def _lerp(key: str, x: float) -> float:
    lo, hi = RANGES[key]
    return lo + (hi - lo) * _clip01(x)


def recommend(features: Dict[str, float]) -> RecommendedParams:
    """The documented mapping (README table). s = structure, sh = shading, b = figure score:

    depth_scale = 0.3 + 0.7 * (0.5 s + 0.5 sh)     more structure/shading -> stronger depth
    pose_scale  = 0.3 + 0.7 * (0.6 s + 0.4 b)      more structure, taller figure -> stronger pose
    denoise     = 0.75 - 0.40 * s                  more structure -> keep more (lower denoise)
    steps       = clip(ceil(15 / denoise), 20, 40) ~15 effective img2img steps at any denoise
    cfg         = 9 - 4 * s                        flat art needs the prompt to push realism
    control_end = 0.6 + 0.4 * s                    more structure -> control held longer
    detail_scale = 0.3 + 0.4 * l                   more line art -> a stronger detail net (l = line_art_ratio / 0.15);
                   0 for a photo (flat_fraction < 0.7 and line_art_ratio < 0.03: scikit-image photos 0.31-0.65 and 0.002-0.02, the sample 0.58 and 0.10)
    """
    s, sh, b = features["structure_score"], features["shading_score"], features["figure_score"]
    denoise = round(RANGES["denoise"][1] - 0.40 * _clip01(s), 3)
    steps = int(min(RANGES["steps"][1], max(RANGES["steps"][0], math.ceil(15.0 / denoise - 1e-9))))
    return RecommendedParams(
        depth_scale=round(_lerp("depth_scale", 0.5 * s + 0.5 * sh), 3),
        pose_scale=round(_lerp("pose_scale", 0.6 * s + 0.4 * b), 3),
        denoise=denoise,
        steps=steps,
        cfg=round(RANGES["cfg"][1] - 4.0 * _clip01(s), 2),
        control_end=round(_lerp("control_end", s), 3),
        detail_scale=recommend_detail_scale(features),
    )


def recommend_detail_scale(features: Dict[str, float]) -> float:
    """The detail ControlNet's scale for this picture (see recommend); 0.0 for a photo."""
    flat, lines = features.get("flat_fraction", 1.0), features.get("line_art_ratio", 0.0)
    if flat < PHOTO_FLAT_FRACTION and lines < PHOTO_LINE_ART:
        return 0.0
    return round(_lerp("detail_scale", lines / 0.15), 3)


# ---------------------------------------------------------------- prompts

def lighting_phrase(brightness: float, contrast: float) -> str:
    """Lighting words from the drawing's mean lightness and lightness spread (both 0..1)."""
    if brightness < 0.4:
        return "low-key moody lighting"
    if contrast > 0.3:
        return "dramatic contrast lighting"
    if brightness > 0.7 and contrast < 0.2:
        return "bright high-key lighting"
    return "soft even studio lighting"


def suggest_prompts(features: Dict[str, float], subject: str = "") -> Tuple[str, str, List[str]]:
    """(positive, negative, dropped fragments): the user's subject first, then the realism fragments
    and the lighting phrase; repeats removed; each prompt within CLIP's 77 tokens."""
    if not isinstance(subject, str):
        raise InputError(f"subject must be text; got {type(subject).__name__}.")
    user = split_fragments(subject)
    light = lighting_phrase(features["brightness"], features["contrast"])
    frags = user + REALISM_FRAGMENTS[:2] + [light] + REALISM_FRAGMENTS[2:]
    positive, dropped = join_fragments(frags, CLIP_MAX_TOKENS, required=len(user))
    negative, dropped_neg = join_fragments(NEGATIVE_FRAGMENTS, CLIP_MAX_TOKENS)
    return positive, negative, dropped + dropped_neg


# ---------------------------------------------------------------- report

def _report(f, p: RecommendedParams, positive, negative, pos_n, neg_n, source, dropped) -> str:
    lines = [
        f"Z-Realism analysis (mask: {source}; subject {f['subject_area'] * 100:.0f}% of the frame, "
        f"box {f['bbox_aspect']:.2f}:1 tall:wide)",
        f"  structure {f['structure_score']:.2f}  shading {f['shading_score']:.2f}  figure {f['figure_score']:.2f}  (0..1)",
        f"  edges {f['edge_density']:.3f}  line art {f['line_art_ratio']:.3f}  gradient {f['gradient_energy']:.3f}  "
        f"laplacian {f['laplacian_energy']:.3f}",
        f"  palette {f['palette_size']:.0f} colours  flat {f['flat_fraction'] * 100:.0f}%  local std {f['local_variance']:.3f}  "
        f"saturation {f['saturation']:.2f}  brightness {f['brightness']:.2f}  contrast {f['contrast']:.2f}",
        "Recommended:",
        f"  depth scale {p.depth_scale:.2f}  pose scale {p.pose_scale:.2f}  control end {p.control_end:.2f}",
        f"  denoise {p.denoise:.2f}  steps {p.steps}  cfg {p.cfg:.1f}  detail scale "
        + (f"{p.detail_scale:.2f} (with a detail ControlNet)" if p.detail_scale > 0 else "none (photo)"),
        "  (richer structure -> stronger, longer control and lower denoise; flat art -> more denoise, lighter depth)",
        preset_report(p.control_end),
        f"Positive ({pos_n}/{CLIP_MAX_TOKENS} tokens): {positive}",
        f"Negative ({neg_n}/{CLIP_MAX_TOKENS} tokens): {negative}",
    ]
    if dropped:
        lines.append("Left out to stay within 77 tokens: " + "; ".join(dropped))
    return "\n".join(lines)
