"""White-background preparation: cut the character out and put it on pure white.

The subject mask comes from, in order: an explicit mask; the image's alpha channel (if it has any
transparency); automatic detection of a flat background (colours within `tolerance` LAB units of the
dominant border colour AND connected to the border, so white eyes or shirts inside the character
stay subject), optionally refined by GrabCut for soft backgrounds.

Anti-aliased edges are kept: an edge pixel is a mix C = a*F + (1-a)*B of the character colour F and
the old background B. We estimate a per pixel from the colours on both sides and recover
F = (C - (1-a)*B) / a, then composite a*F + (1-a)*white, so no dark or coloured halo of the old
background survives (colour decontamination).

Handling of unusual input (documented, tested): grayscale -> RGB; 16-bit and palette images ->
float 0..1 (palette transparency kept as alpha); RGBA -> alpha used as the mask; NaN/inf, empty,
smaller than 8x8, a mask of another size, an empty mask, a fully transparent image, or an image
that is all background -> InputError with the fix in the message.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Tuple

import cv2
import numpy as np

from .imaging.colour import rgb_to_lab_fast
from .errors import InputError
from .imaging.images import split_rgb_alpha, to_mask
from .imaging.masks import border_connected, border_pixels, border_reference_lab, near_colour_u8

MIN_SIDE = 8  # smaller images carry no usable character (and no border to read a background from)

DEFAULTS = {
    "tolerance": 12.0,  # LAB (CIE76) distance to the background colour still counted as background
    "grabcut": False,  # refine the automatic mask with GrabCut (soft/gradient backgrounds)
    "feather": 0.0,  # Gaussian blur of the mask edge, sigma in pixels
    "grow": 0,  # dilate (>0) or erode (<0) the mask by this many pixels
    "long_side": 0,  # resize so the long side is this (rounded to a multiple of 8); 0 = no resize
    "decontaminate": True,  # remove the old background colour from edge pixels
}


@dataclass
class PrepResult:
    """image: H,W,3 float32 on pure white; mask: H,W float32, 1 = character."""

    image: np.ndarray
    mask: np.ndarray
    source: str = "auto"  # where the mask came from: "mask", "alpha", "auto" or "auto+grabcut"
    background: Tuple[float, float, float] = (1.0, 1.0, 1.0)  # the colour that was removed (RGB 0..1)
    box: Tuple[int, int, int, int] = (0, 0, 0, 0)  # x, y, w, h of the picture inside the output
    scale: float = 1.0  # resize factor applied (1.0 = none)
    options: dict = field(default_factory=dict)


def prepare_white_background(image: Any, mask: Any = None, **options: Any) -> PrepResult:
    """Cut the character out of `image` and composite it onto pure white.

    image: PIL image or numpy array (H,W / H,W,3 / H,W,4; uint8, uint16 or float 0..1).
    mask: optional H,W (1 = character); overrides alpha and automatic detection.
    options: tolerance (LAB units, default 12), grabcut (bool), feather (px), grow (px, negative
    erodes), long_side (0 = keep size; else resize to that long side and pad with white so both
    sides are multiples of 8), decontaminate (bool, default True).
    """
    opts = _check_options(options)
    rgb, alpha = split_rgb_alpha(image, name="image")
    h, w = rgb.shape[:2]
    if h < MIN_SIDE or w < MIN_SIDE:
        raise InputError(f"image is {w}x{h}; it must be at least {MIN_SIDE}x{MIN_SIDE} pixels to hold a character.")

    background = np.ones(3, np.float32)
    edge = None  # sparse colour overrides for edge pixels (automatic path)
    if mask is not None:
        a = to_mask(mask, (h, w), name="mask")
        if float(a.max()) <= 0.0:
            raise InputError("mask is empty (no pixel marks the character); pass a mask with 1 on the character, or none for automatic detection.")
        if alpha is not None:
            a = a * alpha  # transparent pixels stay background whatever the mask says
            fg = rgb
        else:
            background = _background_outside(rgb, a)
            fg = _decontaminate(rgb, a, background) if opts["decontaminate"] else rgb
        source = "mask"
    elif alpha is not None and float(alpha.min()) < 1.0 - 0.5 / 255.0:
        if float(alpha.max()) <= 0.0:
            raise InputError("image is fully transparent; there is no character to prepare.")
        a, fg, source = alpha, rgb, "alpha"  # straight alpha: the colours are already the character's
    else:
        a, edge, background = _auto_alpha(rgb, opts["tolerance"], opts["grabcut"], opts["decontaminate"])
        fg = rgb
        source = "auto+grabcut" if opts["grabcut"] else "auto"

    partial = None
    if edge is not None and not (opts["grow"] or opts["feather"]):
        partial = edge[0][a.reshape(-1)[edge[0]] < 1.0]  # only edge pixels can be partly covered
    a = _shape_mask(a, opts["grow"], opts["feather"])
    out = _over_white(fg, a, edge, partial)
    result = PrepResult(out, a.astype(np.float32, copy=False), source, tuple(float(v) for v in background), (0, 0, w, h), 1.0, opts)
    if opts["long_side"]:
        result = _resize_pad(result, opts["long_side"])
    return result


# ---------------------------------------------------------------- options

def _check_options(options: dict) -> dict:
    unknown = set(options) - set(DEFAULTS)
    if unknown:
        raise InputError(f"unknown prep option(s) {sorted(unknown)}; valid: {sorted(DEFAULTS)}.")
    opts = {**DEFAULTS, **options}
    checks = {
        "tolerance": (0.0, 100.0),
        "feather": (0.0, 64.0),
        "grow": (-64, 64),
        "long_side": (0, 8192),
    }
    for key, (lo, hi) in checks.items():
        v = opts[key]
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not np.isfinite(v) or not lo <= v <= hi:
            raise InputError(f"prep option {key}={v!r} must be a number from {lo} to {hi}.")
    opts["grow"] = int(round(opts["grow"]))
    opts["long_side"] = int(opts["long_side"])
    if 0 < opts["long_side"] < 64:
        raise InputError(f"long_side={opts['long_side']} is too small; use 0 (no resize) or at least 64.")
    opts["grabcut"] = bool(opts["grabcut"])
    opts["decontaminate"] = bool(opts["decontaminate"])
    return opts


# ---------------------------------------------------------------- automatic mask

def _auto_alpha(rgb: np.ndarray, tolerance: float, grabcut: bool, decontaminate: bool):
    """(soft alpha, edge colours (flat indices, RGB) or None, background colour) for a flat background."""
    ref = border_reference_lab(rgb)
    bg = border_connected(near_colour_u8(rgb, ref, tolerance))
    if bg.all():
        raise InputError(
            f"no character found: the whole image is within tolerance {tolerance:g} of the background colour; "
            "lower the tolerance, or pass a mask / an image with transparency."
        )
    border_rgb = border_pixels(rgb)[border_pixels(bg[:, :, None]).ravel()]
    background = border_rgb.mean(axis=0) if len(border_rgb) else rgb.reshape(-1, 3).mean(axis=0)
    subject = ~bg
    if grabcut:
        # Soft background: model it as a smooth colour field instead of one colour, then let
        # GrabCut settle the boundary.
        subject = ~_smooth_background(rgb, bg, tolerance)
        subject = _grabcut_refine(rgb, subject)
        if not subject.any():
            raise InputError("GrabCut found no character; turn grabcut off or raise the tolerance.")
    alpha, edge = _edge_alpha(rgb, subject, background.astype(np.float32), decontaminate)
    return alpha, edge, background.astype(np.float32)


def _neighbour_mean(rgb: np.ndarray, weight: np.ndarray, ys: np.ndarray, xs: np.ndarray, radii=(1, 2)):
    """For each pixel (ys, xs): mean colour of its neighbours with weight 1 (uint8 H,W) in a
    (2r+1)^2 window, trying the radii in order. Returns (means (N,3), found (N,) bool)."""
    h, w = weight.shape
    flat_rgb, flat_w = rgb.reshape(-1, 3), weight.reshape(-1)
    mean = np.zeros((len(ys), 3), np.float32)
    found = np.zeros(len(ys), bool)
    for r in radii:
        idx = np.flatnonzero(~found)
        if len(idx) == 0:
            break
        ty, tx = ys[idx], xs[idx]
        acc = np.zeros((len(idx), 3), np.float32)
        cnt = np.zeros(len(idx), np.float32)
        rows = [np.clip(ty + dy, 0, h - 1) * w for dy in range(-r, r + 1)]
        cols = [np.clip(tx + dx, 0, w - 1) for dx in range(-r, r + 1)]
        for row in rows:
            for col in cols:
                k = row + col  # flat indices: 1-D gathers are the cheap kind
                m = flat_w[k]
                sel = m.astype(bool)
                acc[sel] += flat_rgb[k[sel]]
                cnt += m
        ok = cnt > 0
        mean[idx[ok]] = acc[ok] / cnt[ok, None]
        found[idx[ok]] = True
    return mean, found


def _edge_alpha(rgb: np.ndarray, subject: np.ndarray, background: np.ndarray, decontaminate: bool):
    """Soft alpha for a binary subject on a flat background, plus the edge pixels' new colours.

    Only the 1-pixel edge layer of the subject (pixels touching the background) can be mixed.
    There C = a*F + (1-a)*B with F = mean of the neighbouring interior pixels and B = mean of the
    neighbouring background pixels; a is the projection of C-B on F-B (least squares), and the
    edge colour becomes F = (C - (1-a)B)/a, clipped. Returns (alpha H,W, (flat indices, colours))."""
    sub_u8 = subject.astype(np.uint8)
    bg_u8 = 1 - sub_u8
    edge = sub_u8 & cv2.dilate(bg_u8, np.ones((3, 3), np.uint8))
    alpha = sub_u8.astype(np.float32)
    flat = np.flatnonzero(edge)
    if len(flat) == 0:
        return alpha, None
    w = subject.shape[1]
    ys, xs = flat // w, flat % w
    f_est, f_ok = _neighbour_mean(rgb, sub_u8 & (1 - edge), ys, xs, (1, 2))
    b_est, b_ok = _neighbour_mean(rgb, bg_u8, ys, xs, (1,))
    b_est[~b_ok] = background
    c = rgb.reshape(-1, 3)[flat]
    fb = f_est - b_est
    den = (fb * fb).sum(axis=1)
    a = np.clip(((c - b_est) * fb).sum(axis=1) / np.maximum(den, 1e-12), 0.0, 1.0)
    # Trust the estimate only where F was found and differs clearly from the background
    # (0.02 in squared RGB ~ 14 levels of 255); elsewhere keep the pixel as it is.
    a = np.where(f_ok & (den > 0.02), a, 1.0).astype(np.float32)
    alpha.reshape(-1)[flat] = a
    if not decontaminate:
        return alpha, (flat, c)
    av = np.maximum(a, 1e-3)[:, None]
    return alpha, (flat, np.clip((c - (1.0 - av) * b_est) / av, 0.0, 1.0).astype(np.float32))


def _smooth_background(rgb: np.ndarray, seed_bg: np.ndarray, tolerance: float, rounds: int = 3) -> np.ndarray:
    """Background for gradients and vignettes: fit a quadratic colour field (LAB, per channel, in x
    and y) to the background found so far, then take the border-connected pixels within
    `tolerance` of that field; repeat. Fitted at <= 256 px, applied at full size."""
    h, w = seed_bg.shape
    s = min(1.0, 256.0 / max(h, w))
    sw, sh = max(1, round(w * s)), max(1, round(h * s))
    small_lab = rgb_to_lab_fast(cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA))
    seed = cv2.resize(seed_bg.astype(np.uint8), (sw, sh), interpolation=cv2.INTER_NEAREST).astype(bool)
    yy, xx = np.mgrid[0:sh, 0:sw].astype(np.float32)
    xx, yy = xx / max(sw - 1, 1) * 2 - 1, yy / max(sh - 1, 1) * 2 - 1
    basis = np.stack([np.ones_like(xx), xx, yy, xx * xx, xx * yy, yy * yy], axis=-1)
    model = None
    for _ in range(rounds):
        if seed.sum() < 12:
            break
        coef, *_ = np.linalg.lstsq(basis[seed], small_lab[seed], rcond=None)
        model = (basis @ coef).astype(np.float32)
        near = ((small_lab - model) ** 2).sum(axis=-1) <= float(tolerance) ** 2
        seed = border_connected(near)
    if model is None:
        return seed_bg
    full_model = cv2.resize(model, (w, h), interpolation=cv2.INTER_LINEAR)
    d2 = ((rgb_to_lab_fast(rgb) - full_model) ** 2).sum(axis=-1)
    return border_connected(d2 <= float(tolerance) ** 2)


def _grabcut_refine(rgb: np.ndarray, subject: np.ndarray) -> np.ndarray:
    """GrabCut seeded by the flood-fill mask, on a downscaled copy (GrabCut is slow at full size).

    It can only move the boundary within a band of the seed: pixels well inside stay subject and
    pixels far outside stay background."""
    h, w = subject.shape
    s = min(1.0, 384.0 / max(h, w))
    small = cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    sub = cv2.resize(subject.astype(np.uint8), small.shape[1::-1], interpolation=cv2.INTER_NEAREST)
    if sub.min() == sub.max():
        return subject
    k = np.ones((5, 5), np.uint8)
    gc = np.full(sub.shape, cv2.GC_PR_BGD, np.uint8)
    gc[sub == 1] = cv2.GC_PR_FGD
    gc[cv2.erode(sub, k, iterations=2) == 1] = cv2.GC_FGD
    gc[cv2.dilate(sub, k, iterations=2) == 0] = cv2.GC_BGD
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    u8 = cv2.convertScaleAbs(small, alpha=255.0)
    cv2.grabCut(u8, gc, None, bgd, fgd, 3, cv2.GC_INIT_WITH_MASK)
    fg_small = ((gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)).astype(np.float32)
    fg = cv2.resize(fg_small, (w, h), interpolation=cv2.INTER_LINEAR) > 0.5
    # Keep the full-resolution detail of the seed where GrabCut agrees about the region.
    band = max(1, int(round(2 / s)))
    kb = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))
    fg_u8 = fg.astype(np.uint8)
    core = cv2.erode(fg_u8, kb).astype(bool)
    reach = cv2.dilate(fg_u8, kb).astype(bool)
    return (subject | core) & reach


# ---------------------------------------------------------------- compositing

def _background_outside(rgb: np.ndarray, a: np.ndarray) -> np.ndarray:
    """The old background colour under an explicit mask: mean of the clearly-outside pixels."""
    outside = a < 0.02
    if not outside.any():
        return np.ones(3, np.float32)
    step = max(1, int(np.sqrt(outside.sum() / 20000)))  # a subsample is plenty for a mean
    return rgb[::step, ::step][outside[::step, ::step]].mean(axis=0).astype(np.float32)


def _decontaminate(rgb: np.ndarray, a: np.ndarray, background: np.ndarray) -> np.ndarray:
    """F = (C - (1-a)B) / a on partially covered pixels, clipped to 0..1; other pixels unchanged.

    B is the mean of the clearly-outside pixels (a < 0.02) within 2 pixels, so gradients behind the
    edge are handled; `background` (3,) serves where there are none (wide, feathered fringes)."""
    fringe = np.flatnonzero((a > 0.0) & (a < 1.0))
    if fringe.size == 0:
        return rgb
    out = rgb.copy()
    c = rgb.reshape(-1, 3)[fringe]
    b = np.broadcast_to(background, c.shape).copy()
    if fringe.size <= a.size // 4:
        w = a.shape[1]
        local, ok = _neighbour_mean(rgb, (a < 0.02).view(np.uint8), fringe // w, fringe % w, (2,))
        b[ok] = local[ok]
    av = a.reshape(-1)[fringe][:, None]
    out.reshape(-1, 3)[fringe] = np.clip((c - (1.0 - av) * b) / np.maximum(av, 1e-3), 0.0, 1.0)
    return out


def _shape_mask(a: np.ndarray, grow: int, feather: float) -> np.ndarray:
    if grow:
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(grow) + 1, 2 * abs(grow) + 1))
        a = cv2.dilate(a, k) if grow > 0 else cv2.erode(a, k)
    if feather > 0:
        a = cv2.GaussianBlur(a, (0, 0), float(feather), borderType=cv2.BORDER_REPLICATE)
    if grow or feather:
        a = np.clip(a, 0.0, 1.0)
    return a.astype(np.float32, copy=False)


def _over_white(fg: np.ndarray, a: np.ndarray, edge=None, partial=None) -> np.ndarray:
    """a*F + (1-a)*white, where F is `fg` with the `edge` pixels (flat indices, colours) replaced.

    Usually only a thin edge is partly covered: then white + a masked copy of the solid pixels +
    a per-pixel formula on the edge beats three passes over the whole image. `partial`: the flat
    indices of the pixels with 0 < a < 1, when the caller knows them."""
    part = np.flatnonzero((a > 0.0) & (a < 1.0)) if partial is None else partial
    if part.size > a.size // 8:  # heavily feathered: the plain formula is cheaper
        if edge is not None:
            fg = fg.copy()
            fg.reshape(-1, 3)[edge[0]] = edge[1]
        out = 1.0 - fg
        out *= a[:, :, None]
        np.subtract(1.0, out, out=out)
        return out.astype(np.float32, copy=False)
    out = np.ones(fg.shape, np.float32)
    cv2.copyTo(fg, (a >= 1.0).view(np.uint8), out)
    flat_out = out.reshape(-1, 3)
    if edge is not None:
        idx, colours = edge
        full = a.reshape(-1)[idx] >= 1.0
        flat_out[idx[full]] = colours[full]  # solid edge pixels: their (cleaned) colour
    if part.size:
        colours = fg.reshape(-1, 3)[part]
        if edge is not None:
            # edge indices are sorted (flatnonzero): find which partial pixels have a new colour
            pos = np.searchsorted(edge[0], part)
            pos = np.minimum(pos, len(edge[0]) - 1)
            hit = edge[0][pos] == part
            colours[hit] = edge[1][pos[hit]]
        av = a.reshape(-1)[part][:, None]
        flat_out[part] = 1.0 - av * (1.0 - colours)
    return out


def _resize_pad(result: PrepResult, long_side: int) -> PrepResult:
    """Resize so the long side is `long_side` (a multiple of 8) and pad the short side with white
    (mask 0) up to the next multiple of 8, centred. The aspect ratio is kept."""
    target = max(8, int(round(long_side / 8.0)) * 8)
    h, w = result.mask.shape
    s = target / float(max(h, w))
    nw, nh = max(1, int(round(w * s))), max(1, int(round(h * s)))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
    img = np.clip(cv2.resize(result.image, (nw, nh), interpolation=interp), 0.0, 1.0)
    msk = np.clip(cv2.resize(result.mask, (nw, nh), interpolation=interp), 0.0, 1.0)
    ow, oh = -(-nw // 8) * 8, -(-nh // 8) * 8
    x0, y0 = (ow - nw) // 2, (oh - nh) // 2
    out = np.ones((oh, ow, 3), np.float32)
    out_m = np.zeros((oh, ow), np.float32)
    out[y0:y0 + nh, x0:x0 + nw] = img
    out_m[y0:y0 + nh, x0:x0 + nw] = msk
    # Exact white wherever the resampled mask says background (cubic ringing must not tint it).
    out[out_m <= 0.0] = 1.0
    return PrepResult(out, out_m, result.source, result.background, (x0, y0, nw, nh), s, result.options)
