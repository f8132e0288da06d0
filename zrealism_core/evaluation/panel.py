"""The evaluator's picture: source | result | edge overlay | colour-difference heat map | score bars.

Drawn with Pillow only (no plotting library). Edge overlay: the source's |LoG| edges in red, the
result's in cyan, so matching edges look white and displaced ones show as red/cyan pairs. Heat map:
low-passed CIEDE2000 on the compared character region (black = 0, bright yellow = the "bad" anchor
or more; grey = not compared).
"""
from __future__ import annotations

from typing import Any, Dict, Optional

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..metrics.calibration import COLOR_DE_BAD

_BG = (24, 24, 28)
_FG = (235, 235, 235)
_DIM = (150, 150, 160)


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def _tile(img: np.ndarray, height: int) -> np.ndarray:
    h, w = img.shape[:2]
    width = max(1, int(round(w * height / float(h))))
    interp = cv2.INTER_AREA if h > height else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(img, dtype=np.float32), (width, height), interpolation=interp)


def _norm(m: np.ndarray, region: Optional[np.ndarray]) -> np.ndarray:
    vals = m[region] if region is not None and region.any() else m
    hi = float(np.percentile(vals, 99)) if vals.size else 0.0
    return np.clip(m / hi, 0.0, 1.0) if hi > 1e-9 else np.zeros_like(m)


def edge_overlay(result: np.ndarray, source_edges: np.ndarray, result_edges: np.ndarray, region: Optional[np.ndarray] = None) -> np.ndarray:
    """Dimmed result with source edges in red and result edges in cyan (float32 H,W,3)."""
    gray = result.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    base = (0.25 * gray)[..., None].repeat(3, axis=2)
    s, r = _norm(source_edges, region), _norm(result_edges, region)
    out = base.copy()
    out[..., 0] = np.maximum(base[..., 0], s)
    out[..., 1] = np.maximum(base[..., 1], r)
    out[..., 2] = np.maximum(base[..., 2], r)
    return np.clip(out, 0.0, 1.0)


def heat_map(delta_e: np.ndarray, region: Optional[np.ndarray], shape: tuple) -> np.ndarray:
    """Inferno-coloured CIEDE2000 map (0..COLOR_DE_BAD) at `shape`; grey where not compared."""
    de = cv2.resize(delta_e.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    u8 = (np.clip(de / COLOR_DE_BAD, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    rgb = cv2.cvtColor(cv2.applyColorMap(u8, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
    if region is not None and region.shape[:2] == tuple(shape[:2]) and region.any():
        rgb[~region] = 0.35
    return rgb


def _bar_colour(v: float) -> tuple:
    if v >= 0.75:
        return (76, 175, 80)
    if v >= 0.5:
        return (255, 179, 0)
    return (229, 57, 53)


def _bars(scores: Dict[str, float], gating: list, width: int, height: int) -> Image.Image:
    img = Image.new("RGB", (width, height), _BG)
    d = ImageDraw.Draw(img)
    n = max(len(scores), 1)
    row = height / (n + 1.0)
    fsize = int(max(10, min(18, row * 0.45)))
    font = _font(fsize)
    label_w = int(width * 0.42)
    bar_x0, bar_x1 = label_w, width - int(width * 0.18)
    for i, (name, v) in enumerate(scores.items()):
        y = int(row * (i + 0.5))
        label = name + ("" if name in gating or name == "overall" else " (info)")
        d.text((6, y + row * 0.15), label, fill=_FG if name != "overall" else (255, 255, 255), font=font)
        h = int(row * 0.6)
        d.rectangle([bar_x0, y + int(row * 0.1), bar_x1, y + int(row * 0.1) + h], outline=(70, 70, 80), fill=(40, 40, 46))
        x = bar_x0 + int((bar_x1 - bar_x0) * float(v))
        if x > bar_x0:
            d.rectangle([bar_x0, y + int(row * 0.1), x, y + int(row * 0.1) + h], fill=_bar_colour(float(v)))
        d.text((bar_x1 + 6, y + row * 0.15), f"{float(v):.2f}", fill=_FG, font=font)
    d.text((6, int(row * (n + 0.35))), "overall = geometric mean of the gated scores", fill=_DIM, font=_font(max(9, fsize - 4)))
    return img


def render_panel(source: Any, result: Any, report: Any, *, height: int = 256) -> np.ndarray:
    """HxWx3 float32 panel of one evaluation (for a clip: its worst frame, per the report)."""
    art = dict(getattr(report, "artifacts", {}) or {})
    if "source" not in art:  # a report without maps (e.g. rebuilt from JSON): recompute them
        from .score import evaluate

        art = evaluate(source, result).artifacts
    src, res = art["source"], art["result"]
    region = art.get("region")
    overlay = edge_overlay(res, art["source_edges"], art["result_edges"], art.get("region"))
    heat = heat_map(art["delta_e"], region, src.shape)
    images = [src, res, overlay, heat]
    frame = art.get("frame_index")
    titles = ["source", "result" if frame is None else f"result (frame {frame}, worst)",
              "edges: source red / result cyan", f"colour dE00 (0..{COLOR_DE_BAD:g}+)"]
    if "control_source_edges" in art:  # control fidelity: the line art the ControlNets were asked to keep
        from ..metrics.control_fidelity import edge_overlay as control_overlay

        edge_f = (getattr(report, "control", None) or {}).get("edge_f")
        images.insert(3, control_overlay(res, art["control_source_edges"], art["control_result_edges"]))
        titles.insert(3, "control edges" + (f" (edge_f {edge_f:.2f})" if edge_f is not None else ""))
    tiles = [_tile(x, height) for x in images]
    bar_w = max(260, int(height * 1.15))
    header = max(18, height // 12)
    footer = max(16, height // 14)
    width = sum(t.shape[1] for t in tiles) + bar_w + 6 * 5
    canvas = Image.new("RGB", (width, height + header + footer), _BG)
    draw = ImageDraw.Draw(canvas)
    font = _font(max(10, header - 6))
    x = 6
    for t, title in zip(tiles, titles):
        canvas.paste(Image.fromarray((np.clip(t, 0, 1) * 255 + 0.5).astype(np.uint8)), (x, header))
        draw.text((x + 2, 2), title, fill=_FG, font=font)
        x += t.shape[1] + 6
    scores = dict(report.scores)
    canvas.paste(_bars(scores, list(report.gating), bar_w, height), (x, header))
    draw.text((x + 2, 2), "scores (1 = perfect)", fill=_FG, font=font)
    notes = list(getattr(report, "notes", []))
    foot = ("note: " + notes[0] + (f"  (+{len(notes) - 1} more in the JSON report)" if len(notes) > 1 else "")) if notes else ""
    if foot:
        draw.text((6, height + header + 1), foot[:200], fill=_DIM, font=_font(max(9, footer - 5)))
    return np.asarray(canvas, dtype=np.float32) / 255.0
