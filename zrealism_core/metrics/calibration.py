"""Every calibration anchor of the fidelity scores, in one place, each with its reason and its data.

A distance d becomes a score in 0..1 by a clipped linear ramp between two anchors
(`ramp(d, good, bad)`: d <= good -> 1, d >= bad -> 0) or by an exponential `exp(-d / tau)`.

Where the data came from:
* "proxy": the anime/photo proxy of ../shared/docs/metrics.md: five scikit-image photos
  (astronaut, chelsea, coffee, rocket, motorcycle), centre-cropped to 512x512, cartoonised
  (6x bilateral, k-means k=8, adaptive-threshold line art). Source = cartoon, output = photo
  (good), negatives = shifted / flipped / other photo / hue-rotated / grayscale.
* "nss": our own runs of texture.py on 512x512 crops of the photographs that ship with
  scikit-image (zrealism_core/testing/photos.py: both sides >= 512 -> centre crop at the photo's own
  resolution; smaller -> bicubic upscale of the short side to 512, then the centre crop), conditions
  photo / blur (Gaussian sigma 2) / cartoon (bilateral filter, then k-means to 8 colours) /
  "plastic" (4x bilateral 9, 0.3, 75) / JPEG q30 / blur sigma 1. Table: python -m benchmarks.texture_table.
  Which photos were used for what (texture realism; the roles are disjoint, tests check it):
  - pristine model fit (nss_model.py): scikit-image astronaut, brick, camera, chelsea, grass, gravel,
    rocket (texture.PRISTINE_IMAGES; at their own resolution, short side up to 512);
  - anchor choice (every TEXTURE_* value below): scikit-image coffee, coins, clock
    (TEXTURE_ANCHOR_PHOTOS) and the degraded versions of the fit and anchor photos;
  - held out, used by no fit and no anchor (TEXTURE_HELD_OUT_PHOTOS): scikit-image
    hubble_deep_field, immunohistochemistry, microaneurysms, moon, motorcycle_left / _right (the
    stereo_motorcycle pair), page, retina, text, and matplotlib's grace_hopper.jpg. Held-out photo
    scores 0.67-1.0 (median 0.90) except the out-of-distribution four below; their blur 0-0.12,
    cartoon 0.
  - out of distribution (TEXTURE_OOD_PHOTOS, all held out): photos whose 512 crop is scaled up 2x or
    more from their own pixels (photos.effective_upscale), so that the finest of the two NSS scales
    holds no scene detail: microaneurysms (102 px, 5.0x), text (172 px, 3.0x), page (191 px, 2.7x) and
    moon (it ships as a 2x pixel-replicated 256x256 image: 100 % of its aligned 2x2 blocks are
    constant, 0-30 % in the other photos). Their finest-octave ratio is in the blur range
    (microaneurysms 0.19, text 0.28, page 0.34; blur sigma 1 of in-distribution photos 0.30-0.58) and
    they score 0.007 / 0.20 / 0.31 / 0.55 at 512; at their own resolution (moon: its 256x256 original)
    0.80 / 0.88 / 0.99 / 0.91 (python -m benchmarks.texture_table --detail prints both).
    The ranking photo > blur and photo > cartoon holds on them too; the 0.5 floor does not apply.
  Fit + anchor medians (NIQE-style distance / score): photo 3.3 / 1.0 (anchor photos 6.2 / 0.80),
  blur 8.4 / 0.05, cartoon 9.1 / 0, plastic 7.4 / 0.61, JPEG q30 5.9 / 0.84, blur sigma 1 7.6 / 0.39.
  Before issue 22 (plain sample covariance, anchors 5 / 19 from coffee alone, no flat or detail
  guard) 5 of these 20 photos scored below their own cartoon: hubble_deep_field 0.58 vs 0.63,
  microaneurysms 0.009 vs 0.16, moon 0.28 vs 0.42, page 0.47 vs 0.50, text 0.20 vs 0.48.
  Not in any test (the file ships with ComfyUI's frontend, not with our test extra): the anime
  drawing comfyui_frontend_package/static/assets/images/sad_girl.png, on white, its alpha as the
  mask, scores 0.42 (0.85 before issue 22; flat fraction 0.38): a clean digital drawing with soft
  shading is still the weak spot of this score.
* "temporal-synth": 16-frame 512x512 clips of a panning photo (1.5 px/frame) with added global
  flicker or texture boiling, DIS optical flow (see temporal.py and ../shared/docs/metrics.md §4).

All anchors are provisional (the proxy is synthetic); recalibrate them here, and only here,
once real pipeline outputs (good vs hue-rotated / shuffled) are available.
"""
from __future__ import annotations

import math

# ---------------------------------------------------------------- geometry / scale
# Metric scales are defined at 512 px (the SD1.5 working size) and scaled with min(H, W) / 512,
# so a 1024 px pair is judged like its 512 px version.
REFERENCE_SIZE = 512

# Per-pixel metrics drop a thin band inside the silhouette: anti-aliased halo pixels mix
# character and white background and would count as colour/edge errors. 2-8 px suggested by
# the notes; 3 px at 512 keeps thin limbs.
MASK_ERODE_PX = 3.0

# ---------------------------------------------------------------- silhouette (DAVIS J&F)
# Boundary tolerance as a fraction of the image diagonal: DAVIS `db_eval_boundary(bound_th=0.008)`
# (Perazzi et al. 2016), i.e. ceil(0.008 * 724) = 6 px at 512x512.
BOUNDARY_TOLERANCE_FRACTION = 0.008

# ---------------------------------------------------------------- edge
# Gaussian sigma of the |LoG| maps at 512 px. proxy: sigma 1 -> POS 0.53 (raw Laplacian
# correlates poorly across the style gap), sigma 2 -> 0.71, sigma 3 -> 0.76; sigma 3 was the
# first scale at which every same-content pair beat every shifted/flipped/other pair.
EDGE_LOG_SIGMA = 3.0
# Gradient-magnitude correlation (diagnostic only): sigma 2 separated the proxy as well.
EDGE_GRAD_SIGMA = 2.0
# Correlations r in [-1, 1] map as max(0, r): an anti-correlated or unrelated edge map has no
# fidelity at all; proxy "other image" r = -0.04 -> 0.

# ---------------------------------------------------------------- colour
# S-CIELAB-style low-pass before CIEDE2000 (Zhang & Wandell 1996): Gaussian sigma 3 px at 512.
COLOR_LOWPASS_SIGMA = 3.0
# Mean low-passed CIEDE2000 on the character, ramp anchors. proxy: good outputs 7.2 (median
# of POS ~5-7), hue +30 deg ~10, grayscale 15.5, other image 31, hue +60 deg 26.3.
# good = 5 (below most good proxy outputs), bad = 25 (between hue +60 deg and other image).
# Re-checked with this code on 4 proxy images (astronaut, chelsea, coffee, rocket): POS 3.8-9.0,
# shift 16 px 5.9-16.9, hue +30 11.5-15.2, grayscale 12.2-21.5, hue +60 17.2-29.3, other 26-38;
# |LoG| r: POS 0.65-0.85, shift 16 px 0.17-0.43, other image -0.02-0.08.
COLOR_DE_GOOD = 5.0
COLOR_DE_BAD = 25.0
# Colour is computed at this working size (min side): the low-pass removes everything finer
# (sigma 3 px at 512 is 1.1 px at 192; the area downsample adds only ~0.8 px at 512 scale, total
# sigma ~3.1), and CIEDE2000 + 2 LAB conversions cost ~7x less than at 512^2.
COLOR_WORK_SIZE = 192

# ---------------------------------------------------------------- palette
# Dominant colours: k-means in LAB, k = 6 (hair / skin / eyes / 2-3 outfit colours), on a 128^2
# downsample (full-res k-means ~0.9 s, 128^2 ~60 ms in the notes).
PALETTE_K = 6
PALETTE_WORK_SIZE = 128
# Weighted Hungarian-matched CIEDE2000 between palettes. proxy: POS 7.3, shift 8.3, other
# image 16.9, hue +60 deg 27.1, grayscale 15.6. good = 3, bad = 25.
PALETTE_DE_GOOD = 3.0
PALETTE_DE_BAD = 25.0

# ---------------------------------------------------------------- colour moments (diagnostic)
# Stricker & Orengo distance with unit weights; exp(-d / 50). proxy: POS 29 -> 0.56,
# other/hue/grayscale 86-109 -> 0.11-0.18. Diagnostic only: POS and NEG overlap per image.
MOMENTS_TAU = 50.0

# ---------------------------------------------------------------- texture realism (NIQE-style NSS)
# score = ramp(NSS distance) x textured fraction x flat guard x detail guard x blur guard.
# Photos used for each purpose: see "nss" above; every value here comes from the fit and anchor
# photos (and their degraded versions), none from a held-out photo.
TEXTURE_ANCHOR_PHOTOS = ("coffee", "coins", "clock")
TEXTURE_HELD_OUT_PHOTOS = ("grace_hopper", "hubble_deep_field", "immunohistochemistry", "microaneurysms",
                           "moon", "motorcycle_left", "motorcycle_right", "page", "retina", "text")
TEXTURE_OOD_PHOTOS = ("microaneurysms", "moon", "page", "text")
# NIQE-style distance between the MVG of the BRISQUE features of the result's patches and the
# MVG of pristine photos (metrics/nss_model.py, covariance Ledoit-Wolf shrunk). good = 4.2: the
# anchor photo coffee (the unseen photo of the old calibration), coins 6.2, clock 7.3 -> 0.80 / 0.70.
# bad = 14.5: the farthest blurred fit/anchor photo (gravel; blurred median 8.4, cartoon 9.1): the
# guards below separate blur and cartoon, this ramp grades everything else (JPEG, noise, plastic).
TEXTURE_DIST_GOOD = 4.2
TEXTURE_DIST_BAD = 14.5
# Patch side at 512 px (NIQE uses 96 px patches); smaller images use smaller patches.
TEXTURE_PATCH = 96
# A patch whose mean local (7x7 Gaussian) std is below this many grey levels (0..255) carries no
# texture at all: a flat anime fill is ~0, while the smoothest real photo patches we measured
# (JPEG sky of skimage "rocket") are 0.45-0.75. The score is multiplied by the textured
# fraction, so flat fills cannot look "natural" by being left out of the fit.
TEXTURE_FLAT_STD = 0.3
# Flat guard (issue 22: what a cartoon loses and a smooth photo keeps). A pixel is on a plateau when
# its 3x3 neighbourhood spans less than one 8-bit code value: sensor noise and fine gradients move
# a photo's pixels, a cartoon's fills are exactly flat. Plateau fraction of the character -> ramp:
# good = 0.25 (the flattest fit/anchor photo: rocket's JPEG sky 0.23; the others <= 0.06),
# bad = 0.5 (the flattest cartoon of a fit/anchor photo that is not a texture close-up: brick 0.55;
# cartoon median 0.74. The grass / gravel cartoons stay busy, 0.10 / 0.22: the NSS ramp ranks them).
TEXTURE_PLATEAU_RANGE = 1.0
TEXTURE_PLATEAU_GOOD = 0.25
TEXTURE_PLATEAU_BAD = 0.5
# Detail guard: energy of the finest octave over the next (texture.detail_ratio), contrast-free
# where the Laplacian variance below is not (a smooth, low-contrast photo has a small one).
# good = 0.55 (the lowest fit/anchor photo: brick 0.56; median 1.2), bad = 1/9 (the limit of heavy
# blur). Fit/anchor blur sigma 2: 0.19-0.24, sigma 1: 0.30-0.58.
TEXTURE_DETAIL_GOOD = 0.55
TEXTURE_DETAIL_BAD = 1.0 / 9.0
# Blur guard (Pech-Pacheco et al. 2000 focus measure): variance of the 3x3 Laplacian of the
# 0..255 gray character region. notes: photos 150-900, blur sigma 2 -> 7.5. Below the floor the
# score is multiplied by var / floor. Not a realism score (line art has huge Laplacian variance).
# Our 512 crops: smooth photos 42 (clock) and 57 (retina), microaneurysms (5x upscale) 2.1.
BLUR_LAPVAR_FLOOR = 30.0

# ---------------------------------------------------------------- temporal
# DIS optical flow presets (fixed: warping error depends on the flow method). Measured on a
# 512^2 photo (skimage astronaut) shifted by (3, 2) px: MEDIUM mean end-point error 0.08 px,
# FAST 0.14 px (FAST + 20 variational iterations 0.10 px at MEDIUM-like cost). The forward flow
# does the warping, so it gets MEDIUM; the backward flow only feeds the forward-backward
# occlusion test, whose tolerance is ~0.7 px, so FAST is enough there and saves ~35 ms a pair.
FLOW_PRESET = "MEDIUM"
OCCLUSION_FLOW_PRESET = "FAST"
# Warping error (Lai et al. 2018; squared RGB distance in 0..1 units, summed over channels, mean
# over non-occluded character pixels) -> exp(-E / tau). tau from the notes' temporal-synth
# (smooth pan 0.58e-3 -> 0.75, iid boil 2.6e-3 -> 0.27, +-6 % flicker 4.7e-3 -> 0.10); our own
# run of temporal.py (astronaut, 16 frames, 1.5 px/frame pan): pan 0.56e-3, iid boil sigma 6
# 2.8e-3, blotchy boil 1.8e-3, alternating +-6 % gain 12.9e-3.
WARP_ERROR_TAU = 2.0e-3
# Global luminance flicker: mean |m[t+1] - 2 m[t] + m[t-1]| of the per-frame mean luma (0..255;
# the second difference ignores linear fades) -> exp(-f / tau). temporal-synth: pan 0.02 -> 0.99,
# +-6 % gain flicker 11 -> 0.004 (our alternating +-6 % clip: 27 -> 0). The clip's temporal score
# is the geometric mean of the warp and flicker scores.
FLICKER_TAU = 2.0


def scale_for(shape: tuple) -> float:
    """Resolution factor relative to REFERENCE_SIZE (min side)."""
    return max(min(int(shape[0]), int(shape[1])), 1) / float(REFERENCE_SIZE)


def ramp(d: float, good: float, bad: float) -> float:
    """Clipped linear map: d <= good -> 1, d >= bad -> 0."""
    if not math.isfinite(d):
        return 0.0
    return float(min(1.0, max(0.0, (bad - d) / (bad - good))))


def exp_score(d: float, tau: float) -> float:
    """exp(-d / tau) for d >= 0, finite and in 0..1."""
    if not math.isfinite(d):
        return 0.0
    return float(min(1.0, max(0.0, math.exp(-max(d, 0.0) / tau))))
